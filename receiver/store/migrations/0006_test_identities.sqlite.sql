-- Each distinct test once (receiver.tests_identity): what the dashboard's search by name scans.
-- WITHOUT ROWID: a callback's tests are looked up here by their key, and a table clustered on
-- it took half the time of a rowid table and its key index (measured: 45 us less for a callback
-- of 10 tests). A PostgreSQL file for this number makes a plain table and computes the same
-- sha256 in SQL.
CREATE TABLE test_identities (
   test_id TEXT PRIMARY KEY,
   provider TEXT NOT NULL,
   scope TEXT NOT NULL,
   name TEXT NOT NULL
) WITHOUT ROWID;
-- Tests stored before 0005 get their identity: receiver_test_id() and receiver_test_scope()
-- are receiver.tests_identity's, registered on SQLite connections (receiver.store.sqlite).
UPDATE tests SET
   test_id = (SELECT receiver_test_id(r.provider, r.repository, r.custom_data, tests.name)
              FROM results r WHERE r.id = tests.result_id)
WHERE test_id IS NULL;
INSERT INTO test_identities (test_id, provider, scope, name)
SELECT t.test_id, r.provider, receiver_test_scope(r.repository, r.custom_data), t.name
FROM tests t JOIN results r ON r.id = t.result_id
WHERE t.test_id IS NOT NULL
ON CONFLICT (test_id) DO NOTHING;

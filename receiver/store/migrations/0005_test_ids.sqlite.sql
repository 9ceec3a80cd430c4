-- Tests stored before 0004 get their identity. receiver_test_id() is
-- receiver.tests_identity.test_id, registered on SQLite connections (receiver.store.sqlite); a
-- PostgreSQL file for this number computes the same sha256 in SQL.
UPDATE tests SET
   test_id = (SELECT receiver_test_id(r.provider, r.repository, r.custom_data, tests.name)
              FROM results r WHERE r.id = tests.result_id)
WHERE test_id IS NULL;
INSERT INTO test_identities (test_id, provider, scope, name)
SELECT t.test_id, r.provider, receiver_test_scope(r.repository, r.custom_data), t.name
FROM tests t JOIN results r ON r.id = t.result_id
WHERE t.test_id IS NOT NULL
ON CONFLICT (test_id) DO NOTHING;

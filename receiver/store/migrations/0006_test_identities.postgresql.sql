-- Each distinct test once (receiver.tests_identity): what the dashboard's search by name scans.
-- PostgreSQL is new with this release: no tests stored before it to give an identity.
CREATE TABLE test_identities (
   test_id TEXT PRIMARY KEY,
   provider TEXT NOT NULL,
   scope TEXT NOT NULL,
   name TEXT NOT NULL
);

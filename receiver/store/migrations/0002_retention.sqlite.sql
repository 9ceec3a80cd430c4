-- Every callback's digest in a table of its own (its id is the callback's), as 32 raw bytes: half
-- the unique index of 64 hex characters, which outgrew SQLite's default page cache near 150,000
-- callbacks. Retention deletes a callback after [retention] keep_days and its digest only after
-- keep_digest_days, so an old body replayed after the purge is still a duplicate.
CREATE TABLE callback_digests (
   id INTEGER PRIMARY KEY,
   digest BLOB NOT NULL,
   received_at TEXT NOT NULL
);
INSERT INTO callback_digests (id, digest, received_at)
SELECT id, unhex(digest), received_at FROM callbacks;
CREATE UNIQUE INDEX idx_callback_digests_digest ON callback_digests (digest);
DROP INDEX idx_callbacks_digest;
ALTER TABLE callbacks DROP COLUMN digest;
-- The row /health writes to prove the store takes writes.
CREATE TABLE _health (id INTEGER PRIMARY KEY, checked_at TEXT NOT NULL);
INSERT INTO _health (id, checked_at) VALUES (1, '');

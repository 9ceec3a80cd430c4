-- A callback's digest as its 32 raw bytes: half the unique index of 64 hex characters, which
-- outgrew SQLite's default page cache near 150,000 callbacks.
UPDATE callbacks SET digest = unhex(digest) WHERE typeof(digest) = 'text';
-- Retention empties a callback's body and headers after [retention] keep_days and keeps the row
-- (its digest) until keep_digest_days, so a replayed old body is still a duplicate.
ALTER TABLE callbacks ADD COLUMN purged_at TEXT;
-- The row /health writes to prove the store takes writes.
CREATE TABLE _health (id INTEGER PRIMARY KEY, checked_at TEXT NOT NULL);
INSERT INTO _health (id, checked_at) VALUES (1, '');

-- As on SQLite: every callback's digest (32 raw bytes) in a table of its own, its id the
-- callback's, outliving the callback until [retention] keep_digest_days; a fresh PostgreSQL
-- database has no hex digests to convert.
CREATE TABLE callback_digests (
   id BIGINT PRIMARY KEY,
   digest BYTEA NOT NULL,
   received_at TEXT NOT NULL
);
CREATE UNIQUE INDEX idx_callback_digests_digest ON callback_digests (digest);
DROP INDEX idx_callbacks_digest;
ALTER TABLE callbacks DROP COLUMN digest;
CREATE TABLE _health (id INTEGER PRIMARY KEY, checked_at TEXT NOT NULL);
INSERT INTO _health (id, checked_at) VALUES (1, '');

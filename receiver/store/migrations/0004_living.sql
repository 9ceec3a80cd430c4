-- Issue 23: living messages, matrix rows, the routing ledger, delivery attempts, watching.
-- Portable SQL only: natural keys, no autoincrement ids.

-- The ledger: each result's routing decision as it was made (receiver explain), one row per
-- result holding every route's decision as JSON, written in the result's own transaction.
CREATE TABLE route_decisions (
   result_id INTEGER PRIMARY KEY,
   decisions TEXT NOT NULL,
   created_at TEXT NOT NULL
);

-- Every attempt of every delivery (a claim's lease is unique): when, the answer, the error.
CREATE TABLE delivery_attempts (
   delivery_id INTEGER NOT NULL,
   lease TEXT NOT NULL,
   result_id INTEGER NOT NULL,
   attempt INTEGER NOT NULL,
   started_at TEXT NOT NULL,
   ended_at TEXT NOT NULL,
   state TEXT NOT NULL,
   answer TEXT,
   error TEXT,
   PRIMARY KEY (delivery_id, lease)
);
CREATE INDEX idx_delivery_attempts_result_id ON delivery_attempts (result_id);

-- Matrix rows: the newest result of each job (browser, device, provider ...) of a group (a pull
-- request, a commit, a deploy), which living messages and aggregate commit statuses render.
CREATE TABLE matrix_rows (
   group_key TEXT NOT NULL,
   row_key TEXT NOT NULL,
   label TEXT NOT NULL,
   result_id INTEGER NOT NULL,
   first_result_id INTEGER NOT NULL,
   sha TEXT,
   updated_at TEXT NOT NULL,
   PRIMARY KEY (group_key, row_key)
);
CREATE INDEX idx_matrix_rows_result_id ON matrix_rows (result_id);

-- The message each living target (slackbot://) keeps per group: where it is, what it showed.
CREATE TABLE living_messages (
   target TEXT NOT NULL,
   group_key TEXT NOT NULL,
   channel TEXT NOT NULL,
   ts TEXT NOT NULL,
   status TEXT NOT NULL,
   result_id INTEGER NOT NULL,
   updated_at TEXT NOT NULL,
   PRIMARY KEY (target, group_key)
);

-- repeat_after: the last result of a (route, group) that notified, and what it said.
CREATE TABLE repeat_groups (
   route TEXT NOT NULL,
   group_key TEXT NOT NULL,
   status TEXT NOT NULL,
   failing TEXT NOT NULL,
   result_id INTEGER NOT NULL,
   notified_at TEXT NOT NULL,
   PRIMARY KEY (route, group_key)
);

-- [watch]: failed deliveries in a row per target, and whether the alert went out.
CREATE TABLE target_health (
   target TEXT PRIMARY KEY,
   failures INTEGER NOT NULL,
   alerted INTEGER NOT NULL,
   last_error TEXT,
   updated_at TEXT NOT NULL
);

-- A real result arriving after its job's timeout result replaces it and says so.
ALTER TABLE results ADD COLUMN replaces INTEGER;

-- Jobs still waiting for a result, by age: the timeout watcher's question.
CREATE INDEX idx_jobs_open_created ON jobs (provider, created_at) WHERE result_id IS NULL AND (state = 'submitted' OR state = 'pending' OR state = 'running');

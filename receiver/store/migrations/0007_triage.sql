-- Triage (receiver.triage): per test, its window of recent runs and whether it is on the
-- quarantine list; per test and branch where it failed last, its failing streak there. Bounded
-- per row, so a result's triage reads and writes only its own tests' rows, however long the
-- history. A row is written only when it changes (last_seen_at, updated_at: when that was).
-- A test is judged per matrix cell (cell: the browser, device ... its results name; else ''):
-- failing on firefox while passing on chromium is not a flake. test_id is then the id of the
-- test in its cell (receiver.history), the dashboard's id when there is no cell.
CREATE TABLE test_history (
   test_id TEXT PRIMARY KEY,
   provider TEXT NOT NULL,
   scope TEXT NOT NULL,
   name TEXT NOT NULL,
   cell TEXT NOT NULL DEFAULT '',
   recent TEXT NOT NULL,
   flaky INTEGER NOT NULL DEFAULT 0,
   last_seen_at TEXT NOT NULL,
   last_failed_at TEXT
);
CREATE INDEX idx_test_history_flaky ON test_history (scope) WHERE flaky = 1;
CREATE TABLE test_branches (
   test_id TEXT NOT NULL,
   branch TEXT NOT NULL,
   runs INTEGER NOT NULL,
   since TEXT,
   result_id INTEGER,
   updated_at TEXT NOT NULL,
   PRIMARY KEY (test_id, branch)
);
-- Each test row's label and what it rests on (JSON); each result's count per label (JSON).
ALTER TABLE tests ADD COLUMN label TEXT;
ALTER TABLE tests ADD COLUMN triage TEXT;
ALTER TABLE results ADD COLUMN labels TEXT;

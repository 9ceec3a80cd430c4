-- The dashboard (issue 20). Each stored test carries its identity (receiver.tests_identity), so
-- a test's runs are one index range. (One index on tests only: each adds a random-key insert
-- per test to the callback's transaction, measured ~7 us a test.) test_identities, which a
-- search by name scans, comes with 0006.
ALTER TABLE tests ADD COLUMN test_id TEXT;
CREATE INDEX idx_tests_test_id ON tests (test_id, result_id);
-- Results newest first under each filter of the Results page (the id keeps the order).
CREATE INDEX idx_results_repository ON results (repository, id);
-- Per branch and per repository, each day's results: /history's chart reads a month of a busy
-- branch as 30 rows instead of aggregating its results (measured: 150 ms at 400,000 results).
-- Kept up to date in each result's transaction (receiver.store.results.insert).
CREATE TABLE result_days (
   scope TEXT NOT NULL,
   value TEXT NOT NULL,
   day TEXT NOT NULL,
   total INTEGER NOT NULL,
   passed INTEGER NOT NULL,
   duration_total INTEGER NOT NULL,
   timed INTEGER NOT NULL,
   PRIMARY KEY (scope, value, day)
);
INSERT INTO result_days (scope, value, day, total, passed, duration_total, timed)
SELECT 'branch', branch, substr(created_at, 1, 10), count(*),
   sum(CASE WHEN status = 'passed' THEN 1 ELSE 0 END), coalesce(sum(duration_ms), 0),
   count(duration_ms)
FROM results WHERE branch IS NOT NULL GROUP BY branch, substr(created_at, 1, 10);
INSERT INTO result_days (scope, value, day, total, passed, duration_total, timed)
SELECT 'repository', repository, substr(created_at, 1, 10), count(*),
   sum(CASE WHEN status = 'passed' THEN 1 ELSE 0 END), coalesce(sum(duration_ms), 0),
   count(duration_ms)
FROM results WHERE repository IS NOT NULL GROUP BY repository, substr(created_at, 1, 10);
-- The outbox by state, newest first.
CREATE INDEX idx_deliveries_state_id ON deliveries (state, id);
-- Per target (as shown, masked) and hour, the attempts that ended sent or dead: the Deliveries
-- page's last day is 24 rows a target. Counted when an attempt's outcome is recorded
-- (receiver.store.deliveries.finish), not by an index the outbox's every change would move.
CREATE TABLE delivery_hours (
   target TEXT NOT NULL,
   hour TEXT NOT NULL,
   sent INTEGER NOT NULL,
   dead INTEGER NOT NULL,
   PRIMARY KEY (target, hour)
);
INSERT INTO delivery_hours (target, hour, sent, dead)
SELECT target_display, substr(updated_at, 1, 13),
   sum(CASE WHEN state = 'sent' THEN 1 ELSE 0 END), sum(CASE WHEN state = 'dead' THEN 1 ELSE 0 END)
FROM deliveries WHERE state IN ('sent', 'dead') AND updated_at IS NOT NULL
GROUP BY target_display, substr(updated_at, 1, 13);
CREATE INDEX idx_deliveries_target_dead ON deliveries (target_display, id) WHERE state = 'dead';
CREATE INDEX idx_deliveries_target_error ON deliveries (target_display, updated_at)
   WHERE last_error IS NOT NULL;
-- Jobs by result (a result's page names its job).
CREATE INDEX idx_jobs_result_id ON jobs (result_id);

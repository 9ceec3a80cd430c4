-- The dashboard (issue 20). Each stored test carries its identity (receiver.tests_identity) and
-- its result's branch, so a test's runs, and its runs on one branch, are one index range each;
-- test_identities holds each distinct test once, which is what a search by name scans.
ALTER TABLE tests ADD COLUMN test_id TEXT;
ALTER TABLE tests ADD COLUMN branch TEXT;
CREATE TABLE test_identities (
   test_id TEXT PRIMARY KEY,
   provider TEXT NOT NULL,
   scope TEXT NOT NULL,
   name TEXT NOT NULL
);
CREATE INDEX idx_tests_test_id ON tests (test_id, result_id);
CREATE INDEX idx_tests_test_id_branch ON tests (test_id, branch, result_id);
-- Results newest first under each filter of the Results page (the id keeps the order), and the
-- per-day figures of /history read from the index alone.
CREATE INDEX idx_results_repository ON results (repository, id);
CREATE INDEX idx_results_branch_day ON results (branch, created_at, status, duration_ms);
CREATE INDEX idx_results_repository_day ON results (repository, created_at, status, duration_ms);
-- The outbox by state, newest first; per target over the last day.
CREATE INDEX idx_deliveries_state_id ON deliveries (state, id);
CREATE INDEX idx_deliveries_updated ON deliveries (updated_at, target_display, state);
CREATE INDEX idx_deliveries_target_dead ON deliveries (target_display, id) WHERE state = 'dead';
-- Jobs by result (a result's page names its job).
CREATE INDEX idx_jobs_result_id ON jobs (result_id);

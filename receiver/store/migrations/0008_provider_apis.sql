-- Issue 21: the providers' APIs beyond trigger and callback. Portable SQL only.

-- A result's kind (tests, sast, gap_analysis) and what a SAST scan or a gap analysis found, JSON.
ALTER TABLE results ADD COLUMN kind TEXT NOT NULL DEFAULT 'tests';
ALTER TABLE results ADD COLUMN security TEXT;
ALTER TABLE results ADD COLUMN coverage TEXT;

-- Where a test ran (QualGent's device, platform and OS version) and how far it got (0-100).
ALTER TABLE tests ADD COLUMN device TEXT;
ALTER TABLE tests ADD COLUMN platform TEXT;
ALTER TABLE tests ADD COLUMN progress REAL;

-- The job as POST /api/jobs took it (secrets masked), so that it can be sent later (queued) or
-- again (a re-run); the job a re-run repeats; the provider's progress while it runs (0-100).
ALTER TABLE jobs ADD COLUMN body TEXT;
ALTER TABLE jobs ADD COLUMN rerun_of INTEGER;
ALTER TABLE jobs ADD COLUMN progress REAL;
-- Jobs over a provider's rate limit wait in state 'queued', oldest first (the sender's queue).
CREATE INDEX idx_jobs_queued ON jobs (provider, id) WHERE state = 'queued';

-- Execution logs of failed tests, fetched from the provider after their result was stored; the
-- table is the fetcher's queue too: pending rows are due at next_attempt_at.
CREATE TABLE test_logs (
   result_id INTEGER NOT NULL,
   execution_id TEXT NOT NULL,
   state TEXT NOT NULL,
   attempts INTEGER NOT NULL DEFAULT 0,
   next_attempt_at TEXT,
   error TEXT,
   logs TEXT,
   updated_at TEXT NOT NULL,
   PRIMARY KEY (result_id, execution_id)
);
CREATE INDEX idx_test_logs_due ON test_logs (next_attempt_at) WHERE state = 'pending';

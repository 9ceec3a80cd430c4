-- The schema as the first releases left it (their migrations m001, m002, m004, m005, m006).
CREATE TABLE "jobs" (
   "id" INTEGER PRIMARY KEY,
   "provider" TEXT NOT NULL,
   "job_key" TEXT,
   "external_id" TEXT,
   "state" TEXT NOT NULL,
   "url" TEXT,
   "request" TEXT,
   "custom_data" TEXT,
   "callback_url" TEXT,
   "error" TEXT,
   "result_id" INTEGER,
   "created_at" TEXT NOT NULL,
   "updated_at" TEXT NOT NULL
, external_kind TEXT, poll_after TEXT, poll_attempts INTEGER NOT NULL DEFAULT 0, poll_errors INTEGER NOT NULL DEFAULT 0);
CREATE INDEX "idx_jobs_provider_external_id" ON "jobs" ("provider", "external_id");
CREATE TABLE "callbacks" (
   "id" INTEGER PRIMARY KEY,
   "provider" TEXT NOT NULL,
   "job_key" TEXT,
   "job_id" INTEGER,
   "result_id" INTEGER,
   "digest" TEXT NOT NULL,
   "body" BLOB NOT NULL,
   "headers" TEXT,
   "outcome" TEXT NOT NULL,
   "error" TEXT,
   "received_at" TEXT NOT NULL
);
CREATE UNIQUE INDEX "idx_callbacks_digest" ON "callbacks" ("digest");
CREATE TABLE "results" (
   "id" INTEGER PRIMARY KEY,
   "callback_id" INTEGER,
   "job_id" INTEGER,
   "provider" TEXT NOT NULL,
   "event" TEXT NOT NULL,
   "status" TEXT NOT NULL,
   "raw_status" TEXT,
   "total" INTEGER,
   "passed" INTEGER,
   "failed" INTEGER,
   "duration_ms" INTEGER,
   "report_url" TEXT,
   "summary" TEXT,
   "external_job_id" TEXT,
   "branch" TEXT,
   "repository" TEXT,
   "pr_number" INTEGER,
   "sha" TEXT,
   "custom_data" TEXT,
   "failures" TEXT,
   "created_at" TEXT NOT NULL
);
CREATE INDEX "idx_results_status" ON "results" ("status");
CREATE INDEX "idx_results_branch" ON "results" ("branch");
CREATE INDEX "idx_results_provider" ON "results" ("provider");
CREATE INDEX "idx_results_job_id" ON "results" ("job_id");
CREATE TABLE "tests" (
   "id" INTEGER PRIMARY KEY,
   "result_id" INTEGER NOT NULL REFERENCES "results"("id"),
   "position" INTEGER,
   "name" TEXT NOT NULL,
   "status" TEXT NOT NULL,
   "duration_ms" INTEGER,
   "error" TEXT,
   "screenshot_url" TEXT,
   "video_url" TEXT,
   "execution_id" TEXT
, url TEXT);
CREATE INDEX "idx_tests_result_id" ON "tests" ("result_id");
CREATE TABLE "deliveries" (
   "id" INTEGER PRIMARY KEY,
   "result_id" INTEGER NOT NULL REFERENCES "results"("id"),
   "route" TEXT NOT NULL,
   "target" TEXT NOT NULL,
   "target_display" TEXT NOT NULL,
   "state" TEXT NOT NULL,
   "attempts" INTEGER NOT NULL DEFAULT 0,
   "last_error" TEXT,
   "next_attempt_at" TEXT,
   "lease" TEXT,
   "sent_at" TEXT,
   "created_at" TEXT,
   "updated_at" TEXT
);
CREATE UNIQUE INDEX "idx_deliveries_result_id_target" ON "deliveries" ("result_id", "target");
CREATE INDEX "idx_deliveries_state_next_attempt_at" ON "deliveries" ("state", "next_attempt_at");
CREATE TABLE "route_groups" (
   "route" TEXT,
   "group_key" TEXT,
   "status" TEXT NOT NULL,
   "result_id" INTEGER,
   "updated_at" TEXT,
   PRIMARY KEY ("route", "group_key")
);
-- Only keyed jobs can be found by key, only open ones by the poller: partial indexes.
CREATE UNIQUE INDEX idx_jobs_job_key ON jobs (job_key) WHERE job_key IS NOT NULL;
CREATE INDEX idx_jobs_open_poll ON jobs (provider, poll_after) WHERE (state = 'submitted' OR state = 'pending' OR state = 'running') AND result_id IS NULL AND external_id IS NOT NULL;

-- The router records a job's dead letter at most once (INSERT ... WHERE NOT EXISTS on job_id), so
-- outcomes whose commit was in doubt can be written again after a database outage; this keeps that
-- check an index lookup.
CREATE INDEX IF NOT EXISTS dead_letters_job ON dead_letters (job_id);

------------------------------------------------------------------------------
-- Worker: the background worker's controls and status (src/worker/)
------------------------------------------------------------------------------

-- Wake the worker now (apps call it after queuing work); false when the
-- worker is not running.
CREATE FUNCTION pgext.worker_wake() RETURNS boolean
AS 'MODULE_PATHNAME', 'worker_wake'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pgext, pg_temp;

-- Make one task due now and wake the worker; an unknown task is an error
-- (22023) that lists the tasks.  False when the worker is not running.
CREATE FUNCTION pgext.worker_run_now(task text) RETURNS boolean
AS 'MODULE_PATHNAME', 'worker_run_now'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pgext, pg_temp;

-- One row per task: interval, last run, outcome, next run, runs; and the
-- worker's pid and why it refuses to act (NULL while it acts).
CREATE FUNCTION pgext.worker_tasks(OUT task text, OUT "interval" interval,
                                   OUT last_run_at timestamptz, OUT last_ok boolean,
                                   OUT last_error text, OUT next_run_at timestamptz,
                                   OUT runs bigint, OUT worker_pid integer, OUT refusing text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'worker_tasks'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pgext, pg_temp;

CREATE VIEW pgext.worker_status AS SELECT * FROM pgext.worker_tasks();

REVOKE ALL ON FUNCTION pgext.worker_wake(), pgext.worker_run_now(text),
  pgext.worker_tasks() FROM PUBLIC;
REVOKE ALL ON pgext.worker_status FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgext.worker_wake() TO pgext_app, pgext_admin;
GRANT EXECUTE ON FUNCTION pgext.worker_run_now(text), pgext.worker_tasks() TO pgext_admin;
GRANT SELECT ON pgext.worker_status TO pgext_admin;

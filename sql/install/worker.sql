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

-- The work waiting for a task (NULL where a task has no queue): events to
-- apply, servers with an action queued (or a reconcile page / orphan delete
-- for hetzner_reconcile), Stripe runs open (subscription lists and
-- on-demand account syncs; event lists), api_calls rows past their retention.
CREATE FUNCTION pgext.worker_queue_depth(task text) RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
  SELECT CASE $1
    WHEN 'webhook_apply' THEN
      (SELECT pg_catalog.count(*) FROM pgext.webhook_events e WHERE e.status IN ('pending', 'received'))
    WHEN 'server_reconcile' THEN
      (SELECT pg_catalog.count(*) FROM pgext.servers s WHERE s.next_action IS NOT NULL)
    WHEN 'hetzner_reconcile' THEN
      (SELECT pg_catalog.count(*) FROM pgext.hetzner_reconcile_runs r WHERE r.finished_at IS NULL)
      + (SELECT pg_catalog.count(*) FROM pgext.server_orphans o
          WHERE o.delete_queued_at IS NOT NULL AND o.deleted_at IS NULL)
    WHEN 'stripe_reconcile' THEN
      (SELECT pg_catalog.count(*) FROM pgext.stripe_sync_runs r
        WHERE r.status = 'running' AND r.kind IN ('reconcile', 'account'))
    WHEN 'stripe_events' THEN
      (SELECT pg_catalog.count(*) FROM pgext.stripe_sync_runs r WHERE r.status = 'running' AND r.kind = 'events')
    WHEN 'api_calls_retention' THEN
      (SELECT pg_catalog.count(*) FROM pgext.api_calls c
        WHERE c.at < pg_catalog.now() - pg_catalog.current_setting('pgext.api_calls_retention')::interval)
  END
$$;

CREATE VIEW pgext.worker_status WITH (security_invoker = true) AS
  SELECT t.*, pgext.worker_queue_depth(t.task) AS queue_depth FROM pgext.worker_tasks() t;

REVOKE ALL ON FUNCTION pgext.worker_wake(), pgext.worker_run_now(text),
  pgext.worker_tasks(), pgext.worker_queue_depth(text) FROM PUBLIC;
REVOKE ALL ON pgext.worker_status FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgext.worker_wake() TO pgext_app, pgext_admin;
GRANT EXECUTE ON FUNCTION pgext.worker_run_now(text), pgext.worker_tasks(), pgext.worker_queue_depth(text)
  TO pgext_admin;
GRANT SELECT ON pgext.worker_status TO pgext_admin;

-- One row per external API the worker calls: its base URL, why it refuses
-- to call it (NULL while it calls it), calls in flight and the limit on
-- them, counters since the worker started, the rate-limit budget (limit,
-- the worker's estimate of what is left now, when it is full again), until
-- when calls wait after a 429, when the worker next claims work, and the
-- last error.
CREATE FUNCTION pgext.worker_apis(OUT api text, OUT base_url text, OUT refusing text,
                                  OUT concurrency integer, OUT in_flight integer,
                                  OUT sent bigint, OUT no_response bigint, OUT rate_limited bigint,
                                  OUT report_errors bigint, OUT ratelimit_limit bigint,
                                  OUT ratelimit_remaining bigint, OUT ratelimit_reset timestamptz,
                                  OUT paused_until timestamptz, OUT next_claim_at timestamptz,
                                  OUT last_error text, OUT last_error_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'worker_apis'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pgext, pg_temp;

CREATE VIEW pgext.worker_api_status WITH (security_invoker = true) AS SELECT * FROM pgext.worker_apis();

REVOKE ALL ON FUNCTION pgext.worker_apis() FROM PUBLIC;
REVOKE ALL ON pgext.worker_api_status FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgext.worker_apis() TO pgext_admin;
GRANT SELECT ON pgext.worker_api_status TO pgext_admin;

-- When the worker should next look for Hetzner work (NULL: nothing queued):
-- the earliest due server action, claim to take back, orphan delete or
-- reconcile page.  The worker sleeps until then unless woken.
CREATE FUNCTION pgext.hetzner_next_due() RETURNS timestamptz
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
  SELECT pg_catalog.min(t) FROM (
    SELECT pg_catalog.min(GREATEST(s.next_attempt_at, COALESCE(s.claimed_until, '-infinity'))) AS t
      FROM pgext.servers s WHERE s.next_action IS NOT NULL
    UNION ALL
    SELECT pg_catalog.min(GREATEST(o.next_attempt_at, COALESCE(o.claimed_until, '-infinity')))
      FROM pgext.server_orphans o WHERE o.delete_queued_at IS NOT NULL AND o.deleted_at IS NULL
    UNION ALL
    SELECT pg_catalog.min(GREATEST(COALESCE(r.page_due_at, r.started_at), COALESCE(r.page_in_flight_until, '-infinity')))
      FROM pgext.hetzner_reconcile_runs r WHERE r.finished_at IS NULL AND r.next_page IS NOT NULL) due
$$;

REVOKE ALL ON FUNCTION pgext.hetzner_next_due() FROM PUBLIC;

-- Wake the worker at commit when a server gets work to do (a request, a
-- delete, a policy change, a retry): it claims the work within
-- milliseconds instead of at its next timer.  A claim does not change
-- next_action, so the worker's own claims do not wake it.
CREATE FUNCTION pgext.servers_wake_worker() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
BEGIN
  PERFORM pgext.worker_wake();
  RETURN NULL;
END
$$;
CREATE TRIGGER servers_wake_worker AFTER INSERT OR UPDATE OF next_action ON pgext.servers
  FOR EACH ROW WHEN (NEW.next_action IS NOT NULL) EXECUTE FUNCTION pgext.servers_wake_worker();

REVOKE ALL ON FUNCTION pgext.servers_wake_worker() FROM PUBLIC;

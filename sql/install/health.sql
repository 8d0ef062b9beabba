------------------------------------------------------------------------------
-- Fleet health: checks, their results, agent states, recovery and the
-- breaker (src/health/).  The worker moves bytes (it polls the URLs and hands
-- results to pgext.health_record in batches); everything decided is here.
------------------------------------------------------------------------------

-- One row per health check a server has (added by hand with
-- pgext.health_check_add, or from spec.health when the server becomes
-- configuring: from_spec).  state: unknown | healthy | unhealthy, with the
-- per-check counters; history is pgext.health_events (state changes only).
--   grace_until   failures before it do not count (after the server became
--                 active, or the check was added to an active server)
--   ignored_total failures that did not count (grace, server not active)
--   last_error    NULL after a pass; else 'HTTP 503', 'timeout', 'refused',
--                 'tls', 'dns', 'network', 'too_large'
CREATE TABLE pgext.health_checks (
  id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  server_id             bigint NOT NULL REFERENCES pgext.servers (id),
  account_id            uuid NOT NULL,
  url                   text NOT NULL,
  kind                  text NOT NULL,
  every                 interval NOT NULL,
  timeout               interval NOT NULL,
  enabled               boolean NOT NULL DEFAULT true,
  from_spec             boolean NOT NULL DEFAULT false,
  state                 text NOT NULL DEFAULT 'unknown',
  state_since           timestamptz,
  consecutive_failures  integer NOT NULL DEFAULT 0,
  consecutive_successes integer NOT NULL DEFAULT 0,
  checks_total          bigint NOT NULL DEFAULT 0,
  failures_total        bigint NOT NULL DEFAULT 0,
  ignored_total         bigint NOT NULL DEFAULT 0,
  last_checked_at       timestamptz,
  last_ok_at            timestamptz,
  last_latency_ms       integer,
  last_status           integer,
  last_error            text,
  grace_until           timestamptz,
  created_at            timestamptz NOT NULL DEFAULT pg_catalog.now(),
  CONSTRAINT health_checks_unique UNIQUE (server_id, url, kind),
  CONSTRAINT health_checks_kind_valid CHECK (kind IN ('shallow', 'deep')),
  CONSTRAINT health_checks_state_valid CHECK (state IN ('unknown', 'healthy', 'unhealthy')),
  CONSTRAINT health_checks_every_valid CHECK (every BETWEEN interval '100 milliseconds' AND interval '1 day'),
  CONSTRAINT health_checks_timeout_valid CHECK (timeout > interval '0' AND timeout < every)
);

-- One row per server that has checks: the agent's state from its checks
-- (unhealthy: a shallow check is unhealthy; degraded: only deep ones are;
-- healthy: some check is healthy; else unknown) and its recoveries.
CREATE TABLE pgext.health_servers (
  server_id            bigint PRIMARY KEY REFERENCES pgext.servers (id),
  account_id           uuid NOT NULL,
  agent                text NOT NULL DEFAULT 'unknown',
  agent_since          timestamptz,
  agent_reason         text,
  recovery_attempts    integer NOT NULL DEFAULT 0,
  next_recovery_at     timestamptz,
  last_recovery_at     timestamptz,
  last_recovery_action text,
  CONSTRAINT health_servers_agent_valid CHECK (agent IN ('unknown', 'healthy', 'unhealthy', 'degraded')),
  CONSTRAINT health_servers_action_valid CHECK (last_recovery_action IN ('reboot', 'reset'))
);

-- The history: state changes of checks and agents, recoveries, the breaker
-- and operator pauses (pgext.health_history_retention, pgext.health_retention).
CREATE TABLE pgext.health_events (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at         timestamptz NOT NULL,
  kind       text NOT NULL,
  server_id  bigint,
  check_id   bigint,
  account_id uuid,
  from_state text,
  to_state   text,
  detail     text,
  CONSTRAINT health_events_kind_valid CHECK (kind IN ('check', 'agent', 'recovery', 'breaker', 'pause'))
);
CREATE INDEX health_events_kind_at ON pgext.health_events (kind, at);
CREATE INDEX health_events_server ON pgext.health_events (server_id, id);

-- The breaker and the operator's pause: at most one row.  The install script
-- writes no rows (a restore brings them back), so no row means closed and not
-- paused; the functions below create it when they first change something.
CREATE TABLE pgext.health_breaker (
  one           boolean PRIMARY KEY DEFAULT true,
  state         text NOT NULL DEFAULT 'closed',
  since         timestamptz,
  reason        text,
  paused        boolean NOT NULL DEFAULT false,
  paused_at     timestamptz,
  paused_by     text,
  paused_reason text,
  CONSTRAINT health_breaker_one CHECK (one),
  CONSTRAINT health_breaker_state_valid CHECK (state IN ('closed', 'open'))
);

-- The version of the check list the worker polls: bumped in the transaction
-- that changes it (a sequence would not be transactional).  No row = 0.
CREATE TABLE pgext.health_config (
  one     boolean PRIMARY KEY DEFAULT true,
  version bigint NOT NULL,
  CONSTRAINT health_config_one CHECK (one)
);

-- The poller's counters in shared memory (src/health/stats.c): one row,
-- zeros and NULLs when the worker does not poll.
CREATE FUNCTION pgext.health_poller()
RETURNS TABLE (checks_loaded integer, in_flight integer, sent bigint, completed bigint, recorded bigint,
               record_errors bigint, checks_per_second double precision, last_flush_at timestamptz,
               last_flush_ms double precision, loaded_at timestamptz, version bigint)
AS 'MODULE_PATHNAME', 'health_poller'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pgext, pg_temp;

-- Internal: bump the check list's version (the worker reloads it).
CREATE FUNCTION pgext.health_config_bump() RETURNS void
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pgext, pg_temp AS $$
  INSERT INTO pgext.health_config AS c (one, version) VALUES (true, 1)
  ON CONFLICT (one) DO UPDATE SET version = c.version + 1
$$;

-- Statement trigger on pgext.health_checks: a check was added, removed, or
-- its url, kind, every, timeout or enabled was written.
CREATE FUNCTION pgext.health_checks_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pgext, pg_temp AS $$
BEGIN
  PERFORM pgext.health_config_bump();
  RETURN NULL;
END
$$;
CREATE TRIGGER health_checks_changed
  AFTER INSERT OR DELETE OR UPDATE OF url, kind, every, timeout, enabled ON pgext.health_checks
  FOR EACH STATEMENT EXECUTE FUNCTION pgext.health_checks_changed();

-- The worker: the check list's version (0 before the first change).
CREATE FUNCTION pgext.health_config_version() RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
  SELECT COALESCE((SELECT c.version FROM pgext.health_config c), 0)
$$;

-- Internal: the rules of a check; raises 22023 naming the field (prefix:
-- '' for the function arguments, 'health[0].' for a spec).  The URL itself
-- is never quoted when it carries userinfo (it may hold a password).
CREATE FUNCTION pgext.health_check_valid(url text, kind text, every interval, timeout interval, prefix text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  authority pg_catalog.text;
BEGIN
  IF $2 NOT IN ('shallow', 'deep') THEN
    RAISE EXCEPTION '%kind must be shallow or deep, not %', $5, pg_catalog.quote_literal(pg_catalog.left($2, 64)) USING ERRCODE = '22023',
      HINT = 'shallow: is the agent process up (its /health); deep: can it reach its upstreams.';
  END IF;
  IF pg_catalog.length($1) > 2048 THEN
    RAISE EXCEPTION '%url is longer than 2048 characters', $5 USING ERRCODE = '22023';
  END IF;
  IF $1 ~ '[[:space:][:cntrl:]]' THEN
    RAISE EXCEPTION '%url must not contain whitespace or control characters', $5 USING ERRCODE = '22023',
      HINT = 'Percent-encode them.';
  END IF;
  authority := pg_catalog.substring($1, '^[Hh][Tt][Tt][Pp][Ss]?://([^/?#]*)');
  IF authority IS NULL THEN
    RAISE EXCEPTION '%url must start with http:// or https://', $5 USING ERRCODE = '22023',
      HINT = 'For example http://{ipv4}:8080/health.';
  END IF;
  IF pg_catalog.strpos(authority, '@') > 0 THEN
    RAISE EXCEPTION '%url must not carry a user name or password', $5 USING ERRCODE = '22023',
      HINT = 'Health checks send no credentials: expose an endpoint that needs none.';
  END IF;
  IF authority !~ '^([A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$' THEN
    RAISE EXCEPTION '%url has no valid host: %', $5, pg_catalog.quote_literal($1) USING ERRCODE = '22023',
      HINT = 'For example http://{ipv4}:8080/health.';
  END IF;
  IF $3 < interval '100 milliseconds' OR $3 > interval '1 day' THEN
    RAISE EXCEPTION '%every must be between 100 ms and 1 day, not %', $5, $3 USING ERRCODE = '22023';
  END IF;
  IF $4 <= interval '0' OR $4 >= $3 THEN
    RAISE EXCEPTION '%timeout must be more than 0 and less than every (%), not %', $5, $3, $4 USING ERRCODE = '22023';
  END IF;
END
$$;

-- Internal: an interval in a spec: interval text ('30 s') or seconds.
CREATE FUNCTION pgext.health_spec_interval(v jsonb, field text) RETURNS interval
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  r interval;
BEGIN
  IF $1 IS NULL OR $1 = 'null' THEN
    RETURN NULL;
  ELSIF pg_catalog.jsonb_typeof($1) = 'number' THEN
    RETURN pg_catalog.make_interval(secs => ($1 #>> '{}')::double precision);
  ELSIF pg_catalog.jsonb_typeof($1) = 'string' THEN
    BEGIN
      r := ($1 #>> '{}')::interval;
    EXCEPTION WHEN OTHERS THEN
      r := NULL;
    END;
    IF r IS NOT NULL THEN
      RETURN r;
    END IF;
  END IF;
  RAISE EXCEPTION '% must be an interval such as "30 s" or a number of seconds, not %', $2, $1::pg_catalog.text
    USING ERRCODE = '22023';
END
$$;

-- Internal: the checks of a spec, one row each, with defaults applied
-- (field: health or health[n], for messages).
CREATE FUNCTION pgext.health_spec_entries(spec jsonb)
RETURNS TABLE (field text, url text, kind text, every interval, timeout interval)
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  e pg_catalog.jsonb;
  n integer := 0;
  k pg_catalog.text;
BEGIN
  FOR e IN SELECT x FROM pg_catalog.jsonb_array_elements(
             CASE pg_catalog.jsonb_typeof($1 -> 'health') WHEN 'array' THEN $1 -> 'health'
                  WHEN 'object' THEN pg_catalog.jsonb_build_array($1 -> 'health') ELSE '[]' END) x
  LOOP
    field := CASE WHEN pg_catalog.jsonb_typeof($1 -> 'health') = 'array' THEN 'health[' || n || ']' ELSE 'health' END;
    n := n + 1;
    IF pg_catalog.jsonb_typeof(e) IS DISTINCT FROM 'object' OR pg_catalog.jsonb_typeof(e -> 'url') IS DISTINCT FROM 'string' THEN
      RAISE EXCEPTION '% must be an object with a "url" string', field USING ERRCODE = '22023';
    END IF;
    SELECT pg_catalog.min(x) INTO k FROM pg_catalog.jsonb_object_keys(e) x
     WHERE x NOT IN ('url', 'kind', 'every', 'timeout');
    IF k IS NOT NULL THEN
      RAISE EXCEPTION '%.% is not a health check field', field, k USING ERRCODE = '22023',
        HINT = 'A health check has url, kind (shallow or deep), every and timeout.';
    END IF;
    IF e ? 'kind' AND e -> 'kind' <> 'null' AND pg_catalog.jsonb_typeof(e -> 'kind') <> 'string' THEN
      RAISE EXCEPTION '%.kind must be shallow or deep', field USING ERRCODE = '22023';
    END IF;
    url := e ->> 'url';
    kind := COALESCE(e ->> 'kind', 'shallow');
    every := COALESCE(pgext.health_spec_interval(e -> 'every', field || '.every'),
                      CASE WHEN kind = 'deep' THEN interval '5 minutes' ELSE interval '30 seconds' END);
    timeout := COALESCE(pgext.health_spec_interval(e -> 'timeout', field || '.timeout'), interval '5 seconds');
    RETURN NEXT;
  END LOOP;
END
$$;

-- spec.health's checks, checked up front by pgext.server_request (so adding
-- them later can never fail): kind, every, timeout and the url's shape with
-- {ipv4} standing for an address.  22023 naming the field.
CREATE FUNCTION pgext.health_spec_check(spec jsonb) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  e record;
BEGIN
  FOR e IN SELECT * FROM pgext.health_spec_entries($1) LOOP
    PERFORM pgext.health_check_valid(pg_catalog.replace(e.url, '{ipv4}', '192.0.2.1'), e.kind, e.every,
                                     e.timeout, e.field || '.');
  END LOOP;
END
$$;

-- Internal: recompute a server's agent state from its checks; on a change:
-- the health_servers row, an event and an outbox row (agent_healthy,
-- agent_unhealthy, agent_degraded).  Leaving 'unhealthy' for healthy or
-- degraded clears the recovery backoff and cancels a queued recovery action
-- not handed out yet.  Returns the agent state.
CREATE FUNCTION pgext.health_agent_update(server bigint, at timestamptz) RETURNS text
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  h pgext.health_servers;
  acct uuid;
  new_agent pg_catalog.text;
  why pg_catalog.text;
  w record;
BEGIN
  SELECT x.account_id INTO acct FROM pgext.servers x WHERE x.id = $1;
  INSERT INTO pgext.health_servers (server_id, account_id) VALUES ($1, acct) ON CONFLICT (server_id) DO NOTHING;
  SELECT * INTO h FROM pgext.health_servers y WHERE y.server_id = $1 FOR UPDATE;
  SELECT c.kind, c.url, c.state, c.consecutive_failures, c.consecutive_successes, c.last_error INTO w
    FROM pgext.health_checks c WHERE c.server_id = $1
   ORDER BY c.state = 'unhealthy' AND c.kind = 'shallow' DESC, c.state = 'unhealthy' DESC,
            c.state = 'healthy' DESC, c.state_since DESC NULLS LAST, c.id
   LIMIT 1;
  new_agent := CASE WHEN w.state = 'unhealthy' AND w.kind = 'shallow' THEN 'unhealthy'
                WHEN w.state = 'unhealthy' THEN 'degraded'
                WHEN w.state = 'healthy' THEN 'healthy'
                ELSE 'unknown' END;
  IF new_agent = h.agent THEN
    RETURN new_agent;
  END IF;
  why := CASE WHEN new_agent IN ('unhealthy', 'degraded')
                THEN pg_catalog.format('%s check %s failed %s times in a row: %s', w.kind, w.url,
                                       w.consecutive_failures, COALESCE(w.last_error, 'no error recorded'))
              WHEN new_agent = 'healthy'
                THEN pg_catalog.format('%s check %s passed%s', w.kind, w.url,
                                       CASE WHEN w.consecutive_successes > 1
                                            THEN pg_catalog.format(' %s times in a row', w.consecutive_successes)
                                            ELSE '' END)
              WHEN w.state IS NULL THEN 'no health checks'
              ELSE 'no check result yet' END;
  UPDATE pgext.health_servers y
     SET agent = new_agent, agent_since = $2, agent_reason = why,
         recovery_attempts = CASE WHEN h.agent = 'unhealthy' AND new_agent IN ('healthy', 'degraded') THEN 0
                                  ELSE y.recovery_attempts END,
         next_recovery_at = CASE WHEN h.agent = 'unhealthy' AND new_agent IN ('healthy', 'degraded') THEN NULL
                                 ELSE y.next_recovery_at END
   WHERE y.server_id = $1;
  INSERT INTO pgext.health_events (at, kind, server_id, account_id, from_state, to_state, detail)
  VALUES ($2, 'agent', $1, acct, h.agent, new_agent, why);
  IF new_agent <> 'unknown' THEN
    INSERT INTO pgext.outbox (account_id, kind, server_id, detail) VALUES (acct, 'agent_' || new_agent, $1, why);
  END IF;
  IF h.agent = 'unhealthy' AND new_agent IN ('healthy', 'degraded') THEN
    UPDATE pgext.servers x SET recovery_action = NULL
     WHERE x.id = $1 AND x.recovery_action IS NOT NULL AND x.claimed_by IS NULL;
    IF FOUND THEN
      PERFORM pgext.server_replan($1, $2);
    END IF;
  END IF;
  RETURN new_agent;
END
$$;

-- Internal: add (or update) one check of a locked server; the caller has
-- validated.  Returns its id.
CREATE FUNCTION pgext.health_check_put(s pgext.servers, url text, kind text, every interval, timeout interval,
                                       enabled boolean, from_spec boolean, last_error text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  c pgext.health_checks;
BEGIN
  SELECT * INTO c FROM pgext.health_checks x WHERE x.server_id = s.id AND x.url = $2 AND x.kind = $3 FOR UPDATE;
  IF FOUND THEN
    IF (c.every, c.timeout) IS DISTINCT FROM ($4, $5) OR (c.from_spec < $7) THEN
      UPDATE pgext.health_checks x SET every = $4, timeout = $5, from_spec = x.from_spec OR $7 WHERE x.id = c.id;
    END IF;
    RETURN c.id;
  END IF;
  INSERT INTO pgext.health_checks (server_id, account_id, url, kind, every, timeout, enabled, from_spec,
                                   last_error, grace_until)
  VALUES (s.id, s.account_id, $2, $3, $4, $5, $6, $7, $8,
          CASE WHEN s.state = 'active' THEN pg_catalog.now() + pg_catalog.current_setting('pgext.health_grace')::interval END)
  RETURNING id INTO c.id;
  INSERT INTO pgext.health_servers (server_id, account_id) VALUES (s.id, s.account_id) ON CONFLICT (server_id) DO NOTHING;
  RETURN c.id;
END
$$;

-- Add a health check to a server (apps, operators); idempotent on (server,
-- url, kind): the existing id comes back, with the given every and timeout
-- applied.  every NULL: 30 s (shallow) or 5 min (deep).  Errors: NULL 22004;
-- bad kind, url (http(s)://host..., no userinfo, no whitespace, <= 2048
-- chars), every outside [100 ms, 1 day], timeout not in (0, every): 22023;
-- unknown server P0002; deleting or deleted server 55000.  A check added to
-- an active server starts with pgext.health_grace of grace.
CREATE FUNCTION pgext.health_check_add(server bigint, url text, kind text DEFAULT 'shallow',
                                       every interval DEFAULT NULL, timeout interval DEFAULT '5 s')
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  s pgext.servers;
  e interval;
BEGIN
  IF $1 IS NULL OR $2 IS NULL OR $3 IS NULL OR $5 IS NULL THEN
    RAISE EXCEPTION '% must not be NULL', CASE WHEN $1 IS NULL THEN 'server' WHEN $2 IS NULL THEN 'url'
                                              WHEN $3 IS NULL THEN 'kind' ELSE 'timeout' END
      USING ERRCODE = '22004';
  END IF;
  e := COALESCE($4, CASE WHEN $3 = 'deep' THEN interval '5 minutes' ELSE interval '30 seconds' END);
  PERFORM pgext.health_check_valid($2, $3, e, $5, '');
  s := pgext.server_lock($1);
  PERFORM pgext.account_scope_check(s.account_id);
  IF s.state IN ('deleting', 'deleted') THEN
    RAISE EXCEPTION 'server % is %: it gets no health checks', $1, s.state USING ERRCODE = '55000';
  END IF;
  RETURN pgext.health_check_put(s, $2, $3, e, $5, true, false, NULL);
END
$$;

-- Change a check (NULL = unchanged); the same rules as health_check_add.  A
-- new url or disabling it starts its state over (unknown).  Returns the row.
CREATE FUNCTION pgext.health_check_update("check" bigint, url text DEFAULT NULL, every interval DEFAULT NULL,
                                          timeout interval DEFAULT NULL, enabled boolean DEFAULT NULL)
RETURNS pgext.health_checks
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  c pgext.health_checks;
  s pgext.servers;
  restart boolean;
BEGIN
  IF $1 IS NULL THEN
    RAISE EXCEPTION 'check must not be NULL' USING ERRCODE = '22004';
  END IF;
  SELECT * INTO c FROM pgext.health_checks x WHERE x.id = $1 FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'health check % does not exist', $1 USING ERRCODE = 'P0002',
      HINT = 'List them with: SELECT * FROM pgext.health_checks.';
  END IF;
  PERFORM pgext.account_scope_check(c.account_id);
  SELECT * INTO s FROM pgext.servers x WHERE x.id = c.server_id;
  IF s.state IN ('deleting', 'deleted') THEN
    RAISE EXCEPTION 'server % is %: its health checks cannot change', s.id, s.state USING ERRCODE = '55000';
  END IF;
  PERFORM pgext.health_check_valid(COALESCE($2, c.url), c.kind, COALESCE($3, c.every), COALESCE($4, c.timeout), '');
  IF (COALESCE($2, c.url), COALESCE($3, c.every), COALESCE($4, c.timeout), COALESCE($5, c.enabled))
     IS NOT DISTINCT FROM (c.url, c.every, c.timeout, c.enabled) THEN
    RETURN c;
  END IF;
  IF $2 <> c.url AND EXISTS (SELECT FROM pgext.health_checks x WHERE x.server_id = c.server_id AND x.url = $2
                                                                  AND x.kind = c.kind) THEN
    RAISE EXCEPTION 'server % already has a % check of that url', c.server_id, c.kind USING ERRCODE = '22023',
      HINT = 'Remove one of them with pgext.health_check_remove(check).';
  END IF;
  restart := $2 <> c.url OR ($5 = false AND c.enabled);
  UPDATE pgext.health_checks x
     SET url = COALESCE($2, x.url), every = COALESCE($3, x.every), timeout = COALESCE($4, x.timeout),
         enabled = COALESCE($5, x.enabled),
         state = CASE WHEN restart THEN 'unknown' ELSE x.state END,
         state_since = CASE WHEN restart AND x.state <> 'unknown' THEN pg_catalog.now() ELSE x.state_since END,
         consecutive_failures = CASE WHEN restart THEN 0 ELSE x.consecutive_failures END,
         consecutive_successes = CASE WHEN restart THEN 0 ELSE x.consecutive_successes END,
         last_error = CASE WHEN restart THEN NULL ELSE x.last_error END
   WHERE x.id = $1
  RETURNING * INTO c;
  IF restart THEN
    PERFORM pgext.health_agent_update(c.server_id, pg_catalog.now());
  END IF;
  RETURN c;
END
$$;

-- Remove a check; false when it did not exist.  The server's agent state is
-- recomputed (a server without checks loses its health_servers row).
CREATE FUNCTION pgext.health_check_remove("check" bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  sid bigint;
BEGIN
  IF $1 IS NULL THEN
    RAISE EXCEPTION 'check must not be NULL' USING ERRCODE = '22004';
  END IF;
  SELECT x.server_id INTO sid FROM pgext.health_checks x WHERE x.id = $1;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  PERFORM pgext.account_scope_check(x.account_id) FROM pgext.health_checks x WHERE x.id = $1;
  DELETE FROM pgext.health_checks x WHERE x.id = $1;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  IF EXISTS (SELECT FROM pgext.health_checks x WHERE x.server_id = sid) THEN
    PERFORM pgext.health_agent_update(sid, pg_catalog.now());
  ELSE
    DELETE FROM pgext.health_servers y WHERE y.server_id = sid;
  END IF;
  RETURN true;
END
$$;

-- Internal: the checks of a server's spec.health are added (from_spec),
-- '{ipv4}' replaced by its address; without a known address the check is
-- added disabled and says why.  Spec checks no longer in the spec go.
-- Returns how many the spec has.
CREATE FUNCTION pgext.health_checks_from_spec(server bigint) RETURNS integer
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  s pgext.servers;
  e record;
  u pgext.health_checks.url%TYPE;
  keep bigint[] := '{}';
BEGIN
  SELECT * INTO s FROM pgext.servers x WHERE x.id = $1;
  FOR e IN SELECT * FROM pgext.health_spec_entries(s.spec) LOOP
    u := CASE WHEN s.ipv4 IS NOT NULL THEN pg_catalog.replace(e.url, '{ipv4}', s.ipv4) ELSE e.url END;
    keep := keep || pgext.health_check_put(s, u, e.kind, e.every, e.timeout,
                                           s.ipv4 IS NOT NULL OR pg_catalog.strpos(e.url, '{ipv4}') = 0, true,
                                           CASE WHEN s.ipv4 IS NULL AND pg_catalog.strpos(e.url, '{ipv4}') > 0
                                                THEN 'no IPv4 address known for {ipv4}' END);
  END LOOP;
  DELETE FROM pgext.health_checks x WHERE x.server_id = $1 AND x.from_spec AND x.id <> ALL (keep);
  RETURN pg_catalog.cardinality(keep);
END
$$;

-- AFTER a server's state changes (a server with checks or spec.health): the
-- worker reloads (version bump); configuring: the spec's checks are added;
-- active from configuring/creating: grace starts; active from paused: checks
-- start over (unknown) with grace; paused/failed/deleting: checks unknown,
-- agent unknown, a queued recovery cleared; deleted: its checks go (the
-- events stay).
CREATE FUNCTION pgext.health_servers_state() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  grace interval := pg_catalog.current_setting('pgext.health_grace')::interval;
BEGIN
  IF NOT (pg_catalog.jsonb_typeof(NEW.spec -> 'health') IN ('object', 'array')
          OR EXISTS (SELECT FROM pgext.health_checks c WHERE c.server_id = NEW.id)) THEN
    RETURN NULL;
  END IF;
  PERFORM pgext.health_config_bump();
  IF NEW.state = 'configuring' THEN
    PERFORM pgext.health_checks_from_spec(NEW.id);
  ELSIF NEW.state = 'active' AND OLD.state IN ('configuring', 'creating') THEN
    UPDATE pgext.health_checks c SET grace_until = NEW.state_since + grace WHERE c.server_id = NEW.id;
  ELSIF NEW.state = 'active' OR NEW.state IN ('paused', 'failed', 'deleting') THEN
    UPDATE pgext.health_checks c
       SET state = 'unknown', state_since = CASE WHEN c.state <> 'unknown' THEN NEW.state_since ELSE c.state_since END,
           consecutive_failures = 0, consecutive_successes = 0,
           grace_until = CASE WHEN NEW.state = 'active' THEN NEW.state_since + grace END
     WHERE c.server_id = NEW.id;
    IF EXISTS (SELECT FROM pgext.health_checks c WHERE c.server_id = NEW.id) THEN
      PERFORM pgext.health_agent_update(NEW.id, NEW.state_since);
    END IF;
    IF NEW.state <> 'active' THEN
      UPDATE pgext.servers x SET recovery_action = NULL WHERE x.id = NEW.id AND x.recovery_action IS NOT NULL;
    END IF;
  ELSIF NEW.state = 'deleted' THEN
    DELETE FROM pgext.health_checks c WHERE c.server_id = NEW.id;
    DELETE FROM pgext.health_servers y WHERE y.server_id = NEW.id;
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER health_servers_state AFTER UPDATE OF state ON pgext.servers
  FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
  EXECUTE FUNCTION pgext.health_servers_state();

-- The worker: the checks to poll: enabled, of a server configuring or
-- active that is meant to be active (a paused, failed or deleting server is
-- never polled, so never "recovered").
CREATE FUNCTION pgext.health_worker_load()
RETURNS TABLE (id bigint, url text, every_ms integer, timeout_ms integer, consecutive_failures integer, state text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
  SELECT c.id, c.url,
         (pg_catalog.date_part('epoch', c.every) * 1000)::integer,
         (pg_catalog.date_part('epoch', c.timeout) * 1000)::integer,
         c.consecutive_failures, c.state
    FROM pgext.health_checks c JOIN pgext.servers s ON s.id = c.server_id
   WHERE c.enabled AND s.state IN ('configuring', 'active') AND s.desired_state = 'active'
   ORDER BY c.id
$$;

-- The worker: one batch of results (arrays of equal length; statuses
-- element 0 = no HTTP response; errors element NULL when ok).  ids that no
-- longer exist are ignored; when one id comes twice only its later result is
-- applied.  One set-based UPDATE for all; per-row work only for checks whose
-- state changed (an event each, then the agent state of their servers) and
-- for configuring servers whose shallow check passed (they become active).
-- A failure counts when the server is active and the check is out of grace;
-- otherwise it is counted in ignored_total only.  Returns how many checks
-- changed state.
CREATE FUNCTION pgext.health_record(ids bigint[], ok boolean[], statuses integer[], latency_ms integer[],
                                    errors text[], at timestamptz DEFAULT pg_catalog.now())
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  n integer := pg_catalog.cardinality($1);
  bad_after integer := pg_catalog.current_setting('pgext.health_unhealthy_after')::integer;
  good_after integer := pg_catalog.current_setting('pgext.health_healthy_after')::integer;
  changed integer;
  agents bigint[];
  configured bigint[];
  sid bigint;
BEGIN
  IF $1 IS NULL OR $2 IS NULL OR $3 IS NULL OR $4 IS NULL OR $5 IS NULL OR $6 IS NULL THEN
    RAISE EXCEPTION 'ids, ok, statuses, latency_ms, errors and at must not be NULL' USING ERRCODE = '22004';
  END IF;
  IF pg_catalog.cardinality($2) <> n OR pg_catalog.cardinality($3) <> n OR pg_catalog.cardinality($4) <> n
     OR pg_catalog.cardinality($5) <> n THEN
    RAISE EXCEPTION 'the result arrays must have the same length (ids %, ok %, statuses %, latency_ms %, errors %)',
      n, pg_catalog.cardinality($2), pg_catalog.cardinality($3), pg_catalog.cardinality($4),
      pg_catalog.cardinality($5) USING ERRCODE = '22023';
  END IF;
  IF n = 0 THEN
    RETURN 0;
  END IF;
  IF pg_catalog.array_position($1, NULL) IS NOT NULL OR pg_catalog.array_position($2, NULL) IS NOT NULL THEN
    RAISE EXCEPTION 'ids and ok must not contain NULL' USING ERRCODE = '22004';
  END IF;
  IF EXISTS (SELECT FROM pg_catalog.unnest($3) AS x(s) WHERE x.s <> 0 AND (x.s < 100 OR x.s > 599))
     OR EXISTS (SELECT FROM pg_catalog.unnest($4) AS x(l) WHERE x.l < 0) THEN
    RAISE EXCEPTION 'statuses must be 0 (no response) or an HTTP status 100 to 599, latency_ms not negative'
      USING ERRCODE = '22023';
  END IF;

  WITH r AS (
    SELECT DISTINCT ON (u.id) u.id, u.ok, NULLIF(u.status, 0) AS status, u.latency, u.err
      FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3),
                     pg_catalog.unnest($4), pg_catalog.unnest($5)) WITH ORDINALITY AS u(id, ok, status, latency, err, o)
     ORDER BY u.id, u.o DESC
  ), v AS (
    SELECT r.*, o.state AS old_state, s.state AS server_state,
           s.state IN ('configuring', 'active') AS live,
           NOT r.ok AND s.state = 'active' AND (o.grace_until IS NULL OR $6 >= o.grace_until) AS counts
      FROM r JOIN pgext.health_checks o ON o.id = r.id JOIN pgext.servers s ON s.id = o.server_id
  ), u AS (
    UPDATE pgext.health_checks c
       SET checks_total = c.checks_total + 1,
           failures_total = c.failures_total + (NOT v.ok)::integer,
           ignored_total = c.ignored_total + (NOT v.ok AND NOT v.counts)::integer,
           last_checked_at = $6,
           last_ok_at = CASE WHEN v.ok THEN $6 ELSE c.last_ok_at END,
           last_latency_ms = v.latency,
           last_status = v.status,
           last_error = CASE WHEN v.ok THEN NULL ELSE pg_catalog.left(COALESCE(v.err, 'HTTP ' || v.status, 'network'), 1000) END,
           consecutive_failures = CASE WHEN v.ok THEN 0 WHEN v.counts THEN c.consecutive_failures + 1
                                       ELSE c.consecutive_failures END,
           consecutive_successes = CASE WHEN v.ok THEN c.consecutive_successes + 1 WHEN v.counts THEN 0
                                        ELSE c.consecutive_successes END,
           state = CASE WHEN NOT v.live THEN c.state
                        WHEN v.ok AND (c.state = 'unknown' OR c.consecutive_successes + 1 >= good_after) THEN 'healthy'
                        WHEN v.counts AND c.consecutive_failures + 1 >= bad_after THEN 'unhealthy'
                        ELSE c.state END,
           state_since = CASE WHEN NOT v.live THEN c.state_since
                              WHEN v.ok AND c.state <> 'healthy'
                                   AND (c.state = 'unknown' OR c.consecutive_successes + 1 >= good_after) THEN $6
                              WHEN v.counts AND c.state <> 'unhealthy' AND c.consecutive_failures + 1 >= bad_after THEN $6
                              ELSE c.state_since END
      FROM v
     WHERE c.id = v.id
    RETURNING c.id, c.server_id, c.account_id, c.kind, c.url, c.state, v.old_state, v.ok, v.server_state,
              c.consecutive_failures, c.consecutive_successes, c.last_error
  ), ev AS (
    INSERT INTO pgext.health_events (at, kind, server_id, check_id, account_id, from_state, to_state, detail)
    SELECT $6, 'check', u.server_id, u.id, u.account_id, u.old_state, u.state,
           CASE WHEN u.ok THEN pg_catalog.format('%s check %s passed%s', u.kind, u.url,
                                 CASE WHEN u.consecutive_successes > 1
                                      THEN pg_catalog.format(' %s times in a row', u.consecutive_successes) ELSE '' END)
                ELSE pg_catalog.format('%s check %s failed %s times in a row: %s', u.kind, u.url,
                                       u.consecutive_failures, u.last_error) END
      FROM u WHERE u.state IS DISTINCT FROM u.old_state
     ORDER BY u.id
  )
  SELECT pg_catalog.count(*) FILTER (WHERE u.state IS DISTINCT FROM u.old_state),
         pg_catalog.array_agg(DISTINCT u.server_id) FILTER (WHERE u.state IS DISTINCT FROM u.old_state),
         pg_catalog.array_agg(DISTINCT u.server_id) FILTER (WHERE u.server_state = 'configuring' AND u.ok
                                                              AND u.kind = 'shallow')
    INTO changed, agents, configured
    FROM u;

  FOREACH sid IN ARRAY COALESCE(configured, '{}') LOOP
    PERFORM pgext.server_report(sid, 'configured', '{"reason": "configured: first health check passed"}', NULL, $6);
  END LOOP;
  FOREACH sid IN ARRAY COALESCE(agents, '{}') LOOP
    PERFORM pgext.health_agent_update(sid, $6);
  END LOOP;
  RETURN changed;
END
$$;

-- Internal: recovery actions queued but not handed out yet are dropped
-- (operator pause, breaker open).
CREATE FUNCTION pgext.health_recovery_cancel(at timestamptz) RETURNS integer
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  sid bigint;
  n integer := 0;
BEGIN
  FOR sid IN SELECT x.id FROM pgext.servers x
              WHERE x.recovery_action IS NOT NULL AND x.claimed_by IS NULL ORDER BY x.id FOR UPDATE
  LOOP
    UPDATE pgext.servers x SET recovery_action = NULL WHERE x.id = sid;
    PERFORM pgext.server_replan(sid, $1);
    n := n + 1;
  END LOOP;
  RETURN n;
END
$$;

-- The worker's task 'health_recover' (every 5 s, and at once after a batch
-- that changed states).  (1) The breaker opens when many servers turned
-- unhealthy within pgext.health_breaker_window: at least
-- health_breaker_min_servers and more than health_breaker_share of the
-- active servers with checks, or of one location's
-- (health_breaker_location_share); it closes after health_breaker_quiet
-- without a server turning unhealthy.  (2) Unless paused or open: each
-- unhealthy (shallow) active server due for it gets a reboot (first
-- attempt) or a reset, with backoff base * 2^(attempt-1) up to the max, at
-- most health_recovery_per_minute in the fleet.  Deep failures never queue
-- anything.  Returns the recovery actions queued.
CREATE FUNCTION pgext.health_recover(at timestamptz DEFAULT pg_catalog.now()) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  b pgext.health_breaker;
  win interval := pg_catalog.current_setting('pgext.health_breaker_window')::interval;
  quiet interval := pg_catalog.current_setting('pgext.health_breaker_quiet')::interval;
  share double precision := pg_catalog.current_setting('pgext.health_breaker_share')::double precision;
  loc_share double precision := pg_catalog.current_setting('pgext.health_breaker_location_share')::double precision;
  min_servers integer := pg_catalog.current_setting('pgext.health_breaker_min_servers')::integer;
  per_minute integer := pg_catalog.current_setting('pgext.health_recovery_per_minute')::integer;
  base interval := pg_catalog.current_setting('pgext.health_recovery_backoff_base')::interval;
  cap interval := pg_catalog.current_setting('pgext.health_recovery_backoff_max')::interval;
  win_start pg_catalog.timestamptz;
  turned integer;
  active integer;
  l record;
  why pg_catalog.text;
  detail pg_catalog.jsonb;
  budget integer;
  h record;
  act pg_catalog.text;
  n integer := 0;
BEGIN
  IF $1 IS NULL THEN
    RAISE EXCEPTION 'at must not be NULL' USING ERRCODE = '22004';
  END IF;
  INSERT INTO pgext.health_breaker (one) VALUES (true) ON CONFLICT (one) DO NOTHING;
  SELECT * INTO b FROM pgext.health_breaker y FOR UPDATE;

  -- 1. the breaker; after it closed, only servers that turned unhealthy since
  -- count (else a window longer than the quiet period would reopen it at once)
  IF b.state = 'closed' THEN
    win_start := GREATEST($1 - win, COALESCE(b.since, '-infinity'));
    SELECT pg_catalog.count(DISTINCT e.server_id) INTO turned FROM pgext.health_events e
     WHERE e.kind = 'agent' AND e.to_state = 'unhealthy' AND e.at > win_start AND e.at <= $1;
    SELECT pg_catalog.count(*) INTO active FROM pgext.health_servers y JOIN pgext.servers s ON s.id = y.server_id
     WHERE s.state = 'active';
    IF turned >= min_servers AND turned > share * active THEN
      why := pg_catalog.format('%s of %s active servers turned unhealthy within %s', turned, active, win);
      detail := pg_catalog.jsonb_build_object('unhealthy', turned, 'active', active, 'window', win::pg_catalog.text);
    ELSE
      SELECT q.location, q.turned, q.active INTO l FROM (
        SELECT s.location,
               pg_catalog.count(*) FILTER (WHERE EXISTS (
                 SELECT FROM pgext.health_events e
                  WHERE e.kind = 'agent' AND e.to_state = 'unhealthy' AND e.server_id = s.id
                    AND e.at > win_start AND e.at <= $1)) AS turned,
               pg_catalog.count(*) FILTER (WHERE s.state = 'active') AS active
          FROM pgext.health_servers y JOIN pgext.servers s ON s.id = y.server_id
         WHERE s.location IS NOT NULL
         GROUP BY s.location) q
       WHERE q.turned >= min_servers AND q.turned > loc_share * q.active
       ORDER BY q.turned DESC, q.location LIMIT 1;
      IF FOUND THEN
        why := pg_catalog.format('%s of %s active servers in %s turned unhealthy within %s',
                                 l.turned, l.active, l.location, win);
        detail := pg_catalog.jsonb_build_object('location', l.location, 'unhealthy', l.turned, 'active', l.active,
                                                'window', win::pg_catalog.text);
      END IF;
    END IF;
    IF why IS NOT NULL THEN
      UPDATE pgext.health_breaker y SET state = 'open', since = $1, reason = why RETURNING * INTO b;
      INSERT INTO pgext.health_events (at, kind, from_state, to_state, detail)
      VALUES ($1, 'breaker', 'closed', 'open', why || '; recovery holds until none turns unhealthy for ' || quiet);
      PERFORM pgext.alert_raise('health', 'breaker_open', detail || pg_catalog.jsonb_build_object('reason', why), $1);
      PERFORM pgext.health_recovery_cancel($1);
    END IF;
  ELSIF NOT EXISTS (SELECT FROM pgext.health_events e
                     WHERE e.kind = 'agent' AND e.to_state = 'unhealthy' AND e.at > $1 - quiet AND e.at <= $1) THEN
    why := pg_catalog.format('no server turned unhealthy for %s', quiet);
    UPDATE pgext.health_breaker y SET state = 'closed', since = $1, reason = why RETURNING * INTO b;
    INSERT INTO pgext.health_events (at, kind, from_state, to_state, detail) VALUES ($1, 'breaker', 'open', 'closed', why);
    PERFORM pgext.alert_raise('health', 'breaker_closed', pg_catalog.jsonb_build_object('reason', why), $1);
  END IF;

  -- 2. recoveries
  IF b.paused OR b.state = 'open' THEN
    RETURN 0;
  END IF;
  SELECT per_minute - pg_catalog.count(*) INTO budget FROM pgext.health_events e
   WHERE e.kind = 'recovery' AND e.at > $1 - interval '1 minute' AND e.at <= $1;
  IF budget <= 0 THEN
    RETURN 0;
  END IF;
  FOR h IN
    SELECT y.server_id, y.account_id, y.recovery_attempts, y.agent_reason FROM pgext.health_servers y
      JOIN pgext.servers s ON s.id = y.server_id
     WHERE y.agent = 'unhealthy' AND s.state = 'active' AND s.desired_state = 'active'
       AND s.hetzner_id IS NOT NULL AND s.recovery_action IS NULL
       AND (y.next_recovery_at IS NULL OR y.next_recovery_at <= $1)
     ORDER BY y.next_recovery_at NULLS FIRST, y.agent_since, y.server_id
     LIMIT budget
       FOR UPDATE OF y, s SKIP LOCKED
  LOOP
    act := CASE WHEN h.recovery_attempts = 0 THEN 'reboot' ELSE 'reset' END;
    UPDATE pgext.servers x SET recovery_action = act WHERE x.id = h.server_id;
    PERFORM pgext.server_replan(h.server_id, $1);
    UPDATE pgext.health_servers y
       SET recovery_attempts = y.recovery_attempts + 1,
           next_recovery_at = $1 + LEAST(cap, base * pg_catalog.power(2, LEAST(y.recovery_attempts, 30))::double precision),
           last_recovery_at = $1, last_recovery_action = act
     WHERE y.server_id = h.server_id;
    INSERT INTO pgext.health_events (at, kind, server_id, account_id, from_state, to_state, detail)
    VALUES ($1, 'recovery', h.server_id, h.account_id, 'unhealthy', act,
            pg_catalog.format('attempt %s: %s', h.recovery_attempts + 1, h.agent_reason));
    IF h.recovery_attempts + 1 = 5 THEN
      PERFORM pgext.alert_raise('health', 'recovery_not_working',
                                pg_catalog.jsonb_build_object('server', h.server_id, 'attempts', 5,
                                                              'reason', h.agent_reason), $1);
    END IF;
    n := n + 1;
  END LOOP;
  RETURN n;
END
$$;

-- Operators: stop queuing recoveries (and drop those queued but not sent);
-- an event and an alert.  true when it was not paused.
CREATE FUNCTION pgext.health_recovery_pause(reason text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  b pgext.health_breaker;
BEGIN
  IF $1 IS NULL THEN
    RAISE EXCEPTION 'reason must not be NULL' USING ERRCODE = '22004';
  END IF;
  IF pg_catalog.btrim($1) = '' OR pg_catalog.length($1) > 1000 THEN
    RAISE EXCEPTION 'pausing recovery needs a reason (1 to 1000 characters)' USING ERRCODE = '22023',
      HINT = 'Say why, e.g. ''Hetzner incident in fsn1''; it is kept in pgext.health_events.';
  END IF;
  INSERT INTO pgext.health_breaker (one) VALUES (true) ON CONFLICT (one) DO NOTHING;
  SELECT * INTO b FROM pgext.health_breaker y FOR UPDATE;
  IF b.paused THEN
    RETURN false;
  END IF;
  UPDATE pgext.health_breaker y
     SET paused = true, paused_at = pg_catalog.now(), paused_by = pg_catalog.session_user(), paused_reason = $1;
  INSERT INTO pgext.health_events (at, kind, from_state, to_state, detail)
  VALUES (pg_catalog.now(), 'pause', 'running', 'paused', pg_catalog.format('by %s: %s', pg_catalog.session_user(), $1));
  PERFORM pgext.alert_raise('health', 'recovery_paused',
                            pg_catalog.jsonb_build_object('by', pg_catalog.session_user(), 'reason', $1), pg_catalog.now());
  PERFORM pgext.health_recovery_cancel(pg_catalog.now());
  RETURN true;
END
$$;

-- Operators: recovery goes on; an event and an alert.  true when it was paused.
CREATE FUNCTION pgext.health_recovery_resume() RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
BEGIN
  UPDATE pgext.health_breaker y
     SET paused = false, paused_at = NULL, paused_by = NULL, paused_reason = NULL
   WHERE y.paused;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  INSERT INTO pgext.health_events (at, kind, from_state, to_state, detail)
  VALUES (pg_catalog.now(), 'pause', 'paused', 'running', 'resumed by ' || pg_catalog.session_user());
  PERFORM pgext.alert_raise('health', 'recovery_resumed',
                            pg_catalog.jsonb_build_object('by', pg_catalog.session_user()), pg_catalog.now());
  RETURN true;
END
$$;

-- The worker's task 'health_retention' (hourly): events older than
-- pgext.health_history_retention go.  Returns how many.
CREATE FUNCTION pgext.health_retention(at timestamptz DEFAULT pg_catalog.now()) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  n bigint;
BEGIN
  IF $1 IS NULL THEN
    RAISE EXCEPTION 'at must not be NULL' USING ERRCODE = '22004';
  END IF;
  DELETE FROM pgext.health_events e
   WHERE e.at < $1 - pg_catalog.current_setting('pgext.health_history_retention')::interval;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END
$$;

-- Per server (not deleted) with checks or spec.health: both layers, the VPS
-- (servers.state) and the agent, the worst state of its shallow and deep
-- checks (unhealthy, unknown, healthy), and its recoveries.
CREATE VIEW pgext.health_status WITH (security_invoker = true) AS
SELECT s.id AS server, s.account_id, s.name, s.location, s.state AS vps_state, s.desired_state,
       COALESCE(y.agent, 'unknown') AS agent, y.agent_since, y.agent_reason,
       c.shallow, c.deep, COALESCE(c.checks, 0) AS checks, c.last_checked_at, c.last_error,
       COALESCE(y.recovery_attempts, 0) AS recovery_attempts, y.next_recovery_at, y.last_recovery_action,
       y.last_recovery_at, s.recovery_action
  FROM pgext.servers s
  LEFT JOIN pgext.health_servers y ON y.server_id = s.id
  LEFT JOIN LATERAL (
    SELECT (pg_catalog.array_agg(k.state ORDER BY k.state = 'unhealthy' DESC, k.state = 'unknown' DESC)
              FILTER (WHERE k.kind = 'shallow'))[1] AS shallow,
           (pg_catalog.array_agg(k.state ORDER BY k.state = 'unhealthy' DESC, k.state = 'unknown' DESC)
              FILTER (WHERE k.kind = 'deep'))[1] AS deep,
           pg_catalog.count(*) AS checks,
           pg_catalog.max(k.last_checked_at) AS last_checked_at,
           (pg_catalog.array_agg(k.last_error ORDER BY k.state = 'unhealthy' DESC, k.kind = 'shallow' DESC,
                                                   k.consecutive_failures DESC, k.id)
              FILTER (WHERE k.last_error IS NOT NULL))[1] AS last_error
      FROM pgext.health_checks k WHERE k.server_id = s.id) c ON true
 WHERE s.state <> 'deleted'
   AND (c.checks > 0 OR pg_catalog.jsonb_typeof(s.spec -> 'health') IN ('object', 'array'));

-- The fleet in one row: agent states of configuring and active servers,
-- checks, the worker's rate (NULL without a polling worker), the breaker,
-- the operator's pause and the recoveries of the last hour.
CREATE VIEW pgext.health_fleet WITH (security_invoker = true) AS
SELECT st.servers, st.healthy, st.unhealthy, st.degraded, st.unknown,
       (SELECT pg_catalog.count(*) FROM pgext.health_checks) AS checks,
       p.checks_per_second,
       COALESCE(b.state, 'closed') AS breaker, b.since AS breaker_since, b.reason AS breaker_reason,
       COALESCE(b.paused, false) AS recovery_paused,
       (SELECT pg_catalog.count(*) FROM pgext.health_events e
         WHERE e.kind = 'recovery' AND e.at > pg_catalog.now() - interval '1 hour') AS recoveries_last_hour
  FROM (SELECT pg_catalog.count(*) AS servers,
               pg_catalog.count(*) FILTER (WHERE h.agent = 'healthy') AS healthy,
               pg_catalog.count(*) FILTER (WHERE h.agent = 'unhealthy') AS unhealthy,
               pg_catalog.count(*) FILTER (WHERE h.agent = 'degraded') AS degraded,
               pg_catalog.count(*) FILTER (WHERE h.agent = 'unknown') AS unknown
          FROM pgext.health_status h WHERE h.vps_state IN ('configuring', 'active')) st
  CROSS JOIN pgext.health_poller() p
  LEFT JOIN pgext.health_breaker b ON true;

REVOKE ALL ON pgext.health_checks, pgext.health_servers, pgext.health_events, pgext.health_breaker,
  pgext.health_config, pgext.health_status, pgext.health_fleet FROM PUBLIC;
REVOKE ALL ON FUNCTION
  pgext.health_poller(),
  pgext.health_config_bump(),
  pgext.health_checks_changed(),
  pgext.health_config_version(),
  pgext.health_check_valid(text, text, interval, interval, text),
  pgext.health_spec_interval(jsonb, text),
  pgext.health_spec_entries(jsonb),
  pgext.health_spec_check(jsonb),
  pgext.health_agent_update(bigint, timestamptz),
  pgext.health_check_put(pgext.servers, text, text, interval, interval, boolean, boolean, text),
  pgext.health_check_add(bigint, text, text, interval, interval),
  pgext.health_check_update(bigint, text, interval, interval, boolean),
  pgext.health_check_remove(bigint),
  pgext.health_checks_from_spec(bigint),
  pgext.health_servers_state(),
  pgext.health_worker_load(),
  pgext.health_record(bigint[], boolean[], integer[], integer[], text[], timestamptz),
  pgext.health_recovery_cancel(timestamptz),
  pgext.health_recover(timestamptz),
  pgext.health_recovery_pause(text),
  pgext.health_recovery_resume(),
  pgext.health_retention(timestamptz)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  pgext.health_check_add(bigint, text, text, interval, interval),
  pgext.health_check_update(bigint, text, interval, interval, boolean),
  pgext.health_check_remove(bigint)
  TO pgext_app, pgext_admin;
GRANT EXECUTE ON FUNCTION
  pgext.health_poller(),
  pgext.health_config_version(),
  pgext.health_worker_load(),
  pgext.health_record(bigint[], boolean[], integer[], integer[], text[], timestamptz),
  pgext.health_recover(timestamptz),
  pgext.health_recovery_pause(text),
  pgext.health_recovery_resume(),
  pgext.health_retention(timestamptz)
  TO pgext_admin;
GRANT SELECT ON pgext.health_checks, pgext.health_servers, pgext.health_events, pgext.health_breaker,
  pgext.health_config, pgext.health_status, pgext.health_fleet TO pgext_admin;

-- Tables holding state are configuration tables, so pg_dump keeps their
-- rows; identity sequences too (sql/backups.sql checks).
SELECT pg_catalog.pg_extension_config_dump('pgext.health_checks', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('pgext.health_checks', 'id'), '');
SELECT pg_catalog.pg_extension_config_dump('pgext.health_servers', '');
SELECT pg_catalog.pg_extension_config_dump('pgext.health_events', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('pgext.health_events', 'id'), '');
SELECT pg_catalog.pg_extension_config_dump('pgext.health_breaker', '');
SELECT pg_catalog.pg_extension_config_dump('pgext.health_config', '');

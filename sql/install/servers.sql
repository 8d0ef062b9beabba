------------------------------------------------------------------------------
-- Servers: the provisioning state machine, its history, the work queue the
-- worker carries out, and the billing policy applied to it (src/servers/)
------------------------------------------------------------------------------

-- The allowed state changes, in one place.  The state trigger below checks
-- every write against it (pgext's functions, an operator's direct UPDATE).
--   requested -> creating -> configuring -> active <-> paused -> deleting -> deleted
--   creating -> active directly when the spec has no health check
--   failed: from every working state; from failed a create is retried
--   (requested), a server that may exist is deleted (deleting), or nothing
--   was ever created (deleted).
-- Its rows come from this script, so it is not marked for pg_dump.
CREATE TABLE pgext.server_transitions (
  from_state text NOT NULL,
  to_state   text NOT NULL,
  PRIMARY KEY (from_state, to_state)
);
INSERT INTO pgext.server_transitions (from_state, to_state) VALUES
  ('requested', 'creating'), ('requested', 'failed'), ('requested', 'deleting'), ('requested', 'deleted'),
  ('creating', 'configuring'), ('creating', 'active'), ('creating', 'failed'), ('creating', 'deleting'),
  ('configuring', 'active'), ('configuring', 'failed'), ('configuring', 'deleting'),
  ('active', 'paused'), ('active', 'failed'), ('active', 'deleting'),
  ('paused', 'active'), ('paused', 'failed'), ('paused', 'deleting'),
  ('deleting', 'deleted'), ('deleting', 'failed'),
  ('failed', 'requested'), ('failed', 'deleting'), ('failed', 'deleted');

-- One row per server an account asked for (server_request), forever: a
-- deleted server stays as the record of what existed.
--   state / desired_state   observed and wanted (active | paused | deleted)
--   state_reason            why the last transition happened; desired_reason
--                           why the policy wants desired_state
--   name                    the Hetzner name, derived from provision_key
--                           (pgext.server_name): a retried create can never
--                           make a second server
-- Work queue (server_claim / server_report):
--   next_action      create | poll_action | lookup | power_off | power_on |
--                    delete, or NULL when nothing is to be done
--   next_attempt_at  when it is due; attempts: tries of this action so far
--   claim            counts claims; a report names the claim it answers
--   claimed_by / claimed_until / claimed_action   the claim in progress
--   location_index   which of spec.locations a create tries (capacity fallback)
--   create_sent      a create was handed out: a server may exist by that name
--   create_unknown   a create was handed out and its answer never arrived (no
--                    response, 5xx, unreadable, or its claim was taken back):
--                    the server is looked up by name before any new create
--   capacity_rounds  times every location was out of capacity (the backoff)
--   hetzner_status   the server's status at Hetzner when last seen (lookup,
--                    reconcile list); a power state that drifted is corrected
--   create_retries   failed creates retried so far; retry_at: the next one
--   needs_cleanup    a failed server that may exist at Hetzner (deleted by the worker)
--   recovery_action  reboot | reset queued by fleet health (pgext.health_recover)
--                    until the worker reports it sent
CREATE TABLE pgext.servers (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  account_id      uuid NOT NULL REFERENCES pgext.accounts (id),
  provision_key   text NOT NULL UNIQUE,
  name            text NOT NULL UNIQUE,
  spec            jsonb NOT NULL,
  spec_hash       text NOT NULL,
  state           text NOT NULL DEFAULT 'requested',
  desired_state   text NOT NULL DEFAULT 'active',
  state_reason    text,
  desired_reason  text,
  state_since     timestamptz NOT NULL DEFAULT pg_catalog.now(),
  active_since    timestamptz,
  hetzner_id      bigint UNIQUE,
  location        text,
  location_index  integer NOT NULL DEFAULT 0,
  ipv4            text,
  last_error      text,
  next_action     text,
  action_id       bigint,
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz,
  claim           bigint NOT NULL DEFAULT 0,
  claimed_action  text,
  claimed_by      text,
  claimed_until   timestamptz,
  create_sent     boolean NOT NULL DEFAULT false,
  create_unknown  boolean NOT NULL DEFAULT false,
  capacity_rounds integer NOT NULL DEFAULT 0,
  hetzner_status  text,
  create_retries  integer NOT NULL DEFAULT 0,
  retry_at        timestamptz,
  needs_cleanup   boolean NOT NULL DEFAULT false,
  recovery_action text,
  created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
  CONSTRAINT servers_state_valid CHECK (state IN ('requested', 'creating', 'configuring', 'active',
                                                  'paused', 'deleting', 'deleted', 'failed')),
  CONSTRAINT servers_desired_state_valid CHECK (desired_state IN ('active', 'paused', 'deleted')),
  CONSTRAINT servers_next_action_valid CHECK (next_action IN ('create', 'poll_action', 'lookup',
                                                              'power_off', 'power_on', 'delete',
                                                              'reboot', 'reset')),
  CONSTRAINT servers_recovery_action_valid CHECK (recovery_action IN ('reboot', 'reset')),
  CONSTRAINT servers_name_valid CHECK (name ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
  CONSTRAINT servers_provision_key_valid
    CHECK (provision_key <> '' AND pg_catalog.length(provision_key) <= 255),
  CONSTRAINT servers_claim_valid CHECK ((claimed_by IS NULL) = (claimed_until IS NULL)
                                        AND (claimed_by IS NULL) = (claimed_action IS NULL))
);
CREATE INDEX servers_account ON pgext.servers (account_id);
CREATE INDEX servers_due ON pgext.servers (next_attempt_at, id) WHERE next_action IS NOT NULL;
CREATE INDEX servers_working ON pgext.servers (state) WHERE state <> 'deleted';

-- Every state change: written by the state trigger, never by hand.
-- actor is the role that made it, or 'worker' (server_report) / 'policy'
-- (server_reconcile); at is the time of the change (the functions' `at`).
CREATE TABLE pgext.server_history (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  server_id  bigint NOT NULL REFERENCES pgext.servers (id),
  from_state text,
  to_state   text NOT NULL,
  reason     text NOT NULL,
  actor      text NOT NULL,
  at         timestamptz NOT NULL
);
CREATE INDEX server_history_server ON pgext.server_history (server_id, id);

-- The Hetzner name of a provision key: 'pgext-' and the first 16 hex digits
-- (64 bits) of its SHA-256.  A valid hostname label (lowercase, 22 chars),
-- stable across retries, restores and upgrades.  Two keys collide with
-- probability ~n^2/2^65 (about 1 in 10^8 at 60,000 servers); the UNIQUE
-- constraint on servers.name refuses a collision inside one database.
CREATE FUNCTION pgext.server_name(provision_key text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT SET search_path = pg_catalog, pgext, pg_temp AS $$
  SELECT 'pgext-' || pg_catalog.left(pg_catalog.encode(
           pg_catalog.sha256(pg_catalog.convert_to($1, 'UTF8')), 'hex'), 16)
$$;

-- BEFORE INSERT OR UPDATE OF state: the one check every state write passes.
-- A new row starts 'requested'; a change must be listed in
-- pgext.server_transitions.  Stamps state_since (now() for a direct UPDATE
-- that does not set it; pgext's functions pass their `at`), active_since on
-- the first 'active', and state_reason from pgext.transition_reason
-- ('direct update' when unset).
CREATE FUNCTION pgext.servers_state_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  reason pg_catalog.text := NULLIF(pg_catalog.current_setting('pgext.transition_reason', true), '');
  allowed pg_catalog.text;
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NEW.state IS DISTINCT FROM 'requested' THEN
      RAISE EXCEPTION 'a new server starts in state ''requested'', not %', pg_catalog.quote_nullable(NEW.state)
        USING ERRCODE = '55000', HINT = 'Ask for servers with pgext.server_request(account, provision_key, spec).';
    END IF;
    NEW.state_reason := COALESCE(reason, NEW.state_reason, 'requested');
    RETURN NEW;
  END IF;
  IF NEW.state IS NOT DISTINCT FROM OLD.state THEN
    RETURN NEW;
  END IF;
  IF NOT EXISTS (SELECT FROM pgext.server_transitions t
                  WHERE t.from_state = OLD.state AND t.to_state = NEW.state) THEN
    SELECT pg_catalog.string_agg(t.to_state, ', ' ORDER BY t.to_state) INTO allowed
      FROM pgext.server_transitions t WHERE t.from_state = OLD.state;
    RAISE EXCEPTION 'server % cannot go from % to %', OLD.id, OLD.state, pg_catalog.quote_nullable(NEW.state)
      USING ERRCODE = '55000',
            DETAIL = pg_catalog.format('Allowed from %s: %s.', OLD.state, COALESCE(allowed, 'nothing (final state)')),
            HINT = 'The transitions are listed in pgext.server_transitions; move a server by hand with pgext.server_transition(server, to_state, reason).';
  END IF;
  IF reason IS NULL THEN
    reason := 'direct update';
    IF NEW.state_since IS NOT DISTINCT FROM OLD.state_since THEN
      NEW.state_since := pg_catalog.now();
    END IF;
  END IF;
  NEW.state_reason := reason;
  IF NEW.state = 'active' AND NEW.active_since IS NULL THEN
    NEW.active_since := NEW.state_since;
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER servers_state_guard BEFORE INSERT OR UPDATE OF state ON pgext.servers
  FOR EACH ROW EXECUTE FUNCTION pgext.servers_state_guard();

-- AFTER a state change: the history row, and the outbox row apps react to
-- (server_active, server_resumed, server_paused, server_failed,
-- server_deleting, server_deleted; detail is the reason; for server_active
-- until is active_since: the app starts billing only then).
CREATE FUNCTION pgext.servers_state_record() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  actor pg_catalog.text := COALESCE(NULLIF(pg_catalog.current_setting('pgext.transition_actor', true), ''),
                                    pg_catalog.current_user());
  from_state pg_catalog.text := CASE WHEN TG_OP = 'UPDATE' THEN OLD.state END;
  kind pg_catalog.text;
BEGIN
  INSERT INTO pgext.server_history (server_id, from_state, to_state, reason, actor, at)
  VALUES (NEW.id, from_state, NEW.state, NEW.state_reason, actor, NEW.state_since);
  kind := CASE NEW.state
            WHEN 'active' THEN CASE WHEN from_state = 'paused' THEN 'server_resumed' ELSE 'server_active' END
            WHEN 'paused' THEN 'server_paused'
            WHEN 'failed' THEN 'server_failed'
            WHEN 'deleting' THEN 'server_deleting'
            WHEN 'deleted' THEN 'server_deleted' END;
  IF kind IS NOT NULL THEN
    INSERT INTO pgext.outbox (account_id, kind, server_id, until, detail)
    VALUES (NEW.account_id, kind, NEW.id,
            CASE WHEN kind = 'server_active' THEN NEW.active_since END, NEW.state_reason);
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER servers_state_recorded AFTER INSERT ON pgext.servers
  FOR EACH ROW EXECUTE FUNCTION pgext.servers_state_record();
CREATE TRIGGER servers_state_changed AFTER UPDATE OF state ON pgext.servers
  FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
  EXECUTE FUNCTION pgext.servers_state_record();

-- Internal: move a server to a state at a time, with a reason and an actor
-- for the history (the notes are cleared again right after).
CREATE FUNCTION pgext.server_move(server bigint, to_state text, reason text, actor text, at timestamptz)
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pgext, pg_temp AS $$
BEGIN
  PERFORM pg_catalog.set_config('pgext.transition_reason', COALESCE(NULLIF($3, ''), 'no reason given'), true);
  PERFORM pg_catalog.set_config('pgext.transition_actor', $4, true);
  UPDATE pgext.servers s SET state = $2, state_since = $5 WHERE s.id = $1;
  PERFORM pg_catalog.set_config('pgext.transition_reason', '', true);
  PERFORM pg_catalog.set_config('pgext.transition_actor', '', true);
END
$$;

-- Internal: what the worker should do next for a server, from its state,
-- desired state and what is known at Hetzner (NULL: nothing).  A create
-- whose outcome is unknown is a lookup by name first (never a blind re-send).
CREATE FUNCTION pgext.server_plan(s pgext.servers) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pgext, pg_temp AS $$
  SELECT CASE
    WHEN s.state = 'deleted' THEN NULL
    WHEN s.state = 'deleting' OR (s.state = 'failed' AND s.needs_cleanup)
      THEN CASE WHEN s.hetzner_id IS NOT NULL THEN 'delete' ELSE 'lookup' END
    WHEN s.state = 'requested' AND s.desired_state = 'active'
      THEN CASE WHEN s.create_unknown THEN 'lookup' ELSE 'create' END
    WHEN s.state = 'creating' THEN CASE WHEN s.action_id IS NOT NULL THEN 'poll_action' ELSE 'lookup' END
    WHEN s.state = 'active' AND s.desired_state = 'paused' THEN 'power_off'
    WHEN s.state = 'paused' AND s.desired_state = 'active' THEN 'power_on'
    -- drift seen at Hetzner (pgext.hetzner_reconcile): put the power state back
    WHEN s.state = 'active' AND s.desired_state = 'active' AND s.hetzner_status = 'off' THEN 'power_on'
    WHEN s.state = 'paused' AND s.desired_state = 'paused' AND s.hetzner_status = 'running' THEN 'power_off'
    -- fleet health asked for a reboot or reset (pgext.health_recover)
    WHEN s.state = 'active' AND s.desired_state = 'active' AND s.hetzner_id IS NOT NULL
         AND s.recovery_action IS NOT NULL THEN s.recovery_action
  END
$$;

-- Internal: queue the planned action unless a live claim holds the row (its
-- report replans).  A new action starts fresh (attempts 0, due at `at`); the
-- same action keeps its backoff.
CREATE FUNCTION pgext.server_replan(server bigint, at timestamptz) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  s pgext.servers;
  want pg_catalog.text;
BEGIN
  SELECT * INTO s FROM pgext.servers x WHERE x.id = $1;
  IF s.claimed_until > $2 THEN
    RETURN;
  END IF;
  want := pgext.server_plan(s);
  IF want IS DISTINCT FROM s.next_action THEN
    UPDATE pgext.servers x
       SET next_action = want, attempts = 0,
           next_attempt_at = CASE WHEN want IS NOT NULL THEN $2 END
     WHERE x.id = $1;
  END IF;
END
$$;

-- Internal: exponential backoff with jitter: base * 2^n, at most cap, times
-- a random factor in [0.5, 1).
CREATE FUNCTION pgext.server_backoff(n integer, base interval, cap interval) RETURNS interval
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pgext, pg_temp AS $$
  SELECT LEAST($3, $2 * pg_catalog.power(2, LEAST(GREATEST($1, 0), 30))::double precision)
         * (0.5 + pg_catalog.random() / 2)
$$;

-- Internal: a server fails.  A server that may exist at Hetzner is marked
-- for cleanup (the worker deletes it); a failure on the way to active
-- (requested, creating, configuring) schedules a create retry with backoff
-- while pgext.server_create_retries allows, else it stays failed and says so.
CREATE FUNCTION pgext.server_fail(server bigint, reason text, actor text, at timestamptz) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  s pgext.servers;
  lim integer := pg_catalog.current_setting('pgext.server_create_retries')::integer;
  retry boolean;
  why pg_catalog.text := $2;
BEGIN
  SELECT * INTO s FROM pgext.servers x WHERE x.id = $1;
  IF s.state = 'failed' THEN
    RETURN;
  END IF;
  retry := s.state IN ('requested', 'creating', 'configuring') AND s.create_retries < lim;
  IF s.state IN ('requested', 'creating', 'configuring') THEN
    why := why || CASE WHEN retry THEN pg_catalog.format('; create retry %s of %s scheduled', s.create_retries + 1, lim)
                       ELSE pg_catalog.format('; gave up after %s create retries', s.create_retries) END;
  END IF;
  PERFORM pgext.server_move($1, 'failed', why, $3, $4);
  UPDATE pgext.servers x
     SET needs_cleanup = (x.hetzner_id IS NOT NULL OR x.create_sent),
         action_id = NULL,
         retry_at = CASE WHEN retry THEN $4 + pgext.server_backoff(x.create_retries, '1 minute', '1 hour') END
   WHERE x.id = $1;
  PERFORM pgext.server_replan($1, $4);
END
$$;

-- Internal: the desired state becomes 'deleted' (for good).  A server of
-- which nothing can exist at Hetzner yet (no create handed out) is deleted at
-- once; any other goes to deleting, and the worker deletes it (after a
-- lookup by name when its Hetzner id is not known).
CREATE FUNCTION pgext.server_begin_delete(server bigint, reason text, actor text, at timestamptz)
RETURNS text
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  s pgext.servers;
BEGIN
  UPDATE pgext.servers x SET desired_state = 'deleted', desired_reason = $2
   WHERE x.id = $1 AND x.desired_state <> 'deleted';
  SELECT * INTO s FROM pgext.servers x WHERE x.id = $1;
  IF s.state IN ('deleting', 'deleted') THEN
    RETURN s.state;
  END IF;
  IF s.state IN ('requested', 'failed') AND s.hetzner_id IS NULL AND NOT s.create_sent THEN
    PERFORM pgext.server_move($1, 'deleted', $2 || ' (nothing was created at Hetzner)', $3, $4);
    UPDATE pgext.servers x SET needs_cleanup = false, retry_at = NULL WHERE x.id = $1;
  ELSE
    PERFORM pgext.server_move($1, 'deleting', $2, $3, $4);
    UPDATE pgext.servers x SET retry_at = NULL, action_id = NULL WHERE x.id = $1;
  END IF;
  PERFORM pgext.server_replan($1, $4);
  SELECT * INTO s FROM pgext.servers x WHERE x.id = $1;
  RETURN s.state;
END
$$;

-- Ask for a server (apps).  Idempotent on provision_key: the same key and
-- spec return the same id (whatever happened since); the same key with
-- another spec or account is an error (22023).  Refused, with nothing
-- written: a bad spec (22023, pgext.server_spec_check), an unknown account
-- (PX001), a forgotten account (55000, pgext.account_forget), an account
-- without billing access (55000), an account at
-- pgext.server_limit_per_account live servers (53400).  Live: not deleted,
-- not on its way to deleted, and not failed for good with nothing left at
-- Hetzner.  The new server is 'requested' and its create is queued.
CREATE FUNCTION pgext.server_request(account uuid, provision_key text, spec jsonb) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  checked pg_catalog.jsonb;
  s pgext.servers;
  access pg_catalog.text;
  live integer;
  lim integer := pg_catalog.current_setting('pgext.server_limit_per_account')::integer;
  new_id bigint;
BEGIN
  IF $1 IS NULL THEN
    RAISE EXCEPTION 'account must not be NULL' USING ERRCODE = '22004';
  END IF;
  PERFORM pgext.account_scope_check($1);
  IF $2 IS NULL THEN
    RAISE EXCEPTION 'provision_key must not be NULL' USING ERRCODE = '22004';
  END IF;
  IF $2 = '' OR pg_catalog.length($2) > 255 THEN
    RAISE EXCEPTION 'provision_key must be 1 to 255 characters long' USING ERRCODE = '22023',
      HINT = 'Use a key of your own that names this one server (e.g. your agent''s id): the same key always returns the same server.';
  END IF;
  IF $3 IS NULL THEN
    RAISE EXCEPTION 'spec must not be NULL' USING ERRCODE = '22004';
  END IF;
  checked := pgext.server_spec_check($3);
  PERFORM pgext.health_spec_check(checked);
  -- FOR KEY SHARE: waits for a pgext.account_forget in progress, and the
  -- check after it then sees that forget's record
  PERFORM FROM pgext.accounts a WHERE a.id = $1 FOR KEY SHARE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'account % does not exist', $1 USING ERRCODE = 'PX001',
      HINT = 'Create it first with pgext.account_create(external_id).';
  END IF;
  IF EXISTS (SELECT FROM pgext.account_forgets f WHERE f.account_id = $1) THEN
    RAISE EXCEPTION 'account % was forgotten (pgext.account_forget): it takes no new servers', $1
      USING ERRCODE = '55000', HINT = 'Create a new account for a returning customer.';
  END IF;
  -- one request per account at a time, so the limit holds (READ COMMITTED:
  -- the statements below see what a request that went first committed; a
  -- snapshot transaction that had to wait cannot see it, so it must retry)
  IF NOT pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('pgext.server_request'),
                                              pg_catalog.hashtext($1::pg_catalog.text)) THEN
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pgext.server_request'),
                                             pg_catalog.hashtext($1::pg_catalog.text));
    IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
      RAISE EXCEPTION 'a concurrent server_request for the same account committed after this transaction''s snapshot'
        USING ERRCODE = '40001',
              HINT = 'Retry the transaction: it then sees the other request (the same provision key returns the same server).';
    END IF;
  END IF;
  SELECT * INTO s FROM pgext.servers x WHERE x.provision_key = $2;
  IF NOT FOUND THEN
    SELECT b.access INTO access FROM pgext.billing_access($1) b;
    IF access IS NULL OR access = 'none' THEN
      RAISE EXCEPTION 'account % has no billing access', $1 USING ERRCODE = '55000',
        DETAIL = 'A server needs an active, trialing, canceling (until its end), grace, lifetime or operator-granted access (pgext.billing_access).',
        HINT = 'Let the customer subscribe or buy first, or grant access as an operator; then request the server again.';
    END IF;
    SELECT pg_catalog.count(*) INTO live FROM pgext.servers x
     WHERE x.account_id = $1 AND x.state <> 'deleted' AND x.desired_state <> 'deleted'
       AND NOT (x.state = 'failed' AND NOT x.needs_cleanup AND x.retry_at IS NULL);
    IF live >= lim THEN
      RAISE EXCEPTION 'account % already has % live servers (limit %)', $1, live, lim USING ERRCODE = '53400',
        HINT = 'Delete one with pgext.server_delete(server, reason), or raise pgext.server_limit_per_account.';
    END IF;
    PERFORM pg_catalog.set_config('pgext.transition_reason', 'requested', true);
    PERFORM pg_catalog.set_config('pgext.transition_actor', pg_catalog.session_user(), true);
    INSERT INTO pgext.servers AS x (account_id, provision_key, name, spec, spec_hash,
                                    next_action, next_attempt_at)
    VALUES ($1, $2, pgext.server_name($2), checked,
            pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(checked::pg_catalog.text, 'UTF8')), 'hex'),
            'create', pg_catalog.now())
    ON CONFLICT ON CONSTRAINT servers_provision_key_key DO NOTHING
    RETURNING x.id INTO new_id;
    PERFORM pg_catalog.set_config('pgext.transition_reason', '', true);
    PERFORM pg_catalog.set_config('pgext.transition_actor', '', true);
    IF new_id IS NOT NULL THEN
      RETURN new_id;
    END IF;
    -- the same key, committed meanwhile under another account's lock
    SELECT * INTO s FROM pgext.servers x WHERE x.provision_key = $2;
  END IF;
  IF s.account_id <> $1 THEN
    RAISE EXCEPTION 'provision key % already names server % of another account', pg_catalog.quote_literal($2), s.id
      USING ERRCODE = '22023', HINT = 'A provision key names one server for good: use a new key for a new server.';
  END IF;
  IF s.spec <> checked THEN
    RAISE EXCEPTION 'provision key % already names server % with a different spec', pg_catalog.quote_literal($2), s.id
      USING ERRCODE = '22023', HINT = 'A provision key names one server for good: use a new key for a new server.';
  END IF;
  RETURN s.id;
END
$$;

-- Internal: lock a server row or say it does not exist.
CREATE FUNCTION pgext.server_lock(server bigint) RETURNS pgext.servers
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  s pgext.servers;
BEGIN
  IF $1 IS NULL THEN
    RAISE EXCEPTION 'server must not be NULL' USING ERRCODE = '22004';
  END IF;
  SELECT * INTO s FROM pgext.servers x WHERE x.id = $1 FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'server % does not exist', $1 USING ERRCODE = 'P0002',
      HINT = 'List servers with: SELECT * FROM pgext.server_status.';
  END IF;
  RETURN s;
END
$$;

-- Move a server by hand (operators); the only sanctioned manual move.  An
-- invalid move raises 55000 naming the allowed ones.  To 'failed': no
-- automatic retry, cleanup if it may exist; to 'requested': the create is
-- queued again from the first location; to 'deleting'/'deleted': desired
-- state becomes 'deleted'.  Returns the new state.
CREATE FUNCTION pgext.server_transition(server bigint, to_state text, reason text) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  s pgext.servers := pgext.server_lock($1);
  actor pg_catalog.text := pg_catalog.session_user();
  at pg_catalog.timestamptz := pg_catalog.now();
BEGIN
  IF $2 IS NULL OR $2 NOT IN ('requested', 'creating', 'configuring', 'active', 'paused',
                              'deleting', 'deleted', 'failed') THEN
    RAISE EXCEPTION 'unknown server state %', pg_catalog.quote_nullable(pg_catalog.left($2, 64)) USING ERRCODE = '22023',
      HINT = 'States: requested, creating, configuring, active, paused, deleting, deleted, failed.';
  END IF;
  IF $3 IS NULL OR pg_catalog.btrim($3) = '' OR pg_catalog.length($3) > 1000 THEN
    RAISE EXCEPTION 'a manual transition needs a reason (1 to 1000 characters)' USING ERRCODE = '22023',
      HINT = 'Say why, e.g. ''verified in the Hetzner console''; it is kept in pgext.server_history.';
  END IF;
  PERFORM pgext.server_move($1, $2, $3, actor, at);
  UPDATE pgext.servers x
     SET needs_cleanup = CASE WHEN $2 = 'failed' THEN (x.hetzner_id IS NOT NULL OR x.create_sent)
                              WHEN $2 = 'deleted' THEN false ELSE x.needs_cleanup END,
         retry_at = NULL,
         desired_state = CASE WHEN $2 IN ('deleting', 'deleted') THEN 'deleted' ELSE x.desired_state END,
         desired_reason = CASE WHEN $2 IN ('deleting', 'deleted') THEN $3 ELSE x.desired_reason END,
         location_index = CASE WHEN $2 = 'requested' THEN 0 ELSE x.location_index END,
         hetzner_id = CASE WHEN $2 = 'requested' THEN NULL ELSE x.hetzner_id END,
         action_id = CASE WHEN $2 IN ('requested', 'deleting', 'failed') THEN NULL ELSE x.action_id END
   WHERE x.id = $1;
  PERFORM pgext.server_replan($1, at);
  RETURN $2;
END
$$;

-- Ask for a server to go away (apps and operators).  Nothing created yet:
-- 'deleted' at once; otherwise 'deleting' and the worker deletes it.
-- Returns the state; repeating it is harmless.
CREATE FUNCTION pgext.server_delete(server bigint, reason text) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  s pgext.servers := pgext.server_lock($1);
BEGIN
  PERFORM pgext.account_scope_check(s.account_id);
  IF $2 IS NULL OR pg_catalog.btrim($2) = '' OR pg_catalog.length($2) > 1000 THEN
    RAISE EXCEPTION 'deleting a server needs a reason (1 to 1000 characters)' USING ERRCODE = '22023',
      HINT = 'Say why, e.g. ''customer closed the agent''; it is kept in pgext.server_history.';
  END IF;
  RETURN pgext.server_begin_delete($1, $2, pg_catalog.session_user(), pg_catalog.now());
END
$$;

-- Internal: claim one server row (the caller holds its lock) for claimant
-- until `until`, with a new claim number.  A claim taken back (its lease ran
-- out, or pgext.worker_begin ended it) counts as an attempt; a create whose
-- outcome is unknown (create_unknown: its answer never arrived or its claim
-- was taken back) is claimed as a lookup by name instead, never re-sent
-- blindly.  A create is marked sent and unknown until its answer arrives;
-- its location is spec.locations[location_index].
CREATE FUNCTION pgext.server_take(server bigint, claimant text, until timestamptz, at timestamptz)
RETURNS pgext.servers
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  s pgext.servers;
  act pg_catalog.text;
BEGIN
  SELECT * INTO s FROM pgext.servers x WHERE x.id = $1;
  act := CASE WHEN s.next_action = 'create' AND s.create_unknown THEN 'lookup' ELSE s.next_action END;
  UPDATE pgext.servers x
     SET next_action = act,
         claim = x.claim + 1, claimed_action = act, claimed_by = $2, claimed_until = $3,
         attempts = CASE WHEN act IS DISTINCT FROM x.next_action THEN 0 ELSE x.attempts END
                    + CASE WHEN x.claimed_by IS NOT NULL THEN 1 ELSE 0 END,
         last_error = CASE WHEN x.claimed_by IS NOT NULL
                           THEN pg_catalog.format('claim %s by %s was not reported in time', x.claim, x.claimed_by)
                           ELSE x.last_error END,
         create_sent = x.create_sent OR act = 'create',
         create_unknown = x.create_unknown OR act = 'create',
         location = CASE WHEN act = 'create' THEN x.spec -> 'locations' ->> x.location_index ELSE x.location END
   WHERE x.id = $1
  RETURNING * INTO s;
  RETURN s;
END
$$;

-- The worker takes due work: up to "limit" servers whose next action is due
-- at `at` and that no live claim holds, oldest first, skipping rows another
-- claimant has locked.  Each comes with a claim number its report must quote;
-- a claim not reported within `lease` is taken back by the next claimant
-- (counted as an attempt; a create taken back is looked up by name next).
-- For a create, location is the one to try.  (The background worker uses
-- pgext.hetzner_claim, which builds the HTTP requests from the same rows.)
CREATE FUNCTION pgext.server_claim(worker text, "limit" integer DEFAULT 10,
                                   lease interval DEFAULT '2 minutes',
                                   at timestamptz DEFAULT pg_catalog.now())
RETURNS TABLE (server bigint, claim bigint, action text, name text, account_id uuid, spec jsonb,
               hetzner_id bigint, action_id bigint, location text, attempts integer)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  sid bigint;
  s pgext.servers;
BEGIN
  IF $1 IS NULL OR pg_catalog.btrim($1) = '' OR pg_catalog.length($1) > 200 THEN
    RAISE EXCEPTION 'worker must name the claimant (1 to 200 characters)' USING ERRCODE = '22023';
  END IF;
  IF $2 IS NULL OR $2 < 1 OR $2 > 1000 THEN
    RAISE EXCEPTION 'limit must be between 1 and 1000' USING ERRCODE = '22023';
  END IF;
  IF $3 IS NULL OR $3 < interval '1 second' OR $3 > interval '1 hour' THEN
    RAISE EXCEPTION 'lease must be between 1 second and 1 hour' USING ERRCODE = '22023';
  END IF;
  IF $4 IS NULL THEN
    RAISE EXCEPTION 'at must not be NULL' USING ERRCODE = '22004';
  END IF;
  FOR sid IN
    SELECT x.id FROM pgext.servers x
     WHERE x.next_action IS NOT NULL AND x.next_attempt_at <= $4
       AND (x.claimed_until IS NULL OR x.claimed_until <= $4)
     ORDER BY x.next_attempt_at, x.id
     LIMIT $2 FOR UPDATE SKIP LOCKED
  LOOP
    s := pgext.server_take(sid, $1, $4 + $3, $4);
    server := s.id; claim := s.claim; action := s.claimed_action; name := s.name;
    account_id := s.account_id; spec := s.spec; hetzner_id := s.hetzner_id; action_id := s.action_id;
    location := s.location; attempts := s.attempts;
    RETURN NEXT;
  END LOOP;
END
$$;

-- Internal: the class of an API response handed to server_report.
--   ok           2xx without an error
--   retry        rate_limit_exceeded, conflict, locked, timeout, server_error,
--                unavailable, 429, 5xx, and the worker's own 'network',
--                'too_large', 'tls' (no usable response) and 'malformed'
--                (unreadable body)
--   unavailable  resource_unavailable / placement_error (no capacity there)
--   uniqueness   uniqueness_error (the name exists: an earlier create worked)
--   not_found    not_found / 404
--   fatal        anything else (invalid_input, forbidden, quota, ...)
CREATE FUNCTION pgext.server_response_class(response jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  code pg_catalog.text := $1 -> 'error' ->> 'code';
  http integer;
BEGIN
  IF pg_catalog.jsonb_typeof($1) IS DISTINCT FROM 'object'
     OR ($1 ? 'http_status' AND pg_catalog.jsonb_typeof($1 -> 'http_status') <> 'number')
     OR NOT ($1 ? 'http_status' OR code IS NOT NULL) THEN
    RAISE EXCEPTION 'invalid API response for server_report' USING ERRCODE = '22023',
      DETAIL = 'Expected an object with "http_status" (a number) and the response body''s fields, or "error": {"code", "message"}.',
      HINT = 'Report a transport failure as {"error":{"code":"network","message":"..."}} and an unreadable body as code "malformed".';
  END IF;
  http := ($1 ->> 'http_status')::pg_catalog.numeric::integer;
  IF code IS NOT NULL THEN
    RETURN CASE
      WHEN code = 'uniqueness_error' THEN 'uniqueness'
      WHEN code IN ('resource_unavailable', 'placement_error') THEN 'unavailable'
      WHEN code = 'not_found' THEN 'not_found'
      WHEN code IN ('rate_limit_exceeded', 'conflict', 'locked', 'timeout', 'server_error',
                    'unavailable', 'network', 'too_large', 'tls', 'malformed') THEN 'retry'
      WHEN http >= 500 THEN 'retry'
      ELSE 'fatal' END;
  END IF;
  RETURN CASE
    WHEN http = 429 OR http >= 500 THEN 'retry'
    WHEN http = 404 THEN 'not_found'
    WHEN http BETWEEN 200 AND 299 THEN 'ok'
    ELSE 'fatal' END;
END
$$;

-- Internal: a creating server exists and runs at Hetzner.  With a health
-- check in its spec it is configuring until the first check passes; without
-- one there is nothing to wait for and it is active at once.
CREATE FUNCTION pgext.server_created(server bigint, what text, at timestamptz) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pgext, pg_temp AS $$
BEGIN
  IF (SELECT pg_catalog.jsonb_typeof(x.spec -> 'health') IN ('object', 'array')
        FROM pgext.servers x WHERE x.id = $1) THEN
    PERFORM pgext.server_move($1, 'configuring', $2 || '; waiting for the first health check', 'worker', $3);
  ELSE
    PERFORM pgext.server_move($1, 'active', 'created; the spec has no health check', 'worker', $3);
  END IF;
END
$$;

-- The worker reports what the API answered for a claimed action (response:
-- {"http_status": N, ...the body} or {"error": {...}}); this decides the next
-- state in one short transaction and returns the outcome:
--   stale          the claim no longer holds the row (taken back): ignored
--   retry          retryable error: attempts+1, backoff with jitter (at least
--                  "retry_after" seconds when given), state unchanged
--   next_location  no capacity in that location: the next of spec.locations
--   no_capacity    no capacity in any location: from the first one again
--                  after a backoff (30 s doubling to 10 min, jittered); the
--                  server does not fail for it (the requested timeout may)
--   lookup         the name exists / the action is gone / a create's answer
--                  never arrived: look it up by name (never create blindly)
--   not_found      a lookup of a requested server found nothing: create again
--   running        the create is still running: poll again in 5 s
--   cleaned        a failed server's leftovers are gone
--   otherwise the new state (creating, configuring, active, paused,
--   deleted, failed) or the unchanged one.
-- action 'configured' (no claim) is the health checks' word that a
-- configuring server works: it becomes active (until the health issue, an
-- operator or the demo says it).
CREATE FUNCTION pgext.server_report(server bigint, action text, response jsonb, claim bigint DEFAULT NULL,
                                    at timestamptz DEFAULT pg_catalog.now())
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  s pgext.servers;
  cls pg_catalog.text;
  err pg_catalog.text;
  outcome pg_catalog.text;
  srv pg_catalog.jsonb;
  act pg_catalog.text;
  wait interval;
  unknown boolean;
BEGIN
  IF $2 IS NULL OR $2 NOT IN ('create', 'poll_action', 'lookup', 'power_off', 'power_on', 'delete',
                              'reboot', 'reset', 'configured') THEN
    RAISE EXCEPTION 'unknown server action %', pg_catalog.quote_nullable(pg_catalog.left($2, 64)) USING ERRCODE = '22023',
      HINT = 'Actions: create, poll_action, lookup, power_off, power_on, delete, reboot, reset (claimed), configured.';
  END IF;
  IF $5 IS NULL THEN
    RAISE EXCEPTION 'at must not be NULL' USING ERRCODE = '22004';
  END IF;
  s := pgext.server_lock($1);
  IF $2 = 'configured' THEN
    IF s.state <> 'configuring' THEN
      RETURN 'stale';
    END IF;
    PERFORM pgext.server_move($1, 'active', COALESCE($3 ->> 'reason', 'configured: first health check passed'),
                              'worker', $5);
    PERFORM pgext.server_replan($1, $5);
    RETURN 'active';
  END IF;
  IF $4 IS NULL THEN
    RAISE EXCEPTION 'claim must not be NULL' USING ERRCODE = '22004',
      HINT = 'Pass the claim number server_claim returned with this work item.';
  END IF;
  cls := pgext.server_response_class($3);
  IF s.claimed_by IS NULL OR s.claim <> $4 THEN
    RETURN 'stale';
  END IF;
  IF s.claimed_action <> $2 THEN
    RAISE EXCEPTION 'claim % of server % is for %, not %', $4, $1, s.claimed_action, $2 USING ERRCODE = '22023';
  END IF;
  err := CASE WHEN $3 ? 'error'
              THEN pg_catalog.format('%s: %s (%s)', $3 -> 'error' ->> 'code',
                                     COALESCE($3 -> 'error' ->> 'message', 'no message'),
                                     COALESCE($3 ->> 'http_status', 'no response'))
              WHEN cls <> 'ok' THEN pg_catalog.format('HTTP %s', $3 ->> 'http_status') END;
  UPDATE pgext.servers x SET claimed_by = NULL, claimed_until = NULL, claimed_action = NULL
   WHERE x.id = $1;

  IF cls = 'retry' OR (cls = 'fatal' AND $2 <> 'create') THEN
    -- transient (or, for anything but a create, an error that waiting may cure: it stays visible)
    wait := GREATEST(pgext.server_backoff(s.attempts, '2 seconds', '5 minutes'),
                     pg_catalog.make_interval(secs => COALESCE(($3 ->> 'retry_after')::double precision, 0)));
    -- a create refused before it ran (rate limit, conflict, locked) made
    -- nothing; any other retryable answer (no response, 5xx, unreadable)
    -- leaves its outcome unknown: the next step is a lookup by name
    unknown := $2 = 'create'
               AND COALESCE($3 -> 'error' ->> 'code', '') NOT IN ('rate_limit_exceeded', 'conflict', 'locked')
               AND ($3 ->> 'http_status') IS DISTINCT FROM '429';
    UPDATE pgext.servers x
       SET attempts = x.attempts + 1, next_attempt_at = $5 + wait, last_error = err,
           create_unknown = CASE WHEN $2 = 'create' THEN unknown ELSE x.create_unknown END,
           next_action = CASE WHEN unknown AND x.next_action = 'create' THEN 'lookup' ELSE x.next_action END
     WHERE x.id = $1;
    outcome := CASE WHEN unknown THEN 'lookup' ELSE 'retry' END;
  ELSIF $2 = 'create' THEN
    UPDATE pgext.servers x SET create_unknown = false WHERE x.id = $1;
    IF cls = 'ok' THEN
      srv := $3 -> 'server';
      UPDATE pgext.servers x
         SET hetzner_id = (srv ->> 'id')::bigint,
             ipv4 = srv -> 'public_net' -> 'ipv4' ->> 'ip',
             location = COALESCE(srv -> 'datacenter' -> 'location' ->> 'name', x.location),
             action_id = ($3 -> 'action' ->> 'id')::bigint,
             hetzner_status = srv ->> 'status',
             capacity_rounds = 0,
             last_error = NULL
       WHERE x.id = $1;
      IF s.state = 'requested' THEN
        PERFORM pgext.server_move($1, 'creating',
                                  pg_catalog.format('Hetzner server %s created in %s', srv ->> 'id',
                                                    COALESCE(srv -> 'datacenter' -> 'location' ->> 'name', s.location)),
                                  'worker', $5);
      ELSIF s.state = 'failed' THEN
        UPDATE pgext.servers x SET needs_cleanup = true WHERE x.id = $1;
      END IF;
    ELSIF cls = 'unavailable' THEN
      UPDATE pgext.servers x SET last_error = err WHERE x.id = $1;
      IF s.state = 'requested' AND pg_catalog.jsonb_array_length(s.spec -> 'locations') > s.location_index + 1 THEN
        UPDATE pgext.servers x SET location_index = x.location_index + 1, next_attempt_at = $5, attempts = 0
         WHERE x.id = $1;
        outcome := 'next_location';
      ELSIF s.state = 'requested' THEN
        -- every location was tried: wait, then go down the list again
        UPDATE pgext.servers x
           SET location_index = 0, attempts = 0, capacity_rounds = x.capacity_rounds + 1,
               next_attempt_at = $5 + pgext.server_backoff(x.capacity_rounds, '30 seconds', '10 minutes'),
               last_error = pg_catalog.format('no capacity in any location (%s): %s',
                              (SELECT pg_catalog.string_agg(l, ', ') FROM pg_catalog.jsonb_array_elements_text(s.spec -> 'locations') l),
                              err)
         WHERE x.id = $1;
        outcome := 'no_capacity';
      END IF;
    ELSIF cls = 'uniqueness' THEN
      -- an earlier create went through (its answer was lost): find it, never create twice
      UPDATE pgext.servers x SET last_error = err, action_id = NULL WHERE x.id = $1;
      IF s.state = 'requested' THEN
        PERFORM pgext.server_move($1, 'creating', 'the name exists at Hetzner: an earlier create went through', 'worker', $5);
      END IF;
      outcome := 'lookup';
    ELSE
      UPDATE pgext.servers x SET last_error = err WHERE x.id = $1;
      IF s.state = 'requested' THEN
        PERFORM pgext.server_fail($1, 'create refused: ' || err, 'worker', $5);
      END IF;
    END IF;
  ELSIF $2 = 'poll_action' THEN
    act := $3 -> 'action' ->> 'status';
    IF cls = 'not_found' THEN
      UPDATE pgext.servers x SET action_id = NULL, last_error = err WHERE x.id = $1;
      outcome := 'lookup';
    ELSIF act = 'success' THEN
      UPDATE pgext.servers x SET action_id = NULL, last_error = NULL WHERE x.id = $1;
      IF s.state = 'creating' THEN
        PERFORM pgext.server_created($1, 'create action finished', $5);
      END IF;
    ELSIF act = 'error' THEN
      IF s.state = 'creating' THEN
        PERFORM pgext.server_fail($1, pg_catalog.format('create action failed: %s: %s',
                                    $3 -> 'action' -> 'error' ->> 'code', $3 -> 'action' -> 'error' ->> 'message'),
                                  'worker', $5);
      END IF;
    ELSE
      UPDATE pgext.servers x SET next_attempt_at = $5 + interval '5 seconds' WHERE x.id = $1;
      outcome := 'running';
    END IF;
  ELSIF $2 = 'lookup' THEN
    srv := COALESCE($3 -> 'servers' -> 0, $3 -> 'server');
    IF cls = 'ok' AND srv IS NOT NULL AND srv <> 'null' THEN
      UPDATE pgext.servers x
         SET hetzner_id = (srv ->> 'id')::bigint,
             ipv4 = COALESCE(srv -> 'public_net' -> 'ipv4' ->> 'ip', x.ipv4),
             location = COALESCE(srv -> 'datacenter' -> 'location' ->> 'name', x.location),
             hetzner_status = srv ->> 'status',
             create_unknown = false, capacity_rounds = 0
       WHERE x.id = $1;
      IF s.state = 'requested' THEN
        -- a create whose answer never arrived went through: adopt it
        PERFORM pgext.server_move($1, 'creating',
                                  pg_catalog.format('Hetzner server %s found by name after a create whose answer never arrived',
                                                    srv ->> 'id'), 'worker', $5);
        s.state := 'creating';
      END IF;
      IF s.state = 'creating' AND srv ->> 'status' = 'running' THEN
        PERFORM pgext.server_created($1, 'found running at Hetzner', $5);
      ELSIF s.state = 'creating' THEN
        UPDATE pgext.servers x SET next_attempt_at = $5 + interval '5 seconds' WHERE x.id = $1;
        outcome := 'running';
      END IF;
    ELSE
      -- no server by that name at Hetzner
      UPDATE pgext.servers x SET create_unknown = false WHERE x.id = $1;
      IF s.state = 'requested' THEN
        outcome := 'not_found';
      ELSIF s.state = 'deleting' THEN
        PERFORM pgext.server_move($1, 'deleted', COALESCE(s.desired_reason, 'deleted') || ' (not found at Hetzner)', 'worker', $5);
      ELSIF s.state = 'failed' THEN
        UPDATE pgext.servers x SET needs_cleanup = false, create_sent = false, hetzner_id = NULL, ipv4 = NULL
         WHERE x.id = $1;
        outcome := 'cleaned';
      ELSIF s.state = 'creating' THEN
        UPDATE pgext.servers x SET create_sent = false WHERE x.id = $1;
        PERFORM pgext.server_fail($1, 'no server named ' || s.name || ' at Hetzner', 'worker', $5);
      END IF;
    END IF;
  ELSIF $2 IN ('power_off', 'power_on') THEN
    IF cls = 'ok' THEN
      UPDATE pgext.servers x SET action_id = ($3 -> 'action' ->> 'id')::bigint, last_error = NULL,
                                 hetzner_status = NULL
       WHERE x.id = $1;
      IF $2 = 'power_off' AND s.state = 'active' THEN
        PERFORM pgext.server_move($1, 'paused', COALESCE(s.desired_reason, 'powered off'), 'worker', $5);
      ELSIF $2 = 'power_on' AND s.state = 'paused' THEN
        PERFORM pgext.server_move($1, 'active', COALESCE(s.desired_reason, 'powered on'), 'worker', $5);
      END IF;
    ELSE
      -- not_found: the server is gone at Hetzner
      UPDATE pgext.servers x SET hetzner_id = NULL, create_sent = false, ipv4 = NULL, last_error = err
       WHERE x.id = $1;
      IF s.state = 'deleting' THEN
        -- asked to go away meanwhile: it already has
        PERFORM pgext.server_move($1, 'deleted', COALESCE(s.desired_reason, 'deleted') || ' (already gone at Hetzner)', 'worker', $5);
      ELSE
        PERFORM pgext.server_fail($1, 'server ' || s.name || ' no longer exists at Hetzner', 'worker', $5);
      END IF;
    END IF;
  ELSIF $2 IN ('reboot', 'reset') THEN
    IF cls = 'ok' THEN
      -- sent: the app hears that its agent restarts (pgext.health_events has the attempt)
      UPDATE pgext.servers x SET recovery_action = NULL, last_error = NULL WHERE x.id = $1;
      INSERT INTO pgext.outbox (account_id, kind, server_id, detail)
      VALUES (s.account_id, 'agent_restarting', $1,
              pg_catalog.format('%s (attempt %s)', $2,
                                COALESCE((SELECT y.recovery_attempts FROM pgext.health_servers y WHERE y.server_id = $1), 1)));
    ELSIF cls <> 'not_found' THEN
      -- (unavailable, uniqueness: not answers a reboot should get) kept, tried again later
      UPDATE pgext.servers x
         SET attempts = x.attempts + 1, last_error = err,
             next_attempt_at = $5 + pgext.server_backoff(x.attempts, '2 seconds', '5 minutes')
       WHERE x.id = $1;
      outcome := 'retry';
    ELSE
      -- not_found: the server is gone at Hetzner
      UPDATE pgext.servers x SET hetzner_id = NULL, create_sent = false, ipv4 = NULL, last_error = err,
                                 recovery_action = NULL
       WHERE x.id = $1;
      IF s.state = 'deleting' THEN
        PERFORM pgext.server_move($1, 'deleted', COALESCE(s.desired_reason, 'deleted') || ' (already gone at Hetzner)', 'worker', $5);
      ELSE
        PERFORM pgext.server_fail($1, 'server ' || s.name || ' no longer exists at Hetzner', 'worker', $5);
      END IF;
    END IF;
  ELSIF $2 = 'delete' THEN
    -- ok or not_found: it is gone
    IF s.state = 'deleting' THEN
      PERFORM pgext.server_move($1, 'deleted', COALESCE(s.desired_reason, 'deleted'), 'worker', $5);
      UPDATE pgext.servers x SET last_error = NULL WHERE x.id = $1;
    ELSIF s.state = 'failed' THEN
      UPDATE pgext.servers x SET needs_cleanup = false, create_sent = false, create_unknown = false,
                                 hetzner_id = NULL, ipv4 = NULL
       WHERE x.id = $1;
      outcome := 'cleaned';
    END IF;
  END IF;
  PERFORM pgext.server_replan($1, $5);
  IF outcome IS NULL THEN
    SELECT x.state INTO outcome FROM pgext.servers x WHERE x.id = $1;
  END IF;
  RETURN outcome;
END
$$;

-- Apply the policy and the clocks to every server not deleted (operators;
-- the worker calls it): the desired state from
-- pgext.account_server_desired (its 'deleting' is desired 'deleted', for
-- good); a server past pgext.server_requested_timeout /
-- server_creating_timeout / server_configuring_timeout in that state fails;
-- a failed create is retried when its retry_at has come; the next action is
-- queued.  Rows another transaction holds are skipped (the next run takes
-- them).  Returns how many servers changed desired state, state or next action.
CREATE FUNCTION pgext.server_reconcile(at timestamptz DEFAULT pg_catalog.now()) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  s pgext.servers;
  t pgext.servers;
  n integer := 0;
  want pg_catalog.text;
  why pg_catalog.text;
  limit_for interval;
  lim integer := pg_catalog.current_setting('pgext.server_create_retries')::integer;
BEGIN
  IF $1 IS NULL THEN
    RAISE EXCEPTION 'at must not be NULL' USING ERRCODE = '22004';
  END IF;
  FOR s IN SELECT * FROM pgext.servers x WHERE x.state <> 'deleted' ORDER BY x.id FOR UPDATE SKIP LOCKED LOOP
    IF s.desired_state <> 'deleted' THEN
      SELECT d.desired_state, d.reason INTO want, why
        FROM pgext.account_server_desired(s.account_id, CASE WHEN s.state = 'paused' THEN s.state_since END, $1) d;
      want := CASE want WHEN 'deleting' THEN 'deleted' WHEN 'active' THEN 'active' WHEN 'paused' THEN 'paused' END;
      IF want IS NULL THEN
        RAISE EXCEPTION 'account_server_desired gave no valid desired state for account %', s.account_id
          USING ERRCODE = 'XX000';
      END IF;
      IF want = 'deleted' THEN
        PERFORM pgext.server_begin_delete(s.id, why, 'policy', $1);
      ELSIF want <> s.desired_state OR why IS DISTINCT FROM s.desired_reason THEN
        UPDATE pgext.servers x SET desired_state = want, desired_reason = why WHERE x.id = s.id;
      END IF;
    END IF;
    SELECT * INTO t FROM pgext.servers x WHERE x.id = s.id;
    limit_for := CASE t.state
                   WHEN 'requested' THEN pg_catalog.current_setting('pgext.server_requested_timeout')::interval
                   WHEN 'creating' THEN pg_catalog.current_setting('pgext.server_creating_timeout')::interval
                   WHEN 'configuring' THEN pg_catalog.current_setting('pgext.server_configuring_timeout')::interval END;
    IF limit_for IS NOT NULL AND t.state_since + limit_for <= $1 THEN
      PERFORM pgext.server_fail(t.id, pg_catalog.format('%s for longer than %s%s', t.state,
                                  pg_catalog.current_setting('pgext.server_' || t.state || '_timeout'),
                                  COALESCE(' (last error: ' || t.last_error || ')', '')),
                                'policy', $1);
    ELSIF t.state = 'failed' AND t.retry_at <= $1 AND NOT t.needs_cleanup AND t.desired_state = 'active'
          AND (t.claimed_until IS NULL OR t.claimed_until <= $1) THEN
      PERFORM pgext.server_move(t.id, 'requested',
                                pg_catalog.format('create retry %s of %s', t.create_retries + 1, lim), 'policy', $1);
      UPDATE pgext.servers x
         SET create_retries = x.create_retries + 1, retry_at = NULL, location_index = 0, capacity_rounds = 0,
             hetzner_id = NULL, ipv4 = NULL, action_id = NULL, last_error = NULL
       WHERE x.id = t.id;
    END IF;
    PERFORM pgext.server_replan(s.id, $1);
    SELECT * INTO t FROM pgext.servers x WHERE x.id = s.id;
    IF (t.desired_state, t.state, t.next_action) IS DISTINCT FROM (s.desired_state, s.state, s.next_action) THEN
      n := n + 1;
    END IF;
  END LOOP;
  RETURN n;
END
$$;

-- Per server, for people and dashboards: the state and since when, what is
-- wanted, why (the last transition's reason, e.g. 'paused: payment failed,
-- grace ended on 2026-11-20', then '; next: ' and the policy's reason while
-- the desired state is still to be reached), where, and the queued work.
CREATE VIEW pgext.server_status WITH (security_invoker = true) AS
SELECT s.id AS server, s.account_id, s.name, s.state, s.state_since, s.desired_state,
       CASE WHEN s.state_reason = s.state OR s.state_reason LIKE s.state || ':%' THEN s.state_reason
            ELSE s.state || ': ' || COALESCE(s.state_reason, '') END
         || CASE WHEN s.desired_state <> s.state
                      AND NOT (s.desired_state = 'deleted' AND s.state = 'deleting')
                      AND NOT (s.desired_state = 'active' AND s.state IN ('requested', 'creating', 'configuring'))
                 THEN '; next: ' || COALESCE(s.desired_reason, s.desired_state)
                 ELSE '' END AS why,
       s.active_since, s.last_error, s.location, s.ipv4, s.hetzner_id,
       s.next_action, s.attempts, s.next_attempt_at, s.retry_at, s.needs_cleanup
  FROM pgext.servers s;

-- The status of one account's servers (apps).
CREATE FUNCTION pgext.server_status_of(account uuid) RETURNS SETOF pgext.server_status
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
  SELECT pgext.account_scope_check($1);
  SELECT * FROM pgext.server_status st WHERE st.account_id = $1 ORDER BY st.server
$$;

REVOKE ALL ON pgext.server_transitions, pgext.servers, pgext.server_history, pgext.server_status
  FROM PUBLIC;
REVOKE ALL ON FUNCTION
  pgext.server_name(text),
  pgext.servers_state_guard(),
  pgext.servers_state_record(),
  pgext.server_move(bigint, text, text, text, timestamptz),
  pgext.server_plan(pgext.servers),
  pgext.server_replan(bigint, timestamptz),
  pgext.server_backoff(integer, interval, interval),
  pgext.server_fail(bigint, text, text, timestamptz),
  pgext.server_begin_delete(bigint, text, text, timestamptz),
  pgext.server_request(uuid, text, jsonb),
  pgext.server_lock(bigint),
  pgext.server_transition(bigint, text, text),
  pgext.server_delete(bigint, text),
  pgext.server_take(bigint, text, timestamptz, timestamptz),
  pgext.server_claim(text, integer, interval, timestamptz),
  pgext.server_response_class(jsonb),
  pgext.server_created(bigint, text, timestamptz),
  pgext.server_report(bigint, text, jsonb, bigint, timestamptz),
  pgext.server_reconcile(timestamptz),
  pgext.server_status_of(uuid)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  pgext.server_name(text),
  pgext.server_request(uuid, text, jsonb),
  pgext.server_delete(bigint, text),
  pgext.server_status_of(uuid)
  TO pgext_app, pgext_admin;
GRANT EXECUTE ON FUNCTION
  pgext.server_transition(bigint, text, text),
  pgext.server_claim(text, integer, interval, timestamptz),
  pgext.server_report(bigint, text, jsonb, bigint, timestamptz),
  pgext.server_reconcile(timestamptz)
  TO pgext_admin;
GRANT SELECT ON pgext.server_transitions, pgext.servers, pgext.server_history, pgext.server_status
  TO pgext_admin;

-- Tables holding state are configuration tables, so pg_dump keeps their
-- rows; identity sequences too (sql/backups.sql checks).
-- pgext.server_transitions is not: its rows come from this script.
SELECT pg_catalog.pg_extension_config_dump('pgext.servers', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('pgext.servers', 'id'), '');
SELECT pg_catalog.pg_extension_config_dump('pgext.server_history', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('pgext.server_history', 'id'), '');

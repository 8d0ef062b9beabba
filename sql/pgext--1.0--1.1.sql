-- pgext upgrade script 1.0 -> 1.1, run by ALTER EXTENSION pgext UPDATE.
--
-- 1.0 is released: sql/pgext--1.0.sql is frozen and never edited.  Every
-- schema change after 1.0 is made twice, in the same commit:
--   1. in its part sql/install/*.sql (the parts assemble pgext--1.1.sql, what
--      a fresh CREATE EXTENSION pgext runs), and
--   2. here, as the statements that turn an installed 1.0 into that same 1.1
--      (CREATE OR REPLACE FUNCTION, ALTER TABLE ..., new objects with their
--      REVOKE/GRANT and pg_extension_config_dump lines), keeping every row.
-- test/t/040_upgrade.pl installs 1.0 with data, runs ALTER EXTENSION pgext
-- UPDATE and fails unless the schema equals a fresh 1.1 and the data survived.

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION pgext UPDATE TO '1.1'" to load this file. \quit

-- Rate limiter: no SET search_path on the two plain C functions that run no
-- SQL (a GUC save/restore per call; see sql/install/rate_limit.sql).
ALTER FUNCTION pgext.rate_limit(text, integer, double precision, integer) RESET search_path;
ALTER FUNCTION pgext.rate_limit_reset(text) RESET search_path;

------------------------------------------------------------------------------
-- 1.1: tenant isolation (issue 13): pgext.set_account, row-level security,
-- the read-only role pgext_support.  Fresh installs: sql/install/core.sql
-- (the role), accounts_scope.sql (the functions), tenant.sql (RLS, policies,
-- grants) and the account checks in the functions changed below.
------------------------------------------------------------------------------

-- The new role, created or adopted with the same safety checks as the others
-- (sql/install/core.sql).
DO $$
DECLARE
  mark CONSTANT pg_catalog.text := 'pgext role: created by CREATE EXTENSION pgext';
  r pg_catalog.text;
  a record;
  attrs pg_catalog.text[];
  members pg_catalog.text;
  memberships pg_catalog.text;
BEGIN
  FOREACH r IN ARRAY ARRAY['pgext_support'] LOOP
    SELECT * INTO a FROM pg_catalog.pg_authid WHERE rolname = r;
    IF NOT FOUND THEN
      EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
      EXECUTE pg_catalog.format('COMMENT ON ROLE %I IS %L', r, mark);
      CONTINUE;
    END IF;
    attrs := pg_catalog.array_remove(ARRAY[
      CASE WHEN a.rolcanlogin THEN 'LOGIN' END,
      CASE WHEN a.rolsuper THEN 'SUPERUSER' END,
      CASE WHEN a.rolcreatedb THEN 'CREATEDB' END,
      CASE WHEN a.rolcreaterole THEN 'CREATEROLE' END,
      CASE WHEN a.rolreplication THEN 'REPLICATION' END,
      CASE WHEN a.rolbypassrls THEN 'BYPASSRLS' END,
      CASE WHEN a.rolpassword IS NOT NULL THEN 'PASSWORD' END], NULL);
    IF pg_catalog.cardinality(attrs) > 0 THEN
      RAISE EXCEPTION 'role % already exists with attributes pgext does not give it: %',
                      r, pg_catalog.array_to_string(attrs, ', ')
        USING ERRCODE = '55000',
              DETAIL = pg_catalog.format('pgext adopts an existing %s only if it looks like a role pgext creates (NOLOGIN, no other attribute): whoever logs in as it or uses its attributes would hold every right pgext grants it.', r),
              HINT = pg_catalog.format('Check who created %1$s and why; then remove the attributes (ALTER ROLE %1$s NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD NULL) or drop the role, and run ALTER EXTENSION pgext UPDATE again. To log in with its rights, create your own login role and GRANT %1$s TO it.', r);
    END IF;
    IF pg_catalog.shobj_description(a.oid, 'pg_authid') IS NOT DISTINCT FROM mark THEN
      CONTINUE;
    END IF;
    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(m.rolname), ', ' ORDER BY m.rolname) INTO members
      FROM pg_catalog.pg_auth_members am JOIN pg_catalog.pg_roles m ON m.oid = am.member
     WHERE am.roleid = a.oid;
    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(g.rolname), ', ' ORDER BY g.rolname) INTO memberships
      FROM pg_catalog.pg_auth_members am JOIN pg_catalog.pg_roles g ON g.oid = am.roleid
     WHERE am.member = a.oid;
    IF members IS NOT NULL OR memberships IS NOT NULL THEN
      RAISE EXCEPTION 'role % already exists, was not created by pgext, and %', r,
                      CASE WHEN members IS NOT NULL THEN 'has members: ' || members
                           ELSE 'is a member of: ' || memberships END
        USING ERRCODE = '55000',
              DETAIL = pg_catalog.format('Members of %1$s would get every right pgext grants it without anyone having decided so. pgext keeps the members only of roles it created, which carry the comment ''%2$s''.', r, mark),
              HINT = pg_catalog.format('Check who created %1$s and who granted what. Then either revoke: %3$s, or drop the role; or, if these grants are yours and wanted, adopt the role deliberately: COMMENT ON ROLE %1$s IS ''%2$s''; and run ALTER EXTENSION pgext UPDATE again.', r, mark,
                       CASE WHEN members IS NOT NULL
                            THEN pg_catalog.format('REVOKE %s FROM %s', r, members)
                            ELSE pg_catalog.format('REVOKE %s FROM %s', memberships, r) END);
    END IF;
    -- clean and alone: pgext takes it over, and keeps what a DBA grants it from now on
    EXECUTE pg_catalog.format('COMMENT ON ROLE %I IS %L', r, mark);
  END LOOP;
END
$$;
-- Bind this transaction to an account: the row-level security policies then
-- show the caller that account's rows only, and account-scoped functions
-- refuse any other account (42501).  The binding ends with the transaction
-- (safe behind transaction-mode poolers); outside BEGIN it covers the
-- statement's own transaction only.  NULL 22004, unknown account PX001,
-- another account in the same transaction 42501.
CREATE FUNCTION pgext.set_account(account uuid) RETURNS uuid
AS 'MODULE_PATHNAME', 'set_account'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp;

-- The account this transaction acts for (NULL: not bound).  The policies read it.
CREATE FUNCTION pgext.current_account() RETURNS uuid
AS 'MODULE_PATHNAME', 'current_account'
LANGUAGE C STABLE PARALLEL RESTRICTED;

-- Internal, for pgext's SQL and PL/pgSQL functions (they call them as the
-- owner): refuse an account-scoped call for another account than the bound
-- one (NULL: a call for all accounts or the platform, refused while bound);
-- refuse a platform-level call while bound; whether a listing may show a row
-- of an account to the caller.
CREATE FUNCTION pgext.account_scope_check(account uuid) RETURNS void
AS 'MODULE_PATHNAME', 'account_scope_check'
LANGUAGE C STABLE SET search_path = pg_catalog, pgext, pg_temp;
CREATE FUNCTION pgext.account_scope_platform(what text) RETURNS void
AS 'MODULE_PATHNAME', 'account_scope_platform'
LANGUAGE C STABLE SET search_path = pg_catalog, pgext, pg_temp;
CREATE FUNCTION pgext.account_scope_visible(account uuid) RETURNS boolean
AS 'MODULE_PATHNAME', 'account_scope_visible'
LANGUAGE C STABLE SET search_path = pg_catalog, pgext, pg_temp;

REVOKE ALL ON FUNCTION
  pgext.set_account(uuid),
  pgext.current_account(),
  pgext.account_scope_check(uuid),
  pgext.account_scope_platform(text),
  pgext.account_scope_visible(uuid)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgext.set_account(uuid), pgext.current_account()
  TO pgext_app, pgext_admin, pgext_support, pgext_secret_reader, pgext_secret_writer;

-- Functions that now check the account the transaction acts for.
CREATE OR REPLACE FUNCTION pgext.billing_access(account uuid, at timestamptz DEFAULT pg_catalog.now())
RETURNS TABLE (access text, until timestamptz, subscription_id text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
  SELECT pgext.account_scope_check($1);
  SELECT a.access, a.until, a.sub FROM (
    SELECT 'lifetime'::pg_catalog.text AS access, NULL::pg_catalog.timestamptz AS until,
           NULL::pg_catalog.text AS sub, 0 AS rank
      FROM pgext.stripe_purchases p WHERE p.account_id = $1 AND p.kind = 'lifetime'
    UNION ALL
    SELECT CASE WHEN NOT x.active THEN 'grace'
                WHEN x.ends IS NOT NULL THEN 'canceling'
                ELSE s.status END,
           CASE WHEN x.active THEN COALESCE(x.ends, s.current_period_end) ELSE s.grace_until END,
           s.id,
           CASE WHEN x.active THEN 1 ELSE 3 END
      FROM pgext.stripe_subscriptions s
     CROSS JOIN LATERAL (
       SELECT s.status IN ('active', 'trialing') AS active,
              -- a scheduled end: at period end, or at cancel_at (newer API versions)
              LEAST(CASE WHEN s.cancel_at_period_end THEN s.current_period_end END, s.cancel_at) AS ends) x
     WHERE s.account_id = $1
       AND ((x.active AND (x.ends IS NULL OR x.ends > $2))
         OR (s.status IN ('past_due', 'unpaid') AND s.grace_until > $2))
    UNION ALL
    SELECT 'granted', g.until, NULL, 2
      FROM pgext.access_grants g
     WHERE g.account_id = $1 AND g.revoked_at IS NULL AND g.until > $2
    UNION ALL
    SELECT 'none', NULL, NULL, 4
  ) a ORDER BY a.rank, a.until DESC NULLS FIRST LIMIT 1
$$;
CREATE OR REPLACE FUNCTION pgext.access_grant(account uuid, until timestamptz, reason text) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  gid pg_catalog.int8;
BEGIN
  PERFORM pgext.account_scope_check($1);
  IF $1 IS NULL OR NOT EXISTS (SELECT FROM pgext.accounts a WHERE a.id = $1) THEN
    RAISE EXCEPTION 'account % does not exist', COALESCE($1::pg_catalog.text, 'NULL')
      USING ERRCODE = 'PX001', HINT = 'Create it first with pgext.account_create().';
  END IF;
  IF $2 IS NULL OR $2 <= pg_catalog.now() THEN
    RAISE EXCEPTION 'an access grant must end in the future'
      USING ERRCODE = '22023', HINT = 'Pass until as a time after now(), e.g. now() + ''30 days''.';
  END IF;
  IF $2 > pg_catalog.now() + '10 years'::pg_catalog.interval THEN
    RAISE EXCEPTION 'an access grant may last at most 10 years'
      USING ERRCODE = '22023', HINT = 'Grant a shorter time (and renew it); sell a lifetime price for lasting access.';
  END IF;
  IF $3 IS NULL OR pg_catalog.btrim($3) = '' OR pg_catalog.length($3) > 1000 THEN
    RAISE EXCEPTION 'an access grant needs a reason (1 to 1000 characters)'
      USING ERRCODE = '22023', HINT = 'Say why, e.g. ''partner demo until the launch''.';
  END IF;
  INSERT INTO pgext.access_grants (account_id, until, reason)
  VALUES ($1, $2, $3) RETURNING id INTO gid;
  INSERT INTO pgext.outbox (account_id, kind, until, detail)
  VALUES ($1, 'access_granted', $2, 'grant ' || gid || ': ' || $3);
  RETURN gid;
END
$$;
CREATE OR REPLACE FUNCTION pgext.access_revoke(grant_id bigint, reason text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  g pgext.access_grants;
BEGIN
  IF $2 IS NULL OR pg_catalog.btrim($2) = '' OR pg_catalog.length($2) > 1000 THEN
    RAISE EXCEPTION 'revoking an access grant needs a reason (1 to 1000 characters)'
      USING ERRCODE = '22023', HINT = 'Say why, e.g. ''partner contract ended''.';
  END IF;
  SELECT * INTO g FROM pgext.access_grants WHERE id = $1 FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'access grant % does not exist', COALESCE($1::pg_catalog.text, 'NULL')
      USING ERRCODE = 'P0002',
            HINT = 'List an account''s grants with: SELECT * FROM pgext.access_grants WHERE account_id = ''<uuid>''.';
  END IF;
  PERFORM pgext.account_scope_check(g.account_id);
  -- nothing to end: revoked, ran out, or already announced as ended (by an
  -- access_expire that committed while this call waited for the row)
  IF g.revoked_at IS NOT NULL OR g.until <= pg_catalog.now() OR g.ended_announced_at IS NOT NULL THEN
    RETURN false;
  END IF;
  UPDATE pgext.access_grants
     SET revoked_at = pg_catalog.now(), revoked_by = SESSION_USER, revoke_reason = $2,
         ended_announced_at = pg_catalog.now()
   WHERE id = g.id;
  INSERT INTO pgext.outbox (account_id, kind, until, detail)
  VALUES (g.account_id, 'access_grant_ended', pg_catalog.now(), 'grant ' || g.id || ' revoked: ' || $2);
  RETURN true;
END
$$;
CREATE OR REPLACE FUNCTION pgext.account_server_desired(account uuid, paused_since timestamptz DEFAULT NULL,
                                             at timestamptz DEFAULT pg_catalog.now())
RETURNS TABLE (desired_state text, reason text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  b record;
  l record;
BEGIN
  PERFORM pgext.account_scope_check($1);
  IF $1 IS NULL OR NOT EXISTS (SELECT FROM pgext.accounts a WHERE a.id = $1) THEN
    RAISE EXCEPTION 'account % does not exist', COALESCE($1::pg_catalog.text, 'NULL')
      USING ERRCODE = 'PX001', HINT = 'Create it first with pgext.account_create().';
  END IF;
  IF $3 IS NULL THEN
    RAISE EXCEPTION 'at must not be NULL' USING ERRCODE = '22004', HINT = 'Omit it for now().';
  END IF;
  SELECT * INTO b FROM pgext.billing_access($1, $3);
  IF b.access <> 'none' THEN
    RETURN QUERY SELECT * FROM pgext.server_desired_state(b.access, NULL, NULL, $2, $3, b.until);
    RETURN;
  END IF;
  SELECT x.lapse, x.lapsed_at INTO l FROM (
    SELECT CASE WHEN s.status IN ('canceled', 'incomplete_expired') OR s.ended_at IS NOT NULL
                  OR s.status IN ('active', 'trialing') THEN 'ended'
                ELSE 'unpaid' END AS lapse,
           CASE WHEN s.status IN ('canceled', 'incomplete_expired') OR s.ended_at IS NOT NULL
                  THEN COALESCE(s.ended_at, s.current_period_end, s.cancel_at)
                WHEN s.status IN ('active', 'trialing')
                  THEN LEAST(CASE WHEN s.cancel_at_period_end THEN s.current_period_end END, s.cancel_at)
                ELSE COALESCE(s.grace_until, s.updated_at) END AS lapsed_at
      FROM pgext.stripe_subscriptions s
     WHERE s.account_id = $1
       -- no grace period and incomplete (or only a stub): it never gave access
       AND NOT (s.grace_until IS NULL AND (s.status IS NULL OR s.status = 'incomplete'))
    UNION ALL
    SELECT 'ended', LEAST(g.until, g.revoked_at)
      FROM pgext.access_grants g
     WHERE g.account_id = $1 AND (g.revoked_at IS NOT NULL OR g.until <= $3)
  ) x ORDER BY x.lapsed_at DESC NULLS LAST, x.lapse = 'unpaid' DESC LIMIT 1;
  RETURN QUERY SELECT * FROM pgext.server_desired_state('none', COALESCE(l.lapse, 'ended'),
                                                        l.lapsed_at, $2, $3);
END
$$;
CREATE OR REPLACE FUNCTION pgext.credit_audit(account uuid DEFAULT NULL)
RETURNS TABLE (account uuid, balance bigint, ledger_sum bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
  SELECT pgext.account_scope_check($1);
  SELECT a.id, a.balance, COALESCE(l.total, 0)::bigint
    FROM pgext.accounts a
    LEFT JOIN (SELECT account_id, sum(delta) AS total
                 FROM pgext.credit_ledger
                WHERE $1 IS NULL OR account_id = $1
                GROUP BY account_id) l ON l.account_id = a.id
   WHERE ($1 IS NULL OR a.id = $1)
     AND a.balance IS DISTINCT FROM COALESCE(l.total, 0)
$$;
CREATE OR REPLACE FUNCTION pgext.credit_verify()
RETURNS TABLE (account uuid, problem text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
  SELECT pgext.account_scope_platform('credit_verify');
  SELECT a.id, 'lot_credits ' || a.lot_credits || ' <> sum of lot remaining ' || COALESCE(s.total, 0)
    FROM pgext.accounts a
    LEFT JOIN (SELECT account_id, sum(remaining) AS total FROM pgext.credit_lots GROUP BY 1) s
           ON s.account_id = a.id
   WHERE a.lot_credits <> COALESCE(s.total, 0)
  UNION ALL
  SELECT l.account_id, 'ledger entry ' || l.id || ' balance_after ' || l.balance_after
         || ' <> running sum ' || l.running
    FROM (SELECT id, account_id, balance_after,
                 sum(delta) OVER (PARTITION BY account_id ORDER BY id) AS running
            FROM pgext.credit_ledger) l
   WHERE l.balance_after <> l.running
  UNION ALL
  SELECT r.account_id, 'reservation ' || r.id || ' parts do not add up to held ' || r.held
    FROM pgext.credit_reservations r
   WHERE r.status = 'held'
     AND r.held <> r.pool_part + COALESCE((SELECT sum(p) FROM unnest(r.lot_parts) p), 0)
$$;
CREATE OR REPLACE FUNCTION pgext.outbox_since(after_id bigint DEFAULT 0, "limit" integer DEFAULT 100)
RETURNS SETOF pgext.outbox
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
BEGIN
  IF $2 IS NULL OR $2 < 1 OR $2 > 10000 THEN
    RAISE EXCEPTION 'limit must be between 1 and 10000, got %', COALESCE($2::pg_catalog.text, 'NULL')
      USING ERRCODE = '22023',
            HINT = 'Call outbox_since repeatedly with the last id you processed to page through more rows.';
  END IF;
  -- bound by pgext.set_account: that account's rows only
  RETURN QUERY SELECT * FROM pgext.outbox o
    WHERE o.id > COALESCE($1, 0)
      AND (pgext.current_account() IS NULL OR o.account_id = pgext.current_account())
    ORDER BY o.id LIMIT $2;
END
$$;
CREATE OR REPLACE FUNCTION pgext.secret_list()
RETURNS TABLE (id uuid, account_id uuid, name text, last4 text, key_version integer,
               created_at timestamptz, updated_at timestamptz, last_used timestamptz,
               expires_at timestamptz, expired boolean)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
  SELECT s.id, s.account_id, s.name, s.last4, s.key_version, s.created_at, s.updated_at,
         GREATEST(f.last_at, p.last_at), s.expires_at,
         COALESCE(s.expires_at <= pg_catalog.clock_timestamp(), false)
    FROM pgext.secrets s
    LEFT JOIN (SELECT a.secret_id, max(a.last_at) AS last_at
                 FROM pgext.secret_audit a
                WHERE a.op = 'get' AND a.outcome = 'ok'
                GROUP BY a.secret_id) f ON f.secret_id = s.id
    LEFT JOIN (SELECT q.secret_id, max(q.last_at) AS last_at
                 FROM pgext.secret_audit_pending() q
                WHERE q.op = 'get' AND q.outcome = 'ok'
                GROUP BY q.secret_id) p ON p.secret_id = s.id
   WHERE pgext.account_scope_visible(s.account_id)
$$;
CREATE OR REPLACE FUNCTION pgext.webhook_claim(source text, "limit" integer DEFAULT 100)
RETURNS TABLE (event_id text, type text, payload jsonb, received_at timestamptz)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
  SELECT pgext.account_scope_platform('webhook_claim');
  WITH c AS (
    SELECT e.source, e.event_id FROM pgext.webhook_events e
     WHERE e.source = $1 AND e.status = 'received'
     ORDER BY e.received_at, e.event_id
     LIMIT $2 FOR UPDATE SKIP LOCKED)
  UPDATE pgext.webhook_events e SET status = 'claimed', applied_at = pg_catalog.now()
    FROM c WHERE e.source = c.source AND e.event_id = c.event_id
  RETURNING e.event_id, e.type, e.payload, e.received_at
$$;
CREATE OR REPLACE FUNCTION pgext.server_request(account uuid, provision_key text, spec jsonb) RETURNS bigint
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
  IF NOT EXISTS (SELECT FROM pgext.accounts a WHERE a.id = $1) THEN
    RAISE EXCEPTION 'account % does not exist', $1 USING ERRCODE = 'PX001',
      HINT = 'Create it first with pgext.account_create(external_id).';
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
CREATE OR REPLACE FUNCTION pgext.server_delete(server bigint, reason text) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  s pgext.servers := pgext.server_lock($1);
BEGIN
  PERFORM pgext.account_scope_check(s.account_id);
  IF $2 IS NULL OR pg_catalog.btrim($2) = '' THEN
    RAISE EXCEPTION 'deleting a server needs a reason' USING ERRCODE = '22023',
      HINT = 'Say why, e.g. ''customer closed the agent''; it is kept in pgext.server_history.';
  END IF;
  RETURN pgext.server_begin_delete($1, $2, pg_catalog.session_user(), pg_catalog.now());
END
$$;
CREATE OR REPLACE FUNCTION pgext.server_status_of(account uuid) RETURNS SETOF pgext.server_status
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
  SELECT pgext.account_scope_check($1);
  SELECT * FROM pgext.server_status st WHERE st.account_id = $1 ORDER BY st.server
$$;
CREATE OR REPLACE FUNCTION pgext.stripe_sync_account(account uuid) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  cus pg_catalog.text;
  rid bigint;
BEGIN
  PERFORM pgext.account_scope_check($1);
  SELECT a.stripe_customer_id INTO cus FROM pgext.accounts a WHERE a.id = $1;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'account % does not exist', COALESCE($1::pg_catalog.text, 'NULL')
      USING ERRCODE = 'PX001', HINT = 'Create it first with pgext.account_create().';
  END IF;
  IF cus IS NULL THEN
    RAISE EXCEPTION 'account % has no Stripe customer', $1 USING ERRCODE = '22023',
      HINT = 'Link it with pgext.account_set_stripe_customer(account, ''cus_...''), or wait for the checkout webhook.';
  END IF;
  IF cus !~ '^[A-Za-z0-9_]{1,255}$' THEN
    RAISE EXCEPTION 'the Stripe customer id of account % is not a Stripe id', $1 USING ERRCODE = '22023',
      HINT = 'Fix it with pgext.account_set_stripe_customer(account, ''cus_...'').';
  END IF;
  SELECT x.id INTO rid FROM pgext.stripe_sync_runs x
   WHERE x.kind = 'account' AND x.account_id = $1 AND x.customer_id = cus AND x.finished_at IS NULL
     AND x.page_claim = 0
   ORDER BY x.id LIMIT 1;
  IF rid IS NULL THEN
    INSERT INTO pgext.stripe_sync_runs (kind, account_id, customer_id, started_at, page_due_at, progress_at)
    VALUES ('account', $1, cus, pg_catalog.now(), pg_catalog.now(), pg_catalog.now())
    RETURNING id INTO rid;
  END IF;
  PERFORM pgext.worker_wake();
  RETURN rid;
END
$$;
CREATE OR REPLACE FUNCTION pgext.stripe_sync_wait(request bigint, timeout interval DEFAULT '10 seconds') RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  deadline pg_catalog.timestamptz;
  st pg_catalog.text;
  why pg_catalog.text;
  mine boolean;
BEGIN
  IF $1 IS NULL THEN
    RAISE EXCEPTION 'request must not be NULL' USING ERRCODE = '22004',
      HINT = 'Pass the id pgext.stripe_sync_account returned.';
  END IF;
  IF $2 IS NULL OR $2 < interval '0' OR $2 > interval '5 minutes' THEN
    RAISE EXCEPTION 'timeout must be between 0 and 5 minutes, not %', COALESCE($2::pg_catalog.text, 'NULL')
      USING ERRCODE = '22023', HINT = 'Pass e.g. ''10 seconds''; call again to wait longer.';
  END IF;
  PERFORM pgext.account_scope_check(x.account_id)
     FROM pgext.stripe_sync_runs x WHERE x.id = $1 AND x.kind = 'account';
  deadline := pg_catalog.clock_timestamp() + $2;
  LOOP
    SELECT x.status, x.error, x.xmin::pg_catalog.text::bigint
             = pg_catalog.pg_current_xact_id_if_assigned()::pg_catalog.text::bigint % 4294967296
      INTO st, why, mine
      FROM pgext.stripe_sync_runs x WHERE x.id = $1 AND x.kind = 'account';
    IF NOT FOUND THEN
      RAISE EXCEPTION 'no on-demand sync request %', $1 USING ERRCODE = 'P0002',
        HINT = 'Pass the id pgext.stripe_sync_account returned.';
    END IF;
    IF st = 'done' THEN
      RETURN 'done';
    ELSIF st <> 'running' THEN
      RETURN 'failed: ' || COALESCE(why, st);
    END IF;
    IF mine THEN
      RAISE EXCEPTION 'request % is not committed yet', $1 USING ERRCODE = '25000',
        HINT = 'Commit the transaction that called pgext.stripe_sync_account, then wait: the worker cannot see it before.';
    END IF;
    IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
      RAISE EXCEPTION 'pgext.stripe_sync_wait needs READ COMMITTED' USING ERRCODE = '25000',
        HINT = 'Call it outside a REPEATABLE READ or SERIALIZABLE transaction: they never see the worker''s commit.';
    END IF;
    IF pg_catalog.clock_timestamp() >= deadline THEN
      RETURN 'timeout';
    END IF;
    PERFORM pg_catalog.pg_sleep(LEAST(0.05, GREATEST(0, pg_catalog.date_part('epoch', deadline - pg_catalog.clock_timestamp()))));
  END LOOP;
END
$$;
CREATE OR REPLACE FUNCTION pgext.health_check_add(server bigint, url text, kind text DEFAULT 'shallow',
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
CREATE OR REPLACE FUNCTION pgext.health_check_update("check" bigint, url text DEFAULT NULL, every interval DEFAULT NULL,
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
CREATE OR REPLACE FUNCTION pgext.health_check_remove("check" bigint) RETURNS boolean
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
-- Views run with the caller's rights (the policies apply to the caller).
ALTER VIEW pgext.secret_catalog SET (security_invoker = true);
ALTER VIEW pgext.stripe_sync_status SET (security_invoker = true);
ALTER VIEW pgext.stripe_sync_requests SET (security_invoker = true);
ALTER VIEW pgext.worker_status SET (security_invoker = true);
ALTER VIEW pgext.worker_api_status SET (security_invoker = true);

-- Every table of the schema has row-level security enabled; a role without a
-- policy on a table sees none of its rows.  Not FORCE'd: the owner (pgext's
-- SECURITY DEFINER functions, the worker, pg_dump as a superuser) is not
-- subject to it.  Policies:
--   staff_read    pgext_admin and pgext_support read every row (an explicit
--                 bypass; neither may write to a table)
--   account_read  pgext_app reads the rows of the account its transaction
--                 acts for (pgext.set_account); unbound, none
-- Tables without an account (prices, webhooks, the worker's, the fleet's
-- bookkeeping) get no account_read: they are platform data.
ALTER TABLE pgext.accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.access_grants ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.alerts ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.api_calls ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.credit_ledger ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.credit_lots ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.credit_reservations ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.health_breaker ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.health_checks ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.health_config ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.health_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.health_servers ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.hetzner_cold ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.hetzner_reconcile_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.hetzner_seen ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.secret_audit ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.secrets ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.server_history ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.server_orphans ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.server_transitions ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.servers ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.stripe_events_cursor ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.stripe_object_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.stripe_prices ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.stripe_purchases ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.stripe_subscriptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.stripe_sync_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.stripe_unmatched ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.webhook_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.webhook_rejections ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.webhook_sources ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.worker_lease ENABLE ROW LEVEL SECURITY;

CREATE POLICY staff_read ON pgext.accounts FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.access_grants FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.alerts FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.api_calls FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.credit_ledger FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.credit_lots FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.credit_reservations FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.health_breaker FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.health_checks FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.health_config FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.health_events FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.health_servers FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.hetzner_cold FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.hetzner_reconcile_runs FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.hetzner_seen FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.outbox FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.secret_audit FOR SELECT TO pgext_admin, pgext_support USING (true);
-- support gets no SELECT on secrets (ciphertext); it reads secret_catalog
CREATE POLICY staff_read ON pgext.secrets FOR SELECT TO pgext_admin USING (true);
CREATE POLICY staff_read ON pgext.server_history FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.server_orphans FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.server_transitions FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.servers FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.stripe_events_cursor FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.stripe_object_versions FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.stripe_prices FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.stripe_purchases FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.stripe_subscriptions FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.stripe_sync_runs FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.stripe_unmatched FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.webhook_events FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.webhook_rejections FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.webhook_sources FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.worker_lease FOR SELECT TO pgext_admin, pgext_support USING (true);

CREATE POLICY account_read ON pgext.accounts FOR SELECT TO pgext_app
  USING (id = pgext.current_account());
CREATE POLICY account_read ON pgext.access_grants FOR SELECT TO pgext_app
  USING (account_id = pgext.current_account());
CREATE POLICY account_read ON pgext.credit_ledger FOR SELECT TO pgext_app
  USING (account_id = pgext.current_account());
CREATE POLICY account_read ON pgext.credit_lots FOR SELECT TO pgext_app
  USING (account_id = pgext.current_account());
CREATE POLICY account_read ON pgext.credit_reservations FOR SELECT TO pgext_app
  USING (account_id = pgext.current_account());
CREATE POLICY account_read ON pgext.health_checks FOR SELECT TO pgext_app
  USING (account_id = pgext.current_account());
CREATE POLICY account_read ON pgext.health_events FOR SELECT TO pgext_app
  USING (account_id = pgext.current_account());
CREATE POLICY account_read ON pgext.health_servers FOR SELECT TO pgext_app
  USING (account_id = pgext.current_account());
CREATE POLICY account_read ON pgext.outbox FOR SELECT TO pgext_app
  USING (account_id = pgext.current_account());
CREATE POLICY account_read ON pgext.server_history FOR SELECT TO pgext_app
  USING (EXISTS (SELECT FROM pgext.servers s WHERE s.id = server_id AND s.account_id = pgext.current_account()));
CREATE POLICY account_read ON pgext.servers FOR SELECT TO pgext_app
  USING (account_id = pgext.current_account());
CREATE POLICY account_read ON pgext.stripe_purchases FOR SELECT TO pgext_app
  USING (account_id = pgext.current_account());
CREATE POLICY account_read ON pgext.stripe_subscriptions FOR SELECT TO pgext_app
  USING (account_id = pgext.current_account());

-- pgext_app reads its account's rows (the policies above filter them)
GRANT SELECT ON pgext.accounts, pgext.access_grants, pgext.credit_ledger, pgext.credit_lots,
  pgext.credit_reservations, pgext.health_checks, pgext.health_events, pgext.health_servers,
  pgext.health_status, pgext.outbox, pgext.server_history, pgext.server_status, pgext.servers,
  pgext.stripe_purchases, pgext.stripe_subscriptions
  TO pgext_app;

-- pgext_support: read-only support.  Every table and view except secrets
-- (ciphertext: support reads secret_catalog, without it), and the functions
-- that only read: balances, audits, status, what the views call.
GRANT USAGE ON SCHEMA pgext TO pgext_support;
GRANT SELECT ON pgext.accounts, pgext.access_grants, pgext.alerts, pgext.api_calls,
  pgext.credit_ledger, pgext.credit_lots, pgext.credit_reservations, pgext.health_breaker,
  pgext.health_checks, pgext.health_config, pgext.health_events, pgext.health_fleet,
  pgext.health_servers, pgext.health_status, pgext.hetzner_cold, pgext.hetzner_reconcile_runs,
  pgext.hetzner_seen, pgext.outbox, pgext.secret_audit, pgext.secret_catalog, pgext.server_history,
  pgext.server_orphans, pgext.server_status, pgext.server_transitions, pgext.servers,
  pgext.stripe_events_cursor, pgext.stripe_object_versions, pgext.stripe_prices,
  pgext.stripe_purchases, pgext.stripe_subscriptions, pgext.stripe_sync_requests,
  pgext.stripe_sync_runs, pgext.stripe_sync_status, pgext.stripe_unmatched, pgext.webhook_events,
  pgext.webhook_rejections, pgext.webhook_sources, pgext.worker_api_status, pgext.worker_lease,
  pgext.worker_status
  TO pgext_support;
GRANT EXECUTE ON FUNCTION
  pgext.billing_access(uuid, timestamptz),
  pgext.credit_audit(uuid),
  pgext.credit_balance(uuid),
  pgext.credit_verify(),
  pgext.health_config_version(),
  pgext.health_poller(),
  pgext.outbox_since(bigint, integer),
  pgext.secret_list(),
  pgext.server_status_of(uuid),
  pgext.worker_apis(),
  pgext.worker_queue_depth(text),
  pgext.worker_tasks()
  TO pgext_support;

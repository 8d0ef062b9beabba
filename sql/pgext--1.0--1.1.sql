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

-- bad inputs (issue 13)
-- Error messages show at most 64 characters of a rejected value; reasons are
-- 1 to 1000 characters, server_claim's worker 1 to 200; webhook_source_set
-- checks secret_name, prefix, id_key and type_key; health_record keeps at
-- most 1000 characters of an error (test sql/bad_inputs.sql).

CREATE OR REPLACE FUNCTION pgext.stripe_price_set(price_id text, kind text, credits bigint DEFAULT 0,
                                       rollover_cap bigint DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
BEGIN
  IF $1 IS NULL OR $1 !~ '^(price|plan)_[A-Za-z0-9_]+$' THEN
    RAISE EXCEPTION 'invalid Stripe price id %', pg_catalog.quote_nullable(pg_catalog.left($1, 64))
      USING ERRCODE = '22023', HINT = 'Stripe price ids look like ''price_...''.';
  END IF;
  IF $2 IS NULL OR $2 NOT IN ('subscription', 'lifetime', 'credit_pack') THEN
    RAISE EXCEPTION 'invalid price kind %', pg_catalog.quote_nullable(pg_catalog.left($2, 64))
      USING ERRCODE = '22023', HINT = 'Use ''subscription'', ''lifetime'' or ''credit_pack''.';
  END IF;
  IF $3 IS NULL OR $3 < 0 OR ($2 = 'credit_pack' AND $3 = 0) THEN
    RAISE EXCEPTION 'invalid credits % for a % price', pg_catalog.quote_nullable($3), $2
      USING ERRCODE = '22023', HINT = 'credits must be >= 0, and > 0 for a credit pack.';
  END IF;
  IF $4 < 0 THEN
    RAISE EXCEPTION 'rollover_cap must be zero or positive' USING ERRCODE = '22023';
  END IF;
  INSERT INTO pgext.stripe_prices AS p (price_id, kind, credits, rollover_cap)
  VALUES ($1, $2, $3, $4)
  ON CONFLICT ON CONSTRAINT stripe_prices_pkey DO UPDATE
    SET kind = EXCLUDED.kind, credits = EXCLUDED.credits, rollover_cap = EXCLUDED.rollover_cap;
END
$$;

CREATE OR REPLACE FUNCTION pgext.server_desired_state(access text, lapse text, lapsed_at timestamptz,
                                           paused_since timestamptz, at timestamptz,
                                           access_until timestamptz DEFAULT NULL)
RETURNS TABLE (desired_state text, reason text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  -- the windows as seconds (a '1d' interval would be a calendar day, 23 or
  -- 25 hours across a DST change in the session's time zone)
  delete_after pg_catalog.interval := pg_catalog.make_interval(secs => pg_catalog.date_part('epoch',
    COALESCE(pg_catalog.current_setting('pgext.server_delete_after', true), '1d')::pg_catalog.interval));
  retention pg_catalog.interval := pg_catalog.make_interval(secs => pg_catalog.date_part('epoch',
    COALESCE(pg_catalog.current_setting('pgext.server_paused_retention', true), '14d')::pg_catalog.interval));
  d_until pg_catalog.text := pg_catalog.to_char($6 AT TIME ZONE 'UTC', 'YYYY-MM-DD');
  d_lapsed pg_catalog.text := pg_catalog.to_char($3 AT TIME ZONE 'UTC', 'YYYY-MM-DD');
  d_paused pg_catalog.text := pg_catalog.to_char($4 AT TIME ZONE 'UTC', 'YYYY-MM-DD');
  over_retention boolean := $4 + retention <= $5;
  -- the retention in words, whatever the session's IntervalStyle
  r_secs pg_catalog.int8 := pg_catalog.date_part('epoch', retention)::pg_catalog.int8;
  r_text pg_catalog.text := CASE WHEN r_secs % 86400 = 0 THEN (r_secs / 86400) || ' days'
                                 WHEN r_secs % 3600 = 0 THEN (r_secs / 3600) || ' hours'
                                 ELSE (r_secs / 60) || ' minutes' END;
BEGIN
  IF $5 IS NULL THEN
    RAISE EXCEPTION 'at must not be NULL' USING ERRCODE = '22004', HINT = 'Pass the time to decide for, e.g. now().';
  END IF;
  IF $1 IS NULL OR $1 NOT IN ('lifetime', 'active', 'trialing', 'canceling', 'granted', 'grace', 'none') THEN
    RAISE EXCEPTION 'unknown access kind %', pg_catalog.quote_nullable(pg_catalog.left($1, 64))
      USING ERRCODE = '22023',
            HINT = 'Pass billing_access''s access: lifetime, active, trialing, canceling, granted, grace or none.';
  END IF;
  IF $2 IS NOT NULL AND $2 NOT IN ('unpaid', 'ended') THEN
    RAISE EXCEPTION 'unknown lapse %', pg_catalog.quote_nullable(pg_catalog.left($2, 64))
      USING ERRCODE = '22023', HINT = 'Pass ''unpaid'', ''ended'' or NULL (no billing on record).';
  END IF;

  desired_state := 'active';
  CASE $1
    WHEN 'lifetime' THEN reason := 'active: lifetime access';
    WHEN 'active' THEN reason := 'active: subscription active';
    WHEN 'trialing' THEN reason := 'active: trial' || COALESCE(' until ' || d_until, '');
    WHEN 'canceling' THEN reason := 'active: subscription canceled, access' || COALESCE(' until ' || d_until, '');
    WHEN 'granted' THEN reason := 'active: access granted by an operator' || COALESCE(' until ' || d_until, '');
    WHEN 'grace' THEN reason := 'grace: payment failed, access' || COALESCE(' until ' || d_until, '');
    ELSE desired_state := NULL;
  END CASE;
  IF desired_state IS NOT NULL THEN
    RETURN NEXT;
    RETURN;
  END IF;

  -- no access
  IF over_retention THEN
    desired_state := 'deleting';
    reason := 'deleting: paused since ' || d_paused || ', longer than ' || r_text;
  ELSIF $2 = 'unpaid' THEN
    desired_state := 'paused';
    reason := 'paused: payment failed' || COALESCE(', grace ended on ' || d_lapsed, '');
  ELSIF $2 = 'ended' AND $3 IS NOT NULL AND $3 + delete_after <= $5 THEN
    desired_state := 'deleting';
    reason := 'deleting: access ended on ' || d_lapsed;
  ELSIF $2 = 'ended' AND $3 IS NOT NULL THEN
    desired_state := 'paused';
    reason := 'paused: access ended on ' || d_lapsed || ', deleting from '
              || pg_catalog.to_char(($3 + delete_after) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC';
  ELSE
    desired_state := 'paused';
    reason := 'paused: no billing access on record';
  END IF;
  RETURN NEXT;
END
$$;

CREATE OR REPLACE FUNCTION pgext.webhook_replay(source text, event_id text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  st pg_catalog.text;
BEGIN
  SELECT e.status INTO st FROM pgext.webhook_events e
   WHERE e.source = $1 AND e.event_id = $2 FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'webhook event %/% does not exist', pg_catalog.left($1, 64), pg_catalog.left($2, 64)
      USING ERRCODE = 'P0002', HINT = 'List dead letters with: SELECT * FROM pgext.webhook_events WHERE status = ''dead''.';
  END IF;
  IF st NOT IN ('dead', 'pending') THEN
    RETURN false;
  END IF;
  IF $1 <> 'stripe' THEN
    RAISE EXCEPTION 'only Stripe events are applied and replayed' USING ERRCODE = '22023';
  END IF;
  UPDATE pgext.webhook_events e
     SET status = 'pending', attempts = 0, next_attempt_at = '-infinity', last_error = NULL
   WHERE e.source = $1 AND e.event_id = $2;
  RETURN true;
END
$$;

CREATE OR REPLACE FUNCTION pgext.webhook_source_set(name text, secret_name text, layout text DEFAULT 'plain',
                                         encoding text DEFAULT 'hex', prefix text DEFAULT '',
                                         scheme text DEFAULT 'v1', tolerance interval DEFAULT NULL,
                                         algorithm text DEFAULT 'sha256',
                                         id_key text DEFAULT 'id', type_key text DEFAULT 'type')
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
BEGIN
  IF $1 IS NULL OR $1 !~ '^[a-z][a-z0-9_]{0,62}$' OR $1 = 'stripe' THEN
    RAISE EXCEPTION 'invalid webhook source name %', pg_catalog.quote_nullable(pg_catalog.left($1, 64))
      USING ERRCODE = '22023', HINT = 'Use 1 to 63 characters of a-z, 0-9 and _, starting with a letter; ''stripe'' is built in.';
  END IF;
  IF $2 IS NULL OR pg_catalog.btrim($2) = '' OR pg_catalog.octet_length($2) > 255 OR $2 ~ '[[:cntrl:]]' THEN
    RAISE EXCEPTION 'secret_name must be a secret name (1 to 255 bytes, no control characters)'
      USING ERRCODE = '22023', HINT = 'Name the secret-store entry holding the signing secret, e.g. ''webhook:n8n''.';
  END IF;
  IF pg_catalog.length($5) > 64 OR $5 ~ '[[:cntrl:]]' THEN
    RAISE EXCEPTION 'prefix must be at most 64 characters, without control characters'
      USING ERRCODE = '22023', HINT = 'The text before the signature, e.g. ''sha256=''; '''' for none.';
  END IF;
  IF pg_catalog.btrim($9) = '' OR pg_catalog.length($9) > 255 OR $9 ~ '[[:cntrl:]]'
     OR pg_catalog.btrim($10) = '' OR pg_catalog.length($10) > 255 OR $10 ~ '[[:cntrl:]]' THEN
    RAISE EXCEPTION 'id_key and type_key must be JSON keys of 1 to 255 characters, without control characters'
      USING ERRCODE = '22023', HINT = 'Name the payload''s top-level keys, e.g. ''id'' and ''type'' (NULL: these defaults).';
  END IF;
  IF $3 IS NULL OR $3 NOT IN ('plain', 'timestamped') THEN
    RAISE EXCEPTION 'invalid layout %', pg_catalog.quote_nullable(pg_catalog.left($3, 64))
      USING ERRCODE = '22023', HINT = 'Use ''plain'' (<prefix><sig>) or ''timestamped'' (t=<unix>,<scheme>=<sig>).';
  END IF;
  IF $4 IS NULL OR $4 NOT IN ('hex', 'base64') THEN
    RAISE EXCEPTION 'invalid encoding %', pg_catalog.quote_nullable(pg_catalog.left($4, 64))
      USING ERRCODE = '22023', HINT = 'Use ''hex'' or ''base64''.';
  END IF;
  IF $8 IS NULL OR $8 NOT IN ('sha256', 'sha512', 'sha1') THEN
    RAISE EXCEPTION 'invalid algorithm %', pg_catalog.quote_nullable(pg_catalog.left($8, 64))
      USING ERRCODE = '22023', HINT = 'Use ''sha256'', ''sha512'' or ''sha1''.';
  END IF;
  IF $7 IS NOT NULL AND $3 <> 'timestamped' THEN
    RAISE EXCEPTION 'a tolerance needs the ''timestamped'' layout'
      USING ERRCODE = '22023', HINT = 'Only timestamped signatures carry a time to check.';
  END IF;
  IF $6 IS NOT NULL AND ($6 !~ '^[A-Za-z0-9_-]{1,32}$' OR $6 = 't') THEN
    RAISE EXCEPTION 'invalid scheme %', pg_catalog.quote_literal(pg_catalog.left($6, 64))
      USING ERRCODE = '22023', HINT = 'Use 1 to 32 characters of A-Z, a-z, 0-9, _ and - (not ''t''), e.g. ''v1''.';
  END IF;
  IF $7 < interval '1 second' OR $7 > interval '1 day' THEN
    RAISE EXCEPTION 'tolerance must be between 1 second and 1 day, not %', $7
      USING ERRCODE = '22023', HINT = 'NULL uses pgext.webhook_tolerance.';
  END IF;
  INSERT INTO pgext.webhook_sources AS s (name, secret_name, layout, encoding, prefix, scheme,
                                          tolerance, algorithm, id_key, type_key)
  VALUES ($1, $2, $3, $4, COALESCE($5, ''), COALESCE($6, 'v1'), $7, $8,
          COALESCE($9, 'id'), COALESCE($10, 'type'))
  ON CONFLICT ON CONSTRAINT webhook_sources_pkey DO UPDATE
    SET secret_name = EXCLUDED.secret_name, layout = EXCLUDED.layout, encoding = EXCLUDED.encoding,
        prefix = EXCLUDED.prefix, scheme = EXCLUDED.scheme, tolerance = EXCLUDED.tolerance,
        algorithm = EXCLUDED.algorithm, id_key = EXCLUDED.id_key, type_key = EXCLUDED.type_key;
END
$$;

CREATE OR REPLACE FUNCTION pgext.server_transition(server bigint, to_state text, reason text) RETURNS text
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

CREATE OR REPLACE FUNCTION pgext.server_delete(server bigint, reason text) RETURNS text
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

CREATE OR REPLACE FUNCTION pgext.server_claim(worker text, "limit" integer DEFAULT 10,
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

CREATE OR REPLACE FUNCTION pgext.server_report(server bigint, action text, response jsonb, claim bigint DEFAULT NULL,
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

CREATE OR REPLACE FUNCTION pgext.hetzner_claim(epoch bigint, "limit" integer, classes text[],
                                    at timestamptz DEFAULT pg_catalog.now())
RETURNS TABLE (ref jsonb, class text, method text, path text, body text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  cur bigint;
  claimant pg_catalog.text;
  until pg_catalog.timestamptz;
  budget integer := $2;
  sid bigint;
  act pg_catalog.text;
  s pgext.servers;
  o pgext.server_orphans;
  run pgext.hetzner_reconcile_runs;
  req record;
  batch pg_catalog.jsonb := '[]';
  idx integer;
  poll record;
BEGIN
  IF $1 IS NULL OR $4 IS NULL THEN
    RAISE EXCEPTION 'epoch and at must not be NULL' USING ERRCODE = '22004';
  END IF;
  IF $2 IS NULL OR $2 < 1 OR $2 > 1000 THEN
    RAISE EXCEPTION 'limit must be between 1 and 1000' USING ERRCODE = '22023';
  END IF;
  IF $3 IS NULL OR pg_catalog.cardinality($3) = 0
     OR NOT ($3 <@ ARRAY['urgent', 'reconcile', 'normal']::pg_catalog.text[]) THEN
    RAISE EXCEPTION 'classes must name some of urgent, reconcile, normal, not %', COALESCE(pg_catalog.left($3::pg_catalog.text, 64), 'NULL')
      USING ERRCODE = '22023', HINT = 'Pass e.g. ARRAY[''urgent'', ''reconcile'', ''normal''].';
  END IF;
  SELECT l.epoch INTO cur FROM pgext.worker_lease l FOR SHARE;
  IF cur IS DISTINCT FROM $1 THEN
    RAISE EXCEPTION 'worker epoch % is not the current one (%)', $1, COALESCE(cur::pg_catalog.text, 'none')
      USING ERRCODE = '55000',
            HINT = 'Another worker_begin took the lease: call pgext.worker_begin(holder) and use its epoch.';
  END IF;
  claimant := 'epoch ' || $1;
  until := $4 + pg_catalog.current_setting('pgext.hetzner_claim_lease')::interval;

  IF 'urgent' = ANY ($3) THEN
    FOR sid IN
      SELECT x.id FROM pgext.servers x
       WHERE x.next_action IN ('delete', 'power_off') AND x.next_attempt_at <= $4
         AND (x.claimed_until IS NULL OR x.claimed_until <= $4)
       ORDER BY x.next_attempt_at, x.id
       LIMIT budget FOR UPDATE SKIP LOCKED
    LOOP
      s := pgext.server_take(sid, claimant, until, $4);
      SELECT * INTO req FROM pgext.hetzner_server_request(s);
      ref := req.ref; class := req.class; method := req.method; path := req.path; body := req.body;
      RETURN NEXT;
      budget := budget - 1;
    END LOOP;
    FOR o IN
      SELECT * FROM pgext.server_orphans y
       WHERE y.delete_queued_at IS NOT NULL AND y.deleted_at IS NULL AND y.kept_at IS NULL
         AND y.next_attempt_at <= $4 AND (y.claimed_until IS NULL OR y.claimed_until <= $4)
       ORDER BY y.next_attempt_at, y.hetzner_id
       LIMIT budget FOR UPDATE SKIP LOCKED
    LOOP
      UPDATE pgext.server_orphans y
         SET claim = y.claim + 1, claimed_until = until,
             attempts = y.attempts + CASE WHEN y.claimed_until IS NOT NULL THEN 1 ELSE 0 END
       WHERE y.hetzner_id = o.hetzner_id
      RETURNING * INTO o;
      class := 'urgent'; method := 'DELETE'; path := '/servers/' || o.hetzner_id; body := NULL;
      ref := pg_catalog.jsonb_build_object('kind', 'orphan_delete', 'hetzner_id', o.hetzner_id, 'claim', o.claim,
                                           'attempt', o.attempts + 1, 'method', method, 'path', path);
      RETURN NEXT;
      budget := budget - 1;
    END LOOP;
  END IF;

  IF 'reconcile' = ANY ($3) AND budget > 0 THEN
    SELECT * INTO run FROM pgext.hetzner_reconcile_runs r
     WHERE r.finished_at IS NULL AND r.next_page IS NOT NULL
       AND (r.page_in_flight_until IS NULL OR r.page_in_flight_until <= $4)
       AND COALESCE(r.page_due_at, r.started_at) <= $4
     FOR UPDATE SKIP LOCKED;
    IF FOUND THEN
      UPDATE pgext.hetzner_reconcile_runs r
         SET page_claim = r.page_claim + 1, page_in_flight_until = until,
             page_attempts = r.page_attempts + CASE WHEN r.page_in_flight_until IS NOT NULL THEN 1 ELSE 0 END
       WHERE r.id = run.id
      RETURNING * INTO run;
      class := 'reconcile'; method := 'GET'; body := NULL;
      path := pg_catalog.format('/servers?label_selector=managed-by%%3Dpgext&page=%s&per_page=50', run.next_page);
      ref := pg_catalog.jsonb_build_object('kind', 'page', 'run', run.id, 'page', run.next_page, 'claim', run.page_claim,
                                           'attempt', run.page_attempts + 1, 'method', method, 'path', path);
      RETURN NEXT;
      budget := budget - 1;
    END IF;
  END IF;

  IF 'normal' = ANY ($3) AND budget > 0 THEN
    FOR sid, act IN
      SELECT x.id, x.next_action FROM pgext.servers x
       WHERE x.next_action IN ('create', 'lookup', 'power_on', 'poll_action', 'reboot', 'reset')
         AND x.next_attempt_at <= $4
         AND (x.claimed_until IS NULL OR x.claimed_until <= $4)
       ORDER BY x.next_attempt_at, x.id
       LIMIT budget * 25
    LOOP
      IF act = 'poll_action' THEN
        CONTINUE WHEN pg_catalog.jsonb_array_length(batch) = 0 AND budget = 0;
        PERFORM FROM pgext.servers x
          WHERE x.id = sid AND x.next_action = act AND x.next_attempt_at <= $4
            AND (x.claimed_until IS NULL OR x.claimed_until <= $4)
            FOR UPDATE SKIP LOCKED;
        CONTINUE WHEN NOT FOUND;
        IF pg_catalog.jsonb_array_length(batch) = 0 THEN
          budget := budget - 1;   -- this batch's request
        END IF;
        s := pgext.server_take(sid, claimant, until, $4);
        batch := batch || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
                   'server', s.id, 'claim', s.claim, 'action_id', s.action_id, 'attempt', s.attempts + 1));
        IF pg_catalog.jsonb_array_length(batch) = 25 THEN
          SELECT * INTO poll FROM pgext.hetzner_poll_request(batch);
          ref := poll.ref; class := 'normal'; method := 'GET'; path := poll.path; body := NULL;
          RETURN NEXT;
          batch := '[]';
        END IF;
        CONTINUE;
      END IF;
      CONTINUE WHEN budget = 0;
      -- lock only the rows taken (another claimer gets the rest)
      SELECT * INTO s FROM pgext.servers x
       WHERE x.id = sid AND x.next_action = act AND x.next_attempt_at <= $4
         AND (x.claimed_until IS NULL OR x.claimed_until <= $4)
         FOR UPDATE SKIP LOCKED;
      CONTINUE WHEN NOT FOUND;
      IF act = 'create' AND NOT s.create_unknown THEN
        -- the first location from location_index that is not cold
        SELECT (e.o - 1)::integer INTO idx
          FROM pg_catalog.jsonb_array_elements_text(s.spec -> 'locations') WITH ORDINALITY AS e(loc, o)
         WHERE e.o - 1 >= s.location_index
           AND NOT EXISTS (SELECT FROM pgext.hetzner_cold c
                            WHERE c.location = e.loc AND c.server_type = s.spec ->> 'server_type'
                              AND c.cold_until > $4)
         ORDER BY e.o LIMIT 1;
        IF idx IS NULL THEN
          UPDATE pgext.servers x
             SET location_index = 0, attempts = 0, capacity_rounds = x.capacity_rounds + 1,
                 next_attempt_at = $4 + pgext.server_backoff(x.capacity_rounds, '30 seconds', '10 minutes'),
                 last_error = pg_catalog.format('no capacity for %s in %s (out of capacity recently); trying again later',
                                s.spec ->> 'server_type',
                                (SELECT pg_catalog.string_agg(l, ', ')
                                   FROM pg_catalog.jsonb_array_elements_text(s.spec -> 'locations') l))
           WHERE x.id = sid;
          CONTINUE;
        ELSIF idx <> s.location_index THEN
          UPDATE pgext.servers x SET location_index = idx WHERE x.id = sid;
        END IF;
      END IF;
      s := pgext.server_take(sid, claimant, until, $4);
      SELECT * INTO req FROM pgext.hetzner_server_request(s);
      ref := req.ref; class := req.class; method := req.method; path := req.path; body := req.body;
      RETURN NEXT;
      budget := budget - 1;
    END LOOP;
    IF pg_catalog.jsonb_array_length(batch) > 0 THEN
      SELECT * INTO poll FROM pgext.hetzner_poll_request(batch);
      ref := poll.ref; class := 'normal'; method := 'GET'; path := poll.path; body := NULL;
      RETURN NEXT;
    END IF;
  END IF;
END
$$;

CREATE OR REPLACE FUNCTION pgext.server_orphan_keep(hetzner_id bigint, reason text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  o pgext.server_orphans;
BEGIN
  IF $1 IS NULL THEN
    RAISE EXCEPTION 'hetzner_id must not be NULL' USING ERRCODE = '22004';
  END IF;
  IF $2 IS NULL OR pg_catalog.btrim($2) = '' OR pg_catalog.length($2) > 1000 THEN
    RAISE EXCEPTION 'keeping an orphan needs a reason (1 to 1000 characters)' USING ERRCODE = '22023',
      HINT = 'Say why, e.g. ''build box of the ops team''; it is kept in pgext.server_orphans.';
  END IF;
  SELECT * INTO o FROM pgext.server_orphans y WHERE y.hetzner_id = $1 FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no orphan with Hetzner id %', $1 USING ERRCODE = 'P0002',
      HINT = 'List them with: SELECT * FROM pgext.server_orphans WHERE deleted_at IS NULL.';
  END IF;
  UPDATE pgext.server_orphans y
     SET kept_at = COALESCE(y.kept_at, pg_catalog.now()), kept_reason = $2, kept_by = pg_catalog.session_user(),
         delete_queued_at = NULL, next_attempt_at = NULL
   WHERE y.hetzner_id = $1;
  RETURN o.kept_at IS NULL;
END
$$;

CREATE OR REPLACE FUNCTION pgext.stripe_claim(epoch bigint, "limit" integer, classes text[],
                                   at timestamptz DEFAULT pg_catalog.now())
RETURNS TABLE (ref jsonb, class text, method text, path text, body text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  cur bigint;
  until pg_catalog.timestamptz;
  budget integer := $2;
  r pgext.stripe_sync_runs;
  rid bigint;
BEGIN
  IF $1 IS NULL OR $4 IS NULL THEN
    RAISE EXCEPTION 'epoch and at must not be NULL' USING ERRCODE = '22004';
  END IF;
  IF $2 IS NULL OR $2 < 1 OR $2 > 1000 THEN
    RAISE EXCEPTION 'limit must be between 1 and 1000' USING ERRCODE = '22023';
  END IF;
  IF $3 IS NULL OR pg_catalog.array_ndims($3) <> 1 OR pg_catalog.cardinality($3) = 0
     OR pg_catalog.array_position($3, NULL) IS NOT NULL
     OR NOT ($3 <@ ARRAY['urgent', 'reconcile', 'normal']::pg_catalog.text[]) THEN
    RAISE EXCEPTION 'classes must name some of urgent, reconcile, normal, not %', COALESCE(pg_catalog.left($3::pg_catalog.text, 64), 'NULL')
      USING ERRCODE = '22023', HINT = 'Pass e.g. ARRAY[''urgent'', ''reconcile''].';
  END IF;
  SELECT l.epoch INTO cur FROM pgext.worker_lease l FOR SHARE;
  IF cur IS DISTINCT FROM $1 THEN
    RAISE EXCEPTION 'worker epoch % is not the current one (%)', $1, COALESCE(cur::pg_catalog.text, 'none')
      USING ERRCODE = '55000',
            HINT = 'Another worker_begin took the lease: call pgext.worker_begin(holder) and use its epoch.';
  END IF;
  until := $4 + pg_catalog.current_setting('pgext.stripe_claim_lease')::interval;

  FOR rid IN
    SELECT x.id FROM pgext.stripe_sync_runs x
     WHERE x.kind = 'account' AND x.finished_at IS NULL AND x.started_at <= $4 - interval '1 hour'
       AND (x.page_in_flight_until IS NULL OR x.page_in_flight_until <= $4 OR x.page_epoch < $1)
     ORDER BY x.id FOR UPDATE SKIP LOCKED
  LOOP
    PERFORM pgext.stripe_run_finish(rid, 'failed', 'expired: not synced within an hour of the request', $4);
  END LOOP;

  FOR r IN
    SELECT * FROM pgext.stripe_sync_runs x
     WHERE x.finished_at IS NULL AND x.page_due_at <= $4
       AND (x.page_in_flight_until IS NULL OR x.page_in_flight_until <= $4 OR x.page_epoch < $1)
       AND ((x.kind = 'account' AND 'urgent' = ANY ($3)) OR (x.kind <> 'account' AND 'reconcile' = ANY ($3)))
     ORDER BY x.kind <> 'account', x.page_due_at, x.id
     LIMIT budget FOR UPDATE SKIP LOCKED
  LOOP
    UPDATE pgext.stripe_sync_runs x
       SET page_claim = x.page_claim + 1, page_epoch = $1, page_in_flight_until = until,
           page_attempts = x.page_attempts + CASE WHEN x.page_in_flight_until IS NOT NULL THEN 1 ELSE 0 END
     WHERE x.id = r.id
    RETURNING * INTO r;
    class := CASE WHEN r.kind = 'account' THEN 'urgent' ELSE 'reconcile' END;
    method := 'GET'; body := NULL;
    path := pgext.stripe_run_path(r);
    ref := pg_catalog.jsonb_build_object('kind', 'stripe_page', 'run', r.id, 'run_kind', r.kind,
                                         'claim', r.page_claim, 'attempt', r.page_attempts + 1,
                                         'method', method, 'path', path);
    RETURN NEXT;
  END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION pgext.stripe_response(ref jsonb, http_status integer, body text, meta jsonb,
                                      at timestamptz DEFAULT pg_catalog.now())
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  m pg_catalog.jsonb := COALESCE($4, '{}');
  parsed pg_catalog.jsonb;
  resp pg_catalog.jsonb;
  code pg_catalog.text;
BEGIN
  IF pg_catalog.jsonb_typeof($1) IS DISTINCT FROM 'object'
     OR $1 ->> 'kind' IS DISTINCT FROM 'stripe_page'
     OR pg_catalog.jsonb_typeof($1 -> 'run') IS DISTINCT FROM 'number'
     OR pg_catalog.jsonb_typeof($1 -> 'claim') IS DISTINCT FROM 'number'
     OR pg_catalog.jsonb_typeof($1 -> 'method') IS DISTINCT FROM 'string'
     OR pg_catalog.jsonb_typeof($1 -> 'path') IS DISTINCT FROM 'string' THEN
    RAISE EXCEPTION 'ref is not a request of pgext.stripe_claim' USING ERRCODE = '22023',
      HINT = 'Hand back the ref stripe_claim returned with the request, unchanged.';
  END IF;
  IF pg_catalog.jsonb_typeof(m) <> 'object' THEN
    RAISE EXCEPTION 'meta must be a JSON object' USING ERRCODE = '22023',
      HINT = 'Pass {"duration_ms": n, "correlation_id": s, "retry_after": n, "error": {"code": s, "message": s}} (each may be null).';
  END IF;
  IF $5 IS NULL THEN
    RAISE EXCEPTION 'at must not be NULL' USING ERRCODE = '22004';
  END IF;
  IF $2 IS NOT NULL AND ($2 < 100 OR $2 > 599) THEN
    RAISE EXCEPTION 'http_status % is not an HTTP status', $2 USING ERRCODE = '22023',
      HINT = 'Pass NULL when no response arrived, with meta.error.code saying why.';
  END IF;
  IF $2 IS NULL THEN
    code := m -> 'error' ->> 'code';
    IF code IS NULL OR code NOT IN ('network', 'timeout', 'too_large', 'tls') THEN
      RAISE EXCEPTION 'no response needs meta.error.code network, timeout, too_large or tls, not %',
                      pg_catalog.quote_nullable(code) USING ERRCODE = '22023',
        HINT = 'Pass the HTTP status when a response arrived (any status).';
    END IF;
    resp := pg_catalog.jsonb_build_object('error', pg_catalog.jsonb_build_object('code', code));
  ELSE
    BEGIN
      parsed := CASE WHEN $3 IS NULL OR pg_catalog.btrim($3) = '' THEN '{}'::pg_catalog.jsonb ELSE $3::pg_catalog.jsonb END;
    EXCEPTION WHEN invalid_text_representation OR untranslatable_character OR character_not_in_repertoire THEN
      parsed := NULL;
    END;
    IF pg_catalog.jsonb_typeof(parsed) IS DISTINCT FROM 'object'
       OR (parsed ? 'error' AND pg_catalog.jsonb_typeof(parsed -> 'error') <> 'object')
       OR ($2 BETWEEN 200 AND 299 AND NOT COALESCE(
             parsed ->> 'object' = 'list'
             AND pg_catalog.jsonb_typeof(parsed -> 'data') = 'array'
             AND pg_catalog.jsonb_typeof(parsed -> 'has_more') = 'boolean'
             -- more pages need the last id to continue from
             AND (NOT (parsed ->> 'has_more')::boolean
                  OR (pg_catalog.jsonb_array_length(parsed -> 'data') > 0
                      AND (parsed -> 'data' -> -1 ->> 'id') ~ '^[A-Za-z0-9_]{1,255}$')), false)) THEN
      code := 'malformed';
      resp := pg_catalog.jsonb_build_object('http_status', $2, 'error', pg_catalog.jsonb_build_object('code', 'malformed'));
    ELSE
      code := COALESCE(parsed -> 'error' ->> 'code', parsed -> 'error' ->> 'type');
      resp := parsed || pg_catalog.jsonb_build_object('http_status', $2);
    END IF;
  END IF;
  IF pg_catalog.jsonb_typeof(m -> 'retry_after') = 'number' THEN
    resp := resp || pg_catalog.jsonb_build_object('retry_after', m -> 'retry_after');
  END IF;

  INSERT INTO pgext.api_calls (at, api, method, path, http_status, error_code, duration_ms, attempt, request_id)
  VALUES ($5, 'stripe', $1 ->> 'method', $1 ->> 'path', $2, pg_catalog.left(code, 100),
          CASE WHEN pg_catalog.jsonb_typeof(m -> 'duration_ms') = 'number' THEN (m ->> 'duration_ms')::double precision END,
          CASE WHEN pg_catalog.jsonb_typeof($1 -> 'attempt') = 'number' THEN ($1 ->> 'attempt')::integer END,
          CASE WHEN pg_catalog.jsonb_typeof(m -> 'correlation_id') = 'string'
               THEN pg_catalog.left(NULLIF(m ->> 'correlation_id', ''), 128) END);

  RETURN pgext.stripe_page($1, resp, $5);
END
$$;

CREATE OR REPLACE FUNCTION pgext.health_check_valid(url text, kind text, every interval, timeout interval, prefix text)
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

CREATE OR REPLACE FUNCTION pgext.health_record(ids bigint[], ok boolean[], statuses integer[], latency_ms integer[],
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

CREATE OR REPLACE FUNCTION pgext.health_recovery_pause(reason text) RETURNS boolean
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

------------------------------------------------------------------------------
-- 1.1: Data rights (GDPR) (branch gdpr): per-account key salts for
-- secrets (format 0x02), pgext.account_export / pgext.account_forget,
-- forgotten accounts refused by server_request, the ledger's sanctioned
-- strip.  Secrets written by 1.0 stay format 0x01 (still readable) until
-- pgext.secret_rewrap() reseals them with their account's salt.
------------------------------------------------------------------------------

-- Per-account key material: each account's secrets are sealed (format 0x02)
-- with a key derived by HKDF-SHA256 from the master key version and this
-- random salt (src/secrets/keyring.c), created on the account's first
-- secret_set.  pgext.account_forget deletes the row: from then on no key
-- exists for those ciphertexts, wherever copies of them are (WAL, replicas,
-- later dumps).  Backups taken before the forget hold both the salt and the
-- ciphertexts: expire them, or rotate the master key and destroy the old
-- version, to shred those copies too.
CREATE TABLE pgext.secret_account_keys (
  account_id uuid PRIMARY KEY REFERENCES pgext.accounts (id) ON DELETE CASCADE,
  salt       bytea NOT NULL CHECK (pg_catalog.octet_length(salt) = 32),
  created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
REVOKE ALL ON pgext.secret_account_keys FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('pgext.secret_account_keys', '');

CREATE OR REPLACE FUNCTION pgext.credit_ledger_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pgext, pg_temp AS $$
BEGIN
  IF TG_OP = 'UPDATE'
     AND EXISTS (SELECT FROM pgext.account_forgets f WHERE f.account_id = OLD.account_id)
     AND NEW.reason IS NULL
     AND NEW.idempotency_key IS NOT DISTINCT FROM pgext.forget_hash(OLD.idempotency_key)
     AND (NEW.id, NEW.account_id, NEW.op, NEW.kind, NEW.amount, NEW.delta, NEW.balance_after,
          NEW.lot_id, NEW.reservation_id, NEW.expires_at, NEW.lot_ids, NEW.lot_parts, NEW.created_at)
         IS NOT DISTINCT FROM
         (OLD.id, OLD.account_id, OLD.op, OLD.kind, OLD.amount, OLD.delta, OLD.balance_after,
          OLD.lot_id, OLD.reservation_id, OLD.expires_at, OLD.lot_ids, OLD.lot_parts, OLD.created_at) THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'pgext.credit_ledger is append-only: % is not allowed', TG_OP
    USING ERRCODE = '42501',
          HINT = 'Correct a mistake with a new entry (credit_grant or credit_deduct), never by editing history.';
END
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

-- One row per forgotten account: when, by whom, the hash that replaced its
-- external id, and what pgext.account_forget deleted or stripped (summary).
-- A forgotten account takes no new business (55000): server_request and
-- secret_set check this table after locking the account row; the credit
-- calls read the mark the forget leaves in that row itself (external_id
-- 'forgotten:...', a prefix account_create refuses), which READ COMMITTED
-- re-reads when they waited for the forget's lock.
CREATE TABLE pgext.account_forgets (
  account_id       uuid PRIMARY KEY REFERENCES pgext.accounts (id),
  forgotten_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
  forgotten_by     name NOT NULL,
  external_id_hash text NOT NULL,
  summary          jsonb NOT NULL
);

-- Internal: what replaces a caller-chosen string of a forgotten account
-- ('forgotten:' || hex SHA-256): stays unique where the original was, and
-- whoever still knows the original can find its row by hashing it; NULL
-- stays NULL, and a value already replaced is kept.
CREATE FUNCTION pgext.forget_hash(value text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pgext, pg_temp AS $$
  SELECT CASE WHEN $1 IS NULL OR pg_catalog.starts_with($1, 'forgotten:') THEN $1
              ELSE 'forgotten:' || pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to($1, 'UTF8')), 'hex')
         END
$$;

-- Internal: the Stripe webhook events that belong to an account.  Events
-- link to an account through its Stripe customer (data.object.customer, or
-- the customer object itself), its subscriptions and checkout sessions
-- (object_id, and stripe_object_versions, which names the last event applied
-- to each object), the events that recorded its purchases, and the
-- client_reference_id of a checkout (its external id).  Reads every stored
-- event's payload: an operator's call, not a hot path.
CREATE FUNCTION pgext.account_webhook_events(account uuid)
RETURNS TABLE (source text, event_id text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pgext, pg_temp AS $$
  WITH a AS (SELECT x.id, x.external_id, x.stripe_customer_id FROM pgext.accounts x WHERE x.id = $1),
  objects AS (
    SELECT s.id AS object_id FROM pgext.stripe_subscriptions s WHERE s.account_id = $1
    UNION SELECT p.checkout_session_id FROM pgext.stripe_purchases p WHERE p.account_id = $1
    UNION SELECT a.stripe_customer_id FROM a WHERE a.stripe_customer_id IS NOT NULL
  )
  SELECT e.source, e.event_id FROM pgext.webhook_events e, a
   WHERE e.source = 'stripe'
     AND (e.object_id IN (SELECT o.object_id FROM objects o)
          OR e.event_id IN (SELECT p.event_id FROM pgext.stripe_purchases p WHERE p.account_id = $1)
          OR e.event_id IN (SELECT v.event_id FROM pgext.stripe_object_versions v
                             WHERE v.object_id IN (SELECT o.object_id FROM objects o))
          OR e.payload #>> '{data,object,customer}' = a.stripe_customer_id
          OR e.payload #>> '{data,object,client_reference_id}' = a.external_id)
$$;

-- Everything pgext holds about an account, as one jsonb document (the
-- right of access).  Secrets appear as catalog entries with their mask only:
-- never plaintext, never ciphertext.  NULL: 22004; an unknown account: P0002.
CREATE FUNCTION pgext.account_export(account uuid) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
BEGIN
  IF $1 IS NULL THEN
    RAISE EXCEPTION 'account must not be NULL' USING ERRCODE = '22004',
      HINT = 'Pass the uuid returned by pgext.account_create().';
  END IF;
  -- a transaction bound to another account (pgext.set_account) may not read this one
  PERFORM pgext.account_scope_check($1);
  IF NOT EXISTS (SELECT FROM pgext.accounts a WHERE a.id = $1) THEN
    RAISE EXCEPTION 'account % does not exist', $1 USING ERRCODE = 'P0002',
      HINT = 'Pass the uuid returned by pgext.account_create().';
  END IF;
  RETURN pg_catalog.jsonb_build_object(
    'format', 'pgext.account_export/1',
    'exported_at', pg_catalog.now(),
    'account', (SELECT pg_catalog.to_jsonb(a) FROM pgext.accounts a WHERE a.id = $1),
    'forgotten', (SELECT pg_catalog.to_jsonb(f) FROM pgext.account_forgets f WHERE f.account_id = $1),
    'credits', pg_catalog.jsonb_build_object(
      'balance', pgext.credit_balance($1),
      'lots', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(l) ORDER BY l.id)
                          FROM pgext.credit_lots l WHERE l.account_id = $1), '[]'),
      'reservations', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(r) ORDER BY r.id)
                                  FROM pgext.credit_reservations r WHERE r.account_id = $1), '[]'),
      'ledger', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(g) ORDER BY g.id)
                            FROM pgext.credit_ledger g WHERE g.account_id = $1), '[]')),
    'stripe', pg_catalog.jsonb_build_object(
      'customer_id', (SELECT a.stripe_customer_id FROM pgext.accounts a WHERE a.id = $1),
      'subscriptions', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(s) ORDER BY s.id)
                                   FROM pgext.stripe_subscriptions s WHERE s.account_id = $1), '[]'),
      'access_grants', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(g) ORDER BY g.id)
                                   FROM pgext.access_grants g WHERE g.account_id = $1), '[]'),
      'purchases', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(p) ORDER BY p.checkout_session_id)
                               FROM pgext.stripe_purchases p WHERE p.account_id = $1), '[]')),
    'servers', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(s) ORDER BY s.id)
                           FROM pgext.servers s WHERE s.account_id = $1), '[]'),
    'server_history', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(h) ORDER BY h.id)
                                  FROM pgext.server_history h
                                  JOIN pgext.servers s ON s.id = h.server_id
                                 WHERE s.account_id = $1), '[]'),
    'health', pg_catalog.jsonb_build_object(
      'checks', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(c) ORDER BY c.id)
                            FROM pgext.health_checks c WHERE c.account_id = $1), '[]'),
      'servers', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(h) ORDER BY h.server_id)
                             FROM pgext.health_servers h WHERE h.account_id = $1), '[]'),
      'events', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(e) ORDER BY e.id)
                            FROM pgext.health_events e
                           WHERE e.account_id = $1
                              OR e.server_id IN (SELECT s.id FROM pgext.servers s WHERE s.account_id = $1)), '[]')),
    'secrets', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                                  'id', s.id, 'name', s.name,
                                  'masked', CASE WHEN pg_catalog.getdatabaseencoding() = 'UTF8'
                                                 THEN U&'\2026' ELSE '...' END || s.last4,
                                  'key_version', s.key_version, 'created_at', s.created_at,
                                  'updated_at', s.updated_at, 'expires_at', s.expires_at)
                                ORDER BY s.name)
                           FROM pgext.secrets s WHERE s.account_id = $1), '[]'),
    'secret_audit', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(x) ORDER BY x.id)
                                FROM pgext.secret_audit x WHERE x.account_id = $1), '[]'),
    'outbox', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(o) ORDER BY o.id)
                          FROM pgext.outbox o WHERE o.account_id = $1), '[]'),
    'webhook_events', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(e) ORDER BY e.source, e.event_id)
                                  FROM pgext.webhook_events e
                                 WHERE (e.source, e.event_id) IN
                                       (SELECT w.source, w.event_id FROM pgext.account_webhook_events($1) w)), '[]'),
    'api_calls', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(c) ORDER BY c.id)
                             FROM pgext.api_calls c
                            WHERE c.server_id IN (SELECT s.id FROM pgext.servers s WHERE s.account_id = $1)), '[]'));
END
$$;

-- The right to erasure.  Keeps what the books need (ledger, lots,
-- reservations, purchases, subscriptions, the account row and its balance)
-- and removes or strips everything personal:
--   secrets: deleted, and the account's key salt with them (crypto-shred:
--     copies of the ciphertexts in WAL, replicas or later dumps can no
--     longer be decrypted, even with the master key);
--   secret_audit: rows and counts kept, secret names stripped (names are
--     caller-chosen and may name a person, e.g. 'gmail:alice@...');
--   webhook events: ids, types and statuses kept (a redelivered event stays
--     a duplicate); payloads of settled events dropped, pending ones keep
--     only what applying them needs (client_reference_id, metadata dropped);
--   health events, health checks of deleted servers, api_calls rows of its
--     servers: deleted; outbox rows: detail stripped;
--   caller-chosen strings in money rows (ledger reason and idempotency key,
--     reservation keys, lot period keys, access grant reasons): the reason
--     dropped, keys replaced by pgext.forget_hash (still unique; an auditor
--     holding a key can hash it to find its row);
--   servers: live ones deleted (see below); user_data dropped from their
--     specs, provision keys hashed; server_history kept (state changes);
--   external_id: replaced by pgext.forget_hash(external_id); the Stripe
--     customer id is kept (a pseudonymous key the books and late Stripe
--     events need; erase the customer at Stripe too).
-- Servers that are still live refuse the call (55000) unless force, which
-- deletes them through pgext.server_delete (the state machine).  Idempotent:
-- a second call changes nothing and returns the first summary with
-- "already": true.  Backups taken before the call still hold everything:
-- see README, Data rights.
CREATE FUNCTION pgext.account_forget(account uuid, force boolean DEFAULT false) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  acc pgext.accounts;
  done pgext.account_forgets;
  live integer;
  srv bigint;
  n_servers integer := 0;
  n_specs integer;
  n_secrets integer;
  n_salt integer;
  n_audit integer;
  n_hooks integer;
  n_hooks_pending integer;
  n_hevents integer;
  n_hchecks integer;
  n_api integer;
  n_outbox integer;
  n_ledger integer;
  n_res integer;
  n_lots integer;
  n_grants integer;
  result_summary pg_catalog.jsonb;
BEGIN
  IF $1 IS NULL THEN
    RAISE EXCEPTION 'account must not be NULL' USING ERRCODE = '22004',
      HINT = 'Pass the uuid returned by pgext.account_create().';
  END IF;
  IF $2 IS NULL THEN
    RAISE EXCEPTION 'force must not be NULL' USING ERRCODE = '22004',
      HINT = 'Pass false, or true to delete the account''s live servers too.';
  END IF;
  -- a transaction bound to another account (pgext.set_account) may not erase this one
  PERFORM pgext.account_scope_check($1);
  -- the account row lock: credit calls and secret_set wait for it
  SELECT * INTO acc FROM pgext.accounts a WHERE a.id = $1 FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'account % does not exist', $1 USING ERRCODE = 'P0002',
      HINT = 'Pass the uuid returned by pgext.account_create().';
  END IF;
  SELECT * INTO done FROM pgext.account_forgets f WHERE f.account_id = $1;
  IF FOUND THEN
    RETURN done.summary || '{"already": true}';
  END IF;

  -- servers: live ones (as server_request counts them) refuse unless forced
  SELECT pg_catalog.count(*) INTO live FROM pgext.servers x
   WHERE x.account_id = $1 AND x.state <> 'deleted' AND x.desired_state <> 'deleted'
     AND NOT (x.state = 'failed' AND NOT x.needs_cleanup AND x.retry_at IS NULL);
  IF live > 0 AND NOT $2 THEN
    RAISE EXCEPTION 'account % still has % live server(s)', $1, live USING ERRCODE = '55000',
      HINT = 'Delete them first with pgext.server_delete(server, reason), or call pgext.account_forget(account, force => true).';
  END IF;
  FOR srv IN SELECT x.id FROM pgext.servers x
              WHERE x.account_id = $1 AND x.state <> 'deleted' AND x.desired_state <> 'deleted'
              ORDER BY x.id LOOP
    PERFORM pgext.server_delete(srv, 'account forgotten (pgext.account_forget)');
    n_servers := n_servers + 1;
  END LOOP;
  -- caller-chosen content of its servers: the cloud-init user_data (no
  -- longer needed: they are deleted, never created again) and the
  -- provision key (hashed; the Hetzner name was derived from it already)
  UPDATE pgext.servers x
     SET spec = x.spec - 'user_data', provision_key = pgext.forget_hash(x.provision_key)
   WHERE x.account_id = $1
     AND (x.spec ? 'user_data' OR x.provision_key IS DISTINCT FROM pgext.forget_hash(x.provision_key));
  GET DIAGNOSTICS n_specs = ROW_COUNT;

  -- the record first: the ledger's append-only trigger admits the strip
  -- below only for a forgotten account
  INSERT INTO pgext.account_forgets (account_id, forgotten_by, external_id_hash, summary)
  VALUES ($1, pg_catalog.session_user(), pgext.forget_hash(acc.external_id), '{}');

  -- secrets: the rows, then the salt (crypto-shred); counters still in
  -- shared memory are flushed first so their names are stripped too
  PERFORM pgext.secret_audit_flush();
  DELETE FROM pgext.secrets s WHERE s.account_id = $1;
  GET DIAGNOSTICS n_secrets = ROW_COUNT;
  DELETE FROM pgext.secret_account_keys k WHERE k.account_id = $1;
  GET DIAGNOSTICS n_salt = ROW_COUNT;
  UPDATE pgext.secret_audit x SET name = NULL WHERE x.account_id = $1 AND x.name IS NOT NULL;
  GET DIAGNOSTICS n_audit = ROW_COUNT;

  -- webhook events: keep the rows (dedup), drop or trim the payloads
  UPDATE pgext.webhook_events e
     SET payload = CASE WHEN e.status = 'pending'
                        THEN e.payload #- '{data,object,client_reference_id}' #- '{data,object,metadata}'
                        ELSE NULL END
   WHERE (e.source, e.event_id) IN (SELECT w.source, w.event_id FROM pgext.account_webhook_events($1) w)
     AND e.payload IS NOT NULL;
  GET DIAGNOSTICS n_hooks = ROW_COUNT;

  -- fleet history
  DELETE FROM pgext.health_events e
   WHERE e.account_id = $1 OR e.server_id IN (SELECT s.id FROM pgext.servers s WHERE s.account_id = $1);
  GET DIAGNOSTICS n_hevents = ROW_COUNT;
  DELETE FROM pgext.health_checks c
   WHERE c.server_id IN (SELECT s.id FROM pgext.servers s WHERE s.account_id = $1 AND s.state = 'deleted');
  GET DIAGNOSTICS n_hchecks = ROW_COUNT;
  DELETE FROM pgext.api_calls c
   WHERE c.server_id IN (SELECT s.id FROM pgext.servers s WHERE s.account_id = $1);
  GET DIAGNOSTICS n_api = ROW_COUNT;
  UPDATE pgext.outbox o SET detail = NULL WHERE o.account_id = $1 AND o.detail IS NOT NULL;
  GET DIAGNOSTICS n_outbox = ROW_COUNT;

  -- money rows: kept, caller-chosen strings stripped
  UPDATE pgext.credit_ledger g
     SET reason = NULL, idempotency_key = pgext.forget_hash(g.idempotency_key)
   WHERE g.account_id = $1
     AND (g.reason IS NOT NULL OR g.idempotency_key IS DISTINCT FROM pgext.forget_hash(g.idempotency_key));
  GET DIAGNOSTICS n_ledger = ROW_COUNT;
  UPDATE pgext.credit_reservations r SET idempotency_key = pgext.forget_hash(r.idempotency_key)
   WHERE r.account_id = $1 AND r.idempotency_key IS DISTINCT FROM pgext.forget_hash(r.idempotency_key);
  GET DIAGNOSTICS n_res = ROW_COUNT;
  UPDATE pgext.credit_lots l SET period_key = pgext.forget_hash(l.period_key)
   WHERE l.account_id = $1 AND l.period_key IS DISTINCT FROM pgext.forget_hash(l.period_key);
  GET DIAGNOSTICS n_lots = ROW_COUNT;
  UPDATE pgext.access_grants g
     SET reason = 'forgotten', revoke_reason = CASE WHEN g.revoke_reason IS NULL THEN NULL ELSE 'forgotten' END
   WHERE g.account_id = $1;
  GET DIAGNOSTICS n_grants = ROW_COUNT;

  UPDATE pgext.accounts a SET external_id = pgext.forget_hash(a.external_id) WHERE a.id = $1;

  result_summary := pg_catalog.jsonb_build_object(
    'already', false,
    'forced', $2,
    'servers_marked_for_deletion', n_servers,
    'servers_stripped', n_specs,
    'secrets_deleted', n_secrets,
    'key_salt_deleted', n_salt > 0,
    'secret_audit_names_stripped', n_audit,
    'webhook_payloads_stripped', n_hooks,
    'health_events_deleted', n_hevents,
    'health_checks_deleted', n_hchecks,
    'api_calls_deleted', n_api,
    'outbox_details_stripped', n_outbox,
    'ledger_rows_stripped', n_ledger,
    'reservations_stripped', n_res,
    'lots_stripped', n_lots,
    'access_grants_stripped', n_grants);
  UPDATE pgext.account_forgets f SET summary = result_summary WHERE f.account_id = $1;
  RETURN result_summary;
END
$$;

-- A Stripe event stored after its account was forgotten (a late delivery, a
-- fetched missed event) keeps what applying it needs (the customer,
-- subscription, prices: money state) but not the personal fields the
-- intake whitelist keeps for live accounts (client_reference_id, metadata).
-- The WHEN clause keeps the ingest hot path free of the call when neither
-- field is present.
CREATE FUNCTION pgext.webhook_events_forgotten() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pgext, pg_temp AS $$
BEGIN
  IF EXISTS (SELECT FROM pgext.accounts a JOIN pgext.account_forgets f ON f.account_id = a.id
              WHERE a.stripe_customer_id = NEW.payload #>> '{data,object,customer}') THEN
    NEW.payload := NEW.payload #- '{data,object,client_reference_id}' #- '{data,object,metadata}';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER webhook_events_forgotten BEFORE INSERT OR UPDATE OF payload ON pgext.webhook_events
  FOR EACH ROW
  WHEN (NEW.source = 'stripe' AND NEW.payload #> '{data,object}' ?| ARRAY['client_reference_id', 'metadata'])
  EXECUTE FUNCTION pgext.webhook_events_forgotten();

REVOKE ALL ON pgext.account_forgets FROM PUBLIC;
REVOKE ALL ON FUNCTION
  pgext.forget_hash(text),
  pgext.account_webhook_events(uuid),
  pgext.account_export(uuid),
  pgext.account_forget(uuid, boolean),
  pgext.webhook_events_forgotten()
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgext.account_export(uuid) TO pgext_app, pgext_admin;
GRANT EXECUTE ON FUNCTION pgext.account_forget(uuid, boolean) TO pgext_admin;
GRANT SELECT ON pgext.account_forgets TO pgext_admin;

SELECT pg_catalog.pg_extension_config_dump('pgext.account_forgets', '');

------------------------------------------------------------------------------
-- Tenant isolation for the data-rights tables (after both sections above;
-- fresh installs: the end of sql/install/tenant.sql).
------------------------------------------------------------------------------
-- Data rights (sql/install/data_rights.sql) and per-account key material
-- (sql/install/secrets.sql): the forget records are read by staff; the
-- salts only by pgext_admin (no policy for anyone else: no rows).
ALTER TABLE pgext.account_forgets ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.secret_account_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY staff_read ON pgext.account_forgets FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.secret_account_keys FOR SELECT TO pgext_admin USING (true);
GRANT SELECT ON pgext.account_forgets TO pgext_support;
GRANT EXECUTE ON FUNCTION pgext.account_export(uuid) TO pgext_support;

-- webhook_ingest hot path (issue 14): the function pins its search path in C
-- (pg_catalog, pgext; see sql/install/webhooks.sql) instead of a per-call
-- SET search_path.
ALTER FUNCTION pgext.webhook_ingest(text, text, text, timestamptz) RESET search_path;

------------------------------------------------------------------------------
-- secret_get hot path (issue 14)
------------------------------------------------------------------------------
-- secret_get and secret_masked pin their search path in C (pg_catalog, pgext;
-- the temporary schema not searched: src/common/searchpath.c) instead of the
-- SET search_path clause, which cost a fifth of a read.
ALTER FUNCTION pgext.secret_get(text, uuid) RESET search_path;
ALTER FUNCTION pgext.secret_masked(text, uuid) RESET search_path;

------------------------------------------------------------------------------
-- credit_deduct hot path (issue 14)
------------------------------------------------------------------------------
-- The profile columns of accounts are checked by domains (run when the column
-- is assigned) instead of table CHECKs (re-prepared by every balance update);
-- the lot_credits range and the ledger's CHECKs move to credit_verify();
-- credit_deduct pins its search path in C.
CREATE DOMAIN pgext.account_external_id AS text
  CONSTRAINT account_external_id_valid CHECK (VALUE <> '' AND pg_catalog.length(VALUE) <= 255);
CREATE DOMAIN pgext.account_credit_mode AS text
  CONSTRAINT account_credit_mode_valid CHECK (VALUE IN ('metered', 'unlimited'));
ALTER TABLE pgext.accounts
  DROP CONSTRAINT accounts_external_id_valid,
  DROP CONSTRAINT accounts_credit_mode_valid,
  DROP CONSTRAINT accounts_lot_credits_within_balance,
  ALTER COLUMN external_id TYPE pgext.account_external_id,
  ALTER COLUMN credit_mode TYPE pgext.account_credit_mode;
ALTER TABLE pgext.credit_ledger
  DROP CONSTRAINT credit_ledger_op_valid,
  DROP CONSTRAINT credit_ledger_balance_nonnegative;
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
  SELECT a.id, 'lot_credits ' || a.lot_credits || ' outside 0 .. balance ' || a.balance
    FROM pgext.accounts a
   WHERE a.lot_credits < 0 OR a.lot_credits > a.balance
  UNION ALL
  SELECT l.account_id, 'ledger entry ' || l.id || ' balance_after ' || l.balance_after
         || ' <> running sum ' || l.running
    FROM (SELECT id, account_id, balance_after,
                 sum(delta) OVER (PARTITION BY account_id ORDER BY id) AS running
            FROM pgext.credit_ledger) l
   WHERE l.balance_after <> l.running
  UNION ALL
  SELECT l.account_id, 'ledger entry ' || l.id || ' has an unknown op ' || pg_catalog.quote_literal(l.op)
    FROM pgext.credit_ledger l
   WHERE l.op NOT IN ('grant', 'allocate', 'deduct', 'reserve', 'commit', 'release', 'expire', 'forfeit')
  UNION ALL
  SELECT l.account_id, 'ledger entry ' || l.id || ' has a negative balance_after ' || l.balance_after
    FROM pgext.credit_ledger l
   WHERE l.balance_after < 0
  UNION ALL
  SELECT r.account_id, 'reservation ' || r.id || ' parts do not add up to held ' || r.held
    FROM pgext.credit_reservations r
   WHERE r.status = 'held'
     AND r.held <> r.pool_part + COALESCE((SELECT sum(p) FROM unnest(r.lot_parts) p), 0)
$$;
ALTER FUNCTION pgext.credit_deduct(uuid, bigint, text, text) RESET search_path;

-- Forgotten customers off the webhook_ingest hot path (issue 14)
------------------------------------------------------------------------------
-- The trigger webhook_events_forgotten (data rights, above) cost ~5 us per
-- ingest; the same strip is now done in C where the payload is built
-- (src/webhooks/payload.c) against a per-backend set of forgotten Stripe
-- customers (src/data_rights.c), which this statement trigger on
-- pgext.account_forgets invalidates in every backend.
DROP TRIGGER webhook_events_forgotten ON pgext.webhook_events;
DROP FUNCTION pgext.webhook_events_forgotten();
CREATE FUNCTION pgext.account_forgets_changed() RETURNS trigger
AS 'MODULE_PATHNAME', 'account_forgets_changed'
LANGUAGE C SET search_path = pg_catalog, pgext, pg_temp;
CREATE TRIGGER account_forgets_changed
  AFTER INSERT OR UPDATE OF account_id OR DELETE OR TRUNCATE ON pgext.account_forgets
  FOR EACH STATEMENT EXECUTE FUNCTION pgext.account_forgets_changed();
REVOKE ALL ON FUNCTION pgext.account_forgets_changed() FROM PUBLIC;
-- the stored form of a fetched event depends on pgext.account_forgets now
ALTER FUNCTION pgext.stripe_event_minimal(jsonb) VOLATILE;

-- Salts cached per backend (issue 14, second pass)
------------------------------------------------------------------------------
-- secret_get no longer probes pgext.secret_account_keys on every read: each
-- backend caches account -> salt (src/secrets/salts.c), wiped in every
-- backend by these triggers on any update, delete or truncate.
CREATE FUNCTION pgext.secret_account_keys_changed() RETURNS trigger
AS 'MODULE_PATHNAME', 'secret_account_keys_changed'
LANGUAGE C SET search_path = pg_catalog, pgext, pg_temp;
CREATE TRIGGER secret_account_keys_changed
  AFTER UPDATE OR DELETE ON pgext.secret_account_keys
  FOR EACH ROW EXECUTE FUNCTION pgext.secret_account_keys_changed();
CREATE TRIGGER secret_account_keys_truncated
  AFTER TRUNCATE ON pgext.secret_account_keys
  FOR EACH STATEMENT EXECUTE FUNCTION pgext.secret_account_keys_changed();
ALTER TABLE pgext.secret_account_keys ENABLE ALWAYS TRIGGER secret_account_keys_changed;
ALTER TABLE pgext.secret_account_keys ENABLE ALWAYS TRIGGER secret_account_keys_truncated;
REVOKE ALL ON FUNCTION pgext.secret_account_keys_changed() FROM PUBLIC;

-- pgext 1.1 install script (pgext--1.1.sql), assembled by the Makefile from sql/install/*.sql
-- (core, accounts, credits, secrets, billing, webhooks, closing: one file per
-- capability, the same names as in src/).  Every function that touches money
-- or secrets is SECURITY DEFINER with search_path pinned to
-- pg_catalog, pgext, pg_temp; nothing is executable by PUBLIC.

\echo Use "CREATE EXTENSION pgext" to load this file. \quit

------------------------------------------------------------------------------
-- Core: roles, schema usage, the preload check
------------------------------------------------------------------------------

-- Roles are cluster-wide and survive DROP EXTENSION; one block creates all five:
--   pgext_app            applications: accounts and credit calls
--   pgext_admin          operators: sweeps, audits, reading the tables
--   pgext_support        read-only support: every table but secrets, read-only functions
--   pgext_secret_reader  may decrypt secrets (see Secrets)
--   pgext_secret_writer  may store and delete secrets, never read them
-- A missing role is created NOLOGIN and marked as pgext's with a comment.  An
-- existing one (a reinstall, a restore into another database of the cluster,
-- or a role someone created first) is adopted only when that is safe:
--   - it has no attribute pgext does not give: LOGIN, SUPERUSER, CREATEDB,
--     CREATEROLE, REPLICATION, BYPASSRLS or a password (a connection limit or
--     VALID UNTIL matter only for a login, which is refused anyway);
--   - a role pgext created (marked) keeps the members and memberships a DBA
--     granted it; a role pgext did not create is adopted (and marked) only
--     while it has none, since its members would get every right granted
--     to it below without anyone having decided so.
-- Otherwise CREATE EXTENSION fails and says what to change.  The mark is a
-- comment, which a CREATEROLE holder can set; in PostgreSQL 15 such a role can
-- also grant itself any of these roles after the install, so CREATEROLE is
-- as good as pgext_admin plus both secret roles (README, Quick start).
DO $$
DECLARE
  mark CONSTANT pg_catalog.text := 'pgext role: created by CREATE EXTENSION pgext';
  r pg_catalog.text;
  a record;
  attrs pg_catalog.text[];
  members pg_catalog.text;
  memberships pg_catalog.text;
BEGIN
  FOREACH r IN ARRAY ARRAY['pgext_app', 'pgext_admin', 'pgext_support', 'pgext_secret_reader', 'pgext_secret_writer'] LOOP
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
              HINT = pg_catalog.format('Check who created %1$s and why; then remove the attributes (ALTER ROLE %1$s NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD NULL) or drop the role, and run CREATE EXTENSION pgext again. To log in with its rights, create your own login role and GRANT %1$s TO it.', r);
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
              HINT = pg_catalog.format('Check who created %1$s and who granted what. Then either revoke: %3$s, or drop the role; or, if these grants are yours and wanted, adopt the role deliberately: COMMENT ON ROLE %1$s IS ''%2$s''; and run CREATE EXTENSION pgext again.', r, mark,
                       CASE WHEN members IS NOT NULL
                            THEN pg_catalog.format('REVOKE %s FROM %s', r, members)
                            ELSE pg_catalog.format('REVOKE %s FROM %s', memberships, r) END);
    END IF;
    -- clean and alone: pgext takes it over, and keeps what a DBA grants it from now on
    EXECUTE pg_catalog.format('COMMENT ON ROLE %I IS %L', r, mark);
  END LOOP;
END
$$;

GRANT USAGE ON SCHEMA pgext TO pgext_app, pgext_admin;

DO $$
BEGIN
  IF NOT ('pgext' = ANY (pg_catalog.string_to_array(pg_catalog.replace(
          pg_catalog.current_setting('shared_preload_libraries'), ' ', ''), ','))) THEN
    RAISE WARNING 'pgext is not in shared_preload_libraries'
      USING DETAIL = 'Credits work; secrets and the background worker will refuse to run.',
            HINT = 'Add pgext to shared_preload_libraries in postgresql.conf and restart the server.';
  END IF;
END
$$;

-- Roles: CREATE EXTENSION creates pgext_app, pgext_admin, pgext_support,
-- pgext_secret_reader and pgext_secret_writer (NOLOGIN, marked with a comment)
-- and adopts an existing one only when that is safe: no attribute pgext does
-- not give (LOGIN, SUPERUSER, ..., a password), and members or memberships only
-- on a role pgext created.
-- Roles are cluster-wide and pgext is installed in this database, so the cases
-- run in a scratch database, with the real pgext_secret_reader renamed aside
-- while a test role takes its name; everything is put back at the end.
\set SHOW_CONTEXT never
SELECT rolname, rolcanlogin, shobj_description(oid, 'pg_authid') AS comment
  FROM pg_roles WHERE rolname IN ('pgext_app', 'pgext_admin', 'pgext_support', 'pgext_secret_reader', 'pgext_secret_writer')
 ORDER BY 1;
SELECT current_database() AS home \gset
CREATE DATABASE pgext_roles_scratch;
CREATE ROLE regress_roles_member LOGIN;
\c pgext_roles_scratch
\set SHOW_CONTEXT never
CREATE EXTENSION pgcrypto;

-- a role pgext created keeps the members a DBA granted it: installing again in
-- another database (what a pg_dump restore does) and DROP + CREATE both work
GRANT pgext_secret_reader TO regress_roles_member;
CREATE EXTENSION pgext;
BEGIN;
SET LOCAL pgext.confirm_drop = on;
DROP EXTENSION pgext;
COMMIT;
CREATE EXTENSION pgext;
SELECT pg_has_role('regress_roles_member', 'pgext_secret_reader', 'MEMBER') AS still_member;
BEGIN;
SET LOCAL pgext.confirm_drop = on;
DROP EXTENSION pgext;
COMMIT;
REVOKE pgext_secret_reader FROM regress_roles_member;
-- ... but not an attribute pgext does not give, not even on its own role
ALTER ROLE pgext_admin LOGIN CREATEDB;
CREATE EXTENSION pgext;
ALTER ROLE pgext_admin NOLOGIN NOCREATEDB;

-- set the real pgext_secret_reader aside
ALTER ROLE pgext_secret_reader RENAME TO regress_saved_secret_reader;

-- created first by someone else, with LOGIN or a password: refused
CREATE ROLE pgext_secret_reader LOGIN;
CREATE EXTENSION pgext;
ALTER ROLE pgext_secret_reader NOLOGIN PASSWORD 'not-a-secret';
CREATE EXTENSION pgext;
ALTER ROLE pgext_secret_reader PASSWORD NULL SUPERUSER BYPASSRLS CREATEROLE REPLICATION;
CREATE EXTENSION pgext;
DROP ROLE pgext_secret_reader;

-- created first by someone else, with a member: refused (the member would get
-- every right pgext grants the role); the same for a role that is a member
CREATE ROLE pgext_secret_reader NOLOGIN;
GRANT pgext_secret_reader TO regress_roles_member;
CREATE EXTENSION pgext;
SELECT count(*) AS installed FROM pg_extension WHERE extname = 'pgext';
REVOKE pgext_secret_reader FROM regress_roles_member;
GRANT regress_roles_member TO pgext_secret_reader;
CREATE EXTENSION pgext;
REVOKE regress_roles_member FROM pgext_secret_reader;

-- created first, clean and alone: adopted and marked, so the members granted
-- after the install stay through a reinstall
CREATE EXTENSION pgext;
SELECT rolcanlogin, shobj_description(oid, 'pg_authid') AS comment
  FROM pg_roles WHERE rolname = 'pgext_secret_reader';
SELECT has_function_privilege('pgext_secret_reader', 'pgext.secret_get(text, uuid)', 'EXECUTE') AS can_decrypt;
GRANT pgext_secret_reader TO regress_roles_member;
BEGIN;
SET LOCAL pgext.confirm_drop = on;
DROP EXTENSION pgext;
COMMIT;
CREATE EXTENSION pgext;
BEGIN;
SET LOCAL pgext.confirm_drop = on;
DROP EXTENSION pgext;
COMMIT;
DROP SCHEMA pgext;  -- it stays after DROP EXTENSION, with its grant to the role
DROP ROLE pgext_secret_reader;

-- created first with a member, and adopted deliberately by the DBA (the hint's way)
CREATE ROLE pgext_secret_reader NOLOGIN;
GRANT pgext_secret_reader TO regress_roles_member;
COMMENT ON ROLE pgext_secret_reader IS 'pgext role: created by CREATE EXTENSION pgext';
CREATE EXTENSION pgext;
SELECT pg_has_role('regress_roles_member', 'pgext_secret_reader', 'MEMBER') AS member;
BEGIN;
SET LOCAL pgext.confirm_drop = on;
DROP EXTENSION pgext;
COMMIT;
DROP SCHEMA pgext;  -- it stays after DROP EXTENSION, with its grant to the role
DROP ROLE pgext_secret_reader;

-- put everything back
ALTER ROLE regress_saved_secret_reader RENAME TO pgext_secret_reader;

-- pgext_support is new in 1.1: ALTER EXTENSION pgext UPDATE creates or adopts
-- it with the same checks (sql/pgext--1.0--1.1.sql)
ALTER ROLE pgext_support RENAME TO regress_saved_support;
CREATE ROLE pgext_support LOGIN;
CREATE EXTENSION pgext VERSION '1.0';
ALTER EXTENSION pgext UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'pgext';
ALTER ROLE pgext_support NOLOGIN;
ALTER EXTENSION pgext UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'pgext';
SELECT rolcanlogin, shobj_description(oid, 'pg_authid') AS comment
  FROM pg_roles WHERE rolname = 'pgext_support';
SELECT has_table_privilege('pgext_support', 'pgext.accounts', 'SELECT') AS reads_accounts,
       has_table_privilege('pgext_support', 'pgext.secrets', 'SELECT') AS reads_ciphertext,
       has_function_privilege('pgext_support', 'pgext.credit_grant(uuid, bigint, text, text, timestamptz)', 'EXECUTE') AS grants_credits;
BEGIN;
SET LOCAL pgext.confirm_drop = on;
DROP EXTENSION pgext;
COMMIT;
DROP SCHEMA pgext;
DROP ROLE pgext_support;
ALTER ROLE regress_saved_support RENAME TO pgext_support;
\c :home
DROP DATABASE pgext_roles_scratch;
DROP ROLE regress_roles_member;
SELECT rolname, rolcanlogin, rolcreatedb, shobj_description(oid, 'pg_authid') AS comment
  FROM pg_roles WHERE rolname IN ('pgext_app', 'pgext_admin', 'pgext_support', 'pgext_secret_reader', 'pgext_secret_writer')
 ORDER BY 1;
SELECT has_function_privilege('pgext_secret_reader', 'pgext.secret_get(text, uuid)', 'EXECUTE') AS can_decrypt;

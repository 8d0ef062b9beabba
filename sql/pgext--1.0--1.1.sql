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

-- webhook_ingest hot path (issue 14): the function pins its search path in C
-- (pg_catalog, pgext; see sql/install/webhooks.sql) instead of a per-call
-- SET search_path.
ALTER FUNCTION pgext.webhook_ingest(text, text, text, timestamptz) RESET search_path;

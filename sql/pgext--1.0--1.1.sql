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
--
-- Today 1.1 equals 1.0: nothing to do yet.

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION pgext UPDATE TO '1.1'" to load this file. \quit

-- pg_dump keeps the data of every pgext table and identity sequence only when
-- it is marked with pg_extension_config_dump (at the end of each
-- sql/install/<capability>.sql); an unmarked table would come back empty from a restore.
-- Tables and sequences of the schema that are not marked (only server_transitions,
-- whose rows come from the install script, so a restore gets them from CREATE EXTENSION):
SELECT c.relname, c.relkind
  FROM pg_catalog.pg_class c
 WHERE c.relnamespace = 'pgext'::regnamespace
   AND c.relkind IN ('r', 'p', 'S')
   AND c.oid <> ALL (SELECT pg_catalog.unnest(e.extconfig)
                       FROM pg_catalog.pg_extension e WHERE e.extname = 'pgext')
 ORDER BY 1;
-- Marked objects that are not in the schema (none), and the filters used:
-- none, because the install script inserts no rows of its own.
SELECT x.c::regclass
  FROM pg_catalog.pg_extension e, pg_catalog.unnest(e.extconfig) x(c)
 WHERE e.extname = 'pgext'
   AND (SELECT relnamespace FROM pg_catalog.pg_class WHERE oid = x.c) <> 'pgext'::regnamespace;
SELECT DISTINCT f AS filter
  FROM pg_catalog.pg_extension e, pg_catalog.unnest(e.extcondition) f
 WHERE e.extname = 'pgext';

------------------------------------------------------------------------------
-- Closing: a safety net after every capability
------------------------------------------------------------------------------

-- Each file above revokes and grants its own objects; this catches anything
-- a later change forgets.  Grants to pgext's roles are kept (REVOKE ... FROM
-- PUBLIC only touches the PUBLIC entry).
REVOKE ALL ON ALL TABLES IN SCHEMA pgext FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA pgext FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA pgext FROM PUBLIC;

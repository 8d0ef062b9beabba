------------------------------------------------------------------------------
-- Rate limiter: token buckets in shared memory (src/ratelimit/ratelimit.c)
------------------------------------------------------------------------------

-- Neither function pins a search_path: they are plain C (not SECURITY
-- DEFINER), run no SQL and resolve no name, so a caller's search_path cannot
-- reach them, and a SET clause would cost a GUC save/restore on every call
-- (a fifth of the call on the benchmark, README Rate limiter).

-- Takes `cost` tokens from key's bucket (capacity tokens, refilled at
-- refill_per_second) when it holds that many.  Every app instance on this
-- server shares the buckets; they are not written to disk or WAL.
CREATE FUNCTION pgext.rate_limit(key text, capacity integer, refill_per_second double precision,
                                 cost integer DEFAULT 1,
                                 OUT allowed boolean, OUT remaining integer, OUT retry_after_ms integer)
RETURNS record
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'rate_limit';
COMMENT ON FUNCTION pgext.rate_limit(text, integer, double precision, integer) IS
  'Token bucket in shared memory: allowed when key''s bucket holds cost tokens (then takes them); cost 0 peeks. Needs shared_preload_libraries.';

-- Forgets key's bucket (its next call starts full); false when it had none.
CREATE FUNCTION pgext.rate_limit_reset(key text)
RETURNS boolean
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'rate_limit_reset';
COMMENT ON FUNCTION pgext.rate_limit_reset(text) IS
  'Forget a rate-limit key''s bucket (it starts full again); false when there was none.';

REVOKE ALL ON FUNCTION
  pgext.rate_limit(text, integer, double precision, integer),
  pgext.rate_limit_reset(text)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  pgext.rate_limit(text, integer, double precision, integer),
  pgext.rate_limit_reset(text)
  TO pgext_app, pgext_admin;

------------------------------------------------------------------------------
-- Rate limiter: token buckets in shared memory (src/ratelimit/ratelimit.c)
------------------------------------------------------------------------------

-- Takes `cost` tokens from key's bucket (capacity tokens, refilled at
-- refill_per_second) when it holds that many.  Every app instance on this
-- server shares the buckets; they are not written to disk or WAL.
CREATE FUNCTION pgext.rate_limit(key text, capacity integer, refill_per_second double precision,
                                 cost integer DEFAULT 1,
                                 OUT allowed boolean, OUT remaining integer, OUT retry_after_ms integer)
RETURNS record
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pgext, pg_temp
AS 'MODULE_PATHNAME', 'rate_limit';
COMMENT ON FUNCTION pgext.rate_limit(text, integer, double precision, integer) IS
  'Token bucket in shared memory: allowed when key''s bucket holds cost tokens (then takes them); cost 0 peeks. Needs shared_preload_libraries.';

-- Forgets key's bucket (its next call starts full); false when it had none.
CREATE FUNCTION pgext.rate_limit_reset(key text)
RETURNS boolean
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pgext, pg_temp
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

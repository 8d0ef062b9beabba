-- Rate limiter: token buckets in shared memory (pgext.rate_limit).
-- No timing: refill rates are 0 (never refills), 1e-9 (not within a test
-- run) or 1e15 (full again within a nanosecond).  Buckets live in shared
-- memory and survive between runs on one server, so the keys are reset first.
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
SELECT count(*) AS keys_reset FROM unnest(ARRAY['rl-bad', 'rl-a', 'rl-A', 'rl-peek', 'rl-change',
  'rl-retry', 'rl-huge', 'rl-slow', 'rl-reset', 'rl-default', 'rl-keep', repeat('k', 1024)]) k
 WHERE pgext.rate_limit_reset(k) IS NOT NULL;
SHOW pgext.rate_limit_max_keys;

-- Every bad input: 22004 for NULL, 22023 for an invalid value; nothing written.
SELECT call, pg_temp.try('SELECT pgext.' || call) AS result FROM (VALUES
  ('rate_limit(NULL, 10, 0)'),
  ('rate_limit(''rl-bad'', NULL, 0)'),
  ('rate_limit(''rl-bad'', 10, NULL)'),
  ('rate_limit(''rl-bad'', 10, 0, NULL)'),
  ('rate_limit('''', 10, 0)'),
  ('rate_limit(repeat(''k'', 1025), 10, 0)'),
  ('rate_limit(repeat(''é'', 513), 10, 0)'),
  ('rate_limit(''rl-bad'', 0, 0)'),
  ('rate_limit(''rl-bad'', -1, 0)'),
  ('rate_limit(''rl-bad'', 10, -1)'),
  ('rate_limit(''rl-bad'', 10, -1e-300)'),
  ('rate_limit(''rl-bad'', 10, ''NaN'')'),
  ('rate_limit(''rl-bad'', 10, ''Infinity'')'),
  ('rate_limit(''rl-bad'', 10, ''-Infinity'')'),
  ('rate_limit(''rl-bad'', 10, 0, -1)'),
  ('rate_limit(''rl-bad'', 10, 0, 11)'),
  ('rate_limit(''rl-bad'', 10, 0, 2147483647)'),
  ('rate_limit_reset(NULL)'),
  ('rate_limit_reset('''')'),
  ('rate_limit_reset(repeat(''k'', 1025))')
) AS t(call);
-- nothing was written for the bad calls
SELECT pgext.rate_limit_reset('rl-bad') AS bad_key_had_a_bucket;
-- the longest key is accepted (1024 bytes)
SELECT * FROM pgext.rate_limit(repeat('k', 1024), 1, 0);

-- Refill 0: the tokens only go down.  cost = capacity passes once on a full bucket.
SELECT * FROM pgext.rate_limit('rl-a', 5, 0, 2);
SELECT * FROM pgext.rate_limit('rl-a', 5, 0, 2);
-- 1 token left, 2 asked: denied, nothing taken, retry_after_ms NULL (never refills)
SELECT * FROM pgext.rate_limit('rl-a', 5, 0, 2);
SELECT * FROM pgext.rate_limit('rl-a', 5, 0, 1);
SELECT * FROM pgext.rate_limit('rl-a', 5, 0, 1);
-- keys are bytes: another key has its own bucket
SELECT * FROM pgext.rate_limit('rl-A', 5, 0, 5);
-- cost defaults to 1
SELECT * FROM pgext.rate_limit('rl-default', 3, 0);

-- Peeking (cost 0) shows the bucket without taking anything and never creates one.
SELECT * FROM pgext.rate_limit('rl-peek', 7, 0, 0);
SELECT pgext.rate_limit_reset('rl-peek') AS peek_created_a_bucket;
SELECT * FROM pgext.rate_limit('rl-peek', 7, 0, 3);
SELECT * FROM pgext.rate_limit('rl-peek', 7, 0, 0);
SELECT * FROM pgext.rate_limit('rl-peek', 7, 0, 0);
-- a peek on an empty bucket is still allowed (it costs nothing)
SELECT * FROM pgext.rate_limit('rl-peek', 7, 0, 4);
SELECT * FROM pgext.rate_limit('rl-peek', 7, 0, 0);

-- Refill arithmetic.  1e15 tokens/s: full again by the next call.
SELECT * FROM pgext.rate_limit('rl-huge', 3, 1e15, 3);
SELECT * FROM pgext.rate_limit('rl-huge', 3, 1e15, 3);
SELECT * FROM pgext.rate_limit('rl-huge', 3, 1e15, 2);
-- 1e-9 tokens/s: the fraction gained during the test never reaches a whole token;
-- retry_after_ms is the time to gain the missing tokens, capped at 2^31-1
SELECT * FROM pgext.rate_limit('rl-slow', 10, 1e-9, 7);
SELECT * FROM pgext.rate_limit('rl-slow', 10, 1e-9, 4);
-- 1 token per 1000 s: 2 tokens missing (less what the test's milliseconds gave)
SELECT * FROM pgext.rate_limit('rl-retry', 3, 0.001, 3);
SELECT allowed, remaining, retry_after_ms BETWEEN 1990000 AND 2000000 AS retry_about_2000_s
  FROM pgext.rate_limit('rl-retry', 3, 0.001, 2);

-- Parameters change between calls: the caller's capacity and rate apply.
SELECT * FROM pgext.rate_limit('rl-change', 10, 0, 2);
-- a smaller capacity clamps the tokens (8 -> 5), then takes 1
SELECT * FROM pgext.rate_limit('rl-change', 5, 0, 1);
-- a larger capacity does not add tokens (refill 0)
SELECT * FROM pgext.rate_limit('rl-change', 10, 0, 0);
-- a fast rate refills to the new capacity
SELECT * FROM pgext.rate_limit('rl-change', 10, 1e15, 1);
SELECT * FROM pgext.rate_limit('rl-change', 10, 0, 0);

-- Reset forgets the bucket: the next call starts full.
SELECT * FROM pgext.rate_limit('rl-reset', 2, 0, 2);
SELECT * FROM pgext.rate_limit('rl-reset', 2, 0, 1);
SELECT pgext.rate_limit_reset('rl-reset') AS had_bucket;
SELECT pgext.rate_limit_reset('rl-reset') AS had_bucket;
SELECT * FROM pgext.rate_limit('rl-reset', 2, 0, 1);

-- When full (pgext.rate_limit_max_keys = 100000 here): a new key first takes
-- the bucket of a key that has refilled to full (lossless), then that of the
-- least recently used key.  'rl-keep' is emptied (refill 0: never full), then
-- 150000 keys that refill at once fill every partition: 'rl-keep' survives.
SELECT * FROM pgext.rate_limit('rl-keep', 1, 0, 1);
SELECT count(*) FILTER (WHERE allowed) AS allowed_full_flood
  FROM generate_series(1, 150000) i, pgext.rate_limit('rl-full-' || i, 1, 1e15, 1);
SELECT * FROM pgext.rate_limit('rl-keep', 1, 0, 0);
-- 150000 keys that never refill: full buckets go first, then the least
-- recently used: 'rl-keep', and the first of these keys, start full again.
SELECT count(*) FILTER (WHERE allowed) AS allowed_empty_flood
  FROM generate_series(1, 150000) i, pgext.rate_limit('rl-empty-' || i, 1, 0, 1);
SELECT * FROM pgext.rate_limit('rl-keep', 1, 0, 0);
SELECT * FROM pgext.rate_limit('rl-empty-1', 1, 0, 1);
SELECT * FROM pgext.rate_limit('rl-empty-150000', 1, 0, 1);

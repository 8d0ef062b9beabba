-- Benchmark fixtures: the baseline, a token bucket in plpgsql over an
-- UNLOGGED table with the same semantics as pgext.rate_limit (a new key
-- starts full; elapsed time credited at the caller's rate; tokens clamped to
-- the caller's capacity; the clock is read after the row lock).
CREATE EXTENSION IF NOT EXISTS pgext CASCADE;
DROP SCHEMA IF EXISTS bench CASCADE;
CREATE SCHEMA bench;
CREATE UNLOGGED TABLE bench.buckets (
  key        text PRIMARY KEY,
  tokens     double precision NOT NULL,
  updated_at timestamptz NOT NULL
);

CREATE FUNCTION bench.rate_limit(p_key text, p_capacity int, p_refill double precision,
                                 p_cost int DEFAULT 1,
                                 OUT allowed boolean, OUT remaining int, OUT retry_after_ms int)
LANGUAGE plpgsql AS $$
DECLARE
  v_tokens double precision;
  v_at timestamptz;
  v_now timestamptz;
BEGIN
  SELECT b.tokens, b.updated_at INTO v_tokens, v_at
    FROM bench.buckets b WHERE b.key = p_key FOR UPDATE;
  IF NOT FOUND THEN
    -- a new key starts full; a concurrent caller may insert it first
    INSERT INTO bench.buckets (key, tokens, updated_at)
    VALUES (p_key, p_capacity, pg_catalog.clock_timestamp())
    ON CONFLICT (key) DO NOTHING;
    SELECT b.tokens, b.updated_at INTO v_tokens, v_at
      FROM bench.buckets b WHERE b.key = p_key FOR UPDATE;
  END IF;
  v_now := pg_catalog.clock_timestamp();
  IF v_now > v_at THEN
    v_tokens := v_tokens + extract(epoch FROM v_now - v_at)::double precision * p_refill;
  ELSE
    v_now := v_at;
  END IF;
  v_tokens := least(v_tokens, p_capacity);
  allowed := v_tokens >= p_cost;
  IF allowed THEN
    v_tokens := v_tokens - p_cost;
  END IF;
  UPDATE bench.buckets SET tokens = v_tokens, updated_at = v_now WHERE key = p_key;
  remaining := floor(v_tokens);
  retry_after_ms := CASE WHEN allowed THEN 0
                         WHEN p_refill > 0 THEN least(ceil((p_cost - v_tokens) / p_refill * 1000), 2147483647) END;
END
$$;

-- The baseline starts with its 1000 keys (full buckets); pgext creates each on its first call.
INSERT INTO bench.buckets SELECT 'bench:' || i, 100, clock_timestamp() FROM generate_series(1, 1000) i;
VACUUM ANALYZE bench.buckets;

\set b random(0, :nkeys / 100 - 1)
SELECT count(*) FILTER (WHERE r.allowed)
  FROM generate_series(1, 100) i, bench.rate_limit('bench:' || (:b * 100 + i), 100, 50) r;

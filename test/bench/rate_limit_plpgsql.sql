\set k random(1, :nkeys)
SELECT * FROM bench.rate_limit('bench:' || :k, 100, 50);

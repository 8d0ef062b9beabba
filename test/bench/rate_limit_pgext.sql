\set k random(1, :nkeys)
SELECT * FROM pgext.rate_limit('bench:' || :k, 100, 50);

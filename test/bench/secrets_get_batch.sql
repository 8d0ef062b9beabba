\set n random(1, 980)
SELECT count(pgext.secret_get('anthropic.api_key', bench_id(i))) FROM generate_series(:n, :n + 19) i;

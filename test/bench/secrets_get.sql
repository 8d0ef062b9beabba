\set n random(1, 1000)
SELECT pgext.secret_get('anthropic.api_key', bench_id(:n));

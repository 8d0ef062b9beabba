\set n random(1, 1001 - :batch)
\set m :n + :batch - 1
SELECT count(pgext.secret_get('anthropic.api_key', bench_id(i))) FROM generate_series(:n::int, :m::int) i;

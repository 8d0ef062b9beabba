\set n random(1, 1000)
SELECT value FROM bench_plain WHERE account = bench_id(:n) AND name = 'anthropic.api_key';

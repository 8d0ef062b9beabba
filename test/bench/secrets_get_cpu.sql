SELECT count(pgext.secret_get('anthropic.api_key', bench_id(1 + g % 1000))) FROM generate_series(0, :n - 1) g;

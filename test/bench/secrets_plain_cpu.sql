SELECT count((SELECT p.value FROM bench_plain p WHERE p.account = bench_id(1 + g % 1000) AND p.name = 'anthropic.api_key'))
  FROM generate_series(0, :n - 1) g;

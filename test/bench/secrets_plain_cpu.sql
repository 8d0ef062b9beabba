SELECT count((SELECT p.value FROM bench_plain p WHERE p.account = a[1 + g % 1000] AND p.name = 'anthropic.api_key'))
  FROM (SELECT array_agg(account ORDER BY n) AS a FROM bench_values) v, generate_series(0, :n - 1) g;

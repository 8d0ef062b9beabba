SELECT count((SELECT pgp_sym_decrypt(p.ct, 'bench-passphrase') FROM bench_pgp p WHERE p.account = a[1 + g % 1000]))
  FROM (SELECT array_agg(account ORDER BY n) AS a FROM bench_values) v, generate_series(0, :n - 1) g;

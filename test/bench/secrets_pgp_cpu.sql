SELECT count((SELECT pgp_sym_decrypt(p.ct, 'bench-passphrase') FROM bench_pgp p WHERE p.account = bench_id(1 + g % 1000)))
  FROM generate_series(0, :n - 1) g;

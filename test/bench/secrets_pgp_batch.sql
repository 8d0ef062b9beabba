\set n random(1, 980)
SELECT count(pgp_sym_decrypt(p.ct, 'bench-passphrase'))
  FROM generate_series(:n, :n + 19) i JOIN bench_pgp p ON p.account = bench_id(i);

\set n random(1, 1001 - :batch)
\set m :n + :batch - 1
SELECT count(pgp_sym_decrypt(p.ct, 'bench-passphrase'))
  FROM generate_series(:n::int, :m::int) i JOIN bench_pgp p ON p.account = bench_id(i);

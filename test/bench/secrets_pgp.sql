\set n random(1, 1000)
SELECT pgp_sym_decrypt(ct, 'bench-passphrase') FROM bench_pgp WHERE account = bench_id(:n);

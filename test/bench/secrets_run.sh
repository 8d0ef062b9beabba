#!/usr/bin/env bash
# Inside pg_virtualenv (see secrets.sh): load data, run pgbench, print ratios.
set -euo pipefail
cd "$(dirname "$0")"
source ./lib.sh
seconds=${BENCH_SECONDS:-10}
clients=${BENCH_CLIENTS:-2}
batch=${BENCH_BATCH:-100}
psql -X -q -v ON_ERROR_STOP=1 -f secrets_setup.sql

# Run one pgbench script; prints its tps (excluding connection time).
run() {
  bench_pgbench -M prepared -c "$clients" -j "$clients" -T "$seconds" -D batch="$batch" -f "$1"
}

echo "pgext secret read benchmark: ${seconds}s per script, $clients clients, pgbench -M prepared, batch $batch"
echo "1000 accounts, one 51-byte value each; pgcrypto with its default s2k settings; audit on"
single_pgext=$(run secrets_get.sql)
single_pgp=$(run secrets_pgp.sql)
batch_pgext=$(run secrets_get_batch.sql)
batch_pgp=$(run secrets_pgp_batch.sql)
psql -X -At -c "SELECT 'audit counted ' || sum(count) || ' reads' FROM pgext.secret_audit_pending() WHERE op = 'get'"
awk -v sp="$single_pgext" -v sq="$single_pgp" -v bp="$batch_pgext" -v bq="$batch_pgp" -v b="$batch" -v c="$clients" 'BEGIN {
  printf "1 read per transaction:     secret_get %9.1f tps   pgp_sym_decrypt %8.1f tps   ratio %5.1fx\n", sp, sq, sp / sq;
  printf "%d reads per transaction:   secret_get %9.1f tps   pgp_sym_decrypt %8.1f tps   ratio %5.1fx\n", b, bp, bq, bp / bq;
  printf "reads per second (%d-read runs): secret_get %.0f   pgp_sym_decrypt %.0f\n", b, bp * b, bq * b;
  printf "time per read per client:   secret_get %6.1f us    pgp_sym_decrypt %7.1f us\n",
         1e6 * c / (bp * b), 1e6 * c / (bq * b);
}'

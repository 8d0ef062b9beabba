#!/usr/bin/env bash
# Inside pg_virtualenv (see credits.sh): load fixtures, then for every fsync
# setting in FSYNCS and every protocol in MODES run the variants ROUNDS times
# in alternation and report tps, server CPU per call and the ratios.
set -euo pipefail
cd "$(dirname "$0")"
source ./lib.sh
N=10000
psql -X -q -v ON_ERROR_STOP=1 -v naccounts=$N -f credits_setup.sql >/dev/null

# Throughput: CLIENTS clients on deduct_<variant>.sql over the scenario's $n
# accounts, tps into BENCH_RESULT.
deduct_tps() {
  BENCH_RESULT=$(bench_pgbench -M "$MODE" -c "$CLIENTS" -j 2 -T "$SECONDS_PER_RUN" \
    -D naccounts="$n" -f "deduct_$1.sql")
}

# CPU: one backend runs CPU_CALLS calls of the variant in a server-side loop
# (a COMMIT per call, no client round trip: bench.cpu_loop in
# credits_setup.sql); its on-CPU time (/proc/<pid>/schedstat) per call, minus
# the same loop running the driver alone, in us into BENCH_RESULT.
loop_ns() {
  psql -X -q -At -v ON_ERROR_STOP=1 <<SQL
SELECT pg_backend_pid() AS pid \gset
SELECT split_part(pg_read_file('/proc/' || :pid || '/schedstat'), ' ', 1)::bigint AS t0 \gset
CALL bench.cpu_loop('$1', $CPU_CALLS, $n);
SELECT split_part(pg_read_file('/proc/' || :pid || '/schedstat'), ' ', 1)::bigint - :t0;
SQL
}
deduct_cpu() {
  local ns drv
  ns=$(loop_ns "$1")
  drv=$(loop_ns driver)
  BENCH_RESULT=$(awk -v a="$ns" -v d="$drv" -v c="$CPU_CALLS" 'BEGIN { printf "%.1f", (a - d) / 1000 / c }')
}

bench_header
echo "clients=$CLIENTS seconds/run=$SECONDS_PER_RUN rounds=$ROUNDS, $N accounts, a fresh idempotency key per call"
echo "(a) pgext.credit_deduct; (b) the same UPDATE+INSERT statement on tables of pgext's own shape"
echo "(LIKE pgext.accounts/credit_ledger: same columns, types, constraints, indexes); (d) the bare floor:"
echo "the same statement on bigint ids, primary keys only; (c) the usual plpgsql lock/check/update/insert;"
echo "(e) the contract floor: (d) with uuid account ids, CHECK (balance >= 0) and a unique (account_id,"
echo "idempotency_key) index, the least a deduct keeping pgext's promises writes (no history index)."
echo "CPU: one backend, CPU_CALLS=$CPU_CALLS calls in a server-side loop with a COMMIT per call, its"
echo "on-CPU time per call (/proc/<pid>/schedstat) minus the loop's own (the client round trip excluded)"
for f in $FSYNCS; do
  psql -X -q -c "ALTER SYSTEM SET fsync = $f" -c 'SELECT pg_reload_conf()' >/dev/null
  for MODE in $MODES; do
  for scenario in $SCENARIOS; do
    case $scenario in
      10k) label="10k accounts"; n=$N ;;
      hot) label="one hot account"; n=1 ;;
    esac
    declare -A tps=() cpu=()
    bench_rounds tps deduct_tps pgext same bare min plpgsql
    bench_rounds cpu deduct_cpu pgext same bare min plpgsql
    echo
    echo "== fsync=$f, $label, protocol $MODE"
    bench_report tps 'tps %10.1f' \
      pgext   '(a) pgext.credit_deduct      ' \
      same    '(b) floor, pgext shape       ' \
      bare    '(d) floor, bare              ' \
      min     '(e) floor, contract minimum  ' \
      plpgsql '(c) plpgsql FOR UPDATE       '
    declare -A tpsmed=()
    for v in pgext same bare min plpgsql; do tpsmed[$v]=${median[$v]}; done
    bench_report cpu 'us CPU/call %7.1f' \
      pgext   '(a) pgext.credit_deduct      ' \
      same    '(b) floor, pgext shape       ' \
      bare    '(d) floor, bare              ' \
      min     '(e) floor, contract minimum  ' \
      plpgsql '(c) plpgsql FOR UPDATE       '
    awk -v a="${tpsmed[pgext]}" -v b="${tpsmed[same]}" -v d="${tpsmed[bare]}" -v c="${tpsmed[plpgsql]}" \
      -v e="${tpsmed[min]}" -v ca="${median[pgext]}" -v cb="${median[same]}" -v cd="${median[bare]}" \
      'BEGIN { printf "  tps: (a)/(b) = %.3f (target >= 1.0)   (a)/(d) = %.3f (target >= 0.75)   (a)/(c) = %.3f\n", a/b, a/d, a/c;
               printf "  CPU: (a) %.1f us/call (target <= 30)   (a)/(b) = %.2f   (a)/(d) = %.2f\n", ca, ca/cb, ca/cd;
               printf "  shape: (e)/(d) = %.3f (what uuid ids and the idempotency index cost)   (b)/(e) = %.3f (the history index, profile columns)   (a)/(e) = %.3f\n", e/d, b/e, a/e }'
    unset tps cpu tpsmed
  done
  done
done
echo
echo "audit rows (must be 0): $(psql -XAtc 'SELECT count(*) FROM pgext.credit_audit()')"

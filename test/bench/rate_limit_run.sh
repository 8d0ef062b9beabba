#!/usr/bin/env bash
# Inside pg_virtualenv: create the baseline, run both variants ROUNDS times, report.
set -euo pipefail
cd "$(dirname "$0")"
source ./lib.sh
psql -X -q -v ON_ERROR_STOP=1 -f rate_limit_setup.sql >/dev/null
bench_header
echo "clients=$CLIENTS seconds/run=$SECONDS_PER_RUN rounds=$ROUNDS capacity=100 refill=50/s cost=1"

# One run of rate_limit_<variant>.sql over the scenario's $n keys.
limit() {
  BENCH_RESULT=$(bench_pgbench -M "$MODE" -c "$CLIENTS" -j 2 -T "$SECONDS_PER_RUN" \
    -D nkeys="$n" -f "rate_limit_$1.sql")
}

# The function's own cost: one client, 100 calls per statement (keys b*100+1..b*100+100).
limit_batch() {
  local tps
  tps=$(bench_pgbench -M "$MODE" -c 1 -T "$SECONDS_PER_RUN" -D nkeys=1000 -f "rate_limit_$1_batch.sql")
  BENCH_RESULT=$(awk -v t="$tps" 'BEGIN { printf "%.1f", t * 100 }')
}

for MODE in $MODES; do
for scenario in "1000 keys:1000" "one hot key:1"; do
  label=${scenario%%:*}; n=${scenario##*:}
  declare -A cps=()
  bench_rounds cps limit pgext plpgsql floor
  echo
  echo "== $label, one call per transaction, $CLIENTS clients, protocol $MODE"
  bench_report cps 'calls/s %10.1f' \
    pgext   '(a) pgext.rate_limit               ' \
    plpgsql '(b) plpgsql, UNLOGGED FOR UPDATE   ' \
    floor   '(c) floor: SELECT of constants     '
  awk -v a="${median[pgext]}" -v b="${median[plpgsql]}" -v c="${median[floor]}" \
    'BEGIN { printf "  ratio (a)/(b) = %.2f   (a)/(c) = %.2f\n", a/b, a/c }'
  unset cps
done
declare -A cps=()
bench_rounds cps limit_batch pgext plpgsql
echo
echo "== 1000 keys, 100 calls per statement, 1 client, protocol $MODE (the function's own cost)"
bench_report cps 'calls/s %10.1f' \
  pgext   '(a) pgext.rate_limit               ' \
  plpgsql '(b) plpgsql, UNLOGGED FOR UPDATE   '
awk -v a="${median[pgext]}" -v b="${median[plpgsql]}" \
  'BEGIN { printf "  ratio (a)/(b) = %.2f   (%.2f us vs %.2f us per call)\n", a/b, 1e6/a, 1e6/b }'
unset cps
done

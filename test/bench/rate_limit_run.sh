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

for MODE in $MODES; do
for scenario in "1000 keys:1000" "one hot key:1"; do
  label=${scenario%%:*}; n=${scenario##*:}
  declare -A cps=()
  bench_rounds cps limit pgext plpgsql
  echo
  echo "== $label, protocol $MODE"
  bench_report cps 'calls/s %10.1f' \
    pgext   '(a) pgext.rate_limit               ' \
    plpgsql '(b) plpgsql, UNLOGGED FOR UPDATE   '
  awk -v a="${median[pgext]}" -v b="${median[plpgsql]}" \
    'BEGIN { printf "  ratio (a)/(b) = %.2f\n", a/b }'
  unset cps
done
done

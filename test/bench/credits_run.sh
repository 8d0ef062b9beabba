#!/usr/bin/env bash
# Inside pg_virtualenv: load fixtures, run every variant ROUNDS times, report.
set -euo pipefail
cd "$(dirname "$0")"
source ./lib.sh
N=10000
psql -X -q -v ON_ERROR_STOP=1 -v naccounts=$N -f credits_setup.sql >/dev/null
bench_header
echo "clients=$CLIENTS seconds/run=$SECONDS_PER_RUN rounds=$ROUNDS"

# One run of deduct_<variant>.sql over the scenario's $n accounts.
deduct() {
  BENCH_RESULT=$(bench_pgbench -M "$MODE" -c "$CLIENTS" -j 2 -T "$SECONDS_PER_RUN" \
    -D naccounts="$n" -f "deduct_$1.sql")
}

for MODE in $MODES; do
for scenario in "10k accounts:$N" "one hot account:1"; do
  label=${scenario%%:*}; n=${scenario##*:}
  declare -A tps=()
  bench_rounds tps deduct pgext floor plpgsql
  echo
  echo "== $label, protocol $MODE"
  bench_report tps 'tps %10.1f' \
    pgext   '(a) pgext.credit_deduct      ' \
    floor   '(b) floor UPDATE+INSERT      ' \
    plpgsql '(c) plpgsql FOR UPDATE       '
  awk -v a="${median[pgext]}" -v b="${median[floor]}" -v c="${median[plpgsql]}" \
    'BEGIN { printf "  ratio (a)/(b) = %.3f   (a)/(c) = %.3f\n", a/b, a/c }'
  unset tps
done
done
echo
echo "audit rows (must be 0): $(psql -XAtc 'SELECT count(*) FROM pgext.credit_audit()')"

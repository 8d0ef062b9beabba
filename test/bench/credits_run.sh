#!/usr/bin/env bash
# Inside pg_virtualenv: load fixtures, run every variant ROUNDS times, report.
set -euo pipefail
cd "$(dirname "$0")"
N=10000
psql -X -q -v ON_ERROR_STOP=1 -v naccounts=$N -f credits_setup.sql >/dev/null
echo "PostgreSQL $(psql -XAtc 'SHOW server_version'), fsync=$(psql -XAtc 'SHOW fsync'), synchronous_commit=$(psql -XAtc 'SHOW synchronous_commit'), $(nproc) cores"
echo "clients=$CLIENTS seconds/run=$SECONDS_PER_RUN rounds=$ROUNDS"

run() {  # run <script> <naccounts> -> prints tps
  pgbench -n -M "$MODE" -c "$CLIENTS" -j 2 -T "$SECONDS_PER_RUN" -D naccounts="$2" -f "$1" 2>&1 |
    awk '/^tps = / {print $3}'
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

for MODE in $MODES; do
for scenario in "10k accounts:$N" "one hot account:1"; do
  label=${scenario%%:*}; n=${scenario##*:}
  declare -A tps=([pgext]="" [floor]="" [plpgsql]="")
  for r in $(seq "$ROUNDS"); do
    for v in pgext floor plpgsql; do
      t=$(run "deduct_$v.sql" "$n")
      tps[$v]+="$t "
    done
  done
  a=$(echo ${tps[pgext]} | tr ' ' '\n' | median)
  b=$(echo ${tps[floor]} | tr ' ' '\n' | median)
  c=$(echo ${tps[plpgsql]} | tr ' ' '\n' | median)
  echo
  echo "== $label, protocol $MODE"
  printf '  (a) pgext.credit_deduct      tps %10.1f   rounds: %s\n' "$a" "${tps[pgext]}"
  printf '  (b) floor UPDATE+INSERT      tps %10.1f   rounds: %s\n' "$b" "${tps[floor]}"
  printf '  (c) plpgsql FOR UPDATE       tps %10.1f   rounds: %s\n' "$c" "${tps[plpgsql]}"
  awk -v a="$a" -v b="$b" -v c="$c" 'BEGIN { printf "  ratio (a)/(b) = %.3f   (a)/(c) = %.3f\n", a/b, a/c }'
  unset tps
done
done
echo
echo "audit rows (must be 0): $(psql -XAtc 'SELECT count(*) FROM pgext.credit_audit()')"

#!/usr/bin/env bash
# Inside pg_virtualenv (see credits_instructions.sh).
set -euo pipefail
cd "$(dirname "$0")"
source ./lib.sh
psql -X -q -v ON_ERROR_STOP=1 -v naccounts=10000 -f credits_setup.sql >/dev/null
# warm every relation and plan once, so that the measured runs start alike
for v in pgext same bare plpgsql; do psql -X -q -c "CALL bench.cpu_loop('$v', 200, 10000)"; done
psql -X -q -c checkpoint
data=$(psql -XAtc 'SHOW data_directory') conf=$(psql -XAtc 'SHOW config_file')
out=$(mktemp -d)
pg_ctlcluster "${PG_CLUSTER_CONF_ROOT:+}15" regress stop 2>/dev/null || pg_ctl -D "$data" stop -m fast >/dev/null
declare -A ir
for v in driver pgext same bare plpgsql; do
  echo "CALL bench.cpu_loop('$v', $CALLS, 10000)" |
    valgrind --tool=callgrind --callgrind-out-file="$out/cg.$v" \
      "$(pg_config --bindir)/postgres" --single -D "$data" -c config_file="$conf" postgres \
      >/dev/null 2>"$out/err.$v" || { cat "$out/err.$v" >&2; exit 1; }
  ir[$v]=$(sed -n 's/^summary: //p' "$out/cg.$v")
done
pg_ctlcluster 15 regress start 2>/dev/null || true
bench_header
echo "instructions per call ($CALLS calls each, single-user backend under callgrind, the loop's own cost subtracted):"
for v in pgext same bare plpgsql; do
  printf '  %-34s %9.0f\n' "$(case $v in pgext) echo '(a) pgext.credit_deduct';; same) echo '(b) floor, pgext shape';;
    bare) echo '(d) floor, bare';; plpgsql) echo '(c) plpgsql FOR UPDATE';; esac)" \
    "$(awk -v a="${ir[$v]}" -v d="${ir[driver]}" -v n="$CALLS" 'BEGIN { print (a - d) / n }')"
done
awk -v a="${ir[pgext]}" -v b="${ir[same]}" -v c="${ir[bare]}" -v d="${ir[driver]}" \
  'BEGIN { printf "  (a)/(b) = %.2f   (a)/(d) = %.2f\n", (a-d)/(b-d), (a-d)/(c-d) }'
echo
echo "inclusive instructions per call, (a) vs (b), largest differences:"
for v in pgext same; do
  callgrind_annotate --inclusive=yes --threshold=99.9 "$out/cg.$v" 2>/dev/null |
    sed -n 's/^ *\([0-9,]*\) ([ 0-9.]*%)  [^:]*:\([A-Za-z_][A-Za-z0-9_]*\) .*/\2 \1/p' | tr -d , > "$out/inc.$v"
done
awk -v n="$CALLS" -v top="$TOP" '
  FNR == 1 { f++ }
  { if (!(($1, f) in seen)) { seen[$1, f] = 1; v[$1, f] = $2; names[$1] = 1 } }
  END {
    for (k in names) { d = (v[k, 1] - v[k, 2]) / n; if (d < 0) d = -d; if (d > 1000) printf "%10.0f %10.0f %10.0f  %s\n", v[k, 1] / n, v[k, 2] / n, (v[k, 1] - v[k, 2]) / n, k }
  }' "$out/inc.pgext" "$out/inc.same" | sort -k3 -g -r | head -"$TOP" |
  awk 'BEGIN { printf "%10s %10s %10s  %s\n", "(a)", "(b)", "(a)-(b)", "function" } { print }'
rm -rf "$out"

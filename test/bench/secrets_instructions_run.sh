#!/usr/bin/env bash
# Inside pg_virtualenv (see secrets_instructions.sh).
set -euo pipefail
cd "$(dirname "$0")"
source ./lib.sh
psql -X -q -v ON_ERROR_STOP=1 -f secrets_setup.sql >/dev/null
walk="FROM (SELECT array_agg(account ORDER BY n) AS a FROM bench_values) v, generate_series(0, $READS - 1) g"
declare -A q=(
  [driver]="SELECT count(a[1 + g % 1000]) $walk"
  [get]="SELECT count(pgext.secret_get('anthropic.api_key', a[1 + g % 1000])) $walk"
  [plain]="SELECT count((SELECT p.value FROM bench_plain p WHERE p.account = a[1 + g % 1000] AND p.name = 'anthropic.api_key')) $walk"
)
# warm every relation, key and cache once, so that the measured runs start alike
for v in driver get plain; do psql -X -q -c "${q[$v]}" >/dev/null; done
psql -X -q -c 'SELECT pgext.secret_audit_flush()' -c checkpoint >/dev/null
data=$(psql -XAtc 'SHOW data_directory') conf=$(psql -XAtc 'SHOW config_file')
out=$(mktemp -d)
pg_ctlcluster 15 regress stop
# Each variant runs twice: its statement once, then twice in one session;
# the difference is one warm run (no start-up, no cold key or salt cache).
declare -A ir ir1
for v in driver get plain; do
  for k in 1 2; do
    for _ in $(seq $k); do echo "${q[$v]}"; done |
      valgrind --tool=callgrind --callgrind-out-file="$out/cg.$v.$k" \
        "$(pg_config --bindir)/postgres" --single -D "$data" -c config_file="$conf" postgres \
        >/dev/null 2>"$out/err.$v" || { cat "$out/err.$v" >&2; exit 1; }
  done
  ir1[$v]=$(sed -n 's/^summary: //p' "$out/cg.$v.1")
  ir[$v]=$(( $(sed -n 's/^summary: //p' "$out/cg.$v.2") - ${ir1[$v]} ))
done
pg_ctlcluster 15 regress start
bench_header
echo "instructions per read ($READS reads each in one statement, warm, single-user backend under callgrind, the driver's own cost subtracted):"
for v in get plain; do
  printf '  %-34s %9.0f\n' "$(case $v in get) echo '(a) pgext.secret_get';; plain) echo '(b) floor: plain SELECT value';; esac)" \
    "$(awk -v a="${ir[$v]}" -v d="${ir[driver]}" -v n="$READS" 'BEGIN { print (a - d) / n }')"
done
awk -v a="${ir[get]}" -v b="${ir[plain]}" -v d="${ir[driver]}" \
  'BEGIN { printf "  (a)/(b) = %.2f\n", (a-d)/(b-d) }'
# the first session's statement read every account cold: what that cost
# beyond a warm run, per account (the key derivation and the salt's read)
awk -v c="${ir1[get]}" -v cd="${ir1[driver]}" -v w="${ir[get]}" -v wd="${ir[driver]}" \
  'BEGIN { printf "  first read of each of the 1000 accounts in a backend: %.0f more (key derived, salt read; and a thousandth of the backend warming up)\n", ((c - cd) - (w - wd)) / 1000 }'
echo
echo "inclusive instructions per read inside secret_get, largest first (both runs of the second session, so cold costs show halved):"
callgrind_annotate --inclusive=yes --threshold=99.9 "$out/cg.get.2" 2>/dev/null |
  sed -n 's/^ *\([0-9,]*\) ([ 0-9.]*%)  [^:]*:\([A-Za-z_][A-Za-z0-9_.]*\) .*/\2 \1/p' | tr -d , |
  awk -v n="$READS" '!seen[$1]++ { printf "%10.0f  %s\n", $2 / n / 2, $1 }' |
  awk '$1 >= 100' | sed -n '/ secret_get$/,$p' | head -"$TOP"
rm -rf "$out"

#!/usr/bin/env bash
# Inside pg_virtualenv: load signed deliveries, run both variants ROUNDS times, report.
set -euo pipefail
cd "$(dirname "$0")"
N=${DELIVERIES:-400000}
psql -X -q -v ON_ERROR_STOP=1 -v ndeliveries="$N" -f webhooks_setup.sql >/dev/null
echo "PostgreSQL $(psql -XAtc 'SHOW server_version'), fsync=$(psql -XAtc 'SHOW fsync'), synchronous_commit=$(psql -XAtc 'SHOW synchronous_commit'), $(nproc) cores"
echo "clients=$CLIENTS seconds/run=$SECONDS_PER_RUN rounds=$ROUNDS protocol=$MODE deliveries=$N payload=$(psql -XAtc 'SELECT avg(octet_length(payload))::int FROM bench_deliveries') bytes"

run() {  # run <script> -> prints tps; every run starts from empty event tables
  psql -X -q -c 'TRUNCATE pgext.webhook_events, bench_events, floor_events' -c "SELECT setval('bench_seq', 1, false)" >/dev/null
  pgbench -n -M "$MODE" -c "$CLIENTS" -j 2 -T "$SECONDS_PER_RUN" -D ndeliveries="$N" -f "$1" 2>&1 |
    awk '/^tps = / {print $3}'
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

declare -A tps=([pgext]="" [plpgsql]="" [floor]="")
for r in $(seq "$ROUNDS"); do
  for v in pgext plpgsql floor; do
    tps[$v]+="$(run "ingest_$v.sql") "
    [ "$v" = pgext ] && statuses=$(psql -XAtc "SELECT string_agg(status || '=' || n, ' ') FROM (SELECT status, count(*) n FROM pgext.webhook_events GROUP BY 1) s")
  done
done
a=$(echo ${tps[pgext]} | tr ' ' '\n' | median)
b=$(echo ${tps[plpgsql]} | tr ' ' '\n' | median)
f=$(echo ${tps[floor]} | tr ' ' '\n' | median)
echo
printf '  (a) pgext.webhook_ingest            tps %10.1f   rounds: %s\n' "$a" "${tps[pgext]}"
printf '  (b) plpgsql + pgcrypto hmac()       tps %10.1f   rounds: %s\n' "$b" "${tps[plpgsql]}"
printf '  (f) floor: same INSERT, no checks tps %10.1f   rounds: %s\n' "$f" "${tps[floor]}"
awk -v a="$a" -v b="$b" -v f="$f" 'BEGIN { printf "  ratio (a)/(b) = %.3f   (target >= 1.5)   (a)/(f) = %.3f   (f)/(b) = %.3f\n", a/b, a/f, f/b }'
echo "events recorded by the last pgext run: $statuses"

# The function alone: 20000 calls in one transaction (no commit, no client
# round trip), each variant ROUNDS times, median microseconds per call.
percall() {  # percall <function call on d.*> -> prints us/call
  psql -XAt -v ON_ERROR_STOP=1 <<SQL | tail -n 1
TRUNCATE pgext.webhook_events, bench_events;
SELECT clock_timestamp() AS t0 \gset
SELECT count($1) FROM bench_deliveries d WHERE d.n <= 20000;
SELECT round((extract(epoch FROM clock_timestamp() - :'t0') * 1e6 / 20000)::numeric, 2);
SQL
}
declare -A us=([pgext]="" [plpgsql]="")
for r in $(seq "$ROUNDS"); do
  us[pgext]+="$(percall "(pgext.webhook_ingest('stripe', d.payload, d.signature, d.received_at)).status") "
  us[plpgsql]+="$(percall "bench_ingest_plpgsql(d.payload, d.signature, d.received_at)") "
done
c=$(echo ${us[pgext]} | tr ' ' '\n' | median)
d=$(echo ${us[plpgsql]} | tr ' ' '\n' | median)
echo
echo "function only (20000 calls in one transaction):"
printf '  (a) pgext.webhook_ingest            us/call %7.2f   rounds: %s\n' "$c" "${us[pgext]}"
printf '  (b) plpgsql + pgcrypto hmac()       us/call %7.2f   rounds: %s\n' "$d" "${us[plpgsql]}"
awk -v c="$c" -v d="$d" 'BEGIN { printf "  speedup (b)/(a) = %.3f\n", d/c }'

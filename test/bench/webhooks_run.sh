#!/usr/bin/env bash
# Inside pg_virtualenv: load signed deliveries, run both variants ROUNDS times, report.
set -euo pipefail
cd "$(dirname "$0")"
N=${DELIVERIES:-400000}
psql -X -q -v ON_ERROR_STOP=1 -v ndeliveries="$N" -f webhooks_setup.sql >/dev/null
echo "PostgreSQL $(psql -XAtc 'SHOW server_version'), fsync=$(psql -XAtc 'SHOW fsync'), synchronous_commit=$(psql -XAtc 'SHOW synchronous_commit'), $(nproc) cores"
echo "clients=$CLIENTS seconds/run=$SECONDS_PER_RUN rounds=$ROUNDS protocol=$MODE deliveries=$N payload=$(psql -XAtc 'SELECT avg(octet_length(payload))::int FROM bench_deliveries') bytes"

run() {  # run <script> -> prints tps; every run starts from empty event tables
  psql -X -q -c 'TRUNCATE pgext.webhook_events, bench_events' -c "SELECT setval('bench_seq', 1, false)" >/dev/null
  pgbench -n -M "$MODE" -c "$CLIENTS" -j 2 -T "$SECONDS_PER_RUN" -D ndeliveries="$N" -f "$1" 2>&1 |
    awk '/^tps = / {print $3}'
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

declare -A tps=([pgext]="" [plpgsql]="")
for r in $(seq "$ROUNDS"); do
  for v in pgext plpgsql; do
    tps[$v]+="$(run "ingest_$v.sql") "
    [ "$v" = pgext ] && statuses=$(psql -XAtc "SELECT string_agg(status || '=' || n, ' ') FROM (SELECT status, count(*) n FROM pgext.webhook_events GROUP BY 1) s")
  done
done
a=$(echo ${tps[pgext]} | tr ' ' '\n' | median)
b=$(echo ${tps[plpgsql]} | tr ' ' '\n' | median)
echo
printf '  (a) pgext.webhook_ingest            tps %10.1f   rounds: %s\n' "$a" "${tps[pgext]}"
printf '  (b) plpgsql + pgcrypto hmac()       tps %10.1f   rounds: %s\n' "$b" "${tps[plpgsql]}"
awk -v a="$a" -v b="$b" 'BEGIN { printf "  ratio (a)/(b) = %.3f   (target >= 1.5)\n", a/b }'
echo
echo "events recorded by the last pgext run: $statuses"

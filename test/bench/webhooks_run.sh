#!/usr/bin/env bash
# Inside pg_virtualenv: load signed deliveries, run both variants ROUNDS times, report.
set -euo pipefail
cd "$(dirname "$0")"
source ./lib.sh
N=${DELIVERIES:-400000}
psql -X -q -v ON_ERROR_STOP=1 -v ndeliveries="$N" -f webhooks_setup.sql >/dev/null
bench_header
echo "clients=$CLIENTS seconds/run=$SECONDS_PER_RUN rounds=$ROUNDS protocol=$MODE deliveries=$N payload=$(psql -XAtc 'SELECT avg(octet_length(payload))::int FROM bench_deliveries') bytes"

# One run of ingest_<variant>.sql; every run starts from empty event tables.
# After a pgext run, what it recorded (the next run empties the table).
ingest() {
  psql -X -q -c 'TRUNCATE pgext.webhook_events, bench_events, floor_events' -c "SELECT setval('bench_seq', 1, false)" >/dev/null
  BENCH_RESULT=$(bench_pgbench -M "$MODE" -c "$CLIENTS" -j 2 -T "$SECONDS_PER_RUN" \
    -D ndeliveries="$N" -f "ingest_$1.sql")
  if [ "$1" = pgext ]; then
    statuses=$(psql -XAtc "SELECT string_agg(status || '=' || n, ' ') FROM (SELECT status, count(*) n FROM pgext.webhook_events GROUP BY 1) s")
  fi
}
declare -A tps=()
bench_rounds tps ingest pgext plpgsql floor
echo
bench_report tps 'tps %10.1f' \
  pgext   '(a) pgext.webhook_ingest            ' \
  plpgsql '(b) plpgsql + pgcrypto hmac()       ' \
  floor   '(f) floor: same INSERT, no checks '
awk -v a="${median[pgext]}" -v b="${median[plpgsql]}" -v f="${median[floor]}" \
  'BEGIN { printf "  ratio (a)/(b) = %.3f   (target >= 1.1 with fsync=off)   (a)/(f) = %.3f   (f)/(b) = %.3f\n", a/b, a/f, f/b }'
echo "events recorded by the last pgext run: $statuses"

# The function alone: 20000 calls in one transaction (no commit, no client
# round trip), each variant ROUNDS times, median microseconds per call.
declare -A calls=(
  [pgext]="(pgext.webhook_ingest('stripe', d.payload, d.signature, d.received_at)).status"
  [plpgsql]="bench_ingest_plpgsql(d.payload, d.signature, d.received_at)")
percall() {  # percall <variant>: microseconds per call of calls[variant]
  BENCH_RESULT=$(psql -XAt -v ON_ERROR_STOP=1 <<SQL | tail -n 1
TRUNCATE pgext.webhook_events, bench_events;
SELECT clock_timestamp() AS t0 \gset
SELECT count(${calls[$1]}) FROM bench_deliveries d WHERE d.n <= 20000;
SELECT round((extract(epoch FROM clock_timestamp() - :'t0') * 1e6 / 20000)::numeric, 2);
SQL
  )
}
# shellcheck disable=SC2034  # filled through bench_rounds' name reference
declare -A us=()
ROUNDS=${PERCALL_ROUNDS:-$ROUNDS} bench_rounds us percall pgext plpgsql
echo
echo "function only (20000 calls in one transaction, ${PERCALL_ROUNDS:-$ROUNDS} rounds):"
bench_report us 'us/call %7.2f' \
  pgext   '(a) pgext.webhook_ingest            ' \
  plpgsql '(b) plpgsql + pgcrypto hmac()       '
awk -v c="${median[pgext]}" -v d="${median[plpgsql]}" 'BEGIN { printf "  speedup (b)/(a) = %.3f\n", d/c }'

#!/usr/bin/env bash
# Inside pg_virtualenv (see hotpaths_instructions.sh).
set -euo pipefail
cd "$(dirname "$0")"
source ./lib.sh
# one database per path: their fixtures would share account names
for db in credits secrets webhooks; do createdb "b_$db"; done
psql -X -q -d b_credits -v ON_ERROR_STOP=1 -v naccounts=10000 -f credits_setup.sql >/dev/null 2>&1
psql -X -q -d b_secrets -v ON_ERROR_STOP=1 -f secrets_setup.sql >/dev/null 2>&1
psql -X -q -d b_webhooks -v ON_ERROR_STOP=1 -v ndeliveries=100000 -f webhooks_setup.sql >/dev/null 2>&1
psql -X -q -d b_secrets -c 'SELECT pgext.secret_audit_flush()' >/dev/null
psql -X -q -c 'VACUUM ANALYZE' -c checkpoint >/dev/null
data=$(psql -XAtc 'SHOW data_directory') conf=$(psql -XAtc 'SHOW config_file')
bench_header

# WAL bytes per transaction of a variant (what an fsync-bound server writes
# and flushes per commit), before valgrind: the second of two runs of 2000
# transactions (the first takes the full-page images after the checkpoint).
declare -A wal
wal_per_tx() {
  local db=$1 file=$2 a b
  for run in 1 2; do
    a=$(psql -XAtd "$db" -c 'SELECT pg_current_wal_insert_lsn()')
    pgbench -n -M prepared -c 1 -t 2000 -D naccounts=10000 -D ndeliveries=100000 -f "$file" "$db" >/dev/null
    b=$(psql -XAtd "$db" -c 'SELECT pg_current_wal_insert_lsn()')
  done
  psql -XAtd "$db" -c "SELECT round(pg_wal_lsn_diff('$b', '$a') / 2000)"
}
wal[deduct_pgext]=$(wal_per_tx b_credits deduct_pgext.sql)
wal[deduct_same]=$(wal_per_tx b_credits deduct_same.sql)
wal[deduct_bare]=$(wal_per_tx b_credits deduct_bare.sql)
wal[deduct_min]=$(wal_per_tx b_credits deduct_min.sql)
wal[ingest_pgext]=$(wal_per_tx b_webhooks ingest_pgext.sql)
wal[ingest_plpgsql]=$(wal_per_tx b_webhooks ingest_plpgsql.sql)
psql -X -q -c checkpoint >/dev/null
pg_ctlcluster 15 regress stop
out=$(mktemp -d)
valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$out/cg.%p" \
  "$(pg_config --bindir)/postgres" -D "$data" -c config_file="$conf" >"$out/server.log" 2>&1 &
vg=$!
until pg_isready -q; do sleep 1; done
# let the start-up processes (and pg_isready's backend) write their profiles
# first: wait for the number of profiles to hold still for 3 seconds
n=-1
until [ "$n" = "$(ls "$out" | grep -c '^cg\.')" ]; do n=$(ls "$out" | grep -c '^cg\.'); sleep 3; done

# Instructions of the backend that served one pgbench run of <file> in <db>.
# pgbench opens two connections, a check and then the client; each forked
# backend writes its profile when it exits (after pgbench returns), counting
# from the postmaster's count at the fork: wait for both files and print the
# client's (the larger).
run_ir() {
  local db=$1 file=$2 t=$3 before new
  before=$(ls "$out" | grep '^cg\.' || true)
  pgbench -n -M prepared -c 1 -t "$t" -D naccounts=10000 -D ndeliveries=100000 -f "$file" "$db" \
    >/dev/null 2>"$out/pgbench.err" || { cat "$out/pgbench.err" >&2; exit 1; }
  for _ in $(seq 1200); do
    new=$(comm -13 <(echo "$before") <(ls "$out" | grep '^cg\.') || true)
    [ "$(cd "$out" && grep -l '^totals:' $new /dev/null | wc -l)" -ge 2 ] && break
    sleep 0.5
  done
  new=$(cd "$out" && grep '^totals:' $new | sort -t' ' -k2 -n | tail -1 | cut -d: -f1)
  [ -n "${PROFILES:-}" ] && cp "$out/$new" "$PROFILES/${file%.sql}.$t.cg"
  sed -n 's/^totals: //p' "$out/$new"
}

# Per-transaction instructions of a variant: (2T run - T run) / T, after a
# warm-up run (the first connection to a database builds its caches).
# <t> defaults to T.
per_tx() {
  local a b t=${3:-$T}
  run_ir "$1" "$2" $((t / 10 + 1)) >/dev/null
  a=$(run_ir "$1" "$2" "$t") b=$(run_ir "$1" "$2" $((2 * t)))
  awk -v a="$a" -v b="$b" -v t="$t" 'BEGIN { printf "%.0f", (b - a) / t }'
}

declare -A ir
ir[deduct_pgext]=$(per_tx b_credits deduct_pgext.sql)
ir[deduct_same]=$(per_tx b_credits deduct_same.sql)
ir[deduct_bare]=$(per_tx b_credits deduct_bare.sql)
ir[deduct_min]=$(per_tx b_credits deduct_min.sql)
# secret_get keeps each account's derived key and salt per backend: 4T reads
# over the 1000 accounts, so that the 2T-run's extra reads find them cached
# (the steady state of a long-lived connection) but for ~0.01% of them
ir[secret_get]=$(per_tx b_secrets secrets_get.sql $((4 * T)))
ir[secret_plain]=$(per_tx b_secrets secrets_plain.sql $((4 * T)))
ir[ingest_pgext]=$(per_tx b_webhooks ingest_pgext.sql)
ir[ingest_plpgsql]=$(per_tx b_webhooks ingest_plpgsql.sql)
kill -INT "$vg"; wait "$vg" || true

echo "server instructions per pgbench transaction (-M prepared, 1 client, fsync off;"
echo "WAL bytes per transaction measured before, without valgrind: one commit each;"
echo "(2t - t transactions) / t, t = $T; secrets t = $((4 * T)), over 1000 accounts):"
line() {
  printf '  %-44s %9s instructions' "$1" "$2"
  if [ -n "${3:-}" ]; then printf ' %6s WAL bytes\n' "$3"; else printf '   (reads write no WAL)\n'; fi
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
line '(a) pgext.credit_deduct, 10k accounts' "${ir[deduct_pgext]}" "${wal[deduct_pgext]}"
line '(b) floor, pgext shape' "${ir[deduct_same]}" "${wal[deduct_same]}"
line '(d) floor, bare' "${ir[deduct_bare]}" "${wal[deduct_bare]}"
line '(e) floor, contract minimum' "${ir[deduct_min]}" "${wal[deduct_min]}"
echo "  tps ratio the server allows: (b)/(a) = $(ratio "${ir[deduct_same]}" "${ir[deduct_pgext]}") (target >= 1.0), (d)/(a) = $(ratio "${ir[deduct_bare]}" "${ir[deduct_pgext]}") (target >= 0.75), (e)/(a) = $(ratio "${ir[deduct_min]}" "${ir[deduct_pgext]}")"
line '(a) pgext.secret_get' "${ir[secret_get]}"
line '(b) floor: plain SELECT value' "${ir[secret_plain]}"
echo "  tps ratio the server allows: (b)/(a) = $(ratio "${ir[secret_plain]}" "${ir[secret_get]}") (target >= 0.95)"
line '(a) pgext.webhook_ingest' "${ir[ingest_pgext]}" "${wal[ingest_pgext]}"
line '(b) plpgsql + pgcrypto hmac()' "${ir[ingest_plpgsql]}" "${wal[ingest_plpgsql]}"
echo "  tps ratio the server allows: (b)/(a) = $(ratio "${ir[ingest_plpgsql]}" "${ir[ingest_pgext]}") (target >= 1.1)"
rm -rf "$out"
pg_ctlcluster 15 regress start 2>/dev/null || true

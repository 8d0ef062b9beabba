#!/usr/bin/env bash
# Inside pg_virtualenv (see secrets.sh): load data, run every variant ROUNDS
# times per fsync setting, print medians beside the floor and the ratios.
set -euo pipefail
cd "$(dirname "$0")"
source ./lib.sh
psql -X -q -v ON_ERROR_STOP=1 -f secrets_setup.sql >/dev/null

# One pgbench run of secrets_<variant>.sql: tps into BENCH_RESULT.
tps_run() {
  BENCH_RESULT=$(bench_pgbench -M prepared -c "$CLIENTS" -j 2 -T "$SECONDS_PER_RUN" \
    -f "secrets_$1.sql")
}

# One backend runs secrets_<variant>_cpu.sql over n reads: its CPU time per
# read in microseconds (from /proc/<pid>/schedstat, ns on CPU) into BENCH_RESULT.
cpu_run() {
  local n=$CPU_READS
  [ "$1" = pgp ] && n=$((CPU_READS / 40))
  BENCH_RESULT=$(psql -X -At -v ON_ERROR_STOP=1 -v n="$n" <<SQL
SELECT pg_backend_pid() AS pid \gset
SELECT split_part(pg_read_file('/proc/' || :pid || '/schedstat'), ' ', 1)::bigint AS t0 \gset
\o /dev/null
\i secrets_$1_cpu.sql
\o
SELECT round((split_part(pg_read_file('/proc/' || :pid || '/schedstat'), ' ', 1)::bigint - :t0)
             / 1000.0 / :n, 3);
SQL
)
}

# The smallest of a list of rounds.
best() {
  # shellcheck disable=SC2086
  printf '%s\n' $1 | sort -g | head -1
}

bench_header
echo "1000 accounts, one 77-byte value each (name 'anthropic.api_key'); pgcrypto with its default s2k; audit on"
echo "tps: pgbench -M prepared, $CLIENTS clients, 1 read per transaction, ${SECONDS_PER_RUN}s per run; CPU: one backend, $CPU_READS reads (pgcrypto $((CPU_READS / 40))); medians of $ROUNDS rounds"
echo "(the machine has $(nproc) cores shared with other runs: read the rounds, not only the medians)"
for f in $FSYNCS; do
  psql -X -q -c "ALTER SYSTEM SET fsync = $f" -c 'SELECT pg_reload_conf()' >/dev/null
  psql -X -q -c 'SELECT pgext.secret_audit_flush()' >/dev/null
  echo
  echo "== fsync=$(psql -XAtc 'SHOW fsync')"
  declare -A tps=() cpu=()
  bench_rounds tps tps_run get plain pgp
  bench_report tps 'tps %10.1f' \
    get   '(a) pgext.secret_get            ' \
    plain '(b) floor: plain SELECT value   ' \
    pgp   '(c) pgcrypto pgp_sym_decrypt    '
  tg=${median[get]} tf=${median[plain]} tq=${median[pgp]}
  bench_rounds cpu cpu_run get plain pgp
  bench_report cpu 'us CPU/read %8.3f' \
    get   '(a) pgext.secret_get            ' \
    plain '(b) floor: plain SELECT value   ' \
    pgp   '(c) pgcrypto pgp_sym_decrypt    '
  # the best round too: on a shared machine noise only ever adds CPU time
  bg=$(best "${cpu[get]}") bf=$(best "${cpu[plain]}") bq=$(best "${cpu[pgp]}")
  echo "  best rounds, us CPU/read: (a) $bg   (b) $bf   (c) $bq"
  awk -v tg="$tg" -v tf="$tf" -v tq="$tq" -v cg="${median[get]}" -v cf="${median[plain]}" -v cq="${median[pgp]}" 'BEGIN {
    printf "  tps:    (a)/(b) = %.3f (target >= 0.95)   (a)/(c) = %.1fx\n", tg / tf, tg / tq;
    printf "  CPU:    (a) %.2f us/read (target <= 2.5)   (a)-(b) = %.2f us   (c)/(a) = %.1fx (target >= 45x)\n",
           cg, cg - cf, cq / cg;
  }'
  unset tps cpu
done
psql -X -At -c "SELECT 'audit counted ' || sum(count) || ' reads since the last flush' FROM pgext.secret_audit_pending() WHERE op = 'get'"

#!/usr/bin/env bash
# Benchmark (issue 14): read one secret by (account, name) with
# pgext.secret_get, beside its floor (a plain SELECT value WHERE account = $1
# AND name = $2 on an unencrypted copy with the same unique index) and
# pgcrypto's pgp_sym_decrypt on the same 1000 77-byte values, on a throwaway
# pg_virtualenv cluster (shared_preload_libraries = pgext, test keys, audit
# on), once per fsync setting in FSYNCS (changed with ALTER SYSTEM + reload).
# Not part of test/run.sh.
#
# Usage (as root on Debian 12):
#   bash test/bench/secrets.sh   (SECONDS_PER_RUN=5 ROUNDS=3 CLIENTS=8 FSYNCS="off on" CPU_READS=200000)
# Two measurements per variant, each the median of ROUNDS rounds:
#   tps      pgbench -M prepared, CLIENTS clients, one read per transaction
#            (what an app pays per call, round trip included);
#   us CPU   one backend runs CPU_READS reads in one statement
#            (pgcrypto: CPU_READS/40); its CPU time from /proc/<pid>/schedstat
#            divided by the reads (the per-read cost of the function itself,
#            plus the same generate_series driver for all three).
# Holds the install lock of test/lib.sh for the whole run.
source "$(dirname "$0")/lib.sh"
bench_main secrets --keys SECONDS_PER_RUN="${SECONDS_PER_RUN:-5}" ROUNDS="${ROUNDS:-3}" \
  CLIENTS="${CLIENTS:-8}" FSYNCS="${FSYNCS:-off on}" CPU_READS="${CPU_READS:-200000}" \
  -o max_connections=50

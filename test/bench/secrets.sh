#!/usr/bin/env bash
# Benchmark: read one secret by (account, name) with pgext.secret_get versus
# pgcrypto's pgp_sym_decrypt on the same values, in one run, on a throwaway
# pg_virtualenv cluster (shared_preload_libraries = pgext, test keys, audit on).
# Prints tps of each and the ratio.  Not part of test/run.sh.
#
# Usage (as root on Debian 12):  bash test/bench/secrets.sh [seconds] [clients] [batch]
# Runs four pgbench scripts: one read per transaction (what an app pays per
# call, round trip included) and [batch] reads per transaction (what the
# functions themselves cost, round trip amortized), each for secret_get and
# for pgp_sym_decrypt on the same 1000 values.
# Holds the install lock of test/lib.sh for the whole run.
source "$(dirname "$0")/lib.sh"
bench_main secrets --keys BENCH_SECONDS="${1:-10}" BENCH_CLIENTS="${2:-2}" BENCH_BATCH="${3:-100}"

#!/usr/bin/env bash
# credit_deduct's cost in CPU instructions per call, beside its floors: exact
# and immune to the noise of a shared machine (the tps and CPU-time benchmark
# is test/bench/credits.sh).  Each variant runs CALLS calls of bench.cpu_loop
# (credits_setup.sql: a COMMIT per call) in a single-user backend under
# valgrind --tool=callgrind; the loop alone ('driver') is subtracted.
#   bash test/bench/credits_instructions.sh     (CALLS=2000; ~3 minutes)
# Prints instructions per call and, with TOP=n (default 25), the functions
# whose inclusive cost differs most between credit_deduct and the same-shape
# floor.  Needs valgrind (apt-get install valgrind).
source "$(dirname "$0")/lib.sh"
command -v valgrind >/dev/null || apt-get install -y -q valgrind >/dev/null
bench_main credits_instructions CALLS="${CALLS:-2000}" TOP="${TOP:-25}" -o fsync=off

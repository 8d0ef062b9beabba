#!/usr/bin/env bash
# secret_get's cost in CPU instructions per read, beside its floor (the plain
# SELECT on an unencrypted copy with the same unique index): exact and immune
# to the noise of a shared machine (the tps and CPU-time benchmark is
# test/bench/secrets.sh).  Each variant reads READS values in one statement
# in a single-user backend under valgrind --tool=callgrind; the statement's
# driver alone (the same array walk without the read) is subtracted, and
# each is measured warm (see secrets_instructions_run.sh).
#   bash test/bench/secrets_instructions.sh     (READS=20000; ~2 minutes)
# Prints instructions per read and, with TOP=n (default 25), the functions
# with the largest inclusive cost per read inside secret_get.  Needs valgrind
# (apt-get install valgrind).
source "$(dirname "$0")/lib.sh"
command -v valgrind >/dev/null || apt-get install -y -q valgrind >/dev/null
bench_main secrets_instructions --keys READS="${READS:-20000}" TOP="${TOP:-25}"

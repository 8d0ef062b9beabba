#!/usr/bin/env bash
# Issue 14's three hot paths in CPU instructions per pgbench transaction,
# each beside its floors: what the tps benchmarks (test/bench/hotpaths.sh)
# measure, counted exactly instead of timed, so that a shared, noisy machine
# cannot move it.  The server runs under valgrind --tool=callgrind (every
# backend counted); one pgbench client (-M prepared) runs T and then 2T
# transactions of a variant, and the difference divided by T is that
# variant's server cost per transaction: protocol, executor, the call, WAL
# and commit (fsync off), connection start-up cancelled out.
#   bash test/bench/hotpaths_instructions.sh     (T=1000; ~5 minutes; valgrind)
# A ratio here is the CPU-bound tps ratio the server alone would allow
# (pgbench's own CPU, shared by both, is not counted).  PROFILES=<dir>
# (writable by postgres) keeps each measured client's callgrind profile.
source "$(dirname "$0")/lib.sh"
command -v valgrind >/dev/null || apt-get install -y -q valgrind >/dev/null
bench_main hotpaths_instructions --keys T="${T:-1000}" PROFILES="${PROFILES:-}" \
  -o fsync=off -o autovacuum=off -o pgext.worker_enabled=off

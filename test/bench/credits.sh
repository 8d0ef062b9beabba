#!/usr/bin/env bash
# Credits benchmark (issue #2): credit_deduct vs the bare UPDATE+INSERT floor vs
# the common plpgsql pattern, over 10k accounts and on one hot account, in one
# run on one throwaway cluster.  Prints tps and the ratios.
#   bash test/bench/credits.sh   (SECONDS_PER_RUN=20 ROUNDS=3 CLIENTS=8 MODES='prepared simple' FSYNC=on)
# FSYNC=on is what a production server runs; pg_virtualenv's own default is off.
# MODES: pgbench protocols: 'prepared' (named prepared statements: the floor is
# planned once) and 'simple' (every statement parsed and planned, as many drivers do).
# The three variants alternate round by round so drift hits all of them alike;
# the reported tps is the median over rounds.
source "$(dirname "$0")/lib.sh"
bench_main credits SECONDS_PER_RUN="${SECONDS_PER_RUN:-20}" ROUNDS="${ROUNDS:-3}" \
  CLIENTS="${CLIENTS:-8}" MODES="${MODES:-prepared simple}" \
  -o max_connections=50 -o fsync="${FSYNC:-on}"

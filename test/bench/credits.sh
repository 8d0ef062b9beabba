#!/usr/bin/env bash
# Credits benchmark (issues #2, #14): credit_deduct beside its floors in one
# run on one throwaway cluster: the same UPDATE+INSERT statement on tables of
# pgext's own shape, the bare statement on bigint ids with primary keys only,
# and the common plpgsql pattern.  Prints tps, server CPU per call and ratios.
#   bash test/bench/credits.sh
#     SECONDS_PER_RUN=5 ROUNDS=3 CLIENTS=8 MODES=prepared SCENARIOS='10k hot' FSYNCS='off on'
#     CPU_CALLS=20000
# FSYNCS: each setting in turn (ALTER SYSTEM + reload on one cluster); 'on' is
# what a production server runs, 'off' shows the CPU (pg_virtualenv's default).
# MODES: pgbench protocols: 'prepared' (the floor is planned once) and/or
# 'simple' (every statement parsed and planned, as many drivers do).
# The variants alternate round by round so drift hits all of them alike; the
# reported figures are medians over rounds (the rounds are printed too).
source "$(dirname "$0")/lib.sh"
bench_main credits SECONDS_PER_RUN="${SECONDS_PER_RUN:-5}" ROUNDS="${ROUNDS:-3}" \
  CLIENTS="${CLIENTS:-8}" MODES="${MODES:-prepared}" SCENARIOS="${SCENARIOS:-10k hot}" \
  FSYNCS="${FSYNCS:-off on}" CPU_CALLS="${CPU_CALLS:-20000}" -o max_connections=50

#!/usr/bin/env bash
# Webhook intake benchmark (issues #4, #14): pgext.webhook_ingest vs a plpgsql
# version using pgcrypto hmac() and INSERT ... ON CONFLICT DO NOTHING, on
# ~1 KB signed Stripe events (90% new, 10% duplicates), CLIENTS clients, one
# throwaway cluster per fsync setting, in one command.  Prints tps, the ratio
# and each beside the floor.
#   bash test/bench/webhooks.sh   (FSYNCS="off on" SECONDS_PER_RUN=15 ROUNDS=3 CLIENTS=8
#                                  MODE=prepared DELIVERIES=400000 WORKER=on PERCALL_ROUNDS=$ROUNDS)
# WORKER=off keeps the background worker from applying the recorded events
# while the benchmark runs (it applies each one soon after its commit, on the
# same two cores: work the plpgsql baseline never does).
# fsync=off is the CPU-bound run (the issue-14 target: (a)/(b) >= 1.1), fsync=on
# the one a production server sees (commit flushes dominate both variants).
# Both variants read the signing secret from the secret store, verify, check
# the timestamp, parse the JSON and record the event; they alternate round by
# round so drift hits both alike; the reported tps is the median over rounds.
# (f) is the floor: the same INSERT with no verification at all, the most any
# ingest function could reach on this machine.  Also reported: the per-call
# cost of each function inside one transaction (no commit, no round trip).
source "$(dirname "$0")/lib.sh"
for fsync in ${FSYNCS:-off on}; do
  echo "=== fsync=$fsync ==="
  ( bench_main webhooks --keys SECONDS_PER_RUN="${SECONDS_PER_RUN:-15}" ROUNDS="${ROUNDS:-3}" \
      CLIENTS="${CLIENTS:-8}" MODE="${MODE:-prepared}" DELIVERIES="${DELIVERIES:-400000}" \
      PERCALL_ROUNDS="${PERCALL_ROUNDS:-${ROUNDS:-3}}" \
      -o max_connections=50 -o fsync="$fsync" -o pgext.worker_enabled="${WORKER:-on}" )
done

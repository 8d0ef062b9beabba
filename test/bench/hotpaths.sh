#!/usr/bin/env bash
# Issue 14 in one command: the three calls apps make on every request, each
# beside its floors, with fsync off (CPU-bound) and on, then a summary of the
# lines that carry a target.
#   bash test/bench/hotpaths.sh        (~20 minutes on 2 cores; ROUNDS=5 SECONDS_PER_RUN=5)
# credit_deduct: test/bench/credits.sh (10k accounts, fresh key per call);
# secret_get:    test/bench/secrets.sh;
# webhook_ingest: test/bench/webhooks.sh with WORKER=off (the worker would
# apply the recorded events on the same two cores, work the baseline never
# does; the bench's events name customers no account has).
# Holds the install lock of test/lib.sh during each part.
set -euo pipefail
here=$(dirname "$0")
rounds=${ROUNDS:-5} secs=${SECONDS_PER_RUN:-5}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
{
  echo "##### credit_deduct"
  FSYNCS="off on" SCENARIOS=10k ROUNDS=$rounds SECONDS_PER_RUN=$secs bash "$here/credits.sh"
  echo "##### secret_get"
  FSYNCS="off on" ROUNDS=$rounds SECONDS_PER_RUN=$secs bash "$here/secrets.sh"
  echo "##### webhook_ingest"
  FSYNCS="off on" WORKER=off ROUNDS=$rounds SECONDS_PER_RUN=$secs DELIVERIES=100000 \
    bash "$here/webhooks.sh"
} 2>&1 | grep -v '^Creating new PostgreSQL cluster\|^Dropping cluster' | tee "$log"
echo
echo "##### summary (the lines with a target, and credit_deduct's shape decomposition)"
awk '/^##### / { part = $2 } /^== fsync=|^=== fsync=/ { fs = $0 }
     /target|shape:/ { printf "%-15s %-28s %s\n", part, substr(fs, 1, 28), $0 }' "$log"

#!/usr/bin/env bash
# Rate limiter benchmark (issue #13): pgext.rate_limit (token buckets in shared
# memory) vs a plpgsql token bucket on an UNLOGGED table (SELECT ... FOR UPDATE,
# INSERT ... ON CONFLICT DO NOTHING for a new key) and a floor (a SELECT of
# constants: the round trip alone), over 1000 random keys and
# on one hot key, 8 clients, one call per transaction; then the function's own
# cost: 100 calls per statement, 1 client.  One run, one throwaway cluster.
# Prints calls/s and the ratios.
#   bash test/bench/rate_limit.sh   (SECONDS_PER_RUN=10 ROUNDS=3 CLIENTS=8 MODES=prepared FSYNC=on)
# In the 8-client runs every call is its own transaction.  FSYNC=on is what
# a production server runs; pg_virtualenv's own default is off.  The variants
# alternate round by round so drift hits them alike; calls/s is the median.
source "$(dirname "$0")/lib.sh"
bench_main rate_limit SECONDS_PER_RUN="${SECONDS_PER_RUN:-10}" ROUNDS="${ROUNDS:-3}" \
  CLIENTS="${CLIENTS:-8}" MODES="${MODES:-prepared}" \
  -o max_connections=50 -o fsync="${FSYNC:-on}"

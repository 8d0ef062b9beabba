#!/usr/bin/env bash
# Benchmark (issue #10): one Hetzner reconciliation of SERVERS servers (default
# 10,000) by the background worker against the fake Hetzner API
# (test/fake/hetzner.py), in a throwaway pg_virtualenv cluster with pgext
# preloaded and the worker on.  Lists are 50 servers per page, so the run must
# make exactly ceil(SERVERS/50) list calls (200); every seeded server is
# unknown to pgext.servers, so each becomes an orphan.  Prints the list calls
# counted by the fake, the run's duration, the orphans recorded, and the
# ratio to curl fetching the same pages one after another from the shell (the
# bytes alone: no transaction, no parsing, no comparison).  Exits non-zero
# when the list calls or the orphans are not what they must be.
#
# Usage (as root on Debian 12):  bash test/bench/hetzner_reconcile.sh   (SERVERS=10000 FSYNC=on)
# Holds the install lock of test/lib.sh for the whole run.  Not part of test/run.sh.
source "$(dirname "$0")/lib.sh"
# interval 0: no reconciliation at start, only the one the runner asks for
bench_main hetzner_reconcile --keys SERVERS="${SERVERS:-10000}" \
  -o pgext.worker_enabled=on -o pgext.hetzner_reconcile_interval=0 -o fsync="${FSYNC:-on}"

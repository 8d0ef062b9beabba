#!/usr/bin/env bash
# Health polling benchmark (issue #12): the worker's health poller against a
# loopback nginx, a new connection per check, beside wrk against the same URL
# in the same run.  In one run on one throwaway cluster:
#   1. nginx (a private config and prefix under a temp dir, no system service)
#      on a free loopback port answers 200 "ok" at /health;
#   2. wrk -c64 -t2 -d10s -H 'Connection: close' against it: the baseline rate
#      (and, for reference only, the same with one wrk thread);
#   3. SERVERS active servers (server_request + server_transition: no VPS, no
#      network) with CHECKS shallow checks every 100 ms (the minimum) at that
#      URL; after WARMUP seconds, checks completed and recorded per second over
#      WINDOW seconds (health_poller() counters and sum(health_checks.
#      checks_total)), the ratio to wrk, and where the CPU went (worker, other
#      postgres processes, nginx, idle);
#   4. the worker's memory sampled every second from the moment its checks are
#      loaded until 1,000,000 checks are recorded (RSS_CHECKS): VmRSS, and
#      RssAnon, its private part (VmRSS also counts the shared buffers it has
#      touched, which grow with the pages it reaches): "flat" is judged on
#      RssAnon after the warm-up (<= 1 MB growth).
# Targets printed beside the numbers: >= 10,000 checks/s recorded, >= 40% of
# wrk's rate, RSS flat.  Exits non-zero when the run itself fails (nginx or wrk
# errors, the worker not polling), not when a target is missed.
#
# Usage (as root on Debian 12):
#   bash test/bench/health.sh   (CHECKS=3000 SERVERS=3000 CONCURRENCY=64 BATCH=1000 FLUSH=100ms
#                                TIMEOUT=90ms WARMUP=10 WINDOW=30 RSS_CHECKS=1000000 FSYNC=on)
# Installs nginx-light and wrk from Debian when missing.  Holds the install lock
# of test/lib.sh for the whole run.  Not part of test/run.sh.
source "$(dirname "$0")/lib.sh"

missing=()
command -v nginx >/dev/null || missing+=(nginx-light)
command -v wrk >/dev/null || missing+=(wrk)
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || { echo "health.sh: run as root to install ${missing[*]}" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null ||
    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null; }
  # the package starts the system nginx on port 80: this benchmark runs its own
  if [ -d /run/systemd/system ]; then
    systemctl disable --now nginx >/dev/null 2>&1 || true
  else
    service nginx stop >/dev/null 2>&1 || true
  fi
fi

checks=${CHECKS:-3000}
bench_main health CHECKS="$checks" SERVERS="${SERVERS:-$checks}" \
  CONCURRENCY="${CONCURRENCY:-64}" BATCH="${BATCH:-1000}" FLUSH="${FLUSH:-100ms}" \
  TIMEOUT="${TIMEOUT:-90ms}" WARMUP="${WARMUP:-10}" WINDOW="${WINDOW:-30}" \
  RSS_CHECKS="${RSS_CHECKS:-1000000}" RSS_TIMEOUT="${RSS_TIMEOUT:-900}" \
  -o pgext.worker_enabled=on -o pgext.allow_insecure_urls=on \
  -o pgext.health_concurrency="${CONCURRENCY:-64}" -o pgext.health_batch_size="${BATCH:-1000}" \
  -o pgext.health_flush_interval="${FLUSH:-100ms}" \
  -o pgext.health_grace=1h -o fsync="${FSYNC:-on}"

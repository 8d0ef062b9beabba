#!/usr/bin/env bash
# Inside pg_virtualenv: start nginx, measure wrk against it, create the servers
# and checks, then watch the worker poll: rates over a window after a warm-up,
# CPU by process group, and its RSS until RSS_CHECKS checks are recorded.
set -euo pipefail
cd "$(dirname "$0")"
source ./lib.sh
CHECKS=${CHECKS:-3000} SERVERS=${SERVERS:-$CHECKS} TIMEOUT=${TIMEOUT:-90ms}
WARMUP=${WARMUP:-10} WINDOW=${WINDOW:-30} RSS_CHECKS=${RSS_CHECKS:-1000000} RSS_TIMEOUT=${RSS_TIMEOUT:-900}

# q: psql printing bare values.
q() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }

# --- nginx on a free loopback port, private prefix; stopped on every exit
work=$(mktemp -d /tmp/pgext-bench-health.XXXXXX)
nginx_pid=
# shellcheck disable=SC2317  # called by the trap
cleanup() {
  if [ -n "$nginx_pid" ]; then kill "$nginx_pid" 2>/dev/null || true; wait "$nginx_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed -e "s|@DIR@|$work|g" -e "s|@PORT@|$port|g" health_nginx.conf >"$work/nginx.conf"
nginx -e "$work/error.log" -p "$work" -c "$work/nginx.conf" 2>>"$work/error.log" &
nginx_pid=$!
url="http://127.0.0.1:$port/health"
for _ in $(seq 100); do curl -sf -o /dev/null "$url" && break; sleep 0.05; done
curl -sf -o /dev/null "$url" || { echo "nginx did not start:" >&2; cat "$work/error.log" >&2; exit 1; }

bench_header
echo "nginx $(nginx -v 2>&1 | sed 's|.*/||') ($(grep -c '^processor' /proc/cpuinfo) cpus, worker_processes auto) at $url; $(wrk --version 2>&1 | head -n 1 | cut -d' ' -f1-2)"

# --- the baseline: wrk, a new connection per request
wrk_out=$(wrk -c64 -t2 -d10s -H 'Connection: close' "$url" 2>&1) || { echo "$wrk_out" >&2; exit 1; }
wrk_rate=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' <<<"$wrk_out")
if [ -z "$wrk_rate" ] || grep -q 'Non-2xx' <<<"$wrk_out"; then echo "wrk failed:" >&2; echo "$wrk_out" >&2; exit 1; fi
wrk_errors=$(sed -n 's/^ *Socket errors: *//p' <<<"$wrk_out")
echo "wrk -c64 -t2 -d10s -H 'Connection: close': $wrk_rate requests/s${wrk_errors:+ (socket errors: $wrk_errors)}"
# for reference only: wrk on one thread, as the worker is one process
wrk1_rate=$(wrk -c64 -t1 -d10s -H 'Connection: close' "$url" 2>&1 | sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p')
echo "  for reference, one wrk thread (wrk -c64 -t1 -d10s, same header): ${wrk1_rate:-?} requests/s"

# --- the servers and checks
t_setup=$(date +%s.%N)
q -v nservers="$SERVERS" -v nchecks="$CHECKS" -v url="$url" -v timeout="$TIMEOUT" -f health_setup.sql >/dev/null
awk -v a="$t_setup" -v b="$(date +%s.%N)" -v n="$CHECKS" -v s="$SERVERS" \
  'BEGIN { printf "setup: %d servers, %d checks every 100 ms (timeout %s): %.1f s\n", s, n, "'"$TIMEOUT"'", b - a }'
echo "settings: $(q -c "SELECT string_agg(name || '=' || setting || coalesce(unit, ''), ' ' ORDER BY name) FROM pg_settings
  WHERE name IN ('pgext.health_concurrency', 'pgext.health_batch_size', 'pgext.health_flush_interval', 'pgext.health_jitter', 'pgext.health_grace')")"
echo "demand: $((CHECKS * 10)) checks/s ($CHECKS checks every 100 ms): the poller runs flat out below that"

# wait_for SQL SECONDS WHAT: poll until SQL prints t; fail saying WHAT.
wait_for() {
  local deadline=$(( $(date +%s) + $2 ))
  until [ "$(q -c "$1")" = t ]; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "timed out after $2 s waiting for: $3" >&2
      q -c "SELECT * FROM pgext.health_poller()" >&2 || true
      exit 1
    fi
    sleep 0.1
  done
}
wait_for "SELECT checks_loaded = $CHECKS FROM pgext.health_poller()" 60 "the worker to load the $CHECKS checks"
worker=$(q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pgext worker'")
[ -n "$worker" ] || { echo "no pgext worker in pg_stat_activity" >&2; exit 1; }

# --- sampling: counters, CPU ticks by group, the worker's RSS
# cputicks PID...: utime+stime (+cutime+cstime with -c) summed, in clock ticks.
cputicks() {
  local with_children=0 p sum=0 v
  [ "$1" = -c ] && { with_children=1; shift; }
  for p; do
    v=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null |
      awk -v c="$with_children" '{ print $12 + $13 + (c ? $14 + $15 : 0) }') || v=0
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}
postmaster=$(sed 's/^.*) //' "/proc/$worker/stat" | awk '{ print $2 }')
# snap NAME: the counters and CPU ticks now, into the associative array NAME.
# shellcheck disable=SC2034,SC2154  # s is a name reference to NAME
snap() {
  local -n s=$1
  IFS='|' read -r 's[t]' 's[sent]' 's[completed]' 's[recorded]' 's[errors]' 's[total]' 's[failed]' <<<"$(q -c "
    SELECT extract(epoch FROM clock_timestamp()), p.sent, p.completed, p.recorded, p.record_errors,
           coalesce(c.total, 0), coalesce(c.failed, 0)
      FROM pgext.health_poller() p,
           (SELECT sum(checks_total) AS total, sum(failures_total) AS failed FROM pgext.health_checks) c")"
  # shellcheck disable=SC2046
  s[pg_all]=$(( $(cputicks -c "$postmaster") + $(cputicks $(pgrep -P "$postmaster")) ))
  s[worker]=$(cputicks "$worker")
  # shellcheck disable=SC2046
  s[nginx]=$(cputicks "$nginx_pid" $(pgrep -P "$nginx_pid"))
  read -r _ 's[user]' 's[nice]' 's[system]' 's[idle]' 's[iowait]' 's[irq]' 's[softirq]' _ </proc/stat
}
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$worker/status"; }
# anon: the worker's private memory (RssAnon; VmRSS also counts the shared
# buffers it has touched, RssShmem, which grow as it reaches more pages).
anon() { awk '/^RssAnon:/ { print $2 }' "/proc/$worker/status"; }
shmem() { awk '/^RssShmem:/ { print $2 }' "/proc/$worker/status"; }

declare -A L=() A=() B=() E=()
snap L
rss_start=$(rss) rss_max=$rss_start rss_warm='' rss_end=$rss_start
anon_start=$(anon) anon_max=$anon_start anon_warm='' anon_end=$anon_start shmem_start=$(shmem)
echo
echo "polling (sampled every second; a line every 10 s):"
printf '  %6s %12s %10s %10s %10s\n' 'time s' 'recorded' 'checks/s' 'RSS kB' 'anon kB'
i=0 prev=${L[recorded]} prev_t=${L[t]} status=0
while :; do
  sleep 1
  [ -d "/proc/$worker" ] || { echo "the worker (pid $worker) exited" >&2; exit 1; }
  r=$(rss); rss_end=$r; [ "$r" -gt "$rss_max" ] && rss_max=$r
  an=$(anon); anon_end=$an; [ "$an" -gt "$anon_max" ] && anon_max=$an
  i=$((i + 1))
  [ "$i" = "$WARMUP" ] && { snap A; rss_warm=$r; anon_warm=$an; }
  [ "$i" = "$((WARMUP + WINDOW))" ] && snap B
  if [ $((i % 10)) = 0 ]; then
    snap E
    awk -v t="$i" -v r="${E[recorded]}" -v p="$prev" -v a="$prev_t" -v b="${E[t]}" -v m="$r" -v n="$an" \
      'BEGIN { printf "  %6d %12d %10.0f %10d %10d\n", t, r, (r - p) / (b - a), m, n }'
    prev=${E[recorded]} prev_t=${E[t]}
    if [ "$i" -ge "$((WARMUP + WINDOW))" ] && [ "$((E[recorded] - L[recorded]))" -ge "$RSS_CHECKS" ]; then break; fi
    if [ "$i" -ge "$RSS_TIMEOUT" ]; then
      echo "only $((E[recorded] - L[recorded])) checks recorded in $RSS_TIMEOUT s (RSS_CHECKS=$RSS_CHECKS)" >&2
      status=1; break
    fi
  fi
done
snap E

# --- the report
hz=$(getconf CLK_TCK)
awk -v hz="$hz" -v wrk="$wrk_rate" \
  -v t0="${A[t]}" -v t1="${B[t]}" \
  -v sent0="${A[sent]}" -v sent1="${B[sent]}" -v comp0="${A[completed]}" -v comp1="${B[completed]}" \
  -v rec0="${A[recorded]}" -v rec1="${B[recorded]}" -v err0="${A[errors]}" -v err1="${B[errors]}" \
  -v tot0="${A[total]}" -v tot1="${B[total]}" -v fail0="${A[failed]}" -v fail1="${B[failed]}" \
  -v w0="${A[worker]}" -v w1="${B[worker]}" -v pg0="${A[pg_all]}" -v pg1="${B[pg_all]}" \
  -v n0="${A[nginx]}" -v n1="${B[nginx]}" \
  -v us0="$(( A[user] + A[nice] ))" -v us1="$(( B[user] + B[nice] ))" -v sy0="${A[system]}" -v sy1="${B[system]}" \
  -v si0="$(( A[softirq] + A[irq] ))" -v si1="$(( B[softirq] + B[irq] ))" \
  -v id0="$(( A[idle] + A[iowait] ))" -v id1="$(( B[idle] + B[iowait] ))" \
  -v window="$WINDOW" -v warmup="$WARMUP" '
  function pct(a, b) { return 100 * (b - a) / hz / d }
  BEGIN {
    d = t1 - t0
    rec = (rec1 - rec0) / d; tot = (tot1 - tot0) / d
    printf "\nwindow: %.1f s after a %d s warm-up\n", d, warmup
    printf "  %-44s %12s   %s\n", "", "per second", "target"
    printf "  %-44s %12.0f\n", "wrk (new connection per request)", wrk
    printf "  %-44s %12.0f\n", "checks sent (health_poller().sent)", (sent1 - sent0) / d
    printf "  %-44s %12.0f\n", "checks completed (.completed)", (comp1 - comp0) / d
    printf "  %-44s %12.0f   >= 10000: %s\n", "checks recorded (.recorded)", rec, (rec >= 10000 ? "met" : "MISSED")
    printf "  %-44s %12.0f\n", "  sum(health_checks.checks_total) delta", tot
    printf "  %-44s %12.0f\n", "  of which failed (failures_total delta)", (fail1 - fail0) / d
    printf "  %-44s %12d\n", "results dropped (record_errors delta)", err1 - err0
    printf "  %-44s %12.1f%%   >= 40%%: %s\n", "recorded / wrk", 100 * rec / wrk, (rec >= 0.4 * wrk ? "met" : "MISSED")
    printf "  CPU over the window (100%% = one core; 2 cores = 200%%):\n"
    printf "    pgext worker %.0f%%, other postgres processes %.0f%%, nginx %.0f%%\n", pct(w0, w1), pct(pg0, pg1) - pct(w0, w1), pct(n0, n1)
    printf "    machine: user %.0f%%, system %.0f%%, irq+softirq %.0f%%, idle %.0f%%\n", pct(us0, us1), pct(sy0, sy1), pct(si0, si1), pct(id0, id1)
  }'
growth=$((anon_end - anon_warm))
flat=$([ "$growth" -le 1024 ] && echo "flat (RssAnon grew $growth kB after warm-up, <= 1 MB)" || echo "GROWS: RssAnon +$growth kB after warm-up")
awk -v r0="${L[recorded]}" -v r1="${E[recorded]}" -v t0="${L[t]}" -v t1="${E[t]}" -v rA="${A[recorded]}" -v tA="${A[t]}" \
  'BEGIN { printf "recorded over the whole run: %.0f checks/s from the load; %.0f checks/s after the warm-up (%.0f s)\n", (r1 - r0) / (t1 - t0), (r1 - rA) / (t1 - tA), t1 - tA }'
echo "worker memory over $((E[recorded] - L[recorded])) checks recorded in $i s, kB (start / after warm-up / max / end):"
echo "  VmRSS   $rss_start / $rss_warm / $rss_max / $rss_end   (RssShmem, shared buffers touched: $shmem_start at start, $(shmem) at the end)"
echo "  RssAnon $anon_start / $anon_warm / $anon_max / $anon_end   target flat: $flat"
echo "worker pid $worker; health_poller() at the end: $(q -F ' ' -c "SELECT 'loaded=' || checks_loaded, 'in_flight=' || in_flight, 'recorded=' || recorded, 'record_errors=' || record_errors, 'checks_per_second=' || round(checks_per_second::numeric), 'last_flush_ms=' || round(last_flush_ms::numeric, 1) FROM pgext.health_poller()")"
echo "health_checks at the end: $(q -c "SELECT pg_size_pretty(pg_table_size('pgext.health_checks')) || ' table, ' || pg_size_pretty(pg_indexes_size('pgext.health_checks')) || ' indexes; ' || n_tup_upd || ' updates, ' || round(100.0 * n_tup_hot_upd / greatest(n_tup_upd, 1), 1) || '% HOT, ' || n_dead_tup || ' dead; autovacuums ' || autovacuum_count FROM pg_stat_user_tables WHERE relid = 'pgext.health_checks'::regclass")"
echo "check states: $(q -c "SELECT string_agg(state || '=' || n, ' ') FROM (SELECT state, count(*) n FROM pgext.health_checks GROUP BY 1 ORDER BY 1) s"); last errors: $(q -c "SELECT coalesce(string_agg(e || '=' || n, ' '), 'none') FROM (SELECT last_error e, count(*) n FROM pgext.health_checks WHERE last_error IS NOT NULL GROUP BY 1 ORDER BY 2 DESC LIMIT 5) s")"
exit "$status"

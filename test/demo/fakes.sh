# Shared by the demo steps that run the worker against the fakes (sourced,
# not a step: run_steps.sh runs only NN_* files).
#   q: psql printing a table; val: psql printing bare values
#   fake_start NAME SCRIPT ARGS...: start test/fake/SCRIPT on a free loopback
#     port; sets ${NAME}_base (http://127.0.0.1:PORT); stopped on exit, its
#     log shown when the step fails
#   control BASE METHOD PATH [JSON]: a call of a fake's control API
#   wait_for SQL WHAT: poll until SQL prints t; fail after TIMEOUT seconds
q() { psql -X -q -v ON_ERROR_STOP=1 -P pager=off -P footer=off "$@"; }
val() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }
TIMEOUT=${DEMO_WORKER_TIMEOUT:-120}
fakes_work=$(mktemp -d /tmp/pgext-demo-fakes.XXXXXX)
fakes_pids=()
fakes_names=()

# Stop every fake (showing their logs if the step failed) and clean up.
fakes_stop() {
  local rc=$?
  if [ "$rc" != 0 ]; then
    echo "--- the step failed; the fakes' last requests:" >&2
    for n in "${fakes_names[@]}"; do tail -n 20 "$fakes_work/$n.log" >&2 || true; done
  fi
  kill "${fakes_pids[@]}" 2>/dev/null || true
  wait "${fakes_pids[@]}" 2>/dev/null || true
  rm -rf "$fakes_work"
  return "$rc"
}
trap fakes_stop EXIT

fake_start() {
  local name=$1 script=$2
  shift 2
  python3 "../fake/$script" --port 0 --port-file "$fakes_work/$name.port" "$@" 2>"$fakes_work/$name.log" &
  fakes_pids+=($!)
  fakes_names+=("$name")
  for _ in $(seq 300); do [ -s "$fakes_work/$name.port" ] && break; sleep 0.1; done
  [ -s "$fakes_work/$name.port" ] || { echo "the fake $name ($script) did not start" >&2; exit 1; }
  printf -v "${name}_base" 'http://127.0.0.1:%s' "$(cat "$fakes_work/$name.port")"
}

control() {
  if [ $# -gt 3 ]; then
    curl -sS -f -X "$2" -H 'content-type: application/json' --data "$4" "$1/__fake/$3"
  else
    curl -sS -f -X "$2" "$1/__fake/$3"
  fi
}

wait_for() {
  local deadline=$(( $(date +%s) + TIMEOUT ))
  until [ "$(val -c "$1")" = t ]; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "FAILED: after ${TIMEOUT} s still waiting for $2" >&2
      q -x -c "SELECT api, refusing, in_flight, sent, last_error FROM pgext.worker_api_status" >&2 || true
      q -c "SELECT task, last_ok, last_error, refusing FROM pgext.worker_status WHERE NOT last_ok OR refusing IS NOT NULL" >&2 || true
      q -c "SELECT kind, status, error, last_error FROM pgext.stripe_sync_status" >&2 || true
      q -c "SELECT server, state, next_action, why, last_error FROM pgext.server_status WHERE state <> 'deleted'" >&2 || true
      q -x -c "SELECT * FROM pgext.health_status" >&2 || true
      exit 1
    fi
    sleep 0.1
  done
}

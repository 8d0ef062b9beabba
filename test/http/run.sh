#!/usr/bin/env bash
# Build the HTTP engine (src/worker/http.c) with its standalone driver
# (test/http/engine_test.c) and run it against the fake Hetzner API
# (test/fake/hetzner.py) and a self-signed HTTPS server (tls_server.py):
# first with COUNT (default 1000) concurrent requests, then under valgrind
# (leak check, 50 requests).  PG-free: needs gcc, libcurl, python3, openssl, valgrind.
# Usage: bash test/http/run.sh [count]
# Prints "pgext: http engine test passed" or "pgext: http engine test FAILED".
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
count=${1:-1000}
work=$(mktemp -d /tmp/pgext-http.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "$1"
  [ -s "$work/fake.log" ] && { echo "=== fake log (tail)"; tail -n 20 "$work/fake.log"; }
  echo "pgext: http engine test FAILED"
  exit 1
}

# 1000 sockets on each side (the fake is one process too)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

gcc -Wall -Wextra -Werror -g -O1 -I"$root/src" "$root/src/worker/http.c" "$root/src/worker/headers.c" \
  "$root/test/http/engine_test.c" -o "$work/engine_test" -lcurl -lpthread

# wait_port FILE: the port a server wrote to FILE (up to 10 s)
wait_port() {
  for _ in $(seq 100); do [ -s "$1" ] && { cat "$1"; return 0; }; sleep 0.1; done
  return 1
}

token="engine-test-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
python3 "$root/test/fake/hetzner.py" --port 0 --token "$token" --port-file "$work/fake.port" \
  2>"$work/fake.log" &
pids+=($!)
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
python3 "$root/test/http/tls_server.py" "$work/cert.pem" "$work/key.pem" "$work/tls.port" \
  2>"$work/tls.log" &
pids+=($!)
port=$(wait_port "$work/fake.port") || fail "the fake Hetzner API did not start"
tls_port=$(wait_port "$work/tls.port") || fail "the TLS server did not start"
url="http://127.0.0.1:$port"
tls_url="https://127.0.0.1:$tls_port/v1/servers"

"$work/engine_test" "$url" "$token" "$count" "$tls_url" >"$work/test.log" 2>&1 \
  || { cat "$work/test.log"; fail "engine_test failed"; }
grep -E '^(FAILED|#)|checks' "$work/test.log"
echo "engine_test: $count concurrent: passed"

valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect,possible \
  --error-exitcode=1 "$work/engine_test" "$url" "$token" 50 "$tls_url" >"$work/vg.log" 2>&1 \
  || { cat "$work/vg.log"; fail "engine_test under valgrind failed"; }
grep -E '^(FAILED|#)|checks' "$work/vg.log"
echo "engine_test: valgrind (50 concurrent): clean"
echo "pgext: http engine test passed"

#!/usr/bin/env bash
# All tests: pg_regress, isolation and TAP, against throwaway clusters, then a
# short fuzz run of the PG-free parsers (test/fuzz/run.sh), the HTTP engine
# test (test/http/run.sh) and pg_regress + isolation again against an
# ASan/UBSan build (test/sanitize.sh).  Ends with one summary line
# "N passed, N failed" counted from what each runner printed.
# Usage (as root on Debian 12):  bash test/run.sh
# A subset, for development (no fuzz run):
#   bash test/run.sh REGRESS=webhooks ISOLATION= PROVE_TESTS=test/t/020_webhooks.pl
#   (TAP_TESTS= skips TAP; the arguments are passed to make installcheck)
source "$(dirname "$0")/lib.sh"
pgext_build_install
dir=$(pgext_stage)
log="$dir/installcheck.log"
status=0
# shellcheck disable=SC2046
pgext_as_user env -C "$dir" pg_virtualenv $(pgext_cluster_opts "$dir") \
  make -s installcheck "$@" 2>&1 | tee "$log" || status=$?

# Counts: pg_regress/isolation print "ok"/"FAILED" per test, prove per file
# "Tests=N" and "Failed N/M subtests" or "(Wstat: ... Tests: N Failed: F)".
tap_ok=$(awk '/^Files=[0-9]+, Tests=[0-9]+/ { sub(/^Files=[0-9]+, Tests=/, ""); sub(/,.*/, ""); t += $0 } END { print t + 0 }' "$log")
tap_failed=$({ grep -oE 'Failed: [0-9]+\)' "$log" || true; } | tr -dc '0-9\n' | awk '{ f += $1 } END { print f + 0 }')
passed=$(( $(grep -cE '^test .* \.\.\. ok' "$log" || true) + tap_ok - tap_failed ))
failed=$(( $(grep -cE '^test .* \.\.\. FAILED' "$log" || true) + tap_failed ))

if [ $status -ne 0 ]; then
  for f in "$dir/regression.diffs" "$dir/output_iso/regression.diffs"; do
    [ -s "$f" ] && { echo "=== $f"; head -c 20000 "$f"; }
  done
  for f in "$dir"/tmp_check/log/regress_log_*; do
    [ -s "$f" ] && { echo "=== $f (tail)"; tail -n 40 "$f"; }
  done
  echo "pgext: tests FAILED (work tree kept in $dir)"
  [ "$failed" -gt 0 ] || failed=1
  echo "$passed passed, $failed failed"
  exit $status
fi
rm -rf "$dir"

if [ $# -gt 0 ]; then
  echo "pgext: subset passed (no fuzz run)"
  echo "$passed passed, $failed failed"
  exit 0
fi

# Fuzz the PG-free parsers briefly (libFuzzer + ASan/UBSan): 35 s in all,
# split evenly between the harnesses (test/fuzz/run.sh); one test per harness.
fuzz_status=0
fuzz_log=$(bash "$PGEXT_ROOT/test/fuzz/run.sh" 35 2>&1) || fuzz_status=$?
echo "$fuzz_log"
passed=$((passed + $(grep -c '^pgext: .* fuzzing passed' <<<"$fuzz_log" || true)))
if [ $fuzz_status -ne 0 ]; then
  failed=$((failed + $(grep -c '^pgext: .* fuzzing FAILED' <<<"$fuzz_log" || true)))
  [ "$failed" -gt 0 ] || failed=1
fi

# The worker's HTTP engine (PG-free) against the fake Hetzner API, 1000
# concurrent requests, then under valgrind; one test.
http_status=0
http_log=$(bash "$PGEXT_ROOT/test/http/run.sh" 2>&1) || http_status=$?
echo "$http_log"
if [ $http_status -eq 0 ] && grep -q '^pgext: http engine test passed' <<<"$http_log"; then
  passed=$((passed + 1))
else
  failed=$((failed + 1))
fi

# pg_regress and isolation against pgext built with ASan/UBSan, in a private
# copy of the PostgreSQL tree (this run holds the install lock already); one
# test, failed by any test failure or sanitizer report.
san_status=0
san_log=$(PGEXT_LOCK_HELD=1 bash "$PGEXT_ROOT/test/sanitize.sh" 2>&1) || san_status=$?
grep -vE '^test .* \.\.\. ok' <<<"$san_log" || true
if [ $san_status -eq 0 ] && grep -q '^pgext: sanitized regress+isolation passed' <<<"$san_log"; then
  passed=$((passed + 1))
else
  san_status=1
  failed=$((failed + 1))
fi

if [ $fuzz_status -ne 0 ] || [ $http_status -ne 0 ] || [ $san_status -ne 0 ]; then
  echo "$passed passed, $failed failed"
  exit 1
fi

echo "pgext: all test layers passed"
echo "$passed passed, $failed failed"

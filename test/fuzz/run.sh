#!/usr/bin/env bash
# Build the libFuzzer harness for src/webhooks/sigparse.c and run it briefly.
# Usage: bash test/fuzz/run.sh [seconds]   (default 20; needs clang)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-20}
work=$(mktemp -d /tmp/pgext-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I"$root/src" "$root/src/webhooks/sigparse.c" "$root/src/common/digits.c" \
  "$root/test/fuzz/sigparse_fuzz.c" -o "$work/sigparse_fuzz"
# Seeds are copied so the run never writes into the source tree.
cp -r "$root/test/fuzz/corpus" "$work/corpus"
"$work/sigparse_fuzz" -max_total_time="$secs" -max_len=512 -print_final_stats=0 \
  "$work/corpus" >"$work/log" 2>&1 || { tail -n 40 "$work/log"; echo "pgext: sigparse fuzzing FAILED"; exit 1; }
grep -E '^Done|#[0-9]+.*DONE' "$work/log" | tail -n 1 || true
echo "pgext: sigparse fuzzing passed (${secs}s)"

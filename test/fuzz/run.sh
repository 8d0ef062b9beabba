#!/usr/bin/env bash
# Build the libFuzzer harnesses of the PG-free parsers and run each briefly:
# src/webhooks/sigparse.c (signature headers) and src/servers/cloudinit.c
# (cloud-init user_data, with libyaml).  The time is split between them.
# Usage: bash test/fuzz/run.sh [seconds]   (default 20 in all; needs clang)
# Prints one "pgext: <name> fuzzing passed" line per harness; exits non-zero
# if any harness finds a crash, a leak or a broken invariant.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-20}
each=$(( secs / 2 > 0 ? secs / 2 : 1 ))
work=$(mktemp -d /tmp/pgext-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
cflags=(-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I"$root/src")

# run_fuzzer NAME MAX_LEN: run $work/NAME_fuzz on a copy of its seeds (so the
# run never writes into the source tree).
run_fuzzer() {
  local name=$1 max_len=$2
  cp -r "$3" "$work/${name}_corpus"
  "$work/${name}_fuzz" -max_total_time="$each" -max_len="$max_len" -print_final_stats=0 \
    "$work/${name}_corpus" >"$work/$name.log" 2>&1 \
    || { tail -n 40 "$work/$name.log"; echo "pgext: $name fuzzing FAILED"; return 1; }
  grep -E '^Done|#[0-9]+.*DONE' "$work/$name.log" | tail -n 1 || true
  echo "pgext: $name fuzzing passed (${each}s)"
}

clang "${cflags[@]}" "$root/src/webhooks/sigparse.c" "$root/src/common/digits.c" \
  "$root/test/fuzz/sigparse_fuzz.c" -o "$work/sigparse_fuzz"
clang "${cflags[@]}" "$root/src/servers/cloudinit.c" \
  "$root/test/fuzz/cloudinit_fuzz.c" -o "$work/cloudinit_fuzz" -lyaml

status=0
run_fuzzer sigparse 512 "$root/test/fuzz/corpus" || status=1
# a little over the 32768-byte limit, so the size check is reached too
run_fuzzer cloudinit 33000 "$root/test/fuzz/cloudinit_corpus" || status=1
exit $status

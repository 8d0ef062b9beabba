#!/usr/bin/env bash
# Build the libFuzzer harnesses of the PG-free parsers and run each briefly;
# the time is split evenly between them:
#   sigparse  src/webhooks/sigparse.c   webhook signature headers (Stripe-Signature...)
#   cloudinit src/servers/cloudinit.c   cloud-init user_data (libyaml)
#   headers   src/worker/headers.c      response headers: RateLimit-*, Retry-After, ids
#   keyline   src/secrets/keyline.c     master_key_command lines "<version>:<64 hex>"
#   labels    src/servers/labels.c      Hetzner names, label keys and values
#   urlcheck  src/worker/urlcheck.c     API base URL rules (https, not loopback)
#   digits    src/common/digits.c       hex and decimal digits
# Usage: bash test/fuzz/run.sh [seconds]   (default 35 in all; needs clang)
# Prints one "pgext: <name> fuzzing passed" line per harness; exits non-zero
# if any harness finds a crash, a leak or a broken invariant.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
fuzz="$root/test/fuzz"
secs=${1:-35}
names=(sigparse cloudinit headers keyline labels urlcheck digits)
each=$(( secs / ${#names[@]} > 0 ? secs / ${#names[@]} : 1 ))
work=$(mktemp -d /tmp/pgext-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
cflags=(-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
        -Wall -Wextra -Werror -I"$root/src")

# run_fuzzer NAME MAX_LEN CORPUS: run $work/NAME_fuzz on a copy of its seeds
# (so the run never writes into the source tree).
run_fuzzer() {
  local name=$1 max_len=$2
  cp -r "$3" "$work/${name}_corpus"
  "$work/${name}_fuzz" -max_total_time="$each" -max_len="$max_len" -print_final_stats=0 \
    "$work/${name}_corpus" >"$work/$name.log" 2>&1 \
    || { tail -n 40 "$work/$name.log"; echo "pgext: $name fuzzing FAILED"; return 1; }
  grep -E '^Done|#[0-9]+.*DONE' "$work/$name.log" | tail -n 1 || true
  echo "pgext: $name fuzzing passed (${each}s)"
}

# build NAME SOURCES... [-- LIBS...]
build() {
  local name=$1; shift
  clang "${cflags[@]}" "$@" -o "$work/${name}_fuzz"
}

build sigparse "$root/src/webhooks/sigparse.c" "$root/src/common/digits.c" "$fuzz/sigparse_fuzz.c"
build cloudinit "$root/src/servers/cloudinit.c" "$fuzz/cloudinit_fuzz.c" -lyaml
build headers "$root/src/worker/headers.c" "$fuzz/headers_fuzz.c" -lm
build keyline "$root/src/secrets/keyline.c" "$root/src/common/digits.c" "$fuzz/keyline_fuzz.c"
build labels "$root/src/servers/labels.c" "$fuzz/labels_fuzz.c"
build urlcheck "$root/src/worker/urlcheck.c" "$fuzz/urlcheck_fuzz.c" -lcurl
build digits "$root/src/common/digits.c" "$fuzz/digits_fuzz.c"

status=0
run_fuzzer sigparse 512 "$fuzz/sigparse_corpus" || status=1
# a little over the 32768-byte limit, so the size check is reached too
run_fuzzer cloudinit 33000 "$fuzz/cloudinit_corpus" || status=1
run_fuzzer headers 1024 "$fuzz/headers_corpus" || status=1
run_fuzzer keyline 256 "$fuzz/keyline_corpus" || status=1
# a little over the 253-byte prefix limit
run_fuzzer labels 320 "$fuzz/labels_corpus" || status=1
run_fuzzer urlcheck 512 "$fuzz/urlcheck_corpus" || status=1
run_fuzzer digits 256 "$fuzz/digits_corpus" || status=1
exit $status

#!/usr/bin/env bash
# All tests: pg_regress, isolation and TAP, against throwaway clusters.
# Usage (as root on Debian 12):  bash test/run.sh
source "$(dirname "$0")/lib.sh"
pgext_build_install
dir=$(pgext_stage)
status=0
# shellcheck disable=SC2046
pgext_as_user env -C "$dir" pg_virtualenv $(pgext_cluster_opts "$dir") \
  make -s installcheck || status=$?
if [ $status -ne 0 ]; then
  for f in "$dir/regression.diffs" "$dir/output_iso/regression.diffs"; do
    [ -s "$f" ] && { echo "=== $f"; head -c 20000 "$f"; }
  done
  for f in "$dir"/tmp_check/log/regress_log_*; do
    [ -s "$f" ] && { echo "=== $f (tail)"; tail -n 40 "$f"; }
  done
  echo "pgext: tests FAILED (work tree kept in $dir)"
  exit $status
fi
rm -rf "$dir"

# Fuzz the PG-free signature header parser briefly (libFuzzer + ASan/UBSan).
bash "$PGEXT_ROOT/test/fuzz/run.sh" 20

echo "pgext: all test layers passed"

#!/usr/bin/env bash
# The demo: a throwaway cluster with pgext preloaded, then every step in
# test/demo/NN_*.sql in order, narrated as it happens.
# Usage (as root on Debian 12):  bash test/demo.sh
source "$(dirname "$0")/lib.sh"
pgext_build_install
dir=$(pgext_stage)
trap 'rm -rf "$dir"' EXIT
# shellcheck disable=SC2046
pgext_as_user env -C "$dir" pg_virtualenv $(pgext_cluster_opts "$dir") \
  bash test/demo/run_steps.sh

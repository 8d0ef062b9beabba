#!/usr/bin/env bash
# The demo: a throwaway cluster with pgext preloaded, then every step in
# test/demo/NN_*.sql in order, narrated as it happens.
# Usage (as root on Debian 12):  bash test/demo.sh
source "$(dirname "$0")/lib.sh"
pgext_build_install
dir=$(pgext_stage)
trap 'rm -rf "$dir"' EXIT
# shellcheck disable=SC2046
# The background worker stays off here: the demo plays the worker's part step by
# step (webhook_apply, the server queue), so its output is the same every run.
pgext_as_user env -C "$dir" pg_virtualenv $(pgext_cluster_opts "$dir") -o pgext.worker_enabled=off \
  bash test/demo/run_steps.sh

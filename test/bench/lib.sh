# shellcheck shell=bash
# Shared by the benchmarks in test/bench.  Each has two scripts:
#   <name>.sh      (as root) sources this file and calls bench_main, which
#                  builds, installs and stages the tree and starts the cluster;
#   <name>_run.sh  runs inside that throwaway cluster, sources this file and
#                  uses the bench_* helpers below to run pgbench and report.
set -euo pipefail

# bench_main <name> [--keys] [VAR=value]... [-o setting=value]...
# Builds and installs pgext and stages the tree (test/lib.sh; its install lock
# is held for the whole run), then runs test/bench/<name>_run.sh as the
# cluster user inside a throwaway pg_virtualenv cluster with pgext preloaded.
# --keys: also test/keys.sh as pgext.master_key_command.  VAR=value: the
# runner's environment.  -o: more server settings for pg_virtualenv.
bench_main() {
  local name=$1 keys=0 envs=() opts=()
  shift
  while [ $# -gt 0 ]; do
    case $1 in
      --keys) keys=1 ;;
      -o) opts+=(-o "$2"); shift ;;
      *=*) envs+=("$1") ;;
      *) echo "bench_main: unknown argument: $1" >&2; return 2 ;;
    esac
    shift
  done
  source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
  pgext_build_install
  BENCH_DIR=$(pgext_stage)
  trap 'rm -rf "$BENCH_DIR"' EXIT
  if [ "$keys" = 1 ]; then
    # shellcheck disable=SC2207
    opts=($(pgext_cluster_opts "$BENCH_DIR") "${opts[@]}")
  else
    opts=(-o shared_preload_libraries=pgext "${opts[@]}")
  fi
  pgext_as_user env -C "$BENCH_DIR" "${envs[@]}" \
    pg_virtualenv "${opts[@]}" bash "test/bench/${name}_run.sh"
}

# bench_header: the server and machine a report was measured on.
bench_header() {
  echo "PostgreSQL $(psql -XAtc 'SHOW server_version'), fsync=$(psql -XAtc 'SHOW fsync'), synchronous_commit=$(psql -XAtc 'SHOW synchronous_commit'), $(nproc) cores"
}

# bench_pgbench <pgbench options>...: runs pgbench -n with them and prints its
# tps (without the initial connection time); stops the benchmark, showing
# pgbench's output, when pgbench fails or reports an error.
bench_pgbench() {
  local out tps
  out=$(pgbench -n "$@" 2>&1) || true
  tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p' <<<"$out")
  if [ -z "$tps" ] || grep -q 'ERROR' <<<"$out"; then
    echo "pgbench $* failed:" >&2; echo "$out" >&2; exit 1
  fi
  echo "$tps"
}

# bench_rounds <array> <command> <variant>...: ROUNDS rounds; in each, runs
# `<command> <variant>` for every variant in turn, so that drift hits all of
# them alike.  The command leaves its measurement in BENCH_RESULT;
# <array>[variant] collects them, "r1 r2 ... ".
bench_rounds() {
  local -n rounds_of=$1
  local cmd=$2 v
  shift 2
  for v; do rounds_of[$v]=""; done
  for _ in $(seq "$ROUNDS"); do
    for v; do
      "$cmd" "$v"
      rounds_of[$v]+="$BENCH_RESULT "
    done
  done
}

# The median of each variant's rounds, set by bench_report.
declare -A median=()

# bench_report <array> <format> <variant> <label> [<variant> <label>]...: one
# line per variant: its label, the median of its rounds in <array> printed
# with the printf <format> (and kept in median[variant]), and the rounds.
bench_report() {
  # shellcheck disable=SC2178
  local -n rounds_of=$1
  local fmt=$2
  shift 2
  while [ $# -gt 0 ]; do
    # shellcheck disable=SC2086
    median[$1]=$(printf '%s\n' ${rounds_of[$1]} | sort -g |
      awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')
    # shellcheck disable=SC2059
    printf "  %s$fmt   rounds: %s\n" "$2" "${median[$1]}" "${rounds_of[$1]}"
    shift 2
  done
}

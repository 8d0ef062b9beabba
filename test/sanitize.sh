#!/usr/bin/env bash
# The pg_regress and isolation suites against pgext built with AddressSanitizer
# and UndefinedBehaviorSanitizer.  Fails on any test failure and on any
# sanitizer report.  Called by test/run.sh (full run) after the normal layers;
# runnable alone:  bash test/sanitize.sh   (as root on Debian 12)
#
# How: Debian's postgres is not instrumented, so gcc's libasan is loaded into
# the server with LD_PRELOAD (pgext.so is built with gcc too, one runtime).
# The sanitized pgext.so never touches the system PostgreSQL: it goes into a
# private copy of /usr/lib/postgresql/15 and /usr/share/postgresql/15 under a
# temp directory (Debian's postgres finds its pkglibdir and sharedir relative
# to its own binary), and the test cluster runs from that copy.
# Prints "pgext: sanitized regress+isolation passed" and, like pg_regress,
# one "test X ... ok" / "FAILED" line per test (test/run.sh counts those).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

san_flags="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
libasan=$(gcc -print-file-name=libasan.so)
[ -e "$libasan" ] || { echo "pgext: gcc's libasan.so not found"; exit 1; }

bash "$PGEXT_ROOT/test/deps.sh"
dir=$(pgext_stage)
keep=0
cleanup() {
  if [ -n "${pgdata:-}" ] && [ -f "$pgdata/postmaster.pid" ]; then
    pgext_as_user "$bindir/pg_ctl" -D "$pgdata" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  if [ $keep -eq 0 ]; then rm -rf "$dir"; else echo "pgext: sanitized work tree kept in $dir"; fi
}
trap cleanup EXIT

# The private PostgreSQL tree, then the sanitized build installed into it.
inst="$dir/.pginst"
mkdir -p "$inst/usr/lib/postgresql" "$inst/usr/share/postgresql"
cp -a /usr/lib/postgresql/15 "$inst/usr/lib/postgresql/"
cp -a /usr/share/postgresql/15 "$inst/usr/share/postgresql/"
bindir="$inst/usr/lib/postgresql/15/bin"
[ "$("$bindir/pg_config" --pkglibdir)" = "$inst/usr/lib/postgresql/15/lib" ] &&
  [ "$("$bindir/pg_config" --sharedir)" = "$inst/usr/share/postgresql/15" ] ||
  { echo "pgext: the private PostgreSQL copy is not relocatable"; exit 1; }
make -C "$dir" -s -j2 clean >/dev/null
make -C "$dir" -s -j2 with_llvm=no COPT="$san_flags" >/dev/null
make -C "$dir" -s with_llvm=no COPT="$san_flags" DESTDIR="$inst" install >/dev/null
ldd "$inst/usr/lib/postgresql/15/lib/pgext.so" | grep libasan >/dev/null ||
  { echo "pgext: the sanitized pgext.so is not linked with libasan"; exit 1; }
# Preloaded after libasan: initializes ASan before a library constructor
# would under gettext's lock (see test/asan_init_shim.c).
shim="$dir/.asan_init_shim.so"
gcc -Wall -Wextra -Werror -O1 -shared -fPIC "$dir/test/asan_init_shim.c" -o "$shim" -ldl
if [ "$(id -u)" -eq 0 ]; then chown -R postgres: "$dir"; fi

# A cluster of the private tree, on a Unix socket in the work tree only.
pgdata="$dir/.pgdata"
sock="$dir/.sock"
san="$dir/.san"
mkdir -p "$sock" "$san"
if [ "$(id -u)" -eq 0 ]; then chown postgres: "$sock" "$san"; fi
chmod 777 "$san"
pgext_as_user "$bindir/initdb" -D "$pgdata" -A trust -U postgres --no-sync >/dev/null
cat >>"$pgdata/postgresql.conf" <<EOF
listen_addresses = ''
port = 5432
unix_socket_directories = '$sock'
shared_preload_libraries = 'pgext'
pgext.master_key_command = '$dir/test/keys.sh'
max_prepared_transactions = 10
fsync = off
EOF
# A report ends the process (the postmaster then restarts the others).
# ASan's reports go to files, one per process; UBSan's (gcc's runtime) go to
# the server's stderr, the server log.  Both are checked after the run: a
# report fails it even if no test noticed.
asan_opts="detect_leaks=0:abort_on_error=1:halt_on_error=1:log_path=$san/asan:detect_odr_violation=0"
ubsan_opts="print_stacktrace=1:halt_on_error=1:log_path=$san/ubsan"
pgext_as_user env LD_PRELOAD="$libasan $shim" ASAN_OPTIONS="$asan_opts" UBSAN_OPTIONS="$ubsan_opts" \
  "$bindir/pg_ctl" -D "$pgdata" -l "$dir/server.log" -w -t 120 start >/dev/null

log="$dir/sanitize.log"
status=0
# (a hung server ends the run after 30 minutes rather than at CI's limit)
pgext_as_user env -C "$dir" PGHOST="$sock" PGPORT=5432 PGUSER=postgres \
  timeout 1800 make -s installcheck with_llvm=no PG_CONFIG="$bindir/pg_config" TAP_TESTS= PROVE_TESTS= \
  2>&1 | tee "$log" || status=$?
pgext_as_user "$bindir/pg_ctl" -D "$pgdata" -w -t 120 stop >/dev/null || status=1

reports=$(find "$san" -type f | sort)
if [ -n "$reports" ] || grep -qE 'ERROR: AddressSanitizer|runtime error:|terminated by signal' "$dir/server.log"; then
  for f in $reports; do echo "=== $f"; head -c 6000 "$f"; done
  grep -E -A20 'ERROR: AddressSanitizer|runtime error:|terminated by signal' "$dir/server.log" | head -n 80 || true
  echo "pgext: sanitizer reported errors"
  status=1
fi
if [ $status -ne 0 ]; then
  for f in "$dir/regression.diffs" "$dir/output_iso/regression.diffs"; do
    [ -s "$f" ] && { echo "=== $f"; head -c 20000 "$f"; }
  done
  keep=1
  echo "pgext: sanitized regress+isolation FAILED"
  exit 1
fi
echo "pgext: sanitized regress+isolation passed"

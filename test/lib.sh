# Shared by test/run.sh and test/demo.sh: build, install, and stage an
# unprivileged copy of the tree (initdb refuses root; TAP needs its own user).
set -euo pipefail
PGEXT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="/usr/lib/postgresql/15/bin:$PATH"

# One build-install-test at a time per machine: `make install` writes into the
# system PostgreSQL, so two checkouts testing at once would swap libraries.
# A script run by a holder of the lock (test/run.sh runs test/sanitize.sh)
# passes PGEXT_LOCK_HELD=1 and does not wait for itself.
if [ -z "${PGEXT_LOCK_HELD:-}" ]; then
  exec 9>"${TMPDIR:-/tmp}/pgext-install.lock"
  flock 9
fi

# Build and install the extension into the system PostgreSQL 15.
pgext_build_install() {
  bash "$PGEXT_ROOT/test/deps.sh"
  make -C "$PGEXT_ROOT" -s -j2 >/dev/null
  if [ "$(id -u)" -eq 0 ]; then make -C "$PGEXT_ROOT" -s install >/dev/null
  else sudo make -C "$PGEXT_ROOT" -s install >/dev/null; fi
}

# Copy the tree to a fresh directory owned by the user who runs the clusters.
# Prints that directory.  As root the user is "postgres"; otherwise ourselves.
pgext_stage() {
  local dir
  dir=$(mktemp -d /tmp/pgext-run.XXXXXX)
  tar -C "$PGEXT_ROOT" --exclude=.git --exclude=results --exclude=tmp_check \
      --exclude=output_iso -cf - . | tar -C "$dir" -xf -
  if [ "$(id -u)" -eq 0 ]; then chown -R postgres: "$dir"; chmod 755 "$dir"; fi
  echo "$dir"
}

# Run a command as the cluster user (postgres when we are root).
# The lock's descriptor is closed for them: a server or fake a failed run
# leaves behind must not hold the machine-wide lock after this shell exits.
pgext_as_user() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- env PATH="$PATH" "$@" 9>&-
  else "$@" 9>&-; fi
}

# Options every throwaway cluster gets.
pgext_cluster_opts() {
  echo -o shared_preload_libraries=pgext -o "pgext.master_key_command=$1/test/keys.sh"
}

#!/usr/bin/env bash
# Installs what building and testing pgext needs on Debian 12 (run as root).
# Skips apt entirely when everything is already there.
set -euo pipefail
pkgs=(make gcc libc6-dev postgresql-15 postgresql-server-dev-15 postgresql-contrib
      postgresql-common libcurl4-openssl-dev libssl-dev libyaml-dev libipc-run-perl
      perl python3 openssl clang libclang-rt-14-dev curl valgrind)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "pgext: missing packages: ${missing[*]} — run this as root (or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "pgext: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" >/dev/null

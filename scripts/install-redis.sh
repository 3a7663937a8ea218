#!/usr/bin/env bash
# Installs Debian 12's Redis (server and redis-cli), pinned, for the tests of
# the Redis store and multi-node deployments (server/tests/common/redis.rs
# starts a private redis-server on a loopback port per test run; nothing here
# starts a service). Idempotent: runs apt-get only when a package is missing
# or at another version.
set -euo pipefail

packages=(
  redis-server=5:7.0.15-1~deb12u10
  redis-tools=5:7.0.15-1~deb12u10
)

missing=()
for spec in "${packages[@]}"; do
  name=${spec%%=*}
  version=${spec#*=}
  have=$(dpkg-query -W -f='${Status} ${Version}' "$name" 2>/dev/null || true)
  if [ "$have" != "install ok installed $version" ]; then
    missing+=("$spec")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "== apt-get install ${missing[*]}"
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=300 update -qq
  # The package's post-install starts a system service where an init system
  # runs; the tests never use it (they start their own on another port).
  "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${missing[@]}"
else
  echo "== redis: everything is installed"
fi
redis-server --version

#!/usr/bin/env bash
# Installs what the Node binding's tests need, on Debian 12 with Rust, gcc and
# Node 20 already present: the npm packages pinned in package-lock.json (koffi,
# and for the declaration check typescript and @types/node), with `npm ci`.
# Idempotent: when node_modules matches the lock file already, it only checks.
#
# Installs nothing else. The library itself is built by the project
# (`cargo build --lib`); test.sh finds it.
set -euo pipefail
cd "$(dirname "$0")"

need_apt=()
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
command -v cc >/dev/null || need_apt+=(gcc) # builds a fake library in one load test
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "ci-install: apt-get install ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "ci-install: Node $(node --version) is too old: the binding needs Node 20 or newer" >&2
  exit 1
fi

# The lock file's hash and the Node version: what node_modules was made from.
stamp=node_modules/.beckon-ci-install
want="$(sha256sum package-lock.json | cut -d' ' -f1) node-$(node --version)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && node -e "require('koffi')" 2>/dev/null; then
  echo "ci-install: node_modules is up to date"
  exit 0
fi

# --ignore-scripts: koffi's native code comes prebuilt in its per-platform
# package (@koromix/koffi-<os>-<arch>); its install script would only check
# that, or fall back to a CMake build.
npm ci --ignore-scripts --no-audit --no-fund
node -e "require('koffi')"
echo "$want" >"$stamp"
echo "ci-install: installed koffi $(node -p "require('koffi').version")"

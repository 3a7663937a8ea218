#!/usr/bin/env bash
# Installs what the web client's tests need, on Debian 12 with Node 20 and gcc
# already present: the npm packages pinned in package-lock.json (typescript,
# esbuild, playwright-core, ws and two @types) with `npm ci`, and Debian's
# `chromium` (the browser playwright-core drives; playwright's own browser
# downloads are never used). Idempotent: a stamp file records what
# node_modules was made from, and chromium is installed only when missing.
set -euo pipefail
cd "$(dirname "$0")"

need_apt=()
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
command -v cc >/dev/null || need_apt+=(gcc) # builds test/native_peer.c
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "ci-install: apt-get install ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "ci-install: Node $(node --version) is too old: the web client's tests need Node 20 or newer" >&2
  exit 1
fi

# The lock file's hash and the Node version: what node_modules was made from.
stamp=node_modules/.beckon-ci-install
want="$(sha256sum package-lock.json | cut -d' ' -f1) node-$(node --version)"
check() {
  node -e "require.resolve('ws'); require.resolve('playwright-core'); require('esbuild').transformSync('let a: number = 1', { loader: 'ts' })" 2>/dev/null
}
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && check; then
  echo "ci-install: node_modules is up to date; $(/usr/bin/chromium --version 2>/dev/null)"
  exit 0
fi

# Scripts are not needed: esbuild's binary comes in its per-platform package
# (@esbuild/linux-x64), and playwright-core downloads nothing at install.
npm ci --ignore-scripts --no-audit --no-fund
check
echo "$want" >"$stamp"
echo "ci-install: installed $(node -p "'esbuild ' + require('esbuild').version + ', playwright-core ' + require('playwright-core/package.json').version + ', ws ' + require('ws/package.json').version"); $(/usr/bin/chromium --version 2>/dev/null)"

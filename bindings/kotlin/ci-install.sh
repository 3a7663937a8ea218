#!/usr/bin/env bash
# Installs what bindings/kotlin/test.sh needs, on Debian 12 with JDK 17 and gcc
# already present: Debian's Kotlin compiler, JNA, JUnit 5 and
# kotlinx-coroutines (with atomicfu, which Debian's coroutines jar needs at run
# time but does not depend on). Versions are pinned to Debian 12's. Idempotent:
# installs only what is missing or at another version, and runs apt-get only
# then.
set -euo pipefail

packages=(
  kotlin=1.3.31+ds1-1
  libjna-java=5.13.0-2
  junit5=5.9.2-1
  libkotlinx-coroutines-java=1.0.1-2
  libkotlinx-atomicfu-java=0.11.12-2
)

for tool in java javac gcc; do
  if ! command -v "$tool" >/dev/null; then
    echo "ci-install.sh: $tool is missing (JDK 17 and gcc are expected on the machine)" >&2
    exit 1
  fi
done

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
  "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${missing[@]}"
else
  echo "== kotlin binding: everything is installed"
fi

# What test.sh uses, checked so that a broken install fails here.
for jar in jna kotlin-stdlib kotlin-stdlib-jdk7 kotlin-stdlib-jdk8 kotlinx-coroutines-core atomicfu \
  junit-jupiter-api junit-platform-console-standalone apiguardian-api opentest4j; do
  if [ ! -f "/usr/share/java/$jar.jar" ]; then
    echo "ci-install.sh: /usr/share/java/$jar.jar is missing" >&2
    exit 1
  fi
done
command -v kotlinc >/dev/null

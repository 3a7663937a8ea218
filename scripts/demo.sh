#!/usr/bin/env bash
# Builds libbeckon and runs the C demo of the whole invitation flow on memory://.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked --release --quiet
mkdir -p build
cc -std=c11 -Wall -Wextra -Werror -pthread -Iinclude examples/demo.c \
   -Ltarget/release -lbeckon -Wl,-rpath,"$PWD/target/release" -o build/demo
./build/demo

#!/usr/bin/env bash
# Push delivery load figure (issue 11; docs/PUSH.md): the ignored test
# `push_load` of server/tests/push_providers.rs, in release, against the
# local fakes on 127.0.0.1 (nothing leaves the machine):
#  - pushes per second: N invitations to N offline invitees with APNs VoIP
#    targets, through the APNs fake (HTTP/2 over TLS), until every result is
#    back at the inviter;
#  - ring latency (p50/p99) of an online invitee, send to delivery, with a
#    slow provider on (every push takes 2 s; each send also rings an offline
#    invitee by push) and with push off, side by side.
#   bash bench/push.sh              # N=2000
#   PUSH_LOAD_N=10000 bash bench/push.sh
# Bounded: N sends per phase (at most 100000), then it stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
PUSH_LOAD_N=${PUSH_LOAD_N:-2000} cargo test --release -q -p beckon-server \
  --test push_providers -- --ignored --nocapture --exact push_load 2>&1 \
  | grep -E '^(pushes|ring latency)|test result|panicked'

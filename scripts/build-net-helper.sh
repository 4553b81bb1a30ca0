#!/usr/bin/env bash
# Builds each sprite's network stack on the host, dist/spritely-net (docs/network.md), from
# resources/net-helper with Debian's Go and gVisor sources (golang-gvisor-gvisor-dev; GOPATH mode:
# no module is downloaded), when it is missing or older than its sources.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x dist/spritely-net ] || [ -n "$(find resources/net-helper -newer dist/spritely-net -print -quit)" ]; then
  echo "building the network helper (dist/spritely-net)"
  mkdir -p dist
  (cd resources/net-helper && GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= go build -trimpath -o ../../dist/spritely-net.tmp .)
  mv dist/spritely-net.tmp dist/spritely-net
fi

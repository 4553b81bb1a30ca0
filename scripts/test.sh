#!/usr/bin/env bash
# The whole test suite: type-check, unit tests, then the real-VM tests (real QEMU, real image;
# the image and golden state are built once and cached in ~/.cache/spritely-test).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== typecheck"
npx tsc -p tsconfig.json --noEmit
echo "== unit"
npx vitest run --project unit
echo "== vm (real QEMU)"
npx vitest run --project vm
if compgen -G "test/e2e/*.test.ts" >/dev/null; then
  echo "== e2e (real daemon, real QEMU, Debian's Chromium)"
  npx vitest run --project e2e
fi

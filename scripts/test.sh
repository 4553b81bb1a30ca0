#!/usr/bin/env bash
# The whole test suite: the CLI bundle rebuilt if its sources changed (every daemon and CLI the tests
# spawn runs it), type-check, unit tests, the real-VM tests (real QEMU, real image; the image
# and golden state are built once and cached in ~/.cache/spritely-test), then the browser end-to-end
# tests (real daemon + QEMU, Debian's Chromium). Every stage runs; the exit code is non-zero if any
# failed, and the last line sums the tests: "tests: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
results=$(mktemp -d)
status=0

stage() {
  local name=$1
  shift
  echo "== $name"
  "$@" || status=1
}

stage "build (the CLI bundle, if stale)" node scripts/build-cli.mjs --if-stale
stage "build (the network helper, if stale)" bash scripts/build-net-helper.sh
stage typecheck npx tsc -p tsconfig.json --noEmit
stage "unit" npx vitest run --project unit --reporter=default --reporter=json --outputFile.json="$results/unit.json"
stage "vm (real QEMU)" npx vitest run --project vm --reporter=default --reporter=json --outputFile.json="$results/vm.json"
if compgen -G "test/e2e/*.test.ts" >/dev/null; then
  stage "e2e (real daemon, real QEMU, Debian's Chromium)" npx vitest run --project e2e --reporter=default --reporter=json --outputFile.json="$results/e2e.json"
fi

node -e '
const fs = require("fs"), path = require("path");
let passed = 0, failed = 0;
for (const f of fs.readdirSync(process.argv[1])) {
  const r = JSON.parse(fs.readFileSync(path.join(process.argv[1], f), "utf8"));
  passed += r.numPassedTests; failed += r.numFailedTests;
}
console.log(`tests: ${passed} passed, ${failed} failed`);
' "$results"
rm -rf "$results"
exit $status

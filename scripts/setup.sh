#!/usr/bin/env bash
# One-time (idempotent) set-up on Debian/Ubuntu: the system packages Spritely and its tests use,
# then the npm dependencies, then the build: the CLI bundle (dist/cli) and the UI (dist/renderer).
# Run as root or with sudo available.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  qemu-system-x86 qemu-utils      # the hypervisor and qcow2 tools (qemu-nbd shows checkpoints inside sprites)
  lz4                             # compresses checkpoints' RAM states (and restores them)
  zstd                            # restores RAM states older versions compressed
  socat                           # carries each guest connection to the daemon's egress proxy
  mmdebstrap e2fsprogs            # building guest images from Debian packages (no loop mounts)
  golang-go                       # compiling the guest agent (resources/guest-agent) into the image
  golang-gvisor-gvisor-dev        # gVisor's netstack: the host network stack (resources/net-helper)
  openssh-client                  # ssh-keygen / ssh for `spritely ssh-config` users, ssh for remote hosts
  openssh-server                  # sshd for the remote-host tests (they run their own, in a network namespace)
  openssl                         # test certificates for the relay tests
  chromium xvfb                   # browser end-to-end tests and screenshots
  ca-certificates curl
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund
fi

# Each sprite's network stack on the host (docs/network.md), when missing or stale.
bash scripts/build-net-helper.sh

# The CLI, daemon and MCP server run from dist/cli (bin/spritely.js rebuilds it when its sources
# change); the daemon serves the UI from dist/renderer. Each is built here when missing or stale.
node scripts/build-cli.mjs --if-stale
if [ ! -f dist/renderer/index.html ] || [ -n "$(find renderer vm/api/contract.ts -newer dist/renderer/index.html -print -quit)" ]; then
  echo "setup: building the UI"
  npm run --silent build:renderer -- --logLevel warn
fi

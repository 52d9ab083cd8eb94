#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for berth: Debian packages, npm dependencies
# (including the pinned Node.js 24), the default CNI network config and berth's
# own small helpers. Idempotent; run as root.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"

# Set-up must not change a tracked file (a rewritten lock means what got installed is not what is pinned).
tracked_state() { git -C "$here" diff --no-ext-diff HEAD 2>/dev/null | sha256sum; }
before=$(tracked_state)

if [ "$(id -u)" != 0 ]; then
  echo "hack/setup.sh: must run as root (berth manages namespaces, mounts and cgroups)" >&2
  exit 1
fi

packages=(
  runc crun conmon catatonit containernetworking-plugins iproute2 iptables util-linux mount kmod
  attr socat gcc libc6-dev musl-tools apache2-utils e2fsprogs procps
  # tests and benchmarks
  docker-registry busybox-static skopeo gnupg containerd libarchive-tools libcap2-bin
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "hack/setup.sh: installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# Debian's containerd and docker-registry packages may start services; berth starts its own instances.
for svc in containerd docker-registry; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then systemctl stop "$svc" || true; fi
done

# `npm ci`: exactly what the committed lock pins (it lists every platform binary the registry serves).
if [ ! -x node_modules/node/bin/node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

hack/cni/install-cni-config.sh
hack/build-helpers.sh
hack/build.sh
if [ "$(tracked_state)" != "$before" ]; then
  echo "hack/setup.sh: set-up changed tracked files:" >&2
  git -C "$here" status --short --untracked-files=no >&2
  exit 1
fi
echo "hack/setup.sh: ready ($(node_modules/node/bin/node --version), $(runc --version | head -1))"

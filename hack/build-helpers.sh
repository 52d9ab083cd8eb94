#!/usr/bin/env bash
# Builds berth's own small C helper (oci-runtime/io/helper/berth-io.c): pty exec,
# conmon attach bridging and netns port-forward connects, which Node.js cannot do
# in-process. Installed where berthd looks by default (runtime.io_helper).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
src="$here/oci-runtime/io/helper/berth-io.c"
out="${BERTH_IO_HELPER:-/usr/local/libexec/berth/berth-io}"
if [ ! -x "$out" ] || [ "$src" -nt "$out" ]; then
  mkdir -p "$(dirname "$out")"
  gcc -O2 -Wall -o "$out.tmp" "$src"
  mv "$out.tmp" "$out"
  echo "hack/build-helpers.sh: built $out"
fi

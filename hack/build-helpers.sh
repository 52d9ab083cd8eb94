#!/usr/bin/env bash
# Builds berth's small C helpers, which do what Node.js cannot do in-process:
#   berth-io     (oci-runtime/io/helper/berth-io.c): pty exec, conmon attach bridging, netns port-forward connects
#   berth-layer  (image-service/snapshots/helper/berth-layer.c): device nodes and xattrs inside a layer directory
#   berth-mount  (oci-runtime/mounts/helper/berth-mount.c): idmapped and recursive read-only mounts
#   berth-exec   (oci-runtime/runtime/helper/berth-exec.c): ExecSync subreaper reporting the exec'd process's exit status
#   berth-start  (oci-runtime/runtime/helper/berth-start.c): StartContainer through runc's exec fifo, without runc's start-up
#                (both run once per call, so static like berth-monitor: no dynamic loader at each start; on the
#                machine of 2 Dec 2026 a fork and exec of a static musl binary took 3.6 ms against 4.9 ms for a
#                dynamic one, and ExecSync's p50 was 67.5 against 69.8 ms, eight alternating rounds of 20 calls)
#   berth-monitor (oci-runtime/monitor/helper/berth-monitor.c): per-container monitor (runtime.monitor = "berth"),
#                one per container, so linked statically against musl when musl-gcc is there (about 0.14 MB RSS),
#                else against glibc (about 0.6-0.7 MB RSS; dynamic glibc: about 1.5 MB)
#   berth-spawn  (oci-runtime/foundation/helper/berth-spawn.c): berthd's process starter, one per berthd, which
#                forks the helpers above, runc, mounts and CNI plugins so that berthd does not fork for them (static like berth-monitor)
#   berth-trim.node (oci-runtime/foundation/helper/berth-trim.c): a Node-API addon berthd loads to call malloc_trim(0)
#                after its memory-reducing collections (cri-server/idle-gc.ts)
# Installed beside each other where berthd looks by default (the directory of runtime.io_helper).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=$(dirname "${BERTH_IO_HELPER:-/usr/local/libexec/berth/berth-io}")
build() {
  local name=$1 src="$here/$2"
  shift 2
  local cc=gcc
  if [ "${1:-}" = "--cc" ]; then cc=$2; shift 2; fi
  [ -f "$src" ] || return 0
  local out="$dir/$name"
  # Rebuilt when the source or this script (its flags) is newer than the installed binary.
  if [ ! -x "$out" ] || [ "$src" -nt "$out" ] || [ "${BASH_SOURCE[0]}" -nt "$out" ]; then
    mkdir -p "$dir"
    chmod 0755 "$dir"
    "$cc" -O2 -Wall -Werror "$@" -o "$out.tmp" "$src"
    chmod 0755 "$out.tmp"
    mv "$out.tmp" "$out"
    echo "hack/build-helpers.sh: built $out"
  fi
}
build berth-io oci-runtime/io/helper/berth-io.c
build berth-layer image-service/snapshots/helper/berth-layer.c
build berth-mount oci-runtime/mounts/helper/berth-mount.c
monitor_cc=gcc
if command -v musl-gcc >/dev/null; then monitor_cc=musl-gcc; fi
build berth-exec oci-runtime/runtime/helper/berth-exec.c --cc "$monitor_cc" -static
build berth-start oci-runtime/runtime/helper/berth-start.c --cc "$monitor_cc" -static
build berth-monitor oci-runtime/monitor/helper/berth-monitor.c --cc "$monitor_cc" -static
build berth-spawn oci-runtime/foundation/helper/berth-spawn.c --cc "$monitor_cc" -static
build berth-trim.node oci-runtime/foundation/helper/berth-trim.c -shared -fPIC

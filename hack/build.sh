#!/usr/bin/env bash
# Builds the daemon berthd runs: the TypeScript is compiled (and typechecked) by tsc, then bundled
# by esbuild into dist/cri-server/ (or OUT/cri-server/ with `hack/build.sh OUT`):
# - main.js, berthd itself, and unpack-worker.js, the layer unpack processes' module;
# - pull-worker.js, the pull process's module, bundled whole on its own;
# - chunks they share, and one for each module berthd imports only when first used (the
#   streaming server, metrics, the OCI streaming backend).
# Running compiled code spares berthd Node's type stripping (about 18 MB of RSS). The bundle
# spares it loading tsc's 245 files and @bufbuild/protobuf's modules one by one: idle RSS
# 65.6-66.0 -> 61.3-61.4 MB, and 69.5-70.4 -> 65.0-65.1 MB after a pull (this bundle against
# tsc's output alone, alternating starts). Whitespace and syntax are minified, identifiers are
# not: stack traces name functions, though a top-level name two modules share gets a number
# (create2); nothing in berth reads a function's or class's .name.
# Packages berthd loads only when a feature is first used (OpenTelemetry, prom-client, openpgp,
# ws, yaml) stay external, loaded from node_modules as before. Every file lands in the one
# directory, so a module's `new URL("./unpack-worker.js", import.meta.url)` (or pull-worker.js)
# finds the worker's entry whichever chunk it is in.
# A relative OUT is taken from the repository's root, as the default dist is.
# bin/berthd falls back to the sources when dist/ is missing or older than them (or than the lock
# and this script, which decide what the bundle holds).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$here"
out=$(realpath -m "${1:-dist}")
# The external packages resolve from the repository's node_modules, upwards from the bundle.
case "$out" in "$here"/*) ;; *) echo "hack/build.sh: $out is outside $here; its bundle could not load node_modules" >&2; exit 2;; esac
# OUT is replaced whole: only a directory that is missing, empty or an earlier build.
if [ -e "$out" ] && [ -n "$(ls -A "$out" 2>/dev/null)" ] && [ ! -f "$out/.build-stamp" ]; then
  echo "hack/build.sh: $out holds files but no earlier build (.build-stamp); not replacing it" >&2
  exit 2
fi
tmp="$out.tmp"
# The same rule for the work directory beside it, which a failed build removes on its way out.
if [ -e "$tmp" ] && [ -n "$(ls -A "$tmp" 2>/dev/null)" ] && [ ! -f "$tmp/.build-stamp" ]; then
  echo "hack/build.sh: $tmp holds files but no earlier build (.build-stamp); not replacing it" >&2
  exit 2
fi
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/js"
# The stamp is taken before compiling: a source edited while tsc runs is newer than it, so
# bin/berthd does not run a dist/ that misses the edit.
touch "$tmp/.build-stamp"
node_modules/.bin/tsc -p tsconfig.build.json --outDir "$tmp/js"
mkdir -p "$tmp/js/proto"
cp -r proto/gen "$tmp/js/proto/gen"
# How berthd is bundled; the bench's node floor (conformance/bench/floor.ts) reads this line and
# bundles its program the same way.
bundle=(--bundle --platform=node --format=esm --target=node24 --minify-whitespace --minify-syntax --log-level=warning)
external=()
for pkg in '@opentelemetry/*' prom-client openpgp ws yaml; do external+=("--external:$pkg"); done
node_modules/.bin/esbuild "$tmp/js/cri-server/main.js" "$tmp/js/image-service/snapshots/unpack-worker.js" \
  "${bundle[@]}" --splitting --entry-names='[name]' "${external[@]}" --outdir="$tmp/cri-server"
# The pull process's module on its own, not split with berthd's: chunks shared with it would hold
# most of the image service, and berthd loading its code from more modules cost it 0.5 MB of RSS
# idle (55.6 against 56.1 MB, four alternating starts each).
node_modules/.bin/esbuild "$tmp/js/image-service/pull-worker.js" "${bundle[@]}" "${external[@]}" --outfile="$tmp/cri-server/pull-worker.js"
rm -rf "$tmp/js"
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT

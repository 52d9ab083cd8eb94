#!/usr/bin/env bash
# Regenerates the protobuf-es code into a temp dir and fails if the committed
# proto/gen differs. Works from any cwd.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BIN="$ROOT/node_modules/.bin"
if [[ ! -x "$BIN/buf" || ! -x "$BIN/protoc-gen-es" ]]; then
  echo "check-generated: node_modules/.bin/buf or protoc-gen-es missing; run 'npm ci' first" >&2
  exit 1
fi
# protoc-gen-es (and the node 24 binary) are resolved from node_modules/.bin.
export PATH="$BIN:$PATH"

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

buf generate proto -o "$TMP"

if ! diff -r "$TMP/proto/gen" "$ROOT/proto/gen" >"$TMP.diff" 2>&1; then
  head -n 50 "$TMP.diff" >&2
  rm -f "$TMP.diff"
  echo >&2
  echo "check-generated: proto/gen is out of date with proto/; run 'npm run generate' and commit the result." >&2
  exit 1
fi
rm -f "$TMP.diff"
echo "check-generated: proto/gen is up to date."

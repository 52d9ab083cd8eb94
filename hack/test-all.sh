#!/usr/bin/env bash
# The whole test suite: static checks, unit specs, library integration tests
# against real runc/conmon/CNI/registry, and berth's CRI conformance suite over
# the real socket. Run by `npm test` (as root, after hack/setup.sh).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
node=node_modules/node/bin/node
export PATH="$here/node_modules/.bin:$PATH"

step() { printf '\n=== %s\n' "$*"; }

step "typecheck"
node_modules/.bin/tsc -p tsconfig.json

step "build dist/ (berthd runs the compiled JavaScript)"
bash hack/build.sh
# Every berthd the tests start runs this bundle, what ships, even if a source's mtime moves later.
export BERTHD_DIST="$here/dist"

step "generated code is current"
bash hack/check-generated.sh

mapfile -t specs < <(git ls-files --cached --others --exclude-standard '*.spec.ts' | grep -v '^node_modules/' | sort)
mapfile -t itests < <(git ls-files --cached --others --exclude-standard '*.itest.ts' | grep -v '^node_modules/' | sort)
mapfile -t suite < <(git ls-files --cached --others --exclude-standard 'conformance/suite/*.test.ts' | sort)

step "critest (cri-tools' CRI validation suite, when critest is on PATH)"
# The digest spec pins upstream image bytes that cannot be rebuilt offline.
conformance/critest/run --ginkgo.skip "public image with digest should be pulled and removed"

# One node --test run over everything, so the runner's closing summary counts all of it.
# Unit specs run concurrently; integration files touch the kernel and run one at a time.
step "unit specs (${#specs[@]} files), integration tests (${#itests[@]} files), conformance suite (${#suite[@]} files)"
"$node" --test --test-concurrency=1 --test-timeout=600000 "${specs[@]}" "${itests[@]}" "${suite[@]}"

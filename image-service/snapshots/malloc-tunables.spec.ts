import { test } from "node:test";
import assert from "node:assert/strict";
import { PULL_MALLOC_TUNABLES, withPullMallocTunables } from "./malloc-tunables.ts";

test("the pull's malloc settings come after berthd's pinned threshold, once, and the rest of the environment stays", () => {
  const pinned = "glibc.malloc.mmap_threshold=131072";
  const once = withPullMallocTunables({ PATH: "/bin", GLIBC_TUNABLES: pinned });
  assert.deepEqual(once, { PATH: "/bin", GLIBC_TUNABLES: `${pinned}:${PULL_MALLOC_TUNABLES}` });
  // An unpack process forked by the pull process inherits them: not appended a second time.
  assert.deepEqual(withPullMallocTunables(once), once);
  assert.deepEqual(withPullMallocTunables({}), { GLIBC_TUNABLES: PULL_MALLOC_TUNABLES });
  assert.deepEqual(withPullMallocTunables({ GLIBC_TUNABLES: "" }), { GLIBC_TUNABLES: PULL_MALLOC_TUNABLES });
  // Only a whole trailing setting counts as already there.
  const tail = `x${PULL_MALLOC_TUNABLES}`;
  assert.equal(withPullMallocTunables({ GLIBC_TUNABLES: tail }).GLIBC_TUNABLES, `${tail}:${PULL_MALLOC_TUNABLES}`);
  const env = { GLIBC_TUNABLES: pinned };
  withPullMallocTunables(env);
  assert.deepEqual(env, { GLIBC_TUNABLES: pinned }, "the caller's object is not changed");
});

// CRI mounts with real runc: read-only, symlinked host paths, and each propagation mode.
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { makeEnv, eventually, type ItestEnv } from "../../conformance/lib/oci-itest-env.ts";
import { execSync } from "../runtime/exec-sync.ts";
import { withCriMounts } from "./mounts.ts";
import { withProcessArgs } from "./process.ts";

const run = promisify(execFile);
let env: ItestEnv;
let vol: string;
const hostMounts: string[] = [];

async function mountTmpfs(path: string) {
  await mkdir(path, { recursive: true });
  await run("mount", ["-t", "tmpfs", "-o", "size=1m", "berth-itest", path]);
  hostMounts.unshift(path);
}

before(async () => {
  env = await makeEnv();
  vol = join(env.dir, "vol");
  await mountTmpfs(vol);
  await run("mount", ["--make-private", vol]);
  await writeFile(join(vol, "file"), "data\n");
  await symlink(vol, join(env.dir, "vol-link"));
});

after(async () => {
  for (const id of ["ro", "slave", "shared"]) await env.runtime.kill(id, "KILL").catch(() => undefined);
  for (const m of hostMounts) await run("umount", ["-l", m]).catch(() => undefined);
  await env.cleanup();
});

const sleeper = withProcessArgs({ command: ["sleep", "100000"] });
const inContainer = async (id: string, script: string) => (await execSync(env.runtime, id, ["sh", "-c", script])).stdout.toString();

test("a read-only mount through a symlinked host path shows the files and refuses writes", async () => {
  await env.create("ro", [sleeper, withCriMounts([{ containerPath: "/data", hostPath: join(env.dir, "vol-link"), readonly: true }])]);
  await env.runtime.start("ro");
  assert.equal(await inContainer("ro", "cat /data/file"), "data\n");
  assert.equal(await inContainer("ro", "touch /data/x 2>/dev/null && echo writable || echo refused"), "refused\n");
});

test("host-to-container: a mount made on the host later appears in the container; private does not see it", async () => {
  await env.create("slave", [sleeper, withCriMounts([{ containerPath: "/data", hostPath: vol, propagation: "HOST_TO_CONTAINER" }])]);
  await env.runtime.start("slave");
  await mountTmpfs(join(vol, "later"));
  await writeFile(join(vol, "later", "marker"), "late\n");
  assert.equal(await eventually(async () => (await inContainer("slave", "cat /data/later/marker 2>/dev/null")) || undefined), "late\n");
  // the read-only container's mount was private: the new mount is not propagated there
  assert.equal(await inContainer("ro", "cat /data/later/marker 2>/dev/null || echo absent"), "absent\n");
});

test("bidirectional: a mount made in the container appears on the host", async () => {
  const { defaultSpec } = await import("./default-spec.ts");
  const spec = defaultSpec({ rootfs: env.rootfs });
  const caps = ["CAP_SYS_ADMIN"];
  spec.process!.capabilities = { bounding: caps, effective: caps, permitted: caps };
  await env.create("shared", [sleeper, withCriMounts([{ containerPath: "/data", hostPath: vol, propagation: "BIDIRECTIONAL" }])], { spec });
  await env.runtime.start("shared");
  hostMounts.unshift(join(vol, "fromctr"));
  assert.equal(await inContainer("shared", "mkdir -p /data/fromctr && mount -t tmpfs none /data/fromctr && echo hi > /data/fromctr/m && echo ok"), "ok\n");
  const { readFile } = await import("node:fs/promises");
  assert.equal(await readFile(join(vol, "fromctr", "m"), "utf8"), "hi\n");
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { BerthError, Code } from "../foundation/errdefs.ts";
import { parseMountInfo } from "../foundation/mountinfo.ts";
import { defaultSpec } from "./default-spec.ts";
import { criMounts, withCriMounts, withPodFiles, type MountHost } from "./mounts.ts";

const isInvalid = (e: unknown) => e instanceof BerthError && e.code === Code.INVALID_ARGUMENT;

function fakeHost(opts: { shared?: boolean; slave?: boolean } = {}) {
  const calls: string[] = [];
  let shared = opts.shared ?? false;
  const host: MountHost = {
    async realpath(p) {
      if (p === "/missing") throw Object.assign(new Error("nope"), { code: "ENOENT" });
      if (p === "/link") return "/data/real";
      return p;
    },
    async mountInfo() {
      const opt = shared ? "shared:5" : opts.slave ? "master:3" : "";
      return parseMountInfo(`1 0 8:1 / / rw - ext4 /dev/sda1 rw\n2 1 8:2 / /data rw ${opt} - ext4 /dev/sdb rw\n`);
    },
    async makeRShared(mp) { calls.push(mp); shared = true; },
  };
  return { host, calls };
}

test("withPodFiles binds hosts, resolv.conf, hostname and replaces the default /dev/shm", async () => {
  const s = defaultSpec({ rootfs: "r" });
  await withPodFiles({ hostsPath: "/p/hosts", resolvPath: "/p/resolv", hostnamePath: "/p/hostname", shmPath: "/p/shm" })(s, undefined);
  const byDest = new Map(s.mounts!.map((m) => [m.destination, m]));
  assert.equal(byDest.get("/etc/hosts")!.source, "/p/hosts");
  assert.equal(byDest.get("/etc/resolv.conf")!.source, "/p/resolv");
  assert.equal(byDest.get("/etc/hostname")!.source, "/p/hostname");
  assert.equal(byDest.get("/dev/shm")!.type, "bind");
  assert.equal(s.mounts!.filter((m) => m.destination === "/dev/shm").length, 1);
});

test("a private read-only mount resolves symlinked host paths", async () => {
  const { host } = fakeHost();
  const s = defaultSpec({ rootfs: "r" });
  const [m] = await criMounts(s, [{ containerPath: "/v", hostPath: "/link", readonly: true }], { host });
  assert.deepEqual(m, { destination: "/v", type: "bind", source: "/data/real", options: ["rbind", "rprivate", "ro"] });
});

test("a missing host path is invalid argument naming it", async () => {
  const { host } = fakeHost();
  await assert.rejects(criMounts(defaultSpec({ rootfs: "r" }), [{ containerPath: "/v", hostPath: "/missing" }], { host }),
    (e) => isInvalid(e) && /\/missing/.test((e as Error).message));
});

test("bidirectional makes the host mount shared and the rootfs rshared", async () => {
  const { host, calls } = fakeHost();
  const s = defaultSpec({ rootfs: "r" });
  const [m] = await criMounts(s, [{ containerPath: "/v", hostPath: "/data/x", propagation: "BIDIRECTIONAL" }], { host });
  assert.deepEqual(calls, ["/data"]);
  assert.deepEqual(m!.options, ["rbind", "rshared", "rw"]);
  assert.equal(s.linux!.rootfsPropagation, "rshared");
});

test("host-to-container accepts a slave host mount as is and sets rslave", async () => {
  const { host, calls } = fakeHost({ slave: true });
  const s = defaultSpec({ rootfs: "r" });
  const [m] = await criMounts(s, [{ containerPath: "/v", hostPath: "/data/x", propagation: 1 }], { host });
  assert.deepEqual(calls, []);
  assert.deepEqual(m!.options, ["rbind", "rslave", "rw"]);
  assert.equal(s.linux!.rootfsPropagation, "rslave");
});

test("host-to-container on a private host mount makes it shared", async () => {
  const { host, calls } = fakeHost();
  await criMounts(defaultSpec({ rootfs: "r" }), [{ containerPath: "/v", hostPath: "/data/x", propagation: "HOST_TO_CONTAINER" }], { host });
  assert.deepEqual(calls, ["/data"]);
});

test("recursive read-only is refused unless read-only, private and supported", async () => {
  const { host } = fakeHost({ shared: true });
  const s = defaultSpec({ rootfs: "r" });
  await assert.rejects(criMounts(s, [{ containerPath: "/v", hostPath: "/data", recursiveReadOnly: true }], { host, supportsRecursiveReadOnly: true }), isInvalid);
  await assert.rejects(criMounts(s, [{ containerPath: "/v", hostPath: "/data", readonly: true, recursiveReadOnly: true, propagation: "BIDIRECTIONAL" }], { host, supportsRecursiveReadOnly: true }), isInvalid);
  await assert.rejects(criMounts(s, [{ containerPath: "/v", hostPath: "/data", readonly: true, recursiveReadOnly: true }], { host }), isInvalid);
  const [m] = await criMounts(s, [{ containerPath: "/v", hostPath: "/data", readonly: true, recursiveReadOnly: true }], { host, supportsRecursiveReadOnly: true });
  assert.deepEqual(m!.options, ["rbind", "rprivate", "rro"]);
});

test("relative or .. container paths are invalid", async () => {
  const { host } = fakeHost();
  await assert.rejects(criMounts(defaultSpec({ rootfs: "r" }), [{ containerPath: "v", hostPath: "/data" }], { host }), isInvalid);
  await assert.rejects(criMounts(defaultSpec({ rootfs: "r" }), [{ containerPath: "/a/../b", hostPath: "/data" }], { host }), isInvalid);
});

test("withCriMounts sorts parents first and overrides default mounts at the same path", async () => {
  const { host } = fakeHost();
  const s = defaultSpec({ rootfs: "r" });
  await withCriMounts([{ containerPath: "/a/b/c", hostPath: "/data/1" }, { containerPath: "/a", hostPath: "/data/2" }, { containerPath: "/dev/shm", hostPath: "/data/3" }], { host })(s, undefined);
  const dests = s.mounts!.map((m) => m.destination);
  assert.ok(dests.indexOf("/a") < dests.indexOf("/a/b/c"));
  assert.equal(s.mounts!.filter((m) => m.destination === "/dev/shm").length, 1);
  assert.equal(s.mounts!.find((m) => m.destination === "/dev/shm")!.source, "/data/3");
});

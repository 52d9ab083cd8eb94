import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildContainerSpec } from "./container-spec.ts";

test("buildContainerSpec composes process, user, pod files, namespaces, resources and cgroups", async () => {
  const root = await mkdtemp(join(tmpdir(), "berth-cs-"));
  try {
    await mkdir(join(root, "etc"));
    await writeFile(join(root, "etc/passwd"), "app:x:10:20::/home/app:/bin/sh\n");
    const spec = await buildContainerSpec({
      id: "c1", name: "web", rootfs: root,
      image: { entrypoint: ["/ep"], cmd: ["serve"], env: ["A=1"], user: "app", workingDir: "/srv" },
      env: [{ key: "B", value: "2" }],
      pod: { namespaces: { infraPid: 7, netnsPath: "/run/netns/p" }, files: { hostsPath: "/p/hosts", shmPath: "/p/shm" }, cgroupParent: "/kubepods/pod1", hostname: "pod1" },
      host: { cgroupV2: false, minOomScoreAdj: 0 },
      resources: { cpuShares: 2, oomScoreAdj: -10 },
      readonlyRootfs: true,
      annotations: { x: "y" },
      extraOpts: [(s) => { s.process!.noNewPrivileges = true; }],
    });
    assert.deepEqual(spec.process!.args, ["/ep", "serve"]);
    assert.deepEqual(spec.process!.user, { uid: 10, gid: 20, additionalGids: [20] });
    assert.equal(spec.process!.cwd, "/srv");
    assert.ok(spec.process!.env!.includes("A=1") && spec.process!.env!.includes("B=2") && spec.process!.env!.includes("HOSTNAME=pod1"));
    assert.equal(spec.process!.oomScoreAdj, 0);
    assert.equal(spec.process!.noNewPrivileges, true);
    assert.deepEqual(spec.root, { path: root, readonly: true });
    assert.equal(spec.linux!.cgroupsPath, "/kubepods/pod1/c1");
    assert.equal(spec.linux!.resources!.cpu!.shares, 2);
    assert.ok(spec.linux!.resources!.devices!.length > 1);
    assert.deepEqual(spec.linux!.namespaces!.find((n) => n.type === "pid"), { type: "pid", path: "/proc/7/ns/pid" });
    const hosts = spec.mounts!.find((m) => m.destination === "/etc/hosts")!;
    assert.deepEqual(hosts.options, ["rbind", "rprivate", "ro"]);
    assert.equal(spec.hostname, undefined);
    assert.deepEqual(spec.annotations, { x: "y" });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

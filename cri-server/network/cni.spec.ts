// NetworkManager logic with a recording fake process runner (no root, no
// real plugins). Real plugins are exercised in cni.itest.ts.

import { test } from "node:test";
import assert from "node:assert/strict";
import { chmod, mkdtemp, mkdir, readFile, rm, writeFile, utimes } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BerthError, Code } from "../../oci-runtime/foundation/errdefs.ts";
import { createLogger } from "../../oci-runtime/foundation/log.ts";
import { NetworkManager } from "./cni.ts";
import type { RunOptions, RunResult } from "../../oci-runtime/foundation/run-command.ts";

interface Call { plugin: string; command: string; stdin: Record<string, unknown>; env: NodeJS.ProcessEnv }

const quiet = createLogger({}, () => {});
const ok = (stdout = ""): RunResult => ({ code: 0, signal: null, stdout, stderr: "", timedOut: false });

async function setup(plugins: Record<string, unknown>[], opts: { cniVersion?: string; fail?: (c: Call) => RunResult | undefined } = {}) {
  const dir = await mkdtemp(join(tmpdir(), "cni-spec-"));
  const bin = join(dir, "bin");
  const conf = join(dir, "conf");
  await mkdir(bin);
  await mkdir(conf);
  for (const p of new Set(plugins.map((p) => p.type as string))) {
    await writeFile(join(bin, p), "#!/bin/sh\nexit 99\n");
    await chmod(join(bin, p), 0o755);
  }
  await writeFile(join(conf, "10-net.conflist"), JSON.stringify({ cniVersion: opts.cniVersion ?? "1.0.0", name: "net", plugins }));
  const calls: Call[] = [];
  const runner = async (file: string, _args: string[], o: RunOptions): Promise<RunResult> => {
    const plugin = file.split("/").pop()!;
    const env = o.env ?? {};
    if (env.CNI_COMMAND === "VERSION") return ok(JSON.stringify({ cniVersion: "1.0.0", supportedVersions: ["0.3.1", "0.4.0", "1.0.0"] }));
    if (!env.CNI_COMMAND) return { ...ok(), code: 1 }; // iptables in the sweep
    const call: Call = { plugin, command: env.CNI_COMMAND, stdin: JSON.parse(o.stdin ?? "{}"), env };
    calls.push(call);
    const f = opts.fail?.(call);
    if (f) return f;
    if (call.command !== "ADD") return ok();
    const prev = call.stdin.prevResult as { ips?: unknown[] } | undefined;
    return ok(JSON.stringify(prev ?? {
      cniVersion: "1.0.0",
      interfaces: [{ name: "eth0", sandbox: env.CNI_NETNS }],
      ips: [{ address: "10.9.0.2/24", interface: 0 }, { address: "fd09::2/64", interface: 0 }],
    }));
  };
  const make = () => new NetworkManager({ confDir: conf, binDirs: [bin], stateDir: dir, log: quiet, runner });
  return { dir, conf, bin, calls, make, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

const req = { sandboxId: "sb1", netnsPath: "/run/test/netns/x", podName: "web", podNamespace: "prod", podUid: "u1" };
const chain = [
  { type: "bridge", bridge: "b0" },
  { type: "portmap", capabilities: { portMappings: true } },
  { type: "bandwidth", capabilities: { bandwidth: true } },
];

test("status is not ready while conf_dir has no config and notices one that appears later", async () => {
  const dir = await mkdtemp(join(tmpdir(), "cni-spec-"));
  try {
    const conf = join(dir, "conf");
    const bin = join(dir, "bin");
    const nm = new NetworkManager({ confDir: conf, binDirs: [bin], stateDir: dir, log: quiet });
    let s = nm.status();
    assert.equal(s.ready, false);
    assert.equal(s.reason, "NetworkPluginNotReady");
    assert.match(s.message!, new RegExp(`no valid cni network config found in ${conf}`));
    await mkdir(conf);
    await writeFile(join(conf, "10-a.conflist"), JSON.stringify({ cniVersion: "1.0.0", name: "a", plugins: [{ type: "bridge" }] }));
    s = nm.status();
    assert.equal(s.ready, false);
    assert.match(s.message!, /cni plugin bridge of .*10-a.conflist not found/);
    await mkdir(bin);
    await writeFile(join(bin, "bridge"), "#!/bin/sh\n");
    await chmod(join(bin, "bridge"), 0o755);
    assert.deepEqual(nm.status(), { ready: true });
    // An edit in place (same dir mtime) is noticed through the file's mtime.
    await writeFile(join(conf, "10-a.conflist"), JSON.stringify({ cniVersion: "1.0.0", name: "b", plugins: [{ type: "bridge" }] }));
    const later = new Date(Date.now() + 5000);
    await utimes(join(conf, "10-a.conflist"), later, later);
    assert.equal(nm.config()?.name, "b");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("ADD runs plugins in order with env, chained prevResult and capability-filtered runtimeConfig", async () => {
  const t = await setup(chain);
  try {
    const nm = t.make();
    const r = await nm.setUp({ ...req, portMappings: [{ protocol: "TCP", containerPort: 80, hostPort: 8080 }], bandwidth: { ingressRate: 1000 } });
    assert.deepEqual(r.ips, ["10.9.0.2", "fd09::2"]);
    assert.equal(r.network, "net");
    assert.deepEqual(t.calls.map((c) => `${c.command} ${c.plugin}`), ["ADD bridge", "ADD portmap", "ADD bandwidth"]);
    const [b, p, bw] = t.calls;
    assert.equal(b!.env.CNI_CONTAINERID, "sb1");
    assert.equal(b!.env.CNI_NETNS, req.netnsPath);
    assert.equal(b!.env.CNI_IFNAME, "eth0");
    assert.equal(b!.env.CNI_PATH, t.bin);
    assert.equal(b!.env.CNI_ARGS, "IgnoreUnknown=1;K8S_POD_NAMESPACE=prod;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=sb1;K8S_POD_UID=u1");
    assert.equal(b!.stdin.prevResult, undefined);
    assert.equal(b!.stdin.runtimeConfig, undefined);
    assert.equal(b!.stdin.name, "net");
    assert.equal(b!.stdin.cniVersion, "1.0.0");
    assert.deepEqual(p!.stdin.runtimeConfig, { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp", hostIP: "0.0.0.0" }] });
    assert.ok(p!.stdin.prevResult);
    assert.deepEqual(bw!.stdin.runtimeConfig, { bandwidth: { ingressRate: 1000 } });
    assert.deepEqual(await t.make().cached("sb1").then((c) => c?.ips), ["10.9.0.2", "fd09::2"]);
  } finally {
    await t.cleanup();
  }
});

test("DEL after a restart runs in reverse with the cached config, runtimeConfig and result, then forgets it", async () => {
  const t = await setup(chain);
  try {
    await t.make().setUp({ ...req, portMappings: [{ containerPort: 80, hostPort: 8080 }] });
    // The config on disk changes; DEL must still use what ADD ran with.
    await writeFile(join(t.conf, "10-net.conflist"), JSON.stringify({ cniVersion: "1.0.0", name: "other", plugins: [{ type: "bridge" }] }));
    t.calls.length = 0;
    const nm2 = t.make();
    assert.deepEqual(await nm2.listCached(), ["sb1"]);
    await nm2.tearDown("sb1");
    assert.deepEqual(t.calls.map((c) => `${c.command} ${c.plugin}`), ["DEL bandwidth", "DEL portmap", "DEL bridge"]);
    const p = t.calls[1]!;
    assert.equal(p.stdin.name, "net");
    assert.deepEqual(p.stdin.runtimeConfig, { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp", hostIP: "0.0.0.0" }] });
    assert.deepEqual((p.stdin.prevResult as { ips: unknown[] }).ips.length, 2);
    // The netns path does not exist here: CNI_NETNS is empty.
    assert.equal(p.env.CNI_NETNS, "");
    assert.deepEqual(await nm2.listCached(), []);
    t.calls.length = 0;
    await nm2.tearDown("sb1");
    assert.equal(t.calls.length, 0, "a second tearDown is a no-op");
  } finally {
    await t.cleanup();
  }
});

test("a failing plugin rolls back the plugins that ran and names the plugin", async () => {
  const t = await setup(chain, {
    fail: (c) => c.plugin === "portmap" && c.command === "ADD"
      ? { ...ok('{"cniVersion":"1.0.0","code":100,"msg":"cannot map port","details":"port 8080 in use"}'), code: 1 } : undefined,
  });
  try {
    const nm = t.make();
    await assert.rejects(nm.setUp(req), (e: unknown) => e instanceof BerthError && e.code === Code.INTERNAL &&
      e.message === 'cni plugin portmap failed to add network "net" for sandbox sb1: cannot map port: port 8080 in use (code 100)');
    assert.deepEqual(t.calls.map((c) => `${c.command} ${c.plugin}`), ["ADD bridge", "ADD portmap", "DEL portmap", "DEL bridge"]);
    assert.equal(t.calls[2]!.stdin.prevResult !== undefined, true, "rollback DEL gets the last good result");
    assert.deepEqual(await nm.listCached(), []);
  } finally {
    await t.cleanup();
  }
});

test("a failed rollback keeps the cache so tearDown can retry", async () => {
  let delFails = true;
  const t = await setup(chain.slice(0, 2), {
    fail: (c) => (c.plugin === "portmap" && c.command === "ADD") || (delFails && c.plugin === "bridge" && c.command === "DEL")
      ? { ...ok('{"code":5,"msg":"io"}'), code: 1 } : undefined,
  });
  try {
    const nm = t.make();
    await assert.rejects(nm.setUp(req), /cni plugin portmap/);
    assert.deepEqual(await nm.listCached(), ["sb1"]);
    delFails = false;
    await nm.tearDown("sb1");
    assert.deepEqual(await nm.listCached(), []);
  } finally {
    await t.cleanup();
  }
});

test("tearDown errors are thrown and keep the cache; not-found errors are ignored", async () => {
  let mode: "io" | "gone" = "io";
  const t = await setup(chain.slice(0, 2), {
    fail: (c) => c.command === "DEL" && c.plugin === "bridge"
      ? { ...ok(mode === "io" ? '{"code":5,"msg":"disk on fire"}' : '{"code":3,"msg":"container not found"}'), code: 1 } : undefined,
  });
  try {
    const nm = t.make();
    await nm.setUp(req);
    await assert.rejects(nm.tearDown("sb1"), /cni plugin bridge failed to delete network "net" for sandbox sb1: disk on fire/);
    assert.deepEqual(await nm.listCached(), ["sb1"]);
    mode = "gone";
    await nm.tearDown("sb1");
    assert.deepEqual(await nm.listCached(), []);
  } finally {
    await t.cleanup();
  }
});

test("an ADD interrupted by a crash is cleaned up before the next ADD of that sandbox", async () => {
  const t = await setup(chain.slice(0, 1));
  try {
    const nm = t.make();
    await nm.setUp(req);
    const path = join(t.dir, "cni-cache", "sb1.json");
    const entry = JSON.parse(await readFile(path, "utf8"));
    entry.result = null;
    await writeFile(path, JSON.stringify(entry));
    await assert.rejects(t.make().check("sb1"), (e: unknown) => e instanceof BerthError && e.code === Code.NOT_FOUND);
    t.calls.length = 0;
    await t.make().setUp(req);
    assert.deepEqual(t.calls.map((c) => `${c.command} ${c.plugin}`), ["DEL bridge", "ADD bridge"]);
    await assert.rejects(t.make().setUp(req), /already set up/);
  } finally {
    await t.cleanup();
  }
});

test("CHECK runs in order with the cached result; skipped for 0.3.1", async () => {
  const t = await setup(chain.slice(0, 2));
  try {
    const nm = t.make();
    await nm.setUp(req);
    t.calls.length = 0;
    await nm.check("sb1");
    assert.deepEqual(t.calls.map((c) => `${c.command} ${c.plugin}`), ["CHECK bridge", "CHECK portmap"]);
    assert.ok(t.calls[0]!.stdin.prevResult);
  } finally {
    await t.cleanup();
  }
  const old = await setup(chain.slice(0, 1), { cniVersion: "0.3.1" });
  try {
    const nm = old.make();
    await nm.setUp(req);
    old.calls.length = 0;
    await nm.check("sb1");
    assert.equal(old.calls.length, 0);
    await nm.tearDown("sb1");
    assert.equal(old.calls[0]!.stdin.prevResult, undefined, "no prevResult on DEL before 0.4.0");
  } finally {
    await old.cleanup();
  }
});

test("a plugin that does not speak the config's cniVersion is refused before anything runs", async () => {
  const t = await setup(chain.slice(0, 1), { cniVersion: "0.2.0" });
  try {
    await assert.rejects(t.make().setUp(req), (e: unknown) => e instanceof BerthError && e.code === Code.FAILED_PRECONDITION &&
      /cni plugin bridge does not support cniVersion 0.2.0/.test(e.message));
    assert.equal(t.calls.length, 0);
  } finally {
    await t.cleanup();
  }
});

test("setUp without a config is FAILED_PRECONDITION naming conf_dir; bad ids are INVALID_ARGUMENT", async () => {
  const nm = new NetworkManager({ confDir: "/nonexistent/conf", binDirs: [], stateDir: "/nonexistent/state", log: quiet });
  await assert.rejects(nm.setUp(req), (e: unknown) => e instanceof BerthError && e.code === Code.FAILED_PRECONDITION && /\/nonexistent\/conf/.test(e.message));
  await assert.rejects(nm.tearDown("../x"), (e: unknown) => e instanceof BerthError && e.code === Code.INVALID_ARGUMENT);
});

test("a plugin binary missing at DEL time is an error, not 'already gone', and keeps the cache", async () => {
  const t = await setup(chain.slice(0, 2));
  try {
    const nm = t.make();
    await nm.setUp(req);
    await rm(join(t.bin, "portmap"));
    await assert.rejects(nm.tearDown("sb1"), (e: unknown) => e instanceof BerthError && e.code === Code.FAILED_PRECONDITION && /cni plugin portmap .* not found/.test(e.message));
    assert.deepEqual(await nm.listCached(), ["sb1"]);
    assert.deepEqual(t.calls.filter((c) => c.command === "DEL").map((c) => c.plugin), ["bridge"], "the other plugins still run");
  } finally {
    await t.cleanup();
  }
});

test("deferResultSave: setUp answers before the result is on disk; `saved` settles when it is, and calls for the sandbox wait for it", async () => {
  const s = await setup(chain);
  try {
    const nm = s.make();
    const r = await nm.setUp({ ...req, deferResultSave: true });
    assert.deepEqual(r.ips, ["10.9.0.2", "fd09::2"]);
    assert.ok(r.saved instanceof Promise, "a promise of the write");
    // cached() waits for the write and sees the result.
    assert.deepEqual((await nm.cached(req.sandboxId))?.ips, ["10.9.0.2", "fd09::2"]);
    await r.saved;
    const onDisk = JSON.parse(await readFile(join(s.dir, "cni-cache", `${req.sandboxId}.json`), "utf8")) as { result: unknown };
    assert.notEqual(onDisk.result, null, "the result is cached");
    // A tearDown issued right after a deferred setUp DELs with the result (prevResult), then drops the entry.
    const r2 = await nm.setUp({ ...req, sandboxId: "sb2", deferResultSave: true });
    await nm.tearDown("sb2");
    const del = s.calls.filter((c) => c.command === "DEL" && c.env.CNI_CONTAINERID === "sb2");
    assert.equal(del.length, chain.length);
    assert.ok(del.every((c) => c.stdin.prevResult), "DEL got the cached result");
    await r2.saved;
    assert.equal(await nm.cached("sb2"), undefined, "the entry is gone after the teardown, not written back");
    // Without the option the write is part of setUp.
    const r3 = await nm.setUp({ ...req, sandboxId: "sb3" });
    assert.equal(r3.saved, undefined);
  } finally { await s.cleanup(); }
});

test("ready: the cache entry is written before the namespace exists, ADD waits for it and runs in the path it gives; a rejected ready runs no plugin and leaves no entry", async () => {
  const s = await setup(chain);
  try {
    const nm = s.make();
    let give!: (path: string) => void;
    const ready = new Promise<string>((r) => { give = r; });
    const pending = nm.setUp({ ...req, ready });
    const entryPath = join(s.dir, "cni-cache", `${req.sandboxId}.json`);
    for (let i = 0; i < 200; i++) {
      if (await readFile(entryPath, "utf8").then(() => true, () => false)) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal((JSON.parse(await readFile(entryPath, "utf8")) as { result: unknown }).result, null, "entry (no result yet) written before ready");
    assert.equal(s.calls.length, 0, "no plugin runs before ready");
    give("/run/test/netns/real");
    const r = await pending;
    assert.deepEqual(r.ips, ["10.9.0.2", "fd09::2"]);
    assert.ok(s.calls.filter((c) => c.command === "ADD").every((c) => c.env.CNI_NETNS === "/run/test/netns/real"));
    assert.equal((JSON.parse(await readFile(entryPath, "utf8")) as { netnsPath: string }).netnsPath, "/run/test/netns/real");

    const calls = s.calls.length;
    const bad = Promise.reject(new Error("record write failed"));
    bad.catch(() => {}); // as RunPodSandbox does: setUp awaits it only after its own cache write
    await assert.rejects(nm.setUp({ ...req, sandboxId: "sb9", ready: bad }), /record write failed/);
    assert.equal(s.calls.length, calls, "no plugin ran");
    await assert.rejects(readFile(join(s.dir, "cni-cache", "sb9.json")), { code: "ENOENT" });
    assert.deepEqual((await nm.listCached()).sort(), [req.sandboxId]);
  } finally { await s.cleanup(); }
});

// berth-spawn (oci-runtime/foundation/helper/berth-spawn.c) in a real berthd over the real socket:
// berthd starts every helper (runc, mount, CNI plugins, the monitor) through one berth-spawn child
// instead of forking itself; the monitor it starts is not berthd's child; a berth-spawn killed with
// -9 is replaced on the next run and pods and containers go on starting.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { chmod, copyFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { podConfig, runSleepingPod, startPodEnv, type PodEnv } from "../lib/pod.ts";

const INSTALLED = "/usr/local/libexec/berth";

/** The pids of pid's children (every thread's), from /proc. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    let text = "";
    try { text = readFileSync(`/proc/${pid}/task/${t}/children`, "utf8"); } catch { continue; } // thread gone
    for (const c of text.split(" ").filter(Boolean)) out.push(Number(c));
  }
  return out;
}

const comm = (pid: number) => { try { return readFileSync(`/proc/${pid}/comm`, "utf8").trim(); } catch { return ""; } };

/** Parent pid of pid (field 4 of /proc/PID/stat), or 0 when it is gone. */
function ppidOf(pid: number): number {
  let stat: string;
  try { stat = readFileSync(`/proc/${pid}/stat`, "utf8"); } catch { return 0; }
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

/** The live (not zombie, not reaped meanwhile) berth-spawn children of pid. */
function spawnChildren(pid: number): number[] {
  const live = (c: number) => { try { return !/\) Z /.test(readFileSync(`/proc/${c}/stat`, "utf8")); } catch { return false; } };
  return childrenOf(pid).filter((c) => comm(c) === "berth-spawn" && live(c));
}

/** The monitor (conmon or berth-monitor) of container id: the process whose arguments hold `--cid <id>`. */
function monitorOf(id: string): number | undefined {
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    let args: string[];
    try { args = readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0"); } catch { continue; }
    const i = args.indexOf("--cid");
    if (i >= 0 && args[i + 1] === id) return Number(d);
  }
  return undefined;
}

async function until<T>(fn: () => T | undefined | false, what: string, giveUpMs = 20_000): Promise<T> {
  const end = Date.now() + giveUpMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${giveUpMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("berth-spawn in berthd", () => {
  let env: PodEnv;
  let busybox: string;
  const c = () => env.b.client.runtime;
  const berthdPid = () => env.b.proc.pid!;

  const podAndContainer = () => runSleepingPod(env.b.client, busybox);

  before(async () => {
    env = await startPodEnv({ images: true });
    busybox = env.images!.busybox;
    await c().version({});
    await env.b.client.image.pullImage({ image: { image: busybox } });
  });
  after(async () => {
    await env?.cleanup();
  });

  test("berthd has exactly one child process, berth-spawn; a pod and a container start, and the container's monitor is not berthd's child", async () => {
    const { containerId } = await podAndContainer();
    const spawners = spawnChildren(berthdPid());
    assert.equal(spawners.length, 1, `berthd's children: ${childrenOf(berthdPid()).map((p) => `${p} ${comm(p)}`).join(", ")}`);
    const monitor = monitorOf(containerId);
    assert.ok(monitor, "the container has a monitor");
    assert.ok(!childrenOf(berthdPid()).includes(monitor), "the monitor is not berthd's child");
    assert.notEqual(ppidOf(monitor), berthdPid());
    const status = await c().containerStatus({ containerId });
    assert.equal(status.status?.state, 1 /* CONTAINER_RUNNING */);
    // the helpers ran and are gone: nothing of them is left as berthd's child
    await until(() => childrenOf(berthdPid()).every((p) => comm(p) === "berth-spawn"), "berthd's only children are berth-spawn");
  });

  test("kill -9 of berth-spawn: the next RunPodSandbox, CreateContainer and StartContainer work through a new berth-spawn, and running containers go on", async () => {
    const first = await podAndContainer();
    const firstMonitor = monitorOf(first.containerId)!;
    const [old] = spawnChildren(berthdPid());
    assert.ok(old, "a berth-spawn runs");
    process.kill(old, "SIGKILL");
    await until(() => !spawnChildren(berthdPid()).includes(old), "the killed berth-spawn is reaped");

    const second = await podAndContainer();
    assert.equal((await c().containerStatus({ containerId: second.containerId })).status?.state, 1);
    const now = spawnChildren(berthdPid());
    assert.equal(now.length, 1, "one new berth-spawn");
    assert.notEqual(now[0], old);
    assert.ok(monitorOf(second.containerId), "the new container has its monitor");
    // the first container and its monitor were not touched
    assert.equal(monitorOf(first.containerId), firstMonitor);
    assert.equal((await c().containerStatus({ containerId: first.containerId })).status?.state, 1);
    const r = await c().execSync({ containerId: first.containerId, cmd: ["echo", "alive"], timeout: 30n });
    assert.equal(Buffer.from(r.stdout).toString(), "alive\n");
    // and removal, which runs runc and umount through the new berth-spawn, works
    for (const p of [first, second]) await c().removePodSandbox({ podSandboxId: p.podSandboxId });
    assert.equal(monitorOf(first.containerId), undefined);
    assert.equal(monitorOf(second.containerId), undefined);
  });

  test("kill -9 of berthd: its berth-spawn exits (EOF on its stdin) and leaves the containers running; the restarted berthd has a new one", async () => {
    const p = await podAndContainer();
    const monitor = monitorOf(p.containerId)!;
    const [old] = spawnChildren(berthdPid());
    assert.ok(old);
    await env.b.kill9();
    await until(() => comm(old) === "" || /\) Z /.test(readFileSync(`/proc/${old}/stat`, "utf8")), "the old berth-spawn exits");
    assert.equal(monitorOf(p.containerId), monitor, "the monitor goes on");
    await env.b.restart();
    const r = await c().execSync({ containerId: p.containerId, cmd: ["echo", "still"], timeout: 30n });
    assert.equal(Buffer.from(r.stdout).toString(), "still\n");
    const second = await podAndContainer();
    assert.ok(monitorOf(second.containerId));
    const now = spawnChildren(berthdPid());
    assert.equal(now.length, 1);
    assert.notEqual(now[0], old);
    for (const q of [p, second]) await c().removePodSandbox({ podSandboxId: q.podSandboxId });
  });

  test("berthd found berth-spawn: no 'not installed' warning", () => {
    const text = env.b.stderr.join("");
    assert.match(text, /"level":"info"/, "berthd's log is read here");
    assert.doesNotMatch(text, /berth-spawn not installed/);
  });
});

describe("berthd without berth-spawn installed", () => {
  let env: PodEnv;
  let helpers = "";
  before(async () => {
    // Every helper but berth-spawn, in a directory of their own that runtime.io_helper points into.
    helpers = await mkdtemp(join(tmpdir(), "berth-nospawn-"));
    await chmod(helpers, 0o755);
    for (const f of readdirSync(INSTALLED)) if (f !== "berth-spawn") await copyFile(join(INSTALLED, f), join(helpers, f));
    for (const f of readdirSync(helpers)) await chmod(join(helpers, f), 0o755);
    env = await startPodEnv({ images: true, toml: `[runtime]\nio_helper = "${join(helpers, "berth-io")}"\n` });
    await env.b.client.image.pullImage({ image: { image: env.images!.busybox } });
  });
  after(async () => {
    await env?.cleanup();
    if (helpers) await rm(helpers, { recursive: true, force: true });
  });

  test("warns once naming where it looked, forks its helpers as before, and pods and containers start", async () => {
    const c = env.b.client.runtime;
    const config = podConfig();
    const { podSandboxId } = await c.runPodSandbox({ config });
    const { containerId } = await c.createContainer({
      podSandboxId, sandboxConfig: config,
      config: { metadata: { name: "c", attempt: 0 }, image: { image: env.images!.busybox }, command: ["sleep", "3600"] },
    });
    await c.startContainer({ containerId });
    assert.equal((await c.containerStatus({ containerId })).status?.state, 1);
    assert.deepEqual(spawnChildren(env.b.proc.pid!), []);
    const warnings = env.b.stderr.join("").split("\n").filter((l) => l.includes("berth-spawn not installed"));
    assert.equal(warnings.length, 1, warnings.join("\n"));
    assert.ok(warnings[0]!.includes(join(helpers, "berth-spawn")), warnings[0]);
    await c.removePodSandbox({ podSandboxId });
  });
});

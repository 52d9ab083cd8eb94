// ExecSync with a background child that keeps the exec's stdout open (an exec probe such as
// `sh -c "start-helper &"`): the call answers when the exec'd process exits, with its exit
// code and the output read so far, after draining for at most runtime.exec_drain_timeout; the
// background child keeps running; berthd keeps no process, pipe or fd of the exec.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { podConfig, startPodEnv, type PodEnv } from "../lib/pod.ts";

/** Pids of every process whose parent chain reaches `root` (not `root` itself). */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    let stat: string;
    try { stat = readFileSync(`/proc/${e}/stat`, "utf8"); } catch { continue; }
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), Number(e)]);
  }
  const out: number[] = [];
  const queue = [...(children.get(root) ?? [])];
  while (queue.length) {
    const p = queue.shift()!;
    out.push(p);
    queue.push(...(children.get(p) ?? []));
  }
  return out;
}

const fdCount = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;
const pipeFds = (pid: number) => readdirSync(`/proc/${pid}/fd`).filter((f) => {
  try { return readlinkFd(pid, f).startsWith("pipe:"); } catch { return false; }
}).length;
const readlinkFd = (pid: number, fd: string) => readlinkSync(`/proc/${pid}/fd/${fd}`);

/** Polls `f` every 100 ms for at most `ms` until it returns true. */
async function settles(f: () => boolean, ms = 5000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) if (f()) return true;
  return f();
}

describe("ExecSync drains, then detaches from a background child holding its output", () => {
  let env: PodEnv;
  let ctr = "";
  const rt = () => env.b.client.runtime;
  const exec = async (cmd: string[], timeout = 30n) => {
    const start = Date.now();
    const r = await rt().execSync({ containerId: ctr, cmd, timeout });
    return { out: Buffer.from(r.stdout).toString(), err: Buffer.from(r.stderr).toString(), code: r.exitCode, ms: Date.now() - start };
  };

  before(async () => {
    env = await startPodEnv({ images: true, toml: "[runtime]\nexec_drain_timeout = 1\n" });
    await env.b.client.image.pullImage({ image: { image: env.images!.busybox } });
    const cfg = podConfig();
    const podId = (await rt().runPodSandbox({ config: cfg })).podSandboxId;
    ctr = (await rt().createContainer({
      podSandboxId: podId, sandboxConfig: cfg as never,
      config: { metadata: { name: "drain" }, image: { image: env.images!.busybox }, command: ["sleep", "100000"] },
    })).containerId;
    await rt().startContainer({ containerId: ctr });
  });
  after(async () => { await env?.cleanup(); });

  test("the exec'd process's exit ends the call; the background child keeps running; nothing leaks", async () => {
    const berthd = env.b.proc.pid!;
    assert.equal((await exec(["true"])).code, 0, "warm-up exec");
    assert.ok(await settles(() => descendants(berthd).every((p) => !/berth-exec|runc/.test(readFileSync(`/proc/${p}/cmdline`, "utf8")))));
    const fdsBefore = fdCount(berthd);
    const pipesBefore = pipeFds(berthd);

    const r = await exec(["sh", "-c", "sleep 6543 & echo started; exit 3"]);
    assert.equal(r.code, 3, "the exec'd process's own exit code");
    assert.equal(r.out, "started\n");
    assert.ok(r.ms < 1000 + 4000, `answered after the 1 s drain, not at the 30 s timeout (took ${r.ms} ms)`);
    assert.ok(r.ms >= 900, `waited for the drain timeout while the background child held the pipe (took ${r.ms} ms)`);

    const ps = await exec(["ps", "-o", "pid,args"]);
    assert.match(ps.out, /sleep 6543/, "the background child keeps running in the container");

    // Output written by the background child within the drain window is returned.
    const late = await exec(["sh", "-c", "(sleep 0.3; echo late) & echo early"]);
    assert.deepEqual([late.out, late.code], ["early\nlate\n", 0]);
    assert.ok(late.ms < 1000 + 4000, `took ${late.ms} ms`);

    // A killed exec reports 128 + signal, also with a background child.
    const killed = await exec(["sh", "-c", "sleep 6544 & kill -9 $$"]);
    assert.equal(killed.code, 137);

    // berthd holds no extra fd or pipe, and no berth-exec or runc is left under it.
    assert.ok(await settles(() => fdCount(berthd) <= fdsBefore && pipeFds(berthd) <= pipesBefore),
      `berthd fds ${fdCount(berthd)} (before ${fdsBefore}), pipes ${pipeFds(berthd)} (before ${pipesBefore})`);
    const left = descendants(berthd).map((p) => { try { return readFileSync(`/proc/${p}/cmdline`, "utf8").replace(/\0/g, " "); } catch { return ""; } })
      .filter((c) => /berth-exec|runc/.test(c));
    assert.deepEqual(left, [], "no exec helper or runtime process is left");

    await exec(["sh", "-c", "for p in /proc/[0-9]*; do grep -q 654[34] $p/cmdline 2>/dev/null && kill ${p#/proc/}; done; true"]);
  });

  test("the timeout still applies to the exec'd process itself", async () => {
    await assert.rejects(exec(["sh", "-c", "sleep 7777"], 1n), (e) => /timed out/.test((e as Error).message));
    assert.doesNotMatch((await exec(["ps", "-o", "pid,args"])).out, /sleep 7777/);
  });
});

describe("runtime.exec_drain_timeout", () => {
  let env: PodEnv;
  let ctr = "";
  before(async () => {
    env = await startPodEnv({ images: true, toml: "[runtime]\nexec_drain_timeout = 2.5\n" });
    await env.b.client.image.pullImage({ image: { image: env.images!.busybox } });
    const cfg = podConfig();
    const podId = (await env.b.client.runtime.runPodSandbox({ config: cfg })).podSandboxId;
    ctr = (await env.b.client.runtime.createContainer({
      podSandboxId: podId, sandboxConfig: cfg as never,
      config: { metadata: { name: "drain" }, image: { image: env.images!.busybox }, command: ["sleep", "100000"] },
    })).containerId;
    await env.b.client.runtime.startContainer({ containerId: ctr });
  });
  after(async () => { await env?.cleanup(); });

  test("sets how long output is drained after the exec'd process exits", async () => {
    const start = Date.now();
    const r = await env.b.client.runtime.execSync({ containerId: ctr, cmd: ["sh", "-c", "(sleep 2; echo late) & (sleep 60; echo never) & echo early"], timeout: 30n });
    const ms = Date.now() - start;
    assert.equal(Buffer.from(r.stdout).toString(), "early\nlate\n", "output within the 2.5 s drain arrives, later output does not");
    assert.ok(ms >= 2400 && ms < 2500 + 4000, `answered after the configured drain (took ${ms} ms)`);
  });
});

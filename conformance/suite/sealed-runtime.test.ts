// berthd runs each handler's create and exec from a sealed in-memory copy of the runtime binary
// (oci-runtime/runtime/sealed-binary.ts), over the real socket: the monitor is handed
// /proc/<berthd>/fd/N, a memfd nobody can write; containers are created and exec'd from it; a
// restarted berthd (after kill -9) makes its own copy and the containers of the old one go on.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { podConfig, runSleepingPod, startPodEnv, type PodEnv } from "../lib/pod.ts";

/** The command line of the monitor of container id (the process whose arguments hold `--cid <id>`). */
function monitorArgs(id: string): string[] | undefined {
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    let args: string[];
    try { args = readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0"); } catch { continue; }
    const i = args.indexOf("--cid");
    if (i >= 0 && args[i + 1] === id) return args;
  }
  return undefined;
}

describe("sealed runtime copy in berthd", () => {
  let env: PodEnv;
  let busybox: string;
  const c = () => env.b.client.runtime;
  const podAndContainer = () => runSleepingPod(env.b.client, busybox);
  const runtimeOf = (id: string) => {
    const args = monitorArgs(id);
    assert.ok(args, `monitor of ${id}`);
    return args[args.indexOf("--runtime") + 1]!;
  };

  before(async () => {
    env = await startPodEnv({ images: true });
    busybox = env.images!.busybox;
    await env.b.client.image.pullImage({ image: { image: busybox } });
  });
  after(async () => { await env?.cleanup(); });

  test("the monitor runs runc create from /proc/<berthd>/fd/N, a sealed memfd that cannot be written; ExecSync works", async () => {
    assert.match(env.b.stderr.join(""), /"msg":"runtime runs from a sealed copy","component":"berthd","handler":"runc","binary":"[^"]*runc"/);
    const { containerId } = await podAndContainer();
    const rt = runtimeOf(containerId);
    assert.match(rt, new RegExp(`^/proc/${env.b.proc.pid}/fd/\\d+$`));
    assert.equal(readlinkSync(rt), "/memfd:berth-sealed-runtime (deleted)");
    const fh = await open(rt, "r+");
    try {
      await assert.rejects(fh.write(Buffer.from("\x7fELF"), 0, 4, 0), /EPERM/);
    } finally {
      await fh.close();
    }
    // What runc skips: a container created (not started) waits in `runc init`, whose executable is
    // berthd's copy. runc 1.1's own copy would show as "/memfd:runc_cloned:/proc/self/exe (deleted)".
    const config = podConfig();
    const { podSandboxId } = await c().runPodSandbox({ config });
    const created = await c().createContainer({
      podSandboxId, sandboxConfig: config,
      config: { metadata: { name: "created-only", attempt: 0 }, image: { image: busybox }, command: ["sleep", "3600"] },
    });
    const initPid = Number(readFileSync(join(env.b.state, "containers", created.containerId, "container.pid"), "utf8"));
    assert.ok(initPid > 0, "the created container's init pid (runc's --pid-file)");
    assert.equal(readlinkSync(`/proc/${initPid}/exe`), "/memfd:berth-sealed-runtime (deleted)");
    await c().removePodSandbox({ podSandboxId });
    const r = await c().execSync({ containerId, cmd: ["echo", "from-sealed"], timeout: 30n });
    assert.equal(Buffer.from(r.stdout).toString(), "from-sealed\n");
    assert.equal(r.exitCode, 0);
  });

  test("kill -9 of berthd: the restarted berthd seals its own copy; the old containers still exec, new ones start", async () => {
    const first = await podAndContainer();
    const before = runtimeOf(first.containerId);
    await env.b.kill9();
    await env.b.restart();
    const r = await c().execSync({ containerId: first.containerId, cmd: ["echo", "still"], timeout: 30n });
    assert.equal(Buffer.from(r.stdout).toString(), "still\n");
    const second = await podAndContainer();
    const now = runtimeOf(second.containerId);
    assert.match(now, new RegExp(`^/proc/${env.b.proc.pid}/fd/\\d+$`), `the new berthd's copy, not ${before}`);
    assert.equal(readlinkSync(now), "/memfd:berth-sealed-runtime (deleted)");
  });
});

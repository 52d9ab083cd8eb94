// ExecSync over the real socket: output, exit codes, the timeout (DEADLINE_EXCEEDED and the
// process is gone), non-running containers, and large output.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { codeOf, grpc } from "../lib/cri-client.ts";
import { podConfig, startPodEnv, type PodEnv } from "../lib/pod.ts";

describe("ExecSync", () => {
  let env: PodEnv;
  let podId = "";
  let podCfg: ReturnType<typeof podConfig>;
  let ctr = "";
  let n = 0;
  const rt = () => env.b.client.runtime;

  async function create(command: string[], pidNs?: number): Promise<string> {
    const { containerId } = await rt().createContainer({
      podSandboxId: podId, sandboxConfig: podCfg as never,
      config: {
        metadata: { name: `exec${++n}` }, image: { image: env.images!.busybox }, command,
        ...(pidNs !== undefined ? { linux: { securityContext: { namespaceOptions: { pid: pidNs } } } } : {}),
      },
    });
    return containerId;
  }
  const exec = async (cmd: string[], timeout = 30n, id = ctr) => {
    const r = await rt().execSync({ containerId: id, cmd, timeout });
    return { out: Buffer.from(r.stdout), err: Buffer.from(r.stderr), code: r.exitCode };
  };

  before(async () => {
    env = await startPodEnv({ images: true });
    await env.b.client.image.pullImage({ image: { image: env.images!.busybox } });
    podCfg = podConfig();
    podId = (await rt().runPodSandbox({ config: podCfg })).podSandboxId;
    ctr = await create(["sleep", "100000"], 1);
    await rt().startContainer({ containerId: ctr });
  });
  after(async () => { await env.cleanup(); });

  test("stdout, stderr and exit codes are the process's own", async () => {
    const r = await exec(["sh", "-c", "echo to-out; echo to-err >&2; printf partial; exit 7"]);
    assert.equal(r.out.toString(), "to-out\npartial");
    assert.equal(r.err.toString(), "to-err\n");
    assert.equal(r.code, 7);
    const ok = await exec(["id", "-u"]);
    assert.deepEqual([ok.out.toString(), ok.code], ["0\n", 0]);
    const env2 = await exec(["sh", "-c", "echo $PATH; pwd"]);
    assert.equal(env2.out.toString(), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n/\n", "the container's env and cwd");
    const killed = await exec(["sh", "-c", "kill -9 $$"]);
    assert.equal(killed.code, 137, "killed by a signal: 128 + signal");
    // The exec'd process runs in the container's namespaces.
    const ns = await exec(["sh", "-c", "echo $$; cat /proc/1/cmdline | tr '\\0' ' '"]);
    assert.equal(ns.out.toString().split("\n")[1], "sleep 100000 ");
  });

  test("the exec'd process runs as the container's user", async () => {
    await env.b.client.image.pullImage({ image: { image: env.images!.user } });
    const { containerId: id } = await rt().createContainer({
      podSandboxId: podId, sandboxConfig: podCfg as never,
      config: { metadata: { name: `exec${++n}` }, image: { image: env.images!.user }, command: ["sleep", "1000"] },
    });
    await rt().startContainer({ containerId: id });
    const r = await exec(["sh", "-c", "id -u; id -g; grep ^Groups /proc/self/status"], 10n, id);
    assert.equal(r.out.toString(), "33\n33\nGroups:\t33 5000 \n");
    await rt().removeContainer({ containerId: id });
  });

  test("a command that does not exist reports the runtime's message", async () => {
    await assert.rejects(exec(["/no/such/exe"]), (e) => /no such file|not found/i.test((e as Error).message) && (e as Error).message.includes("/no/such/exe"));
    // The container is unaffected.
    assert.equal((await exec(["true"])).code, 0);
  });

  test("the timeout answers DEADLINE_EXCEEDED and the process (and its children) are gone", async () => {
    await assert.rejects(exec(["sh", "-c", "sleep 7777; echo done"], 1n), (e) => {
      assert.equal(codeOf(e), grpc.status.DEADLINE_EXCEEDED, String(e));
      return true;
    });
    // Nothing of the exec is left in the container.
    const ps = await exec(["ps", "-o", "pid,args"]);
    assert.ok(!ps.out.toString().includes("7777"), `no process of the timed-out exec is left:\n${ps.out}`);
    // A single process is killed too.
    await assert.rejects(exec(["sleep", "8888"], 1n), (e) => codeOf(e) === grpc.status.DEADLINE_EXCEEDED);
    assert.ok(!(await exec(["ps", "-o", "pid,args"])).out.toString().includes("8888"));
    // Under the timeout the command completes normally.
    assert.equal((await exec(["sh", "-c", "sleep 0.2; echo fine"], 5n)).out.toString(), "fine\n");
  });

  test("an ExecSync the client gives up on (its deadline passes, no CRI timeout) kills the process", async () => {
    await assert.rejects(rt().execSync({ containerId: ctr, cmd: ["sleep", "6666"], timeout: 0n }, { timeoutMs: 1000 }), (e) => {
      assert.equal(codeOf(e), grpc.status.DEADLINE_EXCEEDED, String(e));
      return true;
    });
    // bounded: berthd sees the cancel at once and kills the process within a second or two
    let left = "";
    for (let i = 0; i < 50; i++) {
      left = (await exec(["ps", "-o", "pid,args"])).out.toString();
      if (!left.includes("6666")) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(!left.includes("6666"), `no process of the cancelled exec is left:\n${left}`);
  });

  test("ExecSync answers when the command exits even when a background process holds the output open", async () => {
    // berth-exec reports the exec'd process's own exit; berth drains for runtime.exec_drain_timeout
    // and then lets go of the pipes (node-features-exec.test.ts checks the details).
    const r = await exec(["sh", "-c", "sleep 6543 & echo started"], 20n);
    assert.deepEqual([r.out.toString(), r.code], ["started\n", 0]);
    assert.equal((await exec(["echo", "next"])).out.toString(), "next\n", "the container still takes execs");
    await exec(["sh", "-c", "for p in /proc/[0-9]*; do grep -q 6543 $p/cmdline 2>/dev/null && kill ${p#/proc/}; done; true"]);
  });

  test("many ExecSyncs at once each get their own output", async () => {
    const rs = await Promise.all(Array.from({ length: 8 }, (_, i) => exec(["sh", "-c", `echo n-${i}; exit ${i}`])));
    assert.deepEqual(rs.map((r) => [r.out.toString(), r.code]), rs.map((_, i) => [`n-${i}\n`, i]));
  });

  test("large output arrives whole", async () => {
    const r = await exec(["sh", "-c", "head -c 5000000 /dev/urandom > /tmp/big; md5sum /tmp/big >&2; cat /tmp/big"]);
    assert.equal(r.code, 0);
    assert.equal(r.out.length, 5_000_000);
    assert.equal(r.err.toString().split(" ")[0], createHash("md5").update(r.out).digest("hex"));
  });

  test("exec in a created or exited container is FAILED_PRECONDITION; unknown is NOT_FOUND", async () => {
    const id = await create(["sleep", "1000"]);
    await assert.rejects(exec(["true"], 5n, id), (e) => codeOf(e) === grpc.status.FAILED_PRECONDITION && (e as Error).message.includes(id));
    await rt().startContainer({ containerId: id });
    assert.equal((await exec(["true"], 5n, id)).code, 0);
    await rt().stopContainer({ containerId: id, timeout: 0n });
    await assert.rejects(exec(["true"], 5n, id), (e) => codeOf(e) === grpc.status.FAILED_PRECONDITION && (e as Error).message.includes(id));
    await rt().removeContainer({ containerId: id });
    await assert.rejects(exec(["true"], 5n, id), (e) => codeOf(e) === grpc.status.NOT_FOUND);
    await assert.rejects(rt().execSync({ containerId: ctr, cmd: [] }), (e) => codeOf(e) === grpc.status.INVALID_ARGUMENT);
  });
});

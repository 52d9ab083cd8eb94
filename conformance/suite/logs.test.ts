// Container logs over the real socket: conmon writes the CRI log format (RFC3339Nano
// timestamp, stream, P/F tag, content), splits long lines, and ReopenContainerLog after a
// rotation loses no line.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ContainerState } from "../../proto/gen/runtime/v1/api_pb.js";
import { codeOf, grpc } from "../lib/cri-client.ts";
import { podConfig, startPodEnv, type PodEnv } from "../lib/pod.ts";

const LINE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)) (stdout|stderr) ([PF]) (.*)$/;

interface LogLine { time: string; stream: string; tag: string; content: string }

function parseLog(text: string): LogLine[] {
  if (!text) return [];
  assert.ok(text.endsWith("\n"), "every log record ends with a newline");
  return text.slice(0, -1).split("\n").map((l) => {
    const m = LINE.exec(l);
    assert.ok(m, `log line in CRI format: ${JSON.stringify(l.slice(0, 200))}`);
    assert.ok(!Number.isNaN(Date.parse(m[1]!)), `timestamp ${m[1]} parses`);
    return { time: m[1]!, stream: m[2]!, tag: m[3]!, content: m[4]! };
  });
}

/** Joins P parts with the following F part, per stream: the lines the container wrote. */
function joinPartials(lines: LogLine[]): { stream: string; content: string }[] {
  const out: { stream: string; content: string }[] = [];
  const pending: Record<string, string> = {};
  for (const l of lines) {
    pending[l.stream] = (pending[l.stream] ?? "") + l.content;
    if (l.tag === "F") { out.push({ stream: l.stream, content: pending[l.stream]! }); pending[l.stream] = ""; }
  }
  for (const [stream, content] of Object.entries(pending)) if (content) out.push({ stream, content });
  return out;
}

describe("container logs", () => {
  let env: PodEnv;
  let logDir = "";
  let podId = "";
  let podCfg: ReturnType<typeof podConfig>;
  let n = 0;
  const rt = () => env.b.client.runtime;

  before(async () => {
    env = await startPodEnv({ images: true });
    await env.b.client.image.pullImage({ image: { image: env.images!.busybox } });
    logDir = await mkdtemp(join(tmpdir(), "berth-logs-"));
    podCfg = podConfig({ logDirectory: logDir });
    podId = (await rt().runPodSandbox({ config: podCfg })).podSandboxId;
  });
  after(async () => {
    await env.cleanup();
    await rm(logDir, { recursive: true, force: true });
  });

  async function run(script: string): Promise<{ id: string; logPath: string }> {
    const name = `log${++n}`;
    const { containerId: id } = await rt().createContainer({
      podSandboxId: podId, sandboxConfig: podCfg as never,
      config: { metadata: { name }, image: { image: env.images!.busybox }, command: ["sh", "-c", script], logPath: `${name}/0.log` },
    });
    await rt().startContainer({ containerId: id });
    return { id, logPath: join(logDir, name, "0.log") };
  }
  async function waitExited(id: string) {
    for (let i = 0; i < 200; i++) {
      const st = (await rt().containerStatus({ containerId: id })).status!;
      if (st.state === ContainerState.CONTAINER_EXITED) return st;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail(`container ${id} did not exit`);
  }
  async function waitFor(cond: () => Promise<boolean>, what: string, ms = 15_000) {
    const end = Date.now() + ms;
    while (!(await cond())) {
      if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  test("stdout and stderr lines in the CRI format, the status names the log path", async () => {
    const { id, logPath } = await run("echo out-1; echo err-1 >&2; echo; echo 'out 2  spaced'");
    await waitExited(id);
    assert.equal((await rt().containerStatus({ containerId: id })).status!.logPath, logPath);
    const lines = parseLog(await readFile(logPath, "utf8"));
    const out = lines.filter((l) => l.stream === "stdout").map((l) => [l.tag, l.content]);
    const err = lines.filter((l) => l.stream === "stderr").map((l) => [l.tag, l.content]);
    assert.deepEqual(out, [["F", "out-1"], ["F", ""], ["F", "out 2  spaced"]]);
    assert.deepEqual(err, [["F", "err-1"]]);
    const times = lines.map((l) => Date.parse(l.time));
    assert.ok(times.every((t) => Math.abs(t - Date.now()) < 5 * 60_000), "timestamps are now");
    await rt().removeContainer({ containerId: id });
  });

  test("a last line without a trailing newline is logged", async () => {
    const { id, logPath } = await run("echo first; printf no-newline");
    await waitExited(id);
    const lines = parseLog(await readFile(logPath, "utf8"));
    assert.deepEqual(joinPartials(lines).map((l) => l.content), ["first", "no-newline"]);
    assert.equal(lines[0]!.tag, "F");
    assert.equal(lines.at(-1)!.content, "no-newline");
    await rt().removeContainer({ containerId: id });
  });

  test("a line longer than conmon's buffer is split into P parts and an F part", async () => {
    const { id, logPath } = await run("head -c 40000 /dev/zero | tr '\\0' x; echo; echo after");
    await waitExited(id);
    const lines = parseLog(await readFile(logPath, "utf8"));
    assert.ok(lines.filter((l) => l.tag === "P").length >= 1, `split into partial records: ${lines.map((l) => `${l.tag}${l.content.length}`).join(",")}`);
    assert.deepEqual(joinPartials(lines).map((l) => l.content.length === 40000 ? "x*40000" : l.content), ["x*40000", "after"]);
    assert.ok(joinPartials(lines)[0]!.content.split("").every((c) => c === "x"));
    await rt().removeContainer({ containerId: id });
  });

  test("ReopenContainerLog after a rotation loses no line", async () => {
    const { id, logPath } = await run("i=0; while [ $i -lt 100000 ]; do echo $i; i=$((i+1)); [ $((i % 20)) -eq 0 ] && usleep 1000; done; sleep 1000");
    const numbers = async (p: string) => existsSync(p) ? joinPartials(parseLog(await readFile(p, "utf8"))).map((l) => Number(l.content)) : [];
    await waitFor(async () => (await numbers(logPath)).length > 200, "the first lines");
    const rotated = `${logPath}.1`;
    await rename(logPath, rotated);
    await new Promise((r) => setTimeout(r, 100)); // lines keep going to the renamed file
    await rt().reopenContainerLog({ containerId: id });
    assert.ok(existsSync(logPath), "the new log file exists when ReopenContainerLog returns");
    await waitFor(async () => (await numbers(logPath)).length > 200, "lines in the new file");
    await rt().stopContainer({ containerId: id, timeout: 0n });
    const old = await numbers(rotated);
    const fresh = await numbers(logPath);
    assert.ok(old.length > 200 && fresh.length > 200);
    const all = [...old, ...fresh];
    assert.deepEqual(all, all.map((_, i) => i), `every number exactly once and in order (old file ${old.length}, new file ${fresh.length})`);
    await rt().removeContainer({ containerId: id });
  });

  test("ReopenContainerLog on a stopped container is FAILED_PRECONDITION; unknown is NOT_FOUND", async () => {
    const { id } = await run("sleep 1000");
    await rt().stopContainer({ containerId: id, timeout: 0n });
    await assert.rejects(rt().reopenContainerLog({ containerId: id }), (e) => codeOf(e) === grpc.status.FAILED_PRECONDITION && (e as Error).message.includes(id));
    await assert.rejects(rt().reopenContainerLog({ containerId: "a".repeat(64) }), (e) => codeOf(e) === grpc.status.NOT_FOUND);
    await rt().removeContainer({ containerId: id });
  });

  test("ReopenContainerLog works for a container of a pod without a log directory", async () => {
    const cfg = podConfig();
    const pod = (await rt().runPodSandbox({ config: cfg })).podSandboxId;
    const { containerId: id } = await rt().createContainer({
      podSandboxId: pod, sandboxConfig: cfg as never,
      config: { metadata: { name: `nolog${++n}` }, image: { image: env.images!.busybox }, command: ["sleep", "1000"] },
    });
    await rt().startContainer({ containerId: id });
    assert.equal((await rt().containerStatus({ containerId: id })).status!.logPath, "");
    await rt().reopenContainerLog({ containerId: id });
    await rt().removePodSandbox({ podSandboxId: pod });
  });
});

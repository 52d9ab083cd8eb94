// Containers across berthd restarts: kill -9 with running containers, exits while berthd is
// down, and kill -9 in the middle of a create.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { ContainerState } from "../../proto/gen/runtime/v1/api_pb.js";
import { podConfig, startPodEnv, type PodEnv } from "../lib/pod.ts";

const alive = async (pid: number) => existsSync(`/proc/${pid}`) && !(await readFile(`/proc/${pid}/stat`, "utf8").catch(() => ") Z")).includes(") Z");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("containers across berthd restarts", () => {
  let env: PodEnv;
  let n = 0;
  const rt = () => env.b.client.runtime;

  before(async () => {
    env = await startPodEnv({ images: true });
    await env.b.client.image.pullImage({ image: { image: env.images!.busybox } });
  });
  after(async () => { await env.cleanup(); });

  async function pod() {
    const cfg = podConfig();
    return { cfg, id: (await rt().runPodSandbox({ config: cfg })).podSandboxId };
  }
  function createReq(p: { cfg: unknown; id: string }, command: string[], name = `r${++n}`, extra: Record<string, unknown> = {}) {
    return { podSandboxId: p.id, sandboxConfig: p.cfg as never, config: { metadata: { name }, image: { image: env.images!.busybox }, command, ...extra } };
  }
  async function run(p: { cfg: unknown; id: string }, command: string[]) {
    const { containerId } = await rt().createContainer(createReq(p, command));
    await rt().startContainer({ containerId });
    return containerId;
  }
  const verbose = async (id: string) => {
    const r = await rt().containerStatus({ containerId: id, verbose: true });
    return { status: r.status!, info: JSON.parse(r.info["info"]!) as { pid: number; conmonPid: number } };
  };
  /** What berthd's containers could leave behind under its dirs. */
  async function leftovers() {
    const mounts = (await readFile("/proc/self/mountinfo", "utf8")).split("\n").filter((l) => l.includes(`${env.b.state}/containers/`)).length;
    const conmons = spawnSync("pgrep", ["-f", `conmon.*${env.b.state}/exits`], { encoding: "utf8" }).stdout.split("\n").filter(Boolean).length;
    const runc = (JSON.parse(execFileSync("runc", ["--root", `${env.b.state}/runc`, "list", "--format", "json"], { encoding: "utf8" }) || "null") as unknown[] | null ?? []).length;
    const bundles = existsSync(`${env.b.state}/containers`) ? readdirSync(`${env.b.state}/containers`).length : 0;
    const exits = existsSync(`${env.b.state}/exits`) ? readdirSync(`${env.b.state}/exits`).length : 0;
    return { mounts, conmons, runc, bundles, exits };
  }

  test("kill -9 with 10 running containers: after a restart all are RUNNING with their pids, stoppable and removable", async () => {
    const pods = [await pod(), await pod(), await pod()];
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(await run(pods[i % 3]!, ["sleep", "100000"]));
    const pids = new Map<string, number>();
    for (const id of ids) pids.set(id, (await verbose(id)).info.pid);
    await env.b.kill9();
    for (const [id, pid] of pids) assert.ok(await alive(pid), `container ${id} keeps running while berthd is down`);
    await env.b.restart();
    const listed = (await rt().listContainers({})).containers;
    for (const id of ids) {
      assert.equal(listed.find((c) => c.id === id)?.state, ContainerState.CONTAINER_RUNNING, `container ${id} is listed as running`);
      const v = await verbose(id);
      assert.equal(v.status.state, ContainerState.CONTAINER_RUNNING);
      assert.equal(v.info.pid, pids.get(id), "the same pid");
    }
    // Exec still reaches them; stop and remove work.
    const r = await rt().execSync({ containerId: ids[0]!, cmd: ["echo", "still here"], timeout: 10n });
    assert.equal(Buffer.from(r.stdout).toString(), "still here\n");
    for (const id of ids.slice(0, 5)) {
      await rt().stopContainer({ containerId: id, timeout: 0n });
      const st = (await verbose(id)).status;
      assert.equal(st.state, ContainerState.CONTAINER_EXITED);
      assert.equal(st.exitCode, 137);
      assert.ok(!(await alive(pids.get(id)!)));
    }
    for (const id of ids) await rt().removeContainer({ containerId: id });
    for (const [id, pid] of pids) assert.ok(!(await alive(pid)), `container ${id} is gone`);
    for (const p of pods) await rt().removePodSandbox({ podSandboxId: p.id });
    assert.deepEqual(await leftovers(), { mounts: 0, conmons: 0, runc: 0, bundles: 0, exits: 0 });
  });

  test("a container that exits while berthd is down reports its exit code and time", async () => {
    const p = await pod();
    const id = await run(p, ["sh", "-c", "sleep 2; exit 5"]);
    const started = (await verbose(id)).status.startedAt;
    await env.b.stop(); // a clean stop leaves containers running, too
    await sleep(4000);
    const downSince = BigInt(Date.now()) * 1_000_000n;
    await env.b.restart();
    const st = (await verbose(id)).status;
    assert.equal(st.state, ContainerState.CONTAINER_EXITED);
    assert.equal(st.exitCode, 5);
    assert.equal(st.reason, "Error");
    assert.ok(st.finishedAt > started, `finished ${st.finishedAt} after started ${started}`);
    assert.ok(st.finishedAt < downSince, `finished ${st.finishedAt} while berthd was down (before ${downSince})`);
    // The same after one more restart (the record was persisted).
    await env.b.kill9();
    await env.b.restart();
    const again = (await verbose(id)).status;
    assert.deepEqual([again.state, again.exitCode, again.finishedAt], [ContainerState.CONTAINER_EXITED, 5, st.finishedAt]);
    await rt().removeContainer({ containerId: id });
    await rt().removePodSandbox({ podSandboxId: p.id });
  });

  test("a created container, logging and a lost monitor across kill -9", async () => {
    const logDir = `${env.b.dir}/pod-logs`;
    const cfg = podConfig({ logDirectory: logDir });
    const p = { cfg, id: (await rt().runPodSandbox({ config: cfg })).podSandboxId };
    const created = (await rt().createContainer(createReq(p, ["sleep", "100000"]))).containerId;
    const logger = (await rt().createContainer(createReq(p, ["sh", "-c", "i=0; while true; do echo line-$i; i=$((i+1)); sleep 0.05; done"], "logger", { logPath: "logger.log" }))).containerId;
    await rt().startContainer({ containerId: logger });
    const orphan = await run(p, ["sleep", "100000"]);
    const orphanInfo = (await verbose(orphan)).info;
    await env.b.kill9();
    const linesAtKill = (await readFile(`${logDir}/logger.log`, "utf8")).split("\n").length;
    // The monitor of one container dies while berthd is down: nothing would reap or log it.
    process.kill(orphanInfo.conmonPid, "SIGKILL");
    await sleep(1000);
    await env.b.restart();
    assert.ok((await readFile(`${logDir}/logger.log`, "utf8")).split("\n").length > linesAtKill, "conmon kept logging while berthd was down");
    assert.equal((await verbose(created)).status.state, ContainerState.CONTAINER_CREATED);
    await rt().startContainer({ containerId: created });
    assert.equal((await verbose(created)).status.state, ContainerState.CONTAINER_RUNNING);
    assert.equal(Buffer.from((await rt().execSync({ containerId: created, cmd: ["echo", "ok"], timeout: 10n })).stdout).toString(), "ok\n");
    const lost = (await verbose(orphan)).status;
    assert.equal(lost.state, ContainerState.CONTAINER_EXITED, "a container without its monitor is reported exited");
    assert.match(lost.message, /conmon|monitor/);
    assert.ok(!(await alive(orphanInfo.pid)), "and killed");
    await rt().reopenContainerLog({ containerId: logger });
    for (const id of [created, logger, orphan]) await rt().removeContainer({ containerId: id });
    await rt().removePodSandbox({ podSandboxId: p.id });
    assert.deepEqual(await leftovers(), { mounts: 0, conmons: 0, runc: 0, bundles: 0, exits: 0 });
  });

  test("kill -9 during start, stop and remove: the container's state after the restart is the truth", async () => {
    const p = await pod();
    for (const delay of [0, 5, 15, 40]) {
      // start
      const id = (await rt().createContainer(createReq(p, ["sleep", "100000"]))).containerId;
      const call = rt().startContainer({ containerId: id }).then(() => true, () => false);
      await sleep(delay);
      await env.b.kill9();
      await call;
      await env.b.restart();
      const st = (await verbose(id)).status;
      const runcState = JSON.parse(execFileSync("runc", ["--root", `${env.b.state}/runc`, "state", id], { encoding: "utf8" })).status as string;
      const want = runcState === "running" ? ContainerState.CONTAINER_RUNNING : ContainerState.CONTAINER_CREATED;
      assert.equal(st.state, want, `after a kill ${delay} ms into start, runc says ${runcState}`);
      if (st.state === ContainerState.CONTAINER_CREATED) await rt().startContainer({ containerId: id });
      assert.equal(Buffer.from((await rt().execSync({ containerId: id, cmd: ["echo", "up"], timeout: 10n })).stdout).toString(), "up\n");
      // stop
      const stop = rt().stopContainer({ containerId: id, timeout: 0n }).catch(() => {});
      await sleep(delay);
      await env.b.kill9();
      await stop;
      await env.b.restart();
      await rt().stopContainer({ containerId: id, timeout: 0n });
      assert.equal((await verbose(id)).status.state, ContainerState.CONTAINER_EXITED);
      // remove
      const remove = rt().removeContainer({ containerId: id }).catch(() => {});
      await sleep(delay);
      await env.b.kill9();
      await remove;
      await env.b.restart();
      await rt().removeContainer({ containerId: id });
      assert.equal((await rt().listContainers({})).containers.filter((c) => c.id === id).length, 0);
      assert.deepEqual(await leftovers(), { mounts: 0, conmons: 0, runc: 0 /* the pod (pid CONTAINER) has no infra process */, bundles: 0, exits: 0 }, `after kills ${delay} ms into start/stop/remove`);
    }
    await rt().removePodSandbox({ podSandboxId: p.id });
  });

  test("kill -9 in the middle of a create leaves a consistent state", async (t) => {
    const p = await pod();
    const outcomes: string[] = [];
    // Kill points: fixed delays, and the moments each resource of the create appears.
    const bundles = () => existsSync(`${env.b.state}/containers`) ? readdirSync(`${env.b.state}/containers`) : [];
    const inBundle = (file: string) => () => bundles().some((b) => existsSync(`${env.b.state}/containers/${b}/${file}`));
    const points: [string, () => boolean][] = [
      ["0ms", () => true],
      ["record", () => existsSync(`${env.b.root}/containers`) && readdirSync(`${env.b.root}/containers`).some((f) => f.endsWith(".json"))],
      ["bundle", () => bundles().length > 0],
      ["config.json", inBundle("config.json")],
      ["conmon.pid", inBundle("conmon.pid")],
      ["container.pid", inBundle("container.pid")],
      ["record created", () => existsSync(`${env.b.root}/containers`) && readdirSync(`${env.b.root}/containers`).filter((f) => f.endsWith(".json"))
        .some((f) => { try { return JSON.parse(readFileSync(`${env.b.root}/containers/${f}`, "utf8")).state === "created"; } catch { return false; } })],
    ];
    for (const [label, ready] of points) {
      const name = `mid-${label.replace(/\W/g, "")}`;
      const call = rt().createContainer(createReq(p, ["sleep", "100000"], name)).then((r) => r.containerId, () => "");
      for (let i = 0; i < 5000 && !ready(); i++) await sleep(1);
      await env.b.kill9();
      const delay = label;
      const answered = await call;
      await env.b.restart();
      const found = (await rt().listContainers({ filter: { podSandboxId: p.id } })).containers.filter((c) => c.metadata?.name === name);
      assert.ok(found.length <= 1);
      if (answered) assert.equal(found[0]?.id, answered, "a create that answered is kept");
      if (found.length) {
        // Listed: it must be usable.
        const id = found[0]!.id;
        assert.equal(found[0]!.state, ContainerState.CONTAINER_CREATED);
        await rt().startContainer({ containerId: id });
        const r = await rt().execSync({ containerId: id, cmd: ["true"], timeout: 10n });
        assert.equal(r.exitCode, 0);
        await rt().removeContainer({ containerId: id });
        outcomes.push(`${delay}:kept`);
      } else {
        outcomes.push(`${delay}:gone`);
        // Gone: the name is free again.
        const { containerId } = await rt().createContainer(createReq(p, ["true"], name));
        await rt().removeContainer({ containerId });
      }
      assert.deepEqual(await leftovers(), { mounts: 0, conmons: 0, runc: 0 /* the pod (pid CONTAINER) has no infra process */, bundles: 0, exits: 0 }, `after kill at ${delay} ms (${outcomes.join(" ")})`);
    }
    t.diagnostic(`outcomes by kill delay: ${outcomes.join(" ")}`);
    await rt().removePodSandbox({ podSandboxId: p.id });
    assert.deepEqual(await leftovers(), { mounts: 0, conmons: 0, runc: 0, bundles: 0, exits: 0 });
  });
});

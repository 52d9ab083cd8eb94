// containerd's CRI plugin as a benchmark target: /usr/bin/containerd with a generated
// config (its own root, state, socket, runc root, CNI conf dir, hosts.toml mirrors,
// sandbox_image from the loopback registry, overlayfs, cgroupfs).
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync, openSync, closeSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import { connect } from "../lib/cri-client.ts";
import { createTestNetwork } from "../lib/test-network.ts";
import { deleteLeakedNetns, findProcesses, killAll, removeCgroupTree, unmountUnder } from "./host.ts";
import { removeAllPods } from "./pods.ts";
import type { BenchEnv, Instance, Target } from "./target.ts";

/** The containerd binary (BERTH_BENCH_CONTAINERD overrides it). */
export const CONTAINERD = process.env["BERTH_BENCH_CONTAINERD"] || "/usr/bin/containerd";
export const SHIM = "containerd-shim-runc-v2";
const run = promisify(execFile);

export interface ContainerdConfigOptions {
  root: string;
  state: string;
  socket: string;
  runcRoot: string;
  sandboxImage: string;
  cniConfDir: string;
  hostsDir: string;
}

const q = (s: string) => JSON.stringify(s);

export function containerdConfig(o: ContainerdConfigOptions): string {
  const cri = `plugins."io.containerd.grpc.v1.cri"`;
  return `version = 2
root = ${q(o.root)}
state = ${q(o.state)}
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = ${q(o.socket)}

[ttrpc]
  address = ${q(o.socket + ".ttrpc")}

[debug]
  level = "warn"

[${cri}]
  sandbox_image = ${q(o.sandboxImage)}
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  restrict_oom_score_adj = true

[${cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[${cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[${cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
  Root = ${q(o.runcRoot)}

[${cri}.cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = ${q(o.cniConfDir)}

[${cri}.registry]
  config_path = ${q(o.hostsDir)}
`;
}

/** Waits until the CRI plugin answers Status with RuntimeReady and NetworkReady. */
async function waitReady(socket: string, proc: ChildProcess, logPath: string, timeoutMs = 30_000): Promise<void> {
  const client = connect(socket);
  const start = Date.now();
  try {
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`containerd exited (${proc.exitCode ?? proc.signalCode}): ${readFileSync(logPath, "utf8").slice(-2000)}`);
      if (existsSync(socket)) {
        const ready = await client.runtime.status({}, { timeoutMs: 2000 }).then(
          (s) => (s.status?.conditions ?? []).every((c) => c.status),
          () => false,
        );
        if (ready) return;
      }
      if (Date.now() - start > timeoutMs) throw new Error(`containerd on ${socket} not ready within ${timeoutMs} ms: ${readFileSync(logPath, "utf8").slice(-2000)}`);
      await sleep(100);
    }
  } finally {
    client.close();
  }
}

/** Deletes every container runc knows under `root` (leftovers after a failed teardown). */
export async function deleteRuncContainers(root: string): Promise<void> {
  if (!existsSync(root)) return;
  const ids = await run("runc", ["--root", root, "list", "-q"]).then((r) => r.stdout.split("\n").filter(Boolean), () => []);
  for (const id of ids) await run("runc", ["--root", root, "delete", "-f", id]).catch(() => {});
}

export async function startContainerd(env: BenchEnv, cniConfDir: string, podAddressPrefix: string): Promise<Instance> {
  const startedAt = Date.now() - 1000;
  const dir = await mkdtemp(join(env.workDir, "ctd-"));
  const o: ContainerdConfigOptions = {
    root: join(dir, "root"), state: join(dir, "state"), socket: join(dir, "containerd.sock"), runcRoot: join(dir, "state", "runc"),
    sandboxImage: env.images.pause, cniConfDir, hostsDir: env.hostsDir,
  };
  const configPath = join(dir, "config.toml");
  await writeFile(configPath, containerdConfig(o));
  const logPath = join(dir, "containerd.log");
  const logFd = openSync(logPath, "a");
  const proc = spawn(CONTAINERD, ["--config", configPath], { stdio: ["ignore", logFd, logFd] });
  closeSync(logFd);
  const helperPids = () => findProcesses(SHIM, o.socket);
  const client = connect(o.socket);
  const stop = async () => {
    await removeAllPods(client).catch(() => []);
    client.close();
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = once(proc, "exit");
      proc.kill("SIGTERM");
      if (await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)]) === false) {
        proc.kill("SIGKILL");
        await exited;
      }
    }
    await deleteRuncContainers(o.runcRoot);
    killAll(helperPids());
    await deleteLeakedNetns("cni-", startedAt, podAddressPrefix);
    await sleep(100);
    unmountUnder(dir);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitReady(o.socket, proc, logPath);
  } catch (err) {
    await stop();
    throw err;
  }
  const logTail = () => { try { return readFileSync(logPath, "utf8").slice(-3000); } catch { return ""; } };
  return { client, daemonPids: () => [proc.pid!], helperPids, logTail, stop };
}

export async function containerdTarget(env: BenchEnv): Promise<Target> {
  const net = await createTestNetwork("berth-npmbench-cni-");
  const cgroupParent = `berth-npmbench-ctd-${process.pid}`;
  const logDir = join(net.dir, "logs");
  return {
    name: "containerd",
    helperName: SHIM,
    cgroupParent: `/${cgroupParent}`,
    logDir,
    prepull: [env.images.pause, env.images.busybox],
    start: () => startContainerd(env, net.confDir, net.subnet.replace(/0\/24$/, "")),
    async close() {
      removeCgroupTree(cgroupParent);
      await net.cleanup();
    },
  };
}

// Starts Debian's containerd (1.6) with its CRI plugin on a root, state and
// socket of its own, with the same registry mirrors and CNI config as berth
// gets, so critest results can be compared side by side.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";

export interface ContainerdOptions {
  dir: string;
  /** hosts.toml directory ([registry] config_path). */
  certsDir: string;
  cniConfDir: string;
  cniBinDir?: string;
}

export interface Containerd {
  readonly socket: string;
  readonly output: string[];
  stop(): Promise<void>;
}

export function containerdConfig(o: ContainerdOptions, socket: string): string {
  return [
    "version = 2",
    `root = "${join(o.dir, "root")}"`,
    `state = "${join(o.dir, "state")}"`,
    "[grpc]",
    `  address = "${socket}"`,
    "[ttrpc]",
    `  address = "${socket}.ttrpc"`,
    `[plugins."io.containerd.grpc.v1.cri"]`,
    // The stand-in pause image (hack/critest-images) behind the registry.k8s.io mirror.
    `  sandbox_image = "registry.k8s.io/pause:3.6"`,
    // This machine refuses lowering oom_score_adj below berthd's own value; containerd must clamp too.
    "  restrict_oom_score_adj = true",
    `  [plugins."io.containerd.grpc.v1.cri".cni]`,
    `    bin_dir = "${o.cniBinDir ?? "/usr/lib/cni"}"`,
    `    conf_dir = "${o.cniConfDir}"`,
    `  [plugins."io.containerd.grpc.v1.cri".registry]`,
    `    config_path = "${o.certsDir}"`,
    "",
  ].join("\n");
}

async function waitForSocket(path: string, proc: ChildProcess, output: string[], timeoutMs = 30_000): Promise<void> {
  const start = Date.now();
  while (!existsSync(path) || !output.join("").includes("containerd successfully booted")) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`containerd exited (${proc.exitCode ?? proc.signalCode}): ${output.join("").slice(-2000)}`);
    if (Date.now() - start > timeoutMs) throw new Error(`containerd did not serve ${path} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startContainerd(o: ContainerdOptions): Promise<Containerd> {
  await mkdir(o.dir, { recursive: true });
  const socket = join(o.dir, "containerd.sock");
  const config = join(o.dir, "config.toml");
  await writeFile(config, containerdConfig(o, socket));
  const output: string[] = [];
  const proc = spawn("containerd", ["--config", config], { stdio: ["ignore", "pipe", "pipe"] });
  proc.stdout!.setEncoding("utf8").on("data", (d: string) => output.push(d));
  proc.stderr!.setEncoding("utf8").on("data", (d: string) => output.push(d));
  await new Promise<void>((resolve, reject) => { proc.once("spawn", resolve); proc.once("error", reject); });
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = once(proc, "exit");
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  };
  try {
    await waitForSocket(socket, proc, output);
  } catch (err) {
    await stop();
    throw err;
  }
  return { socket, output, stop };
}

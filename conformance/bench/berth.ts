// berth as a benchmark target: bin/berthd with a fresh root and state per instance, the
// benchmark's CNI network and hosts.toml mirrors; its helpers are the monitor processes (conmon or
// berth-monitor, per runtime.monitor; BERTH_TEST_MONITOR picks one) whose command line names the
// instance's directory.
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { startBerthd } from "../lib/berthd.ts";
import { defaultConfig } from "../../cri-server/config.ts";
import { createTestNetwork } from "../lib/test-network.ts";
import { deleteRuncContainers } from "./containerd.ts";
import { childrenNamed, cmdline, findProcesses, killAll, removeCgroupTree, unmountUnder } from "./host.ts";
import { removeAllPods } from "./pods.ts";
import type { BenchEnv, Instance, Target } from "./target.ts";

const q = (s: string) => JSON.stringify(s);

export function berthToml(o: { hostsDir: string; cniConfDir: string }): string {
  return `
[registry]
config_path = ${q(o.hostsDir)}

[cni]
conf_dir = ${q(o.cniConfDir)}
bin_dirs = ["/usr/lib/cni"]
`;
}

/** From berthd's command line: whether it runs the compiled dist/ or the sources, and its V8 flags. */
export function describeBerthd(argv: readonly string[]): string {
  const main = argv.findIndex((a) => /cri-server\/main\.[jt]s$/.test(a));
  if (main < 0) return "unknown";
  const flags = argv.slice(1, main).filter((a) => !a.startsWith("--disable-warning"));
  const form = !argv[main]!.endsWith(".js") ? "TypeScript sources (dist/ missing or stale: npm run build)"
    : argv[main]!.includes("/.bench/berthd-") ? "compiled snapshot" : "dist/";
  return `${form}${flags.length ? `, ${flags.join(" ")}` : ", V8 defaults"}`;
}

export async function startBerth(env: BenchEnv, cniConfDir: string): Promise<Instance> {
  const dir = await mkdtemp(join(env.workDir, "berth-"));
  const b = await startBerthd({ dir, toml: berthToml({ hostsDir: env.hostsDir, cniConfDir }) }).catch(async (err: unknown) => {
    // startBerthd leaves a berthd that never became ready running: end it here.
    killAll(findProcesses("node", dir));
    unmountUnder(dir);
    await rm(dir, { recursive: true, force: true });
    throw err;
  });
  const helperPids = () => [...findProcesses("conmon", dir), ...findProcesses("berth-monitor", dir)];
  return {
    client: b.client,
    note: describeBerthd(cmdline(b.proc.pid!)),
    daemonPids: () => [b.proc.pid!, ...childrenNamed(b.proc.pid!, "berth-spawn")],
    helperPids,
    logTail: () => b.stderr.join("").slice(-3000),
    async stop() {
      await removeAllPods(b.client).catch(() => []);
      const stopped = b.stop();
      if (await Promise.race([stopped.then(() => true), sleep(15_000).then(() => false)]) === false) await b.kill9();
      await deleteRuncContainers(join(b.state, "runc"));
      killAll(helperPids());
      await sleep(100);
      unmountUnder(dir);
      await b.cleanup();
    },
  };
}

export async function berthTarget(env: BenchEnv): Promise<Target> {
  const net = await createTestNetwork("berth-npmbench-cni-");
  const cgroupParent = `berth-npmbench-berth-${process.pid}`;
  return {
    name: "berth",
    helperName: (process.env.BERTH_TEST_MONITOR ?? defaultConfig().runtime.monitor) === "berth" ? "berth-monitor" : "conmon",
    cgroupParent: `/${cgroupParent}`,
    logDir: join(net.dir, "logs"),
    prepull: [env.images.busybox],
    start: () => startBerth(env, net.confDir),
    async close() {
      removeCgroupTree(cgroupParent);
      await net.cleanup();
    },
  };
}

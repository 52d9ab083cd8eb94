// Runs critest (kubernetes-sigs/cri-tools) against a berthd of its own:
// loopback registry with stand-in images (hack/critest-images), hosts.toml
// mirrors for the upstream registries, a bridge CNI network, fresh root, state
// and socket. Prints the passed and failed specs from critest's JUnit report.
//
//   conformance/critest/run [--keep] [--containerd] [--junit-out FILE] [critest flags, e.g. --ginkgo.focus "Runtime info"]
//
// --containerd runs the same critest against Debian's containerd CRI plugin
// instead (same images, mirrors and CNI), as a baseline for berth's results.
//
// Exits 0 when every spec that ran passed (or critest is not on PATH), 1 when
// any failed, 2 when the environment could not be set up.
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { chmod, copyFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startBerthd } from "../lib/berthd.ts";
import { startContainerd } from "./containerd.ts";
import { writeTestConflist, randomBridgeName, randomSubnet24 } from "../lib/test-conflist.ts";
import { buildStandInImages, pushStandInImages } from "../../hack/critest-images/build.ts";
import { UPSTREAM_HOSTS, SKIPPED } from "../../hack/critest-images/images.ts";
import { startRegistry, type RunningRegistry } from "../../hack/registry/registry.ts";
import { writeMirrorConfig } from "./mirrors.ts";
import { formatReport, parseJunit, summarize } from "./junit.ts";
import { deleteLink, deleteRuncContainers, detachMounts, removeAllPods, sweepNat } from "./cleanup.ts";
import { findExecutable } from "../../oci-runtime/foundation/executable.ts";

const log = (msg: string) => process.stderr.write(`critest-runner: ${msg}\n`);

export interface RunnerArgs {
  keep: boolean;
  /** Run against containerd instead of berthd. */
  containerd: boolean;
  /** Where to copy critest's JUnit report (for CI to archive). */
  junitOut?: string;
  critestArgs: string[];
}

/** Splits the runner's own flags from those passed through to critest. */
export function parseArgs(argv: readonly string[]): RunnerArgs {
  const critestArgs: string[] = [];
  let keep = false;
  let containerd = false;
  let junitOut: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--keep") keep = true;
    else if (a === "--containerd") containerd = true;
    else if (a === "--junit-out") junitOut = argv[++i];
    else if (a.startsWith("--junit-out=")) junitOut = a.slice("--junit-out=".length);
    else critestArgs.push(a);
  }
  return { keep, containerd, critestArgs, ...(junitOut ? { junitOut } : {}) };
}

/** critest's command line: endpoints, verbose ginkgo, a JUnit report, then the caller's flags. */
export function critestCommand(socket: string, junitPath: string, passThrough: readonly string[], color: boolean): string[] {
  return [
    `--runtime-endpoint=unix://${socket}`,
    `--image-endpoint=unix://${socket}`,
    "--ginkgo.v",
    `--ginkgo.junit-report=${junitPath}`,
    ...(color ? [] : ["--ginkgo.no-color"]),
    ...passThrough,
  ];
}

/** The CRI endpoint under test. */
interface Target {
  readonly name: string;
  readonly socket: string;
  /** A runc root only this run's runtime uses, swept after it stopped. */
  readonly runcRoot?: string;
  log(): string;
  stop(): Promise<void>;
}

async function startBerthTarget(dir: string, certsDir: string, confDir: string): Promise<Target> {
  await mkdir(dir);
  const b = await startBerthd({
    dir,
    toml: ["[registry]", `config_path = "${certsDir}"`, "[cni]", `conf_dir = "${confDir}"`].join("\n"),
  });
  return {
    name: `berthd (config ${b.configPath})`, socket: b.socket, runcRoot: join(b.state, "runc"),
    log: () => b.stderr.join(""), stop: async () => { await b.stop(); },
  };
}

/** Processes whose command line contains `needle` (containerd shims naming our socket). */
function pidsWithArg(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").includes(needle)) pids.push(Number(entry));
    } catch { /* exited */ }
  }
  return pids;
}

async function startContainerdTarget(dir: string, certsDir: string, confDir: string): Promise<Target> {
  const c = await startContainerd({ dir, certsDir, cniConfDir: confDir });
  return {
    name: `containerd ${execFileSync("containerd", ["--version"], { encoding: "utf8" }).trim().split(" ")[2] ?? ""}`,
    socket: c.socket,
    log: () => c.output.join(""),
    async stop() {
      await c.stop();
      // Shims outlive containerd by design; end the ones this containerd started.
      for (const pid of pidsWithArg(c.socket)) { try { process.kill(pid, "SIGKILL"); } catch { /* gone */ } }
    },
  };
}

/** Ctrl-C / SIGTERM: forwarded to critest while it runs; otherwise the run stops before critest and cleans up. */
const interrupt = { requested: false, child: undefined as ChildProcess | undefined };
function onSignal(sig: NodeJS.Signals): void {
  interrupt.requested = true;
  if (interrupt.child) interrupt.child.kill(sig);
  else log(`${sig}: cleaning up`);
}

async function runCritest(bin: string, args: string[], dir: string): Promise<number> {
  const child = spawn(bin, args, { cwd: dir, stdio: ["ignore", "inherit", "inherit"] });
  interrupt.child = child;
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once("error", reject);
      child.once("exit", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    });
  } finally {
    interrupt.child = undefined;
  }
}

export async function main(argv: readonly string[]): Promise<number> {
  const critest = findExecutable("critest");
  if (!critest) {
    process.stdout.write("critest not found on PATH: skipping\n");
    return 0;
  }
  if (process.getuid?.() !== 0) {
    log("must run as root (berthd manages namespaces, mounts, cgroups and CNI)");
    return 2;
  }
  const args = parseArgs(argv);
  for (const tool of ["docker-registry", "skopeo", ...(args.containerd ? ["containerd"] : [])]) {
    if (!findExecutable(tool)) {
      log(`${tool} not found on PATH (hack/setup.sh installs it)`);
      return 2;
    }
  }
  const started = Date.now();
  const dir = await mkdtemp(join(tmpdir(), "berth-critest-"));
  // Searchable (not listable) by others: a user-namespaced pod's root reaches berth's idmapped mounts under <dir>/berthd/state.
  await chmod(dir, 0o711);
  const bridge = randomBridgeName();
  const network = `berth-critest-${bridge}`;
  let registry: RunningRegistry | undefined;
  let target: Target | undefined;
  let status = 2;
  try {
    const built = await buildStandInImages({ log });
    registry = await startRegistry();
    await pushStandInImages(built, registry.address);
    log(`pushed ${built.images.length} stand-in images to ${registry.address}; no stand-in for: ${SKIPPED.join(", ")}`);

    const certsDir = await writeMirrorConfig(join(dir, "certs.d"), UPSTREAM_HOSTS, `http://${registry.address}`);
    const confDir = join(dir, "net.d");
    await writeTestConflist({ confDir, bridge, subnet: randomSubnet24().subnet, ipamDataDir: join(dir, "cni-ipam"), name: network });
    target = args.containerd
      ? await startContainerdTarget(join(dir, "containerd"), certsDir, confDir)
      : await startBerthTarget(join(dir, "berthd"), certsDir, confDir);
    log(`${target.name} serving on ${target.socket} (bridge ${bridge})`);

    if (interrupt.requested) return 2;
    const junit = join(dir, "junit.xml");
    const cmd = critestCommand(target.socket, junit, args.critestArgs, process.stdout.isTTY === true);
    log(`${critest} ${cmd.join(" ")}`);
    const code = await runCritest(critest, cmd, dir);
    if (!existsSync(junit)) {
      log(`critest exited with ${code} and wrote no JUnit report`);
      return 2;
    }
    if (args.junitOut) await copyFile(junit, args.junitOut);
    const results = parseJunit(readFileSync(junit, "utf8"));
    process.stdout.write("\n" + formatReport(results));
    const s = summarize(results);
    process.stdout.write(`critest runner: ${target.name}, critest exit ${code}, ${((Date.now() - started) / 1000).toFixed(0)}s total\n`);
    status = s.failed > 0 || code !== 0 ? 1 : 0;
    return status;
  } finally {
    if (target) {
      const removed = await removeAllPods(target.socket, log);
      if (removed > 0) log(`removed ${removed} pods critest left behind`);
      await writeFile(join(dir, "runtime.log"), target.log()).catch(() => undefined);
      await target.stop().catch((err: unknown) => log(`stopping ${target!.name}: ${String(err)}`));
      if (target.runcRoot) deleteRuncContainers(target.runcRoot, log);
    }
    if (registry) await registry.stop().catch((err: unknown) => log(`stopping registry: ${String(err)}`));
    await sweepNat(network, log);
    deleteLink(bridge);
    detachMounts(dir, log);
    if (args.keep) log(`kept ${dir} (runtime.log, junit.xml, runtime root and state)`);
    else await rm(dir, { recursive: true, force: true }).catch((err: unknown) => log(`removing ${dir}: ${String(err)}`));
    if (status === 2 && target && !interrupt.requested) log(`${target.name} log (last lines):\n${target.log().split("\n").slice(-20).join("\n")}`);
  }
}

if (import.meta.main) {
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  main(process.argv.slice(2)).then((code) => process.exit(code), (err: unknown) => {
    log(err instanceof Error ? err.stack ?? err.message : String(err));
    process.exit(2);
  });
}

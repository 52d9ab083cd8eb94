// Cleans up what a critest run leaves behind when specs fail half way: first
// through the CRI (stop and remove every pod the runtime still lists), then,
// after the runtime stopped, sweeps scoped to this run only: containers in the
// run's own runc root, iptables rules tagged with the run's CNI network name,
// and mounts under the run's work dir.
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { connect } from "../lib/cri-client.ts";
import { mountsUnder as sharedMountsUnder } from "../lib/mounts.ts";

type Log = (msg: string) => void;

/** Stops and removes every pod sandbox the runtime lists; returns how many it removed. */
export async function removeAllPods(socket: string, log: Log): Promise<number> {
  const c = connect(socket);
  let removed = 0;
  try {
    const { items } = await c.runtime.listPodSandbox({}, { timeoutMs: 30_000 });
    for (const pod of items) {
      try {
        await c.runtime.stopPodSandbox({ podSandboxId: pod.id }, { timeoutMs: 60_000 });
        await c.runtime.removePodSandbox({ podSandboxId: pod.id }, { timeoutMs: 60_000 });
        removed++;
      } catch (err) {
        log(`could not remove pod ${pod.id} left by critest: ${(err as Error).message}`);
      }
    }
  } catch (err) {
    log(`could not list pods left by critest: ${(err as Error).message}`);
  } finally {
    c.close();
  }
  return removed;
}

/** Force-deletes every container in a runc root of this run's own (berth's `<state>/runc`). */
export function deleteRuncContainers(runcRoot: string, log: Log): void {
  const list = spawnSync("runc", ["--root", runcRoot, "list", "-q"], { encoding: "utf8" });
  if (list.status !== 0) return;
  for (const id of list.stdout.split("\n").map((s) => s.trim()).filter(Boolean)) {
    log(`container ${id} still in ${runcRoot} after the runtime stopped (deleting)`);
    spawnSync("runc", ["--root", runcRoot, "delete", "-f", id], { stdio: "ignore" });
  }
}

/** Splits one iptables-save rule line into arguments (double quotes with backslash escapes). */
export function splitRule(line: string): string[] {
  const args: string[] = [];
  let cur = "";
  let inArg = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (ch === '"') {
      inArg = true;
      for (i++; i < line.length && line[i] !== '"'; i++) cur += line[i] === "\\" && i + 1 < line.length ? line[++i]! : line[i]!;
    } else if (ch === " ") {
      if (inArg) args.push(cur);
      cur = "";
      inArg = false;
    } else {
      cur += ch;
      inArg = true;
    }
  }
  if (inArg) args.push(cur);
  return args;
}

/**
 * From `iptables-save -t nat` output, the rules whose comment names this CNI
 * network (as `-A CHAIN ...` argument lists) and the per-pod CNI-* chains they jump to.
 */
export function natRulesOfNetwork(save: string, network: string): { rules: string[][]; chains: string[] } {
  const rules: string[][] = [];
  const chains = new Set<string>();
  for (const line of save.split("\n")) {
    if (!line.startsWith("-A ")) continue;
    const args = splitRule(line);
    const i = args.indexOf("--comment");
    const comment = i >= 0 ? args[i + 1] ?? "" : "";
    if (!comment.includes(`name: "${network}"`)) continue;
    rules.push(args);
    const j = args.indexOf("-j");
    const target = j >= 0 ? args[j + 1] : undefined;
    if (target && /^CNI-(DN-)?[0-9a-f]{16,24}$/.test(target)) chains.add(target);
  }
  return { rules, chains: [...chains] };
}

/** Deletes nat rules tagged with this run's CNI network name and the per-pod chains they used. */
export function sweepNat(network: string, log: Log): void {
  let save: string;
  try { save = execFileSync("iptables-save", ["-t", "nat"], { encoding: "utf8" }); } catch { return; }
  const { rules, chains } = natRulesOfNetwork(save, network);
  if (rules.length === 0) return;
  log(`${rules.length} nat rules of network ${network} left behind (deleting)`);
  // Jumps into the per-pod chains first, then the chains' own rules go with -F.
  for (const r of rules.filter((a) => !chains.includes(a[1]!))) spawnSync("iptables", ["-t", "nat", "-D", ...r.slice(1)], { stdio: "ignore" });
  for (const c of chains) {
    spawnSync("iptables", ["-t", "nat", "-F", c], { stdio: "ignore" });
    spawnSync("iptables", ["-t", "nat", "-X", c], { stdio: "ignore" });
  }
}

/** Mount points under `dir` (deepest first), e.g. ones a failed runtime left behind. */
/** Mount points strictly below `dir`, deepest first (the shared helper, as critest's cleanup wants it). */
export const mountsUnder = (dir: string, mountinfo: string): string[] => sharedMountsUnder(dir, mountinfo, true);

/** Detaches leftover mounts so deleting the work dir never reaches through a bind mount. */
export function detachMounts(dir: string, log: Log): void {
  for (const m of sharedMountsUnder(dir, undefined, true)) {
    log(`left mounted after the run: ${m} (detaching)`);
    try { execFileSync("umount", ["-l", m], { stdio: "ignore" }); } catch { /* raced away */ }
  }
}

export function deleteLink(name: string): void {
  try { execFileSync("ip", ["link", "del", name], { stdio: "ignore" }); } catch { /* already gone */ }
}

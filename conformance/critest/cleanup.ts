// Cleans up what a critest run leaves behind when specs fail half way: first
// through the CRI (stop and remove every pod the runtime still lists), then,
// after the runtime stopped, sweeps scoped to this run only: containers in the
// run's own runc root, nat rules tagged with the run's CNI network name,
// and mounts under the run's work dir.
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { connect } from "../lib/cri-client.ts";
import { mountsUnder as sharedMountsUnder } from "../lib/mounts.ts";
import { networkTag, sweepTaggedRules } from "../../cri-server/network/iptables-sweep.ts";

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

/**
 * Deletes the nat rules (iptables and ip6tables) whose comment names this run's CNI
 * network, and the per-pod CNI- chains they jump to: berth's own sweep, with the
 * network's tag instead of one sandbox's.
 */
export async function sweepNat(network: string, log: Log): Promise<void> {
  const { removed, errors } = await sweepTaggedRules(networkTag(network));
  if (removed > 0) log(`${removed} nat rules of network ${network} were left behind (deleted)`);
  for (const e of errors) log(`sweeping nat rules of network ${network}: ${e}`);
}

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

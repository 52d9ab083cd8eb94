// Removes nat rules (and the per-container chains they jump to) that CNI
// plugins tagged with `name: "<network>" id: "<container id>"`. Used after a
// DEL that ran without a network namespace: the Debian bridge plugin only
// tears its ipMasq chain down when it can still see the pod's interface.

import { describeFailure, IPTABLES_TIMEOUT_MS, runCommand } from "../../oci-runtime/foundation/run-command.ts";
import type { Runner } from "./cni-exec.ts";

/** Splits one line of `iptables -S` output into arguments (double quotes with backslash escapes). */
export function splitRule(line: string): string[] {
  const out: string[] = [];
  let cur = "";
  let inQuote = false;
  let has = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (inQuote) {
      if (c === "\\" && i + 1 < line.length) cur += line[++i];
      else if (c === '"') inQuote = false;
      else cur += c;
    } else if (c === '"') {
      inQuote = true;
      has = true;
    } else if (c === " ") {
      if (has || cur) out.push(cur);
      cur = "";
      has = false;
    } else {
      cur += c;
    }
  }
  if (has || cur) out.push(cur);
  return out;
}

/** The part of a CNI plugin's rule comment that names its network (every sandbox of it). */
export const networkTag = (network: string) => `name: "${network}"`;
/** The part of a CNI plugin's rule comment that names one sandbox of a network. */
export const cniComment = (network: string, containerId: string) => `${networkTag(network)} id: "${containerId}"`;

/** Rules (as `-A chain ...` argv) whose comment contains `tag`, and the CNI- chains they jump to. */
export function matchingRules(saveOutput: string, tag: string): { rules: string[][]; chains: Set<string> } {
  const rules: string[][] = [];
  const chains = new Set<string>();
  for (const line of saveOutput.split("\n")) {
    if (!line.startsWith("-A ")) continue;
    const args = splitRule(line);
    const ci = args.indexOf("--comment");
    if (ci < 0 || !args[ci + 1]?.includes(tag)) continue;
    rules.push(args);
    const ji = args.indexOf("-j");
    const target = ji >= 0 ? args[ji + 1] : undefined;
    if (target?.startsWith("CNI-") && !target.startsWith("CNI-HOSTPORT-")) chains.add(target);
  }
  return { rules, chains };
}

/** Deletes the nat rules of one sandbox in iptables and ip6tables; returns how many rules went. Errors are returned, not thrown. */
export function sweepCniRules(network: string, containerId: string, run: Runner = runCommand): Promise<{ removed: number; errors: string[] }> {
  return sweepTaggedRules(cniComment(network, containerId), run);
}

/**
 * Deletes nat rules whose comment contains `tag`, then flushes and deletes
 * the per-container CNI- chains they jumped to (never the shared
 * CNI-HOSTPORT-* chains).
 */
export async function sweepTaggedRules(tag: string, run: Runner = runCommand): Promise<{ removed: number; errors: string[] }> {
  let removed = 0;
  const errors: string[] = [];
  for (const bin of ["iptables", "ip6tables"]) {
    const list = await run(bin, ["-w", "-t", "nat", "-S"], { timeoutMs: IPTABLES_TIMEOUT_MS });
    if (list.code !== 0) continue; // binary or table not available
    const { rules, chains } = matchingRules(list.stdout, tag);
    for (const r of rules) {
      const d = await run(bin, ["-w", "-t", "nat", "-D", ...r.slice(1)], { timeoutMs: IPTABLES_TIMEOUT_MS });
      if (d.code === 0) removed++;
      else errors.push(`${bin} -D ${r.slice(1).join(" ")}: ${describeFailure(d)}`);
    }
    for (const chain of chains) {
      const f = await run(bin, ["-w", "-t", "nat", "-F", chain], { timeoutMs: IPTABLES_TIMEOUT_MS });
      if (f.code !== 0) continue; // already gone
      const x = await run(bin, ["-w", "-t", "nat", "-X", chain], { timeoutMs: IPTABLES_TIMEOUT_MS });
      if (x.code !== 0) errors.push(`${bin} -X ${chain}: ${describeFailure(x)}`);
    }
  }
  return { removed, errors };
}

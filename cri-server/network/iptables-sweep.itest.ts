// The nat sweep against real iptables, inside a pinned network namespace of the test's own
// (needs root): per-sandbox (berth after a DEL without netns) and per-network (the critest
// runner's cleanup) tags remove exactly their rules and per-pod chains.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createNetns, listNetns, nsenterArgs, removeNetns, unmountNetnsDir } from "./netns.ts";
import { cniComment, networkTag, sweepCniRules, sweepTaggedRules } from "./iptables-sweep.ts";
import { runCommand, type RunOptions } from "../../oci-runtime/foundation/run-command.ts";

const stateDir = await mkdtemp(join(tmpdir(), "berth-sweep-it-"));
after(async () => {
  for (const p of await listNetns(stateDir)) await removeNetns(p).catch(() => {});
  await unmountNetnsDir(stateDir).catch(() => {});
  await rm(stateDir, { recursive: true, force: true });
});

/** A Runner that runs every command inside the namespace (what the sweep runs on the host). */
const runnerIn = (netns: string) => (file: string, args: string[], opts: RunOptions) => {
  const [bin, ...rest] = nsenterArgs(netns, [file, ...args]);
  return runCommand(bin!, rest, opts);
};

async function ipt(netns: string, args: string[]): Promise<string> {
  const r = await runnerIn(netns)("iptables", ["-w", "-t", "nat", ...args], { timeoutMs: 30_000 });
  assert.equal(r.code, 0, `iptables ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** What a bridge plugin with ipMasq leaves for one sandbox: a per-pod chain and the jump into it, both tagged. */
async function addSandboxRules(netns: string, network: string, id: string, chain: string, ip: string): Promise<void> {
  const comment = cniComment(network, id);
  await ipt(netns, ["-N", chain]);
  await ipt(netns, ["-A", chain, "-d", "10.99.0.0/24", "-m", "comment", "--comment", comment, "-j", "ACCEPT"]);
  await ipt(netns, ["-A", chain, "!", "-d", "224.0.0.0/4", "-m", "comment", "--comment", comment, "-j", "MASQUERADE"]);
  await ipt(netns, ["-A", "POSTROUTING", "-s", `${ip}/32`, "-m", "comment", "--comment", comment, "-j", chain]);
}

const chains = async (netns: string) => (await ipt(netns, ["-S"])).split("\n").filter((l) => l.startsWith("-N ")).map((l) => l.slice(3)).sort();
const tagged = async (netns: string, tag: string) => (await ipt(netns, ["-S"])).split("\n").filter((l) => l.includes(tag.replaceAll('"', '\\"')));

test("a sandbox's sweep removes its rules and chain and nothing of its neighbours", async () => {
  const ns = await createNetns({ stateDir }, "sweep-sandbox");
  await addSandboxRules(ns, "net", "sb1", "CNI-0123456789abcdef01234567", "10.99.0.2");
  await addSandboxRules(ns, "net", "sb2", "CNI-fedcba9876543210fedcba98", "10.99.0.3");
  const r = await sweepCniRules("net", "sb1", runnerIn(ns));
  assert.deepEqual(r.errors, []);
  assert.equal(r.removed, 3);
  assert.deepEqual(await tagged(ns, cniComment("net", "sb1")), []);
  assert.equal((await tagged(ns, cniComment("net", "sb2"))).length, 3);
  assert.deepEqual(await chains(ns), ["CNI-fedcba9876543210fedcba98"]);
});

test("a network's sweep (the critest runner's cleanup) removes every sandbox of it, not a network whose name only starts the same", async () => {
  const ns = await createNetns({ stateDir }, "sweep-network");
  await addSandboxRules(ns, "mine", "a", "CNI-aaaaaaaaaaaaaaaaaaaaaaaa", "10.99.0.2");
  await addSandboxRules(ns, "mine", "b", "CNI-bbbbbbbbbbbbbbbbbbbbbbbb", "10.99.0.3");
  await addSandboxRules(ns, "mine-too-long", "c", "CNI-cccccccccccccccccccccccc", "10.99.0.4");
  const r = await sweepTaggedRules(networkTag("mine"), runnerIn(ns));
  assert.deepEqual(r.errors, []);
  assert.equal(r.removed, 6);
  assert.deepEqual(await tagged(ns, networkTag("mine")), []);
  assert.equal((await tagged(ns, networkTag("mine-too-long"))).length, 3);
  assert.deepEqual(await chains(ns), ["CNI-cccccccccccccccccccccccc"]);
  const again = await sweepTaggedRules(networkTag("mine"), runnerIn(ns));
  assert.deepEqual(again, { removed: 0, errors: [] }, "a second sweep finds nothing and fails nothing");
});

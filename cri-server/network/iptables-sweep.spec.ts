import { test } from "node:test";
import assert from "node:assert/strict";
import { cniComment, matchingRules, splitRule, sweepCniRules } from "./iptables-sweep.ts";
import type { RunOptions, RunResult } from "../../oci-runtime/foundation/run-command.ts";

const save = [
  "-N CNI-abc",
  "-N CNI-HOSTPORT-DNAT",
  '-A POSTROUTING -s 10.9.0.2/32 -m comment --comment "name: \\"net\\" id: \\"sb1\\"" -j CNI-abc',
  '-A POSTROUTING -s 10.9.0.3/32 -m comment --comment "name: \\"net\\" id: \\"sb2\\"" -j CNI-def',
  '-A CNI-abc -d 10.9.0.0/24 -m comment --comment "name: \\"net\\" id: \\"sb1\\"" -j ACCEPT',
  '-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \\"net\\" id: \\"sb1\\"" -m multiport --dports 80 -j CNI-DN-xyz',
].join("\n");

test("splits iptables -S lines, unquoting comments", () => {
  assert.deepEqual(splitRule('-A X -m comment --comment "name: \\"n\\" id: \\"i\\"" -j Y'), ["-A", "X", "-m", "comment", "--comment", 'name: "n" id: "i"', "-j", "Y"]);
  assert.deepEqual(splitRule('-A X --comment ""'), ["-A", "X", "--comment", ""]);
});

test("finds the rules tagged with the network and sandbox, and their chains", () => {
  const { rules, chains } = matchingRules(save, cniComment("net", "sb1"));
  assert.equal(rules.length, 3);
  assert.deepEqual(rules[0]!.slice(0, 4), ["-A", "POSTROUTING", "-s", "10.9.0.2/32"]);
  assert.deepEqual([...chains].sort(), ["CNI-DN-xyz", "CNI-abc"]);
});

test("sweep deletes the tagged rules and removes their per-container chains", async () => {
  const calls: string[] = [];
  const runner = async (file: string, args: string[], _o: RunOptions): Promise<RunResult> => {
    calls.push([file, ...args].join(" "));
    const ok = (stdout = ""): RunResult => ({ code: 0, signal: null, stdout, stderr: "", timedOut: false });
    if (file === "ip6tables") return { ...ok(), code: 1 };
    if (args.join(" ") === "-w -t nat -S") return ok(save);
    return ok();
  };
  const r = await sweepCniRules("net", "sb1", runner);
  assert.equal(r.removed, 3);
  assert.deepEqual(r.errors, []);
  assert.ok(calls.includes('iptables -w -t nat -D POSTROUTING -s 10.9.0.2/32 -m comment --comment name: "net" id: "sb1" -j CNI-abc'));
  assert.ok(calls.includes("iptables -w -t nat -F CNI-abc"));
  assert.ok(calls.includes("iptables -w -t nat -X CNI-abc"));
  assert.ok(calls.includes("iptables -w -t nat -X CNI-DN-xyz"));
  assert.ok(!calls.some((c) => c.includes("-X CNI-HOSTPORT")));
  assert.ok(!calls.some((c) => c.includes("sb2")));
});

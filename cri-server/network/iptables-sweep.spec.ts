import { test } from "node:test";
import assert from "node:assert/strict";
import { cniComment, matchingRules, networkTag, splitRule, sweepCniRules } from "./iptables-sweep.ts";
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

test("a network's tag (the critest runner's sweep) matches every sandbox of it, never a network whose name only starts the same", () => {
  const natSave = [
    "*nat",
    ":CNI-a00bdc30f77feb41597f7106 - [0:0]",
    `-A POSTROUTING -s 10.1.2.3/32 -m comment --comment "name: \\"mine\\" id: \\"abc\\"" -j CNI-a00bdc30f77feb41597f7106`,
    `-A CNI-a00bdc30f77feb41597f7106 ! -d 224.0.0.0/4 -m comment --comment "name: \\"mine\\" id: \\"abc\\"" -j MASQUERADE`,
    `-A POSTROUTING -s 10.1.2.4/32 -m comment --comment "name: \\"mine\\" id: \\"def\\"" -j CNI-b00bdc30f77feb41597f7106`,
    `-A POSTROUTING -s 10.9.9.9/32 -m comment --comment "name: \\"mine-too-long\\" id: \\"x\\"" -j CNI-bbbbbbbbbbbbbbbbbbbbbbbb`,
    `-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \\"mine\\" id: \\"abc\\"" -m multiport --dports 12000 -j CNI-DN-0123456789abcdef01234`,
    "COMMIT",
  ].join("\n");
  const { rules, chains } = matchingRules(natSave, networkTag("mine"));
  assert.deepEqual(rules.map((r) => r[1]), ["POSTROUTING", "CNI-a00bdc30f77feb41597f7106", "POSTROUTING", "CNI-HOSTPORT-DNAT"]);
  assert.deepEqual([...chains], ["CNI-a00bdc30f77feb41597f7106", "CNI-b00bdc30f77feb41597f7106", "CNI-DN-0123456789abcdef01234"]);
  assert.equal(cniComment("mine", "abc"), `${networkTag("mine")} id: "abc"`);
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

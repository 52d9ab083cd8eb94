// Pod bandwidth annotations reach the CNI bandwidth plugin (a tbf qdisc on the host veth and
// on the plugin's ifb device), and UpdateRuntimeConfig's pod CIDR is kept across a restart
// and handed to host-local IPAM through the ipRanges capability.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { statSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { codeOf, grpc } from "../lib/cri-client.ts";
import { podConfig, startPodEnv, type PodEnv } from "../lib/pod.ts";
import { randomSubnet24 } from "../lib/test-conflist.ts";
import { runCommand } from "../../oci-runtime/foundation/run-command.ts";

const tc = async (...args: string[]) => {
  const r = await runCommand("tc", args);
  assert.equal(r.code, 0, `tc ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
};

describe("bandwidth annotations", () => {
  let env: PodEnv;
  const rt = () => env.b.client.runtime;
  before(async () => {
    env = await startPodEnv();
    await env.net.writeConflist({ extraPlugins: [{ type: "bandwidth", capabilities: { bandwidth: true } }] });
  });
  after(async () => { await env?.cleanup(); });

  test("ingress and egress rates become tbf qdiscs through the bandwidth plugin", async () => {
    const cfg = podConfig({ annotations: { "kubernetes.io/ingress-bandwidth": "10M", "kubernetes.io/egress-bandwidth": "5M" } });
    const { podSandboxId } = await rt().runPodSandbox({ config: cfg });
    const ports = await env.net.bridgePorts();
    assert.equal(ports.length, 1, `one pod veth on the bridge: ${ports}`);
    // Ingress (traffic to the pod) is shaped on the host veth.
    assert.match(await tc("qdisc", "show", "dev", ports[0]!), /qdisc tbf .*rate 10Mbit/);
    // Egress is redirected to an ifb device the plugin names after the container, shaped there.
    const all = await tc("qdisc", "show");
    assert.match(all, /qdisc tbf .* dev bwp[0-9a-f]+ .*rate 5Mbit|dev bwp[0-9a-f]+ root .*rate 5Mbit/, all);
    await rt().stopPodSandbox({ podSandboxId });
    await rt().removePodSandbox({ podSandboxId });
    assert.doesNotMatch(await tc("qdisc", "show"), /rate 5Mbit/, "DEL removed the ifb device");
  });

  test("an invalid value is INVALID_ARGUMENT naming the annotation and value, and creates nothing", async () => {
    for (const [k, v] of [["kubernetes.io/ingress-bandwidth", "lots"], ["kubernetes.io/egress-bandwidth", "10"], ["kubernetes.io/egress-bandwidth", "3P"]]) {
      await assert.rejects(rt().runPodSandbox({ config: podConfig({ annotations: { [k!]: v! } }) }), (e) => {
        assert.equal(codeOf(e), grpc.status.INVALID_ARGUMENT, String(e));
        assert.ok((e as Error).message.includes(k!) && (e as Error).message.includes(JSON.stringify(v)), String(e));
        return true;
      });
    }
    assert.equal((await rt().listPodSandbox({})).items.length, 0);
    assert.deepEqual(await env.net.bridgePorts(), []);
  });
});

describe("UpdateRuntimeConfig pod CIDR", () => {
  let env: PodEnv;
  const rt = () => env.b.client.runtime;
  const podCidr = randomSubnet24();
  before(async () => {
    env = await startPodEnv();
    // host-local with no ranges of its own: it can only allocate from the ipRanges capability.
    const conflist = JSON.parse(await readFile(await env.net.writeConflist({ noPortmap: true }), "utf8")) as { plugins: Record<string, unknown>[] };
    const bridge = conflist.plugins[0]!;
    bridge["capabilities"] = { ipRanges: true };
    bridge["ipam"] = { type: "host-local", dataDir: env.net.ipamDataDir, routes: [{ dst: "0.0.0.0/0" }] };
    await writeFile(join(env.net.confDir, "10-test.conflist"), JSON.stringify(conflist));
  });
  after(async () => { await env?.cleanup(); });

  test("without a pod CIDR host-local has no range, so the ADD fails", async () => {
    await assert.rejects(rt().runPodSandbox({ config: podConfig() }), (e) => /no IP ranges|range/i.test((e as Error).message));
    assert.equal((await rt().listPodSandbox({})).items.length, 0);
    // The failed ADD left the bridge without an address; Debian's bridge plugin cannot then set
    // its MAC from the gateway, so start the next test from no bridge.
    await runCommand("ip", ["link", "del", env.net.bridge]);
  });

  test("a bad pod CIDR is INVALID_ARGUMENT and not stored", async () => {
    await assert.rejects(rt().updateRuntimeConfig({ runtimeConfig: { networkConfig: { podCidr: "10.0.0.0/99" } } }),
      (e) => codeOf(e) === grpc.status.INVALID_ARGUMENT && (e as Error).message.includes("10.0.0.0/99"));
    assert.throws(() => statSync(join(env.b.root, "network", "pod-cidr.json")));
  });

  test("the pod CIDR survives a restart and pods get addresses from it", async () => {
    await rt().updateRuntimeConfig({ runtimeConfig: { networkConfig: { podCidr: podCidr.subnet } } });
    const rec = join(env.b.root, "network", "pod-cidr.json");
    assert.equal(statSync(rec).mode & 0o777, 0o600);
    assert.equal(statSync(join(env.b.root, "network")).mode & 0o777, 0o700);
    await env.b.restart();
    const status = await rt().status({ verbose: true });
    assert.equal(JSON.parse(status.info["config"]!).podCidr, podCidr.subnet, "the restarted berthd reports the stored CIDR");
    const { podSandboxId } = await rt().runPodSandbox({ config: podConfig() });
    const s = await rt().podSandboxStatus({ podSandboxId });
    assert.ok(s.status!.network!.ip.startsWith(podCidr.prefix), `pod IP ${s.status!.network!.ip} is in ${podCidr.subnet}`);
    await rt().stopPodSandbox({ podSandboxId });
    await rt().removePodSandbox({ podSandboxId });
  });
});

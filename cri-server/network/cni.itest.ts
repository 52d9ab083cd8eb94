// NetworkManager with the real Debian CNI plugins (bridge, host-local,
// portmap, loopback), a private bridge and /24 per run (needs root).
//
// Port mappings are checked against the bridge gateway address and
// 127.0.0.1: portmap DNATs locally generated traffic in OUTPUT and itself
// sets route_localnet on the bridge so loopback-sourced connections work.

import { test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { randomInt } from "node:crypto";
import { join } from "node:path";
import { BerthError, Code } from "../../oci-runtime/foundation/errdefs.ts";
import { createLogger } from "../../oci-runtime/foundation/log.ts";
import { NetworkManager, type SetUpRequest } from "./cni.ts";
import { createNetns, isNetns, listNetns, nsenterArgs, removeNetns } from "./netns.ts";
import { runCommand } from "../../oci-runtime/foundation/run-command.ts";
import { createTestNetwork, type TestNetwork } from "../../conformance/lib/test-network.ts";

const quiet = createLogger({}, () => {});
let net: TestNetwork;
let www: string;
const servers: ChildProcess[] = [];

before(async () => {
  net = await createTestNetwork();
  www = join(net.dir, "www");
  await mkdir(www);
  await writeFile(join(www, "index.html"), "hello from the pod\n");
});
after(async () => {
  for (const s of servers) s.kill("SIGKILL");
  await net.cleanup();
});

const manager = (extra: Partial<ConstructorParameters<typeof NetworkManager>[0]> = {}) =>
  new NetworkManager({ confDir: net.confDir, binDirs: net.binDirs, stateDir: net.stateDir, log: quiet, pluginTimeoutMs: 20_000, ...extra });

let seq = 0;
/** Pods created by the running test; torn down after it even if it failed. */
let live: SetUpRequest[] = [];
afterEach(async () => {
  const nm = manager();
  for (const p of live) {
    await nm.tearDown(p.sandboxId).catch(() => {});
    await removeNetns(p.netnsPath).catch(() => {});
  }
  live = [];
});

async function pod(name = `p${++seq}`): Promise<SetUpRequest> {
  const p = {
    sandboxId: `${name}-${randomInt(1e9)}`,
    netnsPath: await createNetns({ stateDir: net.stateDir }, `${name}-${randomInt(1e9)}`),
    podName: name, podNamespace: "itest", podUid: `uid-${name}`,
  };
  live.push(p);
  return p;
}

/** busybox httpd inside the netns serving `www` on `port`. */
function serveIn(netns: string, port = 80): void {
  const [bin, ...args] = nsenterArgs(netns, ["busybox", "httpd", "-f", "-p", String(port), "-h", www]);
  const child = spawn(bin!, args, { stdio: "ignore" });
  servers.push(child);
}

async function get(url: string, attempts = 50): Promise<string> {
  let last: unknown;
  for (let i = 0; i < attempts; i++) {
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
      return await r.text();
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`GET ${url} failed: ${(last as Error)?.message}`, { cause: last });
}

async function assertNoLeaks(ids: string[]): Promise<void> {
  assert.deepEqual(await net.leases(), [], "host-local leases");
  assert.deepEqual(await net.bridgePorts(), [], "veths on the bridge");
  const rules = await net.natRules();
  for (const id of ids) assert.deepEqual(rules.filter((r) => r.includes(id)), [], `nat rules of ${id}`);
}

test("setUp gives an IP on the bridge subnet that the host reaches; CHECK passes; tearDown cleans up", async () => {
  const nm = manager();
  const p = await pod();
  const r = await nm.setUp(p);
  assert.equal(r.ips.length, 1);
  assert.ok(r.ips[0]!.startsWith(net.gateway.replace(/1$/, "")), `${r.ips[0]} in ${net.subnet}`);
  assert.ok(r.interfaces.some((i) => i.name === "eth0" && i.sandbox === p.netnsPath));
  assert.deepEqual(await net.leases(), r.ips);
  serveIn(p.netnsPath);
  assert.equal(await get(`http://${r.ips[0]}/`), "hello from the pod\n");
  await nm.check(p.sandboxId);
  await nm.tearDown(p.sandboxId);
  await removeNetns(p.netnsPath);
  await assertNoLeaks([p.sandboxId]);
});

test("two pods reach each other", async () => {
  const nm = manager();
  const a = await pod();
  const b = await pod();
  const ra = await nm.setUp(a);
  const rb = await nm.setUp(b);
  assert.notEqual(ra.ips[0], rb.ips[0]);
  serveIn(a.netnsPath);
  await get(`http://${ra.ips[0]}/`); // server is up
  // busybox-static's wget crashes here, so the client is node itself.
  const client = `fetch("http://${ra.ips[0]}/", { signal: AbortSignal.timeout(3000) }).then((r) => r.text()).then((t) => process.stdout.write(t))`;
  const [bin, ...args] = nsenterArgs(b.netnsPath, [process.execPath, "-e", client]);
  const w = await runCommand(bin!, args);
  assert.equal(w.code, 0, w.stderr);
  assert.equal(w.stdout, "hello from the pod\n");
  for (const p of [a, b]) {
    await nm.tearDown(p.sandboxId);
    await removeNetns(p.netnsPath);
  }
  await assertNoLeaks([a.sandboxId, b.sandboxId]);
});

test("a port mapping answers on the host port (bridge gateway and 127.0.0.1)", async () => {
  const nm = manager();
  const p = await pod();
  const hostPort = randomInt(20000, 40000);
  await nm.setUp({ ...p, portMappings: [{ protocol: "TCP", containerPort: 8080, hostPort }] });
  serveIn(p.netnsPath, 8080);
  assert.equal(await get(`http://${net.gateway}:${hostPort}/`), "hello from the pod\n");
  assert.equal(await get(`http://127.0.0.1:${hostPort}/`), "hello from the pod\n");
  assert.ok((await net.natRules()).some((r) => r.includes(p.sandboxId) && r.includes("dnat")), "portmap rule present");
  await nm.tearDown(p.sandboxId);
  await removeNetns(p.netnsPath);
  await assertNoLeaks([p.sandboxId]);
  await assert.rejects(get(`http://${net.gateway}:${hostPort}/`, 1), "port mapping is gone");
});

test("a failing plugin gives an error naming it, and the bridge's lease and veth are rolled back", async () => {
  await net.writePlugin("berth-fail", `#!/bin/sh
cat >/dev/null
if [ "$CNI_COMMAND" = ADD ]; then
  echo '{"cniVersion":"1.0.0","code":100,"msg":"injected failure","details":"for the rollback test"}'
  exit 1
fi
if [ "$CNI_COMMAND" = VERSION ]; then echo '{"cniVersion":"1.0.0","supportedVersions":["1.0.0"]}'; fi
exit 0
`);
  const confDir = join(net.dir, "conf-fail");
  const { writeTestConflist } = await import("../../conformance/lib/test-conflist.ts");
  await writeTestConflist({ confDir, bridge: net.bridge, subnet: net.subnet, ipamDataDir: net.ipamDataDir, name: net.networkName, extraPlugins: [{ type: "berth-fail" }] });
  const nm = manager({ confDir });
  const p = await pod();
  await assert.rejects(nm.setUp({ ...p, portMappings: [{ containerPort: 80, hostPort: randomInt(20000, 40000) }] }), (e: unknown) =>
    e instanceof BerthError && e.code === Code.INTERNAL &&
    e.message === `cni plugin berth-fail failed to add network "${net.networkName}" for sandbox ${p.sandboxId}: injected failure: for the rollback test (code 100)`);
  await assertNoLeaks([p.sandboxId]);
  const [bin, ...args] = nsenterArgs(p.netnsPath, ["ip", "-o", "link", "show", "eth0"]);
  assert.notEqual((await runCommand(bin!, args)).code, 0, "eth0 is gone from the pod netns");
  assert.deepEqual(await nm.listCached(), []);
  await removeNetns(p.netnsPath);
});

test("a hanging plugin is killed after the timeout and rolled back", async () => {
  await net.writePlugin("berth-hang", `#!/bin/sh
cat >/dev/null
case "$CNI_COMMAND" in
  ADD) echo $$ > "${net.dir}/hang.pid"; exec sleep 600 ;;
  VERSION) echo '{"cniVersion":"1.0.0","supportedVersions":["1.0.0"]}' ;;
esac
exit 0
`);
  const confDir = join(net.dir, "conf-hang");
  const { writeTestConflist } = await import("../../conformance/lib/test-conflist.ts");
  await writeTestConflist({ confDir, bridge: net.bridge, subnet: net.subnet, ipamDataDir: net.ipamDataDir, name: net.networkName, noPortmap: true, extraPlugins: [{ type: "berth-hang" }] });
  const nm = manager({ confDir, pluginTimeoutMs: 1500 });
  const p = await pod();
  await assert.rejects(nm.setUp(p), (e: unknown) => e instanceof BerthError && e.code === Code.DEADLINE_EXCEEDED && /cni plugin berth-hang .*timed out after 1500 ms/.test(e.message));
  const pid = Number((await readFile(join(net.dir, "hang.pid"), "utf8")).trim());
  assert.ok(pid > 0);
  assert.throws(() => process.kill(pid, 0), { code: "ESRCH" }, "the hanging plugin was killed");
  await assertNoLeaks([p.sandboxId]);
  await removeNetns(p.netnsPath);
});

test("tearDown by a new NetworkManager (daemon restart) uses the cache even after the config changed", async () => {
  const p = await pod();
  const hostPort = randomInt(20000, 40000);
  const r = await manager().setUp({ ...p, portMappings: [{ containerPort: 80, hostPort }] });
  assert.equal((await net.leases()).length, 1);
  assert.deepEqual((await manager().cached(p.sandboxId))?.ips, r.ips);
  const otherConf = join(net.dir, "conf-other");
  await mkdir(otherConf);
  await writeFile(join(otherConf, "00.conflist"), JSON.stringify({ cniVersion: "1.0.0", name: "unrelated", plugins: [{ type: "loopback" }] }));
  const restarted = manager({ confDir: otherConf });
  await restarted.tearDown(p.sandboxId);
  await assertNoLeaks([p.sandboxId]);
  await restarted.tearDown(p.sandboxId); // twice is fine
  await removeNetns(p.netnsPath);
});

test("tearDown after the netns is gone releases the lease and removes nat rules", async () => {
  const nm = manager();
  const p = await pod();
  await nm.setUp({ ...p, portMappings: [{ containerPort: 80, hostPort: randomInt(20000, 40000) }] });
  assert.ok((await net.natRules()).some((r) => r.includes(p.sandboxId)));
  await removeNetns(p.netnsPath);
  assert.equal(await isNetns(p.netnsPath), false);
  await nm.tearDown(p.sandboxId);
  await nm.tearDown(p.sandboxId, p.netnsPath);
  await assertNoLeaks([p.sandboxId]);
});

test("20 concurrent setUp and tearDown leave no leases, netns or veths", async () => {
  const nm = manager();
  const pods = await Promise.all(Array.from({ length: 20 }, (_, i) => pod(`c${i}`)));
  const results = await Promise.all(pods.map((p) => nm.setUp({ ...p, portMappings: [{ containerPort: 80, hostPort: 30000 + seq++ + randomInt(9000) }] })));
  const ips = results.map((r) => r.ips[0]);
  assert.equal(new Set(ips).size, 20, "distinct IPs");
  assert.equal((await net.leases()).length, 20);
  assert.equal((await net.bridgePorts()).length, 20);
  await Promise.all(pods.map(async (p) => {
    await nm.tearDown(p.sandboxId);
    await removeNetns(p.netnsPath);
  }));
  await assertNoLeaks(pods.map((p) => p.sandboxId));
  assert.deepEqual(await listNetns(net.stateDir), []);
  assert.deepEqual(await nm.listCached(), []);
});

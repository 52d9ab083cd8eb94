import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { renderHosts, renderResolvConf, writePodFiles } from "./pod-files.ts";

const withDir = async (fn: (dir: string) => Promise<void>) => {
  const dir = await mkdtemp(join(tmpdir(), "pod-files-"));
  try { await fn(dir); } finally { await rm(dir, { recursive: true, force: true }); }
};

test("resolv.conf from a DNS config: search, nameservers, options", () => {
  assert.equal(renderResolvConf({ servers: ["10.96.0.10", "fd00::a"], searches: ["ns.svc.cluster.local", "svc.cluster.local"], options: ["ndots:5", "edns0"] }),
    "search ns.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.10\nnameserver fd00::a\noptions ndots:5 edns0\n");
  assert.equal(renderResolvConf({ servers: ["1.1.1.1"] }), "nameserver 1.1.1.1\n");
  assert.equal(renderResolvConf({}), "");
});

test("hosts has localhost lines and the pod IPs under the hostname", () => {
  const h = renderHosts("web-0", ["10.88.0.5", "fd00::5"]);
  const lines = h.trimEnd().split("\n");
  assert.ok(lines.includes("127.0.0.1\tlocalhost"));
  assert.ok(lines.includes("::1\tlocalhost ip6-localhost ip6-loopback"));
  assert.equal(lines.at(-2), "10.88.0.5\tweb-0");
  assert.equal(lines.at(-1), "fd00::5\tweb-0");
});

test("writes the three files; DNS config wins over the host's resolv.conf", () => withDir(async (dir) => {
  const host = join(dir, "host-resolv.conf");
  await writeFile(host, "nameserver 192.0.2.53\n");
  const files = await writePodFiles({ dir: join(dir, "pod"), hostname: "web-0", ips: ["10.88.0.5"], dns: { servers: ["10.96.0.10"] }, hostResolvConf: host });
  assert.equal(await readFile(files.resolvConf, "utf8"), "nameserver 10.96.0.10\n");
  assert.equal(await readFile(files.hostname, "utf8"), "web-0\n");
  assert.match(await readFile(files.hosts, "utf8"), /\n10\.88\.0\.5\tweb-0\n$/);
}));

test("without a DNS config the host's resolv.conf is copied; host network copies the host's hosts", () => withDir(async (dir) => {
  const host = join(dir, "host-resolv.conf");
  const hosts = join(dir, "host-hosts");
  await writeFile(host, "nameserver 192.0.2.53\nsearch example\n");
  await writeFile(hosts, "127.0.0.1 localhost\n192.0.2.1 node1\n");
  const files = await writePodFiles({ dir: join(dir, "pod"), hostname: "node1", ips: [], hostNetwork: true, hostResolvConf: host, hostHosts: hosts });
  assert.equal(await readFile(files.resolvConf, "utf8"), "nameserver 192.0.2.53\nsearch example\n");
  assert.equal(await readFile(files.hosts, "utf8"), "127.0.0.1 localhost\n192.0.2.1 node1\n");
}));

test("a missing host resolv.conf gives an empty one; a bad hostname is refused", () => withDir(async (dir) => {
  const files = await writePodFiles({ dir, hostname: "a", ips: [], hostResolvConf: join(dir, "none") });
  assert.equal(await readFile(files.resolvConf, "utf8"), "");
  await assert.rejects(writePodFiles({ dir, hostname: "bad_name!", ips: [] }), /invalid hostname "bad_name!"/);
}));

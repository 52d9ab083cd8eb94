import { test } from "node:test";
import assert from "node:assert/strict";
import { parseResult, podIps } from "./cni-result.ts";

const bridge100 = {
  cniVersion: "1.0.0",
  interfaces: [
    { name: "cni0", mac: "aa:aa:aa:aa:aa:aa" },
    { name: "veth1", mac: "bb:bb:bb:bb:bb:bb" },
    { name: "eth0", mac: "cc:cc:cc:cc:cc:cc", sandbox: "/run/netns/x" },
  ],
  ips: [
    { address: "fd00::5/64", gateway: "fd00::1", interface: 2 },
    { address: "10.88.0.5/16", gateway: "10.88.0.1", interface: 2 },
  ],
  routes: [{ dst: "0.0.0.0/0" }],
  dns: {},
};

test("1.0.0 result: interfaces, ips, routes; pod IPs IPv4 first without prefix", () => {
  const r = parseResult(bridge100);
  assert.equal(r.cniVersion, "1.0.0");
  assert.equal(r.interfaces.length, 3);
  assert.equal(r.interfaces[2]!.sandbox, "/run/netns/x");
  assert.deepEqual(r.routes, [{ dst: "0.0.0.0/0" }]);
  assert.deepEqual(podIps(r), ["10.88.0.5", "fd00::5"]);
});

test("0.4.0 result with ip versions is read the same way", () => {
  const r = parseResult({
    cniVersion: "0.4.0",
    interfaces: [{ name: "eth0", sandbox: "/ns" }],
    ips: [{ version: "4", address: "10.1.0.7/24", gateway: "10.1.0.1", interface: 0 }, { version: "6", address: "fd01::7/64", interface: 0 }],
  });
  assert.deepEqual(podIps(r), ["10.1.0.7", "fd01::7"]);
  assert.equal(r.ips[0]!.gateway, "10.1.0.1");
});

test("addresses on other interfaces are not pod IPs; ones without interface are", () => {
  const r = parseResult({
    cniVersion: "1.0.0",
    interfaces: [{ name: "eth0", sandbox: "/ns" }, { name: "net1", sandbox: "/ns" }],
    ips: [{ address: "192.168.9.9/24", interface: 1 }, { address: "10.2.0.3/24", interface: 0 }, { address: "10.3.0.3/24" }],
  });
  assert.deepEqual(podIps(r), ["10.2.0.3", "10.3.0.3"]);
  assert.deepEqual(podIps(r, "net1"), ["192.168.9.9", "10.3.0.3"]);
});

test("0.2.0 result with ip4/ip6", () => {
  const r = parseResult({ cniVersion: "0.2.0", ip4: { ip: "10.4.0.2/16", gateway: "10.4.0.1", routes: [{ dst: "0.0.0.0/0" }] }, ip6: { ip: "fd04::2/64" } });
  assert.deepEqual(podIps(r), ["10.4.0.2", "fd04::2"]);
  assert.deepEqual(r.routes, [{ dst: "0.0.0.0/0" }]);
});

test("duplicate addresses are reported once", () => {
  const r = parseResult({ cniVersion: "1.0.0", ips: [{ address: "10.5.0.2/24" }, { address: "10.5.0.2/24" }] });
  assert.deepEqual(podIps(r), ["10.5.0.2"]);
});

test("malformed results are refused", () => {
  assert.throws(() => parseResult("x"), /not a JSON object/);
  assert.throws(() => parseResult({ cniVersion: "1.0.0", ips: [{ gateway: "1.2.3.4" }] }), /no address/);
  assert.throws(() => parseResult({ cniVersion: "1.0.0", interfaces: {} }), /not an array/);
  assert.throws(() => parseResult({ cniVersion: "0.2.0", ip4: { ip: 5 } }), /ip4.ip/);
});

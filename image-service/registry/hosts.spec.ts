import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { defaultHosts, loadHosts, parseHostsToml } from "./hosts.ts";

describe("hosts.toml", () => {
  it("lists mirrors in order, then the server", () => {
    const hosts = parseHostsToml([
      `server = "https://registry-1.docker.io"`,
      `[host."https://mirror.a:5000"]`, `  capabilities = ["pull"]`, `  skip_verify = true`,
      `[host."http://mirror.b/prefix"]`, `  capabilities = ["pull", "resolve"]`, `  ca = ["ca.pem", "/abs/ca.pem"]`,
      `[host."https://mirror.c/custom/v2/path"]`, `  override_path = true`,
    ].join("\n"), "docker.io", "/etc/certs.d/docker.io");
    assert.deepEqual(hosts.map((h) => h.base), ["https://mirror.a:5000/v2", "http://mirror.b/prefix/v2", "https://mirror.c/custom/v2/path", "https://registry-1.docker.io/v2"]);
    assert.deepEqual([hosts[0]!.pull, hosts[0]!.resolve, hosts[0]!.skipVerify], [true, false, true]);
    assert.deepEqual(hosts[1]!.ca, ["/etc/certs.d/docker.io/ca.pem", "/abs/ca.pem"]);
    assert.equal(hosts[3]!.isServer, true);
  });
  it("defaults the server from the namespace", () => {
    const hosts = parseHostsToml(`[host."https://m"]\n`, "quay.io", "/x");
    assert.equal(hosts.at(-1)!.base, "https://quay.io/v2");
  });
  it("uses plain http by default only for loopback registries", () => {
    assert.equal(defaultHosts("127.0.0.1:5000")[0]!.base, "http://127.0.0.1:5000/v2");
    assert.equal(defaultHosts("localhost:5000")[0]!.base, "http://localhost:5000/v2");
    assert.equal(defaultHosts("docker.io")[0]!.base, "https://registry-1.docker.io/v2");
  });
  it("rejects invalid toml naming the file", () => {
    assert.throws(() => parseHostsToml("server = [", "x", "/d", "/d/hosts.toml"), /\/d\/hosts\.toml: invalid toml/);
  });
  it("loads <dir>/<host>/hosts.toml, then _default", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "berth-hosts-"));
    try {
      await mkdir(path.join(dir, "r.example:5000"), { recursive: true });
      await mkdir(path.join(dir, "_default"), { recursive: true });
      await writeFile(path.join(dir, "r.example:5000", "hosts.toml"), `server = "http://r.example:5000"`);
      await writeFile(path.join(dir, "_default", "hosts.toml"), `[host."https://fallback.mirror"]\n`);
      assert.deepEqual((await loadHosts(dir, "r.example:5000")).map((h) => h.base), ["http://r.example:5000/v2"]);
      assert.deepEqual((await loadHosts(dir, "other.io")).map((h) => h.base), ["https://fallback.mirror/v2", "https://other.io/v2"]);
      assert.deepEqual((await loadHosts("", "other.io")).map((h) => h.base), ["https://other.io/v2"]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { MAX_HOSTS_TOML_BYTES, defaultHosts, loadHosts, parseHostsToml } from "./hosts.ts";

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
  it("reads header, skip_verify, ca, override_path and dial_timeout, at the top level and per host", () => {
    const hosts = parseHostsToml([
      `server = "https://r.example"`, `dial_timeout = "1m30s"`,
      `[header]`, `  x-top = "t"`,
      `[host."https://m.example"]`, `  dial_timeout = "500ms"`, `  skip_verify = false`,
      `  [host."https://m.example".header]`, `    X-Api-Key = "k1"`, `    Accept-Language = ["en", "de"]`,
    ].join("\n"), "r.example", "/d", "/d/hosts.toml");
    assert.deepEqual(hosts[0]!.headers, { "x-api-key": "k1", "accept-language": "en, de" });
    assert.equal(hosts[0]!.dialTimeoutMs, 500);
    assert.deepEqual(hosts[1]!.headers, { "x-top": "t" });
    assert.equal(hosts[1]!.dialTimeoutMs, 90_000);
    assert.equal(parseHostsToml(`server = "https://r"`, "r", "/d")[0]!.dialTimeoutMs, 0);
  });
  it("refuses unknown and unsupported keys naming the file and the key", () => {
    const refused: [string, RegExp][] = [
      [`[host."https://m"]\n  client = "c.pem"`, /\/d\/hosts\.toml \[host\."https:\/\/m"\]: key "client" is not supported: TLS client certificates/],
      [`client = [["c.pem", "k.pem"]]`, /\/d\/hosts\.toml: key "client" is not supported/],
      [`[host."https://m"]\n  skip_verfy = true`, /\/d\/hosts\.toml \[host\."https:\/\/m"\]: unknown key "skip_verfy"/],
      [`mirrors = ["x"]`, /\/d\/hosts\.toml: unknown key "mirrors"/],
      [`skip_verify = "yes"`, /skip_verify must be true or false, got "yes"/],
      [`[host."https://m"]\n  capabilities = ["pull", "write"]`, /unknown capability "write"/],
      [`dial_timeout = "soon"`, /dial_timeout must be a duration from 1ms to 10m such as "5s", got "soon"/],
      [`dial_timeout = "2h"`, /dial_timeout must be a duration/],
      [`server = 5`, /server must be a url string/],
    ];
    for (const [text, re] of refused) {
      assert.throws(() => parseHostsToml(text, "r", "/d", "/d/hosts.toml"), (e: Error) => re.test(e.message), text);
    }
  });
  it("refuses header names and values that could inject into the request, and headers berth owns", () => {
    const refused: [string, RegExp][] = [
      [`[header]\n  "x-a" = "ok\\r\\nInjected: 1"`, /header "x-a" has a value with a control character/],
      [`[header]\n  "x-a" = "nul\\u0000"`, /control character/],
      [`[header]\n  "bad name" = "v"`, /header name "bad name" is not a valid http header name/],
      [`[header]\n  "x-a\\nb" = "v"`, /is not a valid http header name/],
      [`[header]\n  Host = "evil"`, /header "Host" is set by berth/],
      [`[header]\n  Content-Length = "1"`, /is set by berth/],
      [`[header]\n  x-a = 5`, /must be a string or a list of strings/],
      [`[header]\n  x-a = "${"v".repeat(8193)}"`, /longer than 8192 bytes/],
      [`[header]\n${Array.from({ length: 65 }, (_, i) => `  x-${i} = "v"`).join("\n")}`, /header has 65 entries, the limit is 64/],
    ];
    for (const [text, re] of refused) {
      assert.throws(() => parseHostsToml(text, "r", "/d", "/d/hosts.toml"), (e: Error) => re.test(e.message) && e.message.startsWith("/d/hosts.toml"), text.slice(0, 80));
    }
  });
  it("refuses a hosts.toml that is a fifo or over 1 MiB, at once, naming the file", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "berth-hosts-"));
    try {
      await mkdir(path.join(dir, "fifo.example"));
      execFileSync("mkfifo", [path.join(dir, "fifo.example", "hosts.toml")]);
      await assert.rejects(loadHosts(dir, "fifo.example"), (e: Error) => e.message === `${path.join(dir, "fifo.example", "hosts.toml")} cannot be read (a fifo; it must be a regular file)`);
      await mkdir(path.join(dir, "big.example"));
      await writeFile(path.join(dir, "big.example", "hosts.toml"), `# ${"x".repeat(MAX_HOSTS_TOML_BYTES)}\n`);
      await assert.rejects(loadHosts(dir, "big.example"), /big\.example\/hosts\.toml is 1048579 bytes, over the limit of 1048576 bytes/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
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

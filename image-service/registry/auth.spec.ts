import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { credentialsFromDockerConfig, normaliseCredentials, parseTokenResponse, parseWwwAuthenticate, TokenCache } from "./auth.ts";

describe("WWW-Authenticate", () => {
  it("parses a bearer challenge with quoted params", () => {
    assert.deepEqual(parseWwwAuthenticate(`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"`), [
      { scheme: "bearer", params: { realm: "https://auth.docker.io/token", service: "registry.docker.io", scope: "repository:library/busybox:pull" } },
    ]);
  });
  it("parses basic, unquoted values, escapes and several challenges", () => {
    assert.deepEqual(parseWwwAuthenticate(`Basic realm="a \\"b\\"", Bearer realm=https://x/t, service=s`), [
      { scheme: "basic", params: { realm: 'a "b"' } },
      { scheme: "bearer", params: { realm: "https://x/t", service: "s" } },
    ]);
  });
  it("keeps commas inside quoted scopes", () => {
    assert.equal(parseWwwAuthenticate(`Bearer realm="r",scope="repository:a:pull,push"`)[0]!.params.scope, "repository:a:pull,push");
  });
});

describe("credentials", () => {
  it("decodes auth into username and password", () => {
    assert.deepEqual(normaliseCredentials({ auth: Buffer.from("u:p:w").toString("base64") }), { username: "u", password: "p:w" });
    assert.equal(normaliseCredentials({ username: "", password: "" }), undefined);
    assert.deepEqual(normaliseCredentials({ identityToken: "id" }), { identityToken: "id" });
  });
  it("reads docker config.json, docker.io under its legacy key", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "berth-auth-"));
    try {
      const f = path.join(dir, "config.json");
      await writeFile(f, JSON.stringify({ auths: {
        "https://index.docker.io/v1/": { auth: Buffer.from("hub:pw").toString("base64") },
        "reg.example:5000": { username: "u", password: "p" },
        "tok.example": { identitytoken: "refresh" },
      } }));
      assert.deepEqual(await credentialsFromDockerConfig(f, "registry-1.docker.io"), { username: "hub", password: "pw" });
      assert.deepEqual(await credentialsFromDockerConfig(f, "reg.example:5000"), { username: "u", password: "p" });
      assert.deepEqual(await credentialsFromDockerConfig(f, "tok.example"), { identityToken: "refresh" });
      assert.equal(await credentialsFromDockerConfig(f, "none.example"), undefined);
      assert.equal(await credentialsFromDockerConfig(path.join(dir, "missing.json"), "x"), undefined);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("tokens", () => {
  it("reads token or access_token and expiry", () => {
    assert.deepEqual(parseTokenResponse(`{"token":"t","expires_in":300}`), { token: "t", expiresIn: 300 });
    assert.deepEqual(parseTokenResponse(`{"access_token":"a"}`), { token: "a", expiresIn: 60 });
    assert.equal(parseTokenResponse(`{}`), undefined);
    assert.equal(parseTokenResponse(`nope`), undefined);
  });
  it("caches until shortly before expiry", () => {
    let now = 1_000_000;
    const c = new TokenCache(() => now);
    c.set("k", "t", 300);
    assert.equal(c.get("k"), "t");
    now += 289_000;
    assert.equal(c.get("k"), "t");
    now += 2_000;
    assert.equal(c.get("k"), undefined);
  });
});

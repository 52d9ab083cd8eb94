import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { BerthError, Code } from "../oci-runtime/foundation/errdefs.ts";
import { defaultRegistryHost, formatReference, parseReference, repoTag } from "./reference.ts";

const D = "sha256:" + "a".repeat(64);

describe("parseReference", () => {
  const cases: [string, string][] = [
    ["busybox", "docker.io/library/busybox:latest"],
    ["busybox:1.36", "docker.io/library/busybox:1.36"],
    ["library/busybox", "docker.io/library/busybox:latest"],
    ["docker.io/busybox", "docker.io/library/busybox:latest"],
    ["index.docker.io/library/busybox", "docker.io/library/busybox:latest"],
    ["user/app", "docker.io/user/app:latest"],
    ["quay.io/a/b/c:v1", "quay.io/a/b/c:v1"],
    ["localhost/app", "localhost/app:latest"],
    ["localhost:5000/app", "localhost:5000/app:latest"],
    ["127.0.0.1:5000/a_b/c-d__e.f:T_1.2-x", "127.0.0.1:5000/a_b/c-d__e.f:T_1.2-x"],
    [`busybox@${D}`, `docker.io/library/busybox@${D}`],
    [`busybox:1.36@${D}`, `docker.io/library/busybox:1.36@${D}`],
  ];
  for (const [input, want] of cases) it(`normalises ${input}`, () => assert.equal(formatReference(parseReference(input)), want));

  it("records a repo tag only without a digest", () => {
    assert.equal(repoTag(parseReference("busybox")), "docker.io/library/busybox:latest");
    assert.equal(repoTag(parseReference(`busybox:1@${D}`)), undefined);
  });

  it("maps docker.io to registry-1.docker.io", () => {
    assert.equal(defaultRegistryHost(parseReference("busybox").domain), "registry-1.docker.io");
    assert.equal(defaultRegistryHost("quay.io"), "quay.io");
  });

  for (const bad of ["", "Busybox", "busybox:", "busybox@sha256:abc", "a//b", "-a", "busybox:tag with space", "busybox:" + "t".repeat(129), ":tag", "host:port:x/y"]) {
    it(`refuses ${JSON.stringify(bad)} naming it`, () => {
      assert.throws(() => parseReference(bad), (err: BerthError) => {
        assert.equal(err.code, Code.INVALID_ARGUMENT);
        assert.ok(err.message.includes(JSON.stringify(bad)), err.message);
        return true;
      });
    });
  }
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { parseJunit, formatReport, summarize, decodeXml, messageLine, failureCauses } from "./junit.ts";
import { hostsToml } from "./mirrors.ts";
import { critestCommand, parseArgs } from "./run.ts";
import { mountsUnder } from "./cleanup.ts";

// Shaped like ginkgo v2's --ginkgo.junit-report output.
const XML = `<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="4" disabled="1" errors="0" failures="1" time="1.5">
  <testsuite name="CRI validation" tests="4" skipped="1" failures="1">
    <testcase name="[BeforeSuite]" classname="CRI validation" status="passed" time="0.0001"></testcase>
    <testcase name="[It] [k8s.io] Runtime info runtime should return version info [Conformance]" classname="CRI validation" status="passed" time="0.25"></testcase>
    <testcase name="[It] [k8s.io] Image Manager public image with tag should be pulled and removed [Conformance]" classname="CRI validation" status="failed" time="1.2">
      <failure message="Unexpected error:&#xA;    &lt;*fmt.wrapError | 0xc0002e23a0&gt;: &#xA;    failed to pull: rpc error: code = Unimplemented desc = PullImage is not implemented&#xA;    {" type="failed">[FAILED] Unexpected error</failure>
      <system-err>&gt; Enter [BeforeEach]</system-err>
    </testcase>
    <testcase name="[It] [k8s.io] Container&#39;s OOM" classname="CRI validation" status="skipped" time="0">
      <skipped message="skipped"></skipped>
    </testcase>
  </testsuite>
</testsuites>`;

test("parses status, time and the telling failure line", () => {
  const r = parseJunit(XML);
  assert.deepEqual(r.map((x) => x.status), ["passed", "passed", "failed", "skipped"]);
  assert.equal(r[1]!.time, 0.25);
  assert.equal(r[2]!.message, "failed to pull: rpc error: code = Unimplemented desc = PullImage is not implemented");
  assert.equal(r[3]!.name, "[It] [k8s.io] Container's OOM");
  assert.deepEqual(summarize(r), { passed: 1, failed: 1, skipped: 1, total: 3 }, "[BeforeSuite] is not a spec");
});

test("status comes from child elements when the attribute is missing", () => {
  const r = parseJunit(`<testcase name="a"><failure message="boom"/></testcase><testcase name="b"/><testcase name="c"><skipped/></testcase>`);
  assert.deepEqual(r.map((x) => [x.name, x.status, x.message]), [["a", "failed", "boom"], ["b", "passed", undefined], ["c", "skipped", undefined]]);
});

test("report lists passed and failed specs and a summary line", () => {
  const text = formatReport(parseJunit(XML));
  assert.match(text, /^PASSED \(2\):\n {2}ok {4}\[BeforeSuite\]/);
  assert.match(text, /\n {2}ok {4}\[k8s.io\] Runtime info runtime should return version info \[Conformance\] \(0\.3s\)\n/);
  assert.match(text, /FAILED \(1\):\n {2}FAIL {2}\[k8s.io\] Image Manager public image with tag should be pulled and removed \[Conformance\] \(1\.2s\)\n {10}failed to pull: rpc error/);
  assert.match(text, /critest summary: 1 passed, 1 failed, 1 skipped, 3 specs\n$/);
});

test("decodes named and numeric entities", () => {
  assert.equal(decodeXml("&lt;a&gt; &amp; &#34;b&#34; &#xA;&apos;"), `<a> & "b" \n'`);
  assert.equal(messageLine("Expected\n    <string>: Error\nto equal\n    <string>: OOMKilled"), "Expected <string>: Error to equal <string>: OOMKilled");
  assert.equal(messageLine(""), undefined);
});

test("hosts.toml mirrors pulls and resolves to the loopback registry", () => {
  assert.equal(hostsToml("registry.k8s.io", "http://127.0.0.1:5000"), [
    'server = "https://registry.k8s.io"', "", '[host."http://127.0.0.1:5000"]', '  capabilities = ["pull", "resolve"]', "  skip_verify = true", "",
  ].join("\n"));
  assert.match(hostsToml("docker.io", "http://127.0.0.1:5000"), /^server = "https:\/\/registry-1\.docker\.io"/);
  assert.throws(() => hostsToml("gcr.io", "127.0.0.1:5000"), /mirror must be an http\(s\):\/\/host\[:port\] url, got "127.0.0.1:5000"/);
});

test("runner flags are split from critest's, and critest gets endpoints and a JUnit report", () => {
  assert.deepEqual(parseArgs(["--keep", "--ginkgo.focus", "Runtime info"]), { keep: true, containerd: false, critestArgs: ["--ginkgo.focus", "Runtime info"] });
  assert.equal(parseArgs(["--containerd"]).containerd, true);
  assert.deepEqual(parseArgs(["--junit-out", "/tmp/j.xml", "--ginkgo.v"]), { keep: false, containerd: false, junitOut: "/tmp/j.xml", critestArgs: ["--ginkgo.v"] });
  assert.equal(parseArgs(["--junit-out=/tmp/k.xml"]).junitOut, "/tmp/k.xml");
  const cmd = critestCommand("/tmp/x/berth.sock", "/tmp/x/junit.xml", ["--ginkgo.skip", "OOM"], false);
  assert.deepEqual(cmd, [
    "--runtime-endpoint=unix:///tmp/x/berth.sock", "--image-endpoint=unix:///tmp/x/berth.sock", "--ginkgo.v",
    "--ginkgo.junit-report=/tmp/x/junit.xml", "--ginkgo.no-color", "--ginkgo.skip", "OOM",
  ]);
});

test("mountsUnder picks mounts below the work dir, deepest first, with octal escapes undone", () => {
  const info = [
    "22 1 0:21 / / rw - ext4 /dev/vda rw",
    "40 22 0:40 / /tmp/w/root/a rw - overlay overlay rw",
    "41 40 0:41 / /tmp/w/root/a/mnt\\040x rw - tmpfs tmpfs rw",
    "42 22 0:42 / /tmp/wx rw - tmpfs tmpfs rw",
  ].join("\n");
  assert.deepEqual(mountsUnder("/tmp/w", info), ["/tmp/w/root/a/mnt x", "/tmp/w/root/a"]);
});

test("failures are grouped by message with run-specific parts masked", () => {
  const fail = (name: string, message: string) => ({ name, status: "failed" as const, time: 0, message });
  const causes = failureCauses([
    fail("a", `validate CRI v1 image API for endpoint "unix:///tmp/berth-critest-X7A9Rk/berthd/state/berth.sock": rpc error: code = Unimplemented desc = ImageFsInfo`),
    fail("b", `validate CRI v1 image API for endpoint "unix:///tmp/berth-critest-Q1w2E3/berthd/state/berth.sock": rpc error: code = Unimplemented desc = ImageFsInfo`),
    fail("c", `rpc error: code = NotFound desc = sandbox "cb7cf461-5b15-4911-b9ec-6bf6ba6110b2": not found`),
    { name: "d", status: "passed" as const, time: 0 },
  ]);
  assert.deepEqual(causes, [
    { message: `validate CRI v1 image API for endpoint "unix://<tmp>": rpc error: code = Unimplemented desc = ImageFsInfo`, count: 2 },
    { message: `rpc error: code = NotFound desc = sandbox "<uuid>": not found`, count: 1 },
  ]);
  assert.match(formatReport([...parseJunit(XML), fail("x", "boom")]), /FAILURE CAUSES \(specs per distinct message\):\n {5}1 {2}boom\n/);
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { BerthError, Code } from "../../oci-runtime/foundation/errdefs.ts";
import { containerLogPath } from "./log-path.ts";

const refused = (dir: string, path: string, re: RegExp) =>
  assert.throws(() => containerLogPath(dir, path), (e) => e instanceof BerthError && e.code === Code.INVALID_ARGUMENT && re.test(e.message));

test("kubelet's paths join under the pod's log directory", () => {
  assert.equal(containerLogPath("/var/log/pods/ns_pod_uid", "c/0.log"), "/var/log/pods/ns_pod_uid/c/0.log");
  assert.equal(containerLogPath("/var/log/pods/ns_pod_uid/", "./c/1.log"), "/var/log/pods/ns_pod_uid/c/1.log");
  assert.equal(containerLogPath("", "c/0.log"), "");
  assert.equal(containerLogPath("/var/log/pods/x", ""), "");
});

test("'..', absolute log paths, relative directories, ':' and control characters are refused naming the field", () => {
  refused("/var/log/pods/x", "../../../etc/cron.d/x", /config\.log_path "\.\.\/\.\.\/\.\.\/etc\/cron\.d\/x" must not contain "\.\." components/);
  refused("/var/log/pods/x", "c/../../y.log", /config\.log_path/);
  refused("/var/log/pods/x/../..", "c/0.log", /sandbox_config\.log_directory .* "\.\." components/);
  refused("/var/log/pods/x", "/etc/passwd", /config\.log_path "\/etc\/passwd" must be relative/);
  refused("var/log/pods/x", "c/0.log", /sandbox_config\.log_directory "var\/log\/pods\/x" must be an absolute path/);
  refused("/var/log/pods/x", "c/0.log\n", /config\.log_path .* control characters/);
  refused("/var/log/pods/x", "c\u0000/0.log", /config\.log_path/);
  refused("/var/log/pods/x:y", "c/0.log", /sandbox_config\.log_directory .* must not contain ":"/);
  refused("/var/log/pods/x", ".", /must name a file under/);
  refused("/var/log/pods/x", "a".repeat(5000), /longer than 4096/);
});

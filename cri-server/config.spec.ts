import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, defaultConfig, formatConfig, parseConfig } from "./config.ts";

test("an empty file gives the defaults", () => {
  assert.deepEqual(parseConfig("", "f.toml"), defaultConfig());
});

test("the printed default config parses back to itself", () => {
  assert.deepEqual(parseConfig(formatConfig(defaultConfig()), "f.toml"), defaultConfig());
});

test("runtime.exec_drain_timeout defaults to 1 second and can be set, 0 to 60", () => {
  assert.equal(defaultConfig().runtime.exec_drain_timeout, 1);
  assert.equal(parseConfig("[runtime]\nexec_drain_timeout = 0.25\n", "f").runtime.exec_drain_timeout, 0.25);
  assert.throws(() => parseConfig("[runtime]\nexec_drain_timeout = 61\n", "f"), /key "runtime\.exec_drain_timeout" must be a number of seconds from 0 to 60, got 61/);
});

test("runtime.shm_size: a positive integer of bytes up to 10^15 (what berth-mount mounts)", () => {
  assert.equal(parseConfig("[runtime]\nshm_size = 1000000000000000\n", "f").runtime.shm_size, 1e15);
  assert.throws(() => parseConfig("[runtime]\nshm_size = 1000000000000001\n", "f"), /key "runtime\.shm_size" must be a positive integer of bytes, at most 10\^15, got 1000000000000001/);
  assert.throws(() => parseConfig("[runtime]\nshm_size = 0\n", "f"), /runtime\.shm_size/);
});

test("runtime.drop_infra defaults to true and can be turned off; it must be a boolean", () => {
  assert.equal(defaultConfig().runtime.drop_infra, true);
  assert.equal(parseConfig("[runtime]\ndrop_infra = false\n", "f").runtime.drop_infra, false);
  assert.throws(() => parseConfig('[runtime]\ndrop_infra = "no"\n', "f"), /runtime\.drop_infra/);
});

test("image.max_layer_bytes and image.max_layer_entries default to 32 GiB and 1,000,000 and are checked", () => {
  assert.equal(defaultConfig().image.max_layer_bytes, 32 * 1024 ** 3);
  assert.equal(defaultConfig().image.max_layer_entries, 1_000_000);
  const c = parseConfig("[image]\nmax_layer_bytes = 1048576\nmax_layer_entries = 500\n", "f");
  assert.deepEqual({ max_layer_bytes: c.image.max_layer_bytes, max_layer_entries: c.image.max_layer_entries }, { max_layer_bytes: 1048576, max_layer_entries: 500 });
  assert.throws(() => parseConfig("[image]\nmax_layer_bytes = 10\n", "f"), /key "image\.max_layer_bytes" must be an integer of bytes, at least 1024, got 10/);
  assert.throws(() => parseConfig("[image]\nmax_layer_entries = 0\n", "f"), /key "image\.max_layer_entries" must be a positive integer, got 0/);
  assert.throws(() => parseConfig("[image]\nmax_layer_entries = 1.5\n", "f"), /key "image\.max_layer_entries" must be a positive integer, got 1\.5/);
});

test("runtime.log_line_max and runtime.pause_image are gone (conmon has no line limit; infra runs berth's built-in rootfs)", () => {
  for (const key of ["log_line_max = 16384", 'pause_image = ""']) {
    assert.throws(() => parseConfig(`[runtime]\n${key}\n`, "f"), (err) => err instanceof ConfigError && /unknown key "runtime\.(log_line_max|pause_image)"/.test(err.message));
  }
});

test("runtime.runtime_timeout defaults to 120 seconds and can be set", () => {
  assert.equal(defaultConfig().runtime.runtime_timeout, 120);
  assert.equal(parseConfig("[runtime]\nruntime_timeout = 2.5\n", "f").runtime.runtime_timeout, 2.5);
});

test("stream.max_header_bytes defaults to 64 KiB and is bounded", () => {
  assert.equal(defaultConfig().stream.max_header_bytes, 65536);
  assert.equal(parseConfig("[stream]\nmax_header_bytes = 4096\n", "f").stream.max_header_bytes, 4096);
  assert.throws(() => parseConfig("[stream]\nmax_header_bytes = 100\n", "f"), /key "stream\.max_header_bytes" must be an integer of bytes from 1024 to 16777216, got 100/);
});

test("image.pinned_images defaults to none and takes globs; bad ones are refused naming the entry", () => {
  assert.deepEqual(defaultConfig().image.pinned_images, []);
  assert.deepEqual(parseConfig('[image]\npinned_images = ["registry.k8s.io/pause:*"]\n', "f").image.pinned_images, ["registry.k8s.io/pause:*"]);
  assert.throws(() => parseConfig('[image]\npinned_images = ["a b"]\n', "f"), /key "image\.pinned_images" entry "a b" must not contain spaces/);
  assert.throws(() => parseConfig('[image]\npinned_images = [""]\n', "f"), /key "image\.pinned_images" entry "" must not be empty/);
});

test("runtime.monitor picks conmon or berth-monitor; anything else is refused naming the value", () => {
  assert.equal(defaultConfig().runtime.monitor, "berth");
  assert.equal(parseConfig('[runtime]\nmonitor = "berth"\n', "f").runtime.monitor, "berth");
  assert.equal(parseConfig('[runtime]\nmonitor = "conmon"\n', "f").runtime.monitor, "conmon");
  assert.throws(() => parseConfig('[runtime]\nmonitor = "crun"\n', "f"),
    (err) => err instanceof ConfigError && err.message.includes('key "runtime.monitor" must be "berth" or "conmon"') && err.message.includes('"crun"'));
});

test("runtime.conmon_cgroup defaults to \"pod\" and takes a cgroup path; bad paths are refused naming the value", () => {
  assert.equal(defaultConfig().runtime.conmon_cgroup, "pod");
  assert.equal(parseConfig('[runtime]\nconmon_cgroup = "system.slice/berth-conmon"\n', "f").runtime.conmon_cgroup, "system.slice/berth-conmon");
  assert.equal(parseConfig('[runtime]\nconmon_cgroup = "/berth-conmon"\n', "f").runtime.conmon_cgroup, "/berth-conmon");
  for (const bad of ["", "../escape", "a/../b", "a//b", "a/", "a b", "a\\nb", "x".repeat(256)]) {
    assert.throws(() => parseConfig(`[runtime]\nconmon_cgroup = ${JSON.stringify(bad)}\n`, "f"),
      (err) => err instanceof ConfigError && err.message.includes(`key "runtime.conmon_cgroup" must be "pod" or a cgroup path`) && err.message.includes(JSON.stringify(bad)));
  }
});

test("cdi.spec_dirs defaults to /etc/cdi and /var/run/cdi; relative paths are refused", () => {
  assert.deepEqual(defaultConfig().cdi.spec_dirs, ["/etc/cdi", "/var/run/cdi"]);
  assert.deepEqual(parseConfig('[cdi]\nspec_dirs = ["/x"]\n', "f").cdi.spec_dirs, ["/x"]);
  assert.throws(() => parseConfig('[cdi]\nspec_dirs = ["rel"]\n', "f"), /key "cdi\.spec_dirs" must be at most 16 absolute paths, got \["rel"\]/);
});

test("image.signature_policy, signature_policy_dir and registries_d: off, off, /etc/containers/registries.d; paths must be absolute", () => {
  const d = defaultConfig().image;
  assert.deepEqual([d.signature_policy, d.signature_policy_dir, d.registries_d], ["", "", "/etc/containers/registries.d"]);
  const c = parseConfig('[image]\nsignature_policy = "/etc/berth/policy.json"\nsignature_policy_dir = "/etc/berth/policies"\nregistries_d = "/etc/berth/registries.d"\n', "f").image;
  assert.deepEqual([c.signature_policy, c.signature_policy_dir, c.registries_d], ["/etc/berth/policy.json", "/etc/berth/policies", "/etc/berth/registries.d"]);
  assert.throws(() => parseConfig('[image]\nsignature_policy = "policy.json"\n', "f"), /key "image\.signature_policy" must be "" or an absolute path, got "policy\.json"/);
  assert.throws(() => parseConfig('[image]\nsignature_policy_dir = "rel"\n', "f"), /key "image\.signature_policy_dir" must be "" or an absolute path, got "rel"/);
  assert.throws(() => parseConfig('[image]\nregistries_d = ""\n', "f"), /key "image\.registries_d" must be an absolute path, got ""/);
});

test("state moves the socket and handler roots unless they are set", () => {
  const c = parseConfig('state = "/s"\n[runtime.handlers.runc]\nroot = "/r"\n[runtime.handlers.kata]\nbinary = "/bin/kata"\n', "f");
  assert.equal(c.grpc.address, "/s/berth.sock");
  assert.equal(c.runtime.handlers["runc"]!.root, "/r");
  assert.equal(c.runtime.handlers["crun"]!.root, "/s/crun");
  assert.deepEqual(c.runtime.handlers["kata"], { binary: "/bin/kata", root: "/s/kata" });
  assert.equal(parseConfig('state = "/s"\n[grpc]\naddress = "/g.sock"\n', "f").grpc.address, "/g.sock");
});

for (const [text, re] of [
  ['nope = 1', /f: unknown key "nope"/],
  ['[grpc]\naddress = 5', /key "grpc\.address" must be of type string, got number 5/],
  ['root = "relative"', /key "root" must be an absolute path, got "relative"/],
  ['[registry]\nmax_concurrent_downloads = 0', /max_concurrent_downloads.*got 0/],
  ['[log]\nlevel = "loud"', /key "log\.level" must be one of/],
  ['[cni]\nbin_dirs = [1]', /must be an array of strings/],
  ['[runtime.handlers.x]\nbogus = "y"', /unknown key "runtime\.handlers\.x\.bogus"/],
  ['[stream]\ntls_cert = "/c"', /must be set together/],
  ['[runtime]\nseccomp_default = "strict"', /seccomp_default/],
  ['[runtime]\nruntime_timeout = 0', /key "runtime\.runtime_timeout" must be a positive number of seconds, at most 3600, got 0/],
] as const) {
  test(`refuses ${JSON.stringify(text)}`, () => {
    assert.throws(() => parseConfig(text, "f"), (err) => err instanceof ConfigError && re.test(err.message));
  });
}

// Generated configs parse and carry what the benchmark relies on.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parse } from "smol-toml";
import { parseConfig } from "../../cri-server/config.ts";
import { berthToml } from "./berth.ts";
import { containerdConfig } from "./containerd.ts";
import { hostsToml } from "./env.ts";

test("containerd config is version 2 TOML with its own paths, mirrors, CNI and cgroupfs", () => {
  const cfg = parse(containerdConfig({
    root: "/t/root", state: "/t/state", socket: "/t/c.sock", runcRoot: "/t/state/runc",
    sandboxImage: "127.0.0.1:5000/bench/pause:bench", cniConfDir: "/t/cni", hostsDir: "/t/certs.d",
  })) as Record<string, any>;
  assert.equal(cfg.version, 2);
  assert.equal(cfg.root, "/t/root");
  assert.equal(cfg.grpc.address, "/t/c.sock");
  const cri = cfg.plugins["io.containerd.grpc.v1.cri"];
  assert.equal(cri.sandbox_image, "127.0.0.1:5000/bench/pause:bench");
  assert.equal(cri.restrict_oom_score_adj, true);
  assert.equal(cri.containerd.snapshotter, "overlayfs");
  assert.equal(cri.containerd.runtimes.runc.options.SystemdCgroup, false);
  assert.equal(cri.containerd.runtimes.runc.options.Root, "/t/state/runc");
  assert.deepEqual(cri.cni, { bin_dir: "/usr/lib/cni", conf_dir: "/t/cni" });
  assert.equal(cri.registry.config_path, "/t/certs.d");
});

test("berth config extra is accepted by berth's own parser", () => {
  const cfg = parseConfig(`root = "/t/root"\nstate = "/t/state"\n${berthToml({ hostsDir: "/t/certs.d", cniConfDir: "/t/cni" })}`, "bench.toml");
  assert.equal(cfg.registry.config_path, "/t/certs.d");
  assert.equal(cfg.cni.conf_dir, "/t/cni");
  assert.deepEqual(cfg.cni.bin_dirs, ["/usr/lib/cni"]);
  assert.equal(cfg.runtime.handlers["runc"]!.root, "/t/state/runc");
});

test("hosts.toml points the registry at plain http", () => {
  const h = parse(hostsToml("127.0.0.1:5000")) as Record<string, any>;
  assert.equal(h.server, "http://127.0.0.1:5000");
  assert.deepEqual(h.host["http://127.0.0.1:5000"].capabilities, ["pull", "resolve"]);
});

test("describeBerthd tells dist/ from sources and lists V8 flags", async () => {
  const { describeBerthd } = await import("./berth.ts");
  assert.equal(describeBerthd(["/n/node", "--max-semi-space-size=1", "--disable-warning=ExperimentalWarning", "/r/dist/cri-server/main.js", "--config", "x"]), "dist/, --max-semi-space-size=1");
  assert.match(describeBerthd(["/n/node", "--disable-warning=ExperimentalWarning", "/r/cri-server/main.ts"]), /^TypeScript sources .*, V8 defaults$/);
  assert.equal(describeBerthd(["/n/node", "/r/.bench/berthd-Ab12/cri-server/main.js"]), "compiled snapshot, V8 defaults");
  assert.equal(describeBerthd(["sleep", "1"]), "unknown");
});

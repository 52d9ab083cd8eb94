// Runtime info over the real socket: Version, Status, RuntimeConfig, UpdateRuntimeConfig,
// UNIMPLEMENTED answers, config validation and daemon lifecycle.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import http2 from "node:http2";
import { connect as netConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BERTHD, startBerthd, withTestMonitor, type Berthd } from "../lib/berthd.ts";
import { codeOf, connect, grpc } from "../lib/cri-client.ts";
import { unmountUnder } from "../lib/mounts.ts";
import { eventually } from "../lib/oci-itest-env.ts";
import { exitStatus, exitWithin } from "../lib/procs.ts";
import { CgroupDriver } from "../../proto/gen/runtime/v1/api_pb.js";

describe("runtime info", () => {
  let b: Berthd;
  before(async () => { b = await startBerthd(); });
  after(async () => { await b.cleanup(); });

  test("Version names berth and the v1 API", async () => {
    const v = await b.client.runtime.version({ version: "v1" });
    assert.equal(v.runtimeName, "berth");
    assert.equal(v.runtimeApiVersion, "v1");
    assert.match(v.runtimeVersion, /^\d+\.\d+\.\d+/);
  });

  test("Status reports RuntimeReady and NetworkReady with reasons", async () => {
    const s = await b.client.runtime.status({});
    const conds = Object.fromEntries(s.status!.conditions.map((c) => [c.type, c]));
    assert.equal(conds["RuntimeReady"]?.status, true);
    assert.ok(conds["NetworkReady"], "NetworkReady condition present");
    if (!conds["NetworkReady"]!.status) assert.notEqual(conds["NetworkReady"]!.reason, "");
    assert.deepEqual(s.info, {}, "no info without verbose");
    assert.ok(s.runtimeHandlers.some((h) => h.name === "runc"));
    assert.equal(s.features?.supplementalGroupsPolicy, true);
  });

  test("Status verbose adds the effective config", async () => {
    const s = await b.client.runtime.status({ verbose: true });
    const cfg = JSON.parse(s.info["config"]!);
    assert.equal(cfg.root, b.root);
    assert.equal(cfg.state, b.state);
  });

  test("RuntimeConfig answers the cgroupfs driver", async () => {
    const r = await b.client.runtime.runtimeConfig({});
    assert.equal(r.linux?.cgroupDriver, CgroupDriver.CGROUPFS);
  });

  test("UpdateRuntimeConfig stores the pod CIDR and refuses a bad one", async () => {
    await b.client.runtime.updateRuntimeConfig({ runtimeConfig: { networkConfig: { podCidr: "10.244.0.0/24" } } });
    const s = await b.client.runtime.status({ verbose: true });
    assert.equal(JSON.parse(s.info["config"]!).podCidr, "10.244.0.0/24");
    await assert.rejects(
      b.client.runtime.updateRuntimeConfig({ runtimeConfig: { networkConfig: { podCidr: "10.0.0.0/99" } } }),
      (err) => codeOf(err) === grpc.status.INVALID_ARGUMENT && /pod_cidr.*10\.0\.0\.0\/99/.test(String((err as Error).message)),
    );
    const after2 = await b.client.runtime.status({ verbose: true });
    assert.equal(JSON.parse(after2.info["config"]!).podCidr, "10.244.0.0/24", "a refused update changes nothing");
  });

  test("the socket is created 0660", () => {
    assert.equal(statSync(b.socket).mode & 0o777, 0o660);
  });

  test("a second berthd on the same socket is refused", async () => {
    const r = spawnSync(BERTHD, ["--config", b.configPath], { encoding: "utf8", timeout: 20_000 });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /another berthd \(pid \d+\) holds/);
    // The first daemon still answers.
    await b.client.runtime.version({});
  });
});

describe("network readiness", () => {
  test("NetworkReady is false with a reason while conf_dir has no config, and notices one that appears", async () => {
    const dir = await mkdtemp(join(tmpdir(), "berth-cni-empty-"));
    const b = await startBerthd({ toml: `[cni]\nconf_dir = "${dir}"\n` });
    try {
      const cond = async () => (await b.client.runtime.status({})).status!.conditions.find((c) => c.type === "NetworkReady")!;
      const before = await cond();
      assert.equal(before.status, false);
      assert.equal(before.reason, "NetworkPluginNotReady");
      assert.ok(before.message.includes(dir), "the message names conf_dir");
      await writeFile(join(dir, "10-late.conflist"), JSON.stringify({
        cniVersion: "1.0.0", name: "late", plugins: [{ type: "loopback" }],
      }));
      const after2 = await cond();
      assert.equal(after2.status, true, after2.message);
    } finally {
      await b.cleanup();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("daemon lifecycle and config", () => {
  test("SIGTERM removes the socket and exits 0; a stale socket is replaced", async () => {
    const b = await startBerthd();
    try {
      assert.equal(await b.stop(), 0);
      assert.equal(existsSync(b.socket), false);
      // Leave a stale socket file and lock of a dead process behind, then restart.
      await writeFile(b.socket, "");
      await writeFile(`${b.socket}.lock`, "999999\n");
      await b.restart();
      const v = await b.client.runtime.version({});
      assert.equal(v.runtimeName, "berth");
    } finally {
      await b.cleanup();
    }
  });

  test("a SIGTERM the moment the socket is bound, before berthd's start has finished, still stops it cleanly", async () => {
    // The kernel accepts on the socket from bind(); kubelet or a supervisor may ask berthd to stop
    // then. That used to find no handler yet: berthd died by the signal and left socket and lock.
    const dir = await mkdtemp(join(tmpdir(), "berth-early-term-"));
    try {
      const state = join(dir, "state");
      const socket = join(state, "berth.sock");
      const config = join(dir, "berth.toml");
      await writeFile(config, withTestMonitor(`root = "${join(dir, "root")}"\nstate = "${state}"\n`));
      for (let round = 0; round < 3; round++) {
        const proc = spawn(BERTHD, ["--config", config], { stdio: ["ignore", "ignore", "pipe"] });
        let stderr = "";
        proc.stderr!.setEncoding("utf8").on("data", (d: string) => { stderr += d; });
        const deadline = Date.now() + 30_000;
        while (!existsSync(socket) && proc.exitCode === null && Date.now() < deadline) await new Promise((r) => setImmediate(r));
        assert.ok(existsSync(socket), `round ${round}: berthd bound its socket within 30 s: ${stderr}`);
        proc.kill("SIGTERM");
        if (!(await exitWithin(proc, 60_000))) proc.kill("SIGKILL");
        assert.deepEqual(await exitStatus(proc), [0, null], `round ${round}: exit 0, not a death by signal: ${stderr}`);
        assert.equal(existsSync(socket), false, `round ${round}: the socket is removed`);
        assert.equal(existsSync(`${socket}.lock`), false, `round ${round}: the lock is released`);
      }
    } finally {
      unmountUnder(dir);
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("a second SIGTERM or SIGINT while berthd waits for a call in flight ends it at once", async () => {
    for (const [first, second] of [["SIGTERM", "SIGINT"], ["SIGINT", "SIGTERM"]] as const) {
      const b = await startBerthd();
      const session = http2.connect("http://localhost", { createConnection: () => netConnect(b.socket) });
      try {
        session.on("error", () => {}); // berthd's end of the connection goes with it
        const call = (path: string, end: boolean) => {
          const req = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers" }, { endStream: false });
          req.on("error", () => {});
          if (end) req.end(Buffer.from([0, 0, 0, 0, 0])); // an empty VersionRequest
          return req;
        };
        const answered = (req: http2.ClientHttp2Stream) => new Promise<void>((resolve, reject) => {
          req.on("response", () => resolve());
          req.on("close", () => reject(new Error("closed before an answer")));
        });
        // A call whose message never comes: berthd's stop waits for it (up to its 10 s grace).
        const hanging = call("/runtime.v1.RuntimeService/Version", false);
        // Frames are read in order: once this is answered, berthd has the hanging call open.
        await answered(call("/runtime.v1.RuntimeService/Version", true));
        b.proc.kill(first);
        // The first signal was taken when berthd says so; the second then finds no handler.
        await eventually(() => b.stderr.join("").includes('"msg":"berthd stopping"'), 5_000, 25);
        assert.equal(b.proc.exitCode, null, `${first}: still waiting for the call in flight`);
        b.proc.kill(second);
        assert.deepEqual(await exitStatus(b.proc), [null, second], `${first} then ${second}: ended by the second signal, not after the grace`);
        hanging.close();
      } finally {
        session.destroy();
        await b.cleanup();
      }
    }
  });

  test("a bad config stops berthd with the file, key and value named", async () => {
    const dir = await mkdtemp(join(tmpdir(), "berth-cfg-"));
    try {
      const cases: [string, RegExp][] = [
        ['[grpc]\nadress = "/x"\n', /unknown key "grpc\.adress"/],
        ["[stream]\nport = 70000\n", /key "stream\.port" must be a port.*70000/],
        ['[cni]\nbin_dirs = "/opt/cni/bin"\n', /key "cni\.bin_dirs" must be of type array, got string/],
        ['[runtime]\ndefault_handler = "kata"\n', /runtime\.default_handler.*"kata"/],
        ["root = \n", /invalid TOML/],
      ];
      for (const [text, re] of cases) {
        const file = join(dir, "bad.toml");
        await writeFile(file, text);
        const run = spawnSync(BERTHD, ["--config", file], { encoding: "utf8", timeout: 20_000 });
        assert.equal(run.status, 1, text);
        assert.match(run.stderr, re);
        assert.ok(run.stderr.includes(file), "names the file");
        const check = spawnSync(BERTHD, ["config", "check", "--config", file], { encoding: "utf8", timeout: 20_000 });
        assert.equal(check.status, 1);
        assert.match(check.stderr, re);
      }
      const good = join(dir, "good.toml");
      const def = spawnSync(BERTHD, ["config", "default"], { encoding: "utf8", timeout: 20_000 });
      assert.equal(def.status, 0);
      assert.match(def.stdout, /\[runtime\.handlers\.runc\]/);
      await writeFile(good, def.stdout);
      const check = spawnSync(BERTHD, ["config", "check", "--config", good], { encoding: "utf8", timeout: 20_000 });
      assert.equal(check.status, 0, check.stderr);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("RPCs without an implementation and malformed requests", () => {
  let b: Berthd;
  before(async () => { b = await startBerthd(); });
  after(async () => { await b.cleanup(); });

  test("CheckpointPod answers UNIMPLEMENTED naming the RPC", async () => {
    await assert.rejects(b.client.runtime.checkpointPod({ podSandboxId: "x" }), (err) => {
      assert.equal(codeOf(err), grpc.status.UNIMPLEMENTED);
      assert.match((err as Error).message, /CheckpointPod/);
      return true;
    });
  });

  test("a malformed message is INVALID_ARGUMENT and berthd stays up", async () => {
    const ch = new grpc.Client(`unix://${b.socket}`, grpc.credentials.createInsecure());
    try {
      const garbage = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]);
      await assert.rejects(new Promise((resolve, reject) => {
        ch.makeUnaryRequest("/runtime.v1.RuntimeService/Version", (x: Buffer) => x, (x: Buffer) => x, garbage, (err, res) => (err ? reject(err) : resolve(res)));
      }), (err) => codeOf(err) === grpc.status.INVALID_ARGUMENT);
    } finally { ch.close(); }
    const c = connect(b.socket);
    try { assert.equal((await c.runtime.version({})).runtimeName, "berth"); } finally { c.close(); }
  });
});

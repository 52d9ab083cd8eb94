// berthd's idle footprint over the real socket: bin/berthd starts node with the V8 settings that
// keep its memory down, and a berthd that has served Version, Status and the list RPCs has not
// loaded what only some features need (OpenPGP, YAML, WebSocket, prom-client, OpenTelemetry,
// Node's bundled fetch).
// The module list comes from a module hook berthd is started with (node --import), written on
// SIGUSR2 into the test's directory.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { startBerthd, type Berthd } from "../lib/berthd.ts";
import { runSleepingPod, startPodEnv } from "../lib/pod.ts";
import { berthdV8Flags } from "../bench/floor.ts";

/** Packages berthd must not load until a feature that needs them is used (grpc-js: never; tests' client only). */
const LAZY_PACKAGES = ["@grpc/grpc-js", "openpgp", "yaml", "ws", "prom-client", "@opentelemetry/api", "@opentelemetry/sdk-node", "@opentelemetry/exporter-trace-otlp-http"];

const HOOK = `
import { registerHooks } from "node:module";
import { writeFileSync } from "node:fs";
const seen = new Set();
registerHooks({ load(url, context, next) { seen.add(url); return next(url, context); } });
process.on("SIGUSR2", () => writeFileSync(process.env.BERTH_TEST_MODULE_LIST, [...seen, ...process.moduleLoadList.map((m) => "builtin:" + m)].join("\\n") + "\\n"));
`;

function cmdline(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
}

describe("idle footprint", () => {
  let plain: Berthd;
  let hooked: Berthd;
  let listFile: string;
  before(async () => {
    plain = await startBerthd();
    // The hook is written into the plain instance's directory (root-only, removed with it).
    const hook = join(plain.dir, "module-list-hook.mjs");
    listFile = join(plain.dir, "modules.txt");
    await writeFile(hook, HOOK, { mode: 0o600 });
    hooked = await startBerthd({
      env: { BERTHD_V8_FLAGS: [...berthdV8Flags({}), "--import", hook].join(" "), BERTH_TEST_MODULE_LIST: listFile },
    });
  });
  after(async () => {
    await hooked?.cleanup();
    await plain?.cleanup();
  });

  test("bin/berthd runs node with a 1 MB semi-space, the interpreter alone, optimizing for size and gc exposed", () => {
    const argv = cmdline(plain.proc.pid!);
    const main = argv.findIndex((a) => /cri-server\/main\.[jt]s$/.test(a));
    assert.ok(main > 0, `no main module in ${JSON.stringify(argv)}`);
    const flags = argv.slice(1, main);
    assert.ok(flags.includes("--max-semi-space-size=1"), `flags: ${flags.join(" ")}`);
    assert.ok(flags.includes("--max-opt=0"), `flags: ${flags.join(" ")}`);
    assert.ok(flags.includes("--expose-gc"), `flags: ${flags.join(" ")}`);
    assert.ok(flags.includes("--optimize-for-size"), `flags: ${flags.join(" ")}`);
  });

  test("after Version, Status and the list RPCs no feature-only package is loaded", async () => {
    const c = hooked.client;
    await c.runtime.version({});
    await c.runtime.status({ verbose: true });
    await c.runtime.listPodSandbox({});
    await c.runtime.listContainers({});
    await c.image.listImages({});
    await c.image.imageFsInfo({});
    process.kill(hooked.proc.pid!, "SIGUSR2");
    for (let i = 0; i < 100 && !existsSync(listFile); i++) await sleep(50);
    assert.ok(existsSync(listFile), "berthd wrote no module list within 5 s of SIGUSR2");
    await sleep(100); // the list is written in one call; let it finish
    const urls = readFileSync(listFile, "utf8").trim().split("\n");
    // The hook sees berthd's own modules: the list is real. From the sources, each module and
    // package is listed; the bundle in dist/ (hack/build.sh) holds protobuf-es in main.js.
    assert.ok(urls.some((u) => /\/cri-server\/main\.[jt]s$/.test(u)), "berthd's main module is listed");
    if (urls.some((u) => u.endsWith("/cri-server/main.ts"))) {
      assert.ok(urls.some((u) => u.includes("/node_modules/@bufbuild/protobuf/")), "protobuf-es is listed");
      assert.ok(urls.some((u) => u.endsWith("/cri-server/daemon.ts")), "daemon module is listed");
    }
    const loaded = LAZY_PACKAGES.filter((p) => urls.some((u) => u.includes(`/node_modules/${p}/`)));
    assert.deepEqual(loaded, [], `loaded at idle: ${loaded.join(", ")}`);
    // Node's bundled fetch (undici) loads with the first ESM import of node:http (its WebSocket
    // getter); the registry client takes node:http through process.getBuiltinModule instead.
    assert.ok(urls.some((u) => u.startsWith("builtin:NativeModule")), "the builtin list is written");
    assert.deepEqual(urls.filter((u) => /^builtin:.*undici/.test(u)), [], "undici is not loaded at idle");
    // berth frames HTTP/2 itself (cri-server/transport/h2.ts): loading node:http2 costs 8.4 MB of RSS.
    assert.deepEqual(urls.filter((u) => /^builtin:.*http2/i.test(u)), [], "node:http2 is not loaded at idle");
    // The registry client takes node:http at its first request.
    assert.deepEqual(urls.filter((u) => /^builtin:NativeModule (_?http\b|_http_)/.test(u)), [], "node:http is not loaded at idle");
    // Built-ins taken when first used (oci-runtime/foundation/builtins.ts): node:crypto at the first
    // pod or pull, node:zlib at the first layer; node:util without its namespace's getters, which
    // load Node's worker and diff modules.
    // Nor node:perf_hooks, which the global `performance` loads whole (oci-runtime/foundation/clock.ts).
    // (node:module cannot be checked here: the hook itself imports it.)
    for (const b of ["crypto", "zlib", "worker_threads", "internal/util/diff", "perf_hooks"]) {
      assert.deepEqual(urls.filter((u) => u === `builtin:NativeModule ${b}`), [], `node:${b} is not loaded at idle`);
    }
    assert.equal(hooked.proc.exitCode, null, "berthd still runs");
  });

  test("bin/berthd starts berthd with glibc malloc's mmap threshold pinned", () => {
    const environ = readFileSync(`/proc/${plain.proc.pid}/environ`, "utf8").split("\0");
    assert.ok(environ.some((e) => /^GLIBC_TUNABLES=(.*:)?glibc\.malloc\.mmap_threshold=131072(:|$)/.test(e)), `GLIBC_TUNABLES: ${environ.filter((e) => e.startsWith("GLIBC_")).join(" ")}`);
  });

  test("a pull and running pods leave berthd without node:crypto, node:zlib, node:http and node:perf_hooks", async () => {
    // The pull runs in the pull process (image-service/pull-process.ts); ids and streaming
    // tokens come from /dev/urandom, create fingerprints from a JavaScript SHA-256.
    const hook = join(plain.dir, "module-list-hook.mjs");
    const list = join(plain.dir, "modules-pods.txt");
    const env = await startPodEnv({ images: true, env: { BERTHD_V8_FLAGS: [...berthdV8Flags({}), "--import", hook].join(" "), BERTH_TEST_MODULE_LIST: list } });
    const loaded = async (): Promise<string[]> => {
      await rm(list, { force: true });
      process.kill(env.b.proc.pid!, "SIGUSR2");
      for (let i = 0; i < 100 && !existsSync(list); i++) await sleep(50);
      assert.ok(existsSync(list), "berthd wrote no module list within 5 s of SIGUSR2");
      await sleep(100);
      const urls = readFileSync(list, "utf8").trim().split("\n");
      assert.ok(urls.some((u) => u === "builtin:NativeModule child_process"), "the builtin list is written");
      return urls.filter((u) => u.startsWith("builtin:NativeModule ")).map((u) => u.slice("builtin:NativeModule ".length));
    };
    try {
      await env.b.client.image.pullImage({ image: { image: env.images!.busybox } });
      const { containerId } = await runSleepingPod(env.b.client, env.images!.busybox);
      const r = await env.b.client.runtime.execSync({ containerId, cmd: ["true"], timeout: 10n });
      assert.equal(r.exitCode, 0);
      const before = await loaded();
      for (const b of ["crypto", "zlib", "http", "_http_client", "perf_hooks"]) assert.ok(!before.includes(b), `node:${b} is not loaded after a pull, with a pod running`);
      // Exec starts the streaming server (node:http's server, node:zlib for SPDY headers); its
      // token is random octets, still without node:crypto.
      const { url } = await env.b.client.runtime.exec({ containerId, cmd: ["true"], stdout: true });
      assert.match(url, /^http:\/\/.+\/exec\/[A-Za-z0-9_-]{32}$/, "a streaming URL with a 24-octet token");
      const after = await loaded();
      assert.ok(after.includes("_http_server"), "the streaming server is loaded");
      for (const b of ["crypto", "perf_hooks"]) assert.ok(!after.includes(b), `node:${b} is not loaded after an Exec`);
    } finally {
      await env.cleanup();
    }
  });
});

// hack/build.sh, run for real into a directory of its own: the bundle berthd runs from dist/.
// What the daemon loads at idle and the unpack processes are tested over the socket
// (conformance/suite/idle-footprint.test.ts, lazy-load.test.ts); this checks the bundle's shape.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { fork, spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const REPO = fileURLToPath(new URL("..", import.meta.url));

const NODE = join(REPO, "node_modules", "node", "bin", "node");
const LAZY = ["@opentelemetry/sdk-node", "@opentelemetry/api", "prom-client", "openpgp", "ws", "yaml"];
let parent: string;
let out: string;
let files: string[];
const text = (f: string) => readFileSync(join(out, "cri-server", f), "utf8");
/** The package names a bundle file imports, statically or dynamically. */
/** Packages, built-ins and chunks a bundle file imports, statically, through import(), or through foundation/builtins.ts's requirePackage. */
const imported = (src: string) => new Set([...src.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s*|\brequirePackage\(\s*)"([@a-z.][a-z0-9@/._:-]*)"/g)].map((m) => m[1]!));

before(() => {
  mkdirSync(join(REPO, ".bench"), { recursive: true });
  parent = mkdtempSync(join(REPO, ".bench", "build-test-"));
  out = join(parent, "dist");
  const r = spawnSync("bash", [join(REPO, "hack", "build.sh"), out], { cwd: REPO, encoding: "utf8", timeout: 300_000 });
  assert.equal(r.status, 0, `hack/build.sh failed: ${r.stdout}${r.stderr}`);
  files = readdirSync(join(out, "cri-server"));
});
after(() => { if (parent) rmSync(parent, { recursive: true, force: true }); });

test("every file of the bundle lands in cri-server/, beside main.js, unpack-worker.js and pull-worker.js", () => {
  assert.deepEqual(readdirSync(out).sort(), [".build-stamp", "cri-server"]);
  assert.ok(files.includes("main.js") && files.includes("unpack-worker.js") && files.includes("pull-worker.js"), `files: ${files.join(", ")}`);
  assert.ok(files.every((f) => f.endsWith(".js")), `files: ${files.join(", ")}`);
  // unpack-pool's new URL("./unpack-worker.js", import.meta.url) resolves from whichever chunk holds
  // it: one of berthd's chunks, and pull-worker.js, which is bundled whole.
  const holder = files.filter((f) => text(f).includes('"./unpack-worker.js"'));
  assert.equal(holder.filter((f) => f !== "pull-worker.js").length, 1, `the worker's URL is in ${holder.join(", ") || "no file"}`);
  assert.ok(holder.includes("pull-worker.js"), `the worker's URL is in ${holder.join(", ")}`);
  // pull-process.ts's URL of the pull process's module: in one file of berthd's (and in
  // pull-worker.js, whose image service holds the same code, unused there).
  assert.equal(files.filter((f) => f !== "pull-worker.js" && text(f).includes('"./pull-worker.js"')).length, 1);
  // pull-worker.js imports no chunk: berthd's chunks hold none of the image service for it.
  assert.deepEqual([...imported(text("pull-worker.js"))].filter((p) => p.startsWith("./")), []);
});

/** Forks a bundled worker module, sends it `hello` if given, and answers its first message. */
async function firstMessage(file: string, stdin: "pipe" | "ignore", serialization: "json" | "advanced", hello?: unknown): Promise<unknown> {
  const proc = fork(join(out, "cri-server", file), [], { stdio: [stdin, "ignore", "pipe", "ipc"], serialization });
  let stderr = "";
  proc.stderr!.setEncoding("utf8").on("data", (d: string) => { stderr += d; });
  try {
    return await new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no message within 20 s: ${stderr}`)), 20_000);
      proc.once("message", (m) => { clearTimeout(timer); resolve(m); });
      proc.once("exit", (code) => { clearTimeout(timer); reject(new Error(`exited with ${code}: ${stderr}`)); });
      if (hello !== undefined) proc.send(hello as object);
    });
  } finally {
    proc.kill("SIGKILL");
  }
}

test("the bundled pull-worker.js starts as the pull process and says it is ready", async () => {
  const init = { t: "init", config: { root: join(parent, "pull-root"), hostsDir: "", maxConcurrentDownloads: 1, stallTimeoutMs: 1000, logLevel: "info" } };
  assert.deepEqual(await firstMessage("pull-worker.js", "ignore", "advanced", init), { t: "ready" });
});

test("the bundled unpack-worker.js starts as an unpack process and says it is ready", async () => {
  assert.deepEqual(await firstMessage("unpack-worker.js", "pipe", "json"), { t: "ready", id: 0 });
});

test("protobuf-es and smol-toml are bundled; the packages only features load stay external", () => {
  const all = new Set(files.flatMap((f) => [...imported(text(f))]));
  const packages = [...all].filter((p) => !p.startsWith("node:"));
  for (const p of ["@bufbuild/protobuf", "@bufbuild/protobuf/wire", "@bufbuild/protobuf/codegenv2", "smol-toml"]) assert.ok(!all.has(p), `${p} is imported, not bundled`);
  assert.deepEqual(packages.filter((p) => !LAZY.includes(p) && !p.startsWith("@opentelemetry/")), [], "only the lazy packages are external");
  for (const p of ["openpgp", "ws", "prom-client", "yaml", "@opentelemetry/sdk-node"]) assert.ok(all.has(p), `${p} stays external`);
  // main.js takes none of them at load: only through import(), or from a chunk loaded on first use.
  const mainStatic = [...text("main.js").matchAll(/(?:\bfrom\s*|\bimport\s*)"([@a-z.][a-z0-9@/._:-]*)"/g)].map((m) => m[1]!);
  assert.ok(mainStatic.includes("node:net"), `main.js's static imports: ${mainStatic.join(", ")}`);
  assert.deepEqual(mainStatic.filter((p) => !p.startsWith("node:") && !p.startsWith("./")), [], `main.js imports at load: ${mainStatic.join(", ")}`);
});

test("the bundle runs: `berthd config check` from it", () => {
  const r = spawnSync(NODE, [join(out, "cri-server", "main.js"), "config", "check", "--config", "/dev/null"], { encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /\/dev\/null: ok/);
});

test("a directory outside the repository is refused: its bundle could not load node_modules", () => {
  const outside = mkdtempSync("/tmp/berth-build-");
  try {
    const r = spawnSync("bash", [join(REPO, "hack", "build.sh"), join(outside, "dist")], { cwd: REPO, encoding: "utf8", timeout: 60_000 });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /is outside/);
    assert.ok(!existsSync(join(outside, "dist")) && !existsSync(join(outside, "dist.tmp")));
  } finally { rmSync(outside, { recursive: true, force: true }); }
});

test("a directory that holds anything but an earlier build is not replaced", () => {
  const victim = join(parent, "victim");
  mkdirSync(victim);
  writeFileSync(join(victim, "keep.ts"), "// mine\n");
  const r = spawnSync("bash", [join(REPO, "hack", "build.sh"), victim], { cwd: REPO, encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /holds files but no earlier build/);
  assert.deepEqual(readdirSync(victim), ["keep.ts"]);
  assert.ok(!existsSync(`${victim}.tmp`));
});

test("bin/berthd runs dist/ while it is newer than the sources, the lock and hack/build.sh, the sources otherwise", () => {
  // A repository of its own: bin/berthd, the pinned node, two mains that say which ran.
  const repo = join(parent, "launcher");
  for (const d of ["bin", "node_modules/node/bin", "dist/cri-server", "cri-server", "oci-runtime", "image-service", "proto/gen", "hack"]) mkdirSync(join(repo, d), { recursive: true });
  copyFileSync(join(REPO, "bin", "berthd"), join(repo, "bin", "berthd"));
  chmodSync(join(repo, "bin", "berthd"), 0o755);
  symlinkSync(NODE, join(repo, "node_modules", "node", "bin", "node"));
  writeFileSync(join(repo, "cri-server", "main.ts"), 'console.log("sources");\n');
  writeFileSync(join(repo, "dist", "cri-server", "main.js"), 'console.log("dist");\n');
  writeFileSync(join(repo, "package-lock.json"), "{}\n");
  writeFileSync(join(repo, "hack", "build.sh"), "\n");
  const past = new Date(Date.now() - 60_000);
  for (const f of ["cri-server/main.ts", "package-lock.json", "hack/build.sh"]) utimesSync(join(repo, f), past, past);
  writeFileSync(join(repo, "dist", ".build-stamp"), "");
  const ran = () => {
    const r = spawnSync(join(repo, "bin", "berthd"), [], { encoding: "utf8", timeout: 30_000, env: { ...process.env, BERTHD_V8_FLAGS: "", BERTHD_DIST: "" } });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  };
  assert.equal(ran(), "dist");
  for (const f of ["cri-server/main.ts", "package-lock.json", "hack/build.sh"]) {
    const future = new Date(Date.now() + 60_000);
    utimesSync(join(repo, f), future, future);
    assert.equal(ran(), "sources", `${f} newer than the stamp`);
    utimesSync(join(repo, f), past, past);
    assert.equal(ran(), "dist");
  }
});

test("bin/berthd pins glibc malloc's mmap threshold; BERTHD_MALLOC_TUNABLES replaces it, a caller's GLIBC_TUNABLES comes after it", () => {
  // A compiled tree whose main says what it was started with.
  const tree = join(parent, "malloc-tree");
  mkdirSync(join(tree, "cri-server"), { recursive: true });
  writeFileSync(join(tree, "cri-server", "main.js"), "console.log(JSON.stringify(process.env.GLIBC_TUNABLES ?? null));\n");
  const ran = (env: Record<string, string>) => {
    const base = { ...process.env };
    delete base["GLIBC_TUNABLES"];
    delete base["BERTHD_MALLOC_TUNABLES"];
    const r = spawnSync(join(REPO, "bin", "berthd"), [], { encoding: "utf8", timeout: 30_000, env: { ...base, BERTHD_V8_FLAGS: "", BERTHD_DIST: tree, ...env } });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.trim()) as string | null;
  };
  assert.equal(ran({}), "glibc.malloc.mmap_threshold=131072");
  assert.equal(ran({ BERTHD_MALLOC_TUNABLES: "" }), null, "glibc's defaults");
  assert.equal(ran({ BERTHD_MALLOC_TUNABLES: "glibc.malloc.arena_max=1" }), "glibc.malloc.arena_max=1");
  assert.equal(ran({ GLIBC_TUNABLES: "glibc.malloc.arena_max=2" }), "glibc.malloc.mmap_threshold=131072:glibc.malloc.arena_max=2");
  // glibc takes a tunable's last setting: a caller's own threshold comes last, and wins.
  assert.equal(ran({ GLIBC_TUNABLES: "glibc.malloc.mmap_threshold=1048576" }), "glibc.malloc.mmap_threshold=131072:glibc.malloc.mmap_threshold=1048576");
  assert.equal(ran({ GLIBC_TUNABLES: "glibc.malloc.arena_max=2", BERTHD_MALLOC_TUNABLES: "" }), "glibc.malloc.arena_max=2");
});

/** Whether an ELF file asks for a program interpreter (a PT_INTERP segment): a dynamically linked executable. */
function hasInterpreter(file: string): boolean {
  const b = readFileSync(file);
  assert.equal(b.subarray(0, 4).toString("latin1"), "\x7fELF", `${file} is not ELF`);
  assert.equal(b[4], 2, `${file} is not a 64-bit ELF`);
  const phoff = Number(b.readBigUInt64LE(0x20));
  const phentsize = b.readUInt16LE(0x36);
  const phnum = b.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) if (b.readUInt32LE(phoff + i * phentsize) === 3) return true;
  return false;
}

test("the helpers started once per call or per container are static (no dynamic loader at each start), the others dynamic", () => {
  const dir = join(process.env.BERTH_IO_HELPER ? join(process.env.BERTH_IO_HELPER, "..") : "/usr/local/libexec/berth");
  for (const h of ["berth-exec", "berth-start", "berth-monitor", "berth-spawn"]) assert.equal(hasInterpreter(join(dir, h)), false, `${h} is static`);
  // A check that can fail: the dynamic ones (built with glibc's headers for openat2) have an interpreter.
  for (const h of ["berth-layer", "berth-mount"]) assert.equal(hasInterpreter(join(dir, h)), true, `${h} is dynamic`);
});

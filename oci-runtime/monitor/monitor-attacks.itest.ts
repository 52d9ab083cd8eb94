// Hostile containers and clients, stdin_once and --log-size-max, against each monitor (conmon and berth-monitor): the monitor's
// memory stays bounded, every byte reaches the log in well-formed records, and it keeps serving.
import { test, after, before, describe } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { withProcessArgs } from "../bundle-spec/process.ts";
import { makeEnv, eventually, type ItestEnv } from "../../conformance/lib/oci-itest-env.ts";
import { MONITORS } from "../../conformance/lib/monitors.ts";
import { waitForExit } from "./exit-file.ts";
import { attachSocketPath, reopenLog } from "./conmon.ts";
import { isConmonAlive } from "./pids.ts";

const run = promisify(execFile);
const sh = (script: string) => withProcessArgs({ command: ["/bin/sh", "-c", script] });

/** Parses k8s-file records from raw bytes (the text may be any bytes but a newline). */
function records(buf: Buffer) {
  const out: { stream: string; tag: string; text: Buffer }[] = [];
  let at = 0;
  while (at < buf.length) {
    const nl = buf.indexOf(10, at);
    assert.ok(nl >= 0, "the log ends with a newline");
    const line = buf.subarray(at, nl);
    at = nl + 1;
    const sp1 = line.indexOf(32), sp2 = line.indexOf(32, sp1 + 1), sp3 = line.indexOf(32, sp2 + 1);
    assert.ok(sp1 > 0 && sp2 > sp1 && sp3 === sp2 + 2, `bad record ${JSON.stringify(line.subarray(0, 80).toString("latin1"))}`);
    assert.match(line.subarray(0, sp1).toString(), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+(Z|[+-]\d\d:\d\d)$/);
    const stream = line.subarray(sp1 + 1, sp2).toString();
    const tag = line.subarray(sp2 + 1, sp3).toString();
    assert.ok(stream === "stdout" || stream === "stderr", `stream ${stream}`);
    assert.ok(tag === "P" || tag === "F", `tag ${tag}`);
    out.push({ stream, tag, text: line.subarray(sp3 + 1) });
  }
  return out;
}

/** The log's whole records so far: a monitor may be mid-write while a test polls. */
const complete = (buf: Buffer) => buf.subarray(0, buf.lastIndexOf(10) + 1);

/** Joins records back into the stream's bytes (F ends a line). */
function joined(recs: ReturnType<typeof records>, stream = "stdout"): Buffer {
  return Buffer.concat(recs.filter((r) => r.stream === stream).flatMap((r) => (r.tag === "F" ? [r.text, Buffer.from("\n")] : [r.text])));
}

async function rssKb(pid: number): Promise<number> {
  const m = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, "utf8"));
  assert.ok(m, `no VmRSS for ${pid}`);
  return Number(m[1]);
}

// A SOCK_SEQPACKET attach client Node cannot be: connects N times sending one PACKET-byte packet each and
// closes those, then connects once more, sends the packet and "hello\n", shuts down its write side
// and prints what it receives (stream bytes dropped) until the monitor closes the socket.
const CLIENT_C = `
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
static int dial(const char *path) {
  struct sockaddr_un a = {0};
  a.sun_family = AF_UNIX;
  snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
  int s = socket(AF_UNIX, SOCK_SEQPACKET, 0);
  int big = 4 << 20;
  setsockopt(s, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big);
  if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) { perror("connect"); exit(1); }
  return s;
}
int main(int argc, char **argv) {
  int n = atoi(argv[2]);
  size_t size = (size_t)atol(argv[3]);
  int step = argc > 4; /* "step": hold the N clients, say "held", wait for a line on stdin, then go on */
  char *pkt = malloc(size);
  memset(pkt, 'x', size);
  int *held = calloc((size_t)n + 1, sizeof(int));
  for (int i = 0; i < n; i++) { held[i] = dial(argv[1]); if (send(held[i], pkt, size, 0) < 0) perror("send flood"); }
  if (step) { fprintf(stderr, "held\\n"); char c; if (read(0, &c, 1) < 0) return 1; }
  for (int i = 0; i < n; i++) close(held[i]);
  int s = dial(argv[1]);
  if (send(s, pkt, size, 0) < 0) { perror("send big"); return 1; }
  if (send(s, "hello\\n", 6, 0) < 0) { perror("send hello"); return 1; }
  shutdown(s, SHUT_WR);
  static char buf[70000];
  for (;;) {
    ssize_t r = recv(s, buf, sizeof buf, 0);
    if (r <= 0) break;
    if (r > 1) fwrite(buf + 1, 1, (size_t)r - 1, stdout);
  }
  return 0;
}
`;

const readdirCount = async (dir: string) => (await readdir(dir)).length;

let clientBin: string;
let scratch: ItestEnv;
before(async () => {
  scratch = await makeEnv();
  await writeFile(join(scratch.dir, "client.c"), CLIENT_C);
  clientBin = join(scratch.dir, "attach-client");
  await run("gcc", ["-O2", "-Wall", "-o", clientBin, join(scratch.dir, "client.c")]);
});
after(async () => { await scratch.cleanup(); });

for (const { name, binary } of MONITORS) describe(`monitor ${name}: hostile input, stdin and log limits`, () => {
  let env: ItestEnv;
  before(async () => { env = await makeEnv(); });
  after(async () => { await env.cleanup(); });
  const create = (id: string, opts: Parameters<ItestEnv["create"]>[1], extra: Parameters<ItestEnv["create"]>[2] = {}) =>
    env.create(id, opts, { conmonBinary: binary, ...extra });

  test("a 10 MB line without a newline is logged as partial records, with bounded monitor memory", async () => {
    const size = 10 << 20;
    const { conmonPid } = await create("longline", [sh(`head -c ${size} /dev/zero | tr '\\0' y; sleep 1000`)]);
    const before = await rssKb(conmonPid);
    await env.runtime.start("longline");
    const path = env.logPath("longline");
    const count = async () => joined(records(complete(await readFile(path)))).length;
    await eventually(async () => (await count()) === size, 60_000);
    const rss = await rssKb(conmonPid);
    // the whole line went through the monitor; it holds at most a few buffers of it
    assert.ok(rss - before < 4096, `monitor RSS grew from ${before} kB to ${rss} kB`);
    const recs = records(await readFile(path));
    assert.ok(recs.length > 1 && recs.every((r) => r.tag === "P"), "only partial records: the line never ended");
    assert.ok(joined(recs).equals(Buffer.alloc(size, "y")));
    await env.runtime.kill("longline", "KILL");
    assert.equal((await waitForExit(env.exitDir, "longline")).exitCode, 137);
  });

  test("binary junk (NUL, CR, invalid UTF-8, escape sequences) reaches the log byte for byte", async () => {
    // every byte value but newline, many times over, in a file in the container's rootfs
    const junk = Buffer.alloc(256 * 64);
    for (let i = 0; i < junk.length; i++) junk[i] = (i * 131 + (i >> 8)) & 0xff;
    const body = Buffer.from(junk.filter((b) => b !== 10));
    const blob = Buffer.concat([body, Buffer.from("\n"), body.subarray(0, 1000)]);
    await writeFile(join(env.rootfs, "tmp", `junk-${name}`), blob);
    await create("junk", [sh(`cat /tmp/junk-${name}; cat /tmp/junk-${name} >&2`)]);
    await env.runtime.start("junk");
    assert.equal((await waitForExit(env.exitDir, "junk")).exitCode, 0);
    const recs = records(await readFile(env.logPath("junk")));
    assert.ok(joined(recs, "stdout").equals(blob), "stdout bytes round-trip");
    assert.ok(joined(recs, "stderr").equals(blob), "stderr bytes round-trip");
  });

  test("a stdout flood while the log is reopened over and over: no line lost or cut, the monitor survives", async () => {
    const n = 1_000_000;
    const { conmonPid } = await create("flood", [sh(`yes 0123456789abcdefghijklmnopqrstuvwxyz | head -n ${n}; sleep 1000`)]);
    await env.runtime.start("flood");
    const path = env.logPath("flood");
    const files = Array.from({ length: 20 }, (_, i) => `${path}.${i}`);
    await eventually(async () => (await readFile(path).catch(() => Buffer.alloc(0))).length > 100_000);
    for (const f of files) {
      await rename(path, f);
      await reopenLog(env.bundle("flood"), "flood");
      await eventually(() => stat(path).then(() => true, () => false)); // the monitor made the new file
    }
    assert.equal(await isConmonAlive(conmonPid), true);
    // in rotation order, the files' records join into whole lines (a line cut by a read is P then F)
    const lines = async () => {
      const parts: Buffer[] = [];
      for (const f of [...files, path]) parts.push(joined(records(complete(await readFile(f)))));
      return Buffer.concat(parts).toString().split("\n");
    };
    await eventually(async () => (await lines()).length === n + 1, 60_000);
    const all = await lines();
    assert.equal(all.pop(), "");
    assert.deepEqual(all.filter((l) => l !== "0123456789abcdefghijklmnopqrstuvwxyz").slice(0, 3), []);
    await env.runtime.kill("flood", "KILL");
    assert.equal((await waitForExit(env.exitDir, "flood")).exitCode, 137);
  });

  test("oversize attach packets and a burst of clients: the monitor stays up and later input still arrives", async () => {
    // stdin stays open across clients (no stdin_once): every client's input reaches the same stdin
    await create("attach", [sh('while read -r l; do case "$l" in *hello) echo hello; break;; esac; done; echo done')], { stdin: true, stdinOnce: false });
    await env.runtime.start("attach");
    const sock = attachSocketPath(env.socketDir, "attach");
    const { stdout } = await run(clientBin, [sock, "40", String(200_000)], { timeout: 120_000, maxBuffer: 64 << 20, encoding: "latin1" });
    assert.equal((await waitForExit(env.exitDir, "attach")).exitCode, 0);
    assert.equal(stdout, "hello\ndone\n");
    assert.equal(joined(records(await readFile(env.logPath("attach")))).toString(), "hello\ndone\n");
  });

  // berth-monitor's promise (conmon's sends may block): an attach client that stops reading is
  // dropped, never waited for, so the log and the exit file keep their pace.
  if (name === "berth") test("an attach client that never reads does not stall the log or the exit", async () => {
    // ~1 MB of output in 1 KB lines over ~2 s: more than a unix socket's default buffer and socat's pipe
    const line = "z".repeat(1023);
    await create("stall", [sh(`i=0; while [ $i -lt 1000 ]; do echo ${line}; i=$((i+1)); case $i in *0) sleep 0.02;; esac; done`)]);
    const sock = attachSocketPath(env.socketDir, "stall");
    // socat copies the socket into a sleep that never reads its stdin: once that pipe is full, socat stops reading
    const { spawn } = await import("node:child_process");
    const stalled = spawn("socat", ["-u", `UNIX-CONNECT:${sock},type=5`, "EXEC:sleep 60"], { stdio: "ignore" });
    try {
      await new Promise((r) => setTimeout(r, 300)); // connected before the output starts
      await env.runtime.start("stall");
      assert.equal((await waitForExit(env.exitDir, "stall")).exitCode, 0);
      const recs = records(await readFile(env.logPath("stall")));
      assert.equal(recs.length, 1000, "every line was logged");
      const times = (await readFile(env.logPath("stall"), "latin1")).split("\n").filter(Boolean).map((l) => Date.parse(l.slice(0, 23) + "Z"));
      const gap = Math.max(...times.slice(1).map((t, i) => t - times[i]!));
      assert.ok(gap < 2500, `the log stalled for ${gap} ms behind a client that does not read`);
    } finally {
      stalled.kill("SIGKILL");
    }
  });

  // The monitor stopped while its 32 clients hang up and a new one connects: when it runs again it
  // sees all of it in one round, and the hang-ups must free their slots before the new client is
  // taken (it was refused, "over 32", when the accept came first).
  if (name === "berth") test("a client that connects as 32 others hang up is taken, not refused for slots they held", async () => {
    await create("slots", [sh('while read -r l; do case "$l" in *hello) echo hello; break;; esac; done; echo done')], { stdin: true, stdinOnce: false });
    await env.runtime.start("slots");
    const sock = attachSocketPath(env.socketDir, "slots");
    const monitor = Number((await readFile(join(env.bundle("slots"), "conmon.pid"), "utf8")).trim());
    const fdsBefore = await readdirCount(`/proc/${monitor}/fd`);
    const { spawn } = await import("node:child_process");
    const client = spawn(clientBin, [sock, "32", "16", "step"], { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    client.stdout!.on("data", (d: Buffer) => { out += d.toString("latin1"); });
    client.stderr!.on("data", (d: Buffer) => { err += d.toString(); });
    const exited = new Promise<number | null>((r) => client.once("exit", (code) => r(code)));
    try {
      await eventually(() => err.includes("held"), 10_000);
      // all 32 accepted: the monitor holds 32 more descriptors than before the client (sockets)
      await eventually(async () => (await readdirCount(`/proc/${monitor}/fd`)) >= fdsBefore + 32, 10_000);
      process.kill(monitor, "SIGSTOP");
      try {
        client.stdin!.write("go\n");
        await new Promise((r) => setTimeout(r, 300)); // the 32 closed and the new one connected and sent, all while stopped
      } finally { process.kill(monitor, "SIGCONT"); }
      assert.equal(await exited, 0, err);
      assert.equal(out, "hello\ndone\n");
      assert.equal((await waitForExit(env.exitDir, "slots")).exitCode, 0);
    } finally { client.kill("SIGKILL"); }
  });

  test("stdin_once: the attach client's end of input closes the container's stdin", async () => {
    await create("once", [sh("cat; echo done")], { stdin: true, stdinOnce: true });
    await env.runtime.start("once");
    const { stdout } = await run(clientBin, [attachSocketPath(env.socketDir, "once"), "0", "1000"], { timeout: 60_000, encoding: "latin1" });
    assert.equal((await waitForExit(env.exitDir, "once")).exitCode, 0, "cat saw the end of its input");
    assert.equal(stdout, `${"x".repeat(1000)}hello\ndone\n`);
  });

  test("--log-size-max: the log is cut back before it would pass the limit, and keeps the latest lines", async () => {
    await create("capped", [sh("i=0; while [ $i -lt 300 ]; do echo line$i-0123456789012345678901234567890123456789; i=$((i+1)); done")], { logSizeMax: 4096 });
    await env.runtime.start("capped");
    assert.equal((await waitForExit(env.exitDir, "capped")).exitCode, 0);
    const log = await readFile(env.logPath("capped"));
    assert.ok(log.length > 0 && log.length <= 4096, `log is ${log.length} bytes`);
    assert.match(joined(records(log)).toString(), /line299-0123456789012345678901234567890123456789\n$/);
  });

  test("junk on the ctl fifo is ignored: an endless line, bad numbers; a later reopen still works", async () => {
    const { conmonPid } = await create("ctl", [sh("i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.05; done")]);
    await env.runtime.start("ctl");
    const path = env.logPath("ctl");
    await eventually(async () => (await readFile(path, "utf8").catch(() => "")).includes("tick1\n"));
    const ctl = join(env.bundle("ctl"), "ctl");
    await writeFile(ctl, `${"9".repeat(3000)}\n1 -5 99999999\nnonsense\n2\n\0\0\n1 a b\n`, { flag: "a" });
    assert.equal(await isConmonAlive(conmonPid), true);
    await rename(path, `${path}.1`);
    // conmon may drop a command that arrives in one read with the junk: ask again until one lands
    await eventually(async () => {
      if (/tick\d+\n/.test(await readFile(path, "utf8").catch(() => ""))) return true;
      await reopenLog(env.bundle("ctl"), "ctl");
      return false;
    }, 30_000, 300);
    await env.runtime.kill("ctl", "KILL");
    assert.equal((await waitForExit(env.exitDir, "ctl")).exitCode, 137);
  });
});

// berth-spawn (helper/berth-spawn.c), berthd's process starter, run for real: through its Node
// client (class Spawner) and through raw frames written to a berth-spawn started here, for what
// the client never sends (malformed and hostile frames).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { closeSync, existsSync, lstatSync, openSync, readFileSync, rmdirSync, mkdirSync, statSync } from "node:fs";
import { mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MAX_OUTPUT_LIMIT, encodeRun, Spawner, type SpawnOutcome, type SpawnRequest } from "./spawner.ts";
import { processGroupMembers } from "../../conformance/lib/procs.ts";
import { currentSpawner, runCommand, useSpawner } from "./run-command.ts";

// BERTH_SPAWN_BIN: try a berth-spawn built elsewhere (a fix before it is installed).
const BIN = process.env.BERTH_SPAWN_BIN ?? "/usr/local/libexec/berth/berth-spawn";
const ENV = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until fn() is truthy; a hang guard (throws after giveUpMs), not a timing assertion. */
async function until<T>(fn: () => T | undefined | false | Promise<T | undefined | false>, what: string, giveUpMs = 20_000): Promise<T> {
  const end = Date.now() + giveUpMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${giveUpMs} ms`);
    await sleep(20);
  }
}

/** Whether pid is a live process (not a zombie). */
function alive(pid: number): boolean {
  let stat: string;
  try { stat = readFileSync(`/proc/${pid}/stat`, "utf8"); } catch { return false; }
  return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
}

function killPid(pid: number): void {
  try { process.kill(pid, "SIGKILL"); } catch { /* gone */ }
}

/** p, or a failure naming `what` once ms have passed without it: a hang guard, not a timing assertion. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

const readPid = async (file: string) => until(async () => Number((await readFile(file, "utf8").catch(() => "")).trim()) || undefined, `a pid in ${file}`);

function runP(sp: Spawner, req: Partial<SpawnRequest> & { file: string }, events?: string[]): Promise<SpawnOutcome> {
  return new Promise((resolve) => {
    sp.run({ args: [], env: ENV, ...req }, (o) => { events?.push("outcome"); resolve(o); });
  });
}

const sh = (script: string): Partial<SpawnRequest> & { file: string; args: string[] } => ({ file: "/bin/sh", args: ["-c", script] });

describe("berth-spawn through Spawner", () => {
  let sp: Spawner;
  let dir: string;
  before(async () => {
    sp = new Spawner(BIN);
    dir = await mkdtemp(join(tmpdir(), "berth-spawn-"));
  });
  after(async () => {
    sp.close();
    await rm(dir, { recursive: true, force: true });
  });

  test("stdout, stderr and the exit code come back", async () => {
    const o = await runP(sp, sh("echo out; echo err >&2; exit 7"));
    assert.deepEqual(o, { code: 7, signal: null, stdout: Buffer.from("out\n"), stderr: Buffer.from("err\n"), droppedOut: 0, droppedErr: 0 });
  });

  test("a command killed by a signal reports the signal and no code", async () => {
    const o = await runP(sp, sh("kill -TERM $$; sleep 5"));
    assert.equal(o.code, null);
    assert.equal(o.signal, "SIGTERM");
    assert.equal(o.spawnError, undefined);
  });

  test("stdin is delivered whole and closed: a short text, 1 MiB, and 15 MiB (a request near the 16 MiB frame limit)", async () => {
    assert.equal((await runP(sp, { file: "/bin/cat", stdin: "héllo\n" })).stdout.toString(), "héllo\n");
    assert.equal((await runP(sp, { file: "/bin/cat", stdin: "a\0b\0" })).stdout.toString(), "a\0b\0", "NUL bytes in stdin are data");
    const mib = randomBytes(1 << 19).toString("hex");
    const o = await runP(sp, { file: "/bin/cat", stdin: mib });
    assert.equal(o.code, 0);
    assert.equal(o.stdout.length, 1 << 20);
    assert.ok(o.stdout.equals(Buffer.from(mib)), "the bytes arrive in order");
    const big = await runP(sp, sh("wc -c"));
    assert.equal(big.stdout.toString().trim(), "0", "no stdin: /dev/null");
    const fifteen = await runP(sp, { ...sh("wc -c"), stdin: "y".repeat(15 << 20) });
    assert.equal(fifteen.stdout.toString().trim(), String(15 << 20));
  });

  test("a command that never reads its stdin (EPIPE on the writes) still reports", async () => {
    const o = await runP(sp, { ...sh("exec 0<&-; sleep 0.2; echo ok"), stdin: "z".repeat(4 << 20) });
    assert.deepEqual({ code: o.code, out: o.stdout.toString(), err: o.spawnError }, { code: 0, out: "ok\n", err: undefined });
    const t = await runP(sp, { file: "/bin/true", stdin: "z".repeat(1 << 20) });
    assert.equal(t.code, 0);
    // berth-spawn is still serving
    assert.equal((await runP(sp, { file: "/bin/echo", args: ["still"] })).stdout.toString(), "still\n");
  });

  test("output past 4 MiB per stream is dropped and counted", async () => {
    const o = await runP(sp, sh("head -c 5000000 /dev/zero; head -c 4500000 /dev/zero >&2; echo done >&2"));
    assert.equal(o.code, 0);
    assert.equal(o.stdout.length, 4 << 20);
    assert.equal(o.droppedOut, 5000000 - (4 << 20));
    assert.equal(o.stderr.length, 4 << 20);
    assert.equal(o.droppedErr, 4500000 + 5 - (4 << 20));
  });

  test("maxOutputBytes keeps that many bytes of each stream (up to 16 MiB) and counts the rest; past 16 MiB it throws and sends nothing", async () => {
    const o = await runP(sp, { ...sh("head -c 6000000 /dev/zero; head -c 100 /dev/zero >&2"), maxOutputBytes: 5_000_000 });
    assert.deepEqual([o.code, o.stdout.length, o.droppedOut, o.stderr.length, o.droppedErr], [0, 5_000_000, 1_000_000, 100, 0]);
    const none = await runP(sp, { ...sh("echo out; echo err >&2"), maxOutputBytes: 0 });
    assert.deepEqual([none.stdout.length, none.droppedOut, none.stderr.length, none.droppedErr], [0, 4, 0, 4]);
    for (const bad of [MAX_OUTPUT_LIMIT + 1, -1, 1.5, Number.NaN]) {
      assert.throws(() => sp.run({ ...sh("true"), env: ENV, maxOutputBytes: bad }, () => assert.fail("ran")), RangeError);
    }
  });

  test("an output file that is a FIFO without a reader is ENXIO at once, and berth-spawn goes on serving", async () => {
    // Its open used to wait for a reader, and with it every other command berth-spawn serves.
    const fifo = join(dir, "out-fifo");
    assert.equal(spawnSync("/usr/bin/mkfifo", [fifo]).status, 0);
    const marker = join(dir, "fifo-ran");
    const o = await within(runP(sp, { file: "/bin/touch", args: [marker], outputFile: fifo }), 20_000, "an answer (the open waits for a reader)");
    assert.equal((o.spawnError as NodeJS.ErrnoException).code, "ENXIO");
    assert.equal(existsSync(marker), false, "the command did not run");
    const next = await runP(sp, sh("echo still here"));
    assert.equal(next.stdout.toString(), "still here\n");
  });

  test("a dropped count past 4 GiB stops at 2^32-1 instead of wrapping around", async () => {
    // A container's output is the attacker's: a flood past 4 GiB used to wrap the u32 count
    // (10 kept, 90 dropped for 2^32+100 bytes), under-reporting the truncation.
    const o = await runP(sp, { ...sh("head -c 4294967396 /dev/zero"), maxOutputBytes: 10 });
    assert.deepEqual([o.code, o.stdout.length, o.droppedOut], [0, 10, 0xffffffff]);
  });

  test("started with SIGCHLD ignored, berth-spawn still reports every exit (commands are not reaped behind its back)", async () => {
    // SIG_IGN survives exec: a starter that ignores SIGCHLD used to make the kernel reap the
    // commands at once, so no EXIT came, and a KILL or SIGNAL would then go to a pid that may
    // have been reused. perl (Debian's perl-base, essential) sets the disposition and execs.
    const probe = spawnSync("/usr/bin/perl", ["-e", '$SIG{CHLD} = "IGNORE"; exec @ARGV', "/bin/grep", "SigIgn", "/proc/self/status"], { encoding: "utf8" });
    assert.equal((BigInt(`0x${probe.stdout.split(/\s+/)[1]}`) >> 16n) & 1n, 1n, `the starter leaves SIGCHLD ignored: ${probe.stdout}`);
    const wrapper = join(dir, "ignore-sigchld");
    await writeFile(wrapper, `#!/usr/bin/perl\n$SIG{CHLD} = "IGNORE";\nexec ${JSON.stringify(BIN)} or die "exec: $!";\n`, { mode: 0o755 });
    const ignoring = new Spawner(wrapper);
    try {
      for (const code of [3, 0]) {
        const o = await within(runP(ignoring, sh(`echo ran; exit ${code}`)), 20_000, `the EXIT of a command that exits ${code}`);
        assert.deepEqual([o.code, o.stdout.toString()], [code, "ran\n"]);
      }
    } finally {
      ignoring.close();
    }
  });

  /** Runs `script`, which writes the pid of a background child (holding its stdout) to the file it is given, and `fn` on it; the child is killed after. */
  async function withBackgroundChild(name: string, script: (pidFile: string) => string, fn: (run: ReturnType<Spawner["run"]>, outcome: Promise<SpawnOutcome>, bg: number) => Promise<void>): Promise<void> {
    const pidFile = join(dir, name);
    let run!: ReturnType<Spawner["run"]>;
    const outcome = new Promise<SpawnOutcome>((resolve) => { run = sp.run({ ...sh(script(pidFile)), env: ENV }, resolve); });
    const bg = await readPid(pidFile);
    try {
      await fn(run, outcome, bg);
    } finally {
      killPid(bg);
    }
  }

  test("release(): the outcome comes with the output so far once the command has exited, while a background child holds the pipes, which goes on running", async () => {
    await withBackgroundChild("release-pid", (f) => `sleep 300 & echo $! > ${f}; echo before; exit 3`, async (run, outcome, bg) => {
      const early = await Promise.race([outcome.then(() => "outcome"), new Promise((r) => setTimeout(() => r("none"), 300))]);
      assert.equal(early, "none", "no outcome while the background child holds stdout");
      run.release();
      const o = await outcome;
      assert.deepEqual([o.code, o.signal, o.stdout.toString()], [3, null, "before\n"]);
      assert.ok(alive(bg), "the background child was not killed");
      run.release(); // after the outcome: nothing happens
    });
  });

  test("release() before the command exits: the outcome comes at its exit, without waiting for the pipes", async () => {
    await withBackgroundChild("release-early-pid", (f) => `sleep 300 & echo $! > ${f}; sleep 0.5; echo late`, async (run, outcome, bg) => {
      run.release();
      const o = await outcome;
      assert.deepEqual([o.code, o.stdout.toString()], [0, "late\n"]);
      assert.ok(alive(bg));
    });
  });

  test("signal(): the command alone gets it, not the rest of its group", async () => {
    await withBackgroundChild("signal-pid", (f) => `sleep 300 & echo $! > ${f}; wait`, async (run, outcome, bg) => {
      run.signal("SIGTERM");
      run.release(); // the background sleep holds stdout: the outcome comes at the shell's end
      const o = await outcome;
      assert.equal(o.signal, "SIGTERM");
      assert.ok(alive(bg), "the shell's background sleep, in its group, was not signalled");
      assert.throws(() => run.signal("SIGNOPE" as NodeJS.Signals), TypeError);
    });
  });

  test("a file without a slash is searched in the request's PATH, not berth-spawn's", async () => {
    const bin = join(dir, "pathbin");
    mkdirSync(bin, { recursive: true });
    await writeFile(join(bin, "berth-only-here"), "#!/bin/sh\necho found \"$@\"\n", { mode: 0o755 });
    const o = await runP(sp, { file: "berth-only-here", args: ["a b"], env: { PATH: `/nonexistent-berth:${bin}` } });
    assert.deepEqual({ code: o.code, out: o.stdout.toString() }, { code: 0, out: "found a b\n" });
    const n = await runP(sp, { file: "berth-only-here", env: ENV });
    assert.equal((n.spawnError as NodeJS.ErrnoException | undefined)?.code, "ENOENT", "not in the given PATH");
    // No PATH in the environment: the default path.
    const d = await runP(sp, { file: "sh", args: ["-c", "echo default"], env: {} });
    assert.equal(d.stdout.toString(), "default\n");
    // Only a non-executable match: EACCES, as execvp says.
    await writeFile(join(bin, "berth-not-exec"), "#!/bin/sh\necho ran\n", { mode: 0o644 });
    const a = await runP(sp, { file: "berth-not-exec", env: { PATH: bin } });
    assert.equal((a.spawnError as NodeJS.ErrnoException | undefined)?.code, "EACCES");
  });

  test("ENOENT, EACCES and a working directory that does not exist are spawn errors, and nothing runs", async () => {
    const e = await runP(sp, { file: "/nonexistent/berth-no-such", args: ["x"] });
    assert.equal(e.code, null);
    assert.equal((e.spawnError as NodeJS.ErrnoException).code, "ENOENT");
    assert.match(e.spawnError!.message, /^spawn \/nonexistent\/berth-no-such ENOENT$/);
    await writeFile(join(dir, "noexec"), "#!/bin/sh\ntouch \"$0.ran\"\n", { mode: 0o644 });
    const a = await runP(sp, { file: join(dir, "noexec") });
    assert.equal((a.spawnError as NodeJS.ErrnoException).code, "EACCES");
    assert.equal(existsSync(join(dir, "noexec.ran")), false);
    const marker = join(dir, "cwd-ran");
    const c = await runP(sp, { file: "/bin/touch", args: [marker], cwd: join(dir, "no-such-dir") });
    assert.equal((c.spawnError as NodeJS.ErrnoException).code, "ENOENT");
    assert.equal(existsSync(marker), false, "the command did not run");
    const ok = await runP(sp, { file: "/bin/pwd", cwd: dir });
    assert.equal(ok.stdout.toString(), `${dir}\n`);
  });

  test("an output file gets both streams, is created 0600 and truncated; a symlink there is refused (ELOOP) and its target untouched", async () => {
    const out = join(dir, "out");
    const o = await runP(sp, { ...sh("echo one; echo two >&2; exit 3"), outputFile: out });
    assert.deepEqual({ code: o.code, stdout: o.stdout.length, stderr: o.stderr.length }, { code: 3, stdout: 0, stderr: 0 });
    assert.equal(await readFile(out, "utf8"), "one\ntwo\n");
    assert.equal(statSync(out).mode & 0o777, 0o600);
    await writeFile(out, "y".repeat(1000));
    await runP(sp, { file: "/bin/echo", args: ["short"], outputFile: out });
    assert.equal(await readFile(out, "utf8"), "short\n", "truncated");

    const target = join(dir, "precious");
    await writeFile(target, "keep me\n", { mode: 0o644 });
    const link = join(dir, "link");
    await symlink(target, link);
    const marker = join(dir, "link-ran");
    const s = await runP(sp, { file: "/bin/touch", args: [marker], outputFile: link });
    assert.equal((s.spawnError as NodeJS.ErrnoException).code, "ELOOP");
    assert.equal(await readFile(target, "utf8"), "keep me\n");
    assert.equal(statSync(target).mode & 0o777, 0o644);
    assert.ok(lstatSync(link).isSymbolicLink());
    assert.equal(existsSync(marker), false, "the command did not run");
  });

  test("the command gets only fds 0-2 (plus 3 with onSyncLine): 0 is /dev/null, 1 and 2 pipes or the output file", async () => {
    // The shell's descriptors, listed by its child (a glob, pipe or $(...) in the shell would open some).
    const list = "ls -l /proc/$$/fd";
    const parse = (s: string) => Object.fromEntries(s.split("\n").flatMap((l) => {
      const m = / (\d+) -> (.*)$/.exec(l);
      return m ? [[m[1]!, m[2]!]] : [];
    }));
    const o = await runP(sp, sh(list));
    const fds = parse(o.stdout.toString());
    assert.deepEqual(Object.keys(fds).sort(), ["0", "1", "2"], o.stdout.toString());
    assert.equal(fds["0"], "/dev/null");
    assert.match(fds["1"]!, /^pipe:/);
    assert.match(fds["2"]!, /^pipe:/);
    assert.notEqual(fds["1"], fds["2"]);
    const w = await runP(sp, { ...sh(list), stdin: "in" });
    assert.match(parse(w.stdout.toString())["0"]!, /^pipe:/, "stdin given: a pipe");

    let line = "";
    const s = await runP(sp, { ...sh(`${list}; echo synced >&3`), onSyncLine: (l) => { line = l; } });
    const sfds = parse(s.stdout.toString());
    assert.deepEqual(Object.keys(sfds).sort(), ["0", "1", "2", "3"], s.stdout.toString());
    assert.match(sfds["3"]!, /^pipe:/);
    assert.equal(line, "synced");

    const out = join(dir, "fds-out");
    const g = await runP(sp, { ...sh(list), outputFile: out });
    assert.equal(g.stdout.length, 0);
    const gf = parse(await readFile(out, "utf8"));
    assert.deepEqual(Object.keys(gf).sort(), ["0", "1", "2"]);
    assert.equal(gf["1"], out);
    assert.equal(gf["2"], out);
  });

  test("an empty signal mask and no ignored signals (SigBlk and SigIgn are 0)", async () => {
    const o = await runP(sp, { file: "/bin/grep", args: ["-E", "^Sig(Blk|Ign):", "/proc/self/status"] });
    assert.equal(o.stdout.toString(), "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
  });

  test("the command runs in its own session and process group (sid == pgid == pid)", async () => {
    const o = await runP(sp, sh("echo $$; cat /proc/$$/stat"));
    const [pidLine, stat] = o.stdout.toString().split("\n");
    const f = stat!.slice(stat!.lastIndexOf(")") + 2).split(" ");
    const pid = Number(pidLine);
    assert.ok(pid > 0);
    assert.deepEqual({ pgid: Number(f[2]), sid: Number(f[3]) }, { pgid: pid, sid: pid });
    assert.notEqual(pid, sp.pid);
  });

  test("onSyncLine: the first line before the outcome; a late grandchild; EOF without a newline; nothing; a 10 KB line cut at 4 KiB", async () => {
    const withLine = async (script: string) => {
      const events: string[] = [];
      const o = await runP(sp, { ...sh(script), onSyncLine: (l) => events.push(`line ${l}`) }, events);
      return { o, events };
    };
    // (berth-spawn closes the pipe after the first line: a later write may die of SIGPIPE, so a subshell makes it)
    const a = await withLine("echo first >&3; (echo second >&3) 2>/dev/null; sleep 0.2; echo out");
    assert.deepEqual(a.events, ["line first", "outcome"]);
    assert.equal(a.o.stdout.toString(), "out\n");
    assert.equal(a.o.code, 0);

    // The command exits at once; its grandchild (stdout and stderr elsewhere) writes the line later.
    const b = await withLine("(exec >/dev/null 2>&1; sleep 0.3; echo late >&3) & exit 0");
    assert.deepEqual(b.events, ["line late", "outcome"]);
    assert.equal(b.o.code, 0);

    const c = await withLine("printf partial >&3; exit 2");
    assert.deepEqual(c.events, ["line partial", "outcome"]);
    assert.equal(c.o.code, 2);

    const d = await withLine("exit 0");
    assert.deepEqual(d.events, ["line ", "outcome"], "EOF with nothing: an empty line");

    // (the writer dies of SIGPIPE once berth-spawn closed the pipe after 4 KiB; a subshell, so the command goes on)
    const e = await withLine("(head -c 10240 /dev/zero | tr '\\0' a; echo) >&3; echo after");
    assert.equal(e.events.length, 2);
    assert.equal(e.events[0], `line ${"a".repeat(4096)}`);
    assert.equal(e.events[1], "outcome");
    assert.equal(e.o.stdout.toString(), "after\n");
  });

  describe("cgroupProcs", () => {
    let cg = "";
    before(() => {
      const v1 = "/sys/fs/cgroup/pids";
      const base = existsSync(`${v1}/cgroup.procs`) ? v1 : "/sys/fs/cgroup";
      cg = join(base, `berth-spawn-itest-${randomBytes(4).toString("hex")}`);
      mkdirSync(cg);
    });
    after(() => {
      if (cg) rmdirSync(cg);
    });

    test("the command is in the cgroup from its first instruction (joined before the exec)", async () => {
      const rel = cg.replace(/^\/sys\/fs\/cgroup(\/pids)?/, "");
      const o = await runP(sp, { file: "/bin/cat", args: ["/proc/self/cgroup"], cgroupProcs: [join(cg, "cgroup.procs")] });
      assert.equal(o.code, 0, o.stderr.toString());
      const lines = o.stdout.toString().split("\n");
      const mine = cg.includes("/pids/") ? lines.find((l) => /^\d+:pids:/.test(l)) : lines.find((l) => l.startsWith("0::"));
      assert.equal(mine?.replace(/^\d+:[^:]*:/, ""), rel, o.stdout.toString());
      assert.equal(readFileSync(join(cg, "cgroup.procs"), "utf8"), "", "empty again once it exited");
    });

    test("a join that fails exits 97 with 'cannot move' in the output file, without running the command", async () => {
      const out = join(dir, "cg-out");
      const marker = join(dir, "cg-ran");
      const bad = join(cg, "no-such-child", "cgroup.procs");
      const o = await runP(sp, { file: "/bin/touch", args: [marker], outputFile: out, cgroupProcs: [join(cg, "cgroup.procs"), bad] });
      assert.equal(o.code, 97);
      assert.equal(o.spawnError, undefined);
      assert.match(await readFile(out, "utf8"), new RegExp(`cannot move /bin/touch \\(pid \\d+\\) into ${bad}: No such file or directory`));
      assert.equal(existsSync(marker), false);
      const p = await runP(sp, { file: "/bin/touch", args: [marker], cgroupProcs: [bad] });
      assert.equal(p.code, 97);
      assert.match(p.stderr.toString(), /cannot move/);
      assert.equal(existsSync(marker), false);
    });
  });

  test("kill() of a run with onSyncLine that never wrote: an empty line, then the outcome, even while a grandchild holds the sync pipe", async () => {
    const pidFile = join(dir, "sync-kill-pid");
    const events: string[] = [];
    let run!: ReturnType<Spawner["run"]>;
    const outcome = new Promise<SpawnOutcome>((resolve) => {
      run = sp.run({ ...sh(`setsid sh -c 'echo $$ > ${pidFile}; exec sleep 300' & wait`), env: ENV, onSyncLine: (l) => events.push(`line ${l}`) }, (o) => { events.push("outcome"); resolve(o); });
    });
    const other = await readPid(pidFile);
    try {
      run.kill();
      assert.equal((await outcome).signal, "SIGKILL");
      assert.deepEqual(events, ["line ", "outcome"]);
    } finally {
      killPid(other);
    }
  });

  test("kill() SIGKILLs the process group: the grandchild is gone", async () => {
    const pidFile = join(dir, "kill-pid");
    let run!: ReturnType<Spawner["run"]>;
    const outcome = new Promise<SpawnOutcome>((resolve) => { run = sp.run({ ...sh(`sleep 300 & echo $$ > ${pidFile}; wait`), env: ENV }, resolve); });
    const pgid = await readPid(pidFile);
    assert.ok((await processGroupMembers(pgid)).length >= 2, "shell and sleep share the group");
    run.kill();
    const o = await outcome;
    assert.equal(o.signal, "SIGKILL");
    await until(async () => (await processGroupMembers(pgid)).filter(alive).length === 0, "the group gone");
    run.kill(); // after the outcome: nothing happens
  });

  test("kill(): the outcome arrives even while a process in another session holds the pipes", async () => {
    const pidFile = join(dir, "other-session-pid");
    let run!: ReturnType<Spawner["run"]>;
    const outcome = new Promise<SpawnOutcome>((resolve) => {
      run = sp.run({ ...sh(`setsid sh -c 'echo $$ > ${pidFile}; exec sleep 300' & wait`), env: ENV }, resolve);
    });
    const other = await readPid(pidFile);
    try {
      run.kill();
      const o = await outcome;
      assert.equal(o.signal, "SIGKILL");
      assert.ok(alive(other), "the other session's process (holding stdout) still runs");
    } finally {
      killPid(other);
    }
  });

  test("a NUL byte in the file, an argument, the environment, cwd or a cgroup file throws synchronously and sends nothing", () => {
    const fresh = new Spawner(BIN);
    const bad: SpawnRequest[] = [
      { file: "/bin/e\0cho", args: [], env: ENV },
      { file: "/bin/echo", args: ["a\0b"], env: ENV },
      { file: "/bin/echo", args: [], env: { ...ENV, X: "a\0b" } },
      { file: "/bin/echo", args: [], env: ENV, cwd: "/tm\0p" },
      { file: "/bin/echo", args: [], env: ENV, cgroupProcs: ["/sys\0/x"] },
    ];
    for (const req of bad) {
      assert.throws(() => fresh.run(req, () => assert.fail("no outcome for a refused request")), (e: NodeJS.ErrnoException) => e instanceof TypeError && e.code === "ERR_INVALID_ARG_VALUE");
    }
    assert.equal(fresh.started, 0, "no berth-spawn was even started");
  });

  test("one environment object changed between runs: each run gets what it holds then (the kept encoding is not reused), and a NUL put into it is refused", async () => {
    const env: NodeJS.ProcessEnv = { ...ENV, BERTH_X: "1" };
    const first = await runP(sp, { ...sh('echo "$BERTH_X"'), env });
    env.BERTH_X = "2";
    const second = await runP(sp, { ...sh('echo "$BERTH_X"'), env });
    assert.deepEqual([first.stdout.toString(), second.stdout.toString()], ["1\n", "2\n"]);
    // "A=1" + "B=2" and "A=1\0B=2" join alike: the NUL check comes before the kept encoding is compared.
    const split: NodeJS.ProcessEnv = { PATH: ENV.PATH, A: "1", B: "2" };
    await runP(sp, { ...sh("true"), env: split });
    delete split.B;
    split.A = "1\0B=2";
    assert.throws(() => sp.run({ ...sh("true"), env: split }, () => assert.fail("no outcome for a refused request")), (e: NodeJS.ErrnoException) => e.code === "ERR_INVALID_ARG_VALUE");
  });

  test("300 concurrent runs each return their own output", async () => {
    const outs = await Promise.all(Array.from({ length: 300 }, (_, i) => runP(sp, { file: "/bin/sh", args: ["-c", 'sleep 0.05; echo "$1"; echo "e$1" >&2; exit $(($1 % 7))', "sh", String(i)] })));
    outs.forEach((o, i) => {
      assert.deepEqual({ out: o.stdout.toString(), err: o.stderr.toString(), code: o.code }, { out: `${i}\n`, err: `e${i}\n`, code: i % 7 });
    });
    assert.equal(sp.started, 1, "one berth-spawn served them all");
  });
});

describe("berth-spawn bounds and failures", () => {
  test("past 1024 running commands the next runs wait in order in the Spawner; a waiting run that is killed never runs", async () => {
    const sp = new Spawner(BIN);
    const runs: ReturnType<Spawner["run"]>[] = [];
    const outcomes: Promise<SpawnOutcome>[] = [];
    const order: string[] = [];
    const marker = join(tmpdir(), `berth-spawn-queued-${randomBytes(4).toString("hex")}`);
    try {
      for (let i = 0; i < 1024; i++) {
        outcomes.push(new Promise((resolve) => { runs.push(sp.run({ file: "/bin/sleep", args: ["300"], env: ENV }, (o) => { order.push(`sleep${i}`); resolve(o); })); }));
      }
      const queued = runP(sp, { file: "/bin/echo", args: ["1025th"] }).then((o) => { order.push("1025th"); return o; });
      let killedWaiting!: ReturnType<Spawner["run"]>;
      const waitingOutcome = new Promise<SpawnOutcome>((resolve) => { killedWaiting = sp.run({ file: "/bin/touch", args: [marker], env: ENV }, resolve); });
      killedWaiting.kill();
      const w = await waitingOutcome;
      assert.deepEqual({ code: w.code, signal: w.signal, err: w.spawnError }, { code: null, signal: "SIGKILL", err: undefined });
      runs[0]!.kill();
      const o = await queued;
      assert.deepEqual({ out: o.stdout.toString(), code: o.code }, { out: "1025th\n", code: 0 });
      assert.deepEqual(order, ["sleep0", "1025th"], "the 1025th ran once a running one was reported");
      assert.equal(existsSync(marker), false, "the killed waiting run never ran");
      assert.equal(sp.started, 1);
    } finally {
      // whatever failed above, no sleep is left behind
      for (const r of runs) r.kill();
      await until(async () => (await Promise.race([Promise.all(outcomes), sleep(100)])) !== undefined, "every sleep reported killed", 30_000);
      sp.close();
      await rm(marker, { force: true });
    }
    for (const o of await Promise.all(outcomes)) assert.equal(o.signal, "SIGKILL");
  });

  test("a request over 16 MiB throws E2BIG before anything is sent; berth-spawn goes on serving", async () => {
    const sp = new Spawner(BIN);
    try {
      assert.equal((await runP(sp, { file: "/bin/echo", args: ["before"] })).stdout.toString(), "before\n");
      assert.throws(() => sp.run({ file: "/bin/cat", args: [], env: ENV, stdin: "z".repeat(16 << 20) }, () => assert.fail("no outcome")),
        (e: NodeJS.ErrnoException) => e.code === "E2BIG" && /over berth-spawn's limit of 16777216/.test(e.message));
      assert.equal((await runP(sp, { file: "/bin/echo", args: ["after"] })).stdout.toString(), "after\n");
      assert.equal(sp.started, 1, "the same berth-spawn");
    } finally {
      sp.close();
    }
  });

  test("a berth-spawn that cannot be started fails the run naming it, and the next run tries again", async () => {
    const sp = new Spawner("/nonexistent/berth-spawn");
    const o = await runP(sp, { file: "/bin/echo", args: ["x"] });
    assert.equal(o.code, null);
    assert.match(o.spawnError?.message ?? "", /^cannot run berth-spawn \/nonexistent\/berth-spawn: spawn \/nonexistent\/berth-spawn ENOENT before \/bin\/echo was reported/);
    const again = await runP(sp, { file: "/bin/echo", args: ["x"] });
    assert.ok(again.spawnError);
    assert.equal(sp.started, 2);
    assert.equal(sp.broken, false);
    await runP(sp, { file: "/bin/echo", args: ["x"] });
    assert.equal(sp.broken, true, "3 failed starts in a row");
    // runCommand then forks as without a spawner
    useSpawner(sp);
    try {
      assert.equal(currentSpawner(), undefined);
      const r = await runCommand("/bin/echo", ["forked"]);
      assert.deepEqual({ out: r.stdout, code: r.code }, { out: "forked\n", code: 0 });
      assert.equal(sp.started, 3, "no 4th attempt");
    } finally {
      useSpawner(undefined);
    }
  });
});

describe("berth-spawn dies mid-run", () => {
  test("kill -9 of berth-spawn: the waiting runs fail naming berth-spawn; the next run starts a new one and works", async () => {
    const sp = new Spawner(BIN);
    const dir = await mkdtemp(join(tmpdir(), "berth-spawn-"));
    const pids: number[] = [];
    try {
      const outcomes = [0, 1, 2].map((i) => runP(sp, sh(`echo $$ > ${join(dir, `p${i}`)}; exec sleep 300`)));
      for (const i of [0, 1, 2]) pids.push(await readPid(join(dir, `p${i}`)));
      const first = sp.pid!;
      assert.equal(sp.started, 1);
      process.kill(first, "SIGKILL");
      for (const o of await Promise.all(outcomes)) {
        assert.equal(o.code, null);
        assert.match(o.spawnError?.message ?? "", /^berth-spawn exited \(SIGKILL\) before \/bin\/sh was reported: it may still run$/);
      }
      for (const p of pids) assert.ok(alive(p), `command ${p} goes on, as after a berthd that forked it died`);
      const o = await runP(sp, { file: "/bin/echo", args: ["again"] });
      assert.deepEqual({ out: o.stdout.toString(), code: o.code }, { out: "again\n", code: 0 });
      assert.equal(sp.started, 2);
      assert.notEqual(sp.pid, first);
    } finally {
      for (const p of pids) killPid(p);
      sp.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("close(): waiting runs fail with 'closed', and berth-spawn exits", async () => {
    const sp = new Spawner(BIN);
    const dir = await mkdtemp(join(tmpdir(), "berth-spawn-"));
    let pid = 0;
    try {
      const outcome = runP(sp, sh(`echo $$ > ${join(dir, "p")}; exec sleep 300`));
      pid = await readPid(join(dir, "p"));
      const spawnerPid = sp.pid!;
      sp.close();
      const o = await outcome;
      assert.match(o.spawnError?.message ?? "", /^berth-spawn was closed before \/bin\/sh was reported/);
      await until(() => !alive(spawnerPid), "berth-spawn exits on EOF");
    } finally {
      if (pid) killPid(pid);
      await rm(dir, { recursive: true, force: true });
    }
  });
});

// ---- raw frames ----

interface Raw {
  proc: ChildProcess;
  replies: Buffer[];
  stderr: () => string;
  /** Waits until n replies have come. */
  replyCount(n: number): Promise<Buffer[]>;
  exit(): Promise<number | null>;
}

function startRaw(file = BIN, args: string[] = [], extra: ("ignore" | number)[] = []): Raw {
  const proc = spawn(file, args, { stdio: ["pipe", "pipe", "pipe", ...extra] });
  let buf = Buffer.alloc(0);
  let err = "";
  const replies: Buffer[] = [];
  proc.stdout!.on("data", (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 4 && buf.length - 4 >= buf.readUInt32LE(0)) {
      const len = buf.readUInt32LE(0);
      replies.push(Buffer.from(buf.subarray(4, 4 + len)));
      buf = buf.subarray(4 + len);
    }
  });
  proc.stderr!.setEncoding("utf8").on("data", (d: string) => { err += d; });
  proc.stdin!.on("error", () => undefined);
  const exited = once(proc, "exit").then(([code]) => code as number | null);
  return {
    proc, replies, stderr: () => err,
    replyCount: (n) => until(() => replies.length >= n && replies, `${n} replies`),
    exit: () => exited,
  };
}

/** An EXIT reply's fields. */
function exitReply(p: Buffer) {
  assert.equal(p[0], 1, "an EXIT reply");
  const l0 = p.readUInt32LE(25);
  return { id: p.readUInt32LE(1), code: p.readInt32LE(5), sig: p.readInt32LE(9), errno: p.readInt32LE(13), stdout: p.subarray(29, 29 + l0).toString() };
}

function frame(payload: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32LE(payload.length);
  return Buffer.concat([h, payload]);
}

const u32 = (v: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(v >>> 0); return b; };
const str = (s: string | Buffer) => { const b = Buffer.from(s); return Buffer.concat([u32(b.length), b]); };

/** A RUN payload with fields as given (the encoder refuses what these attacks need). */
function runPayload(id: number, f: { flags?: number; file: string | Buffer; argv: (string | Buffer)[]; argc?: number; env?: string[] }): Buffer {
  return Buffer.concat([
    Buffer.from([1]), u32(id), u32(f.flags ?? 0), str(f.file), str(""), str(""),
    u32(f.argc ?? f.argv.length), ...f.argv.map(str), u32((f.env ?? []).length), ...(f.env ?? []).map(str),
  ]);
}

describe("berth-spawn raw frames", () => {
  let dir: string;
  const raws: Raw[] = [];
  const started: number[] = [];
  before(async () => { dir = await mkdtemp(join(tmpdir(), "berth-spawn-raw-")); });
  after(async () => {
    for (const p of started) killPid(p);
    for (const r of raws) if (r.proc.exitCode === null && r.proc.signalCode === null) { r.proc.kill("SIGKILL"); await r.exit(); }
    await rm(dir, { recursive: true, force: true });
  });
  const raw = () => { const r = startRaw(); raws.push(r); return r; };

  for (const [what, len] of [["over 16 MiB", (16 << 20) + 1], ["of 4 bytes (< 5)", 4], ["of 0", 0], ["of 4 GiB - 1", 0xffffffff]] as const) {
    test(`a frame length ${what} makes berth-spawn exit 2 without running anything`, async () => {
      const r = raw();
      const marker = join(dir, `ran-${len}`);
      // the header claims `len`; a RUN that would touch the marker follows
      const run = encodeRun(1, { file: "/bin/touch", args: [marker], env: ENV });
      r.proc.stdin!.write(Buffer.concat([u32(len), run.subarray(4)]));
      assert.equal(await r.exit(), 2);
      assert.match(r.stderr(), new RegExp(`berth-spawn: bad frame length ${len}`));
      assert.deepEqual(r.replies, []);
      assert.equal(existsSync(marker), false);
    });
  }

  test("an unknown op makes berth-spawn exit 2", async () => {
    const r = raw();
    r.proc.stdin!.write(frame(Buffer.concat([Buffer.from([9]), u32(1)])));
    assert.equal(await r.exit(), 2);
    assert.match(r.stderr(), /unknown op 9/);
  });

  test("a RUN cut anywhere, with argc 0, a NUL in a string or argc past the limit gets EINVAL (22), and berth-spawn keeps serving", async () => {
    const r = raw();
    const good = encodeRun(1000, { file: "/bin/echo", args: ["x"], env: ENV }).subarray(4);
    const frames: Buffer[] = [];
    let id = 1;
    // every truncation of a valid RUN after its op and id (the id is patched per frame)
    for (let cut = 9; cut < good.length; cut++) {
      const p = Buffer.from(good.subarray(0, cut));
      p.writeUInt32LE(id++, 1);
      frames.push(frame(p));
    }
    const attacks = [
      runPayload(0, { file: "/bin/echo", argv: [] }),
      runPayload(0, { file: Buffer.from("/bin/e\0cho"), argv: ["/bin/echo"] }),
      runPayload(0, { file: "/bin/echo", argv: [Buffer.from("a\0b")] }),
      runPayload(0, { file: "/bin/echo", argv: ["/bin/echo"], env: ["A=\0"] }),
      runPayload(0, { file: "/bin/echo", argv: ["/bin/echo"], argc: 65537 }),
      runPayload(0, { file: "/bin/echo", argv: ["/bin/echo"], argc: 0xffffffff }),
      // a string length past the frame's end
      Buffer.concat([Buffer.from([1]), u32(0), u32(0), u32(0xfffffff0), Buffer.from("/bin")]),
      // flags ask for stdin and cgroups that are not there
      runPayload(0, { flags: 1, file: "/bin/echo", argv: ["/bin/echo"] }),
      runPayload(0, { flags: 4, file: "/bin/echo", argv: ["/bin/echo"] }),
      // an output bound that is missing, or over 16 MiB
      runPayload(0, { flags: 8, file: "/bin/echo", argv: ["/bin/echo"] }),
      Buffer.concat([runPayload(0, { flags: 8, file: "/bin/echo", argv: ["/bin/echo"] }), u32((16 << 20) + 1)]),
      Buffer.concat([runPayload(0, { flags: 8, file: "/bin/echo", argv: ["/bin/echo"] }), u32(0xffffffff)]),
    ];
    for (const a of attacks) { a.writeUInt32LE(id++, 1); frames.push(frame(a)); }
    const bad = id - 1;
    frames.push(frame(runPayload(id, { file: "/bin/echo", argv: ["echo", "served"] })));
    r.proc.stdin!.write(Buffer.concat(frames));
    const replies = await r.replyCount(bad + 1);
    const byId = new Map(replies.map((p) => [exitReply(p).id, exitReply(p)]));
    for (let i = 1; i <= bad; i++) {
      assert.deepEqual({ ...byId.get(i), id: i }, { id: i, code: -1, sig: 0, errno: 22, stdout: "" }, `request ${i}`);
    }
    assert.deepEqual(byId.get(id), { id, code: 0, sig: 0, errno: 0, stdout: "served\n" });
    assert.equal(r.proc.exitCode, null, "still running");
  });

  test("at most 1024 commands run at once: the 1025th RUN gets EAGAIN (11); KILLs report them all", async () => {
    const r = raw();
    const frames: Buffer[] = [];
    for (let id = 1; id <= 1025; id++) frames.push(frame(runPayload(id, { file: "/bin/sleep", argv: ["sleep", "300"] })));
    r.proc.stdin!.write(Buffer.concat(frames));
    try {
      const [first] = await r.replyCount(1);
      assert.deepEqual(exitReply(first!), { id: 1025, code: -1, sig: 0, errno: 11, stdout: "" });
    } finally {
      const kills: Buffer[] = [];
      for (let id = 1; id <= 1024; id++) kills.push(frame(Buffer.concat([Buffer.from([2]), u32(id)])));
      r.proc.stdin!.write(Buffer.concat(kills));
      await r.replyCount(1025);
    }
    const killed = r.replies.slice(1).map(exitReply);
    assert.deepEqual(killed.map((k) => k.id).sort((a, b) => a - b), Array.from({ length: 1024 }, (_, i) => i + 1));
    assert.ok(killed.every((k) => k.sig === 9 && k.code === -1 && k.errno === 0));
  });

  test("a RELEASE or SIGNAL for an id it does not know, or a SIGNAL out of range, is ignored; a SIGNAL without its number ends berth-spawn", async () => {
    const r = raw();
    r.proc.stdin!.write(frame(Buffer.concat([Buffer.from([3]), u32(77)])));
    r.proc.stdin!.write(frame(Buffer.concat([Buffer.from([4]), u32(78), u32(15)])));
    r.proc.stdin!.write(frame(runPayload(6, { file: "/bin/sleep", argv: ["sleep", "0.3"] })));
    for (const sig of [0, 65, 0xffffffff]) r.proc.stdin!.write(frame(Buffer.concat([Buffer.from([4]), u32(6), u32(sig)])));
    const [p] = await r.replyCount(1);
    assert.deepEqual(exitReply(p!), { id: 6, code: 0, sig: 0, errno: 0, stdout: "" }, "not signalled");
    r.proc.stdin!.write(frame(Buffer.concat([Buffer.from([4]), u32(6)])));
    assert.equal(await r.exit(), 2);
    assert.match(r.stderr(), /short SIGNAL frame/);
  });

  test("a RUN with the id of a command not yet reported gets EEXIST (17); KILL then reaches the first; once reported, the id may run again", async () => {
    const r = raw();
    const marker = join(dir, "dup-ran");
    r.proc.stdin!.write(frame(runPayload(7, { file: "/bin/sleep", argv: ["sleep", "300"] })));
    r.proc.stdin!.write(frame(runPayload(7, { file: "/bin/touch", argv: ["touch", marker] })));
    const [dup] = await r.replyCount(1);
    assert.deepEqual(exitReply(dup!), { id: 7, code: -1, sig: 0, errno: 17, stdout: "" });
    assert.equal(existsSync(marker), false, "the second command did not run");
    r.proc.stdin!.write(frame(Buffer.concat([Buffer.from([2]), u32(7)])));
    const [, killed] = await r.replyCount(2);
    assert.deepEqual(exitReply(killed!), { id: 7, code: -1, sig: 9, errno: 0, stdout: "" }, "the sleep, killed");
    r.proc.stdin!.write(frame(runPayload(7, { file: "/bin/echo", argv: ["echo", "again"] })));
    const [, , again] = await r.replyCount(3);
    assert.deepEqual(exitReply(again!), { id: 7, code: 0, sig: 0, errno: 0, stdout: "again\n" });
  });

  test("a KILL for an id it does not know is ignored", async () => {
    const r = raw();
    r.proc.stdin!.write(frame(Buffer.concat([Buffer.from([2]), u32(77)])));
    r.proc.stdin!.write(frame(runPayload(5, { file: "/bin/echo", argv: ["echo", "ok"] })));
    const [p] = await r.replyCount(1);
    assert.deepEqual(exitReply(p!), { id: 5, code: 0, sig: 0, errno: 0, stdout: "ok\n" });
  });

  test("a frame split into single bytes is assembled", async () => {
    const r = raw();
    const f = encodeRun(9, { file: "/bin/echo", args: ["bytewise"], env: ENV });
    for (const b of f) { r.proc.stdin!.write(Buffer.from([b])); await sleep(1); }
    const [p] = await r.replyCount(1);
    assert.deepEqual(exitReply(p!), { id: 9, code: 0, sig: 0, errno: 0, stdout: "bytewise\n" });
  });

  test("EOF on stdin: berth-spawn exits 0 and a started command keeps running", async () => {
    const r = raw();
    const pidFile = join(dir, "eof-pid");
    r.proc.stdin!.write(encodeRun(1, { file: "/bin/sh", args: ["-c", `echo $$ > ${pidFile}; exec sleep 300`], env: ENV }));
    const pid = await readPid(pidFile);
    started.push(pid);
    r.proc.stdin!.end();
    assert.equal(await r.exit(), 0);
    assert.deepEqual(r.replies, []);
    assert.ok(alive(pid), "the sleep goes on");
  });

  test("descriptors berth-spawn inherited without close-on-exec do not reach its commands", async () => {
    // As when berthd's own parent leaked some (a shell's `exec 3>file`, a service manager's sockets).
    const leak = openSync("/dev/null", "r");
    let r: Raw;
    try {
      r = startRaw(BIN, [], [leak, "ignore", "ignore", leak]);
    } finally {
      closeSync(leak);
    }
    raws.push(r);
    await until(() => existsSync(`/proc/${r.proc.pid}/fd/6`), "berth-spawn holds the leaked fds");
    r.proc.stdin!.write(encodeRun(1, { file: "/bin/sh", args: ["-c", "ls /proc/$$/fd"], env: ENV }));
    r.proc.stdin!.write(encodeRun(2, { file: "/bin/sh", args: ["-c", "ls /proc/$$/fd"], env: ENV, onSyncLine: () => undefined }));
    const replies = await r.replyCount(3);
    const exits = replies.filter((p) => p[0] === 1).map(exitReply).sort((a, b) => a.id - b.id);
    assert.deepEqual(exits.map((e) => e.stdout.split("\n").filter(Boolean).map(Number).sort((a, b) => a - b)), [[0, 1, 2], [0, 1, 2, 3]]);
    r.proc.stdin!.end();
    assert.equal(await r.exit(), 0);
  });

  test("a berth-spawn started with signals ignored and blocked still gives its commands the defaults", async () => {
    // As when its parent ignored SIGINT/SIGHUP/SIGTERM (nohup, a service manager): execve keeps ignored dispositions.
    const r = startRaw("/bin/sh", ["-c", `trap '' INT HUP TERM QUIT; exec ${BIN}`]);
    raws.push(r);
    r.proc.stdin!.write(encodeRun(1, { file: "/bin/grep", args: ["-E", "^Sig(Blk|Ign):", "/proc/self/status"], env: ENV }));
    const [p] = await r.replyCount(1);
    assert.equal(exitReply(p!).stdout, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
    r.proc.stdin!.end();
    assert.equal(await r.exit(), 0);
  });
});

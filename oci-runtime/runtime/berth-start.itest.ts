// berth-start against stand-in inits (needs the helper installed by hack/build-helpers.sh): the
// cases a real runc init only hits by timing. An init may open the exec fifo after `runc create`
// returned; berth-start must wait for it while the pid is still runc's init, and give up (exit 3,
// nothing changed) when it is not, or when it dies without writing.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile, access } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCommand } from "../foundation/run-command.ts";

const HELPER = "/usr/local/libexec/berth/berth-start";
const dir = await mkdtemp(join(tmpdir(), "berth-start-"));
after(async () => { await rm(dir, { recursive: true, force: true }); });

/** A process whose comm is runc's init name, running `script` (a shell script file named so). */
function fakeInit(name: string, script: string): { pid: number; exited: Promise<number | null> } {
  const path = join(dir, name, "runc:[2:INIT]");
  execFileSync("mkdir", ["-p", join(dir, name)]);
  execFileSync("sh", ["-c", `cat > '${path}' && chmod 0755 '${path}'`], { input: `#!/bin/sh\n${script}\n` });
  const child = spawn(path, [], { stdio: "ignore" });
  return { pid: child.pid!, exited: new Promise((r) => child.on("exit", (code) => r(code))) };
}

async function mkfifo(name: string): Promise<string> {
  const fifo = join(dir, `${name}.fifo`);
  execFileSync("mkfifo", ["-m", "0622", fifo]);
  return fifo;
}

test("an init that opens the fifo only after berth-start began is waited for: its byte is read and the fifo removed", async () => {
  const fifo = await mkfifo("late");
  const init = fakeInit("late", `sleep 0.4; printf 0 > '${fifo}'; sleep 30`);
  const t = Date.now();
  const res = await runCommand(HELPER, [fifo, String(init.pid)], { timeoutMs: 10_000 });
  assert.equal(res.code, 0, res.stderr);
  assert.ok(Date.now() - t >= 300, "it waited for the late writer");
  await assert.rejects(access(fifo), /ENOENT/, "the fifo is removed, as runc start does");
  process.kill(init.pid, "SIGKILL");
});

test("an init that dies without writing: exit 3, the fifo stays", async () => {
  const fifo = await mkfifo("dies");
  const init = fakeInit("dies", "sleep 0.3");
  const res = await runCommand(HELPER, [fifo, String(init.pid)], { timeoutMs: 10_000 });
  assert.equal(res.code, 3, res.stderr);
  await access(fifo);
  await init.exited;
});

test("a pid that is not runc's init (a stranger, or an init that already exec'd): exit 3 at once, nothing read or removed", async () => {
  const fifo = await mkfifo("stranger");
  const other = spawn("sleep", ["30"], { stdio: "ignore" });
  const t = Date.now();
  const res = await runCommand(HELPER, [fifo, String(other.pid)], { timeoutMs: 10_000 });
  assert.equal(res.code, 3, res.stderr);
  assert.ok(Date.now() - t < 2000);
  await access(fifo);
  other.kill("SIGKILL");
});

test("a missing fifo or a gone pid is exit 3; a symlink, a regular file or a bad pid is refused", async () => {
  const init = fakeInit("refuse", "sleep 30");
  assert.equal((await runCommand(HELPER, [join(dir, "none.fifo"), String(init.pid)], { timeoutMs: 10_000 })).code, 3);
  const fifo = await mkfifo("target");
  execFileSync("ln", ["-s", fifo, join(dir, "link.fifo")]);
  assert.equal((await runCommand(HELPER, [join(dir, "link.fifo"), String(init.pid)], { timeoutMs: 10_000 })).code, 1, "a symlink is not followed");
  await writeFile(join(dir, "plain"), "x");
  const plain = await runCommand(HELPER, [join(dir, "plain"), String(init.pid)], { timeoutMs: 10_000 });
  assert.equal(plain.code, 1);
  assert.match(plain.stderr, /is not a fifo/);
  for (const bad of ["0", "-1", "12x", "", "99999999999"]) {
    assert.equal((await runCommand(HELPER, [fifo, bad], { timeoutMs: 10_000 })).code, 2, `pid ${JSON.stringify(bad)}`);
  }
  assert.equal((await runCommand(HELPER, [fifo], { timeoutMs: 10_000 })).code, 2);
  process.kill(init.pid, "SIGKILL");
  await init.exited;
  assert.equal((await runCommand(HELPER, [fifo, String(init.pid)], { timeoutMs: 10_000 })).code, 3, "a reaped pid");
  await access(fifo);
});

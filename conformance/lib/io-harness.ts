// Test-only: a tiny busybox container run under conmon (so attach has a real
// conmon socket), a netns with a web server, and the compiled berth-io
// helper. Everything lives under one mkdtemp dir and is removed by cleanup().
// Not the production launcher (that is oci-runtime/monitor).

import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { buildIoHelper } from "../../oci-runtime/io/helper.ts";
import { BERTH_MONITOR } from "./monitors.ts";
import { defaultConfig } from "../../cri-server/config.ts";

const run = promisify(execFile);
export const RUNC = "/usr/sbin/runc";
const BUSYBOX = "/usr/bin/busybox";
const APPLETS = ["sh", "cat", "echo", "stty", "tty", "wc", "head", "sleep", "ls", "true", "false", "env", "httpd", "nc", "printf", "seq"];

export interface Workspace { dir: string; helper: string; cleanup(): Promise<void> }

/** A temp dir with the compiled helper; cleanup() runs the registered undo steps in reverse. */
export async function workspace(): Promise<Workspace & { defer(fn: () => Promise<unknown>): void }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "bio-"));
  const undo: (() => Promise<unknown>)[] = [() => rm(dir, { recursive: true, force: true })];
  const helper = await buildIoHelper(path.join(dir, "berth-io"));
  return {
    dir,
    helper,
    defer: (fn) => { undo.push(fn); },
    async cleanup() {
      for (const fn of undo.reverse()) await fn().catch(() => undefined);
    },
  };
}

export async function busyboxRootfs(dir: string): Promise<string> {
  const rootfs = path.join(dir, "rootfs");
  for (const d of ["bin", "dev", "proc", "sys", "tmp", "etc", "www"]) await mkdir(path.join(rootfs, d), { recursive: true });
  await copyFile(BUSYBOX, path.join(rootfs, "bin", "busybox"));
  for (const a of APPLETS) await symlink("busybox", path.join(rootfs, "bin", a));
  return rootfs;
}

function ociConfig(args: string[], tty: boolean) {
  return {
    ociVersion: "1.0.2",
    process: { terminal: tty, user: { uid: 0, gid: 0 }, args, env: ["PATH=/bin", "TERM=xterm"], cwd: "/", noNewPrivileges: true },
    root: { path: "rootfs", readonly: false },
    hostname: "bio",
    mounts: [
      { destination: "/proc", type: "proc", source: "proc" },
      { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
      { destination: "/dev/pts", type: "devpts", source: "devpts", options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"] },
      { destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev"] },
    ],
    linux: {
      namespaces: [{ type: "pid" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }, { type: "network" }],
      maskedPaths: ["/proc/kcore"],
      readonlyPaths: ["/proc/sys"],
    },
  };
}

export interface TestContainer {
  id: string;
  runcRoot: string;
  bundle: string;
  attachSocketPath: string;
  ctlPath: string;
}

/** Creates and starts a container under a monitor (berth-monitor or conmon); registers its teardown with `ws.defer`. */
export async function startContainer(ws: Workspace & { defer(fn: () => Promise<unknown>): void }, opts: { args: string[]; tty: boolean; stdin: boolean; leaveStdinOpen?: boolean }): Promise<TestContainer> {
  const id = `bio-${randomBytes(6).toString("hex")}`;
  const base = path.join(ws.dir, id);
  const bundle = path.join(base, "b");
  const runcRoot = path.join(ws.dir, "runc");
  const socketDir = path.join(ws.dir, "s");
  for (const d of [bundle, runcRoot, socketDir, path.join(base, "exits"), path.join(base, "persist")]) await mkdir(d, { recursive: true });
  await busyboxRootfs(bundle);
  await writeFile(path.join(bundle, "config.json"), JSON.stringify(ociConfig(opts.args, opts.tty)));
  const args = [
    "--api-version", "1", "-c", id, "-u", id, "-n", id, "-r", RUNC, "-b", bundle,
    "-p", path.join(base, "pid"), "-P", path.join(base, "conmon.pid"), "-l", `k8s-file:${path.join(base, "ctr.log")}`,
    "--exit-dir", path.join(base, "exits"), "--socket-dir-path", socketDir, "--persist-dir", path.join(base, "persist"),
    "--runtime-arg", `--root=${runcRoot}`, "--log-level", "warning",
    ...(opts.stdin ? ["-i"] : []), ...(opts.tty ? ["-t"] : []), ...(opts.leaveStdinOpen ? ["--leave-stdin-open"] : []),
  ];
  ws.defer(async () => {
    await run(RUNC, ["--root", runcRoot, "kill", id, "KILL"]).catch(() => undefined);
    await run(RUNC, ["--root", runcRoot, "delete", "--force", id]).catch(() => undefined);
    const pid = Number((await readFile(path.join(base, "conmon.pid"), "utf8").catch(() => "")).trim());
    if (pid > 1) { try { process.kill(pid, "SIGKILL"); } catch { /* gone */ } }
  });
  // conmon forks; the parent returns once `runc create` finished.
  await new Promise<void>((resolve, reject) => {
    // The monitor berthd runs by default (runtime.monitor), or the one BERTH_TEST_MONITOR names: same options and files.
    const c = spawn((process.env.BERTH_TEST_MONITOR ?? defaultConfig().runtime.monitor) === "berth" ? BERTH_MONITOR : "conmon", args, { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    c.stderr.on("data", (d: Buffer) => { err += d.toString(); });
    c.once("error", reject);
    c.once("close", (code) => code === 0 ? resolve() : reject(new Error(`conmon exited ${code}: ${err}`)));
  });
  // Without a sync pipe conmon's parent exits at once: wait for runc create's pid file.
  for (let i = 0; ; i++) {
    if (await readFile(path.join(base, "pid"), "utf8").then((t) => t.trim() !== "", () => false)) break;
    if (i > 200) throw new Error(`container ${id} was not created by conmon`);
    await new Promise((r) => setTimeout(r, 50));
  }
  await run(RUNC, ["--root", runcRoot, "start", id]);
  return { id, runcRoot, bundle, attachSocketPath: path.join(socketDir, id, "attach"), ctlPath: path.join(bundle, "ctl") };
}

/** A named netns (ip netns add) with lo up; removed on cleanup. */
export async function testNetns(ws: Workspace & { defer(fn: () => Promise<unknown>): void }): Promise<{ name: string; path: string }> {
  const name = `bio-${randomBytes(5).toString("hex")}`;
  await run("ip", ["netns", "add", name]);
  ws.defer(() => run("ip", ["netns", "delete", name]));
  await run("ip", ["-n", name, "link", "set", "lo", "up"]);
  return { name, path: `/var/run/netns/${name}` };
}

/** Starts busybox httpd serving `body` on 127.0.0.1:port (inside `netns` when given). */
export async function startHttpd(ws: Workspace & { defer(fn: () => Promise<unknown>): void }, port: number, body: string, netns?: string): Promise<void> {
  const www = path.join(ws.dir, `www-${port}-${netns ?? "host"}`);
  await mkdir(www, { recursive: true });
  await writeFile(path.join(www, "index.html"), body);
  const cmd = [BUSYBOX, "httpd", "-f", "-p", `127.0.0.1:${port}`, "-h", www];
  const child = netns ? spawn("ip", ["netns", "exec", netns, ...cmd], { stdio: "ignore" }) : spawn(cmd[0]!, cmd.slice(1), { stdio: "ignore" });
  ws.defer(async () => { child.kill("SIGKILL"); });
  // Wait until it serves a request (through the helper, which can enter the netns).
  const nsPath = netns ? `/var/run/netns/${netns}` : "-";
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((r) => {
      const c = execFile(ws.helper, ["connect", nsPath, String(port)], (err, stdout) => r(!err && stdout.includes(" 200 ")));
      c.stdin?.on("error", () => undefined); // EPIPE while the server is not up yet
      c.stdin?.end("GET / HTTP/1.0\r\n\r\n");
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`httpd on port ${port} did not start`);
}

/** A free TCP port on the host loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => { const a = s.address() as net.AddressInfo; s.close(() => resolve(a.port)); });
    s.on("error", reject);
  });
}

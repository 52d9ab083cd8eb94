// Test helper for itests: a throw-away OCI bundle with a busybox-static rootfs, run to completion with the
// real runc under a private state root. Everything lives under one mkdtemp directory and is removed by cleanup().

import { execFile } from "node:child_process";
import { copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import type { Spec, SpecOpt } from "../../oci-runtime/bundle-spec/types.ts";
import { DEFAULT_CAPABILITIES } from "../../oci-runtime/security/capability-names.ts";

export const BUSYBOX = "/usr/bin/busybox";
const APPLETS = ["sh", "hostname", "cat", "chmod", "touch", "ls", "grep", "id", "ping", "echo", "wc", "mkdir", "sleep"];

export interface RunResult { code: number; stdout: string; stderr: string }

export const haveRunc = (): boolean => ["/usr/sbin/runc", "/usr/bin/runc"].some(existsSync) && existsSync(BUSYBOX) && process.getuid?.() === 0;

/** A minimal container spec: busybox rootfs, own pid/ipc/uts/mount/net namespaces, read-only sysfs. */
export function minimalSpec(args: string[]): Spec {
  return {
    ociVersion: "1.0.2",
    process: {
      terminal: false, user: { uid: 0, gid: 0 }, args, env: ["PATH=/bin"], cwd: "/",
      capabilities: { bounding: [...DEFAULT_CAPABILITIES], effective: [...DEFAULT_CAPABILITIES], permitted: [...DEFAULT_CAPABILITIES] },
    },
    root: { path: "rootfs" },
    hostname: "berth-itest",
    mounts: [
      { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
      { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
      { destination: "/dev/pts", type: "devpts", source: "devpts", options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"] },
      { destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
      { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
    ],
    linux: {
      namespaces: [{ type: "pid" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }, { type: "network" }],
      resources: { devices: [{ allow: false, access: "rwm" }] },
    },
  };
}

export class Bundle {
  readonly dir: string;
  readonly rootfs: string;
  readonly state: string;
  readonly ids: string[] = [];

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), "berth-security-itest-"));
    this.rootfs = join(this.dir, "rootfs");
    this.state = join(this.dir, "runc-state");
    for (const d of ["bin", "proc", "sys", "dev", "tmp", "etc", "suid"]) mkdirSync(join(this.rootfs, d), { recursive: true });
    copyFileSync(BUSYBOX, join(this.rootfs, "bin/busybox"));
    // hard links, not symlinks: a masked /bin/ls must cover that name only
    for (const a of APPLETS) linkSync(join(this.rootfs, "bin/busybox"), join(this.rootfs, "bin", a));
    writeFileSync(join(this.rootfs, "etc/passwd"), "root:x:0:0:root:/:/bin/sh\nuser:x:1000:1000:user:/:/bin/sh\n");
    writeFileSync(join(this.rootfs, "etc/group"), "root:x:0:\nuser:x:1000:\n");
  }

  /** Writes config.json from the minimal spec plus options, runs it to completion, deletes the container. */
  async run(args: string[], opts: SpecOpt<unknown>[] = []): Promise<RunResult> {
    const spec = minimalSpec(args);
    for (const o of opts) await o(spec, undefined);
    const id = `berth-sec-${randomBytes(6).toString("hex")}`;
    this.ids.push(id);
    writeFileSync(join(this.dir, "config.json"), JSON.stringify(spec, null, 2));
    const res = await new Promise<RunResult>((resolve) => {
      execFile("runc", ["--root", this.state, "run", "--bundle", this.dir, id], { timeout: 60_000 }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : -1) : 0;
        resolve({ code, stdout, stderr });
      });
    });
    await this.remove(id);
    return res;
  }

  async remove(id: string): Promise<void> {
    await new Promise<void>((resolve) => execFile("runc", ["--root", this.state, "delete", "--force", id], () => resolve()));
  }

  async cleanup(): Promise<void> {
    for (const id of this.ids) await this.remove(id);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

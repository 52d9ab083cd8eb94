// Shared setup for oci-runtime integration tests: a busybox rootfs, a private runc root, unique cgroups,
// and a teardown that removes every container, monitor, cgroup and file the test made.
import { execFileSync } from "node:child_process";
import { copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { RuncCli } from "../../oci-runtime/runtime/runc-cli.ts";
import { createContainer, conmonFiles, type ConmonCreateOptions } from "../../oci-runtime/monitor/conmon.ts";
import { readPidFile, isConmonAlive } from "../../oci-runtime/monitor/pids.ts";
import { detectCgroupLayout } from "../../oci-runtime/cgroups/mode.ts";
import { containerCgroupsPath, removeCgroup } from "../../oci-runtime/cgroups/paths.ts";
import { defaultSpec } from "../../oci-runtime/bundle-spec/default-spec.ts";
import { writeBundle } from "../../oci-runtime/bundle-spec/bundle.ts";
import { compose, type Spec, type SpecOpt } from "../../oci-runtime/bundle-spec/types.ts";

export async function makeBusyboxRootfs(dir: string, files: Record<string, string> = {}): Promise<string> {
  const rootfs = join(dir, "rootfs");
  await mkdir(join(rootfs, "bin"), { recursive: true });
  for (const d of ["proc", "dev", "sys", "etc", "tmp"]) await mkdir(join(rootfs, d), { recursive: true });
  await copyFile("/usr/bin/busybox", join(rootfs, "bin", "busybox"));
  const applets = execFileSync("/usr/bin/busybox", ["--list"], { encoding: "utf8" }).split("\n").filter(Boolean);
  for (const a of applets) if (a !== "busybox") await symlink("busybox", join(rootfs, "bin", a)).catch(() => undefined);
  await writeFile(join(rootfs, "etc", "passwd"), "root:x:0:0:root:/root:/bin/sh\n");
  await writeFile(join(rootfs, "etc", "group"), "root:x:0:\n");
  for (const [p, text] of Object.entries(files)) {
    await mkdir(join(rootfs, p, ".."), { recursive: true });
    await writeFile(join(rootfs, p), text);
  }
  return rootfs;
}

export interface ItestEnv {
  dir: string;
  runtime: RuncCli;
  exitDir: string;
  socketDir: string;
  cgroupParent: string;
  rootfs: string;
  bundle(id: string): string;
  logPath(id: string): string;
  /** Writes the bundle (default spec + opts) and starts conmon; does not `runtime start`. */
  create(id: string, opts: SpecOpt<unknown>[], extra?: Partial<ConmonCreateOptions> & { spec?: Spec }): Promise<{ pid: number; conmonPid: number }>;
  /** Registers a container made outside `create` for teardown. */
  track(id: string): void;
  cleanup(): Promise<void>;
}

export async function makeEnv(files: Record<string, string> = {}): Promise<ItestEnv> {
  const dir = await mkdtemp(join(tmpdir(), "berth-oci-"));
  const tag = randomBytes(4).toString("hex");
  const runtime = new RuncCli({ name: "runc", binary: "/usr/bin/runc", root: join(dir, "runc-root") });
  const rootfs = await makeBusyboxRootfs(dir, files);
  const ids = new Set<string>();
  const env: ItestEnv = {
    dir, runtime, rootfs,
    exitDir: join(dir, "exits"),
    socketDir: join(dir, "sockets"),
    cgroupParent: `/berth-itest-${tag}`,
    bundle: (id) => join(dir, "bundles", id),
    logPath: (id) => join(dir, "logs", `${id}.log`),
    async create(id, opts, extra = {}) {
      ids.add(id);
      const spec = extra.spec ?? defaultSpec({ rootfs });
      await compose(spec, undefined, [...opts, (s) => { s.linux!.cgroupsPath ??= containerCgroupsPath(env.cgroupParent, id); }]);
      await writeBundle(env.bundle(id), spec);
      await mkdir(join(dir, "logs"), { recursive: true });
      return createContainer({ runtime, id, bundle: env.bundle(id), logPath: env.logPath(id), exitDir: env.exitDir, socketDir: env.socketDir, ...extra });
    },
    track(id) { ids.add(id); },
    async cleanup() {
      const layout = await detectCgroupLayout();
      for (const id of ids) {
        await runtime.kill(id, "KILL", true).catch(() => undefined);
        await runtime.delete(id, { force: true }).catch(() => undefined);
        const cp = await readPidFile(conmonFiles(env.bundle(id)).conmonPidFile);
        if (cp && (await isConmonAlive(cp))) { try { process.kill(cp, "SIGKILL"); } catch { /* gone */ } }
        await removeCgroup(layout, containerCgroupsPath(env.cgroupParent, id));
      }
      await removeCgroup(layout, env.cgroupParent);
      await rm(dir, { recursive: true, force: true });
    },
  };
  return env;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value; gives up (throws) after `giveUpMs`, a hang guard rather than a timing assertion. */
export async function eventually<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, giveUpMs = 30_000, everyMs = 50): Promise<T> {
  const end = Date.now() + giveUpMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`condition not met within ${giveUpMs} ms`);
    await sleep(everyMs);
  }
}

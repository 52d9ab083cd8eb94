// The pod infra process: berth's own minimal rootfs with Debian's catatonit in
// pause mode (-P), started through the pod's OCI runtime handler. It holds the
// pod's IPC, UTS and PID namespaces (the network namespace is pinned on disk).
// Only pods that share a PID namespace (pid mode POD) get one, unless
// runtime.drop_infra is false; the others have their IPC and UTS namespaces
// pinned as files instead (sandbox/ops/run.ts, berth-mount pin-ns).
// No conmon: the infra has no output worth logging, and this keeps a pod's
// helpers to one small process per container.
import { copyFile, chmod, mkdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Config } from "../config.ts";
import { BerthError, Code, internal } from "../../oci-runtime/foundation/errdefs.ts";
import type { Logger } from "../../oci-runtime/foundation/log.ts";
import { writeJsonAtomic } from "../../oci-runtime/foundation/atomic-file.ts";
import { ensureDir } from "../../oci-runtime/foundation/dir-modes.ts";
import { bootId, processStartTime, readPidFile } from "../../oci-runtime/monitor/pids.ts";
import type { RuntimeHandlers } from "../../oci-runtime/runtime/handlers.ts";
import type { Spec } from "../../oci-runtime/bundle-spec/types.ts";
import { buildInfraSpec } from "../../oci-runtime/bundle-spec/container-spec.ts";
import { infraSpecInput, resolveInfraSecurity } from "../container/spec-input.ts";
import { bindClone, detach, mountHelperPath, podUsernsDir } from "../../oci-runtime/mounts/mount-helper.ts";
import type { InfraInput, InfraRuntime } from "./deps.ts";
import type { SandboxRecord } from "./sandbox-record.ts";
import { waitUntil } from "../../oci-runtime/foundation/wait.ts";
import { warmCgroupAttach } from "../../oci-runtime/cgroups/attach-warm.ts";

const CATATONIT = "/usr/bin/catatonit";
/** How long a SIGKILLed infra process gets to go before stop gives up waiting. */
const INFRA_EXIT_WAIT_MS = 2000;

export class RuncInfraRuntime implements InfraRuntime {
  private readonly config: Config;
  private readonly log: Logger;
  private readonly runtimes: RuntimeHandlers;
  private rootfsReady: Promise<string> | undefined;

  constructor(config: Config, log: Logger, runtimes: RuntimeHandlers) {
    this.config = config;
    this.log = log.child({ component: "infra" });
    this.runtimes = runtimes;
  }

  /** berth's minimal infra rootfs: catatonit and the mount points the runtime needs; built once per state dir. */
  ensureRootfs(): Promise<string> {
    return (this.rootfsReady ??= (async () => {
      // <state>/infra (0700) keeps host users out; the rootfs itself stays 0755: it is "/" inside the infra container.
      await ensureDir(join(this.config.state, "infra"), 0o700);
      const dir = join(this.config.state, "infra", "rootfs");
      const bin = join(dir, "catatonit");
      try {
        const [a, b] = await Promise.all([stat(bin), stat(CATATONIT)]);
        if (a.size === b.size) return dir;
      } catch { /* build it */ }
      const tmp = `${dir}.tmp`;
      await rm(tmp, { recursive: true, force: true });
      await ensureDir(tmp, 0o755);
      for (const d of ["dev", "proc", "sys", "etc", "tmp"]) await ensureDir(join(tmp, d), 0o755);
      await copyFile(CATATONIT, join(tmp, "catatonit"));
      await chmod(join(tmp, "catatonit"), 0o755);
      await rm(dir, { recursive: true, force: true });
      await rename(tmp, dir);
      return dir;
    })().catch((err) => { this.rootfsReady = undefined; throw err; }));
  }

  /** The infra spec, from oci-runtime's one builder (the CRI fields mapped by container/spec-input.ts). */
  async buildSpec(input: InfraInput, rootfs: string): Promise<Spec> {
    const security = await resolveInfraSecurity(input.config, this.config.runtime.seccomp_default);
    return buildInfraSpec(infraSpecInput({ ...input, rootfs }, security));
  }

  /** Before anything of a pod is created: the handler's binary must be runnable (FAILED_PRECONDITION naming both). */
  preflight(handler: string): void {
    this.runtimes.usable(handler);
  }

  /**
   * Creates and starts the infra process. Every runtime call is bounded by the handler's limit
   * and by `input.signal` (the RPC's deadline): the runtime is killed with its process group and
   * the runtime's state deleted; the caller rolls back the rest.
   */
  async start(input: InfraInput & { signal?: AbortSignal | undefined }): Promise<{ pid: number; cgroupsPath: string; startTime: string; bootId: string }> {
    const rt = this.runtimes.get(input.handler); // preflight checked the binary before the pod was created
    warmCgroupAttach(); // runc create moves the infra process into its cgroups
    let rootfs = await this.ensureRootfs();
    const helper = mountHelperPath(this.config.runtime.io_helper);
    let clone = "";
    if (input.userns) {
      // berth's infra rootfs, idmapped to the pod, where the pod's root can reach it (the pod's pin dir).
      clone = join(podUsernsDir(this.config.state, input.id), "rootfs");
      await bindClone(helper, rootfs, clone, { userns: input.userns.path, mode: "ro" });
      rootfs = clone;
    }
    await mkdir(input.bundle, { recursive: true, mode: 0o700 });
    const spec = await this.buildSpec(input, rootfs);
    await writeJsonAtomic(join(input.bundle, "config.json"), spec);
    const pidFile = join(input.bundle, "pid");
    const id = input.id;
    try {
      // Typed failures (a timeout, the deadline, a missing binary) keep their code; the rest are internal.
      const wrap = (what: string) => (err: Error) => {
        throw new BerthError(err instanceof BerthError ? err.code : Code.INTERNAL, `${what} the infra process of sandbox ${id} failed: ${err.message}`, { cause: err });
      };
      await rt.create(id, { bundle: input.bundle, pidFile, signal: input.signal }).catch(wrap("creating"));
      const pid = (await readPidFile(pidFile)) ?? 0;
      await rt.start(id, { signal: input.signal, initPid: pid }).catch(wrap("starting"));
      const startTime = await processStartTime(pid);
      if (!startTime) throw internal(`the infra process of sandbox ${id} (pid ${pid}) exited right after it started`);
      // The infra's mount namespace holds its own copy of the rootfs clone.
      if (clone) await detach(helper, clone).catch((err: Error) => this.log.warn("cannot release the infra rootfs clone", { sandbox: id, error: err.message }));
      return { pid, cgroupsPath: spec.linux!.cgroupsPath!, startTime, bootId: await bootId() };
    } catch (err) {
      await rt.delete(id, { force: true }).catch(() => {});
      throw err;
    }
  }

  /**
   * Whether the infra process still runs: the pid must be alive and still be the same
   * process (start time and boot id), never a stranger that reused the pid.
   */
  async alive(rec: SandboxRecord): Promise<boolean> {
    const st = await processStartTime(rec.infra.pid);
    if (st === undefined) return false;
    if (rec.infra.startTime === undefined) return true; // records from before start times were kept
    return st === rec.infra.startTime && rec.infra.bootId === (await bootId());
  }

  async stop(rec: SandboxRecord): Promise<void> {
    if (!(await this.alive(rec))) return;
    try {
      await this.runtimes.get(rec.runtimeHandler).kill(rec.id, "KILL");
    } catch {
      // Fall back to the pid we know (alive() checks it is still ours), so a broken runtime state,
      // a runtime that hangs or a binary removed meanwhile never leaves the pod running.
      if (await this.alive(rec)) try { process.kill(rec.infra.pid, "SIGKILL"); } catch { /* gone */ }
    }
    if (!(await waitUntil(async () => !(await this.alive(rec)), { timeoutMs: INFRA_EXIT_WAIT_MS, intervalMs: 10 }))) {
      this.log.warn("infra process still alive after SIGKILL", { sandbox: rec.id, pid: rec.infra.pid, waited_ms: INFRA_EXIT_WAIT_MS });
    }
  }

  async remove(rec: SandboxRecord): Promise<void> {
    await this.runtimes.get(rec.runtimeHandler).delete(rec.id, { force: true }).catch((err: Error) => {
      this.log.warn("runtime delete of infra failed", { sandbox: rec.id, error: err.message });
    });
    await rm(rec.infra.bundle, { recursive: true, force: true });
  }
}

// berth's StreamingBackend: exec through the OCI runtime (pty via berth-io for TTYs),
// attach through conmon's attach socket, port-forward into the pod's netns.
import { access, constants, mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { attachToConmon } from "../oci-runtime/io/conmon-attach.ts";
import { forwardPort } from "../oci-runtime/io/port-forward.ts";
import { runcExec } from "../oci-runtime/io/runc-exec.ts";
import { attachSocketPath } from "../oci-runtime/index.ts";
import type { Context } from "./context.ts";
import { failedPrecondition, internal } from "../oci-runtime/foundation/errdefs.ts";
import type { StreamingBackend, StreamIO } from "./streaming/backend.ts";
import type { AttachRequest, ExecRequest } from "./streaming/tokens.ts";

export class BerthStreamingBackend implements StreamingBackend {
  /** The context is built after the streaming server (it holds it), hence the getter. */
  private readonly context: () => Context;
  constructor(context: () => Context) { this.context = context; }
  private get ctx(): Context { return this.context(); }

  private async helper(): Promise<string> {
    const path = this.ctx.config.runtime.io_helper;
    try {
      await access(path, constants.X_OK);
    } catch {
      throw internal(`berth's io helper ${path} is missing; run hack/setup.sh (or hack/build-helpers.sh) to build it`);
    }
    return path;
  }

  private async running(id: string) {
    const rec = await this.ctx.containers.refresh(this.ctx.containers.get(id).id);
    if (rec.state !== "running") throw failedPrecondition(`container ${rec.id} is not running (state ${rec.state})`);
    return rec;
  }

  async exec(req: ExecRequest, io: StreamIO, signal: AbortSignal): Promise<{ exitCode: number }> {
    const rec = await this.running(req.containerId);
    const rt = this.ctx.containers.runtimeOf(rec);
    let runtimeError = "";
    const tmpDir = join(rec.bundle, "exec");
    await mkdir(tmpDir, { recursive: true, mode: 0o700 });
    const res = await runcExec({
      runtimePath: rt.binary,
      root: rt.root,
      containerId: rec.id,
      cmd: req.cmd,
      tty: req.tty,
      helperPath: await this.helper(),
      tmpDir,
      onRuntimeError: (text) => { runtimeError = text; },
    }, io, signal);
    if (runtimeError && res.exitCode !== 0 && /exec failed|executable file not found|no such file/i.test(runtimeError)) {
      throw internal(runtimeError.trim());
    }
    return res;
  }

  async attach(req: AttachRequest, io: StreamIO, signal: AbortSignal): Promise<void> {
    const rec = await this.running(req.containerId);
    await attachToConmon({
      helperPath: await this.helper(),
      attachSocketPath: attachSocketPath(this.ctx.containers.socketDir, rec.id),
      ctlPath: join(rec.bundle, "ctl"),
    }, io, signal);
  }

  async portForward(podSandboxId: string, port: number, socket: Duplex, signal: AbortSignal): Promise<void> {
    const sb = this.ctx.sandboxes.get(podSandboxId);
    if (sb.state !== "ready") throw failedPrecondition(`pod sandbox ${sb.id} is not ready`);
    await forwardPort({ helperPath: await this.helper(), ...(sb.netnsPath ? { netnsPath: sb.netnsPath } : {}), port }, socket, signal);
  }
}

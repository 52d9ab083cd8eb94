// berth's StreamingBackend: exec through the OCI runtime (pty via berth-io for TTYs),
// attach through conmon's attach socket, port-forward into the pod's netns. What it knows
// of containers and pods comes through StreamTargets (backend.ts), never from the lifecycle code.
import { access, constants, mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { attachToConmon } from "../../oci-runtime/io/conmon-attach.ts";
import { forwardPort } from "../../oci-runtime/io/port-forward.ts";
import { runcExec } from "../../oci-runtime/io/runc-exec.ts";
import { attachSocketPath } from "../../oci-runtime/monitor/conmon.ts";
import { internal } from "../../oci-runtime/foundation/errdefs.ts";
import type { StreamingBackend, StreamIO, StreamTargets } from "./backend.ts";
import type { AttachRequest, ExecRequest } from "./tokens.ts";

export class OciStreamingBackend implements StreamingBackend {
  readonly #targets: StreamTargets;
  constructor(targets: StreamTargets) { this.#targets = targets; }

  async #helper(): Promise<string> {
    const path = this.#targets.ioHelper();
    try {
      await access(path, constants.X_OK);
    } catch {
      throw internal(`berth's io helper ${path} is missing; run hack/setup.sh (or hack/build-helpers.sh) to build it`);
    }
    return path;
  }

  async exec(req: ExecRequest, io: StreamIO, signal: AbortSignal): Promise<{ exitCode: number }> {
    const c = await this.#targets.runningContainer(req.containerId);
    let runtimeError = "";
    const tmpDir = join(c.bundle, "exec");
    await mkdir(tmpDir, { recursive: true, mode: 0o700 });
    const res = await runcExec({
      runtimePath: c.runtime.binary,
      root: c.runtime.root,
      containerId: c.id,
      cmd: req.cmd,
      tty: req.tty,
      helperPath: await this.#helper(),
      tmpDir,
      onRuntimeError: (text) => { runtimeError = text; },
    }, io, signal);
    if (runtimeError && res.exitCode !== 0 && /exec failed|executable file not found|no such file/i.test(runtimeError)) {
      throw internal(runtimeError.trim());
    }
    return res;
  }

  async attach(req: AttachRequest, io: StreamIO, signal: AbortSignal): Promise<void> {
    const c = await this.#targets.runningContainer(req.containerId);
    await attachToConmon({
      helperPath: await this.#helper(),
      attachSocketPath: attachSocketPath(c.socketDir, c.id),
      ctlPath: join(c.bundle, "ctl"),
    }, io, signal);
  }

  async portForward(podSandboxId: string, port: number, socket: Duplex, signal: AbortSignal): Promise<void> {
    const pod = this.#targets.readyPod(podSandboxId);
    await forwardPort({ helperPath: await this.#helper(), ...(pod.netnsPath ? { netnsPath: pod.netnsPath } : {}), port }, socket, signal);
  }
}

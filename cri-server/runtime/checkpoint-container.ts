// CheckpointContainer through the OCI runtime and CRIU. Without CRIU on PATH,
// or when `criu check` fails on this kernel, the answer is UNIMPLEMENTED,
// saying why (critest skips its checkpoint specs on UNIMPLEMENTED). Otherwise: `<runtime> checkpoint
// --leave-running` into a temporary directory, then a tar of that directory
// (checkpoint images and the bundle's config.json) at the requested location.
import { execFile, type ExecFileOptions } from "node:child_process";
import { copyFile, mkdir, mkdtemp, rename, rm } from "node:fs/promises";
import { dirname, isAbsolute, join } from "node:path";
import { nodeUtil } from "../../oci-runtime/foundation/builtins.ts";
import type { CheckpointContainerRequestSchema, CheckpointContainerResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import { failedPrecondition, internal, invalidArgument, unimplemented } from "../../oci-runtime/foundation/errdefs.ts";
import { findExecutable } from "../../oci-runtime/foundation/executable.ts";
import type { UnaryImpl } from "../rpc.ts";
import { isRunning } from "../container/state.ts";

const run = (file: string, args: readonly string[], opts: ExecFileOptions) => nodeUtil().promisify(execFile)(file, args, opts);

let criuProbe: Promise<string | undefined> | undefined;

/** Why CRIU cannot be used here, or undefined when it can (probed once per process). */
export function criuUnusable(): Promise<string | undefined> {
  criuProbe ??= (async () => {
    const criu = findExecutable("criu");
    if (!criu) return "CRIU is not installed (criu not found on PATH)";
    try {
      await run(criu, ["check"], { timeout: 30_000 });
      return undefined;
    } catch (err) {
      const text = String((err as { stderr?: string }).stderr || (err as Error).message).trim().split("\n").filter(Boolean);
      return `CRIU is installed at ${criu} but "criu check" fails on this kernel: ${text.at(-1) ?? "unknown error"}`;
    }
  })();
  return criuProbe;
}

export const checkpointContainer: UnaryImpl<typeof CheckpointContainerRequestSchema, typeof CheckpointContainerResponseSchema> = async (ctx, req, call) => {
  const rec = await ctx.containers.refresh(ctx.containers.get(req.containerId).id);
  const why = await criuUnusable();
  if (why) throw unimplemented(`checkpoint of container ${rec.id} needs CRIU: ${why}`);
  if (!req.location) throw invalidArgument("location must not be empty");
  if (!isAbsolute(req.location)) throw invalidArgument(`location ${JSON.stringify(req.location)} must be an absolute path`);
  if (!isRunning(rec.state)) throw failedPrecondition(`container ${rec.id} is not running (state ${rec.state}); cannot checkpoint it`);
  const rt = ctx.containers.runtimeOf(rec);
  const tmp = await mkdtemp(join(dirname(req.location), ".berth-checkpoint-"));
  const timeoutMs = req.timeout > 0n ? Number(req.timeout) * 1000 : 0;
  try {
    const images = join(tmp, "content", "checkpoint");
    await mkdir(images, { recursive: true, mode: 0o700 });
    await run(rt.binary, [...rt.globalArgs(), "checkpoint", "--leave-running", "--image-path", images, "--work-path", join(tmp, "work"), rec.id],
      { timeout: timeoutMs, signal: call.signal, maxBuffer: 4 << 20 })
      .catch((err: { stderr?: string; message: string }) => {
        throw internal(`checkpoint of container ${rec.id} failed: ${(err.stderr || err.message).trim()}`, err);
      });
    await copyFile(join(rec.bundle, "config.json"), join(tmp, "content", "config.json"));
    const partial = join(tmp, "checkpoint.tar");
    await run("tar", ["-cf", partial, "-C", join(tmp, "content"), "."], { signal: call.signal });
    await rename(partial, req.location);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return {};
};

// Finding and running CNI plugin binaries; VERSION negotiation, cached per
// binary (path + mtime) so it costs one extra exec per plugin per daemon.

import { accessSync, constants, statSync } from "node:fs";
import { join } from "node:path";
import { failedPrecondition, internal } from "../../oci-runtime/foundation/errdefs.ts";
import type { CniCommand } from "./cni-invocation.ts";
import { pluginEnv } from "./cni-invocation.ts";
import type { PluginCallContext } from "./cni-error.ts";
import { pluginError } from "./cni-error.ts";
import type { RunOptions, RunResult } from "../../oci-runtime/foundation/run-command.ts";
import { runCommand } from "../../oci-runtime/foundation/run-command.ts";

export type Runner = (file: string, args: string[], opts: RunOptions) => Promise<RunResult>;

/** First executable regular file named `type` in binDirs, or undefined. */
export function findPlugin(binDirs: string[], type: string): string | undefined {
  for (const dir of binDirs) {
    const p = join(dir, type);
    try {
      if (!statSync(p).isFile()) continue;
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      continue;
    }
  }
  return undefined;
}

export interface InvokeInput {
  command: CniCommand;
  plugin: string;
  containerId: string;
  netns: string;
  ifName: string;
  cniArgs: string;
  stdin: string;
  network: string;
  signal?: AbortSignal | undefined;
}

export class PluginExec {
  readonly binDirs: string[];
  readonly timeoutMs: number;
  private readonly run: Runner;
  private readonly versions = new Map<string, { mtimeMs: number; supported: string[] }>();

  constructor(binDirs: string[], timeoutMs: number, run: Runner = runCommand) {
    this.binDirs = binDirs;
    this.timeoutMs = timeoutMs;
    this.run = run;
  }

  resolve(type: string, ctx: Omit<PluginCallContext, "plugin">): string {
    const path = findPlugin(this.binDirs, type);
    if (!path) throw failedPrecondition(`cni plugin ${type} for network "${ctx.network}" not found in ${this.binDirs.join(", ")}`);
    return path;
  }

  /** Checks (once per binary version) that the plugin speaks `cniVersion`. */
  async negotiate(type: string, cniVersion: string, ctx: Omit<PluginCallContext, "plugin" | "command">): Promise<void> {
    const path = this.resolve(type, { ...ctx, command: "VERSION" });
    const mtimeMs = statSync(path).mtimeMs;
    let known = this.versions.get(path);
    if (!known || known.mtimeMs !== mtimeMs) {
      const r = await this.run(path, [], {
        stdin: JSON.stringify({ cniVersion }),
        env: pluginEnv({ command: "VERSION", containerId: "", netns: "", ifName: "", binDirs: this.binDirs, cniArgs: "" }),
        timeoutMs: this.timeoutMs,
      });
      const call = { ...ctx, plugin: type, command: "VERSION" };
      if (r.code !== 0) throw pluginError(call, r, this.timeoutMs);
      let supported: string[];
      try {
        const v = JSON.parse(r.stdout) as { supportedVersions?: unknown };
        supported = Array.isArray(v.supportedVersions) ? v.supportedVersions.filter((x): x is string => typeof x === "string") : [];
      } catch {
        // Plugins older than 0.2.0 have no VERSION command; they speak 0.1.0.
        supported = ["0.1.0"];
      }
      known = { mtimeMs, supported };
      this.versions.set(path, known);
    }
    if (!known.supported.includes(cniVersion)) {
      throw failedPrecondition(`cni plugin ${type} does not support cniVersion ${cniVersion} of network "${ctx.network}" (it supports ${known.supported.join(", ") || "none"})`);
    }
  }

  /** Runs one plugin command; returns its parsed stdout (undefined when empty). */
  async invoke(input: InvokeInput): Promise<unknown> {
    const ctx: PluginCallContext = { plugin: input.plugin, command: input.command, network: input.network, sandboxId: input.containerId };
    const path = this.resolve(input.plugin, ctx);
    const r = await this.run(path, [], {
      stdin: input.stdin,
      env: pluginEnv({ ...input, binDirs: this.binDirs }),
      timeoutMs: this.timeoutMs,
      ...(input.signal ? { signal: input.signal } : {}),
    });
    if (r.code !== 0 || r.timedOut || r.spawnError || r.aborted !== undefined) throw pluginError(ctx, r, this.timeoutMs);
    const out = r.stdout.trim();
    if (!out) return undefined;
    try {
      return JSON.parse(out);
    } catch (err) {
      throw internal(`cni plugin ${input.plugin} printed invalid JSON for ${input.command} of sandbox ${input.containerId}: ${(err as Error).message}`, err);
    }
  }
}

// Small spec options: hostname, cgroups path, read-only rootfs, annotations, sysctls.
import { invalidArgument } from "../foundation/errdefs.ts";
import type { SpecOpt } from "./types.ts";

export const withHostname = (hostname: string): SpecOpt<unknown> => (spec) => {
  if (hostname.length > 64) throw invalidArgument(`hostname "${hostname}" is longer than 64 characters`);
  if (hostname) spec.hostname = hostname;
};

export const withCgroupsPath = (path: string): SpecOpt<unknown> => (spec) => {
  (spec.linux ??= {}).cgroupsPath = path;
};

export const withReadonlyRootfs = (readonly: boolean): SpecOpt<unknown> => (spec) => {
  spec.root = { path: spec.root?.path ?? "rootfs", readonly };
};

export const withRootfs = (path: string): SpecOpt<unknown> => (spec) => {
  spec.root = { ...spec.root, path };
};

export const withAnnotations = (annotations: Record<string, string>): SpecOpt<unknown> => (spec) => {
  spec.annotations = { ...spec.annotations, ...annotations };
};

const IPC_SYSCTLS = /^(?:kernel\.(?:shm[a-z_]*|msg[a-z_]*|sem)|fs\.mqueue\..+)$/;
const NET_SYSCTLS = /^net\..+/;

/** Rejects sysctls that are not namespaced or that would change the host's namespaces (pure). */
export function validateSysctls(sysctls: Record<string, string>, o: { hostNetwork?: boolean; hostIpc?: boolean } = {}): void {
  for (const raw of Object.keys(sysctls)) {
    const name = raw.replaceAll("/", ".");
    if (IPC_SYSCTLS.test(name)) {
      if (o.hostIpc) throw invalidArgument(`sysctl "${raw}" is not allowed with the host ipc namespace`);
    } else if (NET_SYSCTLS.test(name)) {
      if (o.hostNetwork) throw invalidArgument(`sysctl "${raw}" is not allowed with the host network namespace`);
    } else {
      throw invalidArgument(`sysctl "${raw}" is not namespaced and cannot be set in a pod`);
    }
  }
}

export const withSysctls = (sysctls: Record<string, string>, o: { hostNetwork?: boolean; hostIpc?: boolean } = {}): SpecOpt<unknown> => (spec) => {
  if (!Object.keys(sysctls).length) return;
  validateSysctls(sysctls, o);
  const linux = (spec.linux ??= {});
  linux.sysctl = { ...linux.sysctl, ...sysctls };
};

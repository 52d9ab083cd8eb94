// Small spec options: cgroups path and annotations. (Pod sysctls are checked by
// cri-server/network/sysctl.ts and reach the infra spec as plain input; hostname and read-only
// rootfs are set by the builders and the security context.)
import type { SpecOpt } from "./types.ts";

export const withCgroupsPath = (path: string): SpecOpt<unknown> => (spec) => {
  (spec.linux ??= {}).cgroupsPath = path;
};

export const withAnnotations = (annotations: Record<string, string>): SpecOpt<unknown> => (spec) => {
  spec.annotations = { ...spec.annotations, ...annotations };
};

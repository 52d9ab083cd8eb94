// Public API of berth's OCI runtime layer.
export type { OciRuntime, OciState, OciStatus, CreateOptions, ExecOptions, RuntimeFeatures } from "./runtime/oci-runtime.ts";
export { RuncCli, type RuncCliOptions } from "./runtime/runc-cli.ts";
export { RuntimeHandlers, type HandlerConfig } from "./runtime/handlers.ts";
export { runtimeError } from "./runtime/runtime-error.ts";
export { execSync, type ExecSyncOptions, type ExecSyncResult } from "./runtime/exec-sync.ts";

export {
  createContainer, conmonFiles, attachSocketPath, reopenLog, resize, recover, wasOomKilled,
  type ConmonCreateOptions, type ConmonStarted, type ConmonFiles, type Recovered,
} from "./monitor/conmon.ts";
export { conmonCgroupPath, conmonCgroupIsPerContainer, prepareCgroup, joinCgroupCommand, cgroupsOf } from "./monitor/conmon-cgroup.ts";
export { readExitFile, watchExits, waitForExit, type ExitInfo, type ExitWatcher } from "./monitor/exit-file.ts";
export { readPidFile, isAlive, isConmonAlive } from "./monitor/pids.ts";

export { defaultSpec, newSpec, defaultMounts, withDefaultMounts, withDefaultDevices, withDefaultRlimits, DEFAULT_PATH } from "./bundle-spec/default-spec.ts";
export { withProcessArgs, resolveArgs, withEnv, mergeEnv, withCwd, withTerminal, withRlimits, type ArgsInput } from "./bundle-spec/process.ts";
export { withUser, resolveUser, resolveUserInRootfs, ImageUserFiles, type UserFiles, type UserInput, type ResolvedUser } from "./bundle-spec/user.ts";
export { secureJoin, readRootfsFile } from "./bundle-spec/rootfs-files.ts";
export { withPodFiles, withCriMounts, criMounts, putMounts, Propagation, systemMountHost, type PodFiles, type CriMount, type MountHost, type CriMountContext } from "./bundle-spec/mounts.ts";
export { withDevices, criDevices, type CriDevice } from "./bundle-spec/devices.ts";
export { withNamespaces, containerNamespaces, type ContainerNamespaces, type NamespaceMode } from "./bundle-spec/namespaces.ts";
export { withResources, ociResources, withOomScoreAdj, clampOomScoreAdj, ownOomScoreAdj, type CriResources, type ResourceContext } from "./bundle-spec/resources.ts";
export { withCgroupsPath, withAnnotations } from "./bundle-spec/misc.ts";
export { writeBundle } from "./bundle-spec/bundle.ts";
export { compose, type Spec, type SpecOpt } from "./bundle-spec/types.ts";

export { detectCgroupLayout, cgroupLayout, type CgroupLayout, type CgroupMode } from "./cgroups/mode.ts";
export { containerCgroupsPath, cgroupParentPath, cgroupPathUnder, DEFAULT_CGROUP_PARENT, cgroupDirs, removeCgroup, cgroupPids } from "./cgroups/paths.ts";
export { stateLayout, type StateLayout } from "./layout.ts";
export {
  buildContainerSpec, buildInfraSpec, INFRA_OOM_SCORE_ADJ,
  type ContainerSpecInput, type InfraSpecInput, type PodSpecInput, type HostSpecInput, type ImageConfigInput,
} from "./bundle-spec/container-spec.ts";

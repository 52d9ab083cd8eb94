// UpdatePodSandboxResources. The CRI calls it after kubelet has already resized
// the pod-level cgroup (the pod's cgroup parent, which kubelet owns); it is
// best effort and tells the runtime the pod's new overhead and resources.
// berth keeps no pod cgroup of its own, so it records them beside the pod
// (<podDir>/resources.json) and succeeds.
import { toJson } from "@bufbuild/protobuf";
import { join } from "node:path";
import { LinuxContainerResourcesSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { UpdatePodSandboxResourcesRequestSchema, UpdatePodSandboxResourcesResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { UnaryImpl } from "../rpc.ts";
import { writeFileAtomic } from "../../oci-runtime/foundation/atomic-file.ts";

export const POD_RESOURCES_FILE = "resources.json";

export const updatePodSandboxResources: UnaryImpl<typeof UpdatePodSandboxResourcesRequestSchema, typeof UpdatePodSandboxResourcesResponseSchema> = async (ctx, req) => {
  const sb = ctx.sandboxes.get(req.podSandboxId);
  const doc = {
    overhead: req.overhead ? toJson(LinuxContainerResourcesSchema, req.overhead) : null,
    resources: req.resources ? toJson(LinuxContainerResourcesSchema, req.resources) : null,
  };
  await writeFileAtomic(join(sb.podDir, POD_RESOURCES_FILE), JSON.stringify(doc) + "\n");
  ctx.log.info("pod sandbox resources recorded", { sandbox: sb.id });
  return {};
};

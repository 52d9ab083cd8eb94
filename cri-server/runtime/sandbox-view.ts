// SandboxRecord -> CRI PodSandboxStatus (PodSandboxStatus RPC and container events).
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { PodSandboxState, PodSandboxStatusSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { SandboxRecord } from "../sandbox/sandbox-record.ts";

export function toPodSandboxStatus(rec: SandboxRecord, state: PodSandboxState): MessageInitShape<typeof PodSandboxStatusSchema> {
  const [primary, ...more] = rec.ips;
  const ns = rec.namespaces;
  return {
    id: rec.id,
    metadata: rec.metadata,
    state,
    createdAt: BigInt(rec.createdAt),
    network: { ip: primary ?? "", additionalIps: more.map((ip) => ({ ip })) },
    linux: { namespaces: { options: { network: ns.network, pid: ns.pid, ipc: ns.ipc, targetId: ns.targetId } } },
    labels: rec.labels,
    annotations: rec.annotations,
    runtimeHandler: rec.runtimeHandler,
  };
}

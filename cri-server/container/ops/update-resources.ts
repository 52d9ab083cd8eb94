// UpdateContainerResources: applies limits through the OCI runtime, records them, and keeps the
// bundle's spec in step so a status or recovery sees the new limits.
import { join } from "node:path";
import { LinuxContainerResourcesSchema, type LinuxContainerResources } from "../../../proto/gen/runtime/v1/api_pb.js";
import { ociResources } from "../../../oci-runtime/index.ts";
import { failedPrecondition } from "../../../oci-runtime/foundation/errdefs.ts";
import { storeMessage } from "../../stores/proto-record.ts";
import { criResources } from "../spec-input.ts";
import type { ContainerDeps } from "../deps.ts";
import { canUpdateResources } from "../state.ts";
import { refreshContainer } from "./exit.ts";

export async function updateContainerResources(d: ContainerDeps, id: string, res: LinuxContainerResources | undefined): Promise<void> {
  const rec = await refreshContainer(d, d.store.get(id, "container_id").id);
  if (!res) return;
  if (!canUpdateResources(rec.state)) throw failedPrecondition(`container ${rec.id} has exited; cannot update its resources`);
  await d.store.withLock(rec.id, async () => {
    const oci = ociResources(criResources(res), { cgroupV2: await d.cgroups.isV2() });
    await d.runtimes.get(rec.runtimeHandler).update(rec.id, oci);
    await d.store.update(rec.id, (r) => { r.resources = storeMessage(LinuxContainerResourcesSchema, res); });
    try {
      const specPath = join(rec.bundle, "config.json");
      const spec = JSON.parse(await d.os.readFile(specPath));
      spec.linux = { ...spec.linux, resources: { ...spec.linux?.resources, ...oci } };
      await d.os.writeBundle(rec.bundle, spec);
    } catch (err) {
      d.log.warn("cannot record updated resources in the bundle", { container: rec.id, error: err });
    }
  });
}

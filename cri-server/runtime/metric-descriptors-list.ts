import type { ListMetricDescriptorsRequestSchema, ListMetricDescriptorsResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { UnaryImpl } from "../rpc.ts";
import { metricDescriptors } from "../stats/index.ts";

/** ListMetricDescriptors: the cAdvisor-compatible metrics ListPodSandboxMetrics reports. */
export const listMetricDescriptors: UnaryImpl<typeof ListMetricDescriptorsRequestSchema, typeof ListMetricDescriptorsResponseSchema> = async () =>
  ({ descriptors: metricDescriptors() });

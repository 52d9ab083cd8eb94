import type { GetEventsRequestSchema, ContainerEventResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { ServerStreamImpl } from "../rpc.ts";

/** GetContainerEvents: every subscriber gets every container event, in order per container, until it cancels. */
export const getContainerEvents: ServerStreamImpl<typeof GetEventsRequestSchema, typeof ContainerEventResponseSchema> = async (ctx, _req, call) => {
  const sub = ctx.events.subscribe({ signal: call.signal });
  try {
    for await (const ev of sub) {
      if (call.signal.aborted) break;
      await call.write(ev as never);
    }
  } catch (err) {
    if (!call.signal.aborted) throw err;
  } finally {
    sub.close();
  }
};

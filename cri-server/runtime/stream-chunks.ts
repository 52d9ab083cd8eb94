// The Stream* RPCs answer what their List* twins answer, split over several messages
// so a node with many objects never hits the gRPC message size limit.

/** Objects per streamed message. */
export const CHUNK = 100;

export async function writeChunks<T>(items: T[], write: (chunk: T[]) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += CHUNK) await write(items.slice(i, i + CHUNK));
}

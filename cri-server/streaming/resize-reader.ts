// Terminal-size events from a byte stream of JSON objects
// ({"Width":80,"Height":24}), as Kubernetes clients write them (one JSON
// encoding per event, usually newline-terminated).

import type { Readable } from "node:stream";
import type { TerminalSize } from "./backend.ts";

/** Splits complete top-level JSON objects off `buf`; returns them and the unconsumed rest. */
export function splitJsonObjects(buf: string): { objects: string[]; rest: string } {
  const objects: string[] = [];
  let depth = 0, start = -1, inString = false, escaped = false, consumed = 0;
  for (let i = 0; i < buf.length; i++) {
    const ch = buf[i];
    if (inString) {
      if (escaped) escaped = false;
      else if (ch === "\\") escaped = true;
      else if (ch === "\"") inString = false;
      continue;
    }
    if (ch === "\"") inString = true;
    else if (ch === "{") { if (depth === 0) start = i; depth++; }
    else if (ch === "}" && depth > 0) {
      depth--;
      if (depth === 0) { objects.push(buf.slice(start, i + 1)); consumed = i + 1; }
    } else if (depth === 0) consumed = i + 1;
  }
  return { objects, rest: buf.slice(consumed) };
}

/** Parses one size event; undefined when it is not a valid size. */
export function parseTerminalSize(json: string): TerminalSize | undefined {
  try {
    const v = JSON.parse(json) as { Width?: unknown; Height?: unknown };
    const w = Number(v.Width), h = Number(v.Height);
    if (!Number.isInteger(w) || !Number.isInteger(h) || w < 0 || h < 0 || w > 0xffff || h > 0xffff) return undefined;
    return { width: w, height: h };
  } catch {
    return undefined;
  }
}

/** Yields the size events read from `src`; invalid ones are skipped. */
export async function* readResizeEvents(src: Readable): AsyncGenerator<TerminalSize> {
  let buf = "";
  for await (const chunk of src) {
    buf += (chunk as Buffer).toString("utf8");
    if (buf.length > 64 * 1024) buf = buf.slice(-4096); // garbage without objects
    const { objects, rest } = splitJsonObjects(buf);
    buf = rest;
    for (const o of objects) {
      const size = parseTerminalSize(o);
      if (size) yield size;
    }
  }
}

/**
 * Like readResizeEvents, but `src` is always drained: when nobody iterates,
 * only the latest `keep` sizes are kept, so an unread resize stream can never
 * stall the session it belongs to.
 */
export function resizeQueue(src: Readable, keep = 8): AsyncIterable<TerminalSize> {
  const queue: TerminalSize[] = [];
  let wake: (() => void) | undefined;
  let done = false;
  let buf = "";
  const notify = () => { const w = wake; wake = undefined; w?.(); };
  src.on("data", (chunk: Buffer) => {
    buf += chunk.toString("utf8");
    if (buf.length > 64 * 1024) buf = buf.slice(-4096);
    const { objects, rest } = splitJsonObjects(buf);
    buf = rest;
    for (const o of objects) {
      const size = parseTerminalSize(o);
      if (!size) continue;
      queue.push(size);
      if (queue.length > keep) queue.shift();
    }
    notify();
  });
  const finish = () => { done = true; notify(); };
  src.once("end", finish);
  src.once("close", finish);
  src.once("error", finish);
  return {
    async *[Symbol.asyncIterator]() {
      for (;;) {
        const next = queue.shift();
        if (next) { yield next; continue; }
        if (done) return;
        await new Promise<void>((r) => { wake = r; });
      }
    },
  };
}

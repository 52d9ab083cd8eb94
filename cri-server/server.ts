// The gRPC server: every RPC of RuntimeService and ImageService on a unix socket, over berth's
// own HTTP/2 (transport/h2.ts), (de)serialising with protobuf-es. Methods without an
// implementation answer UNIMPLEMENTED naming the RPC.
//
// berth speaks the part of gRPC that CRI uses (grpc/grpc PROTOCOL-HTTP2.md): unary and
// server-streaming calls, `grpc-timeout` deadlines, cancellation by RST_STREAM, status and
// message in trailers (or trailers only), uncompressed messages. Every bound is berth's own:
// - a request message of at most 16 MiB (RESOURCE_EXHAUSTED), read as it comes, never more
//   than one message per call;
// - at most 64 MiB of request bytes held across all calls at once (RESOURCE_EXHAUSTED);
// - at most 1000 concurrent streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS; the rest
//   are refused with REFUSED_STREAM, which clients retry);
// - a response of at most 16 MiB (RESOURCE_EXHAUSTED naming the size);
// - compressed requests are refused (UNIMPLEMENTED, grpc-accept-encoding: identity).
// The HTTP/2 layer's own bounds (frames, header blocks, windows) are in transport/h2.ts.
import { chmod } from "node:fs/promises";
import { createServer, type Socket } from "node:net";
import { create, fromBinary, toBinary, type DescMessage, type DescService } from "@bufbuild/protobuf";
import { BerthError, Code } from "../oci-runtime/foundation/errdefs.ts";
import { clip, instrument, newRequestId, type RpcObserver } from "./instrument.ts";
import type { Context } from "./context.ts";
import { Encoded, type Call, type StreamCall } from "./rpc.ts";
import { GRPC_RESPONSE_HEADERS, H2_ERROR, H2Connection, headerBlock, MAX_QUEUED_RESPONSE_BYTES, SEND_STALL_MS, type H2Shared, type H2Stream } from "./transport/h2.ts";
import { encodeStatusMessage, frameMessage, parseTimeout, PREFIX, RequestReader, WireError } from "./transport/grpc-wire.ts";

type AnyImpl = (ctx: Context, req: any, call: any) => Promise<any>;

export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
export const MAX_HELD_REQUEST_BYTES = 64 * 1024 * 1024;
export const MAX_CONCURRENT_STREAMS = 1000;
/**
 * A request's message must arrive within this long of its headers: a client that sends part of
 * one and stops would otherwise hold its bytes (of the 64 MiB shared by all calls) for good.
 */
export const REQUEST_ARRIVAL_MS = 60_000;
/** Longest deadline that gets a timer (setTimeout's limit); a later one is kept but never fires. */
const MAX_TIMER_MS = 0x7fffffff;

interface Method {
  readonly path: string;
  readonly input: DescMessage;
  readonly output: DescMessage;
  readonly streaming: boolean;
  readonly impl: AnyImpl | undefined;
  readonly name: string;
}

/** Every method of the services by its HTTP/2 path. */
export function methodTable(services: { service: DescService; impls: Record<string, AnyImpl | undefined> }[]): Map<string, Method> {
  const table = new Map<string, Method>();
  for (const { service, impls } of services) {
    for (const m of service.methods) {
      const path = `/${service.typeName}/${m.name}`;
      table.set(path, { path, input: m.input, output: m.output, streaming: m.methodKind === "server_streaming", impl: impls[m.localName], name: m.name });
    }
  }
  return table;
}

/** A message in its gRPC frame: an Encoded one as it is when its encoder left room for the prefix. */
function encodeFramed(desc: DescMessage, msg: unknown): Buffer {
  if (msg instanceof Encoded) return msg.framed ?? frameMessage(msg.bytes);
  return frameMessage(toBinary(desc, create(desc, msg as never)));
}

const deadlinePassed = () => new BerthError(Code.DEADLINE_EXCEEDED, "the client's deadline passed");

const slowReaders = (limit: number) => new BerthError(Code.RESOURCE_EXHAUSTED, `more than ${limit} bytes of responses wait for clients that do not read them; retry`);

const tooLarge = (what: string, bytes: number) =>
  new BerthError(Code.RESOURCE_EXHAUSTED, `${what} is ${bytes} bytes; the limit is ${MAX_MESSAGE_BYTES}`);

/** Shared by every connection of one server: request bytes held by calls still being received, and the limits. */
interface CallState { held: number; limits: ServerLimits; responses: H2Shared }

/** Bounds a test may lower; berthd uses the defaults. */
export interface ServerLimits {
  /** REQUEST_ARRIVAL_MS. */
  requestArrivalMs: number;
  /** Response bytes queued for clients that do not read (MAX_QUEUED_RESPONSE_BYTES). */
  queuedResponseBytes: number;
  /** A reply that makes no progress this long is reset (SEND_STALL_MS). */
  sendStallMs: number;
}
const DEFAULT_LIMITS: ServerLimits = { requestArrivalMs: REQUEST_ARRIVAL_MS, queuedResponseBytes: MAX_QUEUED_RESPONSE_BYTES, sendStallMs: SEND_STALL_MS };

/** A call's status as trailer fields; the message cut to 2 KiB and percent-encoded. */
function statusFields(code: number, message: string): [string, string][] {
  return message ? [["grpc-status", String(code)], ["grpc-message", encodeStatusMessage(clip(message))]] : [["grpc-status", String(code)]];
}
const OK_TRAILERS = headerBlock(statusFields(Code.OK, ""));
const trailerBlock = (code: number, message: string) => code === Code.OK && !message ? OK_TRAILERS : headerBlock(statusFields(code, message));

/** Answers a call that never reached a handler: one HEADERS frame with the status (trailers only). */
function refuse(stream: H2Stream, code: number, message: string, extra: [string, string][] = []): void {
  if (stream.closed || stream.headersSent) return;
  // what the client still sends is dropped: the layer resets the stream (NO_ERROR) if it has not ended
  stream.respond(Buffer.concat([GRPC_RESPONSE_HEADERS, headerBlock([...statusFields(code, message), ...extra])]), true);
}

const GRPC_CONTENT_TYPE = /^application\/grpc(\+proto)?(;|$)/;

function onStream(
  stream: H2Stream,
  headers: Record<string, string>,
  methods: Map<string, Method>,
  state: CallState,
  ctx: Context,
  observe?: RpcObserver,
): void {
  const contentType = headers["content-type"];
  if (headers[":method"] !== "POST" || contentType === undefined || !GRPC_CONTENT_TYPE.test(contentType)) {
    // not a gRPC call at all: an HTTP answer, as gRPC servers give
    stream.respond(headerBlock([[":status", "415"], ["content-type", "text/plain"]]));
    stream.release();
    stream.end(Buffer.from(`berth serves gRPC only: POST with content-type application/grpc (got ${String(headers[":method"]).slice(0, 16)} with ${JSON.stringify(String(contentType ?? "")).slice(0, 80)})\n`));
    return;
  }
  const path = headers[":path"] ?? "";
  const method = methods.get(path);
  if (!method) { stream.release(); refuse(stream, Code.UNIMPLEMENTED, `unknown method ${JSON.stringify(path.slice(0, 256))}: berth serves runtime.v1 RuntimeService and ImageService`); return; }
  const timeoutHeader = headers["grpc-timeout"];
  let timeoutMs: number | undefined;
  if (timeoutHeader !== undefined) {
    timeoutMs = parseTimeout(timeoutHeader);
    if (timeoutMs === undefined) { stream.release(); refuse(stream, Code.INVALID_ARGUMENT, `grpc-timeout ${JSON.stringify(timeoutHeader.slice(0, 64))} is not 1-8 digits and a unit (H, M, S, m, u, n)`); return; }
  }

  const id = newRequestId();
  const ac = new AbortController();
  const deadline = timeoutMs === undefined ? undefined : new Date(Date.now() + timeoutMs);
  let answered = false;
  /** The handler started: the call's slot is released when it finishes, not before. */
  let running = false;
  let held = 0;
  let timer: NodeJS.Timeout | undefined;
  let arrival: NodeJS.Timeout | undefined;
  /** The call is over: its request bytes leave the shared count and its slot frees. */
  const done = () => { state.held -= held; held = 0; stream.release(); };
  const settle = () => {
    if (answered) return false;
    answered = true;
    if (timer) clearTimeout(timer);
    clearTimeout(arrival);
    return true;
  };
  /** The call's status, after `last` (a unary call's one message); the first status counts. */
  const finish = (code: number, message: string, last?: Buffer) => {
    if (!settle() || stream.closed) return;
    if (!stream.headersSent) { refuse(stream, code, message); return; }
    stream.end(last, trailerBlock(code, message));
  };
  /** Streaming writes waiting for the client's window or the socket. */
  const waiting: (() => void)[] = [];
  const wakeWriters = () => { for (const w of waiting.splice(0)) w(); };
  stream.onDrain = wakeWriters;
  stream.onClose = () => {
    wakeWriters();
    if (!running) done(); // no handler runs: nothing holds the request any more
    if (answered) return;
    // A client resets the stream when its own deadline passes, a little before the timer below
    // (the deadline travelled as a duration): that is the deadline, not a cancel.
    ac.abort(deadline && Date.now() >= deadline.getTime() - 100
      ? deadlinePassed()
      : new BerthError(Code.CANCELLED, "the client cancelled the call"));
    settle();
  };
  if (timeoutMs !== undefined && timeoutMs <= MAX_TIMER_MS) {
    timer = setTimeout(() => {
      const err = deadlinePassed();
      ac.abort(err);
      finish(err.code, err.message);
    }, timeoutMs);
    timer.unref();
  }

  arrival = setTimeout(() => {
    const err = new BerthError(Code.DEADLINE_EXCEEDED, `the request's message did not arrive within ${state.limits.requestArrivalMs / 1000} s of its headers`);
    ac.abort(err);
    finish(err.code, err.message);
  }, state.limits.requestArrivalMs);
  arrival.unref();

  const reader = new RequestReader(MAX_MESSAGE_BYTES);
  stream.onData = (chunk: Buffer) => {
    if (answered) return;
    try {
      const before = reader.held;
      reader.push(chunk);
      const grew = reader.held - before;
      held += grew;
      state.held += grew;
      if (state.held > MAX_HELD_REQUEST_BYTES) throw new BerthError(Code.RESOURCE_EXHAUSTED, `berth holds more than ${MAX_HELD_REQUEST_BYTES} bytes of requests being received; retry`);
    } catch (err) {
      if (err instanceof WireError) {
        ac.abort(err);
        if (err.kind === "compressed") {
          if (settle()) refuse(stream, Code.UNIMPLEMENTED, err.message, [["grpc-accept-encoding", "identity"]]);
          return;
        }
        finish(err.kind === "too-large" ? Code.RESOURCE_EXHAUSTED : Code.INVALID_ARGUMENT, err.message);
        return;
      }
      const be = BerthError.from(err);
      ac.abort(be);
      finish(be.code, be.message);
    }
  };
  stream.onEnd = () => {
    clearTimeout(arrival);
    if (answered) return;
    let body: Buffer;
    try {
      body = reader.finish();
    } catch (err) {
      finish(Code.INVALID_ARGUMENT, (err as Error).message);
      return;
    }
    // The request stays counted until the handler ends: it holds the bytes that long.
    const call: Call = { id, method: method.path, signal: ac.signal, ...(deadline ? { deadline } : {}) };
    const run = async () => {
      let req: unknown;
      try {
        req = fromBinary(method.input, body);
      } catch (err) {
        throw new BerthError(Code.INVALID_ARGUMENT, `malformed ${method.input.typeName} message: ${(err as Error).message}`);
      }
      if (!method.impl) throw new BerthError(Code.UNIMPLEMENTED, `${method.name} is not implemented by berth yet`);
      if (!method.streaming) {
        const out = encodeFramed(method.output, await method.impl(ctx, req, call));
        if (out.length - PREFIX > MAX_MESSAGE_BYTES) throw tooLarge(`the ${method.output.typeName} response`, out.length - PREFIX);
        return out;
      }
      const sc: StreamCall<DescMessage> = {
        ...call,
        write: (msg) => new Promise<void>((resolve, reject) => {
          if (answered || stream.closed) { resolve(); return; }
          const out = encodeFramed(method.output, msg);
          if (out.length - PREFIX > MAX_MESSAGE_BYTES) { reject(tooLarge(`a ${method.output.typeName} message`, out.length - PREFIX)); return; }
          if (!stream.canQueue(out.length)) { reject(slowReaders(state.responses.limit)); return; }
          stream.respond(GRPC_RESPONSE_HEADERS);
          if (stream.write(out)) { resolve(); return; }
          // the client's window or the socket is full: on when it drains, or when the stream goes
          waiting.push(resolve);
        }),
      };
      await method.impl(ctx, req, sc);
      return undefined;
    };
    running = true;
    void instrument(ctx.log, method.path, id, run, observe).then((out) => {
      done();
      if (answered || stream.closed) { settle(); return; }
      if (out.error) { finish(out.error.code, out.error.message); return; }
      if (out.value && !stream.canQueue(out.value.length)) { const e = slowReaders(state.responses.limit); finish(e.code, e.message); return; }
      if (out.value) stream.respond(GRPC_RESPONSE_HEADERS);
      finish(Code.OK, "", out.value);
    }).catch((err: unknown) => { // the answer itself failed (a logging or metrics hook threw): the call ends here
      done();
      settle();
      ctx.log.error("rpc answer failed", { id, method: method.name, error: (err as Error).message });
      stream.reset(H2_ERROR.INTERNAL_ERROR);
    });
  };
}

export interface CriServer {
  /** Stops accepting calls, lets in-flight calls finish (up to graceMs), then closes. */
  shutdown(graceMs?: number): Promise<void>;
}

export async function listen(
  socketPath: string,
  services: { service: DescService; impls: Record<string, AnyImpl | undefined> }[],
  ctx: Context,
  observe?: RpcObserver,
  limits: Partial<ServerLimits> = {},
): Promise<CriServer> {
  const methods = methodTable(services);
  const all = { ...DEFAULT_LIMITS, ...limits };
  const state: CallState = { held: 0, limits: all, responses: { queued: 0, limit: all.queuedResponseBytes } };
  const connections = new Set<H2Connection>();
  const sockets = new Set<Socket>();
  const listener = createServer((socket) => {
    sockets.add(socket);
    const conn = new H2Connection(socket, {
      stream: (st, headers) => onStream(st, headers, methods, state, ctx, observe),
      error: (code, message, fault) => {
        if (fault === "berth") ctx.log.error("CRI connection ended by an internal error", { code, error: message.slice(0, 256) });
        else ctx.log.debug("CRI connection ended by its client's error", { code, error: message.slice(0, 256) });
      },
    }, { maxConcurrentStreams: MAX_CONCURRENT_STREAMS, shared: state.responses, sendStallMs: state.limits.sendStallMs });
    connections.add(conn);
    socket.once("close", () => { sockets.delete(socket); connections.delete(conn); });
  });
  await new Promise<void>((resolve, reject) => {
    listener.once("error", reject);
    listener.listen(socketPath, () => { listener.off("error", reject); resolve(); });
  });
  listener.on("error", (err) => ctx.log.error("CRI socket error", { error: err.message }));
  await chmod(socketPath, 0o660);
  return {
    shutdown: (graceMs = 10_000) => new Promise<void>((resolve) => {
      listener.close();
      // GOAWAY: no new streams; a connection ends once its open streams have finished
      const closed = [...connections].map((c) => c.goAway());
      const end = () => {
        clearTimeout(force);
        for (const c of connections) c.destroy();
        for (const s of sockets) s.destroy();
        resolve();
      };
      const force = setTimeout(end, graceMs);
      force.unref();
      void Promise.all(closed).then(end);
    }),
  };
}

// The gRPC server: registers every RPC of RuntimeService and ImageService on a
// unix socket, (de)serialising with protobuf-es. Methods without an
// implementation answer UNIMPLEMENTED naming the RPC.
import { chmod } from "node:fs/promises";
import { createServer, type Socket } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary, type DescMessage, type DescService } from "@bufbuild/protobuf";
import { BerthError, Code, invalidArgument, unimplemented } from "../oci-runtime/foundation/errdefs.ts";
import { instrument, newRequestId, type RpcObserver } from "./instrument.ts";
import type { Context } from "./context.ts";
import { Encoded, type Call, type StreamCall } from "./rpc.ts";
import { FrontConnection } from "./transport/h2-front.ts";

type AnyImpl = (ctx: Context, req: any, call: any) => Promise<any>;

class BadRequest {
  readonly error: unknown;
  constructor(error: unknown) { this.error = error; }
}

function serializer(desc: DescMessage) {
  return (msg: unknown) => msg instanceof Encoded
    ? Buffer.from(msg.bytes.buffer, msg.bytes.byteOffset, msg.bytes.byteLength)
    : Buffer.from(toBinary(desc, create(desc, msg as never)));
}

function deserializer(desc: DescMessage) {
  return (buf: Buffer) => {
    try {
      return fromBinary(desc, buf);
    } catch (err) {
      return new BadRequest(err);
    }
  };
}

function deadlineOf(call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>): Date | undefined {
  const d = call.getDeadline();
  if (d instanceof Date) return d;
  if (typeof d === "number" && Number.isFinite(d)) return new Date(d);
  return undefined;
}

/**
 * The call's AbortSignal, aborted when the client cancels or its deadline passes; `done()` clears the
 * deadline timer once the call has answered (kubelet's deadlines are minutes long: each finished
 * call's timer kept its controller, and its listeners, alive that long).
 */
function makeSignal(call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>, deadline?: Date): { signal: AbortSignal; done: () => void } {
  const ac = new AbortController();
  // grpc-js emits "cancelled" when every call's stream closes, answered or not: after the answer
  // there is nothing to abort (an error built there cost a stack trace per call).
  let answered = false;
  // grpc-js reports a passed deadline as "cancelled" too, sometimes before the timer below fires.
  call.on("cancelled", () => {
    if (answered) return;
    ac.abort(deadline && Date.now() >= deadline.getTime() - 100
      ? new BerthError(Code.DEADLINE_EXCEEDED, "the client's deadline passed")
      : new BerthError(Code.CANCELLED, "the client cancelled the call"));
  });
  if (deadline) {
    const ms = deadline.getTime() - Date.now();
    const t = setTimeout(() => ac.abort(new BerthError(Code.DEADLINE_EXCEEDED, "the client's deadline passed")), Math.max(0, ms));
    t.unref();
    return { signal: ac.signal, done: () => { answered = true; clearTimeout(t); } };
  }
  return { signal: ac.signal, done: () => { answered = true; } };
}

export function serviceDefinition(
  service: DescService,
  impls: Record<string, AnyImpl | undefined>,
  ctx: Context,
  observe?: RpcObserver,
): { definition: grpc.ServiceDefinition; handlers: grpc.UntypedServiceImplementation } {
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const m of service.methods) {
    const path = `/${service.typeName}/${m.name}`;
    const impl = impls[m.localName];
    const streaming = m.methodKind === "server_streaming";
    definition[m.localName] = {
      path,
      requestStream: false,
      responseStream: streaming,
      requestSerialize: serializer(m.input),
      requestDeserialize: deserializer(m.input),
      responseSerialize: serializer(m.output),
      responseDeserialize: deserializer(m.output),
      originalName: m.name,
    };
    const run = async (req: unknown, call: Call | StreamCall<DescMessage>) => {
      if (req instanceof BadRequest) throw invalidArgument(`malformed ${m.input.typeName} message: ${(req.error as Error).message}`);
      if (!impl) throw unimplemented(`${m.name} is not implemented by berth yet`);
      return impl(ctx, req, call);
    };
    if (!streaming) {
      handlers[m.localName] = (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        const id = newRequestId();
        const deadline = deadlineOf(call);
        const { signal, done } = makeSignal(call, deadline);
        const c: Call = { id, method: path, signal, ...(deadline ? { deadline } : {}) };
        void instrument(ctx.log, path, id, () => run(call.request, c), observe).then((out) => {
          done();
          if (out.error) callback({ code: out.error.code, details: out.error.message } as grpc.ServiceError, null);
          else callback(null, out.value ?? {});
        });
      };
    } else {
      handlers[m.localName] = (call: grpc.ServerWritableStream<unknown, unknown>) => {
        const id = newRequestId();
        const deadline = deadlineOf(call);
        const { signal, done } = makeSignal(call, deadline);
        const c: StreamCall<DescMessage> = {
          id, method: path, signal, ...(deadline ? { deadline } : {}),
          write: (msg) => new Promise<void>((resolve) => {
            if (call.cancelled || call.destroyed) return resolve();
            if (call.write(msg)) resolve(); else call.once("drain", () => resolve());
          }),
        };
        void instrument(ctx.log, path, id, () => run(call.request, c), observe).then((out) => {
          done();
          if (call.cancelled) return;
          if (out.error) call.emit("error", { code: out.error.code, details: out.error.message } as grpc.ServiceError);
          else call.end();
        });
      };
    }
  }
  return { definition, handlers };
}

export interface CriServer {
  readonly server: grpc.Server;
  /** Stops accepting calls, lets in-flight calls finish (up to graceMs), then closes. */
  shutdown(graceMs?: number): Promise<void>;
}

export async function listen(
  socketPath: string,
  services: { service: DescService; impls: Record<string, AnyImpl | undefined> }[],
  ctx: Context,
  observe?: RpcObserver,
): Promise<CriServer> {
  const server = new grpc.Server({
    "grpc.max_receive_message_length": 16 * 1024 * 1024,
    "grpc.max_send_message_length": 16 * 1024 * 1024,
  });
  for (const s of services) {
    const { definition, handlers } = serviceDefinition(s.service, s.impls, ctx, observe);
    server.addService(definition, handlers);
  }
  // berth owns the listening socket and hands each connection to grpc-js
  // through the front layer, which lets grpc-go < 1.58 clients in (their
  // :authority is the socket path, which nghttp2 refuses); see transport/h2-front.ts.
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const sockets = new Set<Socket>();
  const listener = createServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => { /* the session sees it through the front connection */ });
    const conn = new FrontConnection(socket);
    conn.frames.onRewrite = (from) => ctx.log.debug("client :authority rewritten for nghttp2", { from: from.slice(0, 256), to: "localhost" });
    injector.injectConnection(conn);
  });
  await new Promise<void>((resolve, reject) => {
    listener.once("error", reject);
    listener.listen(socketPath, () => { listener.off("error", reject); resolve(); });
  });
  listener.on("error", (err) => ctx.log.error("CRI socket error", { error: err.message }));
  await chmod(socketPath, 0o660);
  return {
    server,
    shutdown: (graceMs = 10_000) => new Promise<void>((resolve) => {
      listener.close();
      const force = setTimeout(() => {
        server.forceShutdown();
        for (const s of sockets) s.destroy();
        resolve();
      }, graceMs);
      force.unref();
      server.tryShutdown(() => { clearTimeout(force); for (const s of sockets) s.destroy(); resolve(); });
    }),
  };
}

// A typed CRI client over a unix socket, built from the same generated code as the server.
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary, type DescMessage, type DescService, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import { ImageService, RuntimeService } from "../../proto/gen/runtime/v1/api_pb.js";

type MethodsOf<S> = S extends GenService<infer R extends GenServiceMethods> ? R : never;
export interface CallOptions { timeoutMs?: number }

type PromiseClient<S> = {
  [K in keyof MethodsOf<S>]: MethodsOf<S>[K] extends { methodKind: "unary"; input: infer I extends DescMessage; output: infer O extends DescMessage }
    ? (req?: MessageInitShape<I>, opts?: CallOptions) => Promise<MessageShape<O>>
    : MethodsOf<S>[K] extends { methodKind: "server_streaming"; input: infer I extends DescMessage; output: infer O extends DescMessage }
      ? (req?: MessageInitShape<I>, opts?: CallOptions) => { messages: AsyncIterable<MessageShape<O>>; cancel(): void }
      : never;
};

export type RuntimeClient = PromiseClient<typeof RuntimeService>;
export type ImageClient = PromiseClient<typeof ImageService>;

function build<S extends DescService>(service: S, channel: grpc.Client): PromiseClient<S> {
  const out: Record<string, unknown> = {};
  for (const m of service.methods) {
    const path = `/${service.typeName}/${m.name}`;
    const ser = (msg: unknown) => Buffer.from(toBinary(m.input, create(m.input, msg as never)));
    const de = (buf: Buffer) => fromBinary(m.output, buf);
    const deadline = (opts?: CallOptions) => ({ deadline: Date.now() + (opts?.timeoutMs ?? 120_000) });
    if (m.methodKind === "unary") {
      out[m.localName] = (req: unknown = {}, opts?: CallOptions) => new Promise((resolve, reject) => {
        channel.makeUnaryRequest(path, ser, de, req, new grpc.Metadata(), deadline(opts), (err, res) => (err ? reject(err) : resolve(res)));
      });
    } else if (m.methodKind === "server_streaming") {
      out[m.localName] = (req: unknown = {}, opts?: CallOptions) => {
        const call = channel.makeServerStreamRequest(path, ser, de, req, new grpc.Metadata(), opts?.timeoutMs ? deadline(opts) : {});
        return { messages: call as AsyncIterable<unknown>, cancel: () => call.cancel() };
      };
    }
  }
  return out as PromiseClient<S>;
}

export interface CriClient {
  runtime: RuntimeClient;
  image: ImageClient;
  close(): void;
}

export function connect(socketPath: string): CriClient {
  const channel = new grpc.Client(`unix://${socketPath}`, grpc.credentials.createInsecure(), {
    "grpc.max_receive_message_length": 64 * 1024 * 1024,
  });
  return { runtime: build(RuntimeService, channel), image: build(ImageService, channel), close: () => channel.close() };
}

/** The gRPC status code of a rejected call (or undefined). */
export const codeOf = (err: unknown): number | undefined => (err as { code?: number })?.code;
export { grpc };

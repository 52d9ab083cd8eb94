// Types shared by the RPC table, the wrapper and every handler module.
import type { DescMessage, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import type { ImageService as ImageServiceDesc, RuntimeService as RuntimeServiceDesc } from "../proto/gen/runtime/v1/api_pb.js";
import type { Context } from "./context.ts";
import { PREFIX, writePrefix } from "./transport/grpc-wire.ts";

/** Per-call information handed to handlers. */
export interface Call {
  /** Request id used in logs and spans. */
  readonly id: string;
  /** Fully qualified method, e.g. "/runtime.v1.RuntimeService/Version". */
  readonly method: string;
  /** Aborted when the client cancels or its deadline passes. */
  readonly signal: AbortSignal;
  /** The client's deadline, when it set one. */
  readonly deadline?: Date;
}

export interface StreamCall<O extends DescMessage> extends Call {
  /** Sends one message; resolves when it was handed to the transport. */
  write(msg: MessageInitShape<O>): Promise<void>;
}

/**
 * A response already in protobuf wire format: the server sends its bytes as they are (server.ts).
 * An encoder that leaves the first 5 octets of its buffer free (`Encoded.afterPrefix`) saves the
 * server a copy: the gRPC message prefix is written there and the buffer goes out whole.
 */
export class Encoded<O extends DescMessage> {
  readonly bytes: Uint8Array;
  /** `bytes` behind their 5-octet gRPC message prefix, in one buffer, when the encoder left room for it. */
  readonly framed: Buffer | undefined;
  declare readonly schema?: O;
  constructor(bytes: Uint8Array, framed?: Buffer) { this.bytes = bytes; this.framed = framed; }
  /** `buf` holds the message from octet 5 on; octets 0-4 become its gRPC prefix. */
  static afterPrefix<O extends DescMessage>(buf: Buffer): Encoded<O> {
    writePrefix(buf, buf.length - PREFIX);
    return new Encoded<O>(buf.subarray(PREFIX), buf);
  }
}

export type UnaryImpl<I extends DescMessage, O extends DescMessage> =
  (ctx: Context, req: MessageShape<I>, call: Call) => Promise<MessageInitShape<O>>;
/** A unary implementation that may answer with its response already encoded (ListContainers). */
export type EncodedUnaryImpl<I extends DescMessage, O extends DescMessage> =
  (ctx: Context, req: MessageShape<I>, call: Call) => Promise<MessageInitShape<O> | Encoded<O>>;
export type ServerStreamImpl<I extends DescMessage, O extends DescMessage> =
  (ctx: Context, req: MessageShape<I>, call: StreamCall<O>) => Promise<void>;

type MethodsOf<S> = S extends GenService<infer R extends GenServiceMethods> ? R : never;

/** The implementation table of a service: any method may be missing (it then answers UNIMPLEMENTED). */
export type Implementations<S> = {
  [K in keyof MethodsOf<S>]?: MethodsOf<S>[K] extends { methodKind: "unary"; input: infer I extends DescMessage; output: infer O extends DescMessage }
    ? EncodedUnaryImpl<I, O>
    : MethodsOf<S>[K] extends { methodKind: "server_streaming"; input: infer I extends DescMessage; output: infer O extends DescMessage }
      ? ServerStreamImpl<I, O>
      : never;
};

export type RuntimeImplementations = Implementations<typeof RuntimeServiceDesc>;
export type ImageImplementations = Implementations<typeof ImageServiceDesc>;

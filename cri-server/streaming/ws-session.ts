// Exec, attach and port-forward over WebSocket (Kubernetes channel
// protocols). Every message starts with a channel number: a byte in the
// binary protocols, an ASCII digit followed by base64 in the base64 ones.

import { Duplex, PassThrough, Writable } from "node:stream";
import type { WebSocket } from "ws";
import type { Logger } from "../../oci-runtime/foundation/log.ts";
import type { StreamIO, StreamingBackend } from "./backend.ts";
import { WsChannel, WsProtocol, isBase64Protocol } from "./protocol.ts";
import { resizeQueue } from "./resize-reader.ts";
import { forwardErrorMessage, portAllowed } from "./spdy-port-forward.ts";
import { runTarget, type RemoteCommandTarget } from "./remote-command.ts";
import { errorMessage } from "./status.ts";
import type { PortForwardRequest } from "./tokens.ts";

export class WsFrameError extends Error {
  constructor(message: string) { super(message); this.name = "WsFrameError"; }
}

/** Decodes one message into channel + payload; throws WsFrameError when malformed. */
export function decodeWsMessage(data: Buffer, isBinary: boolean, base64: boolean): { channel: number; payload: Buffer } | undefined {
  if (data.length === 0) return undefined;
  if (base64) {
    if (isBinary) throw new WsFrameError("binary message on a base64 channel protocol");
    const text = data.toString("latin1");
    const channel = text.charCodeAt(0) - 48;
    if (channel < 0 || channel > 9) throw new WsFrameError(`invalid base64 channel marker ${JSON.stringify(text[0])}`);
    const body = text.slice(1);
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body)) throw new WsFrameError("invalid base64 payload");
    return { channel, payload: Buffer.from(body, "base64") };
  }
  return { channel: data[0]!, payload: data.subarray(1) };
}

export function encodeWsMessage(channel: number, payload: Buffer, base64: boolean): Buffer | string {
  if (base64) return String.fromCharCode(48 + channel) + payload.toString("base64");
  return Buffer.concat([Buffer.from([channel]), payload]);
}

type Send = (channel: number, payload: Buffer) => Promise<void>;

/** Calls `onMessage` with each decoded client message; a malformed one goes to `onMalformed` instead. */
function onChannelMessages(ws: WebSocket, base64: boolean, onMessage: (msg: { channel: number; payload: Buffer }) => void, onMalformed: (err: Error) => void): void {
  ws.on("message", (data: Buffer, isBinary: boolean) => {
    let msg;
    try {
      msg = decodeWsMessage(data, isBinary, base64);
    } catch (err) {
      onMalformed(err as Error);
      return;
    }
    if (msg) onMessage(msg);
  });
}

function sender(ws: WebSocket, base64: boolean): Send {
  return (channel, payload) => new Promise((resolve, reject) => {
    if (ws.readyState !== ws.OPEN) return reject(new Error("websocket is closed"));
    ws.send(encodeWsMessage(channel, payload, base64), { binary: !base64 }, (err) => err ? reject(err) : resolve());
  });
}

function channelWriter(send: Send, channel: number): Writable {
  const w = new Writable({
    write(chunk: Buffer, _enc, cb) { send(channel, chunk).then(() => cb(), cb); },
  });
  w.on("error", () => undefined); // the websocket went away; the session's close handling takes over
  return w;
}

export interface WsRemoteCommand {
  ws: WebSocket;
  protocol: string;
  backend: StreamingBackend;
  log: Logger;
  target: RemoteCommandTarget;
}

export async function serveRemoteCommandWs(sess: WsRemoteCommand): Promise<void> {
  const { ws, protocol, backend, log, target } = sess;
  const req = target.request;
  const base64 = isBase64Protocol(protocol);
  const v4 = protocol === WsProtocol.V4 || protocol === WsProtocol.V4Base64 || protocol === WsProtocol.V5;
  const v5 = protocol === WsProtocol.V5;
  const send = sender(ws, base64);
  const abort = new AbortController();

  const stdin = req.stdin ? new PassThrough() : undefined;
  const resizeIn = req.tty ? new PassThrough() : undefined;
  const stdout = req.stdout ? channelWriter(send, WsChannel.stdout) : undefined;
  const stderr = req.stderr && !req.tty ? channelWriter(send, WsChannel.stderr) : undefined;
  const io: StreamIO = { stdin, stdout, stderr, resize: resizeIn ? resizeQueue(resizeIn) : undefined };

  const fail = (err: Error) => {
    log.info("closing websocket session on a malformed message", { err });
    ws.close(1002, err.message.slice(0, 100));
    abort.abort(err);
  };
  onChannelMessages(ws, base64, (msg) => {
    switch (msg.channel) {
      case WsChannel.stdin:
        if (stdin && !stdin.writableEnded && !stdin.write(msg.payload)) {
          ws.pause();
          stdin.once("drain", () => ws.resume());
        }
        return;
      case WsChannel.resize:
        resizeIn?.write(msg.payload);
        return;
      case WsChannel.close:
        if (!v5) return fail(new WsFrameError("close channel needs protocol v5.channel.k8s.io"));
        if (msg.payload[0] === WsChannel.stdin) stdin?.end();
        return;
      default:
        return; // clients may write on output channels; ignore
    }
  }, fail);
  ws.once("close", () => {
    stdin?.end();
    resizeIn?.end();
    abort.abort(new Error("client closed the websocket"));
  });

  const outcome = await runTarget(backend, target, io, abort.signal, v4, log);
  if (outcome.aborted) return;
  const { payload } = outcome;
  const flush = (w?: Writable) => w && !w.writableFinished ? new Promise<void>((r) => { w.end(() => r()); w.once("error", () => r()); }) : Promise.resolve();
  await Promise.all([flush(stdout), flush(stderr)]);
  if (payload !== undefined) await send(WsChannel.error, Buffer.from(payload)).catch(() => undefined);
  resizeIn?.end();
  if (ws.readyState === ws.OPEN) ws.close(1000);
}

/** One forwarded port's data channel as a Duplex for the backend. */
class ChannelDuplex extends Duplex {
  #send: Send;
  #channel: number;
  #onRead: () => void;
  constructor(send: Send, channel: number, onRead: () => void) {
    super({ allowHalfOpen: true });
    this.#send = send;
    this.#channel = channel;
    this.#onRead = onRead;
    this.on("error", () => undefined);
  }
  override _read(): void { this.#onRead(); }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#send(this.#channel, chunk).then(() => cb(), cb);
  }
  override _final(cb: () => void): void { cb(); }
}

export interface WsPortForward {
  ws: WebSocket;
  protocol: string;
  backend: StreamingBackend;
  log: Logger;
  request: PortForwardRequest;
  /** Ports from the URL query (`?ports=80,443`), else the request's; each must be one the request allows. */
  ports: number[];
}

export async function servePortForwardWs(sess: WsPortForward): Promise<void> {
  const { ws, backend, log, request, ports } = sess;
  const refused = ports.find((p) => !portAllowed(request, p));
  if (refused !== undefined) throw new Error(`port-forward: port ${refused} is not in the PortForward request`);
  const base64 = isBase64Protocol(sess.protocol);
  const send = sender(ws, base64);
  const abort = new AbortController();
  const resumeWs = () => ws.resume();
  const pipes = ports.map((_, i) => new ChannelDuplex(send, i * 2, resumeWs));

  onChannelMessages(ws, base64, (msg) => {
    if (msg.channel % 2 !== 0) return; // error channels are server-to-client only
    const pipe = pipes[msg.channel / 2];
    if (!pipe) { ws.close(1002, `unknown channel ${msg.channel}`); return; }
    if (!pipe.push(msg.payload)) ws.pause();
  }, (err) => ws.close(1002, err.message.slice(0, 100)));
  ws.once("close", () => {
    for (const p of pipes) p.push(null);
    abort.abort(new Error("client closed the websocket"));
  });

  const portPrefix = (port: number) => { const b = Buffer.alloc(2); b.writeUInt16LE(port); return b; };
  await Promise.all(ports.map(async (port, i) => {
    await send(i * 2, portPrefix(port)).catch(() => undefined);
    await send(i * 2 + 1, portPrefix(port)).catch(() => undefined);
    try {
      await backend.portForward(request.podSandboxId, port, pipes[i]!, abort.signal);
    } catch (err) {
      if (abort.signal.aborted) return;
      log.info("port-forward connection failed", { podSandboxId: request.podSandboxId, port, err });
      await send(i * 2 + 1, Buffer.from(forwardErrorMessage(port, request.podSandboxId, errorMessage(err)))).catch(() => undefined);
    }
  }));
  if (ws.readyState === ws.OPEN) ws.close(1000);
}

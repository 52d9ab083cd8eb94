// berth's gRPC server (cri-server/server.ts) over the real socket, spoken to with Node's own
// HTTP/2 client so every header and frame is the test's choice: what a well-behaved call gets,
// and each boundary a hostile caller can push on (framing, sizes, encodings, deadlines,
// cancellation, non-gRPC requests). After every refusal berthd still answers.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as http2 from "node:http2";
import { connect as netConnect, createServer as createNetServer, type Server, type Socket } from "node:net";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { create, toBinary } from "@bufbuild/protobuf";
import { startBerthd, type Berthd } from "../lib/berthd.ts";
import { PullImageRequestSchema, VersionRequestSchema, VersionResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import { fromBinary } from "@bufbuild/protobuf";
import { decodeStatusMessage, frameMessage } from "../../cri-server/transport/grpc-wire.ts";
import { MAX_MESSAGE_BYTES, MAX_HELD_REQUEST_BYTES } from "../../cri-server/server.ts";

const VERSION = "/runtime.v1.RuntimeService/Version";
const PULL = "/runtime.v1.ImageService/PullImage";
const versionRequest = () => frameMessage(toBinary(VersionRequestSchema, create(VersionRequestSchema, { version: "v1" })));

interface Answer { status: number; headers: http2.IncomingHttpHeaders; trailers: http2.IncomingHttpHeaders; body: Buffer; grpcStatus?: string; grpcMessage: string; rst?: number }

function dial(socket: string): http2.ClientHttp2Session {
  const s = http2.connect("http://localhost", { createConnection: () => netConnect(socket) });
  s.on("error", () => {});
  return s;
}

/** One request; `send` writes the body (default: nothing more) and decides when the request ends. */
function call(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, send: (s: http2.ClientHttp2Stream) => void = (s) => s.end()): Promise<Answer> {
  const st = session.request({ ":method": "POST", "content-type": "application/grpc", te: "trailers", ...headers });
  st.on("error", () => {});
  const chunks: Buffer[] = [];
  const answer: Partial<Answer> = { trailers: {} };
  st.on("response", (h) => { answer.status = Number(h[":status"]); answer.headers = h; });
  st.on("trailers", (t) => { answer.trailers = t; });
  st.on("data", (c: Buffer) => chunks.push(c));
  send(st);
  return new Promise((resolve) => {
    st.on("close", () => {
      const h = { ...answer.headers, ...answer.trailers };
      resolve({
        status: answer.status ?? 0, headers: answer.headers ?? {}, trailers: answer.trailers ?? {}, body: Buffer.concat(chunks),
        ...(h["grpc-status"] !== undefined ? { grpcStatus: String(h["grpc-status"]) } : {}),
        grpcMessage: decodeStatusMessage(String(h["grpc-message"] ?? "")),
        ...(st.rstCode ? { rst: st.rstCode } : {}),
      });
    });
  });
}

const prefix = (flag: number, length: number) => { const b = Buffer.alloc(5); b[0] = flag; b.writeUInt32BE(length, 1); return b; };

describe("the gRPC server over the real socket", () => {
  let b: Berthd;
  let session: http2.ClientHttp2Session;
  before(async () => { b = await startBerthd(); session = dial(b.socket); });
  after(async () => { session?.close(); await b?.cleanup(); });

  async function stillAnswers(): Promise<void> {
    const a = await call(session, { ":path": VERSION }, (s) => s.end(versionRequest()));
    assert.equal(a.grpcStatus, "0", a.grpcMessage);
    assert.equal(fromBinary(VersionResponseSchema, a.body.subarray(5)).runtimeName, "berth");
  }

  test("a unary call: 200, application/grpc, one framed message, grpc-status 0 in trailers", async () => {
    const a = await call(session, { ":path": VERSION, "grpc-timeout": "10S" }, (s) => s.end(versionRequest()));
    assert.equal(a.status, 200);
    assert.equal(a.headers["content-type"], "application/grpc");
    assert.equal(a.headers["grpc-status"], undefined, "the status travels in the trailers");
    assert.equal(a.trailers["grpc-status"], "0");
    assert.equal(a.body[0], 0, "not compressed");
    assert.equal(a.body.readUInt32BE(1), a.body.length - 5);
    const v = fromBinary(VersionResponseSchema, a.body.subarray(5));
    assert.equal(v.runtimeApiVersion, "v1");
  });

  test("an unknown method: UNIMPLEMENTED naming it, in one HEADERS frame (trailers only)", async () => {
    const a = await call(session, { ":path": "/runtime.v1.RuntimeService/Nope" }, (s) => s.end(versionRequest()));
    assert.equal(a.status, 200);
    assert.equal(a.headers["grpc-status"], "12");
    assert.match(a.grpcMessage, /unknown method "\/runtime\.v1\.RuntimeService\/Nope"/);
    assert.equal(a.body.length, 0);
    const odd = await call(session, { ":path": `/x/${"é%".repeat(300)}` }, (s) => s.end());
    assert.equal(odd.grpcStatus, "12");
    assert.ok(odd.grpcMessage.length < 400, "the echoed path is cut");
    await stillAnswers();
  });

  test("not gRPC: HTTP 415 for another content type or method, nothing run", async () => {
    const a = await call(session, { ":path": VERSION, "content-type": "application/json" }, (s) => s.end("{}"));
    assert.equal(a.status, 415);
    assert.match(a.body.toString(), /application\/grpc/);
    const g = await call(session, { ":path": VERSION, ":method": "GET" }, (s) => s.end());
    assert.equal(g.status, 415);
    const plus = await call(session, { ":path": VERSION, "content-type": "application/grpc+proto" }, (s) => s.end(versionRequest()));
    assert.equal(plus.grpcStatus, "0", "application/grpc+proto is gRPC too");
  });

  test("a message longer than 16 MiB is refused from its prefix, before its body is sent", async () => {
    const a = await call(session, { ":path": VERSION }, (s) => { s.write(prefix(0, MAX_MESSAGE_BYTES + 1)); });
    assert.equal(a.grpcStatus, "8", a.grpcMessage);
    assert.match(a.grpcMessage, new RegExp(`${MAX_MESSAGE_BYTES + 1} bytes; berth accepts at most ${MAX_MESSAGE_BYTES}`));
    await stillAnswers();
  });

  test("a compressed message: UNIMPLEMENTED with grpc-accept-encoding identity", async () => {
    const a = await call(session, { ":path": VERSION, "grpc-encoding": "gzip" }, (s) => s.end(Buffer.concat([prefix(1, 3), Buffer.from([1, 2, 3])])));
    assert.equal(a.grpcStatus, "12");
    assert.equal(a.headers["grpc-accept-encoding"], "identity");
    assert.match(a.grpcMessage, /compressed/);
  });

  test("framing errors name what was wrong: a bad flag, two messages, none, a cut message", async () => {
    const cases: [string, Buffer, RegExp][] = [
      ["bad flag", Buffer.concat([prefix(7, 0)]), /compressed flag is 7/],
      ["two messages", Buffer.concat([versionRequest(), versionRequest()]), /one request message; the client sent more/],
      ["none", Buffer.alloc(0), /without a request message/],
      ["cut prefix", Buffer.from([0, 0, 0]), /ended inside a message \(3 bytes of a 5-byte prefix\)/],
      ["cut body", Buffer.concat([prefix(0, 100), Buffer.alloc(10)]), /ended inside a message \(15 bytes of 105\)/],
    ];
    for (const [what, body, re] of cases) {
      const a = await call(session, { ":path": VERSION }, (s) => s.end(body));
      assert.equal(a.grpcStatus, "3", `${what}: ${a.grpcMessage}`);
      assert.match(a.grpcMessage, re, what);
    }
    await stillAnswers();
  });

  test("a malformed protobuf message: INVALID_ARGUMENT naming the message type", async () => {
    const a = await call(session, { ":path": VERSION }, (s) => s.end(frameMessage(Buffer.from([0x0a, 0x7f, 0x01]))));
    assert.equal(a.grpcStatus, "3");
    assert.match(a.grpcMessage, /malformed runtime\.v1\.VersionRequest message/);
  });

  test("a grpc-timeout that is not 1-8 digits and a unit: INVALID_ARGUMENT naming it", async () => {
    for (const t of ["10", "123456789S", "1s", "-5S"]) {
      const a = await call(session, { ":path": VERSION, "grpc-timeout": t }, (s) => s.end(versionRequest()));
      assert.equal(a.grpcStatus, "3", t);
      assert.ok(a.grpcMessage.includes(JSON.stringify(t)), a.grpcMessage);
    }
    const far = await call(session, { ":path": VERSION, "grpc-timeout": "99999999H" }, (s) => s.end(versionRequest()));
    assert.equal(far.grpcStatus, "0", "a deadline past setTimeout's range is kept, not fired at once");
  });

  describe("deadlines", () => {
    let stall: Server;
    const conns = new Set<Socket>();
    let accepted = 0;
    before(async () => {
      // A "registry" that accepts and never says a word. PullImage does not stop for its caller
      // (a pull is bounded by registry.stall_timeout); the call must still end at its deadline.
      stall = createNetServer((s) => { accepted++; conns.add(s); s.on("close", () => conns.delete(s)); s.on("error", () => {}); });
      await new Promise<void>((r) => stall.listen(0, "127.0.0.1", r));
    });
    after(async () => { for (const s of conns) s.destroy(); stall?.close(); });

    test("DEADLINE_EXCEEDED at the client's deadline while the handler still waits", async () => {
      const port = (stall.address() as { port: number }).port;
      const body = frameMessage(toBinary(PullImageRequestSchema, create(PullImageRequestSchema, { image: { image: `127.0.0.1:${port}/stall/x:1` } })));
      const t0 = Date.now();
      const a = await call(session, { ":path": PULL, "grpc-timeout": "700m" }, (s) => s.end(body));
      const took = Date.now() - t0;
      assert.equal(a.grpcStatus, "4", a.grpcMessage);
      assert.match(a.grpcMessage, /deadline/);
      assert.ok(took >= 650 && took < 10_000, `answered after ${took} ms`);
      assert.ok(accepted > 0, "the pull reached the registry");
      await stillAnswers();
    });
  });

  test(`more than ${MAX_HELD_REQUEST_BYTES / 1048576} MiB of requests held at once: the call that goes over is refused`, async () => {
    // Five calls each declare a 16 MiB message and send 14 MiB of it, and none ends.
    const chunk = Buffer.alloc(1024 * 1024);
    const streams: http2.ClientHttp2Stream[] = [];
    const answers: Promise<Answer>[] = [];
    const sent: Promise<void>[] = [];
    const mine = dial(b.socket);
    try {
      for (let i = 0; i < 5; i++) {
        answers.push(call(mine, { ":path": VERSION }, (s) => {
          streams.push(s);
          sent.push((async () => {
            if (!s.write(prefix(0, MAX_MESSAGE_BYTES))) await once(s, "drain");
            for (let m = 0; m < 14 && !s.destroyed && !s.closed; m++) if (!s.write(chunk)) await Promise.race([once(s, "drain"), once(s, "close")]);
          })());
        }));
      }
      const first = await Promise.race(answers.map((p, i) => p.then((a) => ({ a, i }))));
      assert.equal(first.a.grpcStatus, "8", first.a.grpcMessage);
      assert.match(first.a.grpcMessage, /more than 67108864 bytes of requests/);
      for (const s of streams) s.close(http2.constants.NGHTTP2_CANCEL);
      await Promise.all(answers);
    } finally {
      mine.close();
    }
    await stillAnswers();
  });

  test("a length prefix is not an allocation: 200 calls that each claim 16 MiB and send nothing more cost berthd no memory", async () => {
    const vm = () => Number(/^VmSize:\s+(\d+)/m.exec(readFileSync(`/proc/${b.proc.pid}/status`, "utf8"))![1]) * 1024;
    const mine = dial(b.socket);
    const streams: http2.ClientHttp2Stream[] = [];
    try {
      const before = vm();
      for (let i = 0; i < 200; i++) {
        const st = mine.request({ ":method": "POST", ":path": VERSION, "content-type": "application/grpc" });
        st.on("error", () => {});
        st.write(Buffer.concat([prefix(0, MAX_MESSAGE_BYTES), Buffer.alloc(10)]));
        streams.push(st);
      }
      await stillAnswers(); // on another connection, after all 200 prefixes were sent on this one
      await new Promise((r) => setTimeout(r, 200));
      const grew = vm() - before;
      assert.ok(grew < 512 * 1024 * 1024, `berthd's address space grew by ${grew} bytes (200 x 16 MiB would be 3.2 GB)`);
    } finally {
      for (const st of streams) st.close(http2.constants.NGHTTP2_CANCEL);
      mine.close();
    }
    await stillAnswers();
  });

  test("at most 1000 concurrent streams are advertised", async () => {
    const s = dial(b.socket);
    try {
      // berth's SETTINGS (transport/h2.ts): the stream limit, a 1 MiB stream window, the header list bound
      const [real] = await once(s, "remoteSettings");
      assert.equal(real.maxConcurrentStreams, 1000);
      assert.equal(real.initialWindowSize, 1 << 20);
      assert.equal(real.maxHeaderListSize, 65536);
    } finally { s.close(); }
  });
});

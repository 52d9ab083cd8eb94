// Old and new gRPC clients over the real socket, with no Go tool: each row of
// GENERATIONS replays what one client generation puts on the wire, frame for
// frame and with the same HPACK representations (captured from the real
// crictl/critest builds through a byte-logging relay; see the table), and
// asserts a gRPC answer. grpc-go before 1.58 sends the socket path as
// :authority, which nghttp2 (node:http2) refuses; berth's own HTTP/2 layer
// (cri-server/transport/h2.ts) reads :authority and ignores it. The negative
// cases check HTTP/2's protocol checks after either kind of first call.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer as createH2Server } from "node:http2";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { startBerthd, type Berthd } from "../lib/berthd.ts";
import { podConfig, startPodEnv, type PodEnv } from "../lib/pod.ts";
import { ContainerState, VersionResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import { HpackDecoder, encodeBlock, huffmanEncodedLength, type EncodeOp } from "../../cri-server/transport/hpack.ts";
import { FLAG, FRAME, frameHeader } from "../../cri-server/transport/h2.ts";
import { RawH2, dataFrame, grpcMessage, handshake, headersFrame, response, versionRequest } from "../lib/raw-h2.ts";

/** Replaced by the berthd socket path (what grpc-go < 1.58 puts in :authority). */
const SOCKET = "\u0000socket";
/** Replaced by the socket path with each '/' as %2F (what grpc-go 1.58 puts there). */
const SOCKET_ESCAPED = "\u0000socket-escaped";

interface Generation {
  name: string;
  /** Where it is used. */
  clients: string;
  /** The client's SETTINGS (id, value) after the preface. */
  settings: [number, number][];
  /** HPACK representations of the first call's HEADERS (Version, stream 1). */
  first: EncodeOp[];
  /** The second call on the same connection (Version again, stream 3): mostly dynamic-table references. */
  second: EncodeOp[];
  /** After the first response's DATA, grpc-go returns the window (WINDOW_UPDATE 30) and sends its BDP PING. */
  bdpPing?: boolean;
  /** A first HEADERS block captured from the real client, and the socket path it dialled (or the authority it sent). */
  captured?: { hex: string; authority: string };
}

// Strings are Huffman-coded exactly when that is shorter: grpc-go's and nghttp2's encoders both choose so.
const shorter = (s: string) => huffmanEncodedLength(Buffer.from(s, "latin1")) < s.length;
const idx = (index: number): EncodeOp => ({ op: "indexed", index });
const lit = (op: "incremental" | "without", index: number, value: string, name?: string): EncodeOp =>
  ({ op, index, value, valueHuffman: shorter(value), ...(name ? { name, nameHuffman: shorter(name) } : {}) });
const inc = (index: number, value: string, name?: string) => lit("incremental", index, value, name);
const VERSION_PATH = "/runtime.v1.RuntimeService/Version";

// grpc-go (1.51 to 1.68 alike): :method POST and :scheme http from the static
// table, then :path, :authority, content-type, user-agent, te,
// grpc-accept-encoding and grpc-timeout as literals with incremental indexing;
// the second call on the connection names them by dynamic index (62 = newest)
// and indexes its new grpc-timeout. Only :authority differs between generations.
function grpcGo(version: string, authority: string, timeouts: [string, string], acceptEncoding = true): Pick<Generation, "first" | "second"> {
  if (!acceptEncoding) { // grpc-go before 1.47 sends no grpc-accept-encoding
    return {
      first: [idx(3), idx(6), inc(5, VERSION_PATH), inc(1, authority), inc(31, "application/grpc"), inc(58, `grpc-go/${version}`),
        inc(0, "trailers", "te"), inc(0, timeouts[0], "grpc-timeout")],
      second: [idx(3), idx(6), idx(67), idx(66), idx(65), idx(64), idx(63), inc(62, timeouts[1])],
    };
  }
  return {
    first: [idx(3), idx(6), inc(5, VERSION_PATH), inc(1, authority), inc(31, "application/grpc"), inc(58, `grpc-go/${version}`),
      inc(0, "trailers", "te"), inc(0, "gzip", "grpc-accept-encoding"), inc(0, timeouts[0], "grpc-timeout")],
    second: [idx(3), idx(6), idx(68), idx(67), idx(66), idx(65), idx(64), idx(63), inc(62, timeouts[1])],
  };
}

// Captured with a unix-socket relay that logged the bytes between the real
// clients and berthd; the grpc-go clients connect with an empty SETTINGS frame.
// Kubelets of Kubernetes 1.28 and older are built on grpc-go before 1.58 and
// dial the CRI socket the same way, so they send the socket path too.
const GENERATIONS: Generation[] = [
  {
    name: "grpc-go 1.51", clients: "crictl/critest v1.26.1",
    settings: [], ...grpcGo("1.51.0", SOCKET, ["1968919u", "1999958u"]), bdpPing: true,
    captured: {
      authority: "/tmp/h5/relay.sock",
      hex: "8386459962cb6a49a92afdc2bedb6a49a92ee2d9dcc42b1c4b620c7abf418d6134d6c4edb161681fa5d072755f8b1d75d0620d263d4c4d6564" +
        "7a8a9acac8b4c7602bb615c140027465864d833505b11f408e9acac8b0c842d6958b510f21aa9b839bd9ab40899acac8b24d494f6a7f860bee3cf85fb7",
    },
  },
  {
    name: "grpc-go 1.45", clients: "crictl v1.24.2",
    settings: [], ...grpcGo("1.45.0", SOCKET, ["1957029u", "1999976u"], false), bdpPing: true,
    captured: {
      authority: "/tmp/h5/relay.sock",
      hex: "8386459962cb6a49a92afdc2bedb6a49a92ee2d9dcc42b1c4b620c7abf418d6134d6c4edb161681fa5d072755f8b1d75d0620d263d4c4d6564" +
        "7a8a9acac8b4c7602bb4dae040027465864d833505b11f40899acac8b24d494f6a7f860bedba013f6f",
    },
  },
  {
    name: "grpc-go 1.54", clients: "crictl v1.28.0",
    settings: [], ...grpcGo("1.54.0", SOCKET, ["1956262u", "1999950u"]), bdpPing: true,
    captured: {
      authority: "/tmp/h5/relay.sock",
      hex: "8386459962cb6a49a92afdc2bedb6a49a92ee2d9dcc42b1c4b620c7abf418d6134d6c4edb161681fa5d072755f8b1d75d0620d263d4c4d6564" +
        "7a8a9acac8b4c7602bb6d2e040027465864d833505b11f408e9acac8b0c842d6958b510f21aa9b839bd9ab40899acac8b24d494f6a7f860bedb827056f",
    },
  },
  {
    // percent-encodes the socket path: every octet is one nghttp2 accepts, so it passes unchanged
    name: "grpc-go 1.58", clients: "crictl v1.29.0",
    settings: [], ...grpcGo("1.58.3", SOCKET_ESCAPED, ["1994933u", "1999958u"]), bdpPing: true,
    captured: {
      authority: "/tmp/h5/relay.sock",
      hex: "8386459962cb6a49a92afdc2bedb6a49a92ee2d9dcc42b1c4b620c7abf41925458534d6a8b0cedaa2c361681fa5d07275f5f8b1d75d0620d263d" +
        "4c4d65647a8b9acac8b4c7602bb6f2ecff40027465864d833505b11f408e9acac8b0c842d6958b510f21aa9b839bd9ab40899acac8b24d494f6a7f86" +
        "0befb4fb2cdb",
    },
  },
  {
    name: "grpc-go 1.68", clients: "crictl/critest v1.32.0",
    settings: [], ...grpcGo("1.68.1", "localhost", ["1970397u", "1999958u"]), bdpPing: true,
    captured: {
      authority: "localhost",
      hex: "8386459962cb6a49a92afdc2bedb6a49a92ee2d9dcc42b1c4b620c7abf4186a0e41d139d095f8b1d75d0620d263d4c4d65647a8a9acac8b4c7" +
        "602bb8f2e140027465864d833505b11f408e9acac8b0c842d6958b510f21aa9b839bd9ab40899acac8b24d494f6a7f860bee8197ddb7",
    },
  },
  {
    // :authority first; :path without indexing; the grpc-* and accept-encoding fields before user-agent.
    name: "grpc-js 1.14", clients: "berth's own tests, Node tools",
    settings: [[4, 65535]],
    first: [inc(1, "localhost"), idx(3), lit("without", 4, VERSION_PATH), idx(6), inc(0, "identity,deflate,gzip", "grpc-accept-encoding"),
      inc(16, "identity"), inc(0, "119984m", "grpc-timeout"), inc(58, "grpc-node-js/1.14.7"), inc(31, "application/grpc"), inc(0, "trailers", "te")],
    second: [idx(68), idx(3), lit("without", 4, VERSION_PATH), idx(6), idx(67), idx(66), inc(65, "119999m"), idx(65), idx(64), idx(63)],
    captured: {
      authority: "localhost",
      hex: "4186a0e41d139d0983049962cb6a49a92afdc2bedb6a49a92ee2d9dcc42b1c4b620c7abf86408e9acac8b0c842d6958b510f21aa9b903485a926" +
        "4fafa90b2d03497ea6f66aff50863485a9264faf40899acac8b24d494f6a7f85085f7de6a97a8e9acac8b54790ab7443015c2d2eef5f8b1d75d0620d26" +
        "3d4c4d656440027465864d833505b11f",
    },
  },
];

const realize = (ops: EncodeOp[], socket: string) => ops.map((o) => {
  if (!("value" in o)) return o;
  if (o.value === SOCKET) return { ...o, value: socket, valueHuffman: shorter(socket) };
  if (o.value === SOCKET_ESCAPED) { const v = socket.replaceAll("/", "%2F"); return { ...o, value: v, valueHuffman: shorter(v) }; }
  return o;
});

describe("clients since Kubernetes 1.24", () => {
  let b: Berthd;
  before(async () => { b = await startBerthd({ toml: '[log]\nlevel = "debug"\n' }); });
  after(async () => { await b.cleanup(); });

  test("the table reproduces the captured header blocks byte for byte", () => {
    for (const g of GENERATIONS) {
      if (!g.captured) continue;
      assert.equal(encodeBlock(realize(g.first, g.captured.authority)).toString("hex"), g.captured.hex, g.name);
    }
  });

  test("the cause: a bare node:http2 server resets grpc-go 1.51's first call (PROTOCOL_ERROR) before its stream event, and takes grpc-go 1.58's", async () => {
    const dir = await mkdtemp(join(tmpdir(), "berth-h2-"));
    const path = join(dir, "bare.sock");
    const seen: string[] = [];
    const server = createH2Server();
    server.on("stream", (st, h) => { seen.push(String(h[":authority"])); st.respond({ ":status": 200 }); st.end(); });
    await new Promise<void>((r) => server.listen(path, r));
    try {
      for (const [g, expectRst] of [[GENERATIONS[0]!, true], [GENERATIONS.find((x) => x.name === "grpc-go 1.58")!, false]] as const) {
        const c = await handshake(path, g);
        try {
          c.write(headersFrame(1, encodeBlock(realize(g.first, path))), dataFrame(1, versionRequest()));
          const f = await c.until((x) => x.streamId === 1 && (x.type === FRAME.RST_STREAM || x.type === FRAME.HEADERS), `an answer on stream 1 (${g.name})`);
          if (expectRst) {
            assert.equal(f.type, FRAME.RST_STREAM, g.name);
            assert.equal(f.payload.readUInt32BE(0), 1, "PROTOCOL_ERROR");
          } else assert.equal(f.type, FRAME.HEADERS, g.name);
        } finally { c.close(); }
      }
      assert.deepEqual(seen, [path.replaceAll("/", "%2F")], "only the grpc-go 1.58 call (percent-encoded path) reached the stream event");
    } finally {
      await new Promise((r) => server.close(r));
      await rm(dir, { recursive: true, force: true });
    }
  });

  for (const g of GENERATIONS) {
    test(`${g.name} (${g.clients}): two Version calls on one connection answer grpc-status 0`, async () => {
      const c = await handshake(b.socket, g);
      try {
        const d = new HpackDecoder({ maxTableSize: 4096, maxHeaderListSize: 1 << 20 });
        // crictl's first call is an empty VersionRequest, its second asks for "v1"
        for (const [sid, ops, req] of [[1, g.first, grpcMessage(new Uint8Array())], [3, g.second, versionRequest()]] as const) {
          c.write(headersFrame(sid, encodeBlock(realize(ops, b.socket))), dataFrame(sid, req));
          const r = await response(c, d, sid);
          if (sid === 1 && g.bdpPing) {
            const ping = Buffer.from("02041010090e0707", "hex");
            c.write(frameHeader(4, FRAME.WINDOW_UPDATE, 0, 0), Buffer.from([0, 0, 0, 30]), frameHeader(8, FRAME.PING, 0, 0), ping);
            const ack = await c.until((f) => f.type === FRAME.PING && (f.flags & FLAG.ACK) !== 0, "the PING ack");
            assert.deepEqual(ack.payload, ping);
          }
          assert.equal(r.headers[":status"], "200", `stream ${sid}`);
          assert.equal(r.headers["grpc-status"], "0", `stream ${sid}: ${r.headers["grpc-message"] ?? ""}`);
          assert.ok(r.message, `stream ${sid} carries a message`);
          const v = fromBinary(VersionResponseSchema, r.message);
          assert.equal(v.runtimeName, "berth");
          assert.equal(v.runtimeApiVersion, "v1");
        }
      } finally { c.close(); }
    });
  }

  // The protocol checks hold after an old client's call as after a new one's.
  const oldGo = GENERATIONS.find((g) => g.name === "grpc-go 1.51")!;
  const newGo = GENERATIONS.find((g) => g.name === "grpc-go 1.68")!;

  test("an uppercase header name is refused (RST_STREAM PROTOCOL_ERROR) after an old client's call, and the next call works", async () => {
    const c = await handshake(b.socket, oldGo);
    try {
      const bad = [...realize(oldGo.first, b.socket), { op: "without", index: 0, name: "X-Upper", value: "1" } as EncodeOp];
      c.write(headersFrame(1, encodeBlock(bad)), dataFrame(1, versionRequest()));
      const rst = await c.until((f) => f.type === FRAME.RST_STREAM && f.streamId === 1 || f.type === FRAME.GOAWAY, "RST_STREAM for stream 1");
      assert.equal(rst.type, FRAME.RST_STREAM);
      assert.equal(rst.payload.readUInt32BE(0), 1, "PROTOCOL_ERROR");
      // the refused block still added its entries to the client's table; the second call refers to them
      c.write(headersFrame(3, encodeBlock(oldGo.second)), dataFrame(3, versionRequest()));
      const r = await response(c, new HpackDecoder({ maxTableSize: 4096, maxHeaderListSize: 1 << 20 }), 3);
      assert.equal(r.headers["grpc-status"], "0");
    } finally { c.close(); }
  });

  test("a request without :path is refused with RST_STREAM PROTOCOL_ERROR", async () => {
    for (const g of [oldGo, newGo]) {
      const c = await handshake(b.socket, g);
      try {
        c.write(headersFrame(1, encodeBlock(realize(g.first, b.socket).filter((o) => !(o.op !== "indexed" && o.op !== "size-update" && o.index === 5)))), dataFrame(1, versionRequest()));
        const f = await c.until((x) => x.type === FRAME.RST_STREAM && x.streamId === 1 || x.type === FRAME.GOAWAY, "RST_STREAM for stream 1");
        assert.equal(f.type, FRAME.RST_STREAM, g.name);
        assert.equal(f.payload.readUInt32BE(0), 1, `${g.name}: PROTOCOL_ERROR`);
      } finally { c.close(); }
    }
  });

  const goaway = async (c: RawH2, what: string) => {
    const f = await c.until((x) => x.type === FRAME.GOAWAY, `GOAWAY after ${what}`);
    const code = f.payload.readUInt32BE(4);
    assert.notEqual(code, 0, `${what}: GOAWAY carries an error code`);
    await c.waitClosed();
    return code;
  };

  test("malformed HPACK (index 0) gets GOAWAY COMPRESSION_ERROR, first call or later", async () => {
    for (const [g, pre] of [[newGo, []], [oldGo, [1]]] as const) {
      const c = await handshake(b.socket, g);
      try {
        if (pre.length) { // an old client's call first
          c.write(headersFrame(1, encodeBlock(realize(g.first, b.socket))), dataFrame(1, versionRequest()));
          await response(c, new HpackDecoder({ maxTableSize: 4096, maxHeaderListSize: 1 << 20 }), 1);
        }
        c.write(headersFrame(pre.length ? 3 : 1, Buffer.from([0x82, 0x80])));
        assert.equal(await goaway(c, `index 0 (${g.name})`), 9);
      } finally { c.close(); }
    }
  });

  test("a HEADERS frame over the 16384-octet frame size and a CONTINUATION flood get GOAWAY", async () => {
    let c = await handshake(b.socket, oldGo);
    try {
      c.write(frameHeader(16_385, FRAME.HEADERS, FLAG.END_HEADERS, 1), Buffer.alloc(16_385, 0x82));
      await goaway(c, "an oversized HEADERS frame");
    } finally { c.close(); }
    // and after a call from a new client
    c = await handshake(b.socket, newGo);
    try {
      c.write(headersFrame(1, encodeBlock(realize(newGo.first, b.socket))), dataFrame(1, versionRequest()));
      await response(c, new HpackDecoder({ maxTableSize: 4096, maxHeaderListSize: 1 << 20 }), 1);
      c.write(frameHeader(16_385, FRAME.HEADERS, FLAG.END_HEADERS, 3), Buffer.alloc(16_385, 0x82));
      await goaway(c, "an oversized HEADERS frame after a grpc-go 1.68 call");
    } finally { c.close(); }
    c = await handshake(b.socket, oldGo);
    try {
      const parts = [frameHeader(1, FRAME.HEADERS, 0, 1), Buffer.from([0x82])];
      for (let i = 0; i < 40; i++) parts.push(frameHeader(1, FRAME.CONTINUATION, 0, 1), Buffer.from([0x82]));
      c.write(...parts);
      await goaway(c, "40 CONTINUATION frames");
    } finally { c.close(); }
  });

  test("a DATA frame on stream 0 gets GOAWAY PROTOCOL_ERROR; bytes that are not HTTP/2 are dropped", async () => {
    const c = await handshake(b.socket, oldGo);
    try {
      c.write(dataFrame(0, Buffer.from("x")));
      assert.equal(await goaway(c, "DATA on stream 0"), 1);
    } finally { c.close(); }
    const raw = await RawH2.open(b.socket);
    try {
      raw.write(Buffer.from("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"));
      await raw.waitClosed();
    } finally { raw.close(); }
  });

  test("an HPACK integer padded with 150 continuation octets (NaN to a naive decoder) gets GOAWAY COMPRESSION_ERROR after an old client's call", async () => {
    const c = await handshake(b.socket, oldGo);
    try {
      c.write(headersFrame(1, encodeBlock(realize(oldGo.first, b.socket))), dataFrame(1, versionRequest()));
      await response(c, new HpackDecoder({ maxTableSize: 4096, maxHeaderListSize: 1 << 20 }), 1);
      // A dynamic table size update whose value never settles, then an ordinary request:
      // berth's decoder must refuse it, not loop or read NaN.
      const nan = Buffer.concat([Buffer.from([0x3f]), Buffer.alloc(150, 0x80), Buffer.from([0x00])]);
      c.write(headersFrame(3, Buffer.concat([nan, encodeBlock(realize(oldGo.first, b.socket))])), dataFrame(3, versionRequest()));
      assert.equal(await goaway(c, "a NaN table size update"), 9);
    } finally { c.close(); }
  });

  test("after a first call that passes unchanged, a later CONTINUATION flood still gets GOAWAY", async () => {
    const c = await handshake(b.socket, newGo);
    try {
      c.write(headersFrame(1, encodeBlock(realize(newGo.first, b.socket))), dataFrame(1, versionRequest()));
      await response(c, new HpackDecoder({ maxTableSize: 4096, maxHeaderListSize: 1 << 20 }), 1);
      const parts = [frameHeader(1, FRAME.HEADERS, 0, 3), Buffer.from([0x82])];
      for (let i = 0; i < 40; i++) parts.push(frameHeader(1, FRAME.CONTINUATION, 0, 3), Buffer.from([0x82]));
      c.write(...parts);
      await goaway(c, "40 CONTINUATION frames on a later block");
    } finally { c.close(); }
  });

  test("after all of that berthd still answers", async () => {
    const v = await b.client.runtime.version({ version: "v1" });
    assert.equal(v.runtimeName, "berth");
  });
});

// What kubelets 1.24-1.28 send: ImageSpec with only `image` (an id, a name or a
// digest reference; no user_specified_image, runtime_handler or image_ref), no
// runtime_handler on the pod, the deprecated apparmor_profile and
// seccomp_profile_path strings, resources without unified/hugepages/swap, and
// no supplemental_groups_policy.
describe("request shapes of older kubelets", () => {
  let env: PodEnv;
  let podId = "";
  let pod: ReturnType<typeof podConfig>;
  let imageId = "";
  let repoDigest = "";
  let n = 0;
  const rt = () => env.b.client.runtime;

  before(async () => {
    env = await startPodEnv({ images: true });
    imageId = (await env.b.client.image.pullImage({ image: { image: env.images!.busybox } })).imageRef;
    const st = await env.b.client.image.imageStatus({ image: { image: imageId } });
    repoDigest = st.image!.repoDigests[0]!;
    pod = podConfig({ linux: { securityContext: { seccompProfilePath: "runtime/default" } } });
    podId = (await rt().runPodSandbox({ config: pod })).podSandboxId; // no runtime_handler
  });
  after(async () => { await env.cleanup(); });

  async function run(image: string, extra: Record<string, unknown> = {}): Promise<string> {
    const config = { metadata: { name: `old${++n}`, attempt: 0 }, image: { image }, command: ["sleep", "1000"], ...extra };
    const id = (await rt().createContainer({ podSandboxId: podId, config: config as never, sandboxConfig: pod as never })).containerId;
    await rt().startContainer({ containerId: id });
    return id;
  }
  async function sh(id: string, script: string): Promise<string> {
    const r = await rt().execSync({ containerId: id, cmd: ["sh", "-c", script], timeout: 20n });
    assert.equal(r.exitCode, 0, new TextDecoder().decode(r.stderr));
    return new TextDecoder().decode(r.stdout).trim();
  }
  async function remove(id: string) {
    await rt().stopContainer({ containerId: id, timeout: 0n });
    await rt().removeContainer({ containerId: id });
  }

  test("the pod ran without runtime_handler and with the legacy pod seccomp string", async () => {
    const st = (await rt().podSandboxStatus({ podSandboxId: podId })).status!;
    assert.equal(st.runtimeHandler, "runc");
  });

  test("CreateContainer takes image.image as an id, a bare id, a short id, a name or a digest reference, without user_specified_image", async () => {
    const forms = [imageId, imageId.slice(7), imageId.slice(7, 19), env.images!.busybox, repoDigest];
    for (const image of forms) {
      const id = await run(image);
      const st = (await rt().containerStatus({ containerId: id })).status!;
      assert.equal(st.state, ContainerState.CONTAINER_RUNNING, image);
      assert.equal(st.imageId, imageId, `${image}: image_id`);
      assert.equal(st.image!.image, image, `${image}: the image as the kubelet named it`);
      await remove(id);
    }
  });

  test("ImageStatus and ListImages take an ImageSpec with only image, as an id or a name", async () => {
    for (const image of [imageId, env.images!.busybox, repoDigest]) {
      const st = await env.b.client.image.imageStatus({ image: { image } });
      assert.equal(st.image?.id, imageId, image);
    }
    const listed = await env.b.client.image.listImages({ filter: { image: { image: env.images!.busybox } } });
    assert.deepEqual(listed.images.map((i) => i.id), [imageId]);
  });

  test("deprecated apparmor_profile and seccomp_profile_path strings still apply", async () => {
    const confined = await run(imageId, { linux: { securityContext: { apparmorProfile: "runtime/default", seccompProfilePath: "runtime/default" } } });
    const open = await run(imageId, { linux: { securityContext: { apparmorProfile: "unconfined", seccompProfilePath: "unconfined" } } });
    assert.equal(await sh(confined, "grep ^Seccomp: /proc/self/status | tr -dc 0-9"), "2");
    assert.equal(await sh(open, "grep ^Seccomp: /proc/self/status | tr -dc 0-9"), "0");
    await remove(confined);
    await remove(open);
  });

  test("resources as kubelet 1.24 sends them (no unified, hugepage_limits or swap), and UpdateContainerResources in that shape", async () => {
    const resources = { cpuPeriod: 100000n, cpuQuota: 50000n, cpuShares: 512n, memoryLimitInBytes: 64n << 20n, oomScoreAdj: 900n };
    const id = await run(imageId, { linux: { resources } });
    assert.equal(await sh(id, "cat /proc/self/oom_score_adj"), "900");
    await rt().updateContainerResources({ containerId: id, linux: { ...resources, memoryLimitInBytes: 128n << 20n } });
    const st = (await rt().containerStatus({ containerId: id })).status!;
    assert.equal(st.resources?.linux?.memoryLimitInBytes, 128n << 20n);
    await remove(id);
  });

  test("no supplemental_groups_policy keeps the image's groups (Merge)", async () => {
    const id = await run(imageId, { linux: { securityContext: { runAsUser: { value: 1000n } } } });
    assert.match(await sh(id, "id -G"), /\b5000\b/);
    await remove(id);
  });
});

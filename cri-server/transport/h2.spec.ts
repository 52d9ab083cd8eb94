import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { GRPC_RESPONSE_HEADERS, frameHeader, headerBlock, requestHeaderProblem } from "./h2.ts";
import { HpackDecoder } from "./hpack.ts";

const ok = [[":method", "POST"], [":scheme", "http"], [":path", "/runtime.v1.RuntimeService/Version"], [":authority", "/run/berth/berth.sock"], ["content-type", "application/grpc"], ["te", "trailers"]] as const;
const fields = (list: readonly (readonly [string, string])[]) => list.map(([name, value]) => ({ name, value }));

describe("requestHeaderProblem (RFC 9113 8.2-8.3)", () => {
  test("a gRPC request, with any :authority (grpc-go < 1.58 sends the socket path), passes", () => {
    assert.equal(requestHeaderProblem(fields(ok)), undefined);
  });
  test("each malformed list is named", () => {
    const cases: [string, (readonly [string, string])[], RegExp][] = [
      ["uppercase name", [...ok, ["X-Upper", "1"]], /X-Upper.*lowercase/],
      ["space in a name", [...ok, ["x y", "1"]], /lowercase token/],
      ["colon inside a name", [...ok, ["x:y", "1"]], /lowercase token/],
      ["empty name", [...ok, ["", "1"]], /empty header name/],
      ["CR in a value", [...ok, ["x", "a\rb"]], /NUL, CR or LF/],
      ["pseudo after regular", [ok[0], ok[1], ok[2], ["content-type", "application/grpc"], [":authority", "x"]], /after a regular/],
      ["unknown pseudo", [...ok.slice(0, 3), [":status", "200"]], /not a request pseudo-header/],
      ["pseudo twice", [ok[0], ok[0], ok[1], ok[2]], /:method twice/],
      ["no :path", [ok[0], ok[1]], /no :path/],
      ["no :method", [ok[1], ok[2]], /no :method/],
      ["connection header", [...ok, ["connection", "close"]], /connection-specific header connection/],
      ["transfer-encoding", [...ok, ["transfer-encoding", "chunked"]], /connection-specific/],
      ["te other than trailers", [...ok.slice(0, 5), ["te", "gzip"]], /only "trailers"/],
    ];
    for (const [what, list, re] of cases) assert.match(requestHeaderProblem(fields(list)) ?? "(none)", re, what);
  });
});

describe("what berth sends", () => {
  test("response header blocks decode to what was meant, with no dynamic table entry", () => {
    const d = new HpackDecoder({ maxTableSize: 4096, maxHeaderListSize: 1 << 20 });
    assert.deepEqual(d.decode(GRPC_RESPONSE_HEADERS).fields.map((f) => [f.name, f.value]), [[":status", "200"], ["content-type", "application/grpc"]]);
    const t = d.decode(headerBlock([["grpc-status", "3"], ["grpc-message", "bad%20field"]]));
    assert.deepEqual(t.fields.map((f) => [f.name, f.value]), [["grpc-status", "3"], ["grpc-message", "bad%20field"]]);
    assert.deepEqual(d.dynamicEntries(), []);
  });
  test("frame headers: 24-bit length, type, flags, 31-bit stream id", () => {
    assert.equal(frameHeader(0x123456, 1, 0x25, 0x80000003).toString("hex"), "123456012500000003");
  });
});

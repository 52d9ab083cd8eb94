// The headers a registry request carries across a redirect.
import { test } from "node:test";
import assert from "node:assert/strict";
import { redirectHeaders } from "./http.ts";

const h = { authorization: "Bearer t", "x-mirror": "m", range: "bytes=10-", "user-agent": "berth/0.1" };

test("a redirect within the origin keeps every header", () => {
  assert.deepEqual(redirectHeaders(new URL("https://r.test/v2/a"), new URL("https://r.test/other"), h, ["x-mirror"], []), h);
});

test("a redirect to another origin drops authorization and the host's headers, and keeps the request's own", () => {
  assert.deepEqual(redirectHeaders(new URL("https://r.test/v2/a"), new URL("https://s3.test/b"), h, ["x-mirror", "range"], ["range"]),
    { range: "bytes=10-", "user-agent": "berth/0.1" });
  // another port or scheme is another origin
  assert.deepEqual(Object.keys(redirectHeaders(new URL("https://r.test/a"), new URL("http://r.test/a"), h, [], [])), ["x-mirror", "range", "user-agent"]);
  assert.deepEqual(Object.keys(redirectHeaders(new URL("https://r.test/a"), new URL("https://r.test:444/a"), h, [], [])), ["x-mirror", "range", "user-agent"]);
});

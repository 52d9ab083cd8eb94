import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseImageUser } from "./user.ts";

describe("parseImageUser", () => {
  it("splits uid and username forms", () => {
    assert.deepEqual(parseImageUser("1002"), { uid: 1002, username: "" });
    assert.deepEqual(parseImageUser("www-data"), { username: "www-data" });
    assert.deepEqual(parseImageUser("1003:users"), { uid: 1003, username: "" });
    assert.deepEqual(parseImageUser("www-data:group"), { username: "www-data" });
    assert.deepEqual(parseImageUser(""), { username: "" });
    assert.deepEqual(parseImageUser(undefined), { username: "" });
    assert.deepEqual(parseImageUser("0"), { uid: 0, username: "" });
  });
});

import { afterEach, test } from "node:test";
import assert from "node:assert/strict";
import { BerthError, Code, codeName } from "../oci-runtime/foundation/errdefs.ts";
import { createLogger, setLogLevel } from "../oci-runtime/foundation/log.ts";
import { instrument } from "./instrument.ts";

const capture = () => {
  const lines: Record<string, unknown>[] = [];
  return { lines, log: createLogger({}, (l) => lines.push(JSON.parse(l) as Record<string, unknown>)) };
};

afterEach(() => setLogLevel("info"));

test("codeName names every gRPC code, and an unknown one by number", () => {
  for (const [name, v] of Object.entries(Code)) assert.equal(codeName(v), name);
  assert.equal(codeName(17), "CODE_17");
  assert.equal(codeName(-1), "CODE_-1");
});

test("a logger says which levels it writes", () => {
  const { log } = capture();
  assert.equal(log.enabled("debug"), false);
  assert.equal(log.enabled("info"), true);
  setLogLevel("debug");
  assert.equal(log.enabled("debug"), true);
  setLogLevel("error");
  assert.equal(log.enabled("warn"), false);
  assert.equal(log.child({ a: 1 }).enabled("error"), true);
});

test("a changing RPC is logged at info: id, method, duration and code", async () => {
  const { lines, log } = capture();
  const out = await instrument(log, "/runtime.v1.RuntimeService/RunPodSandbox", "abc", async () => 7);
  assert.deepEqual(out, { value: 7 });
  assert.equal(lines.length, 1);
  assert.deepEqual({ ...lines[0], time: undefined, duration_ms: undefined }, { time: undefined, level: "info", msg: "rpc", id: "abc", method: "RunPodSandbox", duration_ms: undefined, code: "OK" });
  assert.equal(typeof lines[0]!["duration_ms"], "number");
});

test("a polling RPC that succeeds is logged only when debug lines are written; one that fails at info", async () => {
  const { lines, log } = capture();
  await instrument(log, "/runtime.v1.RuntimeService/ListContainers", "q1", async () => 1);
  assert.equal(lines.length, 0);
  setLogLevel("debug");
  await instrument(log, "/runtime.v1.RuntimeService/ListContainers", "q2", async () => 1);
  assert.equal(lines.length, 1);
  assert.equal(lines[0]!["level"], "debug");
  assert.equal(lines[0]!["id"], "q2");
  setLogLevel("info");
  const failed = await instrument(log, "/runtime.v1.RuntimeService/ContainerStatus", "q3", async () => { throw new BerthError(Code.NOT_FOUND, "container x not found"); });
  assert.deepEqual(failed, { error: { code: Code.NOT_FOUND, message: "container x not found" } });
  assert.equal(lines.length, 2);
  assert.equal(lines[1]!["level"], "info");
  assert.equal(lines[1]!["code"], "NOT_FOUND");
  assert.equal(lines[1]!["error"], "container x not found");
});

test("an unexpected failure is INTERNAL to the client, naming the request; the error is logged", async () => {
  const { lines, log } = capture();
  const out = await instrument(log, "/runtime.v1.RuntimeService/StartContainer", "r9", async () => { throw new Error("secret detail"); });
  assert.equal(out.error?.code, Code.INTERNAL);
  assert.ok(!out.error!.message.includes("secret detail"), out.error!.message);
  assert.ok(out.error!.message.includes("r9"), out.error!.message);
  assert.ok(lines.some((l) => l["level"] === "error" && JSON.stringify(l).includes("secret detail")));
  assert.ok(lines.some((l) => l["msg"] === "rpc" && l["code"] === "INTERNAL"));
});

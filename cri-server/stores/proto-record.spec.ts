// Persisted records must outlive CRI proto changes. The fixtures in testdata/ were written by
// berth on 2026-11-30 (storeMessage); they must be read the same by today's code and by code
// built against a changed proto: KeyValue.value back to string (it became bytes in cri-api
// v0.36.2), Signal values without their SIGNAL_ prefix (renamed in v0.37), a renamed enum and
// a renamed field. protobuf JSON (the format before) does not survive such changes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { clone, createFileRegistry, equals } from "@bufbuild/protobuf";
import { FieldDescriptorProto_Type, FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import {
  ContainerConfigSchema, LinuxContainerResourcesSchema, MountPropagation, NamespaceMode, Signal, file_runtime_v1_api,
} from "../../proto/gen/runtime/v1/api_pb.js";
import { loadMessage, storeMessage } from "./proto-record.ts";

const fixture = (name: string) => JSON.parse(readFileSync(new URL(`./testdata/${name}`, import.meta.url), "utf8")) as Record<string, unknown>;

/** The runtime.v1 descriptors as a changed cri-api would generate them. */
function changedProto() {
  const fdp = clone(FileDescriptorProtoSchema, file_runtime_v1_api.proto);
  const msg = (n: string) => fdp.messageType.find((m) => m.name === n)!;
  const en = (n: string) => fdp.enumType.find((e) => e.name === n)!;
  msg("KeyValue").field.find((f) => f.name === "value")!.type = FieldDescriptorProto_Type.STRING;
  for (const v of en("Signal").value) v.name = v.name.replace(/^SIGNAL_/, "");
  for (const v of en("MountPropagation").value) v.name = `MOUNT_${v.name}`;
  for (const v of en("NamespaceMode").value) v.name = `NAMESPACE_MODE_${v.name}`;
  const command = msg("ContainerConfig").field.find((f) => f.name === "command")!;
  command.name = "entrypoint";
  command.jsonName = "entrypoint";
  const reg = createFileRegistry(fdp, () => undefined);
  return { reg, containerConfig: reg.getMessage("runtime.v1.ContainerConfig")!, podConfig: reg.getMessage("runtime.v1.PodSandboxConfig")! };
}

test("a container record written today is read by today's code", () => {
  const rec = fixture("container-record.json");
  const cfg = loadMessage(ContainerConfigSchema, rec["config"], "fixture");
  assert.deepEqual(cfg.command, ["/bin/app"]);
  assert.equal(new TextDecoder().decode(cfg.envs[0]!.value), "värde ✓");
  assert.equal(cfg.stopSignal, Signal.SIGTERM);
  assert.equal(cfg.mounts[0]!.propagation, MountPropagation.PROPAGATION_BIDIRECTIONAL);
  assert.equal(cfg.linux!.securityContext!.namespaceOptions!.pid, NamespaceMode.CONTAINER);
  assert.equal(cfg.CDIDevices[0]!.name, "vendor.example/gpu=0");
  assert.equal(loadMessage(LinuxContainerResourcesSchema, rec["resources"], "fixture").memoryLimitInBytes, 268435456n);
  assert.equal(rec["stopSignal"], "SIGTERM", "berth's own fields hold signal names, not proto enum names");
  // Records from before (protobuf JSON) still load, to the same message.
  const old = loadMessage(ContainerConfigSchema, fixture("container-record-protojson.json")["config"], "fixture");
  assert.ok(equals(ContainerConfigSchema, cfg, old));
  // And storing is stable: the same message gives the same record text.
  assert.deepEqual(storeMessage(ContainerConfigSchema, cfg), rec["config"]);
});

test("the same records are read by code built against a changed proto", () => {
  const { reg, containerConfig, podConfig } = changedProto();
  const rec = fixture("container-record.json");
  const cfg = loadMessage(containerConfig, rec["config"], "fixture") as unknown as {
    entrypoint: string[]; args: string[]; envs: { key: string; value: string }[]; stopSignal: number;
    mounts: { propagation: number }[]; labels: Record<string, string>; linux: { securityContext: { namespaceOptions: { pid: number } } };
  };
  assert.deepEqual(cfg.entrypoint, ["/bin/app"], "a renamed field keeps its number");
  assert.deepEqual(cfg.args, ["--flag", "x"]);
  assert.deepEqual(cfg.envs.map((e) => [e.key, e.value]), [["GREETING", "värde ✓"], ["EMPTY", ""]], "bytes read as string");
  const name = (e: string, n: number) => reg.getEnum(`runtime.v1.${e}`)!.values.find((v) => v.number === n)!.name;
  assert.equal(name("Signal", cfg.stopSignal), "SIGTERM");
  assert.equal(name("MountPropagation", cfg.mounts[0]!.propagation), "MOUNT_PROPAGATION_BIDIRECTIONAL");
  assert.equal(name("NamespaceMode", cfg.linux.securityContext.namespaceOptions.pid), "NAMESPACE_MODE_CONTAINER");
  assert.deepEqual(cfg.labels, { app: "demo" });
  const pod = loadMessage(podConfig, fixture("sandbox-config.json")["config"], "fixture") as unknown as {
    metadata: { name: string; uid: string }; linux: { securityContext: { namespaceOptions: { network: number } }; sysctls: Record<string, string> };
  };
  assert.deepEqual([pod.metadata.name, pod.metadata.uid], ["p", "u1"]);
  assert.equal(name("NamespaceMode", pod.linux.securityContext.namespaceOptions.network), "NAMESPACE_MODE_NODE");
  assert.deepEqual(pod.linux.sysctls, { "net.ipv4.ip_forward": "1" });
});

test("protobuf JSON, the format before, does not survive the change (why records moved off it)", () => {
  const { containerConfig } = changedProto();
  // Read leniently (unknown names ignored), an old JSON record silently loses or garbles data.
  const old = loadMessage(containerConfig, fixture("container-record-protojson.json")["config"], "old record") as unknown as {
    entrypoint: string[]; envs: { value: string }[]; stopSignal: number; mounts: { propagation: number }[];
  };
  assert.deepEqual(old.entrypoint, [], "the command is lost with its JSON name");
  assert.notEqual(old.envs[0]!.value, "värde ✓", "the env value is base64 text, not the value");
  assert.equal(old.stopSignal, 0, "the stop signal is lost with its enum name");
  assert.equal(old.mounts[0]!.propagation, 0, "so is the mount propagation");
});

test("a damaged record is INTERNAL naming it", () => {
  assert.throws(() => loadMessage(ContainerConfigSchema, { pb: "!!notbase64-and-not-proto\u0000" }, "container x"), /container x: cannot read/);
  assert.throws(() => loadMessage(ContainerConfigSchema, { pb: "A".repeat(30 << 20) }, "container y"), /container y: .*larger than/);
});

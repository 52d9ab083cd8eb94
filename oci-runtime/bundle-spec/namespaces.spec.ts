import { test } from "node:test";
import assert from "node:assert/strict";
import { BerthError, Code } from "../foundation/errdefs.ts";
import { containerNamespaces } from "./namespaces.ts";

test("POD mode joins the pinned netns and the infra's ipc, uts and pid", () => {
  assert.deepEqual(containerNamespaces({ infraPid: 42, netnsPath: "/run/netns/p" }), [
    { type: "mount" },
    { type: "network", path: "/run/netns/p" },
    { type: "ipc", path: "/proc/42/ns/ipc" },
    { type: "uts", path: "/proc/42/ns/uts" },
    { type: "pid", path: "/proc/42/ns/pid" },
  ]);
});

test("NODE modes leave the namespace out; CONTAINER pid is new", () => {
  const ns = containerNamespaces({ infraPid: 42, network: "NODE", ipc: 2, uts: "NODE", pid: "CONTAINER" });
  assert.deepEqual(ns, [{ type: "mount" }, { type: "pid" }]);
  assert.deepEqual(containerNamespaces({ infraPid: 1, network: 2, ipc: 2, uts: 2, pid: 2 }), [{ type: "mount" }]);
});

test("TARGET joins the target's pid namespace and needs its pid", () => {
  const ns = containerNamespaces({ infraPid: 42, netnsPath: "/n", pid: "TARGET", targetPid: 77 });
  assert.deepEqual(ns.find((n) => n.type === "pid"), { type: "pid", path: "/proc/77/ns/pid" });
  assert.throws(() => containerNamespaces({ infraPid: 42, pid: 3 }), (e) => e instanceof BerthError && e.code === Code.INVALID_ARGUMENT);
});

test("the network falls back to the infra's netns and a cgroup namespace can be added", () => {
  const ns = containerNamespaces({ infraPid: 9, cgroupNamespace: true });
  assert.deepEqual(ns.find((n) => n.type === "network"), { type: "network", path: "/proc/9/ns/net" });
  assert.deepEqual(ns.at(-1), { type: "cgroup" });
});

test("a pod user namespace is joined first, before the namespaces it owns", () => {
  const ns = containerNamespaces({ infraPid: 42, netnsPath: "/n", usernsPath: "/s/userns/pods/p/user" });
  assert.deepEqual(ns[0], { type: "user", path: "/s/userns/pods/p/user" });
  assert.deepEqual(ns[1], { type: "mount" });
  assert.equal(containerNamespaces({ infraPid: 42 }).some((n) => n.type === "user"), false);
});

test("a pod without an infra process: its pinned ipc and uts, a pid namespace of the container's own; pid POD is refused", () => {
  const ns = containerNamespaces({ infraPid: 0, netnsPath: "/n", ipcPath: "/p/ns/ipc", utsPath: "/p/ns/uts", pid: "CONTAINER" });
  assert.deepEqual(ns, [
    { type: "mount" },
    { type: "network", path: "/n" },
    { type: "ipc", path: "/p/ns/ipc" },
    { type: "uts", path: "/p/ns/uts" },
    { type: "pid" },
  ]);
  assert.throws(() => containerNamespaces({ infraPid: 0, netnsPath: "/n", ipcPath: "/p/ns/ipc", utsPath: "/p/ns/uts", pid: "POD" }),
    (e) => e instanceof BerthError && e.code === Code.INVALID_ARGUMENT && /pid namespace mode POD: the pod shares no PID namespace/.test(e.message));
  // No pin and no infra: nothing to join is refused, never a /proc/0 path.
  assert.throws(() => containerNamespaces({ infraPid: 0, netnsPath: "/n", utsPath: "/p/ns/uts", pid: "CONTAINER" }),
    (e) => e instanceof BerthError && e.code === Code.FAILED_PRECONDITION && /pinned ipc namespace/.test(e.message));
  // Pins win over an infra pid (a record has one or the other; the pin is what was made).
  assert.deepEqual(containerNamespaces({ infraPid: 42, ipcPath: "/p/ns/ipc", utsPath: "/p/ns/uts", netnsPath: "/n", pid: "CONTAINER" }).find((x) => x.type === "ipc"), { type: "ipc", path: "/p/ns/ipc" });
});

// /proc/<pid>/net/dev shows the counters of the process's network namespace:
// traffic over loopback inside a fresh netns moves them. Runs as root.

import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { after, it } from "node:test";
import { promisify } from "node:util";
import { readNetDev } from "./net-dev.ts";
import { killAndWait } from "../../conformance/lib/procs.ts";

const run = promisify(execFile);
const BUSYBOX = "/usr/bin/busybox";
let holder: ReturnType<typeof spawn> | undefined;

after(async () => {
  await killAndWait(holder);
});

it("loopback counters of a process in its own netns grow after traffic", async () => {
  // unshare without --fork execs the command itself, so this pid lives in the new netns.
  holder = spawn("unshare", ["--net", BUSYBOX, "sleep", "300"], { stdio: "ignore" });
  await new Promise((resolve, reject) => { holder!.once("spawn", resolve); holder!.once("error", reject); });
  const pid = holder.pid!;
  const lo = async () => {
    for (let i = 0; i < 100; i++) {
      const found = (await readNetDev(pid)).find((x) => x.name === "lo");
      // until unshare has exec'd, /proc/<pid>/net/dev still shows the host's netns
      const ns = await run("readlink", [`/proc/${pid}/ns/net`]);
      const self = await run("readlink", ["/proc/self/ns/net"]);
      if (found && ns.stdout !== self.stdout) return found;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`process ${pid} never entered its own netns`);
  };
  const before = await lo();
  assert.equal(before.rxBytes, 0n, "fresh netns loopback starts at zero");
  await run("nsenter", ["-t", String(pid), "-n", BUSYBOX, "sh", "-c", `${BUSYBOX} ip link set lo up && ${BUSYBOX} ping -c 3 -i 0.2 -W 1 127.0.0.1`]);
  const afterTraffic = await lo();
  assert.ok(afterTraffic.rxBytes > before.rxBytes, `rx ${afterTraffic.rxBytes} grew`);
  assert.ok(afterTraffic.txBytes > before.txBytes, `tx ${afterTraffic.txBytes} grew`);
  assert.ok(afterTraffic.rxPackets >= 6n);
});

// Integration-test fixture: a private CNI setup (conf dir, state dir, bridge
// name, /24 subnet, host-local lease dir) under a fresh temp dir, plus leak
// probes and a cleanup that removes everything the test's pods could have
// left: pinned netns, the bridge, tagged nat rules, the temp dir.

import { mkdtemp, readdir, rm, writeFile, chmod, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { listNetns, removeNetns, unmountNetnsDir } from "../../cri-server/network/netns.ts";
import { sweepTaggedRules } from "../../cri-server/network/iptables-sweep.ts";
import { runCommand } from "../../oci-runtime/foundation/run-command.ts";
import type { TestConflistOptions } from "./test-conflist.ts";
import { randomBridgeName, randomSubnet24, writeTestConflist } from "./test-conflist.ts";

export const SYSTEM_CNI_BIN = "/usr/lib/cni";

export interface TestNetwork {
  dir: string;
  stateDir: string;
  confDir: string;
  /** [test bin dir (for script plugins), /usr/lib/cni]. */
  binDirs: string[];
  testBinDir: string;
  bridge: string;
  subnet: string;
  gateway: string;
  ipamDataDir: string;
  networkName: string;
  /** Rewrites the conflist (same bridge, subnet, lease dir, network name) with changes. */
  writeConflist(extra?: Partial<TestConflistOptions>): Promise<string>;
  /** Writes an executable script plugin into the test bin dir. */
  writePlugin(name: string, script: string): Promise<void>;
  /** Leased IPs (host-local files named after IPs). */
  leases(): Promise<string[]>;
  /** Interfaces enslaved to the test bridge (pod veths). */
  bridgePorts(): Promise<string[]>;
  /** nat rules mentioning the test network. */
  natRules(): Promise<string[]>;
  cleanup(): Promise<void>;
}

export async function createTestNetwork(prefix = "berth-cni-it-"): Promise<TestNetwork> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const bridge = randomBridgeName();
  const { subnet, gateway } = randomSubnet24();
  const networkName = `${bridge}-net`;
  const testBinDir = join(dir, "bin");
  await mkdir(testBinDir);
  const net: TestNetwork = {
    dir,
    stateDir: join(dir, "state"),
    confDir: join(dir, "conf"),
    binDirs: [testBinDir, SYSTEM_CNI_BIN],
    testBinDir,
    bridge, subnet, gateway,
    ipamDataDir: join(dir, "ipam"),
    networkName,
    writeConflist: (extra = {}) => writeTestConflist({ confDir: net.confDir, bridge, subnet, ipamDataDir: net.ipamDataDir, name: networkName, ...extra }),
    async writePlugin(name, script) {
      const p = join(testBinDir, name);
      await writeFile(p, script);
      await chmod(p, 0o755);
    },
    async leases() {
      try {
        return (await readdir(join(net.ipamDataDir, networkName))).filter((n) => n !== "lock" && !n.startsWith("last_reserved_ip") && !n.startsWith("."));
      } catch {
        return [];
      }
    },
    async bridgePorts() {
      const r = await runCommand("ip", ["-o", "link", "show", "master", bridge]);
      if (r.code !== 0) return [];
      return r.stdout.split("\n").filter(Boolean).map((l) => l.split(": ")[1]!.split("@")[0]!);
    },
    async natRules() {
      const r = await runCommand("iptables", ["-w", "-t", "nat", "-S"]);
      return r.stdout.split("\n").filter((l) => l.includes(networkName));
    },
    async cleanup() {
      for (const p of await listNetns(net.stateDir)) await removeNetns(p).catch(() => {});
      await unmountNetnsDir(net.stateDir).catch(() => {});
      await sweepTaggedRules(`name: "${networkName}"`).catch(() => {});
      await runCommand("ip", ["link", "del", bridge]);
      await rm(dir, { recursive: true, force: true });
    },
  };
  await net.writeConflist();
  return net;
}

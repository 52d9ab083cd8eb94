// Test helper: writes a bridge + host-local + portmap (+ loopback) conflist
// with a given bridge name and subnet into a conf dir of its own, so tests
// do not depend on /etc/cni. Also picks random bridge names and subnets so
// concurrent test runs do not collide.

import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { randomBytes, randomInt } from "node:crypto";

export interface TestConflistOptions {
  /** Directory to write into (created). */
  confDir: string;
  bridge: string;
  /** IPv4 subnet, e.g. "10.123.45.0/24". */
  subnet: string;
  /** host-local dataDir (lease files); put it under the test's temp dir. */
  ipamDataDir: string;
  name?: string;
  cniVersion?: string;
  fileName?: string;
  /** Leave the portmap plugin out. */
  noPortmap?: boolean;
  /** Plugin objects appended after the standard chain (e.g. a failing test plugin). */
  extraPlugins?: Record<string, unknown>[];
}

export function testConflist(o: Omit<TestConflistOptions, "confDir" | "fileName">): Record<string, unknown> {
  const plugins: Record<string, unknown>[] = [
    {
      type: "bridge",
      bridge: o.bridge,
      isGateway: true,
      ipMasq: true,
      hairpinMode: true,
      ipam: {
        type: "host-local",
        dataDir: o.ipamDataDir,
        ranges: [[{ subnet: o.subnet }]],
        routes: [{ dst: "0.0.0.0/0" }],
      },
    },
  ];
  if (!o.noPortmap) plugins.push({ type: "portmap", capabilities: { portMappings: true }, snat: true });
  plugins.push(...(o.extraPlugins ?? []));
  return { cniVersion: o.cniVersion ?? "1.0.0", name: o.name ?? `${o.bridge}-net`, plugins };
}

/** Writes the conflist and returns its path. */
export async function writeTestConflist(o: TestConflistOptions): Promise<string> {
  await mkdir(o.confDir, { recursive: true });
  const path = join(o.confDir, o.fileName ?? "10-test.conflist");
  await writeFile(path, JSON.stringify(testConflist(o), null, 2) + "\n");
  return path;
}

/** A bridge name "bt" + 8 hex chars (within IFNAMSIZ). */
export const randomBridgeName = () => `bt${randomBytes(4).toString("hex")}`;

/** A random 10.x.y.0/24 in 10.128.0.0-10.253.255.0, away from the default 10.88.0.0/16. */
export function randomSubnet24(): { subnet: string; gateway: string; prefix: string } {
  const a = randomInt(128, 254);
  const b = randomInt(0, 256);
  return { subnet: `10.${a}.${b}.0/24`, gateway: `10.${a}.${b}.1`, prefix: `10.${a}.${b}.` };
}

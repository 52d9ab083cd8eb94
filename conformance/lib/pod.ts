// Helpers for conformance tests that run pods: a berthd with a private CNI network.
import { randomBytes } from "node:crypto";
import { createTestNetwork, type TestNetwork } from "./test-network.ts";
import { startBerthd, type Berthd, type BerthdOptions } from "./berthd.ts";
import { startTestImages, type TestImages } from "./images.ts";

export interface PodEnv {
  b: Berthd;
  net: TestNetwork;
  images?: TestImages;
  cleanup(): Promise<void>;
}

/** A berthd whose CNI config is a fresh bridge network (unique bridge and /24) for this test file. */
export async function startPodEnv(opts: BerthdOptions & { images?: boolean } = {}): Promise<PodEnv> {
  const net = await createTestNetwork("berth-conf-");
  await net.writeConflist();
  const images = opts.images ? await startTestImages() : undefined;
  const registry = images ? `[registry]\nconfig_path = "${images.hostsDir}"\n` : "";
  const toml = `${registry}[cni]\nconf_dir = "${net.confDir}"\nbin_dirs = ${JSON.stringify(net.binDirs)}\n${opts.toml ?? ""}`;
  const b = await startBerthd({ ...opts, toml });
  return {
    b, net, ...(images ? { images } : {}),
    async cleanup() {
      try {
        const pods = await b.client.runtime.listPodSandbox({});
        for (const p of pods.items) await b.client.runtime.removePodSandbox({ podSandboxId: p.id }).catch(() => {});
      } catch { /* berthd may be down */ }
      await b.cleanup();
      await net.cleanup();
      await images?.stop();
    },
  };
}

/** A minimal valid PodSandboxConfig with unique metadata. */
export function podConfig(over: Record<string, unknown> = {}) {
  const uid = randomBytes(8).toString("hex");
  return {
    metadata: { name: `pod-${uid.slice(0, 6)}`, namespace: "conformance", uid, attempt: 0 },
    hostname: `pod-${uid.slice(0, 6)}`,
    logDirectory: "",
    labels: { app: "conformance" },
    annotations: { "berth.test/uid": uid },
    linux: {},
    ...over,
  };
}

// Helpers for conformance tests that run pods: a berthd with a private CNI network.
import { randomBytes } from "node:crypto";
import { NamespaceMode } from "../../proto/gen/runtime/v1/api_pb.js";
import { createTestNetwork, type TestNetwork } from "./test-network.ts";
import { startBerthd, type Berthd, type BerthdOptions } from "./berthd.ts";
import { startTestImages, type TestImages } from "./images.ts";
import type { CriClient } from "./cri-client.ts";

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

/**
 * A minimal valid PodSandboxConfig with unique metadata, shaped like kubelet's ordinary pod: pid
 * namespace mode CONTAINER (kubelet sends POD only for shareProcessNamespace), so berth runs it
 * without an infra process. A `linux.security_context.namespace_options` given without `pid` gets
 * CONTAINER too; pass `pid: NamespaceMode.POD` for a pod with a shared PID namespace (and infra).
 */
export function podConfig(over: Record<string, unknown> = {}) {
  const uid = randomBytes(8).toString("hex");
  const cfg = {
    metadata: { name: `pod-${uid.slice(0, 6)}`, namespace: "conformance", uid, attempt: 0 },
    hostname: `pod-${uid.slice(0, 6)}`,
    logDirectory: "",
    labels: { app: "conformance" },
    annotations: { "berth.test/uid": uid },
    linux: {} as Record<string, unknown>,
    ...over,
  };
  type Ns = Record<string, unknown>;
  const linux = (cfg.linux ?? {}) as Ns & { securityContext?: Ns & { namespaceOptions?: Ns } };
  const ns = linux.securityContext?.namespaceOptions ?? {};
  if (!("pid" in ns)) {
    cfg.linux = { ...linux, securityContext: { ...linux.securityContext, namespaceOptions: { ...ns, pid: NamespaceMode.CONTAINER } } };
  }
  return cfg;
}

/** Runs a pod (podConfig()) with one started `sleep 3600` container of `image`; answers both ids. */
export async function runSleepingPod(client: CriClient, image: string): Promise<{ podSandboxId: string; containerId: string }> {
  const config = podConfig();
  const { podSandboxId } = await client.runtime.runPodSandbox({ config });
  const { containerId } = await client.runtime.createContainer({
    podSandboxId, sandboxConfig: config,
    config: { metadata: { name: `c-${randomBytes(4).toString("hex")}`, attempt: 0 }, image: { image }, command: ["sleep", "3600"] },
  });
  await client.runtime.startContainer({ containerId });
  return { podSandboxId, containerId };
}

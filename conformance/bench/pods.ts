// Pod and container configs for the benchmarks, one-call pod start, and teardown.
import { randomUUID } from "node:crypto";
import type { CriClient } from "../lib/cri-client.ts";

/** Deadline of every CRI call the benchmark makes. */
export const CALL_TIMEOUT_MS = 60_000;
const opts = { timeoutMs: CALL_TIMEOUT_MS };

export interface PodSpec { name: string; cgroupParent: string; logDir: string }

/**
 * The pid namespace mode of the benchmark's pods and containers, as kubelet sends it for an
 * ordinary pod: CONTAINER (1); POD (0) only with shareProcessNamespace. BERTH_BENCH_POD_PID=POD
 * measures PID-sharing pods (berth then runs an infra process per pod, as before #18).
 */
export const BENCH_POD_PID = process.env.BERTH_BENCH_POD_PID === "POD" ? 0 : 1;
const namespaceOptions = () => ({ network: 0, pid: BENCH_POD_PID, ipc: 0 });

export function podConfig(p: PodSpec) {
  return {
    metadata: { name: p.name, uid: randomUUID(), namespace: "bench", attempt: 0 },
    hostname: p.name.slice(0, 63),
    logDirectory: `${p.logDir}/${p.name}`,
    labels: { "berth-bench": "1" },
    linux: { cgroupParent: p.cgroupParent, securityContext: { namespaceOptions: namespaceOptions() } },
  };
}

export function sleepContainerConfig(image: string, name = "sleep") {
  return {
    metadata: { name, attempt: 0 },
    image: { image },
    command: ["sleep", "3600"],
    logPath: `${name}.log`,
    labels: { "berth-bench": "1" },
    // As kubelet does: the container repeats its pod's namespace options.
    linux: { securityContext: { namespaceOptions: namespaceOptions() } },
  };
}

export interface StartedPod { podId: string; containerIds: string[] }

export type Step = "RunPodSandbox" | "CreateContainer" | "StartContainer";

/** Runs a pod with one sleep container; `onStep` gets each call's latency in ms. */
export async function startPod(client: CriClient, spec: PodSpec, image: string, created?: Created, onStep?: (step: Step, ms: number) => void): Promise<StartedPod> {
  const config = podConfig(spec);
  let t = performance.now();
  const { podSandboxId } = await client.runtime.runPodSandbox({ config }, opts);
  onStep?.("RunPodSandbox", performance.now() - t);
  created?.pods.add(podSandboxId);
  const pod: StartedPod = { podId: podSandboxId, containerIds: [] };
  try {
    t = performance.now();
    const { containerId } = await client.runtime.createContainer({ podSandboxId, config: sleepContainerConfig(image), sandboxConfig: config }, opts);
    onStep?.("CreateContainer", performance.now() - t);
    pod.containerIds.push(containerId);
    created?.containers.add(containerId);
    t = performance.now();
    await client.runtime.startContainer({ containerId }, opts);
    onStep?.("StartContainer", performance.now() - t);
  } catch (err) {
    (err as { pod?: StartedPod }).pod = pod;
    throw err;
  }
  return pod;
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (x: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** Ids the benchmark created, so teardown works even where listing is not implemented. */
export class Created {
  readonly pods = new Set<string>();
  readonly containers = new Set<string>();
}

/** Stops and removes every container and pod the runtime lists or `known` names (best effort); returns problems. */
export async function removeAllPods(client: CriClient, known?: Created): Promise<string[]> {
  const problems: string[] = [];
  const note = (what: string) => (err: unknown) => { problems.push(`${what}: ${(err as Error).message}`); };
  const listed = await client.runtime.listContainers({}, opts).then((r) => r.containers.map((c) => c.id), (e) => { note("ListContainers")(e); return []; });
  const containers = [...new Set([...listed, ...(known?.containers ?? [])])];
  await mapLimit(containers, 4, async (id) => {
    await client.runtime.stopContainer({ containerId: id, timeout: 0n }, opts).catch(note(`StopContainer ${id}`));
    await client.runtime.removeContainer({ containerId: id }, opts).catch(note(`RemoveContainer ${id}`));
    known?.containers.delete(id);
  });
  const listedPods = await client.runtime.listPodSandbox({}, opts).then((r) => r.items.map((p) => p.id), (e) => { note("ListPodSandbox")(e); return []; });
  const pods = [...new Set([...listedPods, ...(known?.pods ?? [])])];
  await mapLimit(pods, 4, async (id) => {
    await client.runtime.stopPodSandbox({ podSandboxId: id }, opts).catch(note(`StopPodSandbox ${id}`));
    await client.runtime.removePodSandbox({ podSandboxId: id }, opts).catch(note(`RemovePodSandbox ${id}`));
    known?.pods.delete(id);
  });
  return problems;
}

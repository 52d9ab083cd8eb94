// The shared benchmark environment: a scratch dir, a loopback docker-registry with the
// benchmark images, and a hosts.toml directory pointing at it over plain http.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startRegistry } from "../../hack/registry/registry.ts";
import { pushBenchImages } from "./images.ts";
import type { BenchEnv } from "./target.ts";

export function hostsToml(address: string): string {
  return `server = "http://${address}"\n\n[host."http://${address}"]\n  capabilities = ["pull", "resolve"]\n  skip_verify = true\n`;
}

export async function setupEnv(withBig = true): Promise<BenchEnv & { close(): Promise<void> }> {
  const workDir = await mkdtemp(join(tmpdir(), "berth-npmbench-"));
  const reg = await startRegistry({ dir: join(workDir, "registry") });
  const close = async () => {
    await reg.stop();
    await rm(workDir, { recursive: true, force: true });
  };
  try {
    const images = await pushBenchImages({ address: reg.address }, withBig);
    const hostsDir = join(workDir, "certs.d");
    await mkdir(join(hostsDir, reg.address), { recursive: true });
    await writeFile(join(hostsDir, reg.address, "hosts.toml"), hostsToml(reg.address));
    return { registry: reg.address, hostsDir, images, workDir, close };
  } catch (err) {
    await close();
    throw err;
  }
}

// Registry mirror configuration in containerd's hosts.toml layout
// (<dir>/<host>/hosts.toml) pointing upstream registries at a loopback registry.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";

/** The upstream endpoint a registry host name stands for (docker.io's API lives elsewhere). */
export const upstreamServer = (host: string) => (host === "docker.io" ? "https://registry-1.docker.io" : `https://${host}`);

/** hosts.toml text sending pulls and resolves for `host` to `mirror` ("http://127.0.0.1:PORT"). */
export function hostsToml(host: string, mirror: string): string {
  if (!/^https?:\/\/[^/\s"]+$/.test(mirror)) throw new Error(`mirror must be an http(s)://host[:port] url, got ${JSON.stringify(mirror)}`);
  return [
    `server = "${upstreamServer(host)}"`,
    "",
    `[host."${mirror}"]`,
    `  capabilities = ["pull", "resolve"]`,
    "  skip_verify = true",
    "",
  ].join("\n");
}

/** Writes <dir>/<host>/hosts.toml for every host; returns the directory for `[registry] config_path`. */
export async function writeMirrorConfig(dir: string, hosts: readonly string[], mirror: string): Promise<string> {
  for (const host of hosts) {
    await mkdir(join(dir, host), { recursive: true });
    await writeFile(join(dir, host, "hosts.toml"), hostsToml(host, mirror));
  }
  return dir;
}

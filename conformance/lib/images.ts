// Test images for the conformance suite, built from Debian's busybox-static and
// pushed to a loopback docker-registry the suite starts (never the internet).
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, writeFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildImage, layerBlob } from "../../hack/registry/oci-image.ts";
import { pushImage } from "../../hack/registry/push.ts";
import { startRegistry, type RunningRegistry } from "../../hack/registry/registry.ts";
import { buildTar, type TarFixtureEntry } from "../../hack/registry/tar-writer.ts";

const PASSWD = [
  "root:x:0:0:root:/root:/bin/sh",
  "daemon:x:1:1:daemon:/usr/sbin:/bin/false",
  "www-data:x:33:33:www-data:/var/www:/bin/false",
  "user1:x:1000:1000:user one:/home/user1:/bin/sh",
  "nobody:x:65534:65534:nobody:/nonexistent:/bin/false",
].join("\n") + "\n";

const GROUP = [
  "root:x:0:",
  "daemon:x:1:",
  "www-data:x:33:",
  "users:x:100:user1",
  "user1:x:1000:",
  "extra:x:5000:user1,www-data",
  "nogroup:x:65534:",
].join("\n") + "\n";

/** busybox-static with every applet linked into /bin, users and groups, /tmp. */
export function busyboxEntries(): TarFixtureEntry[] {
  const applets = execFileSync("/usr/bin/busybox", ["--list"], { encoding: "utf8" }).split("\n").filter((a) => a && a !== "busybox");
  return [
    { name: "bin", type: "dir", mode: 0o755 },
    { name: "bin/busybox", data: readFileSync("/usr/bin/busybox"), mode: 0o755 },
    ...applets.map((a): TarFixtureEntry => ({ name: `bin/${a}`, type: "symlink", linkname: "busybox" })),
    { name: "etc", type: "dir", mode: 0o755 },
    { name: "etc/passwd", data: PASSWD, mode: 0o644 },
    { name: "etc/group", data: GROUP, mode: 0o644 },
    { name: "tmp", type: "dir", mode: 0o1777 },
    { name: "root", type: "dir", mode: 0o700 },
    { name: "home", type: "dir", mode: 0o755 },
    { name: "home/user1", type: "dir", mode: 0o755, uid: 1000, gid: 1000 },
    { name: "var", type: "dir", mode: 0o755 },
    { name: "var/www", type: "dir", mode: 0o755, uid: 33, gid: 33 },
    { name: "usr", type: "dir", mode: 0o755 },
    { name: "usr/bin", type: "dir", mode: 0o755 },
  ];
}

export interface TestImages {
  registry: RunningRegistry;
  /** The config_path directory with a hosts.toml that lets berth pull from the registry over plain http. */
  hostsDir: string;
  busybox: string;
  /** Same as busybox with USER www-data and a StopSignal of SIGUSR1. */
  user: string;
  /** A second tag of busybox with an entrypoint and cmd. */
  entrypoint: string;
  stop(): Promise<void>;
}

export async function startTestImages(): Promise<TestImages> {
  const registry = await startRegistry();
  const target = { address: registry.address };
  const layer = layerBlob(buildTar(busyboxEntries()), "gzip");
  const env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"];
  await pushImage(target, "berth-test/busybox", "latest", buildImage([layer], { Env: env, Cmd: ["sh"] }));
  await pushImage(target, "berth-test/user", "latest", buildImage([layer], { Env: env, Cmd: ["sh"], User: "www-data", StopSignal: "SIGUSR1" }));
  await pushImage(target, "berth-test/entrypoint", "latest", buildImage([layer], { Env: [...env, "IMAGE_VAR=from-image"], Entrypoint: ["echo", "entry"], Cmd: ["cmd-default"], WorkingDir: "/tmp" }));
  const hostsDir = await mkdtemp(join(tmpdir(), "berth-hosts-"));
  await mkdir(join(hostsDir, registry.address), { recursive: true });
  await writeFile(join(hostsDir, registry.address, "hosts.toml"), `server = "http://${registry.address}"\n[host."http://${registry.address}"]\n  capabilities = ["pull", "resolve"]\n`);
  return {
    registry, hostsDir,
    busybox: `${registry.address}/berth-test/busybox:latest`,
    user: `${registry.address}/berth-test/user:latest`,
    entrypoint: `${registry.address}/berth-test/entrypoint:latest`,
    async stop() {
      await registry.stop();
      await rm(hostsDir, { recursive: true, force: true });
    },
  };
}

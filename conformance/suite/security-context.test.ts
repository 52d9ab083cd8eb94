// Security contexts over the real socket with real runc: seccomp (RuntimeDefault, Localhost in both
// JSON formats, Unconfined, the legacy path strings), capabilities, privileged, no_new_privs, masked and
// read-only paths, read-only rootfs, users and groups, and namespace options. Every assertion is about
// what the process inside the container observes.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync, readlinkSync } from "node:fs";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ContainerState, NamespaceMode, SecurityProfile_ProfileType as ProfileType, SupplementalGroupsPolicy } from "../../proto/gen/runtime/v1/api_pb.js";
import { buildImage, layerBlob } from "../../hack/registry/oci-image.ts";
import { pushImage } from "../../hack/registry/push.ts";
import { buildTar } from "../../hack/registry/tar-writer.ts";
import { codeOf, grpc } from "../lib/cri-client.ts";
import { busyboxEntries } from "../lib/images.ts";
import { podConfig, startPodEnv, type PodEnv } from "../lib/pod.ts";

type Pod = { id: string; config: ReturnType<typeof podConfig> };
type Exec = { stdout: string; stderr: string; exitCode: number };

/** containerd's default capability set as a CapEff mask. */
const DEFAULT_CAP_MASK = 0xa80425fbn;
const CAP = { NET_ADMIN: 12, NET_RAW: 13, SYS_ADMIN: 21 } as const;

const BLOCK_HOSTNAME_OCI = {
  defaultAction: "SCMP_ACT_ALLOW",
  architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
  syscalls: [{ names: ["sethostname"], action: "SCMP_ACT_ERRNO" }],
};
// Docker/containerd format: archMap, single `name`, capability includes/excludes, errnoRet.
const BLOCK_DOCKER = {
  defaultAction: "SCMP_ACT_ALLOW",
  archMap: [{ architecture: "SCMP_ARCH_X86_64", subArchitectures: ["SCMP_ARCH_X86", "SCMP_ARCH_X32"] }],
  syscalls: [
    { name: "sethostname", action: "SCMP_ACT_ERRNO", includes: { caps: ["CAP_SYS_ADMIN"] } },
    { names: ["chmod", "fchmodat", "fchmodat2"], action: "SCMP_ACT_ERRNO", errnoRet: 13, excludes: { caps: ["CAP_SYS_ADMIN"] } },
  ],
};

const capMask = (status: string, field: string): bigint => {
  const m = new RegExp(`^${field}:\\s*([0-9a-f]+)$`, "m").exec(status);
  assert.ok(m, `${field} in /proc/self/status`);
  return BigInt(`0x${m[1]}`);
};
const hasCap = (mask: bigint, bit: number) => ((mask >> BigInt(bit)) & 1n) === 1n;
const statusField = (status: string, field: string) => new RegExp(`^${field}:\\s*(.*)$`, "m").exec(status)?.[1]?.trim();

describe("security context", () => {
  let env: PodEnv;
  let busybox: string;
  let nnpImage: string | undefined;
  let nnpSkip = "";
  let dir: string;
  let pod: Pod;

  const c = () => env.b.client.runtime;

  const runPod = async (linux: Record<string, unknown> = {}, over: Record<string, unknown> = {}): Promise<Pod> => {
    const config = podConfig({ linux, ...over });
    const { podSandboxId } = await c().runPodSandbox({ config });
    return { id: podSandboxId, config };
  };

  const create = (p: Pod, opts: { sc?: Record<string, unknown>; command?: string[]; image?: string; mounts?: unknown[]; name?: string }) =>
    c().createContainer({
      podSandboxId: p.id,
      sandboxConfig: p.config,
      config: {
        metadata: { name: opts.name ?? `c-${Math.random().toString(16).slice(2, 10)}`, attempt: 0 },
        image: { image: opts.image ?? busybox },
        command: opts.command ?? ["sleep", "3600"],
        mounts: opts.mounts as never,
        linux: { securityContext: opts.sc ?? {} },
      },
    });

  /** Creates and starts a container (sleeping unless told otherwise); returns its id. */
  const start = async (p: Pod, opts: Parameters<typeof create>[1] = {}): Promise<string> => {
    const { containerId } = await create(p, opts);
    await c().startContainer({ containerId });
    return containerId;
  };

  const exec = async (id: string, cmd: string[]): Promise<Exec> => {
    const r = await c().execSync({ containerId: id, cmd, timeout: 30n });
    return { stdout: Buffer.from(r.stdout).toString(), stderr: Buffer.from(r.stderr).toString(), exitCode: r.exitCode };
  };
  const sh = (id: string, script: string) => exec(id, ["sh", "-c", script]);
  const status = async (id: string) => (await exec(id, ["cat", "/proc/self/status"])).stdout;
  const remove = (...ids: string[]) => Promise.all(ids.map((containerId) => c().removeContainer({ containerId })));

  /** Expects INVALID_ARGUMENT matching every pattern, and no new container in the pod. */
  const refused = async (p: Pod, opts: Parameters<typeof create>[1], ...patterns: RegExp[]) => {
    const before = (await c().listContainers({ filter: { podSandboxId: p.id } })).containers.length;
    await assert.rejects(create(p, opts), (e) => {
      assert.equal(codeOf(e), grpc.status.INVALID_ARGUMENT, (e as Error).message);
      for (const re of patterns) assert.match((e as Error).message, re);
      return true;
    });
    const after = (await c().listContainers({ filter: { podSandboxId: p.id } })).containers.length;
    assert.equal(after, before, "nothing was created");
  };

  const profile = async (name: string, body: unknown): Promise<string> => {
    const path = join(dir, name);
    await writeFile(path, typeof body === "string" ? body : JSON.stringify(body));
    return path;
  };

  before(async () => {
    env = await startPodEnv({ images: true });
    busybox = env.images!.busybox;
    dir = await mkdtemp(join(tmpdir(), "berth-secctx-"));
    await env.b.client.image.pullImage({ image: { image: busybox } });
    // A setuid-root program that prints its effective uid, for no_new_privs.
    const src = join(dir, "euid.c");
    await writeFile(src, '#include <stdio.h>\n#include <unistd.h>\nint main(void){printf("Effective uid: %d\\n",(int)geteuid());return 0;}\n');
    const cc = spawnSync("cc", ["-static", "-O2", "-o", join(dir, "euid"), src], { encoding: "utf8" });
    if (cc.error || cc.status !== 0) {
      nnpSkip = `cannot build a static setuid test binary with cc: ${cc.error?.message ?? cc.stderr}`;
    } else {
      const layer = layerBlob(buildTar([...busyboxEntries(), { name: "usr/bin/euid", data: readFileSync(join(dir, "euid")), mode: 0o4755, uid: 0, gid: 0 }]), "gzip");
      await pushImage({ address: env.images!.registry.address }, "berth-test/nnp", "latest", buildImage([layer], { Env: ["PATH=/usr/bin:/bin"], Cmd: ["sh"] }));
      nnpImage = `${env.images!.registry.address}/berth-test/nnp:latest`;
      await env.b.client.image.pullImage({ image: { image: nnpImage } });
    }
    pod = await runPod();
  });

  after(async () => {
    await env?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  describe("seccomp", () => {
    test("RuntimeDefault filters (Seccomp: 2) and blocks hostname without SYS_ADMIN; with SYS_ADMIN it is allowed as in containerd", async () => {
      const plain = await start(pod, { sc: { seccomp: { profileType: ProfileType.RuntimeDefault } } });
      assert.equal(statusField(await status(plain), "Seccomp"), "2");
      const r = await exec(plain, ["hostname", "blocked"]);
      assert.notEqual(r.exitCode, 0, "sethostname refused");
      assert.match(r.stderr, /not permitted/i);
      const admin = await start(pod, { sc: { seccomp: { profileType: ProfileType.RuntimeDefault }, capabilities: { addCapabilities: ["SYS_ADMIN"] } } });
      assert.equal((await exec(admin, ["hostname", "rtdefault"])).exitCode, 0, "RuntimeDefault re-allows sethostname with CAP_SYS_ADMIN");
      await remove(plain, admin);
    });

    test("RuntimeDefault refuses what no capability guards: unshare of a user namespace (allowed when unconfined)", async () => {
      const rd = await start(pod, { sc: { seccomp: { profileType: ProfileType.RuntimeDefault } } });
      const un = await start(pod, { sc: { seccomp: { profileType: ProfileType.Unconfined } } });
      const r = await exec(rd, ["unshare", "-U", "true"]);
      assert.notEqual(r.exitCode, 0);
      assert.match(r.stderr, /not permitted/i);
      const u = await exec(un, ["unshare", "-U", "true"]);
      assert.equal(u.exitCode, 0, u.stderr);
      await remove(rd, un);
    });

    test("nil profile is unconfined (no seccomp_default configured)", async () => {
      const id = await start(pod);
      assert.equal(statusField(await status(id), "Seccomp"), "0");
      await remove(id);
    });

    test("Unconfined with SYS_ADMIN may set the hostname", async () => {
      const id = await start(pod, { sc: { seccomp: { profileType: ProfileType.Unconfined }, capabilities: { addCapabilities: ["SYS_ADMIN"] } } });
      assert.equal(statusField(await status(id), "Seccomp"), "0");
      const r = await exec(id, ["sh", "-c", "hostname unconfined && hostname"]);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.stdout.trim(), "unconfined");
      await remove(id);
    });

    test("a Localhost profile (OCI format) blocks hostname even with SYS_ADMIN", async () => {
      const path = await profile("block-hostname-oci.json", BLOCK_HOSTNAME_OCI);
      const id = await start(pod, { sc: { seccomp: { profileType: ProfileType.Localhost, localhostRef: path }, capabilities: { addCapabilities: ["SYS_ADMIN"] } } });
      assert.equal(statusField(await status(id), "Seccomp"), "2");
      const r = await exec(id, ["hostname", "nope"]);
      assert.notEqual(r.exitCode, 0);
      assert.match(r.stderr, /not permitted/i);
      assert.equal((await exec(id, ["chmod", "400", "/tmp"])).exitCode, 0, "other calls are allowed");
      await remove(id);
    });

    test("a Localhost profile (Docker format) applies archMap, includes/excludes of capabilities and errnoRet", async () => {
      const path = await profile("docker.json", BLOCK_DOCKER);
      const plain = await start(pod, { sc: { seccomp: { profileType: ProfileType.Localhost, localhostRef: path } } });
      const chmod = await exec(plain, ["chmod", "400", "/tmp"]);
      assert.notEqual(chmod.exitCode, 0);
      assert.match(chmod.stderr, /permission denied/i, "errnoRet 13 is EACCES");
      const admin = await start(pod, { sc: { seccomp: { profileType: ProfileType.Localhost, localhostRef: path }, capabilities: { addCapabilities: ["SYS_ADMIN"] } } });
      assert.equal((await exec(admin, ["chmod", "400", "/tmp"])).exitCode, 0, "rule excluded with CAP_SYS_ADMIN");
      const host = await exec(admin, ["hostname", "nope"]);
      assert.notEqual(host.exitCode, 0, "rule included with CAP_SYS_ADMIN");
      assert.match(host.stderr, /not permitted/i);
      await remove(plain, admin);
    });

    test("a privileged container ignores its seccomp profile and may set the hostname", async () => {
      const path = await profile("block-hostname-priv.json", BLOCK_HOSTNAME_OCI);
      const priv = await runPod({ securityContext: { privileged: true } });
      const id = await start(priv, { sc: { privileged: true, seccomp: { profileType: ProfileType.Localhost, localhostRef: path } } });
      assert.equal(statusField(await status(id), "Seccomp"), "0");
      assert.equal((await exec(id, ["hostname", "privileged"])).exitCode, 0);
      await c().removePodSandbox({ podSandboxId: priv.id });
    });

    test("the infra process runs as the pod's run_as_user, run_as_group and supplemental_groups", async () => {
      const p = await runPod({ securityContext: { runAsUser: { value: 65534n }, runAsGroup: { value: 65534n }, supplementalGroups: [4321n], namespaceOptions: { pid: NamespaceMode.POD } } });
      const st = await c().podSandboxStatus({ podSandboxId: p.id, verbose: true });
      const infra = readFileSync(`/proc/${JSON.parse(st.info["info"]!).pid}/status`, "utf8");
      assert.match(statusField(infra, "Uid") ?? "", /^65534\s+65534\s+65534\s+65534$/);
      assert.match(statusField(infra, "Gid") ?? "", /^65534\s+65534\s+65534\s+65534$/);
      assert.equal(statusField(infra, "Groups"), "4321 65534");
      assert.equal(statusField(infra, "NoNewPrivs"), "1");
      assert.equal(capMask(infra, "CapEff"), 0n);
      const id = await start(p);
      assert.equal((await exec(id, ["id", "-u"])).stdout, "0\n", "containers keep their own user");
      await c().removePodSandbox({ podSandboxId: p.id });
    });

    test("the pod's profile applies to containers that set none, and to the infra process", async () => {
      const p = await runPod({ securityContext: { seccomp: { profileType: ProfileType.RuntimeDefault }, namespaceOptions: { pid: NamespaceMode.POD } } });
      const st = await c().podSandboxStatus({ podSandboxId: p.id, verbose: true });
      const infraPid = JSON.parse(st.info["info"]!).pid as number;
      assert.equal(statusField(readFileSync(`/proc/${infraPid}/status`, "utf8"), "Seccomp"), "2", "infra is filtered");
      const id = await start(p);
      assert.equal(statusField(await status(id), "Seccomp"), "2", "container inherits the pod's seccomp");
      await c().removePodSandbox({ podSandboxId: p.id });
    });

    test("legacy seccomp_profile_path strings", async () => {
      const path = await profile("legacy.json", BLOCK_HOSTNAME_OCI);
      const rd = await start(pod, { sc: { seccompProfilePath: "runtime/default" } });
      const dd = await start(pod, { sc: { seccompProfilePath: "docker/default" } });
      const un = await start(pod, { sc: { seccompProfilePath: "unconfined" } });
      const lh = await start(pod, { sc: { seccompProfilePath: `localhost/${path}`, capabilities: { addCapabilities: ["SYS_ADMIN"] } } });
      assert.equal(statusField(await status(rd), "Seccomp"), "2");
      assert.equal(statusField(await status(dd), "Seccomp"), "2");
      assert.equal(statusField(await status(un), "Seccomp"), "0");
      assert.notEqual((await exec(lh, ["hostname", "nope"])).exitCode, 0);
      await remove(rd, dd, un, lh);
      await refused(pod, { sc: { seccompProfilePath: path } }, /seccomp_profile_path/, new RegExp(path.replace(/[/.]/g, "\\$&")));
    });

    test("bad profiles are INVALID_ARGUMENT naming the file and field, and create nothing", async () => {
      const esc = (s: string) => new RegExp(s.replace(/[/.[\]]/g, "\\$&"));
      const badAction = await profile("bad-action.json", { defaultAction: "SCMP_ACT_FROB" });
      await refused(pod, { sc: { seccomp: { profileType: ProfileType.Localhost, localhostRef: badAction } } }, esc(badAction), /defaultAction/, /SCMP_ACT_FROB/);
      const badSyscall = await profile("bad-syscall.json", { defaultAction: "SCMP_ACT_ERRNO", syscalls: [{ names: ["read", "no_such_call"], action: "SCMP_ACT_ALLOW" }] });
      await refused(pod, { sc: { seccomp: { profileType: ProfileType.Localhost, localhostRef: badSyscall } } }, esc(badSyscall), esc("syscalls[0].names[1]"), /no_such_call/);
      const badRuleAction = await profile("bad-rule-action.json", { defaultAction: "SCMP_ACT_ERRNO", syscalls: [{ names: ["read"], action: "ALLOW" }] });
      await refused(pod, { sc: { seccomp: { profileType: ProfileType.Localhost, localhostRef: badRuleAction } } }, esc(badRuleAction), esc("syscalls[0].action"));
      const badJson = await profile("bad.json", "{ not json");
      await refused(pod, { sc: { seccomp: { profileType: ProfileType.Localhost, localhostRef: badJson } } }, esc(badJson), /json/);
      const missing = join(dir, "missing.json");
      await refused(pod, { sc: { seccomp: { profileType: ProfileType.Localhost, localhostRef: missing } } }, esc(missing), /does not exist/);
      await refused(pod, { sc: { seccomp: { profileType: ProfileType.Localhost } } }, /seccomp/, /localhost_ref/);
      await refused(pod, { sc: { seccomp: { profileType: ProfileType.Localhost, localhostRef: "relative.json" } } }, /relative\.json/, /absolute/);
    });
  });

  describe("capabilities", () => {
    test("the default set, NET_ADMIN added, NET_RAW dropped", async () => {
      const def = await start(pod);
      const add = await start(pod, { sc: { capabilities: { addCapabilities: ["NET_ADMIN"] } } });
      const drop = await start(pod, { sc: { capabilities: { dropCapabilities: ["NET_RAW"] } } });
      const d = capMask(await status(def), "CapEff");
      assert.equal(d, DEFAULT_CAP_MASK, `default CapEff ${d.toString(16)}`);
      assert.equal(capMask(await status(def), "CapBnd"), DEFAULT_CAP_MASK);
      const a = capMask(await status(add), "CapEff");
      assert.ok(hasCap(a, CAP.NET_ADMIN));
      assert.equal(a, d | (1n << 12n));
      const r = capMask(await status(drop), "CapEff");
      assert.ok(!hasCap(r, CAP.NET_RAW));
      assert.equal(r, d & ~(1n << 13n));
      // What the capabilities allow: a bridge needs NET_ADMIN, a raw socket needs NET_RAW.
      assert.equal((await exec(add, ["brctl", "addbr", "br-sc-test"])).exitCode, 0);
      assert.notEqual((await exec(def, ["brctl", "addbr", "br-sc-test2"])).exitCode, 0);
      const ping = await exec(drop, ["ping", "-c", "1", "127.0.0.1"]);
      assert.notEqual(ping.exitCode, 0);
      assert.match(ping.stderr, /permission denied/i);
      assert.equal((await exec(def, ["ping", "-c", "1", "-W", "2", "127.0.0.1"])).exitCode, 0);
      await remove(def, add, drop);
    });

    test("ALL added gives the host's bounding set; ALL dropped leaves none; ALL dropped + one added", async () => {
      const all = await start(pod, { sc: { capabilities: { addCapabilities: ["ALL"] } } });
      const none = await start(pod, { sc: { capabilities: { dropCapabilities: ["ALL"] } } });
      const one = await start(pod, { sc: { capabilities: { dropCapabilities: ["ALL"], addCapabilities: ["CAP_NET_ADMIN"] } } });
      const allBut = await start(pod, { sc: { capabilities: { addCapabilities: ["ALL"], dropCapabilities: ["NET_RAW"] } } });
      const hostBnd = capMask(readFileSync("/proc/self/status", "utf8"), "CapBnd");
      assert.equal(capMask(await status(all), "CapBnd"), hostBnd);
      assert.equal(capMask(await status(all), "CapEff"), hostBnd);
      const n = await exec(none, ["cat", "/proc/self/status"]);
      assert.equal(n.stderr, "");
      assert.match(n.stdout, /CapBnd:\s0000000000000000/);
      assert.match(n.stdout, /CapEff:\s0000000000000000/);
      assert.equal(capMask(await status(one), "CapEff"), 1n << 12n);
      assert.equal(capMask(await status(allBut), "CapEff"), hostBnd & ~(1n << 13n));
      await remove(all, none, one, allBut);
    });

    test("a non-root user keeps no effective capabilities", async () => {
      const id = await start(pod, { sc: { runAsUser: { value: 1000n } } });
      const s = await status(id);
      assert.equal(capMask(s, "CapEff"), 0n);
      assert.equal(capMask(s, "CapBnd"), DEFAULT_CAP_MASK);
      await remove(id);
    });

    test("add_ambient_capabilities keeps a capability for a non-root user", async () => {
      const id = await start(pod, { sc: { runAsUser: { value: 1000n }, capabilities: { addAmbientCapabilities: ["NET_BIND_SERVICE"] } } });
      const s = await status(id);
      assert.equal(capMask(s, "CapAmb"), 1n << 10n);
      assert.equal(capMask(s, "CapEff"), 1n << 10n);
      await remove(id);
    });

    test("an unknown capability is INVALID_ARGUMENT naming it", async () => {
      await refused(pod, { sc: { capabilities: { addCapabilities: ["NET_FROB"] } } }, /NET_FROB/, /add_capabilities/);
      await refused(pod, { sc: { capabilities: { dropCapabilities: ["CAP_NOPE"] } } }, /CAP_NOPE/, /drop_capabilities/);
    });
  });

  describe("privileged", () => {
    test("all capabilities, host devices, writable /sys, no masked or read-only paths, no seccomp", async () => {
      const priv = await runPod({ securityContext: { privileged: true } });
      const p = await start(priv, { sc: { privileged: true } });
      const n = await start(priv);
      const s = await status(p);
      assert.equal(capMask(s, "CapEff"), capMask(readFileSync("/proc/self/status", "utf8"), "CapBnd"));
      assert.equal(statusField(s, "Seccomp"), "0");
      const hostDevices = (await readdir("/dev")).length;
      const countP = Number((await sh(p, "ls /dev | wc -l")).stdout.trim());
      const countN = Number((await sh(n, "ls /dev | wc -l")).stdout.trim());
      assert.ok(countP > countN, `privileged sees more devices (${countP}) than default (${countN})`);
      assert.ok(countP > hostDevices / 2, `privileged sees most of the host's ${hostDevices} device entries (${countP})`);
      if (existsSync("/dev/loop-control")) {
        assert.equal((await exec(p, ["test", "-c", "/dev/loop-control"])).exitCode, 0);
        assert.notEqual((await exec(n, ["test", "-e", "/dev/loop-control"])).exitCode, 0);
      }
      const sysOpts = async (id: string) => (await sh(id, "awk '$5==\"/sys\" {print $6}' /proc/self/mountinfo")).stdout.trim();
      assert.match(await sysOpts(p), /^rw/);
      assert.match(await sysOpts(n), /^ro/);
      // cgroupfs: every cgroup mount under /sys/fs/cgroup is writable only when privileged.
      const cgOpts = async (id: string) => (await sh(id, "awk '$9 ~ /^cgroup2?$/ {print $6}' /proc/self/mountinfo")).stdout.trim().split("\n").filter(Boolean);
      const pc = await cgOpts(p), nc = await cgOpts(n);
      assert.ok(pc.length > 0 && pc.every((o) => o.startsWith("rw")), `privileged cgroup mounts ${pc}`);
      assert.ok(nc.length > 0 && nc.every((o) => o.startsWith("ro")), `default cgroup mounts ${nc}`);
      const mi = (await exec(p, ["cat", "/proc/self/mountinfo"])).stdout;
      assert.ok(!/ \/proc\/timer_list /.test(mi), "no masked paths");
      assert.ok(!/ \/proc\/sys /.test(mi), "no read-only paths");
      assert.equal((await exec(p, ["brctl", "addbr", "br-priv"])).exitCode, 0);
      await c().removePodSandbox({ podSandboxId: priv.id });
    });

    test("a privileged container in a non-privileged pod is refused", async () => {
      await refused(pod, { sc: { privileged: true } }, /privileged/);
    });
  });

  describe("no_new_privs and setuid", () => {
    test("NoNewPrivs shows in /proc/self/status", async () => {
      const on = await start(pod, { sc: { noNewPrivs: true } });
      const off = await start(pod);
      assert.equal(statusField(await status(on), "NoNewPrivs"), "1");
      assert.equal(statusField(await status(off), "NoNewPrivs"), "0");
      await remove(on, off);
    });

    test("a setuid-root binary gains root only without no_new_privs", async (t) => {
      if (!nnpImage) { t.skip(nnpSkip); return; }
      const on = await start(pod, { image: nnpImage, sc: { noNewPrivs: true, runAsUser: { value: 1000n } } });
      const off = await start(pod, { image: nnpImage, sc: { noNewPrivs: false, runAsUser: { value: 1000n } } });
      assert.equal((await exec(on, ["/usr/bin/euid"])).stdout, "Effective uid: 1000\n");
      assert.equal((await exec(off, ["/usr/bin/euid"])).stdout, "Effective uid: 0\n");
      await remove(on, off);
      // The container's first process too (what critest checks through the log).
      const logDir = await mkdtemp(join(dir, "logs-"));
      const p = await runPod({}, { logDirectory: logDir });
      const config = p.config;
      const firstOutput = async (name: string, noNewPrivs: boolean) => {
        const { containerId } = await c().createContainer({
          podSandboxId: p.id, sandboxConfig: config,
          config: { metadata: { name, attempt: 0 }, image: { image: nnpImage }, logPath: `${name}.log`, linux: { securityContext: { noNewPrivs, runAsUser: { value: 1000n } } }, command: ["/usr/bin/euid"] },
        });
        await c().startContainer({ containerId });
        for (let i = 0; i < 300; i++) {
          const st = await c().containerStatus({ containerId });
          if (st.status?.state === ContainerState.CONTAINER_EXITED) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        return readFileSync(join(logDir, `${name}.log`), "utf8").split("\n").filter(Boolean).map((l) => l.split(" ").slice(3).join(" ")).join("\n");
      };
      assert.equal(await firstOutput("nnp-true", true), "Effective uid: 1000");
      assert.equal(await firstOutput("nnp-false", false), "Effective uid: 0");
      await c().removePodSandbox({ podSandboxId: p.id });
    });
  });

  describe("AppArmor and SELinux", () => {
    test("without AppArmor on the host, RuntimeDefault is a no-op and a named profile is refused; SELinux options are ignored", async (t) => {
      if (existsSync("/sys/module/apparmor/parameters/enabled") && readFileSync("/sys/module/apparmor/parameters/enabled", "utf8").startsWith("Y")) {
        t.skip("AppArmor is enabled on this host");
        return;
      }
      const id = await start(pod, {
        sc: { apparmor: { profileType: ProfileType.RuntimeDefault }, selinuxOptions: { user: "system_u", role: "system_r", type: "container_t", level: "s0:c1,c2" } },
      });
      assert.equal((await exec(id, ["true"])).exitCode, 0);
      await remove(id);
      await refused(pod, { sc: { apparmor: { profileType: ProfileType.Localhost, localhostRef: "berth-test-profile" } } }, /berth-test-profile/, /apparmor is not enabled/);
      await refused(pod, { sc: { apparmorProfile: "localhost/berth-test-profile" } }, /berth-test-profile/);
    });
  });

  describe("paths", () => {
    test("default masked and read-only paths", async () => {
      const id = await start(pod);
      assert.ok(readFileSync("/proc/timer_list", "utf8").length > 0, "the host's /proc/timer_list has content");
      assert.equal((await sh(id, "wc -c < /proc/timer_list")).stdout.trim(), "0", "/proc/timer_list reads as /dev/null");
      const acpi = (await sh(id, "awk '$5==\"/proc/acpi\" {print $6, $9}' /proc/self/mountinfo")).stdout.trim();
      assert.match(acpi, /^ro\b.* tmpfs$/, `/proc/acpi is an empty read-only tmpfs (${acpi})`);
      const w = await sh(id, "echo 1 > /proc/sys/net/ipv4/ip_forward");
      assert.notEqual(w.exitCode, 0);
      assert.match(w.stderr, /read-only file system/i);
      assert.equal((await exec(id, ["touch", "/tmp/ok"])).exitCode, 0);
      await remove(id);
    });

    test("the CRI's masked_paths replace the defaults", async () => {
      const id = await start(pod, { sc: { maskedPaths: ["/etc/group"] } });
      assert.equal((await sh(id, "wc -c < /etc/group")).stdout.trim(), "0", "/etc/group is masked");
      assert.notEqual((await sh(id, "wc -c < /proc/timer_list")).stdout.trim(), "0", "/proc/timer_list is no longer masked");
      await remove(id);
      if (nnpImage) {
        // critest's check: a masked executable cannot be run.
        const m = await start(pod, { image: nnpImage, sc: { maskedPaths: ["/usr/bin/euid"] } });
        const r = await sh(m, "euid");
        assert.notEqual(r.exitCode, 0);
        assert.equal(r.stderr, "sh: euid: Permission denied\n");
        await remove(m);
      }
    });

    test("the CRI's readonly_paths replace the defaults", async () => {
      const id = await start(pod, { sc: { readonlyPaths: ["/tmp"] } });
      const r = await exec(id, ["touch", "/tmp/test"]);
      assert.notEqual(r.exitCode, 0);
      assert.equal(r.stderr, "touch: /tmp/test: Read-only file system\n");
      const mi = (await exec(id, ["cat", "/proc/self/mountinfo"])).stdout;
      assert.ok(!/ \/proc\/sys /.test(mi), "/proc/sys no longer read-only");
      await remove(id);
    });

    test("a read-only rootfs refuses writes but a volume stays writable", async () => {
      const vol = await mkdtemp(join(dir, "vol-"));
      const ro = await start(pod, { sc: { readonlyRootfs: true }, mounts: [{ containerPath: "/data", hostPath: vol }] });
      const rw = await start(pod, { sc: { readonlyRootfs: false } });
      const r = await exec(ro, ["touch", "/test.go"]);
      assert.notEqual(r.exitCode, 0);
      assert.equal(r.stderr, "touch: /test.go: Read-only file system\n");
      assert.equal((await exec(ro, ["sh", "-c", "echo hi > /data/f"])).exitCode, 0);
      assert.equal(readFileSync(join(vol, "f"), "utf8"), "hi\n");
      assert.equal((await sh(rw, "touch /test.go && [ -f /test.go ] && echo Found")).stdout, "Found\n");
      await remove(ro, rw);
    });
  });

  describe("users and groups", () => {
    const ids = async (id: string) => {
      const [u, g, G, n] = await Promise.all([["id", "-u"], ["id", "-g"], ["id", "-G"], ["id", "-un"]].map((cmd) => exec(id, cmd)));
      return { uid: u!.stdout.trim(), gid: g!.stdout.trim(), groups: G!.stdout.trim().split(" ").sort((a, b) => Number(a) - Number(b)), name: n!.stdout.trim() };
    };

    test("run_as_user: uid and the user's primary group from the image; unknown uid gets gid 0", async () => {
      const known = await start(pod, { sc: { runAsUser: { value: 1000n } } });
      const unknown = await start(pod, { sc: { runAsUser: { value: 1001n } } });
      const k = await ids(known);
      assert.deepEqual([k.uid, k.gid, k.name], ["1000", "1000", "user1"]);
      assert.equal((await ids(unknown)).uid, "1001");
      assert.equal((await ids(unknown)).gid, "0");
      const st = await c().containerStatus({ containerId: known });
      assert.equal(st.status?.user?.linux?.uid, 1000n);
      assert.equal(st.status?.user?.linux?.gid, 1000n);
      await remove(known, unknown);
    });

    test("run_as_username resolves in the image", async () => {
      const id = await start(pod, { sc: { runAsUsername: "www-data" } });
      const r = await ids(id);
      assert.deepEqual([r.uid, r.gid, r.name], ["33", "33", "www-data"]);
      assert.equal((await exec(id, ["sh", "-c", "echo $HOME"])).stdout, "/var/www\n");
      await remove(id);
      await refused(pod, { sc: { runAsUsername: "nosuchuser" } }, /nosuchuser/);
      await refused(pod, { sc: { runAsUser: { value: 33n }, runAsUsername: "www-data" } }, /run_as_user/, /run_as_username/);
      await refused(pod, { sc: { runAsUser: { value: -1n } } }, /run_as_user -1/);
    });

    test("run_as_group, and run_as_group without a user is refused", async () => {
      const id = await start(pod, { sc: { runAsUser: { value: 1001n }, runAsGroup: { value: 1002n } } });
      assert.equal((await sh(id, "echo $(id -u):$(id -g)")).stdout, "1001:1002\n");
      await remove(id);
      await refused(pod, { sc: { runAsGroup: { value: 1002n } } }, /run_as_group/);
    });

    test("supplemental_groups, policy Merge (default) adds the image's groups, Strict does not", async () => {
      const plain = await start(pod, { sc: { supplementalGroups: [1234n, 5678n] } });
      const merge = await start(pod, { sc: { runAsUser: { value: 1000n }, supplementalGroups: [1234n] } });
      const strict = await start(pod, { sc: { runAsUser: { value: 1000n }, supplementalGroups: [1234n], supplementalGroupsPolicy: SupplementalGroupsPolicy.Strict } });
      const p = await ids(plain);
      assert.ok(p.groups.includes("1234") && p.groups.includes("5678"), `groups ${p.groups}`);
      assert.deepEqual((await ids(merge)).groups, ["100", "1000", "1234", "5000"]);
      assert.deepEqual((await ids(strict)).groups, ["1000", "1234"]);
      const st = await c().containerStatus({ containerId: strict });
      assert.deepEqual([...(st.status?.user?.linux?.supplementalGroups ?? [])].sort(), [1000n, 1234n]);
      const sm = await c().containerStatus({ containerId: merge });
      assert.deepEqual([...(sm.status?.user?.linux?.supplementalGroups ?? [])].map(Number).sort((a, b) => a - b), [100, 1000, 1234, 5000]);
      await remove(plain, merge, strict);
    });

    test("Status advertises the supplementalGroupsPolicy feature", async () => {
      const st = await c().status({});
      assert.equal(st.features?.supplementalGroupsPolicy, true);
    });
  });

  describe("namespace options", () => {
    const nsOf = async (id: string, ns: string) => (await exec(id, ["readlink", `/proc/self/ns/${ns}`])).stdout.trim();
    const hostNs = (ns: string) => readlinkSync(`/proc/self/ns/${ns}`);

    test("host PID sees host processes", async () => {
      const p = await runPod({ securityContext: { namespaceOptions: { pid: NamespaceMode.NODE } } });
      const id = await start(p, { sc: { namespaceOptions: { pid: NamespaceMode.NODE } } });
      assert.equal(await nsOf(id, "pid"), hostNs("pid"));
      assert.equal((await exec(id, ["cat", "/proc/1/comm"])).stdout, readFileSync("/proc/1/comm", "utf8"));
      assert.equal((await exec(id, ["test", "-d", `/proc/${process.pid}`])).exitCode, 0, "sees the test's own pid");
      await c().removePodSandbox({ podSandboxId: p.id });
    });

    test("host IPC shares the host's shared memory; pod IPC does not", async () => {
      const seg = execFileSync("ipcmk", ["-M", "4096"], { encoding: "utf8" }).trim().replace(/^Shared memory id: /, "");
      try {
        const hostP = await runPod({ securityContext: { namespaceOptions: { ipc: NamespaceMode.NODE } } });
        const h = await start(hostP, { sc: { namespaceOptions: { ipc: NamespaceMode.NODE } } });
        const n = await start(pod);
        assert.equal(await nsOf(h, "ipc"), hostNs("ipc"));
        assert.notEqual(await nsOf(n, "ipc"), hostNs("ipc"));
        const shmids = async (id: string) => (await sh(id, "awk 'NR>1 {print $2}' /proc/sysvipc/shm")).stdout.split("\n");
        assert.ok((await shmids(h)).includes(seg), `segment ${seg} visible with host IPC`);
        assert.ok(!(await shmids(n)).includes(seg), `segment ${seg} not visible with pod IPC`);
        await remove(n);
        await c().removePodSandbox({ podSandboxId: hostP.id });
      } finally {
        spawnSync("ipcrm", ["-m", seg]);
      }
    });

    test("host network shares the host's network namespace", async () => {
      const p = await runPod({ securityContext: { namespaceOptions: { network: NamespaceMode.NODE } } });
      const id = await start(p, { sc: { namespaceOptions: { network: NamespaceMode.NODE } } });
      assert.equal(await nsOf(id, "net"), hostNs("net"));
      assert.notEqual(await nsOf(id, "net"), await nsOf(await start(pod), "net"));
      await c().removePodSandbox({ podSandboxId: p.id });
    });

    test("pod PID shows the infra catatonit as pid 1; CONTAINER PID gives the container its own pid 1; TARGET joins another container", async () => {
      const shared = await runPod({ securityContext: { namespaceOptions: { pid: NamespaceMode.POD } } });
      const s = await start(shared, { sc: { namespaceOptions: { pid: NamespaceMode.POD } } });
      assert.equal((await exec(s, ["cat", "/proc/1/comm"])).stdout, "catatonit\n");
      const own = await start(pod, { sc: { namespaceOptions: { pid: NamespaceMode.CONTAINER } } });
      assert.equal((await exec(own, ["cat", "/proc/1/comm"])).stdout, "sleep\n");
      const target = await start(pod, { sc: { namespaceOptions: { pid: NamespaceMode.TARGET, targetId: own } }, command: ["sh", "-c", "sleep 3600"] });
      assert.equal(await nsOf(target, "pid"), await nsOf(own, "pid"));
      assert.equal((await exec(target, ["cat", "/proc/1/comm"])).stdout, "sleep\n", "the target's pid 1");
      await remove(target, own);
      await c().removePodSandbox({ podSandboxId: shared.id });
    });
  });
});

describe("security context: runtime.seccomp_default", () => {
  let env: PodEnv;
  before(async () => { env = await startPodEnv({ images: true, toml: '[runtime]\nseccomp_default = "RuntimeDefault"\n' }); });
  after(async () => { await env?.cleanup(); });

  test("applies when neither the pod nor the container sets a profile; Unconfined still opts out", async () => {
    const c = env.b.client.runtime;
    const image = env.images!.busybox;
    await env.b.client.image.pullImage({ image: { image } });
    const config = podConfig({ linux: { securityContext: { namespaceOptions: { pid: NamespaceMode.POD } } } });
    const { podSandboxId } = await c.runPodSandbox({ config });
    const st = await c.podSandboxStatus({ podSandboxId, verbose: true });
    const infraPid = JSON.parse(st.info["info"]!).pid as number;
    assert.equal(statusField(readFileSync(`/proc/${infraPid}/status`, "utf8"), "Seccomp"), "2", "the infra process is filtered");
    const run = async (name: string, sc: Record<string, unknown>) => {
      const { containerId } = await c.createContainer({
        podSandboxId, sandboxConfig: config,
        config: { metadata: { name, attempt: 0 }, image: { image }, command: ["sleep", "3600"], linux: { securityContext: sc } },
      });
      await c.startContainer({ containerId });
      const r = await c.execSync({ containerId, cmd: ["cat", "/proc/self/status"], timeout: 30n });
      return statusField(Buffer.from(r.stdout).toString(), "Seccomp");
    };
    assert.equal(await run("default", {}), "2");
    assert.equal(await run("unconfined", { seccomp: { profileType: ProfileType.Unconfined } }), "0");
    assert.equal(await run("legacy-unconfined", { seccompProfilePath: "unconfined" }), "0");
    await c.removePodSandbox({ podSandboxId });
  });
});

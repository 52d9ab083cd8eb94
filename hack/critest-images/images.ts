// What critest v1.32 pulls, and the stand-in built for each from Debian packages.
// Repository paths and tags are the ones critest asks for; the registry host
// (registry.k8s.io, gcr.io) is mapped to a loopback registry by hosts.toml mirrors.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { LayerBuilder, TarType } from "./layer-builder.ts";
import { sharedLibs, libName } from "./debian.ts";

export interface ImageConfig {
  User?: string;
  Env?: string[];
  Entrypoint?: string[];
  Cmd?: string[];
  WorkingDir?: string;
  ExposedPorts?: Record<string, Record<string, never>>;
  StopSignal?: string;
  Labels?: Record<string, string>;
}

export interface StandInImage {
  /** Repository paths with tag inside the registry ("e2e-test-images/busybox:1.29-2"). */
  refs: string[];
  /** Layer names from LAYERS, bottom first. */
  layers: string[];
  config: ImageConfig;
  /** What the stand-in is and how it differs from the upstream image. */
  about: string;
}

/** Unpacked Debian packages the layers are built from. */
export interface LayerInputs {
  busybox: string;
  nginx: string;
  nginxCommon: string;
}

export const E2E = "e2e-test-images";
export const CRI_TOOLS = "k8s-staging-cri-tools";
/** The registries critest pulls from; all are mirrored to the loopback registry. */
export const UPSTREAM_HOSTS = ["registry.k8s.io", "gcr.io", "docker.io"] as const;

/** Images critest references that cannot be reproduced (pinned by digest of upstream bytes). */
export const SKIPPED = [
  "gcr.io/k8s-staging-cri-tools/test-image-digest@sha256:9700f9a2f5bf2c45f2f605a0bd3bce7cf37420ec9d3ed50ac2758413308766bf",
] as const;

const PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const LIBDIR = "lib/x86_64-linux-gnu";
const LOADER = "ld-linux-x86-64.so.2";

// The users and groups of the stock busybox image.
const BUSYBOX_PASSWD = [
  "root:x:0:0:root:/root:/bin/sh",
  "daemon:x:1:1:daemon:/usr/sbin:/bin/false",
  "bin:x:2:2:bin:/bin:/bin/false",
  "sys:x:3:3:sys:/dev:/bin/false",
  "sync:x:4:100:sync:/bin:/bin/sync",
  "mail:x:8:8:mail:/var/spool/mail:/bin/false",
  "www-data:x:33:33:www-data:/var/www:/bin/false",
  "operator:x:37:37:Operator:/var:/bin/false",
  "nobody:x:65534:65534:nobody:/home:/bin/false",
];
const BUSYBOX_GROUP = [
  "root:x:0:", "daemon:x:1:", "bin:x:2:", "sys:x:3:", "adm:x:4:", "tty:x:5:", "disk:x:6:", "lp:x:7:",
  "mail:x:8:", "kmem:x:9:", "wheel:x:10:root", "cdrom:x:11:", "dialout:x:18:", "floppy:x:19:",
  "video:x:28:", "audio:x:29:", "tape:x:32:", "www-data:x:33:", "operator:x:37:", "utmp:x:43:",
  "plugdev:x:46:", "staff:x:50:", "lock:x:54:", "netdev:x:82:", "users:x:100:", "nogroup:x:65534:",
];
const lines = (l: string[]) => l.join("\n") + "\n";

/**
 * Copies a dynamically linked host binary into the layer with the libraries ldd
 * lists (into /lib/x86_64-linux-gnu) and the loader (/lib64 link), skipping
 * libraries the layers below already have.
 */
export function addDynamicBinary(layer: LayerBuilder, hostBinary: string, path: string, below: ReadonlySet<string>, mode?: number): void {
  layer.copyFrom(hostBinary, path, mode);
  const { libs, interpreter } = sharedLibs(hostBinary);
  for (const lib of libs) {
    const p = `${LIBDIR}/${lib.name}`;
    if (!below.has(p) && !layer.has(p)) layer.copyFrom(lib.hostPath, p, 0o755);
  }
  if (interpreter) {
    const p = `${LIBDIR}/${LOADER}`;
    if (!below.has(p) && !layer.has(p)) {
      layer.copyFrom(interpreter, p, 0o755);
      layer.symlink(`lib64/${libName(interpreter)}`, `/${p}`);
    }
  }
}

/** Paths of regular files a layer holds (to skip libraries in upper layers). */
export function filePaths(layer: LayerBuilder): Set<string> {
  return new Set(layer.entries().filter((e) => e.type === TarType.file).map((e) => e.path));
}

/** Debian's dynamic busybox with every applet hard-linked in /bin, like the stock busybox image. */
function busyboxLayer(inputs: LayerInputs): LayerBuilder {
  const l = new LayerBuilder();
  for (const d of ["dev", "proc", "sys", "home", "usr/sbin", "var/spool/mail", "var/www", "lib64"]) l.dir(d);
  l.dir("root", 0o700).dir("tmp", 0o1777);
  const bb = join(inputs.busybox, "bin", "busybox");
  addDynamicBinary(l, bb, "bin/busybox", new Set(), 0o755);
  for (const applet of busyboxApplets(bb)) if (applet !== "busybox") l.hardlink(`bin/${applet}`, "bin/busybox");
  // Applets the stock image has that Debian's busybox build leaves out, from util-linux and procps.
  addDynamicBinary(l, "/usr/bin/ipcs", "bin/ipcs", new Set(), 0o755);
  addDynamicBinary(l, "/usr/bin/ipcrm", "bin/ipcrm", new Set(), 0o755);
  addDynamicBinary(l, "/usr/bin/pgrep", "bin/pgrep", new Set(), 0o755);
  l.symlink("bin/pkill", "pgrep");
  l.file("etc/passwd", lines(BUSYBOX_PASSWD)).file("etc/group", lines(BUSYBOX_GROUP));
  return l;
}

function busyboxApplets(binary: string): string[] {
  // `busybox --list` names every applet compiled in.
  return execFileSync(binary, ["--list"], { encoding: "utf8" }).split("\n").map((s) => s.trim()).filter(Boolean);
}

const nginxConf = `# berth critest stand-in (Debian nginx)
user nginx;
worker_processes 1;
pid /var/run/nginx.pid;
error_log stderr notice;
events { worker_connections 1024; }
http {
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  access_log /dev/stdout;
  sendfile on;
  keepalive_timeout 65;
  include /etc/nginx/conf.d/*.conf;
}
`;
const serverConf = (port: number) => `server {
  listen ${port};
  server_name localhost;
  location / {
    root /usr/share/nginx/html;
    index index.html index.htm;
  }
}
`;

/** Debian's nginx serving its welcome page on port 80, laid out like the official image. */
function nginxLayer(inputs: LayerInputs, below: ReadonlySet<string>): LayerBuilder {
  const l = new LayerBuilder();
  addDynamicBinary(l, join(inputs.nginx, "usr", "sbin", "nginx"), "usr/sbin/nginx", below, 0o755);
  l.copyFrom(join(inputs.nginxCommon, "etc", "nginx", "mime.types"), "etc/nginx/mime.types", 0o644);
  l.file("etc/nginx/nginx.conf", nginxConf).file("etc/nginx/conf.d/default.conf", serverConf(80));
  l.copyFrom(join(inputs.nginxCommon, "usr", "share", "nginx", "html", "index.html"), "usr/share/nginx/html/index.html", 0o644);
  l.file("usr/share/nginx/html/50x.html", "<html><body><h1>An error occurred.</h1></body></html>\n");
  l.dir("var/cache/nginx").dir("var/lib/nginx").dir("var/log/nginx").dir("run");
  l.symlink("var/run", "/run");
  l.symlink("var/log/nginx/access.log", "/dev/stdout").symlink("var/log/nginx/error.log", "/dev/stderr");
  l.file("etc/passwd", lines([...BUSYBOX_PASSWD, "nginx:x:101:101:nginx:/var/cache/nginx:/sbin/nologin"]));
  l.file("etc/group", lines([...BUSYBOX_GROUP, "nginx:x:101:nginx"]));
  return l;
}

/** hostnet-nginx: the same nginx listening on 12003 (critest's images/hostnet-nginx). */
function hostnetConfLayer(): LayerBuilder {
  return new LayerBuilder().file("etc/nginx/conf.d/default.conf", serverConf(12003));
}

/** busybox httpd behind an httpd-foreground script that logs a line naming httpd, like Apache does. */
function httpdLayer(): LayerBuilder {
  const l = new LayerBuilder();
  l.file("usr/local/apache2/bin/httpd-foreground", [
    "#!/bin/sh",
    "# berth critest stand-in for the Apache httpd image: busybox httpd on port 80.",
    "echo 'httpd (busybox httpd stand-in for Apache/2.4.39): serving /usr/local/apache2/htdocs on port 80' >&2",
    // Apache's own start-up line, which critest <= v1.28 looks for in the container log
    "echo \"[core:notice] AH00094: Command line: 'httpd -D FOREGROUND'\" >&2",
    "exec httpd -f -v -p 80 -h /usr/local/apache2/htdocs",
    "",
  ].join("\n"), 0o755);
  l.file("usr/local/apache2/htdocs/index.html", "<html><body><h1>It works!</h1></body></html>\n");
  l.dir("usr/local/apache2/logs");
  return l;
}

/** nonewprivs: prints the effective uid of a setuid-root program (coreutils id), like the e2e nnp binary. */
function nonewprivsLayer(below: ReadonlySet<string>): LayerBuilder {
  const l = new LayerBuilder();
  addDynamicBinary(l, "/usr/bin/id", "usr/local/bin/nnp-euid", below, 0o4755);
  l.file("usr/local/bin/nnp", [
    "#!/bin/sh",
    "# berth critest stand-in for the e2e nonewprivs image: nnp-euid is setuid root,",
    "# so it runs as uid 0 unless no_new_privs is set.",
    "echo \"Effective uid: $(/usr/local/bin/nnp-euid -u)\"",
    "",
  ].join("\n"), 0o755);
  return l;
}

/** critest's images/image-predefined-group: user 1000 in a group 50000 defined in /etc/group. */
function predefinedGroupLayer(): LayerBuilder {
  return new LayerBuilder()
    .file("etc/passwd", lines([...BUSYBOX_PASSWD, "default-user:x:1000:1000::/home/default-user:/bin/sh"]))
    .file("etc/group", lines([...BUSYBOX_GROUP, "default-user:x:1000:", "group-defined-in-image:x:50000:default-user"]))
    .dir("home/default-user", 0o755, 1000, 1000);
}

/** The pod infra image containerd (and berth, when configured) pulls: Debian's static catatonit in pause mode. */
function pauseLayer(): LayerBuilder {
  return new LayerBuilder().copyFrom("/usr/bin/catatonit", "pause", 0o755);
}

/** critest's images/image-test: an empty file named after the image at the root. */
const markerLayer = (name: string) => new LayerBuilder().file(name, "", 0o644);

/** Builds every named layer; upper layers skip libraries the busybox layer has. */
export function buildLayers(inputs: LayerInputs): Map<string, LayerBuilder> {
  const layers = new Map<string, LayerBuilder>();
  const busybox = busyboxLayer(inputs);
  const base = filePaths(busybox);
  layers.set("busybox", busybox);
  layers.set("nginx", nginxLayer(inputs, base));
  layers.set("hostnet-conf", hostnetConfLayer());
  layers.set("httpd", httpdLayer());
  layers.set("nonewprivs", nonewprivsLayer(base));
  layers.set("predefined-group", predefinedGroupLayer());
  layers.set("pause", pauseLayer());
  for (const m of ["test-image-1", "test-image-2", "test-image-3", "test-image-latest", "test", "all", "same-image"]) {
    layers.set(`marker:${m}`, markerLayer(m));
  }
  return layers;
}

const shConfig: ImageConfig = { Env: [PATH_ENV], Cmd: ["sh"] };
const nginxConfig = (port: number): ImageConfig => ({
  Env: [PATH_ENV], Cmd: ["nginx", "-g", "daemon off;"], ExposedPorts: { [`${port}/tcp`]: {} }, StopSignal: "SIGQUIT",
});
const userImage = (name: string, user: string): StandInImage => ({
  refs: [`${CRI_TOOLS}/${name}:latest`], layers: ["busybox"], config: { ...shConfig, User: user },
  about: `busybox with USER ${user}`,
});
const markerImage = (refs: string[], marker: string): StandInImage => ({
  refs: refs.map((r) => `${CRI_TOOLS}/${r}`), layers: ["busybox", `marker:${marker}`], config: shConfig,
  about: `busybox plus an empty /${marker}`,
});

export const IMAGES: readonly StandInImage[] = [
  { refs: [`${E2E}/busybox:1.29-2`], layers: ["busybox"], config: shConfig, about: "Debian's dynamic busybox 1.35 with all applets hard-linked in /bin (upstream: busybox 1.29); ipcs/ipcrm (util-linux) and pgrep/pkill (procps) added because Debian's build lacks them" },
  { refs: [`${E2E}/nginx:1.14-2`], layers: ["busybox", "nginx"], config: nginxConfig(80), about: "Debian's nginx 1.22 on port 80 (pid /var/run/nginx.pid, master process title), on the busybox layer" },
  { refs: [`${CRI_TOOLS}/hostnet-nginx-amd64:latest`], layers: ["busybox", "nginx", "hostnet-conf"], config: nginxConfig(12003), about: "the nginx stand-in listening on port 12003" },
  { refs: [`${E2E}/httpd:2.4.39-4`], layers: ["busybox", "httpd"], config: { Env: [`PATH=/usr/local/apache2/bin:${PATH_ENV.slice(5)}`], Cmd: ["httpd-foreground"], WorkingDir: "/usr/local/apache2", ExposedPorts: { "80/tcp": {} } }, about: "busybox httpd on port 80 started by httpd-foreground, which logs a line naming httpd (upstream: Apache httpd 2.4.39 on Debian)" },
  { refs: [`${E2E}/nonewprivs:1.3`], layers: ["busybox", "nonewprivs"], config: { Env: [PATH_ENV], Entrypoint: ["/usr/local/bin/nnp"] }, about: "/usr/local/bin/nnp prints \"Effective uid: N\" from a setuid-root copy of coreutils id (upstream: a setuid Go binary)" },
  userImage("test-image-user-uid", "1002"),
  userImage("test-image-user-username", "www-data"),
  userImage("test-image-user-uid-group", "1003:1004"),
  userImage("test-image-user-username-group", "www-data:1004"),
  { refs: [`${CRI_TOOLS}/test-image-predefined-group:latest`], layers: ["busybox", "predefined-group"], config: { ...shConfig, User: "1000" }, about: "busybox with default-user (1000:1000) in group-defined-in-image (50000), USER 1000" },
  markerImage(["test-image-latest:latest"], "test-image-latest"),
  markerImage(["test-image-tag:test"], "test"),
  markerImage(["test-image-tag:all"], "all"),
  markerImage(["test-image-1:latest"], "test-image-1"),
  markerImage(["test-image-2:latest"], "test-image-2"),
  markerImage(["test-image-3:latest"], "test-image-3"),
  markerImage(["test-image-tags:1", "test-image-tags:2", "test-image-tags:3"], "same-image"),
  // Not pulled by critest itself: the sandbox image of containerd 1.6 (default pause:3.6) and of kubelet-era configs, for side-by-side runs.
  { refs: ["pause:3.6", "pause:3.9", "pause:3.10"], layers: ["pause"], config: { Entrypoint: ["/pause", "-P"], User: "65535:65535" }, about: "pod infra image: Debian's static catatonit in pause mode (-P) as /pause (upstream: the Kubernetes pause binary); for containerd side-by-side runs, critest does not pull it" },
];

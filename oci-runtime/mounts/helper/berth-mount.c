/*
 * berth-mount: the mount system calls Node.js has no API for (open_tree, mount_setattr,
 * move_mount), and user namespaces pinned as files, for berth's idmapped and recursive
 * read-only mounts.
 *
 *   berth-mount bind SRC DST USERNS|- rro|ro|rw
 *       Clones the mount tree at SRC (recursively, like an rbind; SRC's last component is
 *       not followed if it is a symlink), optionally idmaps every mount of the clone to the
 *       user namespace pinned at USERNS (MOUNT_ATTR_IDMAP), optionally makes every mount of
 *       it read-only ("rro", MOUNT_ATTR_RDONLY with AT_RECURSIVE) or only its top ("ro"),
 *       makes the clone private, and attaches it on DST (an existing file or directory).
 *   berth-mount userns USERPIN NETPIN|- UID_IN UID_OUT UID_LEN GID_IN GID_OUT GID_LEN
 *       Creates a user namespace with exactly that one uid and one gid mapping (and, unless
 *       NETPIN is "-", a network namespace owned by it, with lo up) and pins them by
 *       bind-mounting their nsfs files on USERPIN and NETPIN (existing empty files).
 *   berth-mount pin-ns IPCPIN|- UTSPIN|- USERNS|- NETNS|- HOSTNAME|"" [NAME VALUE]...
 *       A pod's namespaces without an infra process (berth's drop_infra): a child process joins
 *       the user namespace pinned at USERNS (and becomes its root) unless "-", joins the network
 *       namespace pinned at NETNS unless "-" and writes the net.* sysctls there, creates a new
 *       IPC namespace unless IPCPIN is "-" and a new UTS namespace unless UTSPIN is "-" (owned
 *       by that user namespace), writes the IPC sysctls (kernel.shm*, kernel.msg*, kernel.sem,
 *       fs.mqueue.*) in the new IPC namespace, sets HOSTNAME (and kernel.hostname,
 *       kernel.domainname) in the new UTS namespace; then this process bind-mounts the child's
 *       ipc and uts nsfs files on IPCPIN and UTSPIN (existing empty files). NAMEs are sysctl
 *       names in dotted form ("/" stands for a "." inside a component); at most 256 of them,
 *       each at most 255 bytes, each VALUE at most 4096 bytes. Nothing is left mounted on failure.
 *   berth-mount netns NETPIN
 *       Creates a network namespace with lo up (SIOCSIFFLAGS) and pins it by bind-mounting its
 *       nsfs file on NETPIN (an existing empty file): what `unshare --net=PIN ip link set lo up`
 *       does, in one process. Nothing is left mounted on failure.
 *   berth-mount shm DIR BYTES
 *       Mounts a tmpfs on the directory DIR for a pod's /dev/shm: nosuid, nodev, noexec,
 *       mode=1777, size=BYTES (decimal, 1 to 10^15, formatted again here).
 *   berth-mount pod SHMDIR|- SHMBYTES|- NETPIN|- IPCPIN|- UTSPIN|- HOSTNAME|"" [NAME VALUE]...
 *       A pod's namespaces in one process: the shm tmpfs (as "shm"), then a network namespace
 *       pinned on NETPIN (as "netns"), then, unless IPCPIN and UTSPIN are both "-", the IPC and UTS
 *       namespaces as "pin-ns" makes them (no user namespace; net.* sysctls are written in the new
 *       network namespace). On failure whatever it mounted is unmounted again.
 *   berth-mount netdev NETNS
 *       Prints /proc/net/dev of the network namespace pinned at NETNS (at most 1 MiB): the
 *       counters of a pod that has no process in its network namespace.
 *   berth-mount seal BINARY
 *       Copies the executable BINARY (a regular file, at most 256 MiB) into a memfd sealed against
 *       any change (F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_WRITE: the set runc checks to
 *       know it already runs from a sealed copy, so its `runc init` skips copying itself into a
 *       new memfd on every create and exec). Prints "/proc/PID/fd/N SIZE" and waits until its
 *       stdin reaches EOF (at most 60 s), so the caller can open the memfd through that path.
 *   berth-mount umount PATH
 *       Lazily detaches the mount on PATH (MNT_DETACH, the last component not followed).
 *   berth-mount probe SCRATCH
 *       In the empty directory SCRATCH, tries an idmapped clone of SCRATCH's filesystem,
 *       a recursive read-only clone, and an overlayfs over an idmapped lower layer; prints
 *       one line per check, "idmap ok", "rro ok", "overlay-idmapped-lower ok" or
 *       "NAME error: REASON", and leaves nothing mounted. Exit 0 even when checks fail.
 *
 * Numbers are decimal, without sign, below 2^32. A failure prints
 * "berth-mount: WHAT: REASON" on stderr and exits 1.
 *
 * Build: gcc -O2 -Wall -Werror -o berth-mount berth-mount.c (hack/build-helpers.sh)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char *what, int err) {
  fprintf(stderr, "berth-mount: %s: %s\n", what, strerror(err));
  exit(1);
}

static uint32_t number(const char *s, const char *what) {
  if (!*s || strlen(s) > 10) { fprintf(stderr, "berth-mount: %s: not a number\n", what); exit(2); }
  uint64_t v = 0;
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9') { fprintf(stderr, "berth-mount: %s: not a number\n", what); exit(2); }
    v = v * 10 + (uint64_t)(*p - '0');
  }
  if (v > UINT32_MAX) { fprintf(stderr, "berth-mount: %s: out of range\n", what); exit(2); }
  return (uint32_t)v;
}

/* Returns a detached clone of the tree at src with the attributes set, or -errno. */
static int clone_tree(const char *src, int userns_fd, int readonly_mode /* 0 rw, 1 ro, 2 rro */) {
  int fd = open_tree(AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_SYMLINK_NOFOLLOW);
  if (fd < 0) return -errno;
  struct mount_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.propagation = MS_PRIVATE;
  if (mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0) { int e = errno; close(fd); return -e; }
  if (userns_fd >= 0) {
    memset(&attr, 0, sizeof attr);
    attr.attr_set = MOUNT_ATTR_IDMAP;
    attr.userns_fd = (uint64_t)userns_fd;
    if (mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0) { int e = errno; close(fd); return -e; }
  }
  if (readonly_mode) {
    memset(&attr, 0, sizeof attr);
    attr.attr_set = MOUNT_ATTR_RDONLY;
    unsigned flags = AT_EMPTY_PATH | (readonly_mode == 2 ? AT_RECURSIVE : 0);
    if (mount_setattr(fd, "", flags, &attr, sizeof attr) < 0) { int e = errno; close(fd); return -e; }
  }
  return fd;
}

static int cmd_bind(char **argv) {
  const char *src = argv[0], *dst = argv[1], *userns = argv[2], *mode = argv[3];
  int ro;
  if (!strcmp(mode, "rro")) ro = 2;
  else if (!strcmp(mode, "ro")) ro = 1;
  else if (!strcmp(mode, "rw")) ro = 0;
  else { fprintf(stderr, "berth-mount: bind: mode must be rro, ro or rw\n"); return 2; }
  int userns_fd = -1;
  if (strcmp(userns, "-")) {
    userns_fd = open(userns, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (userns_fd < 0) die("open user namespace", errno);
  }
  int fd = clone_tree(src, userns_fd, ro);
  if (fd < 0) die(userns_fd >= 0 ? "idmapped clone of the source" : "clone of the source", -fd);
  if (move_mount(fd, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH) < 0) die("attach on the target", errno);
  return 0;
}

static int write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  ssize_t n = write(fd, text, strlen(text));
  int e = errno;
  close(fd);
  if (n < 0) return -e;
  return n == (ssize_t)strlen(text) ? 0 : -EIO;
}

static int bind_ns(pid_t pid, const char *ns, const char *target) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/ns/%s", (int)pid, ns);
  return mount(path, target, NULL, MS_BIND, NULL) < 0 ? -errno : 0;
}

/* The child: waits until its maps are written, then brings lo up in its network namespace. */
static int userns_child(int rfd, int wfd, int with_net) {
  char c;
  if (read(rfd, &c, 1) != 1) _exit(1);
  int err = 0;
  if (with_net) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0) err = errno;
    else {
      ifr.ifr_flags |= IFF_UP;
      if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) err = errno;
    }
  }
  unsigned char e = (unsigned char)err;
  if (write(wfd, &e, 1) != 1) _exit(1);
  /* Stay until the parent has pinned the namespaces (it kills us). */
  if (read(rfd, &c, 1) < 0) _exit(1);
  _exit(0);
}

static int cmd_userns(char **argv) {
  const char *userpin = argv[0], *netpin = argv[1];
  uint32_t v[6];
  for (int i = 0; i < 6; i++) v[i] = number(argv[2 + i], "mapping");
  if (v[2] == 0 || v[5] == 0) { fprintf(stderr, "berth-mount: userns: a mapping length must not be 0\n"); return 2; }
  if ((uint64_t)v[0] + v[2] > UINT32_MAX || (uint64_t)v[1] + v[2] > UINT32_MAX ||
      (uint64_t)v[3] + v[5] > UINT32_MAX || (uint64_t)v[4] + v[5] > UINT32_MAX) {
    fprintf(stderr, "berth-mount: userns: a mapping overflows 32 bits\n");
    return 2;
  }
  int with_net = strcmp(netpin, "-") != 0;
  int down[2], up[2];
  if (pipe2(down, O_CLOEXEC) < 0 || pipe2(up, O_CLOEXEC) < 0) die("pipe", errno);
  pid_t pid = (pid_t)syscall(SYS_clone, SIGCHLD | CLONE_NEWUSER | (with_net ? CLONE_NEWNET : 0), NULL, NULL, NULL, NULL);
  if (pid < 0) die("clone", errno);
  if (pid == 0) {
    close(down[1]); close(up[0]);
    userns_child(down[0], up[1], with_net);
  }
  close(down[0]); close(up[1]);
  char map[128], path[64];
  int err = 0;
  const char *what = "";
  snprintf(path, sizeof path, "/proc/%d/uid_map", (int)pid);
  snprintf(map, sizeof map, "%u %u %u\n", v[0], v[1], v[2]);
  if ((err = write_file(path, map))) what = "write uid_map";
  if (!err) {
    snprintf(path, sizeof path, "/proc/%d/gid_map", (int)pid);
    snprintf(map, sizeof map, "%u %u %u\n", v[3], v[4], v[5]);
    if ((err = write_file(path, map))) what = "write gid_map";
  }
  if (!err) {
    char c = 0;
    unsigned char e = 0;
    if (write(down[1], &c, 1) != 1 || read(up[0], &e, 1) != 1) { err = -EIO; what = "helper process"; }
    else if (e) { err = -(int)e; what = "bring lo up"; }
  }
  if (!err && (err = bind_ns(pid, "user", userpin))) what = "pin the user namespace";
  if (!err && with_net && (err = bind_ns(pid, "net", netpin))) {
    what = "pin the network namespace";
    umount2(userpin, MNT_DETACH);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  if (err) die(what, -err);
  return 0;
}

static void probe_line(const char *name, int err) {
  if (err) printf("%s error: %s\n", name, strerror(err));
  else printf("%s ok\n", name);
}

static int cmd_probe(char **argv) {
  const char *dir = argv[0];
  /* A throwaway user namespace to idmap to: a child that waits on a pipe. */
  int down[2];
  if (pipe2(down, O_CLOEXEC) < 0) die("pipe", errno);
  pid_t pid = (pid_t)syscall(SYS_clone, SIGCHLD | CLONE_NEWUSER, NULL, NULL, NULL, NULL);
  if (pid < 0) die("clone", errno);
  if (pid == 0) {
    char c;
    close(down[1]);
    if (read(down[0], &c, 1) < 0) _exit(1);
    _exit(0);
  }
  close(down[0]);
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/uid_map", (int)pid);
  int err = write_file(path, "0 1000000 65536\n");
  snprintf(path, sizeof path, "/proc/%d/gid_map", (int)pid);
  if (!err) err = write_file(path, "0 1000000 65536\n");
  snprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
  int userns_fd = err ? -1 : open(path, O_RDONLY | O_CLOEXEC);
  if (!err && userns_fd < 0) err = errno;
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  if (err) probe_line("idmap", err);
  else {
    int fd = clone_tree(dir, userns_fd, 0);
    probe_line("idmap", fd < 0 ? -fd : 0);
    if (fd >= 0) close(fd);
  }
  int fd = clone_tree(dir, -1, 2);
  probe_line("rro", fd < 0 ? -fd : 0);
  if (fd >= 0) close(fd);
  if (!err) {
    /* overlayfs whose lower layer is an idmapped mount (how berth builds a userns rootfs). */
    char l[4096], il[4096], u[4096], w[4096], m[4096], opts[4096 * 3 + 64];
    snprintf(l, sizeof l, "%s/l", dir);
    snprintf(il, sizeof il, "%s/il", dir);
    snprintf(u, sizeof u, "%s/u", dir);
    snprintf(w, sizeof w, "%s/w", dir);
    snprintf(m, sizeof m, "%s/m", dir);
    int e = 0;
    if (strpbrk(dir, ",:\\") != NULL) e = EINVAL;
    if (!e && (mkdir(l, 0700) < 0 || mkdir(il, 0700) < 0 || mkdir(u, 0700) < 0 || mkdir(w, 0700) < 0 || mkdir(m, 0700) < 0)) e = errno;
    int lfd = e ? -1 : clone_tree(l, userns_fd, 0);
    if (!e && lfd < 0) e = -lfd;
    if (!e && move_mount(lfd, "", AT_FDCWD, il, MOVE_MOUNT_F_EMPTY_PATH) < 0) e = errno;
    if (lfd >= 0) close(lfd);
    snprintf(opts, sizeof opts, "lowerdir=%s,upperdir=%s,workdir=%s", il, u, w);
    if (!e && mount("overlay", m, "overlay", 0, opts) < 0) e = errno;
    if (!e) umount2(m, MNT_DETACH);
    umount2(il, MNT_DETACH);
    probe_line("overlay-idmapped-lower", e);
  } else {
    probe_line("overlay-idmapped-lower", err);
  }
  return 0;
}


/* pin-ns: the sysctls a pod may set, by the namespace they live in. */
enum { SC_NET = 1, SC_IPC = 2, SC_UTS_HOST = 3, SC_UTS_DOMAIN = 4 };
#define PIN_MAX_SYSCTLS 256
#define PIN_NAME_MAX 255
#define PIN_VALUE_MAX 4096

static int starts(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

static int sysctl_kind(const char *name) {
  if (starts(name, "net.")) return SC_NET;
  if (!strcmp(name, "kernel.sem") || starts(name, "kernel.shm") || starts(name, "kernel.msg") || starts(name, "fs.mqueue.")) return SC_IPC;
  if (!strcmp(name, "kernel.hostname")) return SC_UTS_HOST;
  if (!strcmp(name, "kernel.domainname")) return SC_UTS_DOMAIN;
  return 0;
}

/*
 * The path below /proc/sys of a dotted sysctl name: "." separates components and "/" stands for a
 * "." inside one (an interface name such as eth0.100). Every component must be non-empty and
 * neither "." nor "..", of letters, digits and "_-:@+." only. Returns 0 or -1.
 */
static int sysctl_path(const char *name, char *out, size_t n) {
  size_t len = strlen(name);
  if (len == 0 || len > PIN_NAME_MAX || len >= n) return -1;
  for (size_t i = 0; i < len; i++) {
    char c = name[i];
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("_-:@+./", c) != NULL;
    if (!ok) return -1;
    out[i] = c == '.' ? '/' : c == '/' ? '.' : c;
  }
  out[len] = 0;
  const char *p = out;
  for (;;) {
    const char *e = strchr(p, '/');
    size_t l = e ? (size_t)(e - p) : strlen(p);
    if (l == 0 || (l == 1 && p[0] == '.') || (l == 2 && p[0] == '.' && p[1] == '.')) return -1;
    if (!e) break;
    p = e + 1;
  }
  return 0;
}

/* Writes one sysctl of the calling process's namespaces, beneath /proc/sys (no symlinks, no other mount). */
static int write_sysctl(const char *rel, const char *value) {
  int dir = open("/proc/sys", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return -errno;
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = O_WRONLY | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  int fd = (int)syscall(SYS_openat2, dir, rel, &how, sizeof how);
  int e = errno;
  close(dir);
  if (fd < 0) return -e;
  size_t len = strlen(value);
  ssize_t w = write(fd, value, len);
  e = errno;
  close(fd);
  if (w < 0) return -e;
  return (size_t)w == len ? 0 : -EIO;
}

/* What the pin-ns child reports: the step that failed (0: none), its errno and the sysctl index. */
struct pin_report { unsigned char step; unsigned char err; unsigned short index; };
enum { PIN_OK, PIN_USERNS, PIN_ROOT, PIN_NETNS, PIN_NET_SYSCTL, PIN_UNSHARE, PIN_IPC_SYSCTL, PIN_HOSTNAME, PIN_DOMAINNAME };
static const char *pin_steps[] = {
  "", "join the pod's user namespace", "become root in the pod's user namespace", "join the pod's network namespace",
  "set sysctl", "create the ipc/uts namespaces", "set sysctl", "set the hostname", "set kernel.domainname",
};

static void pin_child(int rfd, int wfd, int userns_fd, int netns_fd, int flags, const char *hostname, char **kv, int nkv, char paths[][PIN_NAME_MAX + 1]) {
  struct pin_report r = { 0, 0, 0 };
  int e = 0;
  prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
  if (userns_fd >= 0) {
    if (setns(userns_fd, CLONE_NEWUSER) < 0) { e = errno; r.step = PIN_USERNS; goto out; }
    /* The ipc sysctls of a namespace owned by the pod's user namespace are writable by its root. */
    if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) { e = errno; r.step = PIN_ROOT; goto out; }
  }
  if (netns_fd >= 0 && setns(netns_fd, CLONE_NEWNET) < 0) { e = errno; r.step = PIN_NETNS; goto out; }
  for (int i = 0; i < nkv; i++) {
    if (sysctl_kind(kv[2 * i]) != SC_NET) continue;
    int err = write_sysctl(paths[i], kv[2 * i + 1]);
    if (err) { e = -err; r.step = PIN_NET_SYSCTL; r.index = (unsigned short)i; goto out; }
  }
  if (unshare(flags) < 0) { e = errno; r.step = PIN_UNSHARE; goto out; }
  for (int i = 0; i < nkv; i++) {
    if (sysctl_kind(kv[2 * i]) != SC_IPC) continue;
    int err = write_sysctl(paths[i], kv[2 * i + 1]);
    if (err) { e = -err; r.step = PIN_IPC_SYSCTL; r.index = (unsigned short)i; goto out; }
  }
  if (hostname && sethostname(hostname, strlen(hostname)) < 0) { e = errno; r.step = PIN_HOSTNAME; goto out; }
  for (int i = 0; i < nkv; i++) {
    int k = sysctl_kind(kv[2 * i]);
    const char *v = kv[2 * i + 1];
    if (k == SC_UTS_HOST && sethostname(v, strlen(v)) < 0) { e = errno; r.step = PIN_HOSTNAME; goto out; }
    if (k == SC_UTS_DOMAIN && setdomainname(v, strlen(v)) < 0) { e = errno; r.step = PIN_DOMAINNAME; goto out; }
  }
out:
  r.err = (unsigned char)(e > 255 ? EIO : e);
  if (write(wfd, &r, sizeof r) != (ssize_t)sizeof r) _exit(1);
  /* Stay until the parent has pinned the namespaces (it kills us). */
  char c;
  if (read(rfd, &c, 1) < 0) _exit(1);
  _exit(0);
}

static int cmd_pin_ns(int argc, char **argv) {
  const char *ipcpin = argv[0], *utspin = argv[1], *userns = argv[2], *netns = argv[3], *hostname = argv[4];
  char **kv = argv + 5;
  int nkv = (argc - 5) / 2;
  if ((argc - 5) % 2) { fprintf(stderr, "berth-mount: pin-ns: sysctls come as NAME VALUE pairs\n"); return 2; }
  if (nkv > PIN_MAX_SYSCTLS) { fprintf(stderr, "berth-mount: pin-ns: more than %d sysctls\n", PIN_MAX_SYSCTLS); return 2; }
  int pin_ipc = strcmp(ipcpin, "-") != 0, pin_uts = strcmp(utspin, "-") != 0;
  if (!pin_ipc && !pin_uts) { fprintf(stderr, "berth-mount: pin-ns: nothing to pin\n"); return 2; }
  /* No hostname is "", never "-": "-" is a hostname a pod may have. */
  if (!*hostname) hostname = NULL;
  else if (!pin_uts || strlen(hostname) > 64) { fprintf(stderr, "berth-mount: pin-ns: a hostname (1 to 64 bytes) needs a UTS pin\n"); return 2; }
  static char paths[PIN_MAX_SYSCTLS][PIN_NAME_MAX + 1];
  int has_net = 0;
  for (int i = 0; i < nkv; i++) {
    const char *name = kv[2 * i], *value = kv[2 * i + 1];
    int k = sysctl_kind(name);
    if (!k || sysctl_path(name, paths[i], sizeof paths[i]) < 0) { fprintf(stderr, "berth-mount: pin-ns: sysctl %.*s is not one a pod may set\n", PIN_NAME_MAX, name); return 2; }
    if (strlen(value) > PIN_VALUE_MAX) { fprintf(stderr, "berth-mount: pin-ns: the value of sysctl %s is longer than %d bytes\n", name, PIN_VALUE_MAX); return 2; }
    if (k == SC_NET) has_net = 1;
    if (k == SC_IPC && !pin_ipc) { fprintf(stderr, "berth-mount: pin-ns: sysctl %s needs an IPC pin\n", name); return 2; }
    if ((k == SC_UTS_HOST || k == SC_UTS_DOMAIN) && (!pin_uts || strlen(value) > 64)) { fprintf(stderr, "berth-mount: pin-ns: sysctl %s needs a UTS pin and at most 64 bytes\n", name); return 2; }
  }
  if (has_net && !strcmp(netns, "-")) { fprintf(stderr, "berth-mount: pin-ns: net sysctls need the pod's network namespace\n"); return 2; }
  int userns_fd = -1, netns_fd = -1;
  if (strcmp(userns, "-") && (userns_fd = open(userns, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) die("open the user namespace", errno);
  if (has_net && (netns_fd = open(netns, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) die("open the network namespace", errno);
  int flags = (pin_ipc ? CLONE_NEWIPC : 0) | (pin_uts ? CLONE_NEWUTS : 0);
  int down[2], up[2];
  if (pipe2(down, O_CLOEXEC) < 0 || pipe2(up, O_CLOEXEC) < 0) die("pipe", errno);
  pid_t pid = fork();
  if (pid < 0) die("fork", errno);
  if (pid == 0) {
    close(down[1]); close(up[0]);
    pin_child(down[0], up[1], userns_fd, netns_fd, flags, hostname, kv, nkv, paths);
  }
  close(down[0]); close(up[1]);
  struct pin_report r;
  int err = 0;
  char what[PIN_NAME_MAX + 64];
  snprintf(what, sizeof what, "helper process");
  ssize_t n = read(up[0], &r, sizeof r);
  if (n != (ssize_t)sizeof r) err = EIO;
  else if (r.step) {
    err = r.err ? r.err : EIO;
    if ((r.step == PIN_NET_SYSCTL || r.step == PIN_IPC_SYSCTL) && r.index < nkv) snprintf(what, sizeof what, "set sysctl %s", kv[2 * r.index]);
    else snprintf(what, sizeof what, "%s", r.step < sizeof pin_steps / sizeof pin_steps[0] ? pin_steps[r.step] : "helper process");
  }
  int pinned_ipc = 0;
  if (!err && pin_ipc) {
    if ((err = -bind_ns(pid, "ipc", ipcpin))) snprintf(what, sizeof what, "pin the ipc namespace");
    else pinned_ipc = 1;
  }
  if (!err && pin_uts && (err = -bind_ns(pid, "uts", utspin))) {
    snprintf(what, sizeof what, "pin the uts namespace");
    if (pinned_ipc) umount2(ipcpin, MNT_DETACH | UMOUNT_NOFOLLOW);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  if (err) die(what, err);
  return 0;
}

/* Brings lo up in the calling process's network namespace; 0 or an errno. */
static int lo_up(void) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return errno;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strcpy(ifr.ifr_name, "lo");
  int err = 0;
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) err = errno;
  else {
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) err = errno;
  }
  close(s);
  return err;
}

static int cmd_netns(const char *pin) {
  /* This process is single-threaded: it moves itself into the new namespace, then pins it. */
  if (unshare(CLONE_NEWNET) < 0) die("create the network namespace", errno);
  int err = lo_up();
  if (err) die("bring lo up", err);
  if (mount("/proc/self/ns/net", pin, NULL, MS_BIND, NULL) < 0) die("pin the network namespace", errno);
  return 0;
}

static int cmd_shm(const char *dir, const char *bytes) {
  /* A decimal byte count, 1 to 10^15 (a petabyte: far above any memory), formatted again here. */
  size_t len = strlen(bytes);
  uint64_t v = 0;
  if (len == 0 || len > 16) { fprintf(stderr, "berth-mount: shm: size is not a number of bytes up to 10^15\n"); return 2; }
  for (const char *p = bytes; *p; p++) {
    if (*p < '0' || *p > '9') { fprintf(stderr, "berth-mount: shm: size is not a number of bytes up to 10^15\n"); return 2; }
    v = v * 10 + (uint64_t)(*p - '0');
  }
  if (v == 0 || v > 1000000000000000ULL) { fprintf(stderr, "berth-mount: shm: size is not a number of bytes up to 10^15\n"); return 2; }
  char opts[64];
  snprintf(opts, sizeof opts, "mode=1777,size=%llu", (unsigned long long)v);
  if (mount("shm", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) < 0) die("mount the shm tmpfs", errno);
  return 0;
}

/* What `pod` has mounted so far: unmounted again if it fails (die() exits through atexit). */
static const char *pod_undo_shm, *pod_undo_net;
static void pod_undo(void) {
  if (pod_undo_net) umount2(pod_undo_net, MNT_DETACH | UMOUNT_NOFOLLOW);
  if (pod_undo_shm) umount2(pod_undo_shm, MNT_DETACH | UMOUNT_NOFOLLOW);
}

static int cmd_pin_ns(int argc, char **argv);

static int cmd_pod(int argc, char **argv) {
  const char *shm = argv[0], *bytes = argv[1], *netpin = argv[2];
  int rc = 0;
  atexit(pod_undo);
  if (strcmp(shm, "-")) {
    if ((rc = cmd_shm(shm, bytes))) { pod_undo(); return rc; }
    pod_undo_shm = shm;
  }
  if (strcmp(netpin, "-")) {
    if ((rc = cmd_netns(netpin))) { pod_undo(); return rc; }
    pod_undo_net = netpin;
  }
  /* argv + 3: IPCPIN UTSPIN, then USERNS "-" and NETNS given as pin-ns takes them. */
  if (strcmp(argv[3], "-") || strcmp(argv[4], "-")) {
    char *pin_argv[5 + 2 * 256 + 1];
    int pin_argc = 5 + (argc - 6);
    if (argc - 6 > 2 * 256) { fprintf(stderr, "berth-mount: pod: more than 256 sysctls\n"); pod_undo(); return 2; }
    pin_argv[0] = argv[3];
    pin_argv[1] = argv[4];
    pin_argv[2] = "-";
    pin_argv[3] = (char *)netpin;
    pin_argv[4] = argv[5];
    for (int i = 6; i < argc; i++) pin_argv[5 + i - 6] = argv[i];
    pin_argv[pin_argc] = NULL;
    if ((rc = cmd_pin_ns(pin_argc, pin_argv))) { pod_undo(); return rc; }
  }
  pod_undo_shm = pod_undo_net = NULL;
  return 0;
}

#define NETDEV_MAX (1 << 20)

static int cmd_netdev(const char *pin) {
  int fd = open(pin, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) die("open the network namespace", errno);
  if (setns(fd, CLONE_NEWNET) < 0) die("join the network namespace", errno);
  close(fd);
  int f = open("/proc/self/net/dev", O_RDONLY | O_CLOEXEC);
  if (f < 0) die("open /proc/self/net/dev", errno);
  static char buf[65536];
  size_t total = 0;
  for (;;) {
    ssize_t n = read(f, buf, sizeof buf);
    if (n < 0) { if (errno == EINTR) continue; die("read /proc/self/net/dev", errno); }
    if (n == 0) break;
    total += (size_t)n;
    if (total > NETDEV_MAX) { fprintf(stderr, "berth-mount: netdev: /proc/net/dev is larger than %d bytes\n", NETDEV_MAX); return 1; }
    for (ssize_t off = 0; off < n;) {
      ssize_t w = write(1, buf + off, (size_t)(n - off));
      if (w < 0) { if (errno == EINTR) continue; die("write", errno); }
      off += w;
    }
  }
  return 0;
}

#define SEAL_MAX_BYTES (256LL << 20)
#define BERTH_MFD_EXEC 0x0010U /* MFD_EXEC, linux/memfd.h since 6.3 */
#define SEAL_WAIT_MS 60000
#define SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

static int cmd_seal(const char *binary) {
  int src = open(binary, O_RDONLY | O_CLOEXEC);
  if (src < 0) die("open binary", errno);
  struct stat st;
  if (fstat(src, &st) < 0) die("stat binary", errno);
  if (!S_ISREG(st.st_mode)) { fprintf(stderr, "berth-mount: seal: %s is not a regular file\n", binary); return 1; }
  if (!(st.st_mode & 0111)) { fprintf(stderr, "berth-mount: seal: %s is not executable\n", binary); return 1; }
  if (st.st_size <= 0 || st.st_size > SEAL_MAX_BYTES) { fprintf(stderr, "berth-mount: seal: %s has %lld bytes (1 to %lld allowed)\n", binary, (long long)st.st_size, SEAL_MAX_BYTES); return 1; }
  /* MFD_EXEC: with vm.memfd_noexec=1 (kernel 6.3 and later) a memfd made without it is not
     executable and carries F_SEAL_EXEC, which would also fail runc's exact seal check. Kernels
     before 6.3 refuse the flag (EINVAL): then without it. With vm.memfd_noexec=2 it fails, named. */
  int fd = (int)syscall(SYS_memfd_create, "berth-sealed-runtime", MFD_CLOEXEC | MFD_ALLOW_SEALING | BERTH_MFD_EXEC);
  if (fd < 0 && errno == EINVAL) fd = (int)syscall(SYS_memfd_create, "berth-sealed-runtime", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) die(errno == EACCES ? "memfd_create (vm.memfd_noexec forbids executable memfds)" : "memfd_create", errno);
  off_t off = 0;
  while (off < st.st_size) {
    ssize_t n = sendfile(fd, src, &off, (size_t)(st.st_size - off));
    if (n < 0) { if (errno == EINTR) continue; die("copy binary", errno); }
    if (n == 0) { fprintf(stderr, "berth-mount: seal: %s shrank while it was copied\n", binary); return 1; }
  }
  close(src);
  if (fchmod(fd, 0555) < 0) die("fchmod", errno);
  if (fcntl(fd, F_ADD_SEALS, SEALS) < 0) die("seal", errno);
  int got = fcntl(fd, F_GET_SEALS);
  if (got != SEALS) { fprintf(stderr, "berth-mount: seal: the memfd has seals 0x%x, not exactly 0x%x (runc checks for those)\n", got, SEALS); return 1; }
  printf("/proc/%d/fd/%d %lld\n", (int)getpid(), fd, (long long)st.st_size);
  if (fflush(stdout) != 0) die("write", errno);
  struct pollfd p = { .fd = 0, .events = POLLIN };
  for (;;) {
    int r = poll(&p, 1, SEAL_WAIT_MS);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break; /* timed out: the caller did not take it */
    char b[64];
    ssize_t n = read(0, b, sizeof b);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "bind") && argc == 6) return cmd_bind(argv + 2);
  if (argc >= 2 && !strcmp(argv[1], "userns") && argc == 10) return cmd_userns(argv + 2);
  if (argc >= 2 && !strcmp(argv[1], "umount") && argc == 3) {
    if (umount2(argv[2], MNT_DETACH | UMOUNT_NOFOLLOW) < 0) die("umount", errno);
    return 0;
  }
  if (argc >= 2 && !strcmp(argv[1], "probe") && argc == 3) return cmd_probe(argv + 2);
  if (argc >= 7 && !strcmp(argv[1], "pin-ns")) return cmd_pin_ns(argc - 2, argv + 2);
  if (argc == 3 && !strcmp(argv[1], "netdev")) return cmd_netdev(argv[2]);
  if (argc == 3 && !strcmp(argv[1], "netns")) return cmd_netns(argv[2]);
  if (argc == 4 && !strcmp(argv[1], "shm")) return cmd_shm(argv[2], argv[3]);
  if (argc >= 8 && !strcmp(argv[1], "pod")) return cmd_pod(argc - 2, argv + 2);
  if (argc == 3 && !strcmp(argv[1], "seal")) return cmd_seal(argv[2]);
  fprintf(stderr, "usage: berth-mount bind SRC DST USERNS|- rro|ro|rw\n"
                  "       berth-mount userns USERPIN NETPIN|- UID_IN UID_OUT UID_LEN GID_IN GID_OUT GID_LEN\n"
                  "       berth-mount seal BINARY\n"
                  "       berth-mount umount PATH\n"
                  "       berth-mount probe SCRATCH\n"
                  "       berth-mount pin-ns IPCPIN|- UTSPIN|- USERNS|- NETNS|- HOSTNAME|- [NAME VALUE]...\n"
                  "       berth-mount netdev NETNS\n"
                  "       berth-mount netns NETPIN\n"
                  "       berth-mount shm DIR BYTES\n"
                  "       berth-mount pod SHMDIR|- SHMBYTES|- NETPIN|- IPCPIN|- UTSPIN|- HOSTNAME|- [NAME VALUE]...\n");
  return 2;
}

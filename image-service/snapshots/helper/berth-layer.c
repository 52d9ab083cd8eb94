/*
 * berth-layer: creates device nodes and FIFOs and sets extended attributes inside one
 * layer directory, the two things Node.js has no API for.
 *
 *   berth-layer LAYER_DIR
 *
 * Reads binary records on stdin, never text to parse:
 *
 *   record := u8 op, fields...          (integers little-endian)
 *   str    := u32 length, bytes          (no terminator; NUL bytes are refused)
 *   'N' node:  str path, u32 mode (S_IFCHR/S_IFBLK/S_IFIFO | permission bits),
 *              u32 major, u32 minor, u32 uid, u32 gid, i64 mtime seconds, u32 mtime nanoseconds
 *   'X' xattr: str path, str name, str value
 *   'S' sync:  syncfs() on the layer's filesystem (before berth commits the layer)
 *
 * A path is relative to LAYER_DIR: components separated by single '/', none empty, "." or "..".
 * The parent directory is opened with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
 * RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV) from a descriptor of LAYER_DIR, and the last
 * component is acted on relative to that descriptor without following a symlink
 * (mknodat, fchownat/utimensat with AT_SYMLINK_NOFOLLOW, lsetxattr after fchdir). The
 * empty path names LAYER_DIR itself (xattrs only).
 *
 * Each record that succeeds is answered with one 0 byte on stdout. The first that fails
 * makes berth-layer print "berth-layer: OP "PATH": REASON" on stderr and exit 1; so does a
 * malformed or oversized record. End of stdin exits 0.
 *
 *   berth-layer --mount-overlay SNAPSHOT_ROOT OPTIONS TARGET
 *
 * Mounts an overlayfs at TARGET (an absolute path) with OPTIONS (at most 4095 bytes, no newline:
 * lowerdir=...,upperdir=...,workdir=..., paths relative to SNAPSHOT_ROOT, the working directory
 * it changes to first), what `mount -t overlay overlay -o OPTIONS TARGET` does there in one
 * system call. A failure prints "berth-layer: mount-overlay "TARGET": REASON" and exits 1.
 *
 * Build: gcc -O2 -Wall -Werror -o berth-layer berth-layer.c (hack/build-helpers.sh)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define MAX_PATH 4096
#define MAX_NAME 255
#define MAX_VALUE 65536

static int root_fd = -1;

/* Writes s to stderr with bytes outside printable ASCII (and '"', '\\') as \xNN. */
static void put_escaped(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') fprintf(stderr, "\\x%02x", c);
    else fputc(c, stderr);
  }
}

static void fail(const char *op, const char *path, size_t n, const char *why) {
  fprintf(stderr, "berth-layer: %s \"", op);
  if (path) put_escaped(path, n);
  fprintf(stderr, "\": %s\n", why);
  exit(1);
}

static void read_exact(void *buf, size_t n) {
  char *p = buf;
  while (n > 0) {
    ssize_t r = read(0, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) fail("read", "", 0, r == 0 ? "record cut short" : strerror(errno));
    p += r;
    n -= (size_t)r;
  }
}

static uint32_t get_u32(void) {
  unsigned char b[4];
  read_exact(b, 4);
  return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static int64_t get_i64(void) {
  uint64_t lo = get_u32();
  uint64_t hi = get_u32();
  return (int64_t)(lo | hi << 32);
}

/* Reads a str field of at most max bytes into buf (NUL-terminated); returns its length. */
static size_t get_str(char *buf, size_t max, const char *what) {
  uint32_t n = get_u32();
  if (n > max) {
    char why[96];
    snprintf(why, sizeof why, "%s of %u bytes is longer than %zu", what, n, max);
    fail("read", "", 0, why);
  }
  read_exact(buf, n);
  buf[n] = 0;
  if (memchr(buf, 0, n)) fail("read", buf, n, "field contains a NUL byte");
  return n;
}

/*
 * Checks the path and opens its parent beneath the layer root. On return *last points at the
 * final component; the empty path returns a duplicate of the root with *last NULL.
 */
static int open_parent(const char *op, char *path, size_t n, const char **last) {
  if (n == 0) {
    *last = NULL;
    int fd = dup(root_fd);
    if (fd < 0) fail(op, path, n, strerror(errno));
    return fd;
  }
  /* Every component must be non-empty and neither "." nor "..". */
  const char *c = path;
  for (;;) {
    const char *slash = strchr(c, '/');
    size_t len = slash ? (size_t)(slash - c) : strlen(c);
    if (len == 0 || (len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
      fail(op, path, n, "path has an empty, \".\" or \"..\" component");
    if (len > MAX_NAME) fail(op, path, n, "path component longer than 255 bytes");
    if (!slash) break;
    c = slash + 1;
  }
  char *slash = strrchr(path, '/');
  if (!slash) {
    *last = path;
    int fd = dup(root_fd);
    if (fd < 0) fail(op, path, n, strerror(errno));
    return fd;
  }
  *slash = 0;
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  long fd;
  do fd = syscall(SYS_openat2, root_fd, path, &how, sizeof how);
  while (fd < 0 && errno == EINTR);
  int saved = errno;
  *slash = '/';
  if (fd < 0) {
    char why[160];
    snprintf(why, sizeof why, "cannot open the parent directory beneath the layer: %s", strerror(saved));
    fail(op, path, n, why);
  }
  *last = slash + 1;
  return (int)fd;
}

static int allowed_xattr(const char *name) {
  /* The namespaces an image may carry, plus the overlay opaque marker berth sets for whiteouts. */
  return strncmp(name, "user.", 5) == 0 || strcmp(name, "security.capability") == 0 ||
         strcmp(name, "security.ima") == 0 || strcmp(name, "trusted.overlay.opaque") == 0;
}

static void do_node(void) {
  static char path[MAX_PATH + 1];
  size_t n = get_str(path, MAX_PATH, "path");
  uint32_t mode = get_u32(), major = get_u32(), minor = get_u32(), uid = get_u32(), gid = get_u32();
  int64_t sec = get_i64();
  uint32_t nsec = get_u32();
  mode_t type = mode & S_IFMT;
  if (type != S_IFCHR && type != S_IFBLK && type != S_IFIFO) fail("mknod", path, n, "not a character device, block device or FIFO");
  if (mode & ~(uint32_t)(S_IFMT | 07777)) fail("mknod", path, n, "invalid mode bits");
  if (nsec >= 1000000000u) fail("mknod", path, n, "invalid mtime nanoseconds");
  const char *last;
  int dir = open_parent("mknod", path, n, &last);
  if (!last) fail("mknod", path, n, "cannot replace the layer root");
  dev_t dev = type == S_IFIFO ? 0 : makedev(major, minor);
  if (mknodat(dir, last, type | 0600, dev) < 0) fail("mknod", path, n, strerror(errno));
  /* The node just made, held by an O_PATH fd that does not follow a symlink (opening a device or
   * FIFO for real would reach the driver or block); its type checked, so chown and chmod act on it
   * and on nothing a racing rename could put in its place. */
  int node = openat(dir, last, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (node < 0) fail("open", path, n, strerror(errno));
  struct stat st;
  if (fstat(node, &st) < 0) fail("stat", path, n, strerror(errno));
  if ((st.st_mode & S_IFMT) != type) fail("mknod", path, n, "the node was replaced");
  if (fchownat(node, "", uid, gid, AT_EMPTY_PATH) < 0) fail("chown", path, n, strerror(errno));
  /* After chown, which clears setuid/setgid. chmod has no AT_EMPTY_PATH form: through the fd's
   * /proc/self/fd link, which names the node itself. */
  char fdpath[64];
  snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", node);
  if (chmod(fdpath, mode & 07777) < 0) fail("chmod", path, n, strerror(errno));
  close(node);
  struct timespec ts[2] = { { .tv_sec = sec, .tv_nsec = nsec }, { .tv_sec = sec, .tv_nsec = nsec } };
  if (utimensat(dir, last, ts, AT_SYMLINK_NOFOLLOW) < 0) fail("utimes", path, n, strerror(errno));
  close(dir);
}

static void do_xattr(void) {
  static char path[MAX_PATH + 1], name[MAX_NAME + 1], value[MAX_VALUE + 1];
  size_t n = get_str(path, MAX_PATH, "path");
  size_t nn = get_str(name, MAX_NAME, "xattr name");
  uint32_t vn = get_u32();
  if (vn > MAX_VALUE) fail("setxattr", path, n, "xattr value longer than 65536 bytes");
  read_exact(value, vn);
  if (nn == 0 || !allowed_xattr(name)) {
    fprintf(stderr, "berth-layer: setxattr \"");
    put_escaped(path, n);
    fprintf(stderr, "\": attribute \"");
    put_escaped(name, nn);
    fprintf(stderr, "\" is not in a namespace a layer may set\n");
    exit(1);
  }
  for (size_t i = 0; i < nn; i++) {
    if (name[i] < 0x20 || name[i] > 0x7e) fail("setxattr", path, n, "attribute name is not printable ASCII");
  }
  const char *last;
  int dir = open_parent("setxattr", path, n, &last);
  if (!last) {
    if (fsetxattr(dir, name, value, vn, 0) < 0) fail("setxattr", path, n, strerror(errno));
  } else {
    if (fchdir(dir) < 0) fail("setxattr", path, n, strerror(errno));
    if (lsetxattr(last, name, value, vn, 0) < 0) {
      char why[320];
      snprintf(why, sizeof why, "attribute %s: %s", name, strerror(errno));
      fail("setxattr", path, n, why);
    }
  }
  close(dir);
}

static int mount_overlay(const char *root, const char *options, const char *target) {
  size_t n = strlen(options);
  if (root[0] != '/' || target[0] != '/') fail("mount-overlay", target, strlen(target), "SNAPSHOT_ROOT and TARGET must be absolute");
  if (n == 0 || n > 4095 || memchr(options, '\n', n)) fail("mount-overlay", target, strlen(target), "options must be 1 to 4095 bytes without a newline");
  if (chdir(root) < 0) fail("mount-overlay", root, strlen(root), strerror(errno));
  if (mount("overlay", target, "overlay", 0, options) < 0) fail("mount-overlay", target, strlen(target), strerror(errno));
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 5 && !strcmp(argv[1], "--mount-overlay")) return mount_overlay(argv[2], argv[3], argv[4]);
  if (argc != 2) {
    fprintf(stderr, "usage: berth-layer LAYER_DIR\n       berth-layer --mount-overlay SNAPSHOT_ROOT OPTIONS TARGET\n");
    return 2;
  }
  /* Dies with the thread that started it: berthd's unpack worker threads (unpack-pool.ts) may
   * end without stopping their helper, which must then write nothing more into the layer. */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) fail("prctl", "", 0, strerror(errno));
  /* A parent that died between fork and prctl sent no signal: the parent berth named is gone. */
  const char *parent = getenv("BERTH_LAYER_PARENT");
  if (parent && strtol(parent, NULL, 10) != (long)getppid()) _exit(1);
  root_fd = open(argv[1], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (root_fd < 0) fail("open", argv[1], strlen(argv[1]), strerror(errno));
  if (fchdir(root_fd) < 0) fail("open", argv[1], strlen(argv[1]), strerror(errno));
  umask(0);
  for (;;) {
    unsigned char op;
    ssize_t r = read(0, &op, 1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail("read", "", 0, strerror(errno));
    if (r == 0) return 0;
    if (op == 'N') do_node();
    else if (op == 'X') do_xattr();
    else if (op == 'S') {
      if (syncfs(root_fd) < 0) fail("syncfs", argv[1], strlen(argv[1]), strerror(errno));
    }
    else {
      char why[48];
      snprintf(why, sizeof why, "unknown record type 0x%02x", op);
      fail("read", "", 0, why);
    }
    unsigned char ok = 0;
    while (write(1, &ok, 1) != 1) {
      if (errno != EINTR) fail("write", "", 0, strerror(errno));
    }
  }
}

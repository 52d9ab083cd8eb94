/*
 * berth-monitor: berth's per-container monitor, a small replacement for conmon that keeps the
 * command line and file contract berth uses (oci-runtime/monitor/conmon.ts):
 *
 *   berth-monitor --cid ID --runtime RUNTIME --bundle DIR --container-pidfile FILE
 *       --conmon-pidfile FILE --log-path k8s-file:FILE --exit-dir DIR --socket-dir-path DIR
 *       [--persist-dir DIR] [--log-size-max N] [--stdin] [--leave-stdin-open] [--terminal]
 *       [--no-pivot] [--runtime-arg ARG]... [--api-version N] [--cuuid X] [--name X] [--log-level X]
 *
 * It forks (the parent exits at once), becomes a session leader and a child subreaper, and runs
 * `RUNTIME ARGS... create --bundle DIR --pid-file FILE [--no-pivot] [--console-socket S] ID`.
 * Fd `$_OCI_SYNCPIPE` gets one line: {"data": PID} once the container exists, {"data": -1} (and
 * maybe a "message") when it could not be created. It then holds the container's stdio:
 *   - the CRI log (`<RFC3339Nano> stdout|stderr F|P text`), truncated at --log-size-max, reopened
 *     on request;
 *   - `<bundle>/attach`, a SOCK_SEQPACKET socket (linked as `<socket-dir>/<id>` -> bundle): each
 *     packet to a client is one stream byte (2 stdout, 3 stderr) and the data; client packets are
 *     stdin; a client's end of input closes the container's stdin unless --leave-stdin-open;
 *   - `<bundle>/ctl`, a fifo of lines "1 ROWS COLS" (resize) and "2 0 0" (reopen the log).
 * When the container's init exits it drains the output (until the pipes close or stay quiet for
 * QUIET_MS, DRAIN_MS at most), writes `oom` to the persist dir
 * when the container's memory cgroup counted an OOM kill, then `exit` there and `<exit-dir>/<id>`
 * (the exit code, or 128+signal), each through a temp file, fsync and rename, and exits.
 *
 * Everything from the container (output, attach packets, ctl lines) is hostile: every buffer is
 * fixed-size, output is written as it arrives (a line longer than a read becomes P records), a
 * slow attach client is dropped rather than waited for, the number of clients is bounded, and
 * files are created with O_NOFOLLOW / O_EXCL in directories given by berthd.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK 8192       /* one read of container output = one attach packet */
#define IN_PKT 32768          /* largest attach client packet taken (a longer one is truncated) */
#define MAX_CLIENTS 32        /* attach clients at once; more are refused */
#define MAX_RUNTIME_ARGS 64
#define CTL_LINE 64
#define DRAIN_MS 2000         /* output read after the container exits, at most */
#define QUIET_MS 100          /* ... and no longer than until the output pipes stay quiet this long */
#define CLIENT_SNDBUF (1 << 20) /* output an attach client may fall behind by before it is dropped */
#define LOG_BUF 65536

static const char *cid, *runtime_bin, *bundle, *cpidfile, *mpidfile, *log_path, *exit_dir, *socket_dir, *persist_dir;
static long long log_max = -1;
static int want_stdin, leave_stdin_open, terminal, no_pivot;
static const char *runtime_args[MAX_RUNTIME_ARGS];
static int n_runtime_args;
static int sync_fd = -1;

static void warnx(const char *fmt, ...) {
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
	va_end(ap);
	if (n < 0) return;
	if ((size_t)n > sizeof buf - 2) n = sizeof buf - 2;
	buf[n++] = '\n';
	ssize_t w = write(2, "berth-monitor: ", 15);
	w = write(2, buf, (size_t)n);
	(void)w;
}

static int write_all(int fd, const void *p, size_t n) {
	const char *c = p;
	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w < 0) {
			if (errno == EINTR) continue;
			if (errno == EAGAIN) {
				struct pollfd pf = {fd, POLLOUT, 0};
				if (poll(&pf, 1, 1000) <= 0) return -1;
				continue;
			}
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* One JSON line on the sync pipe; `msg` (may be NULL) is escaped. */
static void sync_report(long data, const char *msg) {
	if (sync_fd < 0) return;
	char line[1024];
	size_t n = (size_t)snprintf(line, sizeof line, "{\"data\": %ld", data);
	if (msg) {
		n += (size_t)snprintf(line + n, sizeof line - n, ", \"message\": \"");
		for (const unsigned char *p = (const unsigned char *)msg; *p && n < sizeof line - 16; p++) {
			if (*p == '"' || *p == '\\') { line[n++] = '\\'; line[n++] = (char)*p; }
			else if (*p < 0x20) n += (size_t)snprintf(line + n, sizeof line - n, "\\u%04x", *p);
			else line[n++] = (char)*p;
		}
		line[n++] = '"';
	}
	line[n++] = '}';
	line[n++] = '\n';
	write_all(sync_fd, line, n);
	close(sync_fd);
	sync_fd = -1;
}

static void fail(const char *fmt, ...) {
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	warnx("%s", buf);
	sync_report(-1, buf);
	_exit(1);
}

/* Writes `text` to `dirfd`/`name` through `.name.tmp`, fsync and rename; never follows a symlink. */
static int write_atomic(int dirfd, const char *name, const char *text, int do_sync) {
	char tmp[NAME_MAX + 1];
	if ((size_t)snprintf(tmp, sizeof tmp, ".%s.tmp", name) >= sizeof tmp) { errno = ENAMETOOLONG; return -1; }
	unlinkat(dirfd, tmp, 0);
	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) return -1;
	int rc = write_all(fd, text, strlen(text));
	if (rc == 0 && do_sync) rc = fsync(fd);
	close(fd);
	if (rc == 0) rc = renameat(dirfd, tmp, dirfd, name);
	if (rc < 0) { int e = errno; unlinkat(dirfd, tmp, 0); errno = e; }
	return rc;
}

/* Splits "/dir/name" for write_atomic: opens the directory, returns the last component. */
static int open_parent(const char *path, const char **name) {
	const char *slash = strrchr(path, '/');
	if (!slash) { *name = path; return open(".", O_PATH | O_DIRECTORY | O_CLOEXEC); }
	*name = slash + 1;
	char dir[PATH_MAX];
	size_t len = (size_t)(slash - path);
	if (len == 0) len = 1;
	if (len >= sizeof dir) { errno = ENAMETOOLONG; return -1; }
	memcpy(dir, path, len);
	dir[len] = 0;
	return open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

static int write_file_at_path(const char *path, const char *text, int do_sync) {
	const char *name;
	int dfd = open_parent(path, &name);
	if (dfd < 0) return -1;
	int rc = write_atomic(dfd, name, text, do_sync);
	int e = errno;
	close(dfd);
	errno = e;
	return rc;
}

/* ---------- the CRI log ---------- */

static int log_fd = -1;
static long long log_bytes;
static char log_buf[LOG_BUF];
static size_t log_len;
static int log_broken_warned;

/* Opens the log; a reopen (after kubelet renamed the old file) always makes a new file, as conmon
 * does: `<name>.tmp` created beside it, then renamed over the log path (a new inode, which is what
 * berthd waits for before it answers ReopenContainerLog). */
static void log_open(int reopen) {
	/* The new file is made before the old one is let go: a reopen that fails keeps logging there. */
	int old_fd = log_fd;
	log_fd = -1;
	if (!reopen) {
		log_fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640);
	} else {
		const char *name;
		char tmp[NAME_MAX + 1];
		int dfd = open_parent(log_path, &name);
		if (dfd >= 0 && (size_t)snprintf(tmp, sizeof tmp, "%s.tmp", name) < sizeof tmp) {
			unlinkat(dfd, tmp, 0);
			log_fd = openat(dfd, tmp, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
			if (log_fd >= 0 && renameat(dfd, tmp, dfd, name) < 0) {
				int e = errno;
				close(log_fd);
				log_fd = -1;
				unlinkat(dfd, tmp, 0);
				errno = e;
			}
		} else if (dfd >= 0) {
			errno = ENAMETOOLONG;
		}
		if (dfd >= 0) close(dfd);
	}
	if (log_fd < 0) {
		warnx("cannot open log %s: %s", log_path, strerror(errno));
		log_fd = old_fd;
		return;
	}
	if (old_fd >= 0) close(old_fd);
	struct stat st;
	log_bytes = fstat(log_fd, &st) == 0 ? st.st_size : 0;
}

static void log_flush(void) {
	if (log_len && log_fd >= 0) {
		struct stat st;
		int sized = fstat(log_fd, &st) == 0;
		if (write_all(log_fd, log_buf, log_len) < 0) {
			int e = errno;
			/* A partial write (a full disk) would leave half a record the next one is glued to. */
			if (sized && ftruncate(log_fd, st.st_size) == 0) log_bytes = st.st_size;
			if (!log_broken_warned) {
				warnx("cannot write log %s: %s", log_path, strerror(e));
				log_broken_warned = 1;
			}
		}
	}
	log_len = 0;
}

static void timestamp(char *out, size_t size) {
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec);
}

/* One record; `text` has no newline. Truncates the file first when the record would pass --log-size-max. */
static void log_record(const char *hdr, size_t hlen, char tag, const char *text, size_t n) {
	size_t rec = hlen + 2 + n + 1;
	if (log_max > 0 && log_bytes + (long long)rec > log_max) { /* log_bytes counts log_buf too */
		log_flush();
		if (log_fd >= 0 && ftruncate(log_fd, 0) == 0) log_bytes = 0;
	}
	if (log_len + rec > sizeof log_buf) log_flush();
	if (rec > sizeof log_buf) { /* cannot happen: n <= READ_CHUNK */ return; }
	memcpy(log_buf + log_len, hdr, hlen);
	log_buf[log_len + hlen] = tag;
	log_buf[log_len + hlen + 1] = ' ';
	memcpy(log_buf + log_len + hlen + 2, text, n);
	log_buf[log_len + rec - 1] = '\n';
	log_len += rec;
	log_bytes += (long long)rec;
}

static void log_output(int stream, const char *data, size_t n) {
	char hdr[80];
	timestamp(hdr, 48);
	size_t hlen = strlen(hdr);
	hlen += (size_t)snprintf(hdr + hlen, sizeof hdr - hlen, " %s ", stream == 2 ? "stdout" : "stderr");
	while (n > 0) {
		const char *nl = memchr(data, '\n', n);
		size_t len = nl ? (size_t)(nl - data) : n;
		log_record(hdr, hlen, nl ? 'F' : 'P', data, len);
		if (!nl) break;
		data += len + 1;
		n -= len + 1;
	}
	log_flush();
}

/* ---------- attach clients ---------- */

struct client { int fd; int in_eof; };  /* fd -1: dropped, removed at the end of the poll round */
static struct client clients[MAX_CLIENTS];
static int n_clients;
static int attach_fd = -1;
static int stdin_fd = -1;   /* the container's stdin (pipe write end or pty master), -1 once closed */
static char stdin_buf[IN_PKT];
static size_t stdin_off, stdin_len;
static int stdin_close_pending;

static void drop_client(int i) {
	if (clients[i].fd >= 0) close(clients[i].fd);
	clients[i].fd = -1;
}

/* Removes dropped clients; only between poll rounds, so poll slots keep matching clients. */
static void compact_clients(void) {
	int j = 0;
	for (int i = 0; i < n_clients; i++) if (clients[i].fd >= 0) clients[j++] = clients[i];
	n_clients = j;
}

static void broadcast(int stream, const char *data, size_t n) {
	if (!n_clients) return;
	static char pkt[READ_CHUNK + 1];
	pkt[0] = (char)stream;
	memcpy(pkt + 1, data, n);
	for (int i = 0; i < n_clients; i++) {
		if (clients[i].fd < 0) continue;
		ssize_t w;
		/* Never waits: the loop also carries the container's output, exit and stdin. */
		do w = send(clients[i].fd, pkt, n + 1, MSG_NOSIGNAL | MSG_DONTWAIT); while (w < 0 && errno == EINTR);
		if (w < 0) drop_client(i); /* gone, or CLIENT_SNDBUF behind */
	}
}

static void accept_client(void) {
	int fd = accept4(attach_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0) return;
	if (n_clients >= MAX_CLIENTS) {
		static int refused_warned; /* once: a client opening connections must not grow our stderr file */
		if (!refused_warned++) warnx("attach: refusing clients over %d", MAX_CLIENTS);
		close(fd);
		return;
	}
	int sndbuf = CLIENT_SNDBUF;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
	clients[n_clients++] = (struct client){fd, 0};
}

static void close_stdin(void) {
	if (stdin_fd < 0) return;
	if (terminal) { stdin_len = 0; return; } /* the pty master also carries the output: keep it */
	close(stdin_fd);
	stdin_fd = -1;
	stdin_len = 0;
}

static void flush_stdin(void) {
	while (stdin_len > 0 && stdin_fd >= 0) {
		ssize_t w = write(stdin_fd, stdin_buf + stdin_off, stdin_len);
		if (w < 0) {
			if (errno == EINTR) continue;
			if (errno == EAGAIN) return;
			stdin_len = 0; /* the container closed its stdin */
			if (!terminal) { close(stdin_fd); stdin_fd = -1; }
			break;
		}
		stdin_off += (size_t)w;
		stdin_len -= (size_t)w;
	}
	if (stdin_len == 0 && stdin_close_pending) { stdin_close_pending = 0; close_stdin(); }
}

/* `hung_up`: the peer has closed the socket outright (POLLHUP), so at its end of input nothing
 * can reach it any more either: its slot frees at once, not a round later. */
static void client_input(int i, int hung_up) {
	ssize_t r;
	do r = recv(clients[i].fd, stdin_buf, sizeof stdin_buf, MSG_DONTWAIT); while (r < 0 && errno == EINTR);
	if (r < 0) { if (errno != EAGAIN) drop_client(i); return; }
	if (r == 0) {
		clients[i].in_eof = 1;
		if (want_stdin && !leave_stdin_open) { stdin_close_pending = 1; flush_stdin(); }
		if (hung_up) drop_client(i);
		return;
	}
	if (!want_stdin || stdin_fd < 0) return;
	stdin_off = 0;
	stdin_len = (size_t)r;
	flush_stdin();
}

/* ---------- ctl fifo ---------- */

static int ctl_fd = -1, ctl_wfd = -1;
static char ctl_line[CTL_LINE];
static size_t ctl_len;
static int ctl_skip;
static int out_fd = -1, err_fd = -1; /* container stdout/stderr (or the pty master as out_fd) */

static void ctl_message(const char *line) {
	int type, a, b;
	if (sscanf(line, "%d %d %d", &type, &a, &b) != 3) { warnx("ctl: ignoring a malformed line"); return; }
	if (type == 1) {
		if (!terminal || out_fd < 0 || a < 0 || b < 0 || a > 0xffff || b > 0xffff) return;
		struct winsize ws = {0};
		ws.ws_row = (unsigned short)a;
		ws.ws_col = (unsigned short)b;
		if (ioctl(out_fd, TIOCSWINSZ, &ws) < 0) warnx("ctl: resize: %s", strerror(errno));
	} else if (type == 2) {
		log_flush();
		log_open(1);
	}
}

static void ctl_input(void) {
	char buf[512];
	ssize_t r;
	do r = read(ctl_fd, buf, sizeof buf); while (r < 0 && errno == EINTR);
	for (ssize_t i = 0; i < r; i++) {
		if (buf[i] == '\n') {
			ctl_line[ctl_len] = 0;
			if (!ctl_skip) ctl_message(ctl_line);
			ctl_len = 0;
			ctl_skip = 0;
		} else if (ctl_len + 1 < sizeof ctl_line) {
			ctl_line[ctl_len++] = buf[i];
		} else {
			ctl_skip = 1; /* a line longer than CTL_LINE is dropped whole */
		}
	}
}

/* ---------- OOM accounting ---------- */

static int oom_fd = -1;

/* The container cgroup's memory events file: v2 memory.events, or v1 memory.oom_control. */
static void open_oom(pid_t pid) {
	char path[64], line[4096];
	snprintf(path, sizeof path, "/proc/%d/cgroup", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f) return;
	char v1[PATH_MAX] = "", v2[PATH_MAX] = "";
	while (fgets(line, sizeof line, f)) {
		char *c1 = strchr(line, ':');
		char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2) continue;
		char *nl = strchr(c2, '\n');
		if (nl) *nl = 0;
		*c2 = 0;
		const char *ctrls = c1 + 1, *cg = c2 + 1;
		if (!*ctrls) snprintf(v2, sizeof v2, "%s", cg);
		for (const char *p = ctrls; p && *p;) {
			const char *comma = strchr(p, ',');
			size_t l = comma ? (size_t)(comma - p) : strlen(p);
			if (l == 6 && !memcmp(p, "memory", 6)) snprintf(v1, sizeof v1, "%s", cg);
			p = comma ? comma + 1 : NULL;
		}
	}
	fclose(f);
	char file[PATH_MAX + 64];
	if (v1[0]) {
		snprintf(file, sizeof file, "/sys/fs/cgroup/memory%s/memory.oom_control", v1);
		oom_fd = open(file, O_RDONLY | O_CLOEXEC);
	}
	if (oom_fd < 0 && v2[0]) {
		snprintf(file, sizeof file, "/sys/fs/cgroup%s/memory.events", v2);
		oom_fd = open(file, O_RDONLY | O_CLOEXEC);
	}
}

static long long oom_kills(void) {
	if (oom_fd < 0) return 0;
	char buf[1024];
	ssize_t r = pread(oom_fd, buf, sizeof buf - 1, 0);
	if (r <= 0) return 0;
	buf[r] = 0;
	for (char *p = buf; (p = strstr(p, "oom_kill ")); p++) {
		if (p == buf || p[-1] == '\n') return atoll(p + 9);
	}
	return 0;
}

/* ---------- start-up ---------- */

static void usage(const char *why) {
	warnx("%s", why);
	_exit(2);
}

/* conmon's short options, as the long ones. */
static const char *long_name(const char *a) {
	static const char *const map[][2] = {
		{"-c", "--cid"}, {"-u", "--cuuid"}, {"-n", "--name"}, {"-r", "--runtime"}, {"-b", "--bundle"},
		{"-p", "--container-pidfile"}, {"-P", "--conmon-pidfile"}, {"-l", "--log-path"}, {"-i", "--stdin"},
		{"-t", "--terminal"},
	};
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) if (!strcmp(a, map[i][0])) return map[i][1];
	return a;
}

static void parse_args(int argc, char **argv) {
	for (int i = 1; i < argc; i++) {
		const char *a = long_name(argv[i]);
		const char *val = NULL;
		char key[64];
		const char *eq = strchr(a, '=');
		if (strncmp(a, "--", 2) != 0) usage("unexpected argument");
		size_t klen = eq ? (size_t)(eq - a) : strlen(a);
		if (klen >= sizeof key) usage("unknown option");
		memcpy(key, a, klen);
		key[klen] = 0;
		if (eq) val = eq + 1;
#define FLAG(name, var) if (!strcmp(key, name)) { if (val) usage(name " takes no value"); var = 1; continue; }
		FLAG("--stdin", want_stdin)
		FLAG("--leave-stdin-open", leave_stdin_open)
		FLAG("--terminal", terminal)
		FLAG("--no-pivot", no_pivot)
		if (!val) {
			if (i + 1 >= argc) usage("option without value");
			val = argv[++i];
		}
		if (!strcmp(key, "--cid")) cid = val;
		else if (!strcmp(key, "--runtime")) runtime_bin = val;
		else if (!strcmp(key, "--bundle")) bundle = val;
		else if (!strcmp(key, "--container-pidfile")) cpidfile = val;
		else if (!strcmp(key, "--conmon-pidfile")) mpidfile = val;
		else if (!strcmp(key, "--log-path")) {
			if (!strncmp(val, "k8s-file:", 9)) log_path = val + 9;
			else if (strchr(val, ':')) usage("--log-path: only k8s-file is supported");
			else log_path = val;
		}
		else if (!strcmp(key, "--exit-dir")) exit_dir = val;
		else if (!strcmp(key, "--socket-dir-path")) socket_dir = val;
		else if (!strcmp(key, "--persist-dir")) persist_dir = val;
		else if (!strcmp(key, "--log-size-max")) {
			char *end;
			errno = 0;
			log_max = strtoll(val, &end, 10);
			if (errno || *end || log_max < 0) usage("--log-size-max: not a byte count");
		}
		else if (!strcmp(key, "--runtime-arg")) {
			if (n_runtime_args >= MAX_RUNTIME_ARGS) usage("too many --runtime-arg");
			runtime_args[n_runtime_args++] = val;
		}
		else if (!strcmp(key, "--api-version") || !strcmp(key, "--cuuid") || !strcmp(key, "--name") || !strcmp(key, "--log-level")) continue;
		else usage("unknown option");
	}
	if (!cid || !runtime_bin || !bundle || !cpidfile || !mpidfile || !log_path || !exit_dir || !socket_dir)
		usage("--cid, --runtime, --bundle, --container-pidfile, --conmon-pidfile, --log-path, --exit-dir and --socket-dir-path are required");
	size_t l = strlen(cid);
	if (l == 0 || l > 128 || cid[0] == '.' || cid[0] == '-') usage("--cid: not a container id");
	for (size_t i = 0; i < l; i++) {
		char c = cid[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
			usage("--cid: not a container id");
	}
	if (!persist_dir) persist_dir = bundle;
}

/* A bound unix socket `dirfd/name`, through /proc/self/fd so long directory names fit sun_path. */
static int bind_socket_at(int dirfd, const char *name, int type) {
	struct sockaddr_un addr = {0};
	addr.sun_family = AF_UNIX;
	if ((size_t)snprintf(addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d/%s", dirfd, name) >= sizeof addr.sun_path) return -1;
	unlinkat(dirfd, name, 0);
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) return -1;
	if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || fchmodat(dirfd, name, 0600, 0) < 0 || listen(fd, 16) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Receives the pty master runc sends over the console socket. */
static int receive_master(int listen_fd) {
	int conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (conn < 0) return -1;
	char data[256];
	struct iovec iov = {data, sizeof data};
	union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
	struct msghdr msg = {0};
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = u.buf;
	msg.msg_controllen = sizeof u.buf;
	ssize_t r;
	do r = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC); while (r < 0 && errno == EINTR);
	close(conn);
	if (r < 0) return -1;
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int))) { errno = EPROTO; return -1; }
	int fd;
	memcpy(&fd, CMSG_DATA(c), sizeof fd);
	if (!isatty(fd)) { close(fd); errno = ENOTTY; return -1; }
	return fd;
}

static pid_t read_pid_file(const char *path) {
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) return -1;
	char buf[32];
	ssize_t r = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (r <= 0) return -1;
	buf[r] = 0;
	char *end;
	long v = strtol(buf, &end, 10);
	if (v <= 0 || v > INT_MAX || (*end && *end != '\n')) return -1;
	return (pid_t)v;
}

static void set_nonblock(int fd) {
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Closes fds lo..hi: close_range(2) (Linux 5.9; called by number, as not every libc wraps it), else one by one up to RLIMIT_NOFILE. */
static void close_fds(unsigned lo, unsigned hi) {
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
	if (syscall(SYS_close_range, lo, hi, 0) == 0) return;
	struct rlimit rl;
	unsigned max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 1048576 ? (unsigned)rl.rlim_cur : 1048576;
	for (unsigned fd = lo; fd <= hi && fd < max; fd++) close((int)fd);
}

/* Exits reaped before the container pid was known (the subreaper may see the init exit early). */
#define MAX_EARLY 64
static pid_t early_pid[MAX_EARLY];
static int early_status[MAX_EARLY];
static int n_early;

static void note_early(pid_t p, int st) {
	if (n_early < MAX_EARLY) { early_pid[n_early] = p; early_status[n_early++] = st; }
}

int main(int argc, char **argv) {
	parse_args(argc, argv);
	const char *sp = getenv("_OCI_SYNCPIPE");
	if (sp && *sp) {
		char *end;
		long v = strtol(sp, &end, 10);
		if (*end || v < 3 || v > 1024) usage("_OCI_SYNCPIPE: not a file descriptor");
		sync_fd = (int)v;
		if (fcntl(sync_fd, F_SETFD, FD_CLOEXEC) < 0) usage("_OCI_SYNCPIPE: not an open file descriptor");
	}
	unsetenv("_OCI_SYNCPIPE"); /* not the runtime's business */

	/* Nothing inherited but stdio and the sync pipe reaches the runtime or stays open in the monitor. */
	if (sync_fd > 3) close_fds(3, (unsigned)sync_fd - 1);
	close_fds(sync_fd >= 3 ? (unsigned)sync_fd + 1 : 3, ~0U);

	pid_t me = fork();
	if (me < 0) fail("cannot fork the monitor: %s", strerror(errno));
	if (me > 0) _exit(0);
	setsid();
	/* The monitor outlives its starter: it keeps no pipe of the starter's open (a starter waiting for
	 * its stdio to close would wait for the container). stderr stays when it is a file (berthd's
	 * conmon.stderr) */
	{
		struct stat st;
		int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null_fd >= 0) {
			dup2(null_fd, 0);
			dup2(null_fd, 1);
			if (fstat(2, &st) < 0 || !S_ISREG(st.st_mode)) dup2(null_fd, 2);
			if (null_fd > 2) close(null_fd);
		}
	}
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) fail("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN);
	sigset_t mask, oldmask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, &oldmask);
	int sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sig_fd < 0) fail("signalfd: %s", strerror(errno));

	int bundle_fd = open(bundle, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (bundle_fd < 0) fail("bundle %s: %s", bundle, strerror(errno));
	int persist_fd = open(persist_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (persist_fd < 0) fail("persist dir %s: %s", persist_dir, strerror(errno));
	int exit_fd = open(exit_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (exit_fd < 0) fail("exit dir %s: %s", exit_dir, strerror(errno));
	unlinkat(persist_fd, "oom", 0);
	unlinkat(persist_fd, "exit", 0);

	char num[32];
	snprintf(num, sizeof num, "%d", (int)getpid());
	if (write_file_at_path(mpidfile, num, 0) < 0) fail("pid file %s: %s", mpidfile, strerror(errno));

	log_open(0);
	if (log_fd < 0) fail("cannot open log %s: %s", log_path, strerror(errno));

	/* ctl fifo: our own write end keeps it from reading EOF when berthd's writer goes. */
	unlinkat(bundle_fd, "ctl", 0);
	if (mkfifoat(bundle_fd, "ctl", 0600) < 0) fail("ctl fifo: %s", strerror(errno));
	char ctlpath[64];
	snprintf(ctlpath, sizeof ctlpath, "/proc/self/fd/%d/ctl", bundle_fd);
	ctl_fd = open(ctlpath, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
	ctl_wfd = ctl_fd < 0 ? -1 : open(ctlpath, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
	if (ctl_fd < 0 || ctl_wfd < 0) fail("ctl fifo: %s", strerror(errno));

	attach_fd = bind_socket_at(bundle_fd, "attach", SOCK_SEQPACKET);
	if (attach_fd < 0) fail("attach socket in %s: %s", bundle, strerror(errno));
	{
		int sdir = open(socket_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (sdir < 0) fail("socket dir %s: %s", socket_dir, strerror(errno));
		unlinkat(sdir, cid, 0);
		if (symlinkat(bundle, sdir, cid) < 0) fail("socket link %s/%s: %s", socket_dir, cid, strerror(errno));
		close(sdir);
	}

	/* The container's stdio: pipes, or a pty whose master runc sends over a console socket. */
	int child_in = -1, child_out = -1, child_err = -1, console_fd = -1;
	char console_path[PATH_MAX];
	if (terminal) {
		console_fd = bind_socket_at(bundle_fd, "console.sock", SOCK_STREAM);
		if (console_fd < 0) fail("console socket: %s", strerror(errno));
		if ((size_t)snprintf(console_path, sizeof console_path, "%s/console.sock", bundle) >= 100)
			snprintf(console_path, sizeof console_path, "/proc/%d/fd/%d/console.sock", (int)getpid(), bundle_fd);
		int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null_fd < 0) fail("/dev/null: %s", strerror(errno));
		child_in = child_out = child_err = null_fd;
	} else {
		int p[2];
		if (want_stdin) {
			if (pipe2(p, O_CLOEXEC) < 0) fail("pipe: %s", strerror(errno));
			child_in = p[0]; stdin_fd = p[1];
			set_nonblock(stdin_fd);
		} else {
			child_in = open("/dev/null", O_RDONLY | O_CLOEXEC);
			if (child_in < 0) fail("/dev/null: %s", strerror(errno));
		}
		if (pipe2(p, O_CLOEXEC) < 0) fail("pipe: %s", strerror(errno));
		out_fd = p[0]; child_out = p[1];
		if (pipe2(p, O_CLOEXEC) < 0) fail("pipe: %s", strerror(errno));
		err_fd = p[0]; child_err = p[1];
		set_nonblock(out_fd);
		set_nonblock(err_fd);
	}

	const char *rargv[MAX_RUNTIME_ARGS + 16];
	int n = 0;
	rargv[n++] = runtime_bin;
	for (int i = 0; i < n_runtime_args; i++) rargv[n++] = runtime_args[i];
	rargv[n++] = "create";
	rargv[n++] = "--bundle"; rargv[n++] = bundle;
	rargv[n++] = "--pid-file"; rargv[n++] = cpidfile;
	if (no_pivot) rargv[n++] = "--no-pivot";
	if (terminal) { rargv[n++] = "--console-socket"; rargv[n++] = console_path; }
	rargv[n++] = cid;
	rargv[n] = NULL;

	pid_t monitor_pid = getpid();
	pid_t rt = fork();
	if (rt < 0) fail("cannot fork the create command: %s", strerror(errno));
	if (rt == 0) {
		/* A monitor killed mid-create (berthd's limit) takes the create command with it. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != monitor_pid) _exit(127);
		if (dup2(child_in, 0) < 0 || dup2(child_out, 1) < 0 || dup2(child_err, 2) < 0) _exit(127);
		signal(SIGPIPE, SIG_DFL);
		sigprocmask(SIG_SETMASK, &oldmask, NULL);
		execvp(runtime_bin, (char *const *)rargv);
		int e = errno;
		char msg[256];
		int m = snprintf(msg, sizeof msg, "berth-monitor: exec %s: %s\n", runtime_bin, strerror(e));
		/* fd 2 is the container's stderr pipe here; the monitor's own stderr was replaced */
		if (m > 0) { ssize_t w = write(2, msg, (size_t)m); (void)w; }
		_exit(127);
	}
	if (child_in >= 0) close(child_in);
	if (!terminal) { close(child_out); close(child_err); }

	int rt_status = 0;
	for (;;) {
		int st;
		pid_t p = waitpid(-1, &st, 0);
		if (p < 0) { if (errno == EINTR) continue; fail("waitpid: %s", strerror(errno)); }
		if (p == rt) { rt_status = st; break; }
		note_early(p, st);
	}
	if (!WIFEXITED(rt_status) || WEXITSTATUS(rt_status) != 0) {
		/* runc writes its error to runtime.log; an exec failure went to the stderr pipe */
		char msg[512] = "";
		if (!terminal) {
			ssize_t r = read(err_fd, msg, sizeof msg - 1);
			if (r > 0) { msg[r] = 0; char *nl = strchr(msg, '\n'); if (nl) *nl = 0; } else msg[0] = 0;
		}
		unlinkat(bundle_fd, "attach", 0);
		if (msg[0]) { warnx("%s", msg); sync_report(-1, msg); }
		else {
			warnx("runtime create failed (status %d)", rt_status);
			sync_report(-1, NULL); /* berthd reads the runtime's log */
		}
		_exit(1);
	}
	pid_t cpid = read_pid_file(cpidfile);
	if (cpid <= 0) fail("the runtime wrote no pid to %s", cpidfile);
	if (terminal) {
		out_fd = receive_master(console_fd);
		close(console_fd);
		unlinkat(bundle_fd, "console.sock", 0);
		if (out_fd < 0) fail("no terminal from the runtime's console socket: %s", strerror(errno));
		set_nonblock(out_fd);
		stdin_fd = want_stdin ? out_fd : -1;
		if (child_in >= 0) child_in = -1;
	}
	open_oom(cpid);
	long long oom_before = oom_kills();
	sync_report(cpid, NULL);

	int exited = 0, status = 0;
	for (int i = 0; i < n_early; i++) if (early_pid[i] == cpid) { exited = 1; status = early_status[i]; }
	struct timespec drain_end = {0};
	if (exited) { clock_gettime(CLOCK_MONOTONIC, &drain_end); drain_end.tv_sec += DRAIN_MS / 1000; }

	static char buf[READ_CHUNK];
	for (;;) {
		if (exited && out_fd < 0 && err_fd < 0) break;
		int timeout = -1;
		if (exited) {
			struct timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			long long left = (drain_end.tv_sec - now.tv_sec) * 1000LL + (drain_end.tv_nsec - now.tv_nsec) / 1000000;
			if (left <= 0) break;
			timeout = left < QUIET_MS ? (int)left : QUIET_MS;
		}
		struct pollfd pf[6 + MAX_CLIENTS];
		int np = 0;
		int i_sig = np; pf[np++] = (struct pollfd){sig_fd, POLLIN, 0};
		int i_out = -1, i_err = -1, i_ctl = -1, i_att = -1, i_in = -1;
		if (out_fd >= 0) { i_out = np; pf[np++] = (struct pollfd){out_fd, POLLIN, 0}; }
		if (err_fd >= 0) { i_err = np; pf[np++] = (struct pollfd){err_fd, POLLIN, 0}; }
		if (!exited) {
			i_ctl = np; pf[np++] = (struct pollfd){ctl_fd, POLLIN, 0};
			i_att = np; pf[np++] = (struct pollfd){attach_fd, POLLIN, 0};
			if (stdin_len && stdin_fd >= 0 && stdin_fd != out_fd) { i_in = np; pf[np++] = (struct pollfd){stdin_fd, POLLOUT, 0}; }
			else if (stdin_len && stdin_fd >= 0) pf[i_out].events |= POLLOUT;
		}
		int i_cli = np;
		/* While stdin is backed up a client's packets wait in its socket (not read this round). A
		 * client that closes its socket outright meanwhile is dropped with what it queued, which
		 * keeps hung-up clients from holding the MAX_CLIENTS slots; berth's attach half-closes. */
		for (int c = 0; c < n_clients; c++)
			pf[np++] = (struct pollfd){clients[c].fd, (!exited && !stdin_len && !clients[c].in_eof) ? POLLIN : 0, 0};
		int r = poll(pf, (nfds_t)np, timeout);
		if (r < 0) {
			if (errno == EINTR) continue;
			warnx("poll: %s", strerror(errno));
			if (exited) break;
			/* The container runs on: no exit file for it. Try again shortly. */
			struct timespec ts = {0, 100 * 1000 * 1000};
			nanosleep(&ts, NULL);
			continue;
		}
		/* exited and nothing more to read: a background process that keeps the pipes open (a shared
		 * pid namespace) does not hold back the exit file */
		if (r == 0 && exited) break;

		if (pf[i_sig].revents) {
			struct signalfd_siginfo si;
			while (read(sig_fd, &si, sizeof si) > 0) {}
			int st;
			pid_t p;
			while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
				if (p == cpid && !exited) {
					exited = 1;
					status = st;
					clock_gettime(CLOCK_MONOTONIC, &drain_end);
					drain_end.tv_sec += DRAIN_MS / 1000;
				}
			}
		}
		int fds[2] = {out_fd, err_fd}, idx[2] = {i_out, i_err};
		for (int s = 0; s < 2; s++) {
			if (idx[s] < 0 || !(pf[idx[s]].revents & (POLLIN | POLLHUP | POLLERR))) continue;
			ssize_t got = read(fds[s], buf, sizeof buf);
			if (got > 0) {
				log_output(s == 0 ? 2 : 3, buf, (size_t)got);
				broadcast(s == 0 ? 2 : 3, buf, (size_t)got);
			} else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
				/* EOF, or EIO from a pty master whose last slave closed */
				if (fds[s] == stdin_fd) stdin_fd = -1;
				close(fds[s]);
				if (s == 0) out_fd = -1; else err_fd = -1;
			}
		}
		if (i_in >= 0 && pf[i_in].revents) flush_stdin();
		if (i_out >= 0 && out_fd >= 0 && stdin_fd == out_fd && stdin_len && (pf[i_out].revents & POLLOUT)) flush_stdin();
		if (i_ctl >= 0 && (pf[i_ctl].revents & POLLIN)) ctl_input();
		for (int c = 0; c < n_clients && i_cli + c < np; c++) {
			short ev = pf[i_cli + c].revents;
			if (!ev || clients[c].fd < 0) continue;
			if (ev & POLLIN) {
				if (!stdin_len) client_input(c, ev & POLLHUP); /* else: stays queued in the socket until stdin drains */
			} else if (ev & (POLLHUP | POLLERR)) {
				if (!clients[c].in_eof && want_stdin && !leave_stdin_open) { stdin_close_pending = 1; flush_stdin(); }
				drop_client(c);
			}
		}
		compact_clients();
		/* After the hang-ups of this round are dropped: clients that closed in the same instant
		 * as a new one connected must not hold the MAX_CLIENTS slots it needs. */
		if (i_att >= 0 && (pf[i_att].revents & POLLIN)) accept_client();
	}
	log_flush();

	int code = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 255;
	if (oom_kills() > oom_before) {
		if (write_atomic(persist_fd, "oom", "", 0) < 0) warnx("oom file: %s", strerror(errno));
	}
	snprintf(num, sizeof num, "%d", code);
	if (write_atomic(persist_fd, "exit", num, 1) < 0) warnx("exit file in %s: %s", persist_dir, strerror(errno));
	if (write_atomic(exit_fd, cid, num, 1) < 0) warnx("exit file %s/%s: %s", exit_dir, cid, strerror(errno));
	for (int c = 0; c < n_clients; c++) drop_client(c);
	return 0;
}

/*
 * berth-io: the few process-I/O operations Node.js cannot do itself.
 *
 *   berth-io pty [--no-stdin] [--rows R --cols C] -- CMD [ARG...]
 *       Runs CMD on a new pseudo-terminal (its controlling tty). fd 0 is copied
 *       to the terminal (not read with --no-stdin), terminal output to fd 1.
 *       Lines "ROWS COLS\n" read on fd 3 (optional) resize the terminal. End
 *       of fd 0 sends the VEOF character (^D). Exits with CMD's exit status (128+N for signal N).
 *       Used to give `runc exec -t` (run in the foreground) a terminal.
 *
 *   berth-io attach [--no-stdin] SOCKET
 *       Connects to conmon's SOCK_SEQPACKET attach socket. Each packet from
 *       conmon is one stream-type byte (2 stdout, 3 stderr) plus payload:
 *       stdout goes to fd 1, stderr to fd 3 (fd 1 when fd 3 is not open).
 *       fd 0 is sent as packets; its end shuts the socket down for writing.
 *       Exits 0 when conmon closes the socket.
 *
 *   berth-io connect NETNS|- PORT
 *       Enters network namespace NETNS (a path; "-" stays in the current one),
 *       connects TCP 127.0.0.1:PORT and copies fd 0 to it and it to fd 1. On
 *       failure prints the reason on fd 2 and exits 1.
 *
 * Build: gcc -O2 -Wall -o berth-io berth-io.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#define BUF 65536
#define PKT 8192 /* stays below conmon's read buffer, so packets are never truncated */

static void die(const char *what) {
	fprintf(stderr, "%s: %s\n", what, strerror(errno));
	exit(1);
}

static void set_nonblock(int fd) {
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int fd_open(int fd) { return fcntl(fd, F_GETFD) != -1; }

/* Writes everything to a (possibly non-blocking) fd; -1 on a broken peer. */
static int write_all(int fd, const char *p, size_t n) {
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR) continue;
			if (errno == EAGAIN) {
				struct pollfd pf = {fd, POLLOUT, 0};
				poll(&pf, 1, -1);
				continue;
			}
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Data read from one fd and not yet accepted by a non-blocking destination. */
struct pending {
	char buf[BUF];
	size_t off, len;
};

/* Tries to flush; returns -1 when the destination is broken. */
static int flush_pending(int fd, struct pending *p, int seqpacket) {
	while (p->len > 0) {
		ssize_t w = seqpacket ? send(fd, p->buf + p->off, p->len, MSG_NOSIGNAL) : write(fd, p->buf + p->off, p->len);
		if (w < 0) {
			if (errno == EINTR) continue;
			if (errno == EAGAIN) return 0;
			return -1;
		}
		p->off += (size_t)w;
		p->len -= (size_t)w;
	}
	p->off = 0;
	return 0;
}

/*
 * Copies between a connected, non-blocking socket and fds 0/1 until the socket
 * closes or breaks; returns 0. Socket data goes to fd 1; with `packets` (conmon's
 * SOCK_SEQPACKET attach socket) each packet's first byte picks the fd (3: err_fd,
 * else 1) for the rest, and fd 0 is sent in packets of at most PKT bytes. With
 * `in_open`, fd 0 is read and its end shuts the socket down for writing.
 */
static int pump(int sock, int in_open, int packets, int err_fd, const char *poll_what) {
	static struct pending in;
	static char buf[BUF + 1];
	size_t out_max = packets ? sizeof buf : BUF;
	size_t in_max = packets ? PKT : sizeof in.buf;
	for (;;) {
		struct pollfd pf[2];
		int n = 0, i_in = -1;
		pf[n++] = (struct pollfd){sock, POLLIN | (in.len ? POLLOUT : 0), 0};
		if (in_open && in.len == 0) { i_in = n; pf[n++] = (struct pollfd){0, POLLIN, 0}; }
		if (poll(pf, (nfds_t)n, -1) < 0) {
			if (errno == EINTR) continue;
			die(poll_what);
		}
		if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t r = read(sock, buf, out_max);
			if (r == 0) return 0;
			if (r < 0 && errno != EAGAIN && errno != EINTR) return 0;
			if (packets) {
				if (r > 1 && write_all(buf[0] == 3 ? err_fd : 1, buf + 1, (size_t)r - 1) < 0) return 0;
			} else if (r > 0 && write_all(1, buf, (size_t)r) < 0) {
				return 0;
			}
		}
		if (in.len && (pf[0].revents & POLLOUT)) {
			if (flush_pending(sock, &in, packets) < 0) return 0;
		}
		if (i_in >= 0 && (pf[i_in].revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t r = read(0, in.buf, in_max);
			if (r > 0) {
				in.off = 0;
				in.len = (size_t)r;
				if (flush_pending(sock, &in, packets) < 0) return 0;
			} else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
				in_open = 0;
				shutdown(sock, SHUT_WR);
			}
		}
	}
}

/* ---------- pty ---------- */

static int sigpipe_fds[2] = {-1, -1};
static pid_t child_pid = -1;

static void on_sigchld(int sig) {
	(void)sig;
	int e = errno;
	if (write(sigpipe_fds[1], "c", 1) < 0) { /* pipe full: already signalled */ }
	errno = e;
}

static void forward_signal(int sig) {
	if (child_pid > 0) kill(child_pid, sig);
}

static void resize(int master, char *line) {
	unsigned rows, cols;
	if (sscanf(line, "%u %u", &rows, &cols) != 2 || rows > 0xffff || cols > 0xffff) return;
	struct winsize ws = {0};
	ws.ws_row = (unsigned short)rows;
	ws.ws_col = (unsigned short)cols;
	ioctl(master, TIOCSWINSZ, &ws);
}

static int run_pty(int argc, char **argv) {
	unsigned rows = 0, cols = 0;
	int i = 0, use_stdin = 1;
	for (; i < argc; i++) {
		if (strcmp(argv[i], "--no-stdin") == 0) use_stdin = 0;
		else if (strcmp(argv[i], "--rows") == 0 && i + 1 < argc) rows = (unsigned)atoi(argv[++i]);
		else if (strcmp(argv[i], "--cols") == 0 && i + 1 < argc) cols = (unsigned)atoi(argv[++i]);
		else if (strcmp(argv[i], "--") == 0) { i++; break; }
		else break;
	}
	if (i >= argc) { fprintf(stderr, "pty: no command\n"); return 2; }
	char **cmd = argv + i;

	int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0) die("pty: open master");
	char *slave_name = ptsname(master);
	if (!slave_name) die("pty: ptsname");
	int slave = open(slave_name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0) die("pty: open slave");
	/* Raw from the start: bytes pass untouched (the program's own terminal does the line discipline). */
	struct termios t;
	if (tcgetattr(slave, &t) == 0) { cfmakeraw(&t); tcsetattr(slave, TCSANOW, &t); }
	if (rows && cols) {
		struct winsize ws = {0};
		ws.ws_row = (unsigned short)rows;
		ws.ws_col = (unsigned short)cols;
		ioctl(master, TIOCSWINSZ, &ws);
	}

	if (pipe2(sigpipe_fds, O_CLOEXEC | O_NONBLOCK) < 0) die("pty: pipe");
	struct sigaction sa = {0};
	sa.sa_handler = on_sigchld;
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, NULL);

	child_pid = fork();
	if (child_pid < 0) die("pty: fork");
	if (child_pid == 0) {
		setsid();
		if (ioctl(slave, TIOCSCTTY, 0) < 0) die("pty: set controlling terminal");
		dup2(slave, 0);
		dup2(slave, 1);
		dup2(slave, 2);
		if (slave > 2) close(slave);
		signal(SIGPIPE, SIG_DFL);
		execvp(cmd[0], cmd);
		fprintf(stderr, "pty: exec %s: %s\n", cmd[0], strerror(errno));
		_exit(127);
	}
	close(slave);
	struct sigaction fw = {0};
	fw.sa_handler = forward_signal;
	sigaction(SIGTERM, &fw, NULL);
	sigaction(SIGINT, &fw, NULL);
	sigaction(SIGHUP, &fw, NULL);

	set_nonblock(master);
	int in_open = use_stdin, ctl_open = fd_open(3), master_open = 1, child_done = 0, status = 0;
	static struct pending in;
	static char buf[BUF];
	char ctl[256];
	size_t ctl_len = 0;

	while (master_open) {
		struct pollfd pf[4];
		int n = 0, i_in = -1, i_ctl = -1, i_sig;
		pf[n] = (struct pollfd){master, POLLIN | (in.len ? POLLOUT : 0), 0};
		n++;
		if (in_open && in.len == 0) { i_in = n; pf[n++] = (struct pollfd){0, POLLIN, 0}; }
		if (ctl_open) { i_ctl = n; pf[n++] = (struct pollfd){3, POLLIN, 0}; }
		i_sig = n;
		pf[n++] = (struct pollfd){sigpipe_fds[0], POLLIN, 0};
		if (poll(pf, (nfds_t)n, -1) < 0) {
			if (errno == EINTR) continue;
			die("pty: poll");
		}
		if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t r = read(master, buf, sizeof buf);
			if (r > 0) {
				if (write_all(1, buf, (size_t)r) < 0) master_open = 0;
			} else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
				master_open = 0; /* EIO: every slave fd is closed */
			}
		}
		if (in.len && (pf[0].revents & POLLOUT)) {
			if (flush_pending(master, &in, 0) < 0) in.len = 0;
		}
		if (i_in >= 0 && (pf[i_in].revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t r = read(0, in.buf, sizeof in.buf);
			if (r > 0) {
				in.off = 0;
				in.len = (size_t)r;
				if (flush_pending(master, &in, 0) < 0) in.len = 0;
			} else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
				in_open = 0;
				char eof = t.c_cc[VEOF] ? (char)t.c_cc[VEOF] : 4;
				(void)!write(master, &eof, 1);
			}
		}
		if (i_ctl >= 0 && (pf[i_ctl].revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t r = read(3, ctl + ctl_len, sizeof ctl - 1 - ctl_len);
			if (r <= 0) {
				if (r == 0 || (errno != EAGAIN && errno != EINTR)) ctl_open = 0;
			} else {
				ctl_len += (size_t)r;
				ctl[ctl_len] = 0;
				char *start = ctl, *nl;
				while ((nl = strchr(start, '\n'))) { *nl = 0; resize(master, start); start = nl + 1; }
				ctl_len = strlen(start);
				memmove(ctl, start, ctl_len);
				if (ctl_len >= sizeof ctl - 1) ctl_len = 0;
			}
		}
		if (pf[i_sig].revents & POLLIN) {
			char c;
			while (read(sigpipe_fds[0], &c, 1) > 0) {}
			if (!child_done && waitpid(child_pid, &status, WNOHANG) == child_pid) child_done = 1;
			if (child_done) {
				/* The program is gone: take what it left in the terminal, then stop. */
				ssize_t r;
				while ((r = read(master, buf, sizeof buf)) > 0) write_all(1, buf, (size_t)r);
				break;
			}
		}
	}
	if (!child_done) waitpid(child_pid, &status, 0);
	if (WIFEXITED(status)) return WEXITSTATUS(status);
	if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
	return 1;
}

/* ---------- attach ---------- */

static int run_attach(int argc, char **argv) {
	int use_stdin = 1;
	int i = 0;
	if (i < argc && strcmp(argv[i], "--no-stdin") == 0) { use_stdin = 0; i++; }
	if (i >= argc) { fprintf(stderr, "attach: no socket path\n"); return 2; }
	const char *path = argv[i];

	/* Long paths: connect through /proc/self/fd/<dir>/<name>, as conmon binds it. */
	char *dir = strdup(path), *slash = strrchr(dir, '/');
	const char *name = path;
	int dirfd = -1;
	if (slash) {
		*slash = 0;
		name = slash + 1;
		dirfd = open(dir[0] ? dir : "/", O_PATH | O_CLOEXEC);
		if (dirfd < 0) die("attach: open socket directory");
	}
	struct sockaddr_un addr = {0};
	addr.sun_family = AF_UNIX;
	if (dirfd >= 0) snprintf(addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d/%s", dirfd, name);
	else snprintf(addr.sun_path, sizeof addr.sun_path, "%s", name);
	int sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (sock < 0) die("attach: socket");
	if (connect(sock, (struct sockaddr *)&addr, sizeof addr) < 0) {
		fprintf(stderr, "attach: connect %s: %s\n", path, strerror(errno));
		return 1;
	}
	set_nonblock(sock);
	return pump(sock, use_stdin, 1, fd_open(3) ? 3 : 1, "attach: poll");
}

/* ---------- connect ---------- */

static int run_connect(int argc, char **argv) {
	if (argc < 2) { fprintf(stderr, "connect: usage: connect NETNS|- PORT\n"); return 2; }
	if (strcmp(argv[0], "-") != 0) {
		int ns = open(argv[0], O_RDONLY | O_CLOEXEC);
		if (ns < 0) { fprintf(stderr, "open network namespace %s: %s\n", argv[0], strerror(errno)); return 1; }
		if (setns(ns, CLONE_NEWNET) < 0) { fprintf(stderr, "enter network namespace %s: %s\n", argv[0], strerror(errno)); return 1; }
		close(ns);
	}
	long port = strtol(argv[1], NULL, 10);
	if (port < 1 || port > 65535) { fprintf(stderr, "invalid port %s\n", argv[1]); return 2; }
	int sock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0) die("socket");
	struct sockaddr_in sin = {0};
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(sock, (struct sockaddr *)&sin, sizeof sin) < 0) {
		fprintf(stderr, "dial tcp4 127.0.0.1:%ld: connect: %s\n", port, strerror(errno));
		return 1;
	}
	set_nonblock(sock);
	return pump(sock, 1, 0, 1, "poll");
}

int main(int argc, char **argv) {
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2) { fprintf(stderr, "usage: berth-io pty|attach|connect ...\n"); return 2; }
	if (strcmp(argv[1], "pty") == 0) return run_pty(argc - 2, argv + 2);
	if (strcmp(argv[1], "attach") == 0) return run_attach(argc - 2, argv + 2);
	if (strcmp(argv[1], "connect") == 0) return run_connect(argc - 2, argv + 2);
	fprintf(stderr, "berth-io: unknown mode %s\n", argv[1]);
	return 2;
}

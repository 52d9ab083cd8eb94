/*
 * berth-spawn: starts berthd's helper commands (runc, mount, CNI plugins, berth-mount...) so that
 * berthd does not fork for them. berthd is a 70-100 MB process: every fork of it copies its page
 * tables and blocks its event loop until the child has exec'd (1.2-2.5 ms each, measured), and a
 * pod's life runs about twenty helpers. This process is small (static, about 100 kB), so its forks
 * cost a fraction of that, and berthd only writes a request and later reads one reply.
 *
 *   berth-spawn            (no arguments; berthd starts one and talks to it over stdin/stdout)
 *
 * Requests come on stdin and replies go to stdout, each a frame: u32 length (little-endian) of
 * the payload, then the payload. Integers are u32 little-endian; a string is a u32 length and that
 * many bytes (no NUL inside).
 *
 *   RUN  (op 1): u8 1, u32 id, u32 flags, str file, str cwd, str output_file, u32 argc, argc str,
 *                u32 envc, envc str, then when flags has F_STDIN, str stdin, and when it has
 *                F_CGROUPS, u32 n and n str: cgroup.procs files the command joins before it execs
 *                (a failure is written to its stderr and it exits 97 without running), and when it has
 *                F_MAXOUT, u32: how many bytes of each of stdout and stderr to keep (at most 16 MiB;
 *                4 MiB without it).
 *                With F_SYNC3 the command also gets a pipe as fd 3, whose first line (up to 4 KiB,
 *                or what came before EOF) is reported in a LINE reply; the pipe is then closed.
 *                The command runs in a new session (its own process group), with stdin from the
 *                given bytes (then closed) or /dev/null, and stdout and stderr to pipes, or both
 *                to output_file (created 0600, truncated) when that is not empty. A file without a
 *                slash is searched in the PATH of the given environment (default path otherwise).
 *                Signal mask and dispositions are the defaults.
 *   KILL (op 2): u8 2, u32 id. SIGKILLs the command's process group (and the command) if it has
 *                not been reported yet, and reports it as soon as it has exited, without waiting
 *                for its pipes (a grandchild in another session may hold them).
 *   RELEASE (op 3): u8 3, u32 id. Reports the command as soon as it has exited, with its output
 *                up to what its pipes hold then, without waiting for them to close, and kills
 *                nothing (a background child of the command may hold the pipes and go on running).
 *   SIGNAL (op 4): u8 4, u32 id, u32 signal (1-64). Sends the signal to the command alone, if it
 *                has not been reported yet.
 *
 *   LINE reply:  u8 2, u32 id, str line (F_SYNC3 only; before the EXIT reply).
 *   EXIT reply:  u8 1, u32 id, i32 exit code (-1 when killed by a signal), i32 signal (0 if none),
 *                i32 errno (0 when the command ran; else why it could not start: the exec, the
 *                chdir, the output file or the pipes failed; the exit code is -2 when it is the
 *                output file that could not be opened), u32 stdout bytes dropped, u32
 *                stderr bytes dropped (each saturating at 2^32-1), str stdout, str stderr. One per RUN, when the command has
 *                exited and both pipes are closed (with an output file: when it has exited).
 *
 * A RUN whose id names a command not yet reported is refused with EEXIST.
 * Bounds: a request is at most 16 MiB; at most 1024 commands run at once (more: EAGAIN); each of
 * stdout and stderr keeps its first 4 MiB and counts the rest. A frame it cannot parse, or EOF on
 * stdin, ends berth-spawn (exit 2 or 0) at once; the commands it started keep running, as they would
 * after a berthd that forked them died. berthd reports the runs it was waiting for as failed and
 * starts a new berth-spawn.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_FRAME (16u << 20)
#define MAX_CHILDREN 1024
#define MAX_OUTPUT (4u << 20)
#define MAX_ARGS 65536
#define OP_RUN 1
#define OP_KILL 2
#define F_STDIN 1u
#define F_SYNC3 2u
#define F_CGROUPS 4u
#define F_MAXOUT 8u
#define OP_RELEASE 3
#define OP_SIGNAL 4
#define MAX_OUTPUT_LIMIT (16u << 20)
#define MAX_LINE 4096
#define K_STDIN 3 /* poll entry kinds: 0-2 the output streams, 3 the stdin pipe */

struct out {
	char *buf;
	uint32_t len, cap, dropped;
	int fd; /* -1 when closed or not a pipe */
};

struct child {
	int used;
	uint32_t id;
	pid_t pid;
	int exited, status, killed, released;
	uint32_t max_out; /* bytes of stdout and of stderr kept */
	struct out o[3]; /* stdout, stderr, the sync pipe (fd 3) */
	int in_fd; /* stdin pipe still being written, or -1 */
	char *in_buf;
	uint32_t in_len, in_off;
};

static struct child kids[MAX_CHILDREN];
static int nkids;

static void die(const char *what) {
	fprintf(stderr, "berth-spawn: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void put32(char *p, uint32_t v) {
	p[0] = (char)(v & 0xff); p[1] = (char)((v >> 8) & 0xff); p[2] = (char)((v >> 16) & 0xff); p[3] = (char)(v >> 24);
}

static uint32_t get32(const unsigned char *p) {
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Writes all of buf to stdout (blocking: berthd always reads its end). */
static void write_all(const char *buf, size_t len) {
	while (len) {
		ssize_t n = write(1, buf, len);
		if (n < 0) {
			if (errno == EINTR) continue;
			if (errno == EAGAIN) {
				struct pollfd p = { .fd = 1, .events = POLLOUT };
				poll(&p, 1, -1);
				continue;
			}
			die("write reply"); /* berthd is gone */
		}
		buf += n;
		len -= (size_t)n;
	}
}

static void reply(uint32_t id, int32_t code, int32_t sig, int32_t err, struct out *o) {
	uint32_t l0 = o ? o[0].len : 0, l1 = o ? o[1].len : 0;
	uint32_t payload = 1 + 4 * 6 + 4 + l0 + 4 + l1;
	char head[4 + 1 + 4 * 6 + 4];
	put32(head, payload);
	head[4] = 1;
	put32(head + 5, id);
	put32(head + 9, (uint32_t)code);
	put32(head + 13, (uint32_t)sig);
	put32(head + 17, (uint32_t)err);
	put32(head + 21, o ? o[0].dropped : 0);
	put32(head + 25, o ? o[1].dropped : 0);
	put32(head + 29, l0);
	write_all(head, sizeof head);
	if (l0) write_all(o[0].buf, l0);
	char l[4];
	put32(l, l1);
	write_all(l, 4);
	if (l1) write_all(o[1].buf, l1);
}

/* A request parser over one frame: every read is bounds-checked; a short frame sets bad. */
struct rd {
	const unsigned char *p, *end;
	int bad;
};

static uint32_t rd32(struct rd *r) {
	if (r->end - r->p < 4) { r->bad = 1; return 0; }
	uint32_t v = get32(r->p);
	r->p += 4;
	return v;
}

/* A string as a fresh NUL-terminated copy; NULL (and bad) when it is short or holds a NUL. */
static char *rdstr(struct rd *r, uint32_t *lenp) {
	uint32_t n = rd32(r);
	if (r->bad || (uint32_t)(r->end - r->p) < n) { r->bad = 1; return NULL; }
	char *s = malloc((size_t)n + 1);
	if (!s) die("malloc");
	memcpy(s, r->p, n);
	s[n] = 0;
	r->p += n;
	if (lenp) *lenp = n;
	else if (memchr(s, 0, n)) { free(s); r->bad = 1; return NULL; }
	return s;
}

static void free_strv(char **v, uint32_t n) {
	if (!v) return;
	for (uint32_t i = 0; i < n; i++) free(v[i]);
	free(v);
}

static char **rdstrv(struct rd *r, uint32_t *np) {
	uint32_t n = rd32(r);
	if (r->bad || n > MAX_ARGS) { r->bad = 1; return NULL; }
	char **v = calloc((size_t)n + 1, sizeof *v);
	if (!v) die("calloc");
	for (uint32_t i = 0; i < n; i++) {
		v[i] = rdstr(r, NULL);
		if (r->bad) { free_strv(v, i); return NULL; }
	}
	*np = n;
	return v;
}

/* In the child: report errno on the error pipe and exit. */
static void child_fail(int errfd) {
	int e = errno;
	ssize_t n = write(errfd, &e, sizeof e);
	(void)n;
	_exit(127);
}

/* execve; a file the kernel cannot run (ENOEXEC: a script without "#!") runs with /bin/sh, as
 * execvp and libuv do. Returns with errno set when neither runs. */
static void exec_file(const char *path, char **argv, char **envp) {
	execve(path, argv, envp);
	if (errno != ENOEXEC) return;
	size_t n = 0;
	while (argv[n]) n++;
	char **sh = calloc(n + 2, sizeof *sh);
	if (!sh) { errno = ENOMEM; return; }
	sh[0] = "/bin/sh";
	sh[1] = (char *)path;
	for (size_t i = 1; i < n; i++) sh[i + 1] = argv[i];
	execve("/bin/sh", sh, envp);
	free(sh);
	errno = ENOEXEC;
}

/* exec_file of file, searching PATH (from envp, else a default) when file has no slash. */
static void exec_path(const char *file, char **argv, char **envp) {
	if (strchr(file, '/')) { exec_file(file, argv, envp); return; }
	const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	for (char **e = envp; *e; e++) if (strncmp(*e, "PATH=", 5) == 0) { path = *e + 5; break; }
	size_t fl = strlen(file);
	int saw_eacces = 0;
	char buf[PATH_MAX];
	for (const char *p = path;; ) {
		const char *z = strchrnul(p, ':');
		size_t dl = (size_t)(z - p);
		if (dl + 1 + fl + 1 <= sizeof buf) {
			if (dl) { memcpy(buf, p, dl); buf[dl] = '/'; memcpy(buf + dl + 1, file, fl + 1); }
			else memcpy(buf, file, fl + 1); /* an empty entry is the working directory */
			exec_file(buf, argv, envp);
			if (errno == EACCES) saw_eacces = 1;
			else if (errno != ENOENT && errno != ENOTDIR) return;
		}
		if (!*z) break;
		p = z + 1;
	}
	errno = saw_eacces ? EACCES : ENOENT;
}

static void set_nonblock(int fd) {
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) die("fcntl");
}

static struct child *find(uint32_t id) {
	for (int i = 0; i < MAX_CHILDREN; i++) if (kids[i].used && kids[i].id == id) return &kids[i];
	return NULL;
}

static void close_fd(int *fd) {
	if (*fd >= 0) { close(*fd); *fd = -1; }
}

static void finish(struct child *c) {
	int code = -1, sig = 0;
	while (waitpid(c->pid, &c->status, 0) < 0 && errno == EINTR) {}
	if (WIFEXITED(c->status)) code = WEXITSTATUS(c->status);
	else if (WIFSIGNALED(c->status)) sig = WTERMSIG(c->status);
	reply(c->id, code, sig, 0, c->o);
	for (int k = 0; k < 3; k++) { close_fd(&c->o[k].fd); free(c->o[k].buf); }
	close_fd(&c->in_fd);
	free(c->in_buf);
	memset(c, 0, sizeof *c);
	nkids--;
}

/* The LINE reply: what the sync pipe gave (to its first newline), once. */
static void sync_line(struct child *c) {
	struct out *o = &c->o[2];
	uint32_t n = o->len;
	char *nl = o->buf ? memchr(o->buf, '\n', o->len) : NULL;
	if (nl) n = (uint32_t)(nl - o->buf);
	char head[4 + 1 + 4 + 4];
	put32(head, 1 + 4 + 4 + n);
	head[4] = 2;
	put32(head + 5, c->id);
	put32(head + 9, n);
	write_all(head, sizeof head);
	if (n) write_all(o->buf, n);
	close_fd(&o->fd);
}

/* Keeps n bytes read from stream k, up to its bound; counts the rest as dropped. */
static void keep(struct child *c, int k, const char *tmp, uint32_t n) {
	struct out *o = &c->o[k];
	uint32_t max = k == 2 ? MAX_LINE : c->max_out;
	uint32_t room = max - o->len, take = n < room ? n : room;
	if (take) {
		if (o->len + take > o->cap) {
			uint32_t cap = o->cap ? o->cap : 4096;
			while (cap < o->len + take) cap *= 2;
			if (cap > max) cap = max;
			char *nb = realloc(o->buf, cap);
			if (!nb) die("realloc");
			o->buf = nb;
			o->cap = cap;
		}
		memcpy(o->buf + o->len, tmp, take);
		o->len += take;
	}
	/* Saturates: a command can write more than 4 GiB past its bound (2^32-1 means "at least"). */
	uint32_t d = n - take;
	o->dropped = o->dropped > UINT32_MAX - d ? UINT32_MAX : o->dropped + d;
}

/* What stdout and stderr hold now, without waiting for more (a released command's last output). */
static void take_pending(struct child *c) {
	char tmp[65536];
	for (int k = 0; k < 2; k++) {
		for (int rounds = 0; c->o[k].fd >= 0 && rounds < 1024; rounds++) {
			ssize_t n = read(c->o[k].fd, tmp, sizeof tmp);
			if (n < 0 && errno == EINTR) continue;
			if (n <= 0) break;
			keep(c, k, tmp, (uint32_t)n);
		}
	}
}

static void maybe_finish(struct child *c) {
	if (!c->exited) return;
	if (c->released && !c->killed) take_pending(c);
	if (c->killed || c->released) {
		if (c->o[2].fd >= 0) sync_line(c);
		close_fd(&c->o[0].fd); close_fd(&c->o[1].fd);
	}
	if (c->o[0].fd < 0 && c->o[1].fd < 0 && c->o[2].fd < 0) finish(c);
}

static void run(uint32_t id, struct rd *r) {
	uint32_t flags = rd32(r), argc = 0, envc = 0, in_len = 0;
	char *file = rdstr(r, NULL), *cwd = rdstr(r, NULL), *outfile = rdstr(r, NULL);
	char **argv = rdstrv(r, &argc), **envp = rdstrv(r, &envc);
	char *in = (flags & F_STDIN) ? rdstr(r, &in_len) : NULL;
	uint32_t ncg = 0;
	char **cgs = (flags & F_CGROUPS) ? rdstrv(r, &ncg) : NULL;
	uint32_t max_out = MAX_OUTPUT;
	if (flags & F_MAXOUT) {
		max_out = rd32(r);
		if (max_out > MAX_OUTPUT_LIMIT) r->bad = 1;
	}
	if (r->bad || !argc) {
		/* a malformed request is berthd's bug: say so and go on */
		reply(id, -1, 0, EINVAL, NULL);
		goto out;
	}
	/* An id still running is refused: KILL, RELEASE and SIGNAL name one command by its id. */
	if (find(id)) { reply(id, -1, 0, EEXIST, NULL); goto out; }
	struct child *c = NULL;
	for (int i = 0; i < MAX_CHILDREN; i++) if (!kids[i].used) { c = &kids[i]; break; }
	if (!c) { reply(id, -1, 0, EAGAIN, NULL); goto out; }

	int inp[2] = { -1, -1 }, op[3][2] = { { -1, -1 }, { -1, -1 }, { -1, -1 } }, errp[2] = { -1, -1 }, outfd = -1, err = 0, code = -1;
	if (pipe2(errp, O_CLOEXEC) < 0) { err = errno; goto fail; }
	if (in && pipe2(inp, O_CLOEXEC) < 0) { err = errno; goto fail; }
	if (*outfile) {
		/* O_NONBLOCK: a FIFO there without a reader is ENXIO, not a wait that would stop every
		 * other command this helper serves; the command then gets the file blocking, as usual. */
		outfd = open(outfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
		if (outfd < 0) { err = errno; code = -2; goto fail; }
		int fl = fcntl(outfd, F_GETFL);
		if (fl < 0 || fcntl(outfd, F_SETFL, fl & ~O_NONBLOCK) < 0) { err = errno; code = -2; goto fail; }
	} else {
		for (int k = 0; k < 2; k++) if (pipe2(op[k], O_CLOEXEC) < 0) { err = errno; goto fail; }
	}
	if ((flags & F_SYNC3) && pipe2(op[2], O_CLOEXEC) < 0) { err = errno; goto fail; }
	pid_t pid = fork();
	if (pid < 0) { err = errno; goto fail; }
	if (pid == 0) {
		sigset_t all;
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		/* every disposition back to the default: an ignored one (SIGPIPE here, or SIGINT/SIGHUP from
		 * whatever started berth-spawn) would survive the exec */
		for (int s = 1; s < _NSIG; s++) if (s != SIGKILL && s != SIGSTOP) signal(s, SIG_DFL);
		close(errp[0]);
		if (setsid() < 0) child_fail(errp[1]);
		int fd0 = in ? inp[0] : open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd0 < 0) child_fail(errp[1]);
		int fd1 = outfd >= 0 ? outfd : op[0][1], fd2 = outfd >= 0 ? outfd : op[1][1];
		/* dup2 leaves the new descriptor without O_CLOEXEC; dup3 to itself fails, so clear by hand */
		int src[4] = { fd0, fd1, fd2, op[2][1] }, nfd = (flags & F_SYNC3) ? 4 : 3;
		/* every source is above 3 (the spawner's 0-2 are open and fd 3 is not one it leaves free):
		 * move them up first so that no dup2 overwrites a later source */
		for (int t = 0; t < nfd; t++) {
			if (src[t] <= 3) { int up = fcntl(src[t], F_DUPFD_CLOEXEC, 4); if (up < 0) child_fail(errp[1]); src[t] = up; }
		}
		for (int t = 0; t < nfd; t++) if (dup2(src[t], t) < 0) child_fail(errp[1]);
		for (uint32_t i = 0; i < ncg; i++) {
			int cfd = open(cgs[i], O_WRONLY | O_CLOEXEC);
			char pidbuf[24];
			int len = snprintf(pidbuf, sizeof pidbuf, "%d", (int)getpid());
			if (cfd < 0 || write(cfd, pidbuf, (size_t)len) != len) {
				dprintf(2, "berth: cannot move %s (pid %d) into %s: %s\n", file, (int)getpid(), cgs[i], strerror(errno));
				_exit(97);
			}
			close(cfd);
		}
		if (*cwd && chdir(cwd) < 0) child_fail(errp[1]);
		exec_path(file, argv, envp);
		child_fail(errp[1]);
	}
	close_fd(&errp[1]);
	close_fd(&inp[0]);
	close_fd(&outfd);
	for (int k = 0; k < 3; k++) close_fd(&op[k][1]);
	int child_err = 0;
	ssize_t n;
	do n = read(errp[0], &child_err, sizeof child_err); while (n < 0 && errno == EINTR);
	close_fd(&errp[0]);
	memset(c, 0, sizeof *c);
	c->used = 1;
	c->id = id;
	c->pid = pid;
	c->max_out = max_out;
	c->o[0].fd = op[0][0];
	c->o[1].fd = op[1][0];
	c->o[2].fd = op[2][0];
	c->in_fd = inp[1];
	c->in_buf = in;
	c->in_len = in_len;
	in = NULL;
	nkids++;
	for (int k = 0; k < 3; k++) if (c->o[k].fd >= 0) set_nonblock(c->o[k].fd);
	if (c->in_fd >= 0) {
		set_nonblock(c->in_fd);
		if (!c->in_len) close_fd(&c->in_fd);
	}
	if (n == (ssize_t)sizeof child_err && child_err) {
		/* it never ran: reap it now and report why */
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
		reply(id, -1, 0, child_err, NULL);
		for (int k = 0; k < 3; k++) close_fd(&c->o[k].fd);
		close_fd(&c->in_fd);
		free(c->in_buf);
		memset(c, 0, sizeof *c);
		nkids--;
	}
	goto out;
fail:
	close_fd(&errp[0]); close_fd(&errp[1]); close_fd(&inp[0]); close_fd(&inp[1]); close_fd(&outfd);
	for (int k = 0; k < 3; k++) { close_fd(&op[k][0]); close_fd(&op[k][1]); }
	reply(id, code, 0, err, NULL);
out:
	free(file); free(cwd); free(outfile); free(in);
	free_strv(argv, argc); free_strv(envp, envc); free_strv(cgs, ncg);
}

static void kill_child(uint32_t id) {
	struct child *c = find(id);
	if (!c) return; /* already reported */
	c->killed = 1;
	/* The group may outlive its leader; the leader stays a zombie until reported, so the group's
	 * id is never another's here. A leader that left its group (setsid) and still runs gets it too. */
	if (kill(-c->pid, SIGKILL) < 0 && !c->exited) kill(c->pid, SIGKILL);
	close_fd(&c->in_fd);
	maybe_finish(c);
}

static void release_child(uint32_t id) {
	struct child *c = find(id);
	if (!c) return; /* already reported */
	c->released = 1;
	close_fd(&c->in_fd);
	maybe_finish(c);
}

static void signal_child(uint32_t id, uint32_t sig) {
	struct child *c = find(id);
	/* the leader stays a zombie until reported: its pid is never another's here */
	if (c && !c->exited && sig >= 1 && sig <= 64) kill(c->pid, (int)sig);
}

/* Notes each command that exited without reaping it (WNOWAIT): it stays a zombie until finish(), so
 * its pid, the id of the process group KILL signals, cannot be taken by another process meanwhile. */
static void reap(void) {
	for (int i = 0; i < MAX_CHILDREN; i++) {
		struct child *c = &kids[i];
		if (!c->used || c->exited) continue;
		siginfo_t si;
		si.si_pid = 0;
		if (waitid(P_PID, (id_t)c->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0) continue;
		c->exited = 1;
		close_fd(&c->in_fd);
		maybe_finish(c);
	}
}

static void drain(struct child *c, int k) {
	struct out *o = &c->o[k];
	char tmp[65536];
	for (;;) {
		ssize_t n = read(o->fd, tmp, sizeof tmp);
		if (n < 0) {
			if (errno == EINTR) continue;
			if (errno == EAGAIN) return;
			n = 0; /* a read error ends the stream */
		}
		if (n == 0) {
			if (k == 2) sync_line(c);
			close_fd(&o->fd);
			maybe_finish(c);
			return;
		}
		keep(c, k, tmp, (uint32_t)n);
		if (k == 2 && (o->len == MAX_LINE || memchr(o->buf, '\n', o->len))) {
			sync_line(c);
			maybe_finish(c);
			return;
		}
	}
}

static void feed(struct child *c) {
	while (c->in_off < c->in_len) {
		ssize_t n = write(c->in_fd, c->in_buf + c->in_off, c->in_len - c->in_off);
		if (n < 0) {
			if (errno == EINTR) continue;
			if (errno == EAGAIN) return;
			break; /* EPIPE: the command does not read its stdin */
		}
		c->in_off += (uint32_t)n;
	}
	close_fd(&c->in_fd);
	free(c->in_buf);
	c->in_buf = NULL;
}

/* Input buffer for request frames. */
static unsigned char *ibuf;
static size_t ilen, icap;

/* Handles every complete frame in ibuf; returns 0 at a frame it cannot accept. */
static int handle_frames(void) {
	size_t off = 0;
	while (ilen - off >= 4) {
		uint32_t len = get32(ibuf + off);
		if (len < 5 || len > MAX_FRAME) { fprintf(stderr, "berth-spawn: bad frame length %u\n", len); return 0; }
		if (ilen - off - 4 < len) break;
		struct rd r = { ibuf + off + 4, ibuf + off + 4 + len, 0 };
		unsigned op = *r.p++;
		uint32_t id = rd32(&r);
		if (op == OP_RUN) run(id, &r);
		else if (op == OP_KILL) kill_child(id);
		else if (op == OP_RELEASE) release_child(id);
		else if (op == OP_SIGNAL) { uint32_t sig = rd32(&r); if (r.bad) { fprintf(stderr, "berth-spawn: short SIGNAL frame\n"); return 0; } signal_child(id, sig); }
		else { fprintf(stderr, "berth-spawn: unknown op %u\n", op); return 0; }
		off += 4 + (size_t)len;
	}
	memmove(ibuf, ibuf + off, ilen - off);
	ilen -= off;
	return 1;
}

int main(int argc, char **argv) {
	(void)argv;
	if (argc != 1) { fprintf(stderr, "usage: berth-spawn (berthd's process starter; requests on stdin)\n"); return 2; }
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) { rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl); }
	/* Whatever berthd's starter left open without O_CLOEXEC (berthd's own fds are CLOEXEC; libuv
	 * passes the rest on) must not reach the commands: they get 0-2 (and the sync pipe) only. */
	if (syscall(SYS_close_range, 3u, ~0u, 4u /* CLOSE_RANGE_CLOEXEC */) < 0) {
		for (int fd = 3; fd < 65536; fd++) fcntl(fd, F_SETFD, FD_CLOEXEC); /* kernels before 5.11 */
	}
	signal(SIGPIPE, SIG_IGN);
	/* An ignored SIGCHLD inherited from whatever started this (SIG_IGN survives exec) would have
	 * the kernel reap the commands at once: no EXIT for them, and KILL or SIGNAL would then go to
	 * a pid that may have been reused. Commands must stay zombies until they are reported. */
	signal(SIGCHLD, SIG_DFL);
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &chld, NULL) < 0) die("sigprocmask");
	int sfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0) die("signalfd");
	set_nonblock(0);
	fcntl(0, F_SETFD, FD_CLOEXEC);
	fcntl(1, F_SETFD, FD_CLOEXEC);
	icap = 1 << 16;
	ibuf = malloc(icap);
	if (!ibuf) die("malloc");
	static struct pollfd pfd[2 + 4 * MAX_CHILDREN];
	static struct child *owner[2 + 4 * MAX_CHILDREN];
	static int kind[2 + 4 * MAX_CHILDREN];
	for (;;) {
		int n = 0;
		pfd[n] = (struct pollfd){ .fd = sfd, .events = POLLIN }; owner[n] = NULL; kind[n++] = -1;
		pfd[n] = (struct pollfd){ .fd = 0, .events = POLLIN }; owner[n] = NULL; kind[n++] = -2;
		for (int i = 0; i < MAX_CHILDREN; i++) {
			struct child *c = &kids[i];
			if (!c->used) continue;
			for (int k = 0; k < 3; k++) if (c->o[k].fd >= 0) { pfd[n] = (struct pollfd){ .fd = c->o[k].fd, .events = POLLIN }; owner[n] = c; kind[n++] = k; }
			if (c->in_fd >= 0) { pfd[n] = (struct pollfd){ .fd = c->in_fd, .events = POLLOUT }; owner[n] = c; kind[n++] = K_STDIN; }
		}
		if (poll(pfd, (nfds_t)n, -1) < 0) {
			if (errno == EINTR) continue;
			die("poll");
		}
		for (int i = 0; i < n; i++) {
			if (!pfd[i].revents) continue;
			if (kind[i] == -1) {
				struct signalfd_siginfo si;
				while (read(sfd, &si, sizeof si) > 0) {}
				reap();
			} else if (kind[i] == -2) {
				if (ilen == icap) {
					if (icap >= MAX_FRAME + 4) { fprintf(stderr, "berth-spawn: request too large\n"); return 2; }
					icap *= 2;
					unsigned char *nb = realloc(ibuf, icap);
					if (!nb) die("realloc");
					ibuf = nb;
				}
				ssize_t r = read(0, ibuf + ilen, icap - ilen);
				if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
				if (r <= 0) return 0; /* berthd is gone; what runs goes on, as after a berthd that forked it */
				ilen += (size_t)r;
				if (!handle_frames()) return 2;
			} else {
				struct child *c = owner[i];
				if (!c->used) continue; /* finished earlier in this round */
				if (kind[i] == K_STDIN) { if (c->in_fd >= 0) feed(c); }
				else if (c->o[kind[i]].fd == pfd[i].fd) drain(c, kind[i]);
			}
		}
	}
}

/*
 * berth-start: starts a container that `runc create` made, as `runc start` does, without runc's
 * own start-up (a Go runtime, its state and config files: most of StartContainer's time).
 *
 *   berth-start FIFO PID
 *
 * FIFO is the container's <runc root>/<id>/exec.fifo and PID its init process (runc's pid file).
 * The init opens the fifo for writing (blocking until a reader has it open), writes one byte and
 * execs the container's process; runc reports the container "created" while the fifo exists.
 * berth-start opens it for reading, waits for that byte, removes the fifo and exits 0. berthd runs
 * it in a process group of its own, so a berthd killed meanwhile does not take the reader away
 * from an init about to write (which would kill the init).
 *
 * `runc create` may return before its init has opened the fifo, so an empty fifo is not taken to
 * mean "no init": berth-start keeps its read end open (a late init's byte lands in the pipe) and
 * waits while PID, held through a pidfd taken first, is runc's init ("runc:[2:INIT]"). It exits 3,
 * having changed nothing, when PID is not (or no longer) that init and the fifo holds no byte, or
 * when the fifo is missing: berthd then runs `runc start`, which reports the state in its own
 * words. berthd bounds the call (it kills the process group at its limit).
 *
 * Exit: 0 started; 3 no init waits on the fifo; 2 usage; 1 any other failure (a message on stderr).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Whether /proc/PID/comm names runc's init (its name until it execs the container's process). */
static int is_runc_init(long pid) {
	char path[64], comm[32];
	snprintf(path, sizeof path, "/proc/%ld/comm", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return 0;
	ssize_t n = read(fd, comm, sizeof comm - 1);
	close(fd);
	if (n <= 0) return 0;
	comm[n] = 0;
	return strcmp(comm, "runc:[2:INIT]\n") == 0;
}

/* One non-blocking read: 1 the byte came, 0 not yet (no writer, or nothing written), -1 error. */
static int try_read(int fd, const char *path) {
	char buf[16];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n > 0) return 1;
		if (n == 0 || errno == EAGAIN) return 0;
		if (errno == EINTR) continue;
		fprintf(stderr, "berth-start: read %s: %s\n", path, strerror(errno));
		return -1;
	}
}

int main(int argc, char **argv) {
	if (argc != 3) {
		fprintf(stderr, "usage: berth-start FIFO PID\n");
		return 2;
	}
	const char *path = argv[1];
	char *end;
	errno = 0;
	long pid = strtol(argv[2], &end, 10);
	if (errno || *end || end == argv[2] || pid <= 0 || pid > 0x3fffffff) {
		fprintf(stderr, "berth-start: invalid pid %s\n", argv[2]);
		return 2;
	}
	/* The pidfd first: what is checked below is that process, never a later one with its pid. */
	int pidfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
	if (pidfd < 0) {
		if (errno == ESRCH) return 3;
		fprintf(stderr, "berth-start: pidfd_open %ld: %s\n", pid, strerror(errno));
		return 1;
	}
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT) return 3;
		fprintf(stderr, "berth-start: open %s: %s\n", path, strerror(errno));
		return 1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode)) {
		fprintf(stderr, "berth-start: %s is not a fifo\n", path);
		return 1;
	}
	int hung = 0;
	for (;;) {
		int r = try_read(fd, path);
		if (r < 0) return 1;
		if (r > 0) break;
		/* No byte yet: wait only while PID is still runc's init (it has not exec'd nor died). */
		struct pollfd p = { .fd = pidfd, .events = POLLIN };
		int exited = poll(&p, 1, 0) > 0;
		if (exited || !is_runc_init(pid)) {
			/* The init may have written just before it went: read once more, then give up. */
			r = try_read(fd, path);
			if (r < 0) return 1;
			if (r == 0) return 3;
			break;
		}
		/*
		 * Sleep until the byte comes, the init goes, or 5 ms pass (an init that has not opened the
		 * fifo yet raises nothing on it). A fifo whose writer came and went polls as hung up at
		 * once: from then on only the pidfd and the timeout wake berth-start.
		 */
		struct pollfd w[2] = { { .fd = pidfd, .events = POLLIN }, { .fd = fd, .events = POLLIN } };
		int n = poll(w, hung ? 1 : 2, 5);
		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "berth-start: poll %s: %s\n", path, strerror(errno));
			return 1;
		}
		if (n > 0 && !hung && (w[1].revents & POLLHUP) && !(w[1].revents & POLLIN)) hung = 1;
	}
	close(fd);
	if (unlink(path) < 0 && errno != ENOENT) {
		fprintf(stderr, "berth-start: remove %s: %s\n", path, strerror(errno));
		return 1;
	}
	return 0;
}

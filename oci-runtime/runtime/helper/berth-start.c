/*
 * berth-start: starts a container that `runc create` made, as `runc start` does, without runc's
 * own start-up (a Go runtime, its state and config files: most of StartContainer's time).
 *
 *   berth-start FIFO
 *
 * FIFO is the container's <runc root>/<id>/exec.fifo. Its init blocks opening it for writing until
 * a reader opens it, then writes one byte and execs the container's process; runc reports the
 * container "created" while the fifo exists. berth-start opens it for reading, reads that byte,
 * removes the fifo and exits 0. berthd runs it in a process group of its own, so a berthd killed
 * meanwhile does not take the reader away from an init about to write (which would kill the init).
 *
 * The open never waits: when no init holds the fifo (the init died, or the container was started
 * already), it exits 3 having changed nothing, and berthd runs `runc start`, which reports the
 * state in its own words. berthd bounds the call (it kills the process group at its limit).
 *
 * Exit: 0 started; 3 no init holds the fifo; 2 usage; 1 any other failure (a message on stderr).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
	if (argc != 2) {
		fprintf(stderr, "usage: berth-start FIFO\n");
		return 2;
	}
	const char *path = argv[1];
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
	char buf[16];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n > 0) break;
		/* End of file: no writer, so no init waits on this fifo. */
		if (n == 0) return 3;
		if (errno == EINTR) continue;
		if (errno != EAGAIN) {
			fprintf(stderr, "berth-start: read %s: %s\n", path, strerror(errno));
			return 1;
		}
		/*
		 * The woken init has not written yet. A writer that closes without writing raises no
		 * POLLHUP for a reader that never saw it open, hence the timeout: read again to notice.
		 */
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 100) < 0 && errno != EINTR) {
			fprintf(stderr, "berth-start: poll %s: %s\n", path, strerror(errno));
			return 1;
		}
	}
	close(fd);
	if (unlink(path) < 0 && errno != ENOENT) {
		fprintf(stderr, "berth-start: remove %s: %s\n", path, strerror(errno));
		return 1;
	}
	return 0;
}

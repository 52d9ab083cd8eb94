/*
 * berth-exec: runs `<runtime> exec --detach ...` as a child subreaper and reports the exec'd
 * process's own exit status, so ExecSync does not depend on the output pipes closing.
 *
 *   berth-exec PIDFILE RUNTIME [ARG...]
 *
 * The runtime (given --detach by the caller) hands its stdin/stdout/stderr to the exec'd
 * process and exits; the process is re-parented to us (PR_SET_CHILD_SUBREAPER) and we reap it.
 * Our own copies of fds 0-2 are replaced by /dev/null once the runtime is forked, so a
 * background child of the exec'd process is the only other holder of the pipes.
 *
 * Fd 3 (a pipe from berthd) receives exactly one line:
 *   "runtime <code>"   the runtime itself failed (its exit code, or 128+signal); no process ran
 *   "exit <code>"      the exec'd process exited with <code>
 *   "signal <n>"       the exec'd process was killed by signal <n>
 *   "error <text>"     something else went wrong
 * A SIGTERM to berth-exec kills the exec'd process (SIGKILL): at once when its pid is known, else
 * as soon as the runtime has written it (the runtime may start the process after berthd gave up:
 * killing berth-exec alone would leave it running). berthd sends it on a timeout or a cancel.
 *
 * SIGCHLD and SIGTERM stay blocked and are taken with sigwaitinfo, so an exit is reaped the moment
 * it happens (no polling interval on ExecSync's path); a signal that arrives between a waitpid
 * that found nothing and the sigwaitinfo stays pending and ends the wait at once.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define STATUS_FD 3
#define MAX_EARLY 256

static void report(const char *fmt, long v, const char *text) {
	char line[512];
	int n = text ? snprintf(line, sizeof line, "%s %s\n", fmt, text) : snprintf(line, sizeof line, "%s %ld\n", fmt, v);
	if (n < 0) return;
	if ((size_t)n >= sizeof line) n = sizeof line - 1;
	ssize_t w = write(STATUS_FD, line, (size_t)n);
	(void)w;
}

static pid_t read_pid(const char *path) {
	char buf[32];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0) return -1;
	buf[n] = 0;
	char *end;
	long v = strtol(buf, &end, 10);
	if (v <= 1 || v > 4194304) return -1;
	return (pid_t)v;
}

int main(int argc, char **argv) {
	if (argc < 3) {
		fprintf(stderr, "usage: berth-exec PIDFILE RUNTIME [ARG...]\n");
		return 2;
	}
	if (fcntl(STATUS_FD, F_SETFD, FD_CLOEXEC) < 0) {
		fprintf(stderr, "berth-exec: fd 3 (status pipe) is not open: %s\n", strerror(errno));
		return 2;
	}
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		report("error", 0, "cannot become a child subreaper");
		return 1;
	}
	/* SIG_DFL (not an inherited SIG_IGN, which would reap children for us) and blocked: queued for sigwaitinfo. */
	signal(SIGCHLD, SIG_DFL);
	sigset_t waitset;
	sigemptyset(&waitset);
	sigaddset(&waitset, SIGTERM);
	sigaddset(&waitset, SIGCHLD);
	sigprocmask(SIG_BLOCK, &waitset, NULL);

	pid_t rt = fork();
	if (rt < 0) {
		report("error", 0, "fork failed");
		return 1;
	}
	if (rt == 0) {
		sigprocmask(SIG_UNBLOCK, &waitset, NULL);
		prctl(PR_SET_CHILD_SUBREAPER, 0);
		execvp(argv[2], argv + 2);
		fprintf(stderr, "berth-exec: cannot run %s: %s\n", argv[2], strerror(errno));
		_exit(127);
	}
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull >= 0) {
		dup2(devnull, 0);
		dup2(devnull, 1);
		dup2(devnull, 2);
		if (devnull > 2) close(devnull);
	}

	pid_t early_pid[MAX_EARLY];
	int early_status[MAX_EARLY];
	int early = 0;
	pid_t target = -1;
	int terminate = 0;
	for (;;) {
		int st;
		pid_t p = waitpid(-1, &st, WNOHANG);
		if (p == 0) {
			/* Nothing to reap: sleep until a child exits or berthd sends SIGTERM. */
			siginfo_t si;
			if (sigwaitinfo(&waitset, &si) == SIGTERM) {
				terminate = 1;
				if (target > 0) kill(target, SIGKILL);
			}
			continue;
		}
		if (p < 0) {
			if (errno == EINTR) continue;
			report("error", 0, "the exec'd process was not re-parented to berth-exec");
			return 1;
		}
		if (p == rt) {
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
				report("runtime", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), NULL);
				return 0;
			}
			target = read_pid(argv[1]);
			if (target < 0) {
				report("error", 0, "the runtime wrote no pid file");
				return 1;
			}
			if (terminate) kill(target, SIGKILL);
			for (int i = 0; i < early; i++) {
				if (early_pid[i] == target) {
					p = target;
					st = early_status[i];
					break;
				}
			}
			if (p != target) continue;
		}
		if (target < 0) {
			if (early < MAX_EARLY) {
				early_pid[early] = p;
				early_status[early] = st;
				early++;
			}
			continue;
		}
		if (p != target) continue;
		if (WIFEXITED(st)) report("exit", WEXITSTATUS(st), NULL);
		else report("signal", WTERMSIG(st), NULL);
		return 0;
	}
}

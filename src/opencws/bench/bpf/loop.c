/* The benchmark's workload, compiled at run time with the system cc. It times itself with
 * clock_gettime and prints nanoseconds per iteration twice: wall clock (CLOCK_MONOTONIC), then CPU time (the
 * process's CLOCK_PROCESS_CPUTIME_ID plus its waited-for children's, from getrusage): on a machine shared
 * with other jobs the CPU time leaves out the time the loop waited for a core.
 *   loop openclose PATH N     open(PATH, O_RDONLY) + close, N times
 *   loop forkexec PROG N      fork + execve(PROG) + waitpid, N times
 *   loop chown PATH N         chown(PATH, 0, 0) N times (run as root on a file of root's: no change)
 *   loop burst PATH N         N opens of PATH (each an event), as fast as possible
 *   loop files N RATE PATH... N opens cycling over the PATHs (open + close each); RATE opens per second,
 *                             paced in slices of a millisecond (0: as fast as possible)
 *   loop setuid N             N iterations of setresuid(-1, 65534, -1) + setresuid(-1, 0, -1) (run as root)
 *   loop forkstorm N WAVE     N short-lived processes, WAVE alive at once: each child waits on a pipe that
 *                             the parent closes once the wave is forked, then exits; the parent reaps them
 * With OPENCWS_BENCH_DD set, the loop's thread first registers a dd context record holding a span (as
 * opencws.tracing does: opencws/probe/bpf/ddcontext.h), so that the probe reads its ids at every event. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static unsigned long long dd_record[2] = {0x1122334455667788ULL, 0x99aabbccddeeff00ULL}; /* span id, trace id */

static void dd_register(void)
{
	if (getenv("OPENCWS_BENCH_DD"))
		prctl(0x4f435753, (unsigned long)dd_record, 0x3130787464646464ULL, 0, 0);
}

static double now_ns(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static double children_cpu_ns(void)
{
	struct rusage ru;
	getrusage(RUSAGE_CHILDREN, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e9 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e3;
}

/* N opens (+ close) cycling over the paths; at `rate` opens per second in slices of a millisecond (each slice's
 * opens at once, then a sleep to the slice's end), or as fast as possible when rate <= 0 */
static int paced_opens(long n, double rate, char **paths, int npaths, double start)
{
	long per_slice = rate > 0 ? (long)(rate / 1000 + 0.5) : n;
	if (per_slice < 1)
		per_slice = 1;
	double slice_ns = rate > 0 ? 1e9 * per_slice / rate : 0;
	long done = 0, slice = 0;
	while (done < n) {
		for (long j = 0; j < per_slice && done < n; j++, done++) {
			const char *p = paths[done % npaths];
			int fd = open(p, O_RDONLY);
			if (fd < 0) {
				perror(p);
				return 1;
			}
			close(fd);
		}
		if (rate > 0) {
			slice++;
			double due = start + slice * slice_ns;
			struct timespec ts = {(time_t)(due / 1e9), (long)(due - (double)(time_t)(due / 1e9) * 1e9)};
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		}
	}
	return 0;
}

static int fork_storm(long n, long wave)
{
	if (wave <= 0)
		wave = 1;
	for (long done = 0; done < n;) {
		int fds[2];
		if (pipe(fds)) {
			perror("pipe");
			return 1;
		}
		long k = 0;
		for (; k < wave && done + k < n; k++) {
			pid_t pid = fork();
			if (pid < 0) {
				perror("fork");
				return 1;
			}
			if (pid == 0) {
				char c;
				close(fds[1]);
				while (read(fds[0], &c, 1) < 0)
					;
				_exit(0);
			}
		}
		close(fds[0]);
		close(fds[1]);
		for (long j = 0; j < k; j++) {
			int status;
			if (wait(&status) < 0) {
				perror("wait");
				return 1;
			}
		}
		done += k;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s openclose|forkexec|burst|chown PATH N | files N RATE PATH... | setuid N |"
				" forkstorm N WAVE\n", argv[0]);
		return 2;
	}
	const char *mode = argv[1], *path = argv[2];
	int files = !strcmp(mode, "files"), setuid_loop = !strcmp(mode, "setuid"), storm = !strcmp(mode, "forkstorm");
	if ((files && argc < 5) || (storm && argc != 4) || (setuid_loop && argc != 3)
	    || (!files && !storm && !setuid_loop && argc != 4))
		return 2;
	long n = atol(files || setuid_loop || storm ? argv[2] : argv[3]);
	if (n <= 0)
		return 2;
	dd_register();
	double start = now_ns(CLOCK_MONOTONIC);
	double cpu_start = now_ns(CLOCK_PROCESS_CPUTIME_ID) + children_cpu_ns();
	if (files) {
		if (paced_opens(n, atof(argv[3]), argv + 4, argc - 4, start))
			return 1;
	} else if (setuid_loop) {
		for (long i = 0; i < n; i++) {
			/* raw syscalls: glibc's wrappers would signal every thread (there is one) */
			if (syscall(SYS_setresuid, -1, 65534, -1) || syscall(SYS_setresuid, -1, 0, -1)) {
				perror("setresuid");
				return 1;
			}
		}
	} else if (storm) {
		if (fork_storm(n, atol(argv[3])))
			return 1;
	} else if (!strcmp(mode, "openclose") || !strcmp(mode, "burst")) {
		for (long i = 0; i < n; i++) {
			int fd = open(path, O_RDONLY);
			if (fd < 0) {
				perror(path);
				return 1;
			}
			close(fd);
		}
	} else if (!strcmp(mode, "chown")) {
		for (long i = 0; i < n; i++) {
			if (chown(path, 0, 0)) {
				perror(path);
				return 1;
			}
		}
	} else if (!strcmp(mode, "forkexec")) {
		char *const args[] = {(char *)path, NULL};
		char *const env[] = {NULL};
		for (long i = 0; i < n; i++) {
			pid_t pid = fork();
			if (pid < 0) {
				perror("fork");
				return 1;
			}
			if (pid == 0) {
				execve(path, args, env);
				_exit(127);
			}
			int status;
			if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
				fprintf(stderr, "%s failed\n", path);
				return 1;
			}
		}
	} else {
		fprintf(stderr, "unknown mode %s\n", mode);
		return 2;
	}
	double wall = now_ns(CLOCK_MONOTONIC) - start;
	double cpu = now_ns(CLOCK_PROCESS_CPUTIME_ID) + children_cpu_ns() - cpu_start;
	printf("%.1f %.1f\n", wall / n, cpu / n);
	return 0;
}

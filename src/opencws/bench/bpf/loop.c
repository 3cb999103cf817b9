/* The benchmark's workload, compiled at run time with the system cc. It times itself with
 * clock_gettime and prints nanoseconds per iteration twice: wall clock (CLOCK_MONOTONIC), then CPU time (the
 * process's CLOCK_PROCESS_CPUTIME_ID plus its waited-for children's, from getrusage): on a machine shared
 * with other jobs the CPU time leaves out the time the loop waited for a core.
 *   loop openclose PATH N     open(PATH, O_RDONLY) + close, N times
 *   loop forkexec PROG N      fork + execve(PROG) + waitpid, N times
 *   loop burst PATH N         N opens of PATH (each an event), as fast as possible */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s openclose|forkexec|burst PATH N\n", argv[0]);
		return 2;
	}
	const char *mode = argv[1], *path = argv[2];
	long n = atol(argv[3]);
	if (n <= 0)
		return 2;
	double start = now_ns(CLOCK_MONOTONIC);
	double cpu_start = now_ns(CLOCK_PROCESS_CPUTIME_ID) + children_cpu_ns();
	if (!strcmp(mode, "openclose") || !strcmp(mode, "burst")) {
		for (long i = 0; i < n; i++) {
			int fd = open(path, O_RDONLY);
			if (fd < 0) {
				perror(path);
				return 1;
			}
			close(fd);
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

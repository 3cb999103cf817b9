/* A path buffer rewritten by another thread during the call, for the probe's tests.
 *
 * usage: path_race chmod|unlink|utimes|link TARGET DECOY CALLS
 * One thread makes the call on a shared buffer (chmod 0640; unlink after creating TARGET again; utimes to 1000 s;
 * link to TARGET.link after removing it) while another flips the buffer between TARGET and DECOY (the same
 * length) as fast as it can. Prints the number of calls that succeeded.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static char buf[4096];
static const char *target, *decoy;
static volatile int done;

static void *flipper(void *arg)
{
	size_t n = strlen(target) + 1;
	while (!done) {
		memcpy(buf, target, n);
		__asm__ volatile("" ::: "memory");
		memcpy(buf, decoy, n);
		__asm__ volatile("" ::: "memory");
	}
	return arg;
}

int main(int argc, char **argv)
{
	if (argc != 5 || strlen(argv[2]) != strlen(argv[3]))
		return 2;
	int unlink_mode = !strcmp(argv[1], "unlink"), utimes_mode = !strcmp(argv[1], "utimes");
	struct timeval tv[2] = {{1000, 0}, {1000, 0}};
	int link_mode = !strcmp(argv[1], "link");
	char linkname[4200];
	snprintf(linkname, sizeof(linkname), "%s.link", target);
	target = argv[2];
	decoy = argv[3];
	strcpy(buf, decoy);
	pthread_t t;
	pthread_create(&t, NULL, flipper, NULL);
	long calls = atol(argv[4]), ok = 0;
	for (long i = 0; i < calls; i++) {
		if (unlink_mode) {
			int fd = open(target, O_CREAT | O_WRONLY, 0600);
			if (fd >= 0)
				close(fd);
			ok += unlink(buf) == 0;
		} else if (link_mode) {
			unlink(linkname);
			ok += link(buf, linkname) == 0;
		} else if (utimes_mode) {
			ok += utimes(buf, tv) == 0;
		} else {
			ok += chmod(buf, 0640) == 0;
		}
	}
	done = 1;
	pthread_join(t, NULL);
	printf("%ld\n", ok);
	return 0;
}

/* A path buffer rewritten by another thread during the call, for the probe's tests.
 *
 * usage: path_race chmod|chown|unlink|utimes|link|setxattr|mkdir|rename|rmdir TARGET DECOY CALLS
 * One thread makes the call on a shared buffer (chmod 0640; unlink after creating TARGET again; utimes to 1000 s;
 * link to TARGET.link after removing it; setxattr user.race to a new value; mkdir after removing the TARGET directory; rename to
 * TARGET.moved after creating TARGET again; rmdir after making the TARGET directory; chown to 1000, 1001, 1002 in
 * turn, owner and group) while another flips the buffer between TARGET and DECOY (the same
 * length) as fast as it can. Prints the number of calls that succeeded.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/xattr.h>
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
	int xattr_mode = !strcmp(argv[1], "setxattr"), mkdir_mode = !strcmp(argv[1], "mkdir");
	int rename_mode = !strcmp(argv[1], "rename"), rmdir_mode = !strcmp(argv[1], "rmdir");
	int chown_mode = !strcmp(argv[1], "chown");
	char linkname[4200], moved[4200];
	snprintf(linkname, sizeof(linkname), "%s.link", argv[2]);
	snprintf(moved, sizeof(moved), "%s.moved", argv[2]);
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
		} else if (xattr_mode) {
			char v[24]; /* (a new value each time: setting the same one changes nothing, stamps nothing) */
			int n = snprintf(v, sizeof(v), "%ld", i);
			ok += setxattr(buf, "user.race", v, n, 0) == 0;
		} else if (mkdir_mode) {
			rmdir(target);
			ok += mkdir(buf, 0700) == 0;
		} else if (rmdir_mode) {
			mkdir(target, 0700);
			ok += rmdir(buf) == 0;
		} else if (rename_mode) {
			int fd = open(target, O_CREAT | O_WRONLY, 0600);
			if (fd >= 0)
				close(fd);
			ok += rename(buf, moved) == 0;
		} else if (link_mode) {
			unlink(linkname);
			ok += link(buf, linkname) == 0;
		} else if (chown_mode) {
			ok += chown(buf, 1000 + i % 3, 1000 + i % 3) == 0;
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

/* Two chowns of one file, the second one's change landing between the first one's start and its own change, for
 * the probe's tests.
 *
 * usage: owner_race FILE
 * A write to FILE from a page that userfaultfd leaves missing holds the file's inode lock while it waits for the
 * page. Meanwhile thread "first" calls chown(FILE, 2000, 2000), then thread "second" chown(FILE, 1000, 1000):
 * both read the owner at their start (root's), then wait for the lock, in that order. The page is then supplied:
 * the write ends, "first" changes the owner to 2000, then "second" changes 2000 to 1000. So the owner before
 * "second" is 2000, not the root's it saw at its start. Prints "first_tid second_tid". Run as root.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static const char *file;
static char *page;
static volatile pid_t tids[2];

static void *writer(void *arg)
{
	int fd = open(file, O_WRONLY);
	if (fd < 0 || write(fd, page, 16) != 16) {
		perror("write");
		exit(1);
	}
	close(fd);
	return arg;
}

static void *chowner(void *arg)
{
	long which = (long)arg;
	tids[which] = gettid();
	int id = which == 0 ? 2000 : 1000;
	if (chown(file, id, id)) {
		perror("chown");
		exit(1);
	}
	return arg;
}

/* wait until the thread sleeps uninterruptibly (on the inode lock) */
static void wait_blocked(long which)
{
	for (int i = 0; i < 5000; i++) {
		if (tids[which]) {
			char path[64], stat[512];
			snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tids[which]);
			int fd = open(path, O_RDONLY);
			ssize_t n = fd >= 0 ? read(fd, stat, sizeof(stat) - 1) : -1;
			if (fd >= 0)
				close(fd);
			if (n > 0) {
				stat[n] = 0;
				char *p = strrchr(stat, ')');
				if (p && p[1] == ' ' && p[2] == 'D')
					return;
			}
		}
		usleep(1000);
	}
	fprintf(stderr, "thread %ld never blocked\n", which);
	exit(1);
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	file = argv[1];
	int uffd = syscall(SYS_userfaultfd, O_CLOEXEC);
	struct uffdio_api api = {.api = UFFD_API};
	if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api)) {
		perror("userfaultfd");
		return 1;
	}
	long size = sysconf(_SC_PAGESIZE);
	page = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct uffdio_register reg = {.range = {.start = (unsigned long)page, .len = size},
				      .mode = UFFDIO_REGISTER_MODE_MISSING};
	if (page == MAP_FAILED || ioctl(uffd, UFFDIO_REGISTER, &reg)) {
		perror("register");
		return 1;
	}
	pthread_t w, c[2];
	pthread_create(&w, NULL, writer, NULL);
	struct pollfd pfd = {.fd = uffd, .events = POLLIN};
	struct uffd_msg msg;
	if (poll(&pfd, 1, 10000) != 1 || read(uffd, &msg, sizeof(msg)) != sizeof(msg) ||
	    msg.event != UFFD_EVENT_PAGEFAULT) {
		fprintf(stderr, "the write never faulted\n");
		return 1;
	}
	/* the write waits for its page, holding the inode lock */
	pthread_create(&c[0], NULL, chowner, (void *)0);
	wait_blocked(0);
	pthread_create(&c[1], NULL, chowner, (void *)1);
	wait_blocked(1);
	char *src = calloc(1, size);
	struct uffdio_copy copy = {.dst = (unsigned long)page, .src = (unsigned long)src, .len = size};
	if (ioctl(uffd, UFFDIO_COPY, &copy)) {
		perror("UFFDIO_COPY");
		return 1;
	}
	pthread_join(w, NULL);
	pthread_join(c[0], NULL);
	pthread_join(c[1], NULL);
	printf("%d %d\n", tids[0], tids[1]);
	return 0;
}

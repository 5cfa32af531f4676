// SPDX-License-Identifier: GPL-2.0
/*
 * Lazy-restore throughput: T threads stand in for vCPUs, each touching its
 * own slice of a guest_memfd page by page (sequential access, a write per
 * page), while the gmem-restore handler fills the pages from a snapshot.
 * Reports pages/s from the first touch to the last; the result is checked
 * against the snapshot.
 *
 * Usage: restore-bench MODE [-p PAGES] [-t THREADS] [-H HANDLERS]
 *                          [-w WINDOW] [-d READ_DELAY_US]
 *   MODE  sync         gmem-restore, HANDLERS synchronous threads
 *         uring        gmem-restore, one io_uring thread
 *         first-touch  anonymous memory, no userfaultfd, no snapshot: the
 *                      kernel's own page fault for the same access pattern
 *   -d    simulated storage latency: each snapshot read waits this long
 *         first (nanosleep in sync, a linked io_uring timeout in uring)
 * Output, one line of key=value; exit 4 (kselftest's skip) if the kernel
 * lacks guest_memfd mmap or its userfaultfd support.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "gmem-restore.h"
#include "gmem-vm.h"

#define SKIP 4

static long page_size;
static size_t nr_pages = 4096, nr_threads = 1;
static char *area;

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void skip(const char *why)
{
	printf("SKIP: %s\n", why);
	exit(SKIP);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The snapshot's byte @i of page @n. */
static char pattern(size_t n, size_t i)
{
	return (char)(n * 13 + i / 8);
}

static int make_snapshot(void)
{
	int fd = memfd_create("snapshot", MFD_CLOEXEC);
	char *page = malloc(page_size);

	if (fd < 0 || !page)
		die("memfd_create");
	for (size_t n = 0; n < nr_pages; n++) {
		for (long i = 0; i < page_size; i++)
			page[i] = pattern(n, i);
		if (pwrite(fd, page, page_size, n * page_size) != page_size)
			die("writing the snapshot");
	}
	free(page);
	return fd;
}

static int gmem_create(size_t size)
{
	struct gmem_vm v;
	int gmem;

	gmem_vm_require(&v);
	gmem = gmem_vm_create(&v, size);
	if (gmem < 0)
		die("KVM_CREATE_GUEST_MEMFD");
	return gmem;
}

static int uffd_register(char *start, size_t size)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = {
		.range = { .start = (unsigned long)start, .len = size },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	int uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (uffd < 0)
		skip("no userfaultfd");
	if (ioctl(uffd, UFFDIO_API, &api))
		die("UFFDIO_API");
	if (ioctl(uffd, UFFDIO_REGISTER, &reg)) {
		if (errno == EINVAL)
			skip("userfaultfd on guest_memfd is not supported");
		die("UFFDIO_REGISTER");
	}
	return uffd;
}

/* Thread i: slice i, front to back, one write per page. */
static void *vcpu(void *arg)
{
	size_t per = nr_pages / nr_threads, first = (size_t)arg * per;
	size_t end = (size_t)arg == nr_threads - 1 ? nr_pages : first + per;

	for (size_t n = first; n < end; n++)
		*(volatile char *)(area + n * page_size) = pattern(n, 0);
	return NULL;
}

static void usage(const char *prog)
{
	fprintf(stderr, "usage: %s sync|uring|first-touch [-p PAGES] [-t THREADS] [-H HANDLERS] [-w WINDOW] [-d READ_DELAY_US]\n",
		prog);
	exit(2);
}

int main(int argc, char **argv)
{
	struct restore_config cfg = { .window = 1, .threads = 1 };
	struct restore_stats st = { 0 };
	struct restore *r = NULL;
	bool map_image = false;
	const char *mode;
	pthread_t *threads;
	double t0, seconds;
	size_t size;
	int opt;

	page_size = sysconf(_SC_PAGESIZE);
	if (argc < 2)
		usage(argv[0]);
	mode = argv[1];
	if (!strcmp(mode, "uring"))
		cfg.mode = RESTORE_URING;
	else if (strcmp(mode, "sync") && strcmp(mode, "first-touch"))
		usage(argv[0]);
	optind = 2;
	while ((opt = getopt(argc, argv, "p:t:H:w:a:d:m")) != -1) {
		switch (opt) {
		case 'p': nr_pages = strtoul(optarg, NULL, 0); break;
		case 't': nr_threads = strtoul(optarg, NULL, 0); break;
		case 'H': cfg.threads = strtoul(optarg, NULL, 0); break;
		case 'w': cfg.window = strtoul(optarg, NULL, 0); break;
		case 'd': cfg.read_delay_us = strtoul(optarg, NULL, 0); break;
		case 'a': cfg.prefetch = strtoul(optarg, NULL, 0); break;
		case 'm': map_image = true; break;
		default: usage(argv[0]);
		}
	}
	if (!nr_pages || !nr_threads || nr_threads > nr_pages ||
	    !cfg.window || !cfg.threads)
		usage(argv[0]);
	size = nr_pages * page_size;

	if (!strcmp(mode, "first-touch")) {
		area = mmap(NULL, size, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		/* One fault per 4K page, like the restore. */
		if (area == MAP_FAILED || madvise(area, size, MADV_NOHUGEPAGE))
			die("mmap");
	} else {
		cfg.snapshot = make_snapshot();
		if (map_image) {
			cfg.image = mmap(NULL, size, PROT_READ, MAP_PRIVATE,
					 cfg.snapshot, 0);
			if (cfg.image == MAP_FAILED)
				die("mmap snapshot");
		}
		cfg.gmem = gmem_create(size);
		area = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED,
			    cfg.gmem, 0);
		if (area == MAP_FAILED)
			die("mmap");
		cfg.area = area;
		cfg.size = size;
		cfg.uffd = uffd_register(area, size);
		r = restore_start(&cfg);
		if (!r)
			die("restore_start");
	}

	threads = calloc(nr_threads, sizeof(*threads));
	if (!threads)
		die("calloc");
	t0 = now_s();
	for (size_t i = 0; i < nr_threads; i++)
		if (pthread_create(&threads[i], NULL, vcpu, (void *)i))
			die("pthread_create");
	for (size_t i = 0; i < nr_threads; i++)
		pthread_join(threads[i], NULL);
	seconds = now_s() - t0;
	if (r)
		restore_stop(r, &st);

	/* Every byte the snapshot's, whoever wrote the page. */
	for (size_t n = 0; r && n < nr_pages; n++)
		for (long i = 0; i < page_size; i += 8)
			if (area[n * page_size + i] != pattern(n, i)) {
				fprintf(stderr, "page %zu byte %ld differs from the snapshot\n",
					n, i);
				return 1;
			}

	printf("mode=%s source=%s threads=%zu handlers=%u window=%u prefetch=%u delay_us=%u pages=%zu seconds=%.3f pages_per_s=%.0f faults=%lu reads=%lu stale=%lu eexist=%lu\n",
	       mode, !r ? "-" : map_image ? "mapped" : "read", nr_threads,
	       r ? (cfg.mode == RESTORE_URING ? 1 : cfg.threads) : 0,
	       r ? cfg.window : 0, r ? cfg.prefetch : 0,
	       r ? cfg.read_delay_us : 0, nr_pages, seconds,
	       nr_pages / seconds, st.faults, st.reads, st.stale, st.eexist);
	return 0;
}

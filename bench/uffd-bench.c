// SPDX-License-Identifier: GPL-2.0
/*
 * userfaultfd fault round-trip benchmark, without vCPUs: T threads fault on
 * every page of a region once, H handler threads resolve the faults, and
 * the per-fault latency (first access to return, as the faulting thread
 * sees it) and the fault rate are reported. Backends:
 *
 *   anon-missing   anonymous memory, MISSING, UFFDIO_COPY
 *   shmem-missing  memfd (shmem) MAP_SHARED, MISSING, UFFDIO_COPY
 *   shmem-minor    memfd populated beforehand, MINOR, UFFDIO_CONTINUE
 *   gmem-missing   guest_memfd, MISSING, pwrite() + UFFDIO_CONTINUE
 *   gmem-copy      guest_memfd, MISSING, UFFDIO_COPY
 *   gmem-minor     guest_memfd populated beforehand, MINOR, UFFDIO_CONTINUE
 *   first-touch    anonymous memory, no userfaultfd: the kernel's own
 *                  fault, the floor a resolver cannot beat
 *   gmem-mapped    guest_memfd populated beforehand, no userfaultfd, read
 *                  faults: the kernel maps the file's pages (fault around,
 *                  per-VMA lock)
 *   shmem-mapped   the same on memfd (shmem)
 *
 * Usage: uffd-bench BACKEND [-p PAGES] [-t THREADS] [-H HANDLERS] [-c]
 * Output, one line: backend threads handlers faults seconds faults/s
 * p50_us p99_us (key=value); -c adds "cdf BACKEND PERCENT LATENCY_US"
 * lines, one per percent. Exit 2 on a bad option, 4 (kselftest's skip) if
 * the backend is not available on this kernel.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gmem-vm.h"
#include "uffd-util.h"
#include "vmm-util.h"

enum resolve { NONE, COPY, CONTINUE, WRITE_CONTINUE };

static const struct backend {
	const char *name;
	int memory;		/* 'a'nonymous, 's'hmem, 'g'uest_memfd */
	bool populate;		/* filled before the run (MINOR) */
	__u64 mode;		/* UFFDIO_REGISTER_MODE_*, 0: no userfaultfd */
	enum resolve resolve;
} backends[] = {
	{ "anon-missing",  'a', false, UFFDIO_REGISTER_MODE_MISSING, COPY },
	{ "shmem-missing", 's', false, UFFDIO_REGISTER_MODE_MISSING, COPY },
	{ "shmem-minor",   's', true,  UFFDIO_REGISTER_MODE_MINOR,   CONTINUE },
	{ "gmem-missing",  'g', false, UFFDIO_REGISTER_MODE_MISSING, WRITE_CONTINUE },
	{ "gmem-copy",     'g', false, UFFDIO_REGISTER_MODE_MISSING, COPY },
	{ "gmem-minor",    'g', true,  UFFDIO_REGISTER_MODE_MINOR,   CONTINUE },
	{ "first-touch",   'a', false, 0,                            NONE },
	{ "gmem-mapped",   'g', true,  0,                            NONE },
	{ "shmem-mapped",  's', true,  0,                            NONE },
};

static const struct backend *be;
static long page_size;
static size_t nr_pages = 4096, nr_threads = 1, nr_handlers = 1;
static bool print_cdf;
static char *area;		/* the region the threads fault on */
static char *source;		/* what the handlers copy in */
static int fd = -1;		/* shmem or guest_memfd file */
static int uffd = -1;
static atomic_bool done;
static double *latency_us;	/* one per page */

static void setup(void)
{
	size_t size = nr_pages * page_size;

	source = mmap(NULL, size, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (source == MAP_FAILED)
		die("mmap source");
	for (size_t i = 0; i < size; i += 64)
		source[i] = (char)(i / 64);

	if (be->memory == 'a') {
		area = mmap(NULL, size, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		/* One fault per 4K page, as userfaultfd resolves them. */
		if (area != MAP_FAILED && madvise(area, size, MADV_NOHUGEPAGE))
			die("madvise(MADV_NOHUGEPAGE)");
	} else {
		fd = be->memory == 's' ? memfd_create("uffd-bench", 0) :
					 gmem_require(size);
		if (fd < 0)
			die("memfd_create");
		if (be->memory == 's' && ftruncate(fd, size))
			die("ftruncate");
		area = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED,
			    fd, 0);
	}
	if (area == MAP_FAILED)
		die("mmap");
	/* MINOR: the data is in the file, not yet mapped in this VMA. */
	if (be->populate && pwrite(fd, source, size, 0) != (ssize_t)size)
		die("populating the file");

	if (!be->mode)
		return;
	/* Not uffd_require(): a skip names the backend. */
	uffd = uffd_open(0);
	if (uffd < 0) {
		if (errno == ENOSYS || errno == EPERM)
			skip("%s: no userfaultfd", be->name);
		die("userfaultfd");
	}
	if (uffd_register(uffd, area, size, be->mode, NULL)) {
		if (errno == EINVAL)
			skip("%s: UFFDIO_REGISTER: EINVAL", be->name);
		die("UFFDIO_REGISTER");
	}
}

/* Resolve the fault at @addr; duplicates (EEXIST) are fine. */
static void resolve(unsigned long addr)
{
	unsigned long start = addr & ~(page_size - 1);
	size_t off = start - (unsigned long)area;
	struct uffdio_range range = { .start = start, .len = page_size };

	if (be->resolve == COPY) {
		struct uffdio_copy copy = {
			.dst = start, .src = (unsigned long)source + off,
			.len = page_size,
		};

		if (!ioctl(uffd, UFFDIO_COPY, &copy))
			return;
		if (errno != EEXIST)
			die("UFFDIO_COPY");
	} else {
		struct uffdio_continue cont = { .range = range };

		if (be->resolve == WRITE_CONTINUE &&
		    pwrite(fd, source + off, page_size, off) != page_size &&
		    errno != EEXIST)
			die("pwrite");
		if (!ioctl(uffd, UFFDIO_CONTINUE, &cont))
			return;
		if (errno != EEXIST)
			die("UFFDIO_CONTINUE");
	}
	/* Mapped by someone else: a failed ioctl woke nobody. */
	if (ioctl(uffd, UFFDIO_WAKE, &range))
		die("UFFDIO_WAKE");
}

static void *handler(void *arg __attribute__((unused)))
{
	struct pollfd pfd = { .fd = uffd, .events = POLLIN };
	struct uffd_msg msg;

	while (!atomic_load(&done)) {
		if (poll(&pfd, 1, 10) <= 0)
			continue;
		if (read(uffd, &msg, sizeof(msg)) != sizeof(msg)) {
			if (errno == EAGAIN)
				continue;
			die("read userfaultfd");
		}
		if (msg.event != UFFD_EVENT_PAGEFAULT) {
			fprintf(stderr, "unexpected userfaultfd event %u\n", msg.event);
			exit(1);
		}
		resolve(msg.arg.pagefault.address);
	}
	return NULL;
}

/*
 * Thread i faults on pages i, i + T, i + 2T, ...: neighbours race. The
 * access is a write (of the byte the page must hold anyway), so that
 * first-touch allocates a page too, rather than mapping the zero page; a
 * read on the *-mapped backends, which is what faults around.
 */
static void *faulter(void *arg)
{
	for (size_t n = (size_t)arg; n < nr_pages; n += nr_threads) {
		size_t off = n * page_size;
		uint64_t t0 = now_ns();

		if (be->populate && !be->mode)
			(void)*(volatile char *)(area + off);
		else
			*(volatile char *)(area + off) = source[off];
		latency_us[n] = (now_ns() - t0) / 1e3;
	}
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	pthread_t *faulters, *handlers;
	uint64_t start;
	double seconds;
	int opt;

	page_size = sysconf(_SC_PAGESIZE);
	if (argc < 2)
		goto usage;
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (!strcmp(argv[1], backends[i].name))
			be = &backends[i];
	if (!be)
		goto usage;
	optind = 2;
	while ((opt = getopt(argc, argv, "p:t:H:c")) != -1) {
		switch (opt) {
		case 'c':
			print_cdf = true;
			break;
		case 'p':
			nr_pages = arg_uint("-p", optarg, 1, SIZE_MAX / page_size);
			break;
		case 't':
			nr_threads = arg_uint("-t", optarg, 1, 1024);
			break;
		case 'H':
			nr_handlers = arg_uint("-H", optarg, 0, 1024);
			break;
		default:
			goto usage;
		}
	}
	/* A userfaultfd backend needs a handler; first-touch ignores -H. */
	if (optind != argc || (be->mode && !nr_handlers))
		goto usage;
	if (!be->mode)
		nr_handlers = 0;

	setup();
	latency_us = calloc(nr_pages, sizeof(*latency_us));
	faulters = calloc(nr_threads, sizeof(*faulters));
	handlers = calloc(nr_handlers + 1, sizeof(*handlers));
	if (!latency_us || !faulters || !handlers)
		die("calloc");
	for (size_t i = 0; i < nr_handlers; i++)
		if (pthread_create(&handlers[i], NULL, handler, NULL))
			die("pthread_create");

	start = now_ns();
	for (size_t i = 0; i < nr_threads; i++)
		if (pthread_create(&faulters[i], NULL, faulter, (void *)i))
			die("pthread_create");
	for (size_t i = 0; i < nr_threads; i++)
		pthread_join(faulters[i], NULL);
	seconds = (now_ns() - start) / 1e9;
	atomic_store(&done, true);
	for (size_t i = 0; i < nr_handlers; i++)
		pthread_join(handlers[i], NULL);

	/* The data must be the source's, whoever resolved it. */
	if (be->mode || be->populate) {
		for (size_t i = 0; i < nr_pages * page_size; i += 64)
			if (area[i] != source[i]) {
				fprintf(stderr, "%s: byte %zu differs from the source\n",
					be->name, i);
				return 1;
			}
	}

	qsort(latency_us, nr_pages, sizeof(*latency_us), cmp_double);
	printf("backend=%s threads=%zu handlers=%zu faults=%zu seconds=%.3f faults_per_s=%.0f p50_us=%.1f p99_us=%.1f\n",
	       be->name, nr_threads, nr_handlers, nr_pages, seconds,
	       nr_pages / seconds, latency_us[nr_pages / 2],
	       latency_us[nr_pages * 99 / 100]);
	for (int pct = 1; print_cdf && pct <= 100; pct++)
		printf("cdf %s %d %.1f\n", be->name, pct,
		       latency_us[(nr_pages - 1) * pct / 100]);
	return 0;

usage:
	fprintf(stderr, "usage: %s BACKEND [-p PAGES] [-t THREADS] [-H HANDLERS] [-c]\nbackends:",
		argv[0]);
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		fprintf(stderr, " %s", backends[i].name);
	fprintf(stderr, "\n");
	return 2;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * Lazy-restore throughput: T threads stand in for vCPUs, each touching its
 * own slice of a guest_memfd page by page (sequential access, a write per
 * page), while the gmem-restore handler fills the pages from a snapshot.
 * Reports pages/s from the first touch to the last; the result is checked
 * against the snapshot.
 *
 * Usage: restore-bench MODE [-p PAGES] [-t THREADS] [-H HANDLERS]
 *                          [-w WINDOW] [-a PREFETCH] [-d READ_DELAY_US] [-m]
 *                          [-A write|copy]
 *   MODE  sync         gmem-restore, HANDLERS synchronous threads
 *         uring        gmem-restore, one io_uring thread
 *         first-touch  anonymous memory, no userfaultfd, no snapshot: the
 *                      kernel's own page fault for the same access pattern
 *   -a    windows read ahead after a fault's (0: none)
 *   -d    simulated storage latency: each snapshot read waits this long
 *         first (nanosleep in sync, a linked io_uring timeout in uring)
 *   -m    the handlers copy from the snapshot mapped, not read
 * Output, one line of key=value; exit 2 on a bad option, 4 (kselftest's
 * skip) if the kernel lacks guest_memfd mmap or its userfaultfd support.
 */
#define _GNU_SOURCE
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gmem-restore.h"
#include "gmem-vm.h"
#include "restore-opts.h"
#include "snapshot-pattern.h"
#include "uffd-util.h"
#include "vmm-util.h"

static long page_size;
static size_t nr_pages = 4096, nr_threads = 1;
static char *area;

/* Thread i: slice i, front to back, one write per page. */
static void *vcpu(void *arg)
{
	size_t per = nr_pages / nr_threads, first = (size_t)arg * per;
	size_t end = (size_t)arg == nr_threads - 1 ? nr_pages : first + per;

	for (size_t n = first; n < end; n++)
		*(volatile char *)(area + n * page_size) = snapshot_byte(n, 0);
	return NULL;
}

static void usage(const char *prog)
{
	fprintf(stderr, "usage: %s sync|uring|first-touch [-p PAGES] [-t THREADS] [-m] " RESTORE_OPTS_USAGE "\n",
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
	size_t size, absent = 0;
	double seconds;
	uint64_t t0;
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
	while ((opt = getopt(argc, argv, "p:t:m" RESTORE_OPTS)) != -1) {
		switch (opt) {
		case 'p':
			nr_pages = arg_uint("-p", optarg, 1, SIZE_MAX / page_size);
			break;
		case 't':
			nr_threads = arg_uint("-t", optarg, 1, 1024);
			break;
		case 'm':
			map_image = true;
			break;
		default:
			if (!restore_opt(&cfg, opt, optarg))
				usage(argv[0]);
		}
	}
	/* Each thread needs a page of its own. */
	if (nr_threads > nr_pages || optind != argc)
		usage(argv[0]);
	size = nr_pages * page_size;
	/* Reading ahead past the end is reading ahead to it; more is EINVAL. */
	if (cfg.prefetch > nr_pages)
		cfg.prefetch = nr_pages;

	if (!strcmp(mode, "first-touch")) {
		area = mmap(NULL, size, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		/* One fault per 4K page, like the restore. */
		if (area == MAP_FAILED || madvise(area, size, MADV_NOHUGEPAGE))
			die("mmap");
	} else {
		cfg.snapshot = snapshot_memfd(nr_pages, page_size);
		if (cfg.snapshot < 0)
			die("writing the snapshot");
		if (map_image) {
			cfg.image = mmap(NULL, size, PROT_READ, MAP_PRIVATE,
					 cfg.snapshot, 0);
			if (cfg.image == MAP_FAILED)
				die("mmap snapshot");
			cfg.image_size = size;
		}
		cfg.gmem = gmem_require(size);
		area = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED,
			    cfg.gmem, 0);
		if (area == MAP_FAILED)
			die("mmap");
		cfg.area = area;
		cfg.size = size;
		cfg.uffd = uffd_require(area, size, 0,
					UFFDIO_REGISTER_MODE_MISSING);
		r = restore_start(&cfg);
		if (!r)
			die("restore_start");
	}

	threads = calloc(nr_threads, sizeof(*threads));
	if (!threads)
		die("calloc");
	t0 = now_ns();
	for (size_t i = 0; i < nr_threads; i++)
		if (pthread_create(&threads[i], NULL, vcpu, (void *)i))
			die("pthread_create");
	for (size_t i = 0; i < nr_threads; i++)
		pthread_join(threads[i], NULL);
	seconds = (now_ns() - t0) / 1e9;
	if (r)
		absent = restore_stop(r, &st);
	/* Every page was touched: every one must have been filled. */
	if (absent) {
		fprintf(stderr, "%zu pages left absent after the run\n", absent);
		return 1;
	}

	/* Every byte the snapshot's, whoever wrote the page. */
	for (size_t n = 0; r && n < nr_pages; n++)
		for (long i = 0; i < page_size; i += 8)
			if (area[n * page_size + i] != snapshot_byte(n, i)) {
				fprintf(stderr, "page %zu byte %ld differs from the snapshot\n",
					n, i);
				return 1;
			}

	printf("mode=%s answer=%s source=%s threads=%zu handlers=%u window=%u prefetch=%u delay_us=%u pages=%zu seconds=%.3f pages_per_s=%.0f faults=%lu reads=%lu stale=%lu eexist=%lu\n",
	       mode, cfg.answer == RESTORE_ANSWER_COPY ? "copy" : "write",
	       !r ? "-" : map_image ? "mapped" : "read", nr_threads,
	       r ? (cfg.mode == RESTORE_URING ? 1 : cfg.threads) : 0,
	       r ? cfg.window : 0, r ? cfg.prefetch : 0,
	       r ? cfg.read_delay_us : 0, nr_pages, seconds,
	       nr_pages / seconds, st.faults, st.reads, st.stale, st.eexist);
	return 0;
}

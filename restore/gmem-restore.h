/* SPDX-License-Identifier: GPL-2.0 */
/*
 * gmem-restore: a reference userfaultfd handler that fills a guest_memfd
 * from a snapshot file on demand, the way a VMM restores a guest lazily.
 *
 * The caller mmap()s the guest_memfd, registers the mapping with a
 * non-blocking userfaultfd for MISSING faults (and, if it wants them,
 * UFFD_FEATURE_EVENT_REMOVE / _EVENT_UNMAP), and hands both to
 * restore_start(). Each MISSING fault is answered by reading the page (or
 * its window of neighbours) from the snapshot, pwrite() into the
 * guest_memfd and one UFFDIO_CONTINUE over what was written.
 *
 * Handlers:
 *   RESTORE_SYNC   N threads, each: read message, pread, pwrite, CONTINUE
 *   RESTORE_URING  one thread; io_uring keeps the snapshot reads and the
 *                  guest_memfd writes of every pending fault in flight
 */
#ifndef GMEM_RESTORE_H
#define GMEM_RESTORE_H

#include <stddef.h>
#include <sys/types.h>

enum restore_mode { RESTORE_SYNC, RESTORE_URING };

struct restore_config {
	int uffd;		/* O_NONBLOCK, MISSING registered over the area */
	int gmem;		/* the guest_memfd; offset 0 is mapped at area */
	char *area;
	size_t size;
	int snapshot;		/* the memory image, at snapshot_offset */
	off_t snapshot_offset;
	/*
	 * Or the image mapped (a local snapshot file, MAP_PRIVATE): RESTORE_SYNC
	 * then writes the guest_memfd straight from it, one copy instead of
	 * pread's two.
	 */
	const char *image;
	enum restore_mode mode;
	unsigned int window;	/* pages resolved per fault (1: just the page) */
	/*
	 * Sequential readahead: a fault that finds its window absent also
	 * fills this many windows after it, so that a vCPU walking through
	 * memory finds them mapped (0: off).
	 */
	unsigned int prefetch;
	unsigned int threads;	/* RESTORE_SYNC handler threads */
	/* Simulated storage latency: wait this long before each snapshot read. */
	unsigned int read_delay_us;
	/*
	 * Called, from a handler thread, when restoring cannot go on (the
	 * snapshot is short or unreadable, an unexpected error): the faulting
	 * vCPUs would wait forever, so the default prints @msg and exits.
	 */
	void (*fatal)(const char *msg);
};

struct restore_stats {
	unsigned long faults;		/* fault messages read */
	unsigned long pages;		/* pages written from the snapshot */
	unsigned long zero_pages;	/* pages the guest discarded, refilled with zeroes */
	unsigned long reads;		/* snapshot reads issued */
	unsigned long stale;		/* messages for pages already resolved */
	unsigned long eexist;		/* pages populated or mapped by someone else */
	unsigned long eagain;		/* CONTINUEs retried after a layout change */
	unsigned long removes, unmaps;	/* events */
};

struct restore;

/* Start serving faults; NULL with errno set on failure. */
struct restore *restore_start(const struct restore_config *cfg);
/*
 * Stop the handler threads, fill @stats (may be NULL) and free @r. Nobody
 * reads the userfaultfd after this: with UFFD_FEATURE_EVENT_UNMAP, close it
 * before unmapping the area, or munmap() waits for its event forever.
 */
void restore_stop(struct restore *r, struct restore_stats *stats);

#endif

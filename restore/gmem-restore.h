/* SPDX-License-Identifier: GPL-2.0 */
/*
 * gmem-restore: a userfaultfd handler that fills a guest_memfd from a
 * snapshot on demand, the way a VMM restores a guest lazily.
 *
 * The VMM mmap()s the guest_memfd (MAP_SHARED), opens a non-blocking
 * userfaultfd (UFFD_FEATURE_EVENT_REMOVE and _EVENT_UNMAP if the guest may
 * discard or unmap memory), registers the mapping (MISSING is enough: see
 * restore_start()) and hands both to restore_start(). A fault is answered
 * by reading its page, or its window of neighbours, from the snapshot,
 * pwrite() into the guest_memfd and one UFFDIO_CONTINUE over what was
 * written, which maps it and wakes the threads waiting on it; or, with
 * RESTORE_ANSWER_COPY, one UFFDIO_COPY, which fills and maps in one call
 * (and needs no GUEST_MEMFD_FLAG_WRITE).
 *
 * Guarantees, whatever the guest does meanwhile:
 *  - every fault the handler reads is answered or woken (nothing sleeps
 *    forever), also across VMA splits (mprotect, MADV_DONTDUMP, ...) and
 *    UFFD_EVENT_UNMAP;
 *  - a page the guest gave back (MADV_REMOVE, UFFD_EVENT_REMOVE) reads as
 *    zeroes afterwards, never as snapshot data, and a guest write after
 *    the REMOVE is never lost to the handler;
 *  - demand faults go before readahead, across all handler threads.
 *
 * Handlers:
 *   RESTORE_SYNC   N threads sharing one fault queue: read the snapshot,
 *                  pwrite, CONTINUE
 *   RESTORE_URING  one thread; io_uring keeps the snapshot reads and the
 *                  guest_memfd writes of many runs in flight
 */
#ifndef GMEM_RESTORE_H
#define GMEM_RESTORE_H

#include <stddef.h>
#include <sys/types.h>

enum restore_mode { RESTORE_SYNC, RESTORE_URING };
enum restore_answer { RESTORE_ANSWER_WRITE, RESTORE_ANSWER_COPY };

/* Limits restore_start() enforces (EINVAL beyond them). */
#define RESTORE_MAX_WINDOW_BYTES	(1UL << 30)	/* one run's I/O */
#define RESTORE_MAX_THREADS		256

struct restore_config {
	int uffd;		/* O_NONBLOCK (EINVAL otherwise) */
	int gmem;		/* the guest_memfd; offset 0 is mapped at area */
	char *area;		/* page aligned */
	size_t size;		/* a non-zero multiple of the page size */
	/*
	 * The memory image: @size bytes at @snapshot_offset, checked against
	 * the file's size at start (EINVAL if short). O_DIRECT files work:
	 * buffers are page aligned, and so must the offset be.
	 */
	int snapshot;
	off_t snapshot_offset;
	/*
	 * Or the image mapped (@image_size bytes, at least @size): the
	 * handlers write the guest_memfd straight from it, one copy instead
	 * of pread's two. @snapshot is not read then.
	 */
	const char *image;
	size_t image_size;
	enum restore_mode mode;
	enum restore_answer answer;	/* pwrite + CONTINUE (default), or COPY */
	unsigned int window;	/* pages per run, aligned (0: 1; clamped to size) */
	/*
	 * Sequential readahead: a fault that finds its window absent queues
	 * this many windows after it, which handlers fill when no demand
	 * fault waits (0: off; at most the area's pages, EINVAL beyond).
	 */
	unsigned int prefetch;
	unsigned int threads;	/* RESTORE_SYNC handler threads (0: 1) */
	/* Simulated storage latency: wait this long before each snapshot read. */
	unsigned int read_delay_us;
	/*
	 * Called, from a handler thread, when restoring cannot go on (the
	 * snapshot is unreadable or short, an unexpected error): faulting
	 * vCPUs would wait forever. @ctx is the VMM's. The default prints
	 * @msg and exits; if the callback returns, the process exits too.
	 */
	void (*fatal)(void *ctx, const char *msg);
	void *ctx;
};

struct restore_stats {
	unsigned long faults;		/* fault messages read */
	unsigned long pages;		/* pages written from the snapshot */
	unsigned long zero_pages;	/* pages the guest discarded, refilled with zeroes */
	unsigned long readahead_pages;	/* of pages, filled by readahead */
	unsigned long reads;		/* snapshot reads issued */
	unsigned long stale;		/* messages for pages already resolved */
	unsigned long eexist;		/* pages populated or mapped by someone else */
	unsigned long eagain;		/* CONTINUEs retried after a layout change */
	unsigned long split;		/* runs mapped page by page (VMA split, ENOENT) */
	unsigned long punched;		/* pages removed while being filled, punched again */
	unsigned long removes, unmaps;	/* events */
};

struct restore_progress {
	size_t total;			/* pages in the area */
	size_t absent;			/* pages nobody has filled, discarded or unmapped yet */
};

struct restore;

/*
 * Start serving faults; NULL with errno set on failure (EINVAL for a bad
 * configuration, which includes a blocking userfaultfd). It (re)registers
 * the area for MISSING and MINOR faults: a page the handler has written is
 * then not mapped until its CONTINUE, which is what lets it take back data
 * that a concurrent REMOVE made stale. Faults raised before the call are
 * served.
 */
struct restore *restore_start(const struct restore_config *cfg);

/*
 * The VMM wrote [@offset, @offset + @len) of the guest_memfd itself (a
 * page it had, a device's state): the handler will not fill it, and maps
 * it on a fault. Call after writing; a page a handler was filling keeps
 * whichever write came first (write() on a guest_memfd populates once).
 * 0, or -1 with errno EINVAL (range not page aligned or out of the area).
 */
int restore_populated(struct restore *r, size_t offset, size_t len);

/*
 * The VMM is about to discard [@offset, @offset + @len) (PUNCH_HOLE) itself,
 * which raises no event: the range reads as zeroes from then on. Call
 * before punching, as the kernel sends UFFD_EVENT_REMOVE before it
 * discards. 0, or -1 with errno EINVAL.
 */
int restore_discarded(struct restore *r, size_t offset, size_t len);

/* How far the restore is, readable any time while it runs. */
void restore_progress(struct restore *r, struct restore_progress *p);

/*
 * Fill every page still absent (from the calling thread, beside the
 * handlers), then restore_stop(). After it returns 0, closing the
 * userfaultfd is safe: no page is left for a vCPU to read as zeroes.
 */
int restore_finish(struct restore *r, struct restore_stats *stats);

/*
 * Stop serving, fill @stats (may be NULL) and free @r. Every fault raised
 * before the call and every page a handler started on is completed first;
 * returns the number of pages left absent. While any are, a running vCPU
 * that touches one waits for a handler: do not close the userfaultfd then
 * (the kernel would give it zero pages), or use restore_finish(). With
 * UFFD_FEATURE_EVENT_UNMAP, close the userfaultfd before unmapping the
 * area, or munmap() waits forever for its event to be read.
 */
size_t restore_stop(struct restore *r, struct restore_stats *stats);

#endif

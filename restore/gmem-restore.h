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
 * vCPU faults on a gmem-only memslot (KVM_MEM_GUEST_MEMFD) never reach
 * userfaultfd: KVM faults them from the file. With KVM Userfault the
 * memslot has a bitmap of the pages KVM must not map (KVM_MEM_USERFAULT);
 * a vCPU that touches one exits to the VMM, and the vCPU thread answers
 * its own exit with restore_vcpu_fault(): no handoff to a handler thread.
 * The library clears a page's bit once the page is in the guest_memfd.
 * The VMM's own accesses to the mapping still go through userfaultfd.
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
/* What a page whose snapshot data cannot be read becomes. */
enum restore_unreadable { RESTORE_UNREADABLE_FATAL, RESTORE_UNREADABLE_POISON };

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
	/*
	 * A snapshot read that fails or comes back short: fatal() (the
	 * default), or RESTORE_UNREADABLE_POISON: each page that cannot be
	 * read is poisoned, UFFDIO_POISON on the mapping (a thread touching
	 * it gets SIGBUS BUS_MCEERR_AR, a vCPU faulting through the mapping
	 * KVM_RUN -EHWPOISON) and restore_vcpu_fault() fails on it with
	 * EHWPOISON; the VMM can inject a machine check. Nothing else stops.
	 */
	enum restore_unreadable unreadable;
	/*
	 * KVM Userfault: the gmem-only memslot's userfault_bitmap, bit i for
	 * page i of the area (the memslot covers the area, guest_memfd offset
	 * 0), every bit set before restore_start(). The library clears a
	 * page's bit (with release ordering) once the page is in the
	 * guest_memfd, never before, and when the guest discards it (a vCPU
	 * then reads zeroes); poisoned pages and pages unmapped from the area
	 * keep theirs. NULL: no KVM Userfault, restore_vcpu_attach() fails.
	 */
	unsigned long *kvm_userfault_bitmap;
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
	unsigned long vcpu_faults;	/* restore_vcpu_fault() calls */
	unsigned long vcpu_waits;	/* of them, waited for another thread's fill */
	unsigned long poisoned;		/* pages poisoned: their data could not be read */
};

struct restore_progress {
	size_t total;			/* pages in the area */
	size_t absent;			/* pages nobody has filled, discarded or unmapped yet */
};

struct restore;
struct restore_vcpu;

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

/*
 * A vCPU thread's handle for answering its own KVM Userfault exits, with a
 * window buffer of its own. NULL with errno EINVAL if the configuration
 * has no kvm_userfault_bitmap, ENOMEM. Detach every vCPU before
 * restore_stop() or restore_finish().
 */
struct restore_vcpu *restore_vcpu_attach(struct restore *r);
void restore_vcpu_detach(struct restore_vcpu *v);

/*
 * A vCPU exited with KVM_EXIT_MEMORY_FAULT and KVM_MEMORY_EXIT_FLAG_USERFAULT
 * at a page @offset bytes into the area (gpa - the memslot's
 * guest_phys_addr): fill the page's window from the snapshot (pwrite), clear
 * the bits of what was written, queue readahead as a userfault would, and
 * return 0: re-enter the vCPU. A page another thread is filling is waited
 * for. The vCPU thread writes with pwrite() whatever the answer setting:
 * the guest_memfd needs GUEST_MEMFD_FLAG_WRITE. -1 with errno EHWPOISON: the page is poisoned (its data could not
 * be read); ENOENT: it was unmapped from the area (UFFD_EVENT_UNMAP), it is
 * not ours to restore; EINVAL: @offset is not a page of the area.
 */
int restore_vcpu_fault(struct restore_vcpu *v, size_t offset);

/* How far the restore is, readable any time while it runs. */
void restore_progress(struct restore *r, struct restore_progress *p);

/*
 * Fill every page still absent (from the calling thread, beside the
 * handlers), then restore_stop(). After it returns 0, closing the
 * userfaultfd is safe: no page is left for a vCPU to read as zeroes, and
 * the KVM Userfault bits left set are those of poisoned pages and of
 * pages unmapped from the area. -1 with errno EIO if a page is left
 * absent or was poisoned.
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

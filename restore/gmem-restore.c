// SPDX-License-Identifier: GPL-2.0
/*
 * gmem-restore: serve MISSING userfaults on a guest_memfd from a snapshot.
 * See gmem-restore.h for the interface.
 *
 * Every page has a state, so that concurrent handlers, duplicate messages
 * and events agree on who fills what:
 *
 *   ABSENT     not restored yet: the next fault reads it from the snapshot
 *   BUSY       a handler claimed it and is reading, writing or mapping it
 *   DONE       written and mapped; a message for it is stale
 *   DISCARDED  the guest gave it back (UFFD_EVENT_REMOVE): refill with zeroes
 *   REMOVED    BUSY, and given back meanwhile: when the holder is done it
 *              punches the page out again, and it becomes DISCARDED
 *   GONE       unmapped (UFFD_EVENT_UNMAP): nothing to do any more
 *
 * A fault claims (ABSENT or DISCARDED -> BUSY) the pages of its window that
 * nobody else has, fills them and maps them with one UFFDIO_CONTINUE, which
 * also wakes every thread waiting in that range. A fault on a page another
 * handler holds needs nothing: that handler's CONTINUE wakes it.
 */
#define _GNU_SOURCE
#include "gmem-restore.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <liburing.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

enum page_state { ABSENT, BUSY, DONE, DISCARDED, REMOVED, GONE };

/* Pages a handler claimed, [first, first + count), all filled the same way. */
struct run {
	size_t first, count;
	bool zero;
};

/* io_uring: a window's buffer, and the run being read into it. */
struct slot {
	char *buf;
	struct run run;
	bool used;
};

#define URING_SLOTS	64
#define URING_ENTRIES	256	/* 3 SQEs (delay, read, write) per slot */
#define TAG_POLL	UINT64_MAX
/* user_data of a slot's requests: slot index << 2 | which request */
enum { TAG_DELAY, TAG_READ, TAG_WRITE };

struct handler {
	struct restore *r;
	pthread_t thread;
	struct restore_stats stats;
	char *buf;			/* RESTORE_SYNC: one window */
	struct run *runs;		/* claim()'s output */
	unsigned long *backlog;		/* fault addresses read, not handled */
	size_t backlog_head, nr_backlog, backlog_size;
	/* RESTORE_URING */
	struct io_uring ring;
	struct slot slots[URING_SLOTS];
	unsigned int inflight;
	struct run *pending;		/* claimed, waiting for a free slot */
	size_t nr_pending, pending_size;
	struct __kernel_timespec delay;
};

struct restore {
	struct restore_config cfg;
	long page_size;
	size_t nr_pages;
	_Atomic unsigned char *state;
	atomic_bool stop;
	char *zeroes;			/* one window of zeroes */
	unsigned int nr_handlers;
	struct handler *handlers;
};

static void fatal(struct restore *r, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (r->cfg.fatal)
		r->cfg.fatal(msg);
	fprintf(stderr, "gmem-restore: %s\n", msg);
	exit(1);
}

static void *xrealloc(struct restore *r, void *p, size_t size)
{
	p = realloc(p, size);
	if (!p)
		fatal(r, "out of memory");
	return p;
}

static unsigned long page_addr(struct restore *r, size_t page)
{
	return (unsigned long)r->cfg.area + page * r->page_size;
}

/* Every page of [start, end): BUSY ones to @busy_to, the others to @to. */
static void set_range(struct restore *r, unsigned long start, unsigned long end,
		      unsigned char to, unsigned char busy_to)
{
	unsigned long base = (unsigned long)r->cfg.area;

	if (end <= base || start >= base + r->cfg.size)
		return;
	start = start < base ? 0 : (start - base) / r->page_size;
	end = end > base + r->cfg.size ? r->nr_pages :
	      (end - base + r->page_size - 1) / r->page_size;
	for (size_t p = start; p < end; p++) {
		unsigned char s = atomic_load(&r->state[p]);

		while (!atomic_compare_exchange_weak(&r->state[p], &s,
						     s == BUSY ? busy_to : to))
			;
	}
}

static void wake(struct handler *h, unsigned long start, size_t len)
{
	struct uffdio_range range = { .start = start, .len = len };

	if (ioctl(h->r->cfg.uffd, UFFDIO_WAKE, &range) && errno != ENOENT)
		fatal(h->r, "UFFDIO_WAKE: %s", strerror(errno));
}

static void push_fault(struct handler *h, unsigned long addr)
{
	if (h->nr_backlog == h->backlog_size) {
		h->backlog_size = h->backlog_size ? 2 * h->backlog_size : 64;
		h->backlog = xrealloc(h->r, h->backlog,
				      h->backlog_size * sizeof(*h->backlog));
	}
	h->backlog[h->nr_backlog++] = addr;
}

/* The oldest fault read and not handled yet, in arrival order. */
static bool pop_fault(struct handler *h, unsigned long *addr)
{
	if (h->backlog_head == h->nr_backlog) {
		h->backlog_head = h->nr_backlog = 0;
		return false;
	}
	*addr = h->backlog[h->backlog_head++];
	return true;
}

/*
 * Read every message there is: events take effect at once, faults queue
 * on the backlog. Returns the number of messages read.
 */
static size_t read_messages(struct handler *h)
{
	struct restore *r = h->r;
	struct uffd_msg msgs[16];
	size_t total = 0;

	for (;;) {
		ssize_t n = read(r->cfg.uffd, msgs, sizeof(msgs));

		if (n < 0) {
			if (errno == EAGAIN)
				return total;
			if (errno == EINTR)
				continue;
			fatal(r, "reading the userfaultfd: %s", strerror(errno));
		}
		n /= sizeof(msgs[0]);
		total += n;
		for (ssize_t i = 0; i < n; i++) {
			struct uffd_msg *m = &msgs[i];

			switch (m->event) {
			case UFFD_EVENT_PAGEFAULT:
				h->stats.faults++;
				push_fault(h, m->arg.pagefault.address);
				break;
			case UFFD_EVENT_REMOVE:
				/* The guest gave the memory back: zeroes from now on. */
				h->stats.removes++;
				set_range(r, m->arg.remove.start, m->arg.remove.end,
					  DISCARDED, REMOVED);
				break;
			case UFFD_EVENT_UNMAP:
				h->stats.unmaps++;
				set_range(r, m->arg.remove.start, m->arg.remove.end,
					  GONE, BUSY);
				break;
			default:
				fatal(r, "unexpected userfaultfd event %u", m->event);
			}
		}
	}
}

/*
 * Claim the pages of [first, end) that nobody filled or is filling, as runs
 * of at most a window of neighbours filled the same way, appended to h->runs[n...]; returns the
 * new number of runs.
 */
static size_t claim(struct handler *h, size_t first, size_t end, size_t n)
{
	struct restore *r = h->r;

	if (end > r->nr_pages)
		end = r->nr_pages;
	for (size_t p = first; p < end; p++) {
		unsigned char s = atomic_load(&r->state[p]);
		bool zero = s == DISCARDED;

		if ((s != ABSENT && s != DISCARDED) ||
		    !atomic_compare_exchange_strong(&r->state[p], &s, BUSY))
			continue;
		/* A run fits one window buffer. */
		if (n && h->runs[n - 1].first + h->runs[n - 1].count == p &&
		    h->runs[n - 1].zero == zero &&
		    h->runs[n - 1].count < r->cfg.window)
			h->runs[n - 1].count++;
		else
			h->runs[n++] = (struct run){ p, 1, zero };
	}
	return n;
}

static bool run_has(const struct run *run, size_t page)
{
	return page >= run->first && page < run->first + run->count;
}

/*
 * The runs to fill for a fault on @page: its window (aligned to the window
 * size), then, if the fault found the page absent, the prefetch windows
 * after it. *@claimed tells whether @page is among them.
 */
static size_t claim_fault(struct handler *h, size_t page, bool *claimed)
{
	size_t w = h->r->cfg.window, first = page - page % w;
	size_t n = claim(h, first, first + w, 0);

	*claimed = false;
	for (size_t i = 0; i < n; i++)
		*claimed |= run_has(&h->runs[i], page);
	if (*claimed && h->r->cfg.prefetch)
		n = claim(h, first + w, first + w * (1 + h->r->cfg.prefetch), n);
	return n;
}

static void simulate_read_latency(struct restore *r)
{
	struct timespec ts = {
		.tv_sec = r->cfg.read_delay_us / 1000000,
		.tv_nsec = r->cfg.read_delay_us % 1000000 * 1000L,
	};

	if (r->cfg.read_delay_us)
		while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
			;
}

static void check_read(struct restore *r, ssize_t n, const struct run *run)
{
	off_t off = r->cfg.snapshot_offset + run->first * r->page_size;
	size_t len = run->count * r->page_size;

	if (n < 0)
		fatal(r, "reading %zu bytes of the snapshot at offset %lld: %s",
		      len, (long long)off, strerror(-n));
	if ((size_t)n != len)
		fatal(r, "the snapshot is short: %zd of %zu bytes at offset %lld",
		      n, len, (long long)off);
}

static void read_snapshot(struct handler *h, const struct run *run)
{
	struct restore *r = h->r;
	ssize_t n;

	simulate_read_latency(r);
	h->stats.reads++;
	do {
		n = pread(r->cfg.snapshot, h->buf, run->count * r->page_size,
			  r->cfg.snapshot_offset + run->first * r->page_size);
	} while (n < 0 && errno == EINTR);
	check_read(r, n < 0 ? -errno : n, run);
}

/*
 * Write @run's pages from @buf into the guest_memfd, from page @done on.
 * write() never overwrites a populated page: it stops before one (short
 * count) or fails with EEXIST on it; such a page keeps what it has.
 */
static void populate(struct handler *h, const char *buf, const struct run *run,
		     size_t done)
{
	struct restore *r = h->r;
	long ps = r->page_size;

	while (done < run->count) {
		ssize_t n = pwrite(r->cfg.gmem, buf + done * ps,
				   (run->count - done) * ps,
				   (run->first + done) * ps);

		if (n > 0) {
			done += n / ps;
		} else if (n < 0 && errno == EEXIST) {
			h->stats.eexist++;
			done++;
		} else if (n < 0 && errno != EINTR) {
			fatal(r, "writing the guest_memfd at offset %lld: %s",
			      (long long)(run->first + done) * ps, strerror(errno));
		}
	}
}

/*
 * Map @run with UFFDIO_CONTINUE, which wakes the threads waiting on it.
 * Pages someone else mapped (EEXIST) are skipped; EAGAIN means an event
 * (REMOVE, UNMAP) is waiting to be read before the layout can change, so
 * read it and retry; ENOENT means the range is not registered any more.
 */
static void map_run(struct handler *h, const struct run *run)
{
	struct restore *r = h->r;
	unsigned long start = page_addr(r, run->first);
	unsigned long end = start + run->count * r->page_size;

	while (start < end) {
		struct uffdio_continue cont = {
			.range = { .start = start, .len = end - start },
		};

		if (!ioctl(r->cfg.uffd, UFFDIO_CONTINUE, &cont))
			break;
		if (cont.mapped > 0) {		/* partly done */
			start += cont.mapped;
			continue;
		}
		switch (errno) {
		case EEXIST:
			h->stats.eexist++;
			wake(h, start, r->page_size);
			start += r->page_size;
			break;
		case EAGAIN:
			h->stats.eagain++;
			if (!read_messages(h))
				sched_yield();	/* another handler reads it */
			break;
		case EFAULT:
			/*
			 * The page left the file after we wrote it: the guest
			 * removed it. finish_run() makes it DISCARDED; wake
			 * whoever waits, to fault again and get zeroes.
			 */
			set_range(r, start, start + 1, REMOVED, REMOVED);
			wake(h, start, r->page_size);
			start += r->page_size;
			break;
		case ENOENT:
			return;
		default:
			fatal(r, "UFFDIO_CONTINUE at %#lx: %s", start,
			      strerror(errno));
		}
	}
}

/* The run is filled and mapped: messages for its pages are stale now. */
static void finish_run(struct handler *h, const struct run *run)
{
	struct restore *r = h->r;

	map_run(h, run);
	for (size_t p = run->first; p < run->first + run->count; p++) {
		unsigned char s = BUSY;

		if (atomic_compare_exchange_strong(&r->state[p], &s, DONE) ||
		    s != REMOVED)
			continue;
		/*
		 * Removed while we filled it: whether the hole was punched
		 * before or after our write, punch it again so that it reads
		 * as zeroes, like every removed page.
		 */
		if (fallocate(r->cfg.gmem, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      p * r->page_size, r->page_size))
			fatal(r, "punching a removed page out of the guest_memfd: %s",
			      strerror(errno));
		atomic_store(&r->state[p], DISCARDED);
		wake(h, page_addr(r, p), r->page_size);
	}
}

/* A run written and mapped: count its pages. */
static void count_run(struct handler *h, const struct run *run)
{
	if (run->zero)
		h->stats.zero_pages += run->count;
	else
		h->stats.pages += run->count;
}

/*
 * A fault none of whose pages this handler claimed. A page someone else
 * holds (BUSY) needs nothing: its holder's CONTINUE wakes the fault. A
 * resolved (DONE) page means a stale message (a duplicate, or a fault a
 * window's CONTINUE woke before we read it), or a page that left the page
 * table or the file without an event we saw: CONTINUE it again. EEXIST
 * (stale) wakes it, a page still in the file is mapped, and one punched
 * out (EFAULT) is refilled with zeroes on the next fault.
 */
static void fault_not_claimed(struct handler *h, size_t page)
{
	unsigned char done = DONE;
	struct run run = { page, 1, false };

	if (!atomic_compare_exchange_strong(&h->r->state[page], &done, BUSY))
		return;
	h->stats.stale++;
	finish_run(h, &run);
}

static bool fault_page(struct handler *h, unsigned long addr, size_t *page)
{
	unsigned long base = (unsigned long)h->r->cfg.area;

	if (addr < base || addr >= base + h->r->cfg.size)
		return false;		/* not ours: stale after a remap */
	*page = (addr - base) / h->r->page_size;
	return true;
}

/* Fill and map the runs claim() found. */
static void sync_fill(struct handler *h, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct run *run = &h->runs[i];

		if (run->zero) {
			populate(h, h->r->zeroes, run, 0);
		} else if (h->r->cfg.image) {
			populate(h, h->r->cfg.image + run->first * h->r->page_size,
				 run, 0);
		} else {
			read_snapshot(h, run);
			populate(h, h->buf, run, 0);
		}
		finish_run(h, run);
		count_run(h, run);
	}
}

/*
 * Readahead, a window at a time, so that handler threads share it: each
 * claims the next window nobody has, and they fill them side by side.
 */
static void sync_prefetch(struct handler *h, size_t window_first)
{
	size_t w = h->r->cfg.window;

	for (size_t j = 1; j <= h->r->cfg.prefetch; j++) {
		size_t first = window_first + j * w;

		if (first >= h->r->nr_pages)
			break;
		sync_fill(h, claim(h, first, first + w, 0));
	}
}

static void sync_fault(struct handler *h, unsigned long addr)
{
	size_t page, first, n;
	bool claimed = false;

	if (!fault_page(h, addr, &page))
		return;
	first = page - page % h->r->cfg.window;
	n = claim(h, first, first + h->r->cfg.window, 0);
	for (size_t i = 0; i < n; i++)
		claimed |= run_has(&h->runs[i], page);
	sync_fill(h, n);
	/*
	 * A vCPU waits on a page another handler is filling: read ahead of
	 * it too, beside that handler.
	 */
	if (claimed || atomic_load(&h->r->state[page]) == BUSY)
		sync_prefetch(h, first);
	if (!claimed)
		fault_not_claimed(h, page);
}

static void handler_init(struct handler *h)
{
	/* The simulated latency is exact: no timer slack on the sleeps. */
	prctl(PR_SET_TIMERSLACK, 1UL);
}

static void *sync_handler(void *arg)
{
	struct handler *h = arg;
	struct restore *r = h->r;
	struct pollfd pfd = { .fd = r->cfg.uffd, .events = POLLIN };

	handler_init(h);
	while (!atomic_load(&r->stop)) {
		unsigned long addr;

		if (pop_fault(h, &addr)) {
			sync_fault(h, addr);
			continue;
		}
		if (poll(&pfd, 1, 10) > 0)
			read_messages(h);
	}
	return NULL;
}

/* --- RESTORE_URING: one thread, every fault's I/O in flight at once --- */

static struct io_uring_sqe *get_sqe(struct handler *h)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&h->ring);

	if (!sqe) {
		io_uring_submit(&h->ring);
		sqe = io_uring_get_sqe(&h->ring);
		if (!sqe)
			fatal(h->r, "io_uring submission queue full");
	}
	return sqe;
}

static void arm_poll(struct handler *h)
{
	struct io_uring_sqe *sqe = get_sqe(h);

	io_uring_prep_poll_multishot(sqe, h->r->cfg.uffd, POLLIN);
	io_uring_sqe_set_data64(sqe, TAG_POLL);
}

/*
 * One slot's I/O, as a link: [wait the simulated latency ->] read the
 * snapshot -> write the guest_memfd. Only the write posts a completion if
 * all goes well; a failure ends the link and posts its own.
 */
static void uring_submit(struct handler *h, unsigned int i)
{
	struct restore *r = h->r;
	struct slot *s = &h->slots[i];
	size_t len = s->run.count * r->page_size;
	struct io_uring_sqe *sqe;

	if (r->cfg.image) {	/* mapped snapshot: no read, one copy */
		sqe = get_sqe(h);
		io_uring_prep_write(sqe, r->cfg.gmem,
				    r->cfg.image + s->run.first * r->page_size,
				    len, s->run.first * r->page_size);
		io_uring_sqe_set_data64(sqe, (uint64_t)i << 2 | TAG_WRITE);
		h->inflight++;
		return;
	}
	if (r->cfg.read_delay_us) {
		sqe = get_sqe(h);
		io_uring_prep_timeout(sqe, &h->delay, 0,
				      IORING_TIMEOUT_ETIME_SUCCESS);
		sqe->flags |= IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS;
		io_uring_sqe_set_data64(sqe, (uint64_t)i << 2 | TAG_DELAY);
	}
	sqe = get_sqe(h);
	io_uring_prep_read(sqe, r->cfg.snapshot, s->buf, len,
			   r->cfg.snapshot_offset + s->run.first * r->page_size);
	/*
	 * A snapshot in the page cache is read inline, by this thread: fine
	 * for a page, but windows would be copied one after the other, so
	 * they go to io-wq (IOSQE_ASYNC). The writes go to io-wq anyway
	 * (guest_memfd has no FMODE_NOWAIT), which runs the writes to one
	 * file in order.
	 */
	sqe->flags |= IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS;
	if (s->run.count > 1)
		sqe->flags |= IOSQE_ASYNC;
	io_uring_sqe_set_data64(sqe, (uint64_t)i << 2 | TAG_READ);
	sqe = get_sqe(h);
	io_uring_prep_write(sqe, r->cfg.gmem, s->buf, len,
			    s->run.first * r->page_size);
	io_uring_sqe_set_data64(sqe, (uint64_t)i << 2 | TAG_WRITE);
	h->stats.reads++;
	h->inflight++;
}

/* Start the pending runs there are free slots for. */
static void uring_start_pending(struct handler *h)
{
	size_t started = 0;

	for (unsigned int i = 0; i < URING_SLOTS && started < h->nr_pending; i++) {
		if (h->slots[i].used)
			continue;
		h->slots[i].used = true;
		h->slots[i].run = h->pending[started++];
		uring_submit(h, i);
	}
	memmove(h->pending, h->pending + started,
		(h->nr_pending - started) * sizeof(*h->pending));
	h->nr_pending -= started;
}

static void uring_fault(struct handler *h, unsigned long addr)
{
	size_t page, n;
	bool claimed;

	if (!fault_page(h, addr, &page))
		return;
	n = claim_fault(h, page, &claimed);
	for (size_t i = 0; i < n; i++) {
		const struct run *run = &h->runs[i];

		if (run->zero) {	/* rare: no I/O to overlap */
			populate(h, h->r->zeroes, run, 0);
			finish_run(h, run);
			count_run(h, run);
			continue;
		}
		if (h->nr_pending == h->pending_size) {
			h->pending_size = h->pending_size ? 2 * h->pending_size : 64;
			h->pending = xrealloc(h->r, h->pending,
					      h->pending_size * sizeof(*h->pending));
		}
		h->pending[h->nr_pending++] = *run;
	}
	if (!claimed)
		fault_not_claimed(h, page);
}

static void uring_complete(struct handler *h, struct io_uring_cqe *cqe)
{
	uint64_t data = io_uring_cqe_get_data64(cqe);
	struct slot *s = &h->slots[data >> 2];
	size_t len = s->run.count * h->r->page_size;

	switch (data & 3) {
	case TAG_DELAY:
		fatal(h->r, "io_uring timeout: %s", strerror(-cqe->res));
		break;
	case TAG_READ:		/* posted on failure only */
		check_read(h->r, cqe->res, &s->run);
		fatal(h->r, "snapshot read failed");
		break;
	case TAG_WRITE:
		if (cqe->res < 0 && cqe->res != -EEXIST)
			fatal(h->r, "writing the guest_memfd at offset %lld: %s",
			      (long long)s->run.first * h->r->page_size,
			      strerror(-cqe->res));
		/* Stopped at a populated page: the rest, one by one. */
		if (cqe->res != (int)len)
			populate(h, h->r->cfg.image ?
				 h->r->cfg.image + s->run.first * h->r->page_size :
				 s->buf, &s->run,
				 cqe->res > 0 ? cqe->res / h->r->page_size : 0);
		finish_run(h, &s->run);
		count_run(h, &s->run);
		s->used = false;
		h->inflight--;
		break;
	}
}

static void *uring_handler(void *arg)
{
	struct handler *h = arg;
	struct restore *r = h->r;
	struct __kernel_timespec tick = { .tv_nsec = 10 * 1000 * 1000 };
	int ret;

	handler_init(h);
	h->delay.tv_sec = r->cfg.read_delay_us / 1000000;
	h->delay.tv_nsec = r->cfg.read_delay_us % 1000000 * 1000L;
	arm_poll(h);
	while (!atomic_load(&r->stop) || h->inflight) {
		struct io_uring_cqe *cqe;
		unsigned int head, seen = 0;
		unsigned long addr;

		/* Handled in order; a fault's runs wait for slots. */
		while (pop_fault(h, &addr))
			uring_fault(h, addr);
		uring_start_pending(h);
		ret = io_uring_submit_and_wait_timeout(&h->ring, &cqe, 1, &tick, NULL);
		if (ret < 0 && ret != -ETIME && ret != -EINTR)
			fatal(r, "io_uring_submit_and_wait: %s", strerror(-ret));
		io_uring_for_each_cqe(&h->ring, head, cqe) {
			seen++;
			if (io_uring_cqe_get_data64(cqe) != TAG_POLL) {
				uring_complete(h, cqe);
				continue;
			}
			if (cqe->res < 0)
				fatal(r, "polling the userfaultfd: %s", strerror(-cqe->res));
			if (!(cqe->flags & IORING_CQE_F_MORE))
				arm_poll(h);
			read_messages(h);
		}
		io_uring_cq_advance(&h->ring, seen);
	}
	return NULL;
}

struct restore *restore_start(const struct restore_config *cfg)
{
	struct restore *r = calloc(1, sizeof(*r));
	void *(*fn)(void *);

	if (!r)
		return NULL;
	r->cfg = *cfg;
	r->page_size = sysconf(_SC_PAGESIZE);
	r->nr_pages = cfg->size / r->page_size;
	if (!r->cfg.window)
		r->cfg.window = 1;
	r->nr_handlers = cfg->mode == RESTORE_URING ? 1 :
			 cfg->threads ? cfg->threads : 1;
	r->state = calloc(r->nr_pages, sizeof(*r->state));
	r->zeroes = calloc(r->cfg.window, r->page_size);
	r->handlers = calloc(r->nr_handlers, sizeof(*r->handlers));
	if (!r->state || !r->zeroes || !r->handlers || cfg->size % r->page_size) {
		errno = r->state && r->zeroes && r->handlers ? EINVAL : ENOMEM;
		goto fail;
	}

	fn = cfg->mode == RESTORE_URING ? uring_handler : sync_handler;
	for (unsigned int i = 0; i < r->nr_handlers; i++) {
		struct handler *h = &r->handlers[i];
		size_t wsize = r->cfg.window * r->page_size;

		h->r = r;
		h->runs = calloc((size_t)r->cfg.window * (1 + r->cfg.prefetch),
				 sizeof(*h->runs));
		h->buf = malloc(wsize);
		if (!h->runs || !h->buf)
			goto nomem;
		if (cfg->mode == RESTORE_URING) {
			int ret = io_uring_queue_init(URING_ENTRIES, &h->ring, 0);

			if (ret) {
				errno = -ret;
				goto fail;
			}
			for (unsigned int s = 0; s < URING_SLOTS; s++) {
				h->slots[s].buf = malloc(wsize);
				if (!h->slots[s].buf)
					goto nomem;
			}
		}
	}
	for (unsigned int i = 0; i < r->nr_handlers; i++) {
		int ret = pthread_create(&r->handlers[i].thread, NULL, fn,
					 &r->handlers[i]);

		if (ret) {
			errno = ret;
			/* Threads already started serve until exit. */
			return NULL;
		}
	}
	return r;

nomem:
	errno = ENOMEM;
fail:
	/* Freed by exit: restore_start() fails only at start-up. */
	return NULL;
}

void restore_stop(struct restore *r, struct restore_stats *stats)
{
	struct restore_stats sum = { 0 };

	atomic_store(&r->stop, true);
	for (unsigned int i = 0; i < r->nr_handlers; i++) {
		struct handler *h = &r->handlers[i];

		pthread_join(h->thread, NULL);
		sum.faults += h->stats.faults;
		sum.pages += h->stats.pages;
		sum.zero_pages += h->stats.zero_pages;
		sum.reads += h->stats.reads;
		sum.stale += h->stats.stale;
		sum.eexist += h->stats.eexist;
		sum.eagain += h->stats.eagain;
		sum.removes += h->stats.removes;
		sum.unmaps += h->stats.unmaps;
		if (r->cfg.mode == RESTORE_URING) {
			io_uring_queue_exit(&h->ring);
			for (unsigned int s = 0; s < URING_SLOTS; s++)
				free(h->slots[s].buf);
		}
		free(h->buf);
		free(h->runs);
		free(h->backlog);
		free(h->pending);
	}
	if (stats)
		*stats = sum;
	free(r->handlers);
	free(r->zeroes);
	free((void *)r->state);
	free(r);
}

// SPDX-License-Identifier: GPL-2.0
/*
 * gmem-restore: serve MISSING userfaults on a guest_memfd from a snapshot.
 * See gmem-restore.h for the interface and page-state.h for how handlers
 * agree on who fills what. This file has what both handlers share:
 * set-up, the userfaultfd's messages, the queues, claiming pages, and
 * filling and mapping a run of them.
 *
 * Ordering against UFFD_EVENT_REMOVE. The kernel sends REMOVE, waits until
 * it is read, then punches the hole. A handler's write can land after that
 * punch, putting snapshot data back into a page the guest gave up. So:
 *  - the area is registered for MINOR too: a written page is not mapped
 *    until our CONTINUE, and a fault on it reaches us;
 *  - reading the userfaultfd and applying its events happens under the
 *    write side of event_lock, and the check between a page's write and
 *    its CONTINUE (page_written()) under the read side. A check that finds
 *    no REMOVE ran before the REMOVE was read, so the write came before
 *    the kernel's punch, which takes the data away; a check that finds one
 *    may be after the punch, so the holder punches again, which is safe
 *    because nothing has mapped the page yet.
 */
#define _GNU_SOURCE
#include "restore-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void restore_fatal(struct restore *r, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (r->cfg.fatal)
		r->cfg.fatal(r->cfg.ctx, msg);
	else
		fprintf(stderr, "gmem-restore: %s\n", msg);
	exit(1);
}

static unsigned long page_addr(struct restore *r, size_t page)
{
	return (unsigned long)r->cfg.area + page * r->page_size;
}

static void wake_pages(struct restore *r, size_t first, size_t count)
{
	struct uffdio_range range = {
		.start = page_addr(r, first),
		.len = count * r->page_size,
	};

	if (ioctl(r->cfg.uffd, UFFDIO_WAKE, &range) && errno != ENOENT)
		restore_fatal(r, "UFFDIO_WAKE: %s", strerror(errno));
}

/* The pages [first, end) of the area that [start, end) covers, if any. */
static bool area_pages(struct restore *r, unsigned long start, unsigned long end,
		       size_t *first, size_t *last)
{
	unsigned long base = (unsigned long)r->cfg.area;

	if (end <= base || start >= base + r->cfg.size)
		return false;
	*first = start < base ? 0 : (start - base) / r->page_size;
	*last = end > base + r->cfg.size ? r->nr_pages :
		(end - base + r->page_size - 1) / r->page_size;
	return true;
}

/*
 * KVM Userfault: KVM may map the page from the guest_memfd now. Only once
 * the page is there (or discarded: zeroes, which KVM allocates), so the
 * store-release comes after the write that made it so.
 */
static void userfault_clear(struct restore *r, size_t page)
{
	unsigned long *map = r->cfg.kvm_userfault_bitmap;
	const size_t bits = 8 * sizeof(*map);

	if (map)
		__atomic_fetch_and(&map[page / bits], ~(1UL << (page % bits)),
				   __ATOMIC_RELEASE);
}

static void discard_pages(struct restore *r, size_t first, size_t end)
{
	for (size_t p = first; p < end; p++) {
		if (page_discard(&r->state[p]))
			atomic_fetch_sub(&r->nr_absent, 1);
		/* Held pages: their holder clears the bit when it lets go. */
		if (page_kind(atomic_load(&r->state[p])) == PAGE_DISCARDED)
			userfault_clear(r, p);
	}
}

/* --- queues --- */

static void *grow(struct restore *r, void *items, size_t *size, size_t item_size)
{
	*size = *size ? 2 * *size : 64;
	items = realloc(items, *size * item_size);
	if (!items)
		restore_fatal(r, "out of memory");
	return items;
}

/*
 * Make room for one more item at the end of a FIFO that is the window
 * [*head, *head + nr) of *items: compact it to the front, or grow it.
 */
static void make_room(struct restore *r, void **items, size_t *head, size_t nr,
		      size_t *size, size_t item_size)
{
	if (*head && *head + nr == *size) {
		memmove(*items, (char *)*items + *head * item_size, nr * item_size);
		*head = 0;
	}
	if (*head + nr == *size)
		*items = grow(r, *items, size, item_size);
}

static void queue_push(struct restore *r, struct queue *q, size_t item)
{
	make_room(r, (void **)&q->items, &q->head, q->nr, &q->size,
		  sizeof(*q->items));
	q->items[q->head + q->nr++] = item;
}

static bool queue_pop(struct queue *q, size_t *item)
{
	if (!q->nr)
		return false;
	*item = q->items[q->head++];
	if (!--q->nr)
		q->head = 0;
	return true;
}

void kick(struct restore *r)
{
	pthread_mutex_lock(&r->queue_lock);
	pthread_cond_broadcast(&r->work);
	pthread_mutex_unlock(&r->queue_lock);
	if (atomic_load(&r->poller))
		eventfd_write(r->kick_fd, 1);
}

bool pop_demand(struct restore *r, unsigned long *addr)
{
	size_t item = 0;
	bool ok;

	pthread_mutex_lock(&r->queue_lock);
	ok = queue_pop(&r->demand, &item);
	pthread_mutex_unlock(&r->queue_lock);
	*addr = item;
	return ok;
}

bool demand_waiting(struct restore *r)
{
	bool waiting;

	pthread_mutex_lock(&r->queue_lock);
	waiting = r->demand.nr;
	pthread_mutex_unlock(&r->queue_lock);
	return waiting;
}

/*
 * Readahead is queued as spans of window numbers, claimed only when a
 * handler fills them, so that a fault on one meanwhile is demand. A span
 * that continues or overlaps the last one extends it: a vCPU walking
 * memory queues one growing span, not a window per fault.
 */
static void queue_readahead(struct restore *r, size_t first, size_t end)
{
	size_t w = r->cfg.window;
	struct readahead_queue *q = &r->readahead;
	struct span s = { first / w, (end + w - 1) / w };

	pthread_mutex_lock(&r->queue_lock);
	if (q->nr) {
		struct span *last = &q->spans[q->head + q->nr - 1];

		if (s.next >= last->next && s.next <= last->end) {
			if (s.end > last->end)
				last->end = s.end;
			goto out;
		}
	}
	make_room(r, (void **)&q->spans, &q->head, q->nr, &q->size,
		  sizeof(*q->spans));
	q->spans[q->head + q->nr++] = s;
out:
	pthread_mutex_unlock(&r->queue_lock);
	kick(r);
}

bool pop_readahead(struct restore *r, size_t *first)
{
	struct readahead_queue *q = &r->readahead;
	bool ok = false;

	pthread_mutex_lock(&r->queue_lock);
	if (q->nr) {
		struct span *s = &q->spans[q->head];

		*first = s->next++ * r->cfg.window;
		ok = true;
		if (s->next >= s->end && !--q->nr)
			q->head = 0;
		else if (s->next >= s->end)
			q->head++;
	}
	pthread_mutex_unlock(&r->queue_lock);
	return ok;
}

/* --- the userfaultfd's messages --- */

int read_messages(struct handler *h)
{
	struct restore *r = h->r;
	struct uffd_msg msgs[16];
	int total = 0;
	size_t first, end;

	if (pthread_rwlock_trywrlock(&r->event_lock))
		return -1;
	for (;;) {
		ssize_t n = read(r->cfg.uffd, msgs, sizeof(msgs));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0)
			restore_fatal(r, "reading the userfaultfd: %s", strerror(errno));
		n /= sizeof(msgs[0]);
		total += n;
		for (ssize_t i = 0; i < n; i++) {
			struct uffd_msg *m = &msgs[i];

			switch (m->event) {
			case UFFD_EVENT_PAGEFAULT:
				h->stats.faults++;
				pthread_mutex_lock(&r->queue_lock);
				queue_push(r, &r->demand, m->arg.pagefault.address);
				pthread_mutex_unlock(&r->queue_lock);
				break;
			case UFFD_EVENT_REMOVE:
				/* The guest gave the memory back: zeroes from now on. */
				h->stats.removes++;
				if (area_pages(r, m->arg.remove.start, m->arg.remove.end,
					       &first, &end))
					discard_pages(r, first, end);
				break;
			case UFFD_EVENT_UNMAP:
				/*
				 * Nothing to fill there any more, and the faults
				 * waiting there must fail now, not sleep.
				 */
				h->stats.unmaps++;
				if (!area_pages(r, m->arg.remove.start, m->arg.remove.end,
						&first, &end))
					break;
				for (size_t p = first; p < end; p++)
					if (page_unmap(&r->state[p]))
						atomic_fetch_sub(&r->nr_absent, 1);
				wake_pages(r, first, end - first);
				break;
			default:
				restore_fatal(r, "unexpected userfaultfd event %u", m->event);
			}
		}
	}
	pthread_rwlock_unlock(&r->event_lock);
	if (total)
		kick(r);
	return total;
}

/* --- claiming --- */

size_t claim_window(struct handler *h, size_t first, bool readahead)
{
	struct restore *r = h->r;
	size_t end = first + r->cfg.window, n = 0;

	if (end > r->nr_pages)
		end = r->nr_pages;
	for (size_t p = first; p < end; p++) {
		enum page_claim c;
		bool zero;

		/* Readahead restores data; discarded pages wait for a fault. */
		if (readahead && atomic_load(&r->state[p]) != PAGE_ABSENT)
			continue;
		c = page_claim(&r->state[p]);
		if (c == CLAIM_NONE)
			continue;
		if (c == CLAIM_SNAPSHOT)
			atomic_fetch_sub(&r->nr_absent, 1);
		zero = c == CLAIM_ZERO;
		if (n && h->runs[n - 1].first + h->runs[n - 1].count == p &&
		    h->runs[n - 1].zero == zero)
			h->runs[n - 1].count++;
		else
			h->runs[n++] = (struct run){ p, 1, zero, readahead };
	}
	return n;
}

/*
 * Let go of held pages. Their KVM Userfault bits are cleared if they are
 * in the file (@present), or were removed (zeroes are right); not if a
 * write failed for another reason (UFFDIO_COPY's ENOENT) or they were
 * unmapped from the area: the file has nothing there the guest may read.
 */
static void release_pages(struct handler *h, size_t first, size_t count,
			  bool present)
{
	for (size_t p = first; p < first + count; p++) {
		unsigned char old = page_release(&h->r->state[p], present);

		if (!(old & PAGE_UNMAPPED) && (present || (old & PAGE_REMOVED)))
			userfault_clear(h->r, p);
		if (old & PAGE_WAITER)
			wake_pages(h->r, p, 1);
	}
}

static void map_pages(struct handler *h, size_t first, size_t count);
static bool poison_page(struct handler *h, size_t page, bool held);

/*
 * An event is pending and another thread reads it, or it was read and
 * the thread that caused it (munmap, madvise) has yet to run and finish:
 * until then UFFDIO_CONTINUE keeps failing with EAGAIN. Let it run rather
 * than spin: yield a few times, then sleep briefly.
 */
static void backoff(struct handler *h)
{
	struct timespec ts = { .tv_nsec = 50 * 1000 };

	if (h->stats.eagain % 8)
		sched_yield();
	else
		nanosleep(&ts, NULL);
}

/* EAGAIN from CONTINUE or COPY: apply the events, or let them come. */
static void retry_later(struct handler *h)
{
	h->stats.eagain++;
	if (read_messages(h) <= 0)
		backoff(h);
}

/*
 * @bytes from @first were mapped (by a CONTINUE or COPY that succeeded or
 * stopped part way): release them as done. Returns the number of pages.
 */
static size_t release_mapped(struct handler *h, size_t first, long bytes)
{
	size_t n = bytes / h->r->page_size;

	release_pages(h, first, n, true);
	return n;
}

/*
 * A fault on a page this handler did not claim: it must still be answered.
 * Held: its holder wakes it. Written (DONE): a stale message, or a page
 * that left the page table since: CONTINUE it again. Unmapped: wake it,
 * to fail. Absent again (a REMOVE since our claim): claim it now, as
 * h->runs[n]. Returns the number of runs.
 */
static size_t fault_not_claimed(struct handler *h, size_t page, size_t n)
{
	struct restore *r = h->r;

	for (;;) {
		unsigned char s = atomic_load(&r->state[page]);
		enum page_claim c;

		switch (page_kind(s)) {
		case PAGE_FILLING:
		case PAGE_MAPPING:
			if (page_wait_holder(&r->state[page]))
				return n;
			break;
		case PAGE_DONE:
			if (page_claim_done(&r->state[page])) {
				h->stats.stale++;
				map_pages(h, page, 1);
				return n;
			}
			break;
		case PAGE_GONE:
			wake_pages(r, page, 1);
			return n;
		case PAGE_POISONED:
			/* Its marker left the page table (MADV_DONTNEED): again. */
			if (poison_page(h, page, false))
				return n;
			break;
		default:
			c = page_claim(&r->state[page]);
			if (c == CLAIM_NONE)
				break;
			if (c == CLAIM_SNAPSHOT)
				atomic_fetch_sub(&r->nr_absent, 1);
			h->runs[n] = (struct run){ page, 1, c == CLAIM_ZERO, false };
			return n + 1;
		}
	}
}

/*
 * Claim what is absent of @page's window into h->runs; *@claimed: @page
 * is among it. Then its window's readahead is queued.
 */
static size_t claim_page(struct handler *h, size_t page, bool *claimed)
{
	struct restore *r = h->r;
	size_t w = r->cfg.window, first = page - page % w;
	size_t n = claim_window(h, first, false);

	*claimed = false;
	for (size_t i = 0; i < n; i++) {
		const struct run *run = &h->runs[i];

		if (page < run->first || page >= run->first + run->count)
			continue;
		*claimed = true;
		if (!run->zero && r->cfg.prefetch && first + w < r->nr_pages) {
			size_t end = first + w * (1 + (size_t)r->cfg.prefetch);

			queue_readahead(r, first + w,
					end > r->nr_pages ? r->nr_pages : end);
		}
		break;
	}
	return n;
}

size_t claim_fault(struct handler *h, unsigned long addr)
{
	struct restore *r = h->r;
	unsigned long base = (unsigned long)r->cfg.area;
	size_t page, n;
	bool claimed;

	if (addr < base || addr >= base + r->cfg.size)
		return 0;		/* not ours */
	page = (addr - base) / r->page_size;
	n = claim_page(h, page, &claimed);
	return claimed ? n : fault_not_claimed(h, page, n);
}

/* --- filling and mapping a run --- */

void simulate_read_latency(struct restore *r)
{
	struct timespec ts = {
		.tv_sec = r->cfg.read_delay_us / 1000000,
		.tv_nsec = r->cfg.read_delay_us % 1000000 * 1000L,
	};

	if (r->cfg.read_delay_us)
		while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
			;
}

bool check_read(struct restore *r, ssize_t n, const struct run *run)
{
	off_t off = r->cfg.snapshot_offset + run->first * r->page_size;
	size_t len = run->count * r->page_size;

	if ((size_t)n == len)
		return true;
	if (r->cfg.unreadable == RESTORE_UNREADABLE_POISON)
		return false;
	if (n < 0)
		restore_fatal(r, "reading %zu bytes of the snapshot at offset %lld: %s",
			      len, (long long)off, strerror(-n));
	restore_fatal(r, "the snapshot is short: %zd of %zu bytes at offset %lld",
		      n, len, (long long)off);
}

static bool read_snapshot(struct handler *h, const struct run *run)
{
	struct restore *r = h->r;
	size_t len = run->count * r->page_size, got = 0;
	off_t off = r->cfg.snapshot_offset + run->first * r->page_size;
	ssize_t n = 0;

	simulate_read_latency(r);
	h->stats.reads++;
	while (got < len) {
		n = pread(r->cfg.snapshot, h->buf + got, len - got, off + got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += n;
	}
	return check_read(r, n < 0 ? -errno : (ssize_t)got, run);
}

/*
 * write() never overwrites a populated page: it stops before one (short
 * count) or fails with EEXIST on it; such a page keeps what it has.
 */
void populate(struct handler *h, const char *buf, const struct run *run,
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
			restore_fatal(r, "writing the guest_memfd at offset %lld: %s",
				      (long long)(run->first + done) * ps,
				      strerror(errno));
		}
	}
}

/*
 * Map held, written pages with UFFDIO_CONTINUE, which wakes the threads
 * waiting on them, and release them. EEXIST: mapped already (a retried
 * fault, another CONTINUE), wake whoever waits. EAGAIN: an event (REMOVE,
 * UNMAP) must be read before the layout can change. EFAULT: the page left
 * the file after we wrote it, the guest removed it: it reads zeroes. ENOENT:
 * the range spans VMAs (mprotect, MADV_DONTDUMP split the area), so go page
 * by page; on one page, it is not registered (unmapped, unregistered) any
 * more: wake it.
 */
static void map_pages(struct handler *h, size_t first, size_t count)
{
	struct restore *r = h->r;
	size_t end = first + count;
	bool by_page = false;

	while (first < end) {
		size_t n = by_page ? 1 : end - first;
		struct uffdio_continue cont = {
			.range = { .start = page_addr(r, first), .len = n * r->page_size },
		};

		if (!ioctl(r->cfg.uffd, UFFDIO_CONTINUE, &cont))
			cont.mapped = n * r->page_size;
		if (cont.mapped > 0) {		/* all or part done */
			first += release_mapped(h, first, cont.mapped);
			continue;
		}
		switch (errno) {
		case EEXIST:
			h->stats.eexist++;
			release_pages(h, first, 1, true);
			wake_pages(r, first++, 1);
			break;
		case EAGAIN:
			retry_later(h);
			break;
		case EFAULT:
			release_pages(h, first, 1, false);
			wake_pages(r, first++, 1);
			break;
		case ENOENT:
			if (n > 1) {
				h->stats.split++;
				by_page = true;
				break;
			}
			release_pages(h, first, 1, true);
			wake_pages(r, first++, 1);
			break;
		default:
			restore_fatal(r, "UFFDIO_CONTINUE at %#lx: %s",
				      page_addr(r, first), strerror(errno));
		}
	}
}

/* Punch pages removed while we filled them, before anything maps them. */
static void punch_pages(struct handler *h, size_t first, size_t count)
{
	struct restore *r = h->r;

	if (fallocate(r->cfg.gmem, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      first * r->page_size, count * r->page_size))
		restore_fatal(r, "punching removed pages out of the guest_memfd: %s",
			      strerror(errno));
	h->stats.punched += count;
	release_pages(h, first, count, false);
	/* A fault that came after the REMOVE may wait on the page we wrote. */
	wake_pages(r, first, count);
}

static void count_run(struct handler *h, const struct run *run)
{
	if (run->zero)
		h->stats.zero_pages += run->count;
	else
		h->stats.pages += run->count;
	if (run->readahead)
		h->stats.readahead_pages += run->count;
}

void finish_run(struct handler *h, const struct run *run)
{
	struct restore *r = h->r;
	size_t end = run->first + run->count;

	pthread_rwlock_rdlock(&r->event_lock);
	for (size_t p = run->first; p < end; p++)
		page_written(&r->state[p]);
	pthread_rwlock_unlock(&r->event_lock);

	/* Pages still FILLING were removed: punch them; map the others. */
	for (size_t p = run->first; p < end;) {
		bool removed = page_kind(atomic_load(&r->state[p])) == PAGE_FILLING;
		size_t q = p + 1;

		while (q < end &&
		       (page_kind(atomic_load(&r->state[q])) == PAGE_FILLING) == removed)
			q++;
		if (removed)
			punch_pages(h, p, q - p);
		else if (h->vcpu)	/* KVM maps it from the file */
			release_pages(h, p, q - p, true);
		else
			map_pages(h, p, q - p);
		p = q;
	}
	count_run(h, run);
}

/*
 * RESTORE_ANSWER_COPY: fill and map @run from @buf with UFFDIO_COPY. The
 * data is visible the moment it is copied, so the check that no REMOVE
 * came (page_may_copy()) and the copy happen under the event lock's read
 * side together: a REMOVE is read either before (the page is not filled)
 * or after (our copy precedes the kernel's punch, which takes it away).
 * EEXIST: the page is populated (the VMM wrote it) or mapped: CONTINUE it.
 * Otherwise as map_pages().
 */
static void copy_run(struct handler *h, const char *buf, const struct run *run)
{
	struct restore *r = h->r;
	size_t p = run->first, end = run->first + run->count;
	bool by_page = false;

	while (p < end) {
		struct uffdio_copy copy = { 0 };
		size_t n = 1;
		int ret, err;

		pthread_rwlock_rdlock(&r->event_lock);
		if (!page_may_copy(&r->state[p])) {
			pthread_rwlock_unlock(&r->event_lock);
			release_pages(h, p, 1, false);
			wake_pages(r, p++, 1);
			continue;
		}
		while (!by_page && p + n < end && page_may_copy(&r->state[p + n]))
			n++;
		copy.dst = page_addr(r, p);
		copy.src = (unsigned long)buf + (p - run->first) * r->page_size;
		copy.len = n * r->page_size;
		ret = ioctl(r->cfg.uffd, UFFDIO_COPY, &copy);
		err = errno;
		pthread_rwlock_unlock(&r->event_lock);

		if (!ret)
			copy.copy = n * r->page_size;
		if (copy.copy > 0) {		/* all or part done */
			p += release_mapped(h, p, copy.copy);
			continue;
		}
		switch (err) {
		case EEXIST:
			h->stats.eexist++;
			map_pages(h, p++, 1);
			break;
		case EAGAIN:
			retry_later(h);
			break;
		case ENOENT:
			if (n > 1) {
				h->stats.split++;
				by_page = true;
				break;
			}
			release_pages(h, p, 1, false);
			wake_pages(r, p++, 1);
			break;
		default:
			restore_fatal(r, "UFFDIO_COPY at %#lx: %s",
				      page_addr(r, p), strerror(err));
		}
	}
	count_run(h, run);
}

void answer_run(struct handler *h, const char *buf, const struct run *run)
{
	if (h->r->cfg.answer == RESTORE_ANSWER_COPY && !h->vcpu) {
		copy_run(h, buf, run);
		return;
	}
	populate(h, buf, run, 0);
	finish_run(h, run);
}

void fill_run(struct handler *h, const struct run *run)
{
	struct restore *r = h->r;

	if (run->zero) {
		answer_run(h, r->zeroes, run);
	} else if (r->cfg.image) {
		answer_run(h, r->cfg.image + run->first * r->page_size, run);
	} else if (read_snapshot(h, run)) {
		answer_run(h, h->buf, run);
	} else {
		unreadable_run(h, run);
	}
}

/*
 * UFFDIO_POISON @page: one this handler holds and could not read (@held),
 * which becomes POISONED, unless a REMOVE came since the claim (the guest
 * gave it back: zeroes will do); or one that is POISONED already, whose
 * marker left the page table (MADV_DONTNEED), unless a REMOVE made it
 * discarded since. False if it was not poisoned for that reason. Checked
 * and done under the event lock's read side, as copy_run() does: a REMOVE
 * is applied before (we see it) or after (its punch comes after our
 * marker). EEXIST: something is mapped there (the marker, a page the VMM
 * put); ENOENT: not registered any more.
 */
static bool poison_page(struct handler *h, size_t page, bool held)
{
	struct restore *r = h->r;
	struct uffdio_poison poison = {
		.range = { .start = page_addr(r, page), .len = r->page_size },
	};
	unsigned char s, old = 0;
	int ret, err;

	for (;;) {
		pthread_rwlock_rdlock(&r->event_lock);
		s = atomic_load(&r->state[page]);
		if (held ? (s & PAGE_REMOVED) : page_kind(s) != PAGE_POISONED) {
			pthread_rwlock_unlock(&r->event_lock);
			if (held) {
				release_pages(h, page, 1, false);
				wake_pages(r, page, 1);
			}
			return false;
		}
		ret = ioctl(r->cfg.uffd, UFFDIO_POISON, &poison);
		err = errno;
		if (!ret || err != EAGAIN)
			break;
		pthread_rwlock_unlock(&r->event_lock);
		retry_later(h);
	}
	if (ret && err != EEXIST && err != ENOENT)
		restore_fatal(r, "UFFDIO_POISON at %#lx: %s", page_addr(r, page),
			      strerror(err));
	if (held)
		old = page_poison(&r->state[page]);
	pthread_rwlock_unlock(&r->event_lock);
	if (held)
		h->stats.poisoned++;
	/* POISON wakes the range; an EEXIST or ENOENT answer does not. */
	if ((ret && !held) || (old & PAGE_WAITER))
		wake_pages(r, page, 1);
	return true;
}

void unreadable_run(struct handler *h, const struct run *run)
{
	if (run->count == 1) {
		poison_page(h, run->first, true);
		return;
	}
	/* Which pages? Each on its own: the others are restored. */
	for (size_t p = run->first; p < run->first + run->count; p++) {
		struct run one = { p, 1, false, run->readahead };

		if (read_snapshot(h, &one))
			answer_run(h, h->buf, &one);
		else
			poison_page(h, p, true);
	}
}

/* --- the interface --- */

static int check_config(struct restore *r)
{
	const struct restore_config *cfg = &r->cfg;
	long ps = r->page_size;
	struct stat st;
	int fl;

	fl = fcntl(cfg->uffd, F_GETFL);
	if (fl < 0)
		return -1;
	if (!(fl & O_NONBLOCK) || !cfg->size || cfg->size % ps ||
	    (unsigned long)cfg->area % ps || cfg->mode > RESTORE_URING ||
	    cfg->answer > RESTORE_ANSWER_COPY ||
	    cfg->unreadable > RESTORE_UNREADABLE_POISON ||
	    cfg->threads > RESTORE_MAX_THREADS || cfg->prefetch > r->nr_pages)
		goto inval;
	if (r->cfg.window > r->nr_pages)
		r->cfg.window = r->nr_pages;
	r->window_bytes = (size_t)r->cfg.window * ps;
	if (r->window_bytes > RESTORE_MAX_WINDOW_BYTES)
		goto inval;
	if (fstat(cfg->gmem, &st))
		return -1;
	if ((size_t)st.st_size < cfg->size)
		goto inval;
	if (cfg->image)
		return cfg->image_size < cfg->size ? (errno = EINVAL, -1) : 0;

	/* The snapshot: long enough now, and O_DIRECT-able if it is that. */
	if (cfg->snapshot_offset < 0 || fstat(cfg->snapshot, &st))
		goto inval;
	if (S_ISREG(st.st_mode) &&
	    (size_t)st.st_size < cfg->snapshot_offset + cfg->size)
		goto inval;
	fl = fcntl(cfg->snapshot, F_GETFL);
	if (fl < 0 || ((fl & O_DIRECT) && cfg->snapshot_offset % ps))
		goto inval;
	return 0;
inval:
	errno = EINVAL;
	return -1;
}

/*
 * MISSING and MINOR, so that no page we write is mapped before our
 * CONTINUE (see the top of this file). The VMM may have registered the
 * area already, with this userfaultfd: that just changes the modes.
 */
static int register_area(struct restore *r, __u64 mode)
{
	struct uffdio_register reg = {
		.range = { .start = (unsigned long)r->cfg.area, .len = r->cfg.size },
		.mode = mode,
	};

	if (ioctl(r->cfg.uffd, UFFDIO_REGISTER, &reg))
		return -1;
	if (!(reg.ioctls & (1ULL << _UFFDIO_CONTINUE))) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

static void *alloc_aligned(struct restore *r, size_t size)
{
	void *p;

	return posix_memalign(&p, r->page_size, size) ? NULL : p;
}

static void add_stats(struct restore_stats *sum, const struct restore_stats *s)
{
	/* Every field is an unsigned long counter. */
	unsigned long *out = (unsigned long *)sum;
	const unsigned long *in = (const unsigned long *)s;

	for (size_t i = 0; i < sizeof(*sum) / sizeof(*out); i++)
		out[i] += in[i];
}

/* Stop the threads that run, and free everything. */
static void restore_free(struct restore *r, struct restore_stats *sum)
{
	atomic_store(&r->stop, true);
	kick(r);
	for (unsigned int i = 0; r->handlers && i < r->nr_handlers; i++) {
		struct handler *h = &r->handlers[i];

		if (h->started)
			pthread_join(h->thread, NULL);
		if (sum)
			add_stats(sum, &h->stats);
		uring_exit(h);
		free(h->buf);
		free(h->runs);
		free(h->pending);
	}
	if (r->kick_fd >= 0)
		close(r->kick_fd);
	pthread_rwlock_destroy(&r->event_lock);
	pthread_mutex_destroy(&r->queue_lock);
	pthread_cond_destroy(&r->work);
	free(r->demand.items);
	free(r->readahead.spans);
	free(r->handlers);
	if (r->zeroes)
		munmap((void *)r->zeroes, r->window_bytes);
	free((void *)r->state);
	free(r);
}

/* @ring: RESTORE_URING's handler (restore_finish()'s filler has none). */
static int handler_init(struct restore *r, struct handler *h, bool ring)
{
	h->r = r;
	/* A fault may add one page outside its window: see fault_not_claimed(). */
	h->runs = calloc(r->cfg.window + 1, sizeof(*h->runs));
	h->buf = alloc_aligned(r, r->window_bytes);
	if (!h->runs || !h->buf) {
		errno = ENOMEM;
		return -1;
	}
	return ring ? uring_init(h) : 0;
}

struct restore *restore_start(const struct restore_config *cfg)
{
	struct restore *r = calloc(1, sizeof(*r));
	void *(*fn)(void *);
	int err;

	if (!r)
		return NULL;
	r->cfg = *cfg;
	r->kick_fd = -1;
	r->page_size = sysconf(_SC_PAGESIZE);
	r->nr_pages = cfg->size / r->page_size;
	if (!r->cfg.window)
		r->cfg.window = 1;
	pthread_rwlock_init(&r->event_lock, NULL);
	pthread_mutex_init(&r->queue_lock, NULL);
	pthread_cond_init(&r->work, NULL);
	if (check_config(r)) {
		err = errno;
		goto fail;
	}
	atomic_store(&r->nr_absent, r->nr_pages);
	r->nr_handlers = cfg->mode == RESTORE_URING ? 1 :
			 cfg->threads ? cfg->threads : 1;
	r->state = calloc(r->nr_pages, sizeof(*r->state));
	/* Read only, so every page of it is the zero page: no memory. */
	r->zeroes = mmap(NULL, r->window_bytes, PROT_READ,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r->zeroes == MAP_FAILED)
		r->zeroes = NULL;
	r->handlers = calloc(r->nr_handlers, sizeof(*r->handlers));
	r->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (!r->state || !r->zeroes || !r->handlers || r->kick_fd < 0) {
		err = ENOMEM;
		goto fail;
	}
	for (unsigned int i = 0; i < r->nr_handlers; i++) {
		if (handler_init(r, &r->handlers[i],
				 cfg->mode == RESTORE_URING)) {
			err = errno;
			goto fail;
		}
	}
	if (register_area(r, UFFDIO_REGISTER_MODE_MISSING |
			     UFFDIO_REGISTER_MODE_MINOR)) {
		err = errno;
		goto fail;
	}

	fn = cfg->mode == RESTORE_URING ? uring_handler : sync_handler;
	for (unsigned int i = 0; i < r->nr_handlers; i++) {
		struct handler *h = &r->handlers[i];

		err = pthread_create(&h->thread, NULL, fn, h);
		if (err)
			goto fail;
		h->started = true;
	}
	return r;

fail:
	restore_free(r, NULL);
	errno = err;
	return NULL;
}

static int check_range(struct restore *r, size_t offset, size_t len,
		       size_t *first, size_t *end)
{
	if (offset % r->page_size || len % r->page_size || offset > r->cfg.size ||
	    len > r->cfg.size - offset) {
		errno = EINVAL;
		return -1;
	}
	*first = offset / r->page_size;
	*end = *first + len / r->page_size;
	return 0;
}

int restore_populated(struct restore *r, size_t offset, size_t len)
{
	size_t first, end;

	if (check_range(r, offset, len, &first, &end))
		return -1;
	for (size_t p = first; p < end; p++) {
		if (page_populated(&r->state[p]))
			atomic_fetch_sub(&r->nr_absent, 1);
		if (page_kind(atomic_load(&r->state[p])) == PAGE_DONE)
			userfault_clear(r, p);
	}
	return 0;
}

int restore_discarded(struct restore *r, size_t offset, size_t len)
{
	size_t first, end;

	if (check_range(r, offset, len, &first, &end))
		return -1;
	/* Ordered against page_written() as a REMOVE event is. */
	pthread_rwlock_wrlock(&r->event_lock);
	discard_pages(r, first, end);
	pthread_rwlock_unlock(&r->event_lock);
	return 0;
}

struct restore_vcpu *restore_vcpu_attach(struct restore *r)
{
	struct restore_vcpu *v;

	if (!r->cfg.kvm_userfault_bitmap) {
		errno = EINVAL;
		return NULL;
	}
	v = calloc(1, sizeof(*v));
	if (!v)
		return NULL;
	v->h.vcpu = true;
	if (handler_init(r, &v->h, false)) {
		restore_vcpu_detach(v);
		errno = ENOMEM;
		return NULL;
	}
	return v;
}

void restore_vcpu_detach(struct restore_vcpu *v)
{
	struct restore *r = v->h.r;

	pthread_mutex_lock(&r->queue_lock);
	add_stats(&r->vcpu_stats, &v->h.stats);
	pthread_mutex_unlock(&r->queue_lock);
	free(v->h.buf);
	free(v->h.runs);
	free(v);
}

/*
 * Another thread holds the page, for one window's read at most: look
 * again soon, rather than re-enter the vCPU only to exit again.
 */
static void wait_holder(unsigned int *spins)
{
	struct timespec ts = { .tv_nsec = 20 * 1000 };

	if (++*spins < 16)
		sched_yield();
	else
		nanosleep(&ts, NULL);
}

int restore_vcpu_fault(struct restore_vcpu *v, size_t offset)
{
	struct handler *h = &v->h;
	struct restore *r = h->r;
	unsigned int spins = 0;
	size_t page, n;
	bool claimed;

	if (offset % r->page_size || offset >= r->cfg.size) {
		errno = EINVAL;
		return -1;
	}
	page = offset / r->page_size;
	h->stats.vcpu_faults++;
	for (;;) {
		switch (page_kind(atomic_load(&r->state[page]))) {
		case PAGE_DONE:
			/* Its holder may not have cleared the bit yet. */
			userfault_clear(r, page);
			return 0;
		case PAGE_POISONED:
			errno = EHWPOISON;
			return -1;
		case PAGE_GONE:
			errno = ENOENT;
			return -1;
		case PAGE_FILLING:
		case PAGE_MAPPING:
			if (!spins)
				h->stats.vcpu_waits++;
			wait_holder(&spins);
			break;
		default:	/* absent, or discarded: ours to fill */
			n = claim_page(h, page, &claimed);
			for (size_t i = 0; i < n; i++)
				fill_run(h, &h->runs[i]);
			/* Claimed or not, its state now says what became of it. */
			break;
		}
	}
}

void restore_progress(struct restore *r, struct restore_progress *p)
{
	p->total = r->nr_pages;
	p->absent = atomic_load(&r->nr_absent);
}

size_t restore_stop(struct restore *r, struct restore_stats *stats)
{
	struct restore_stats sum = { 0 };
	size_t absent;

	atomic_store(&r->stop, true);
	kick(r);
	for (unsigned int i = 0; i < r->nr_handlers; i++) {
		pthread_join(r->handlers[i].thread, NULL);
		r->handlers[i].started = false;
	}
	/*
	 * Back to MISSING only, as the VMM registered it: nobody answers a
	 * MINOR fault now, and a page that left the page table (MADV_DONTNEED)
	 * must just be mapped again. Wake whoever faulted since the threads
	 * stopped, to fault again under the new modes. Best effort: the area
	 * may be partly unmapped.
	 */
	register_area(r, UFFDIO_REGISTER_MODE_MISSING);
	wake_pages(r, 0, r->nr_pages);
	absent = atomic_load(&r->nr_absent);
	add_stats(&sum, &r->vcpu_stats);
	restore_free(r, &sum);
	if (stats)
		*stats = sum;
	return absent;
}

int restore_finish(struct restore *r, struct restore_stats *stats)
{
	struct restore_stats sum;
	struct handler f = { 0 };
	size_t absent;

	if (handler_init(r, &f, false)) {
		free(f.buf);
		free(f.runs);
		return -1;
	}
	for (size_t first = 0; first < r->nr_pages; first += r->cfg.window) {
		size_t n = claim_window(&f, first, true);

		for (size_t i = 0; i < n; i++)
			fill_run(&f, &f.runs[i]);
	}
	free(f.buf);
	free(f.runs);
	absent = restore_stop(r, &sum);
	add_stats(&sum, &f.stats);
	if (stats)
		*stats = sum;
	if (absent || sum.poisoned) {
		errno = EIO;
		return -1;
	}
	return 0;
}

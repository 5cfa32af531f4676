// SPDX-License-Identifier: GPL-2.0
/*
 * RESTORE_URING: one thread; each run's I/O (snapshot read, guest_memfd
 * write) is an io_uring link, and up to URING_SLOTS runs are in flight.
 * Demand runs take free slots first; readahead is claimed only for a free
 * slot, and never takes the last URING_SLOTS - URING_READAHEAD_SLOTS.
 * With RESTORE_ANSWER_COPY the link ends at the read, and this thread
 * answers with UFFDIO_COPY from the slot's buffer when it completes.
 */
#define _GNU_SOURCE
#include "restore-internal.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#define TAG_POLL	UINT64_MAX
/* user_data of a slot's requests: slot index << 2 | which request */
enum { TAG_DELAY, TAG_READ, TAG_WRITE };

int uring_init(struct handler *h)
{
	int ret = io_uring_queue_init(URING_ENTRIES, &h->ring, 0);

	if (ret) {
		errno = -ret;
		return -1;
	}
	h->ring_ready = true;
	for (unsigned int s = 0; s < URING_SLOTS; s++) {
		if (posix_memalign((void **)&h->slots[s].buf, h->r->page_size,
				   h->r->window_bytes)) {
			errno = ENOMEM;
			return -1;
		}
	}
	return 0;
}

void uring_exit(struct handler *h)
{
	if (h->ring_ready)
		io_uring_queue_exit(&h->ring);
	h->ring_ready = false;
	for (unsigned int s = 0; s < URING_SLOTS; s++) {
		free(h->slots[s].buf);
		h->slots[s].buf = NULL;
	}
}

static struct io_uring_sqe *get_sqe(struct handler *h)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&h->ring);

	if (!sqe) {
		io_uring_submit(&h->ring);
		sqe = io_uring_get_sqe(&h->ring);
		if (!sqe)
			restore_fatal(h->r, "io_uring submission queue full");
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

	h->inflight++;
	if (s->run.readahead)
		h->readahead_inflight++;
	if (r->cfg.image) {	/* mapped snapshot: no read, one copy */
		sqe = get_sqe(h);
		io_uring_prep_write(sqe, r->cfg.gmem,
				    r->cfg.image + s->run.first * r->page_size,
				    len, s->run.first * r->page_size);
		io_uring_sqe_set_data64(sqe, (uint64_t)i << 2 | TAG_WRITE);
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
	h->stats.reads++;
	if (r->cfg.answer == RESTORE_ANSWER_COPY) {
		if (s->run.count > 1)
			sqe->flags |= IOSQE_ASYNC;
		io_uring_sqe_set_data64(sqe, (uint64_t)i << 2 | TAG_READ);
		return;
	}
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
}

static int free_slot(struct handler *h)
{
	for (unsigned int i = 0; i < URING_SLOTS; i++)
		if (!h->slots[i].used)
			return i;
	return -1;
}

/* Start @run in a free slot; false if there is none. */
static bool start_run(struct handler *h, const struct run *run)
{
	int i = free_slot(h);

	if (i < 0)
		return false;
	h->slots[i].used = true;
	h->slots[i].run = *run;
	uring_submit(h, i);
	return true;
}

/*
 * Claimed runs: zeroes are written at once (no I/O to overlap), the others
 * start in a slot or wait for one, demand runs ahead of readahead ones.
 */
static void queue_runs(struct handler *h, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct run *run = &h->runs[i];
		size_t at;

		/* Nothing to overlap: zeroes, or COPY from a mapped image. */
		if (run->zero || (h->r->cfg.image &&
				  h->r->cfg.answer == RESTORE_ANSWER_COPY)) {
			fill_run(h, run);
			continue;
		}
		if (!h->nr_pending && start_run(h, run))
			continue;
		if (h->nr_pending == h->pending_size) {
			h->pending_size = h->pending_size ? 2 * h->pending_size : 64;
			h->pending = realloc(h->pending,
					     h->pending_size * sizeof(*h->pending));
			if (!h->pending)
				restore_fatal(h->r, "out of memory");
		}
		at = h->nr_pending;
		if (!run->readahead)
			while (at && h->pending[at - 1].readahead)
				at--;
		memmove(h->pending + at + 1, h->pending + at,
			(h->nr_pending - at) * sizeof(*h->pending));
		h->pending[at] = *run;
		h->nr_pending++;
	}
}

static void start_pending(struct handler *h)
{
	size_t started = 0;

	while (started < h->nr_pending && start_run(h, &h->pending[started]))
		started++;
	memmove(h->pending, h->pending + started,
		(h->nr_pending - started) * sizeof(*h->pending));
	h->nr_pending -= started;
}

/* Readahead into the slots demand leaves, while no fault waits. */
static void start_readahead(struct handler *h)
{
	struct restore *r = h->r;
	size_t first;

	while (!h->nr_pending && h->readahead_inflight < URING_READAHEAD_SLOTS &&
	       free_slot(h) >= 0 && !atomic_load(&r->stop) &&
	       !demand_waiting(r) && pop_readahead(r, &first))
		queue_runs(h, claim_window(h, first, true));
}

static void release_slot(struct handler *h, struct slot *s)
{
	s->used = false;
	h->inflight--;
	if (s->run.readahead)
		h->readahead_inflight--;
}

static void uring_complete(struct handler *h, struct io_uring_cqe *cqe)
{
	uint64_t data = io_uring_cqe_get_data64(cqe);
	struct slot *s = &h->slots[data >> 2];
	size_t len = s->run.count * h->r->page_size;

	switch (data & 3) {
	case TAG_DELAY:
		restore_fatal(h->r, "io_uring timeout: %s", strerror(-cqe->res));
		break;
	case TAG_READ:		/* on failure; with COPY, on success too */
		if (!check_read(h->r, cqe->res, &s->run)) {
			/*
			 * Poison what cannot be read. The write linked to
			 * the read is cancelled without a completion (the
			 * read skips its CQE on success, so the link's are
			 * skipped on failure): the slot is free now.
			 */
			unreadable_run(h, &s->run);
			release_slot(h, s);
			break;
		}
		if (h->r->cfg.answer != RESTORE_ANSWER_COPY)
			restore_fatal(h->r, "snapshot read failed");
		answer_run(h, s->buf, &s->run);
		release_slot(h, s);
		break;
	case TAG_WRITE:
		if (cqe->res < 0 && cqe->res != -EEXIST)
			restore_fatal(h->r, "writing the guest_memfd at offset %lld: %s",
				      (long long)s->run.first * h->r->page_size,
				      strerror(-cqe->res));
		/* Stopped at a populated page: the rest, one by one. */
		if (cqe->res != (int)len)
			populate(h, h->r->cfg.image ?
				 h->r->cfg.image + s->run.first * h->r->page_size :
				 s->buf, &s->run,
				 cqe->res > 0 ? cqe->res / h->r->page_size : 0);
		finish_run(h, &s->run);
		release_slot(h, s);
		break;
	}
}

void *uring_handler(void *arg)
{
	struct handler *h = arg;
	struct restore *r = h->r;
	struct __kernel_timespec tick = { .tv_nsec = 10 * 1000 * 1000 };
	bool readable = true;	/* faults may be queued before we started */

	prctl(PR_SET_TIMERSLACK, 1UL);
	h->delay.tv_sec = r->cfg.read_delay_us / 1000000;
	h->delay.tv_nsec = r->cfg.read_delay_us % 1000000 * 1000L;
	arm_poll(h);
	for (;;) {
		bool stopping = atomic_load(&r->stop);
		struct io_uring_cqe *cqe;
		unsigned int head, seen = 0;
		unsigned long addr;
		int ret, n = 0;

		if (readable || stopping)
			n = read_messages(h);
		readable = n < 0;	/* busy: try again */
		while (pop_demand(r, &addr))
			queue_runs(h, claim_fault(h, addr));
		start_pending(h);
		start_readahead(h);
		/* Stopping: every fault read is served, every claimed run done. */
		if (stopping && !n && !h->nr_pending && !h->inflight &&
		    !demand_waiting(r))
			break;
		ret = io_uring_submit_and_wait_timeout(&h->ring, &cqe, 1, &tick, NULL);
		if (ret < 0 && ret != -ETIME && ret != -EINTR)
			restore_fatal(r, "io_uring_submit_and_wait: %s", strerror(-ret));
		io_uring_for_each_cqe(&h->ring, head, cqe) {
			seen++;
			if (io_uring_cqe_get_data64(cqe) != TAG_POLL) {
				uring_complete(h, cqe);
				continue;
			}
			if (cqe->res < 0)
				restore_fatal(r, "polling the userfaultfd: %s",
					      strerror(-cqe->res));
			if (!(cqe->flags & IORING_CQE_F_MORE))
				arm_poll(h);
			readable = true;
		}
		io_uring_cq_advance(&h->ring, seen);
	}
	return NULL;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * RESTORE_SYNC: N threads, one queue. Each thread serves the oldest fault
 * anyone read; with none waiting, it reads the userfaultfd; with nothing
 * there either, it fills one readahead window and looks again, so that a
 * fault waits for at most one window of readahead.
 */
#define _GNU_SOURCE
#include "restore-internal.h"

#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <time.h>

#define IDLE_MS	100	/* a bound on a lost wakeup, none expected */

static void fill_runs(struct handler *h, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fill_run(h, &h->runs[i]);
}

static bool work_queued(struct restore *r)
{
	return r->demand.nr || r->readahead.nr || atomic_load(&r->stop);
}

/*
 * Nothing to do: one idle thread polls the userfaultfd, the others wait
 * for kick(). The poller is announced and kick_fd emptied before it looks
 * at the queues, and kick() writes kick_fd after queueing, so it sees
 * either the work or the write.
 */
static void idle(struct handler *h)
{
	struct restore *r = h->r;
	struct pollfd pfd[2] = {
		{ .fd = r->cfg.uffd, .events = POLLIN },
		{ .fd = r->kick_fd, .events = POLLIN },
	};
	bool no_poller = false;
	struct timespec until;
	eventfd_t v;

	if (atomic_compare_exchange_strong(&r->poller, &no_poller, true)) {
		bool queued;

		eventfd_read(r->kick_fd, &v);
		pthread_mutex_lock(&r->queue_lock);
		queued = work_queued(r);
		pthread_mutex_unlock(&r->queue_lock);
		if (!queued)
			poll(pfd, 2, IDLE_MS);
		atomic_store(&r->poller, false);
		/* Off to work: a waiting thread takes over the polling. */
		pthread_mutex_lock(&r->queue_lock);
		pthread_cond_signal(&r->work);
		pthread_mutex_unlock(&r->queue_lock);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += IDLE_MS * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&r->queue_lock);
	if (!work_queued(r))
		pthread_cond_timedwait(&r->work, &r->queue_lock, &until);
	pthread_mutex_unlock(&r->queue_lock);
}

void *sync_handler(void *arg)
{
	struct handler *h = arg;
	struct restore *r = h->r;

	/* The simulated latency is exact: no timer slack on the sleeps. */
	prctl(PR_SET_TIMERSLACK, 1UL);
	for (;;) {
		unsigned long addr;
		size_t first;
		int n;

		if (pop_demand(r, &addr)) {
			fill_runs(h, claim_fault(h, addr));
			continue;
		}
		n = read_messages(h);
		if (n > 0)
			continue;
		if (n < 0) {		/* another thread is reading */
			sched_yield();
			continue;
		}
		/* Stopping: every fault read is served, and none is left. */
		if (atomic_load(&r->stop))
			break;
		if (pop_readahead(r, &first)) {
			fill_runs(h, claim_window(h, first, true));
			continue;
		}
		idle(h);
	}
	return NULL;
}

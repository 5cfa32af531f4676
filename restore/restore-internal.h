/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the parts of gmem-restore share: gmem-restore.c (set-up, events,
 * claiming, filling and mapping runs, the queues), sync-handler.c and
 * uring-handler.c.
 */
#ifndef RESTORE_INTERNAL_H
#define RESTORE_INTERNAL_H

#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "gmem-restore.h"
#include "page-state.h"

/* Pages a handler claimed, [first, first + count), all filled the same way. */
struct run {
	size_t first, count;
	bool zero;		/* fill with zeroes, not from the snapshot */
	bool readahead;		/* no fault asked for it (statistics) */
};

/* io_uring: a window's buffer, and the run being read into it. */
struct slot {
	char *buf;
	struct run run;
	bool used;
};

#define URING_SLOTS		64
/* Readahead may use this many slots: the others stay free for demand. */
#define URING_READAHEAD_SLOTS	(URING_SLOTS / 2)
#define URING_ENTRIES		256	/* 3 SQEs (delay, read, write) per slot */

struct handler {
	struct restore *r;
	pthread_t thread;
	bool started;
	/*
	 * A vCPU thread's (restore_vcpu_fault()): it writes pages and does
	 * not map them into the area; a fault there maps them later.
	 */
	bool vcpu;
	struct restore_stats stats;
	char *buf;			/* one window, page aligned */
	struct run *runs;		/* claim()'s output: one window's worth */
	/* RESTORE_URING */
	struct io_uring ring;
	bool ring_ready;
	struct slot slots[URING_SLOTS];
	unsigned int inflight, readahead_inflight;
	struct run *pending;		/* claimed, waiting for a free slot */
	size_t nr_pending, pending_size;
	struct __kernel_timespec delay;
};

/* A FIFO of fault addresses. */
struct queue {
	size_t *items;
	size_t head, nr, size;
};

/* A FIFO of readahead: windows [next, end), in window numbers. */
struct span {
	size_t next, end;
};

struct readahead_queue {
	struct span *spans;
	size_t head, nr, size;
};

struct restore {
	struct restore_config cfg;
	long page_size;
	size_t nr_pages;
	size_t window_bytes;
	page_state_t *state;
	atomic_size_t nr_absent;
	atomic_bool stop;
	const char *zeroes;		/* one window of zeroes */
	unsigned int nr_handlers;
	struct handler *handlers;
	/*
	 * Write side: reading the userfaultfd and applying its events (and
	 * restore_discarded()). Read side: a holder's check, after writing a
	 * page and before mapping it, that no REMOVE came (page_written()).
	 */
	pthread_rwlock_t event_lock;
	/* Faults read and not served yet, and readahead windows, shared. */
	pthread_mutex_t queue_lock;
	struct queue demand;
	struct readahead_queue readahead;
	/*
	 * Idle RESTORE_SYNC threads: one polls the userfaultfd and kick_fd
	 * (the poller), the others wait on @work; kick() wakes them all.
	 */
	pthread_cond_t work;
	atomic_bool poller;
	int kick_fd;
	/* Detached vCPUs' statistics, under queue_lock. */
	struct restore_stats vcpu_stats;
};

struct restore_vcpu {
	struct handler h;
};

void __attribute__((format(printf, 2, 3), noreturn))
restore_fatal(struct restore *r, const char *fmt, ...);

/*
 * Read every message there is: events take effect at once, faults go on
 * the demand queue. Returns the number read, -1 if another thread is
 * reading (try later).
 */
int read_messages(struct handler *h);

bool pop_demand(struct restore *r, unsigned long *addr);
/* The first page of the next readahead window, if any. */
bool pop_readahead(struct restore *r, size_t *first);
bool demand_waiting(struct restore *r);
/* Wake idle threads: work was queued, or they must stop. */
void kick(struct restore *r);

/*
 * A fault read from the queue: claim the page's window and return the
 * runs to fill in h->runs (the fault's page among them, or it is served
 * already: held by another handler, mapped again, or not ours).
 */
size_t claim_fault(struct handler *h, unsigned long addr);
/* Claim what nobody has of the window that starts at @first, for readahead. */
size_t claim_window(struct handler *h, size_t first, bool readahead);

/* pwrite() @run from @buf into the guest_memfd from its page @done on. */
void populate(struct handler *h, const char *buf, const struct run *run,
	      size_t done);
/* Answer @run from @buf as configured (pwrite + CONTINUE, or COPY): done. */
void answer_run(struct handler *h, const char *buf, const struct run *run);
/* Map a written run, release its pages, wake whoever waits: the run is done. */
void finish_run(struct handler *h, const struct run *run);
/* Fill @run from the snapshot (or zeroes) synchronously, and finish it. */
void fill_run(struct handler *h, const struct run *run);
void simulate_read_latency(struct restore *r);
/*
 * Did the snapshot read of @run return @n, all of it (or -errno)? If not,
 * fatal() unless the configuration poisons unreadable pages (false).
 */
bool check_read(struct restore *r, ssize_t n, const struct run *run);
/* @run's read failed: fill it page by page, poison the pages that fail. */
void unreadable_run(struct handler *h, const struct run *run);

void *sync_handler(void *arg);
void *uring_handler(void *arg);
int uring_init(struct handler *h);
void uring_exit(struct handler *h);

#endif

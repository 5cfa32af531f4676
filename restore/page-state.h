/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The state of each page of the area, shared by every handler thread, the
 * event reader and the VMM's calls, so that they agree on who fills what.
 *
 *   ABSENT     not restored yet: the next fault reads it from the snapshot
 *   DISCARDED  given back by the guest (REMOVE): the next fault fills zeroes
 *   DONE       written: a fault on it only needs a CONTINUE (stale message,
 *              or a page that left the page table since)
 *   GONE       unmapped (UNMAP): nothing to do any more
 *   POISONED   its snapshot data could not be read: answered with
 *              UFFDIO_POISON, and a vCPU's KVM Userfault exit on it fails
 *   FILLING    held by a handler that is reading or writing it
 *   MAPPING    held by a handler that has written it, before any REMOVE,
 *              and is mapping it
 *
 * Flags, on held pages only:
 *   REMOVED    a REMOVE came while held. On a FILLING page the data may
 *              have been written after the kernel punched the hole, so the
 *              holder punches it again before anything maps it; on a
 *              MAPPING page the write came first and the kernel's punch
 *              takes it away, so the holder must not punch (a guest write
 *              after the REMOVE would be lost).
 *   UNMAPPED   an UNMAP came while held: it becomes GONE on release.
 *   WAITER     a fault on the page was left to the holder, which wakes the
 *              page when it lets go.
 *
 * Every transition is one compare-and-exchange, in the functions below.
 */
#ifndef PAGE_STATE_H
#define PAGE_STATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

enum page_kind {
	PAGE_ABSENT,
	PAGE_DISCARDED,
	PAGE_DONE,
	PAGE_GONE,
	PAGE_POISONED,
	PAGE_FILLING,
	PAGE_MAPPING,
};

#define PAGE_KIND	0x0f
#define PAGE_REMOVED	0x10
#define PAGE_UNMAPPED	0x20
#define PAGE_WAITER	0x40

typedef _Atomic unsigned char page_state_t;

static inline enum page_kind page_kind(unsigned char s)
{
	return s & PAGE_KIND;
}

static inline bool page_held(unsigned char s)
{
	return page_kind(s) >= PAGE_FILLING;
}

/* What a claim found: nothing to fill, the snapshot's data, or zeroes. */
enum page_claim { CLAIM_NONE, CLAIM_SNAPSHOT, CLAIM_ZERO };

/*
 * ABSENT or DISCARDED -> FILLING, retried until it holds the page or the
 * page is in another state: a concurrent REMOVE must not make us miss it.
 */
enum page_claim page_claim(page_state_t *s);

/*
 * A holder is about to fill and map the page in one step (UFFDIO_COPY):
 * -> MAPPING, unless a REMOVE came since the claim (false: the page is
 * discarded, nothing to fill). Called, like page_written(), under the
 * event lock's read side, held across the UFFDIO_COPY.
 */
bool page_may_copy(page_state_t *s);

/* DONE -> MAPPING: map a written page again for a fault. */
bool page_claim_done(page_state_t *s);

/*
 * A holder wrote the page: FILLING -> MAPPING, unless a REMOVE came
 * meanwhile (returns false: punch it, then page_release()). Called under
 * the event lock's read side, so that it is either before the event
 * reader read a REMOVE (and our write before the kernel's punch) or after
 * the reader applied it.
 */
bool page_written(page_state_t *s);

/*
 * The holder lets go. @present: the page is in the file (written and not
 * punched). Returns the previous state; the caller wakes the page if it
 * had PAGE_WAITER.
 */
unsigned char page_release(page_state_t *s, bool present);

/*
 * The holder could not read the page's data and poisoned it: -> POISONED,
 * or GONE if an UNMAP came. Returns the previous state, as page_release().
 */
unsigned char page_poison(page_state_t *s);

/* A fault found the page held: ask the holder for a wake. false if no longer held. */
bool page_wait_holder(page_state_t *s);

/* UFFD_EVENT_REMOVE, or the VMM discards: true if it was ABSENT. */
bool page_discard(page_state_t *s);

/* UFFD_EVENT_UNMAP: true if it was ABSENT. */
bool page_unmap(page_state_t *s);

/* The VMM wrote the page: ABSENT or DISCARDED -> DONE. true if it was ABSENT. */
bool page_populated(page_state_t *s);

#endif

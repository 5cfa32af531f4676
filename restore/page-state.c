// SPDX-License-Identifier: GPL-2.0
/* Page state transitions: see page-state.h for the states. */
#include "page-state.h"

enum page_claim page_claim(page_state_t *s)
{
	unsigned char old = atomic_load(s);

	do {
		if (old != PAGE_ABSENT && old != PAGE_DISCARDED)
			return CLAIM_NONE;
	} while (!atomic_compare_exchange_weak(s, &old, PAGE_FILLING));
	return old == PAGE_ABSENT ? CLAIM_SNAPSHOT : CLAIM_ZERO;
}

bool page_claim_done(page_state_t *s)
{
	unsigned char old = PAGE_DONE;

	return atomic_compare_exchange_strong(s, &old, PAGE_MAPPING);
}

bool page_written(page_state_t *s)
{
	unsigned char old = atomic_load(s);

	do {
		if (page_kind(old) == PAGE_MAPPING)
			return true;
		if (old & PAGE_REMOVED)
			return false;
	} while (!atomic_compare_exchange_weak(s, &old,
					       (old & ~PAGE_KIND) | PAGE_MAPPING));
	return true;
}

bool page_may_copy(page_state_t *s)
{
	unsigned char old = atomic_load(s);

	do {
		if (old & PAGE_REMOVED)
			return false;
	} while (!atomic_compare_exchange_weak(s, &old,
					       (old & ~PAGE_KIND) | PAGE_MAPPING));
	return true;
}

unsigned char page_release(page_state_t *s, bool present)
{
	unsigned char old = atomic_load(s), new;

	do {
		if (old & PAGE_UNMAPPED)
			new = PAGE_GONE;
		else if ((old & PAGE_REMOVED) || !present)
			new = PAGE_DISCARDED;
		else
			new = PAGE_DONE;
	} while (!atomic_compare_exchange_weak(s, &old, new));
	return old;
}

unsigned char page_poison(page_state_t *s)
{
	unsigned char old = atomic_load(s), new;

	do {
		new = old & PAGE_UNMAPPED ? PAGE_GONE : PAGE_POISONED;
	} while (!atomic_compare_exchange_weak(s, &old, new));
	return old;
}

bool page_wait_holder(page_state_t *s)
{
	unsigned char old = atomic_load(s);

	do {
		if (!page_held(old))
			return false;
		if (old & PAGE_WAITER)
			return true;
	} while (!atomic_compare_exchange_weak(s, &old, old | PAGE_WAITER));
	return true;
}

bool page_discard(page_state_t *s)
{
	unsigned char old = atomic_load(s), new;

	do {
		if (page_kind(old) == PAGE_GONE)
			return false;
		new = page_held(old) ? old | PAGE_REMOVED : PAGE_DISCARDED;
	} while (!atomic_compare_exchange_weak(s, &old, new));
	return old == PAGE_ABSENT;
}

bool page_unmap(page_state_t *s)
{
	unsigned char old = atomic_load(s), new;

	do {
		new = page_held(old) ? old | PAGE_UNMAPPED : PAGE_GONE;
	} while (!atomic_compare_exchange_weak(s, &old, new));
	return old == PAGE_ABSENT;
}

bool page_populated(page_state_t *s)
{
	unsigned char old = atomic_load(s);

	do {
		if (old != PAGE_ABSENT && old != PAGE_DISCARDED)
			return false;
	} while (!atomic_compare_exchange_weak(s, &old, PAGE_DONE));
	return old == PAGE_ABSENT;
}

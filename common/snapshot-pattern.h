/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A made-up snapshot for benchmarks and tests: each byte a function of its
 * page and offset, so that a page restored to the wrong place, torn, or
 * read as zeroes is seen by comparing with snapshot_byte().
 */
#ifndef SNAPSHOT_PATTERN_H
#define SNAPSHOT_PATTERN_H

#include <stddef.h>

/* Byte @i of page @page; never 0, unlike a discarded page. */
static inline char snapshot_byte(size_t page, size_t i)
{
	return (char)((page * 11 + i / 16) % 255 + 1);
}

/*
 * A memfd holding @nr_pages pages of @page_size bytes of snapshot_byte():
 * its fd, or -1 with errno set.
 */
int snapshot_memfd(size_t nr_pages, size_t page_size);

#endif

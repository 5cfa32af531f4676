/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What each of our programs needs around its real work: ending with the
 * exit status the test plan reads, a clock, and numbers from the command
 * line parsed strictly.
 */
#ifndef VMM_UTIL_H
#define VMM_UTIL_H

#include <stdint.h>

#define EXIT_USAGE	2
#define EXIT_SKIP	4	/* kselftest's KSFT_SKIP: the kernel lacks a feature */

/* perror(@what) and exit 1. */
void die(const char *what) __attribute__((noreturn));

/* "PROG: message" on stderr and exit 1: an error errno does not describe. */
void fail(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

/* "SKIP: why" on stdout and exit EXIT_SKIP. */
void skip(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

/* CLOCK_MONOTONIC in nanoseconds: durations, never wall time. */
uint64_t now_ns(void);

/*
 * @s as a whole number from @min to @max (decimal, 0x hex or 0 octal, as
 * strtoul(s, NULL, 0) reads it): 0 with *@val set, or -1 for anything
 * else. strtoul() alone takes "-1" for ULONG_MAX and "12x" for 12, which
 * is how a typo becomes a huge size.
 */
int parse_uint(const char *s, unsigned long min, unsigned long max,
	       unsigned long *val);

/*
 * parse_uint() of a command line argument called @name ("-w", "MIB"): on
 * failure say which values it takes and exit EXIT_USAGE.
 */
unsigned long arg_uint(const char *name, const char *s, unsigned long min,
		       unsigned long max);

#endif

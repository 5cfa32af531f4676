// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE		/* program_invocation_short_name */
#include "vmm-util.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

void die(const char *what)
{
	perror(what);
	exit(1);
}

void fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", program_invocation_short_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

void skip(const char *fmt, ...)
{
	va_list ap;

	printf("SKIP: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	exit(EXIT_SKIP);
}

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

int parse_uint(const char *s, unsigned long min, unsigned long max,
	       unsigned long *val)
{
	unsigned long v;
	char *end;

	/* strtoul() skips blanks and accepts a sign: a digit must come first. */
	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || *end || v < min || v > max)
		return -1;
	*val = v;
	return 0;
}

unsigned long arg_uint(const char *name, const char *s, unsigned long min,
		       unsigned long max)
{
	unsigned long v;

	if (parse_uint(s, min, max, &v)) {
		fprintf(stderr,
			"%s: %s: '%s' is not a whole number from %lu to %lu\n",
			program_invocation_short_name, name, s, min, max);
		exit(EXIT_USAGE);
	}
	return v;
}

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The restore library's tuning options, taken alike by every program that
 * runs it (lazy-restore, restore-bench), with the same limits.
 */
#ifndef RESTORE_OPTS_H
#define RESTORE_OPTS_H

#include <stdbool.h>

#include "gmem-restore.h"

/*
 * For getopt(): -w WINDOW -a PREFETCH -H HANDLERS -d READ_DELAY_US
 * -A write|copy (the MISSING answer: pwrite + CONTINUE, or UFFDIO_COPY)
 */
#define RESTORE_OPTS		"w:a:H:d:A:"
#define RESTORE_OPTS_USAGE	\
	"[-w WINDOW] [-a PREFETCH] [-H HANDLERS] [-d READ_DELAY_US] [-A write|copy]"

/*
 * If @opt is one of RESTORE_OPTS, set it in @cfg from @arg and return true;
 * a value out of range exits EXIT_USAGE. False for any other option.
 */
bool restore_opt(struct restore_config *cfg, int opt, const char *arg);

#endif

// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include "restore-opts.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm-util.h"

bool restore_opt(struct restore_config *cfg, int opt, const char *arg)
{
	/* restore_start() would refuse more: say so before, as a usage error. */
	unsigned long max_window =
		RESTORE_MAX_WINDOW_BYTES / sysconf(_SC_PAGESIZE);

	switch (opt) {
	case 'w':
		cfg->window = arg_uint("-w", arg, 1, max_window);
		return true;
	case 'a':
		cfg->prefetch = arg_uint("-a", arg, 0, UINT_MAX);
		return true;
	case 'H':
		cfg->threads = arg_uint("-H", arg, 1, RESTORE_MAX_THREADS);
		return true;
	case 'd':
		cfg->read_delay_us = arg_uint("-d", arg, 0, UINT_MAX);
		return true;
	case 'A':
		if (!strcmp(arg, "write"))
			cfg->answer = RESTORE_ANSWER_WRITE;
		else if (!strcmp(arg, "copy"))
			cfg->answer = RESTORE_ANSWER_COPY;
		else {
			fprintf(stderr, "%s: -A: '%s' is neither write nor copy\n",
				program_invocation_short_name, arg);
			exit(EXIT_USAGE);
		}
		return true;
	}
	return false;
}

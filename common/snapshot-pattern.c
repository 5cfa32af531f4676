// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE		/* memfd_create() */
#include "snapshot-pattern.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

int snapshot_memfd(size_t nr_pages, size_t page_size)
{
	int fd = memfd_create("snapshot", MFD_CLOEXEC);
	char *page = malloc(page_size);
	ssize_t ret;
	int err;

	if (fd < 0 || !page)
		goto fail;
	for (size_t n = 0; n < nr_pages; n++) {
		for (size_t i = 0; i < page_size; i++)
			page[i] = snapshot_byte(n, i);
		ret = pwrite(fd, page, page_size, n * page_size);
		if (ret != (ssize_t)page_size) {
			if (ret >= 0)
				errno = EIO;	/* a short write sets none */
			goto fail;
		}
	}
	free(page);
	return fd;
fail:
	err = errno;
	free(page);
	if (fd >= 0)
		close(fd);
	errno = err;
	return -1;
}

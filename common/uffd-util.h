/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A userfaultfd as our programs open it: non-blocking, because poll() on a
 * blocking one returns POLLERR, and the restore library refuses one.
 */
#ifndef UFFD_UTIL_H
#define UFFD_UTIL_H

#include <linux/types.h>
#include <stddef.h>

/*
 * A userfaultfd (O_CLOEXEC | O_NONBLOCK) past UFFDIO_API with @features
 * (UFFD_FEATURE_*): its fd, or -1 with errno set.
 */
int uffd_open(__u64 features);

/*
 * Register [@start, @start + @len) for @mode (UFFDIO_REGISTER_MODE_*): 0,
 * with the ioctls the range offers in *@ioctls if not NULL, or -1 with
 * errno set (EINVAL: this kernel cannot register such a mapping).
 */
int uffd_register(int uffd, void *start, size_t len, __u64 mode, __u64 *ioctls);

/*
 * Both, for a program: the userfaultfd, or exit. Skipped (EXIT_SKIP) where
 * the kernel has no userfaultfd for us or cannot register the mapping.
 */
int uffd_require(void *start, size_t len, __u64 features, __u64 mode);

#endif

// SPDX-License-Identifier: GPL-2.0
#include "uffd-util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vmm-util.h"

int uffd_open(__u64 features)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	int uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	int err;

	if (uffd < 0)
		return -1;
	if (ioctl(uffd, UFFDIO_API, &api)) {
		err = errno;
		close(uffd);
		errno = err;
		return -1;
	}
	return uffd;
}

int uffd_register(int uffd, void *start, size_t len, __u64 mode, __u64 *ioctls)
{
	struct uffdio_register reg = {
		.range = { .start = (unsigned long)start, .len = len },
		.mode = mode,
	};

	if (ioctl(uffd, UFFDIO_REGISTER, &reg))
		return -1;
	if (ioctls)
		*ioctls = reg.ioctls;
	return 0;
}

int uffd_require(void *start, size_t len, __u64 features, __u64 mode)
{
	int uffd = uffd_open(features);

	if (uffd < 0) {
		/* Not built in, or not for us (vm.unprivileged_userfaultfd). */
		if (errno == ENOSYS || errno == EPERM)
			skip("no userfaultfd");
		die("userfaultfd");
	}
	if (uffd_register(uffd, start, len, mode, NULL)) {
		if (errno == EINVAL)
			skip("userfaultfd cannot register this mapping (EINVAL)");
		die("UFFDIO_REGISTER");
	}
	return uffd;
}

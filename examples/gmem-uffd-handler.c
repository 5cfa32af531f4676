// SPDX-License-Identifier: GPL-2.0
/*
 * The smallest complete userfaultfd handler for guest_memfd: what a VMM does
 * to populate guest memory on demand (snapshot restore, post-copy).
 *
 *   1. create a guest_memfd with GUEST_MEMFD_FLAG_MMAP | _INIT_SHARED |
 *      _WRITE (write() is opt-in) and mmap() it MAP_SHARED;
 *   2. register the mapping with userfaultfd for MISSING faults;
 *   3. per fault: pwrite() the page's contents into the guest_memfd, then
 *      UFFDIO_CONTINUE maps it and wakes the faulting thread.
 *
 * Here a thread stands in for the guest and reads every page once; the
 * "snapshot" is a pattern computed from the page number. Exit 0 if every
 * byte the reader saw is the snapshot's, 1 on a mismatch, 2 on a bad
 * PAGES, 4 (kselftest's skip) if the kernel lacks guest_memfd mmap or its
 * userfaultfd support.
 *
 * Usage: gmem-uffd-handler [PAGES]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vmm-util.h"		/* die(), skip(), arg_uint() */

static long page_size;
static size_t nr_pages = 256;
static char *guest;		/* the guest_memfd mapping */
static unsigned long mismatches;

/* The snapshot: byte i of page n. */
static char snapshot_byte(size_t n, size_t i)
{
	return (char)(n * 7 + i);
}

static void *guest_reader(void *arg __attribute__((unused)))
{
	for (size_t n = 0; n < nr_pages; n++)
		for (size_t i = 0; i < (size_t)page_size; i += 512)
			if (guest[n * page_size + i] != snapshot_byte(n, i))
				mismatches++;
	return NULL;
}

/*
 * Resolve one MISSING fault. pwrite() never overwrites a populated page:
 * EEXIST means another handler (or an earlier duplicate message) filled it,
 * and CONTINUE still maps it. CONTINUE's EEXIST means the page is mapped
 * already; a CONTINUE that fails wakes nobody, so UFFDIO_WAKE does.
 */
static void resolve(int gmem, int uffd, unsigned long addr, char *buf)
{
	size_t n = (addr - (unsigned long)guest) / page_size;
	struct uffdio_continue cont = {
		.range = { .start = addr & ~(page_size - 1), .len = page_size },
	};

	for (size_t i = 0; i < (size_t)page_size; i++)
		buf[i] = snapshot_byte(n, i);
	if (pwrite(gmem, buf, page_size, n * page_size) != page_size &&
	    errno != EEXIST)
		die("pwrite");
	if (ioctl(uffd, UFFDIO_CONTINUE, &cont) && errno != EEXIST)
		die("UFFDIO_CONTINUE");
	if (cont.mapped != page_size &&
	    ioctl(uffd, UFFDIO_WAKE, &cont.range))
		die("UFFDIO_WAKE");
}

int main(int argc, char **argv)
{
	struct kvm_create_guest_memfd create = {
		.flags = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED |
			 GUEST_MEMFD_FLAG_WRITE,
	};
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	unsigned long faults = 0;
	int kvm, vm, gmem, uffd;
	pthread_t reader;
	char *buf;

	page_size = sysconf(_SC_PAGESIZE);
	if (argc > 1)
		nr_pages = arg_uint("PAGES", argv[1], 1, SIZE_MAX / page_size);
	create.size = nr_pages * page_size;

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		skip("no /dev/kvm");
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		die("KVM_CREATE_VM");
	if ((ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD_FLAGS) &
	     create.flags) != create.flags)
		skip("guest_memfd has no mmap() and write() of shared memory");
	gmem = ioctl(vm, KVM_CREATE_GUEST_MEMFD, &create);
	if (gmem < 0)
		die("KVM_CREATE_GUEST_MEMFD");
	guest = mmap(NULL, create.size, PROT_READ | PROT_WRITE, MAP_SHARED,
		     gmem, 0);
	if (guest == MAP_FAILED)
		die("mmap");

	/* poll() works on a non-blocking userfaultfd only (POLLERR otherwise). */
	uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0)
		skip("no userfaultfd");
	if (ioctl(uffd, UFFDIO_API, &api))
		die("UFFDIO_API");
	reg.range.start = (unsigned long)guest;
	reg.range.len = create.size;
	if (ioctl(uffd, UFFDIO_REGISTER, &reg)) {
		if (errno == EINVAL)
			skip("userfaultfd on guest_memfd is not supported");
		die("UFFDIO_REGISTER");
	}
	/* MISSING faults on guest_memfd are answered by CONTINUE. */
	if (!(reg.ioctls & (1ULL << _UFFDIO_CONTINUE)))
		skip("UFFDIO_REGISTER does not offer UFFDIO_CONTINUE");

	buf = malloc(page_size);
	if (!buf)
		die("malloc");
	if (pthread_create(&reader, NULL, guest_reader, NULL))
		die("pthread_create");

	/* The handler loop: one message, one page. */
	for (;;) {
		struct pollfd pfd = { .fd = uffd, .events = POLLIN };
		struct uffd_msg msg;

		if (pthread_tryjoin_np(reader, NULL) == 0)
			break;
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		if (read(uffd, &msg, sizeof(msg)) != sizeof(msg)) {
			if (errno == EAGAIN)	/* woken before we read it */
				continue;
			die("read userfaultfd");
		}
		if (msg.event != UFFD_EVENT_PAGEFAULT) {
			fprintf(stderr, "unexpected event %u\n", msg.event);
			return 1;
		}
		resolve(gmem, uffd, msg.arg.pagefault.address, buf);
		faults++;
	}

	printf("%lu MISSING faults resolved with pwrite() + UFFDIO_CONTINUE over %zu pages; %lu bytes differ from the snapshot\n",
	       faults, nr_pages, mismatches);
	/* Duplicate messages are allowed; a page mapped without one is not. */
	if (faults < nr_pages) {
		fprintf(stderr, "expected a fault for every page\n");
		return 1;
	}
	return mismatches ? 1 : 0;
}

// SPDX-License-Identifier: GPL-2.0
#include "gmem-vm.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm-util.h"

/* Mappable, shared with the host, and populated with write(). */
#define SHARED_FLAGS (GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED | \
		      GUEST_MEMFD_FLAG_WRITE)

int gmem_vm_open(struct gmem_vm *v, const char **why)
{
	v->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (v->kvm < 0) {
		*why = "no /dev/kvm";
		return 1;
	}
	v->vm = ioctl(v->kvm, KVM_CREATE_VM, 0);
	if (v->vm < 0) {
		*why = "KVM_CREATE_VM";
		return -1;
	}
	if ((ioctl(v->vm, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD_FLAGS) &
	     SHARED_FLAGS) != SHARED_FLAGS) {
		*why = "guest_memfd has no mmap() and write() of shared memory";
		return 1;
	}
	return 0;
}

void gmem_vm_require(struct gmem_vm *v)
{
	const char *why;
	int ret = gmem_vm_open(v, &why);

	if (ret > 0)
		skip("%s", why);
	if (ret < 0)
		die(why);
}

int gmem_vm_create(struct gmem_vm *v, size_t size)
{
	struct kvm_create_guest_memfd create = {
		.size = size,
		.flags = SHARED_FLAGS,
	};

	return ioctl(v->vm, KVM_CREATE_GUEST_MEMFD, &create);
}

int gmem_require(size_t size)
{
	struct gmem_vm v;
	int gmem;

	gmem_vm_require(&v);
	gmem = gmem_vm_create(&v, size);
	if (gmem < 0)
		die("KVM_CREATE_GUEST_MEMFD");
	/* The guest_memfd holds a reference to its VM. */
	close(v.vm);
	close(v.kvm);
	return gmem;
}

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The KVM side every guest_memfd user here starts with: a VM, and
 * guest_memfds of it that the host may mmap() and write() (created with
 * GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED | GUEST_MEMFD_FLAG_WRITE).
 */
#ifndef GMEM_VM_H
#define GMEM_VM_H

#include <stddef.h>

struct gmem_vm {
	int kvm;		/* /dev/kvm */
	int vm;
};

/*
 * Open /dev/kvm and create a VM. Returns 0; 1 if this kernel cannot do it
 * (no /dev/kvm, no host-mappable guest_memfd: a reason to skip); -1 on
 * another error, with errno set. *@why says which.
 */
int gmem_vm_open(struct gmem_vm *v, const char **why);

/*
 * gmem_vm_open() for a program: on failure print why and exit, with 4
 * (kselftest's skip) where the kernel lacks the feature, 1 otherwise.
 */
void gmem_vm_require(struct gmem_vm *v);

/* A guest_memfd of @size bytes: its fd, or -1 with errno set. */
int gmem_vm_create(struct gmem_vm *v, size_t size);

/*
 * For a program that needs the file and nothing else of KVM: a guest_memfd
 * of @size bytes, of a VM of its own, or exit as gmem_vm_require() does.
 */
int gmem_require(size_t size);

#endif

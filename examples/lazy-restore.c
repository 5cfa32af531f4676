// SPDX-License-Identifier: GPL-2.0
/*
 * Lazy restore of a KVM guest from a snapshot file, with guest memory in a
 * guest_memfd that is filled on demand by the gmem-restore handler
 * (restore/): the guest runs from its first instruction while its memory
 * is still in the file, and each page arrives when a vCPU first touches it.
 *
 *   lazy-restore save FILE MIB
 *       write a snapshot: a header and MIB MiB of guest memory, a made-up
 *       guest whose code at 0x1000 hashes all of memory
 *   lazy-restore restore FILE [-G] [-P] [-m sync|uring] [-w WINDOW] [-a PREFETCH]
 *                             [-H HANDLERS] [-d READ_DELAY_US] [-A write|copy]
 *       restore it lazily and run it: the guest hashes every byte of its
 *       memory and reports the result on I/O port 0x10; it must be the
 *       hash the snapshot header recorded. -w pages per fault, -a windows
 *       read ahead, -H synchronous handler threads, -d simulated latency
 *       of each snapshot read, -A the answer to MISSING faults: pwrite +
 *       UFFDIO_CONTINUE (write, the default) or UFFDIO_COPY (copy) (see
 *       restore/gmem-restore.h)
 *
 * Guest memory is a memslot over the VMM's mapping of the guest_memfd, and
 * vCPU faults reach the handler through userfaultfd; or, with -G, a
 * gmem-only memslot (KVM_MEM_GUEST_MEMFD) with KVM Userfault: a vCPU that
 * touches a page not restored yet exits to this program, and the vCPU
 * thread restores the page itself (restore_vcpu_fault()) and re-enters.
 * -P: a page the snapshot cannot give (a read error, a file truncated
 * under us) is poisoned instead of stopping the restore; the vCPU that
 * touches it gets a machine check, which a real VMM injects into the
 * guest (KVM_X86_SET_MCE) and this one reports, failing.
 *
 * The snapshot header is checked before the guest starts (magic, sizes, a
 * file shorter than its memory image); corrupted memory shows up as a hash
 * mismatch; a read error during the restore stops the VM with a message.
 * Exit status: 0 verified, 1 error or mismatch, 2 usage (a number out of
 * range included), 4 (kselftest's skip) the kernel lacks guest_memfd mmap
 * or its userfaultfd support (or, with -G, KVM Userfault).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gmem-restore.h"
#include "gmem-vm.h"
#include "restore-opts.h"
#include "uffd-util.h"
#include "vmm-util.h"

#define SNAPSHOT_MAGIC	"GMEMSNAP"
#define IMAGE_OFFSET	4096		/* memory image after the header page */
#define GUEST_ENTRY	0x1000
#define RESULT_PORT	0x10

struct snapshot_header {
	char magic[8];
	uint32_t version;
	uint32_t page_size;
	uint64_t memory_size;
	uint64_t image_offset;
	uint32_t hash;			/* guest_hash() of the image */
	uint32_t entry;			/* where the vCPU starts */
};

/*
 * The guest, 32-bit protected mode, flat segments, no paging; ECX holds
 * the memory size in dwords:
 *	xor eax, eax; xor esi, esi
 * 1:	imul eax, eax, 31; add eax, [esi]; add esi, 4; dec ecx; jnz 1b
 *	out 0x10, eax; hlt
 */
static const uint8_t guest_code[] = {
	0x31, 0xc0, 0x31, 0xf6,
	0x6b, 0xc0, 0x1f, 0x03, 0x06, 0x83, 0xc6, 0x04, 0x49, 0x75, 0xf5,
	0xe7, RESULT_PORT, 0xf4,
};

/* What the guest computes, over the same bytes. */
static uint32_t guest_hash(const uint32_t *mem, size_t size)
{
	uint32_t h = 0;

	for (size_t i = 0; i < size / 4; i++)
		h = h * 31 + mem[i];
	return h;
}

static int save(const char *path, unsigned long mib)
{
	struct snapshot_header hdr = {
		.magic = SNAPSHOT_MAGIC, .version = 1,
		.page_size = sysconf(_SC_PAGESIZE), .memory_size = mib << 20,
		.image_offset = IMAGE_OFFSET, .entry = GUEST_ENTRY,
	};
	uint32_t *mem, x = 2463534242u;
	int fd;

	mem = malloc(hdr.memory_size);
	if (!mem)
		die("malloc");
	/* Memory contents: xorshift32, so that every page differs. */
	for (size_t i = 0; i < hdr.memory_size / 4; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		mem[i] = x;
	}
	memcpy((char *)mem + GUEST_ENTRY, guest_code, sizeof(guest_code));
	hdr.hash = guest_hash(mem, hdr.memory_size);

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		die(path);
	if (pwrite(fd, &hdr, sizeof(hdr), 0) != sizeof(hdr) ||
	    pwrite(fd, mem, hdr.memory_size, IMAGE_OFFSET) != (ssize_t)hdr.memory_size ||
	    close(fd))
		die(path);
	printf("saved %s: %lu MiB of guest memory, hash %#x\n", path, mib,
	       hdr.hash);
	return 0;
}

/* The header, checked against the file: errors name what is wrong. */
static void read_header(int fd, const char *path, struct snapshot_header *hdr)
{
	struct stat st;

	if (fstat(fd, &st))
		die(path);
	if (pread(fd, hdr, sizeof(*hdr), 0) != sizeof(*hdr) ||
	    memcmp(hdr->magic, SNAPSHOT_MAGIC, sizeof(hdr->magic)))
		fail("%s is not a snapshot (no " SNAPSHOT_MAGIC " header)", path);
	if (hdr->version != 1 || hdr->page_size != sysconf(_SC_PAGESIZE) ||
	    hdr->image_offset % hdr->page_size || !hdr->memory_size ||
	    hdr->memory_size % hdr->page_size || hdr->entry >= hdr->memory_size)
		fail("%s: unsupported snapshot header (version, page size or layout)",
		     path);
	if ((uint64_t)st.st_size < hdr->image_offset + hdr->memory_size)
		fail("%s is short: %lld bytes of memory image, the header says %llu",
		     path, (long long)st.st_size - (long long)hdr->image_offset,
		     (unsigned long long)hdr->memory_size);
}

/* The library's fatal(): @ctx is what we gave it, the snapshot's path. */
static void restore_failed(void *ctx, const char *msg)
{
	fail("%s: restoring guest memory failed: %s; stopping the VM",
	     (const char *)ctx, msg);
}

/*
 * -P: a vCPU faulting a poisoned page through the mapping gets SIGBUS
 * BUS_MCEERR_AR, and KVM_RUN returns EINTR; say where.
 */
static volatile sig_atomic_t machine_check;
static void *volatile machine_check_addr;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	if (si->si_code != BUS_MCEERR_AR)
		_exit(1);	/* a real SIGBUS: nothing we know how to answer */
	machine_check_addr = si->si_addr;
	machine_check = 1;
}

static void catch_machine_checks(void)
{
	struct sigaction sa = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO };

	if (sigaction(SIGBUS, &sa, NULL))
		die("sigaction");
}

/*
 * -G: guest memory is the guest_memfd itself, bound as a gmem-only
 * memslot with KVM Userfault; every page's bit set: nothing restored yet.
 * KVM's own accesses to guest memory go through userspace_addr, the
 * mapping, where userfaultfd serves them.
 */
static unsigned long *gmem_only_slot(struct gmem_vm *v, struct restore_config *cfg)
{
	size_t nr = cfg->size / sysconf(_SC_PAGESIZE);
	size_t bits = 8 * sizeof(unsigned long);
	size_t words = (nr + bits - 1) / bits;
	unsigned long *bitmap = malloc(words * sizeof(*bitmap));
	struct kvm_userspace_memory_region2 slot = {
		.slot = 0,
		.flags = KVM_MEM_GUEST_MEMFD | KVM_MEM_USERFAULT,
		.memory_size = cfg->size,
		.userspace_addr = (unsigned long)cfg->area,
		.guest_memfd = cfg->gmem,
		.guest_memfd_offset = 0,
	};

	if (ioctl(v->vm, KVM_CHECK_EXTENSION, KVM_CAP_USERFAULT) <= 0)
		skip("this kernel has no KVM Userfault (KVM_CAP_USERFAULT)");
	if (!bitmap)
		die("malloc");
	memset(bitmap, 0xff, words * sizeof(*bitmap));
	slot.userfault_bitmap = (unsigned long)bitmap;
	if (ioctl(v->vm, KVM_SET_USER_MEMORY_REGION2, &slot))
		die("KVM_SET_USER_MEMORY_REGION2 (gmem-only, KVM_MEM_USERFAULT)");
	return bitmap;
}

/* Flat 4 GiB segments, 32-bit protected mode without paging. */
static void setup_vcpu(int vcpu, const struct snapshot_header *hdr)
{
	struct kvm_segment code = {
		.base = 0, .limit = 0xffffffff, .selector = 0x8, .type = 11,
		.present = 1, .s = 1, .db = 1, .g = 1,
	};
	struct kvm_segment data = code;
	struct kvm_sregs sregs;
	struct kvm_regs regs = {
		.rip = hdr->entry, .rflags = 2, .rcx = hdr->memory_size / 4,
	};

	if (ioctl(vcpu, KVM_GET_SREGS, &sregs))
		die("KVM_GET_SREGS");
	data.selector = 0x10;
	data.type = 3;
	sregs.cs = code;
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
	sregs.cr0 |= 1;		/* PE */
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs))
		die("KVM_SET_SREGS");
	if (ioctl(vcpu, KVM_SET_REGS, &regs))
		die("KVM_SET_REGS");
}

static int restore(const char *path, struct restore_config *cfg, bool gmem_only)
{
	struct kvm_userspace_memory_region slot = { .slot = 0 };
	struct restore_vcpu *rv = NULL;
	struct snapshot_header hdr;
	struct restore_stats st;
	struct kvm_run *run;
	struct restore *r;
	struct gmem_vm v;
	int vcpu, run_size;
	uint64_t t0;
	size_t absent;
	uint32_t hash;

	cfg->snapshot = open(path, O_RDONLY | O_CLOEXEC);
	if (cfg->snapshot < 0)
		die(path);
	read_header(cfg->snapshot, path, &hdr);
	cfg->snapshot_offset = hdr.image_offset;
	cfg->size = hdr.memory_size;
	/* Reading ahead past the end is reading ahead to it; more is EINVAL. */
	if (cfg->prefetch > cfg->size / hdr.page_size)
		cfg->prefetch = cfg->size / hdr.page_size;
	cfg->fatal = restore_failed;
	cfg->ctx = (void *)path;

	gmem_vm_require(&v);
	cfg->gmem = gmem_vm_create(&v, cfg->size);
	if (cfg->gmem < 0)
		die("KVM_CREATE_GUEST_MEMFD");
	cfg->area = mmap(NULL, cfg->size, PROT_READ | PROT_WRITE, MAP_SHARED,
			 cfg->gmem, 0);
	if (cfg->area == MAP_FAILED)
		die("mmap guest_memfd");

	if (gmem_only) {
		cfg->kvm_userfault_bitmap = gmem_only_slot(&v, cfg);
	} else {
		/* Guest memory is the guest_memfd, through its host mapping. */
		slot.memory_size = cfg->size;
		slot.userspace_addr = (unsigned long)cfg->area;
		if (ioctl(v.vm, KVM_SET_USER_MEMORY_REGION, &slot))
			die("KVM_SET_USER_MEMORY_REGION");
	}
	if (cfg->unreadable == RESTORE_UNREADABLE_POISON)
		catch_machine_checks();

	/* REMOVE and UNMAP: the library keeps a discarded page zero. */
	cfg->uffd = uffd_require(cfg->area, cfg->size,
				 UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP,
				 UFFDIO_REGISTER_MODE_MISSING);

	vcpu = ioctl(v.vm, KVM_CREATE_VCPU, 0);
	run_size = ioctl(v.kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vcpu < 0 || run_size < 0)
		die("KVM_CREATE_VCPU");
	run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED)
		die("mmap kvm_run");
	setup_vcpu(vcpu, &hdr);

	r = restore_start(cfg);
	if (!r)
		die("restore_start");
	if (gmem_only) {
		rv = restore_vcpu_attach(r);
		if (!rv)
			die("restore_vcpu_attach");
	}
	t0 = now_ns();
	for (;;) {
		if (ioctl(vcpu, KVM_RUN, 0)) {
			if (errno == EINTR && machine_check)
				fail("guest memory at %p could not be restored: a machine check for the guest; stopping the VM",
				     machine_check_addr);
			if (errno == EINTR)
				continue;
			if (errno != EFAULT || !rv ||
			    run->exit_reason != KVM_EXIT_MEMORY_FAULT ||
			    !(run->memory_fault.flags & KVM_MEMORY_EXIT_FLAG_USERFAULT))
				die("KVM_RUN");
			/* The vCPU touched a page not restored yet: restore it. */
			if (!restore_vcpu_fault(rv, run->memory_fault.gpa))
				continue;
			if (errno == EHWPOISON)
				fail("guest memory at gpa %#llx could not be restored: a machine check for the guest; stopping the VM",
				     (unsigned long long)run->memory_fault.gpa);
			die("restore_vcpu_fault");
		}
		if (run->exit_reason == KVM_EXIT_IO &&
		    run->io.direction == KVM_EXIT_IO_OUT &&
		    run->io.port == RESULT_PORT && run->io.size == 4) {
			memcpy(&hash, (char *)run + run->io.data_offset, 4);
			break;
		}
		fprintf(stderr, "lazy-restore: unexpected guest exit %u\n",
			run->exit_reason);
		return 1;
	}
	/* The guest read every page: 0 left absent is expected. */
	if (rv)
		restore_vcpu_detach(rv);
	absent = restore_stop(r, &st);

	if (gmem_only)
		printf("restored %llu MiB lazily in %.2f s: %lu KVM Userfault exits answered by the vCPU thread, %lu userfaults, %lu pages from the snapshot in %lu reads, %zu left absent (gmem-only memslot, %s handler, window %u, prefetch %u)\n",
		       (unsigned long long)hdr.memory_size >> 20, (now_ns() - t0) / 1e9,
		       st.vcpu_faults, st.faults, st.pages, st.reads, absent,
		       cfg->mode == RESTORE_URING ? "io_uring" : "synchronous",
		       cfg->window, cfg->prefetch);
	else
		printf("restored %llu MiB lazily in %.2f s: %lu faults, %lu pages from the snapshot in %lu reads, %zu left absent (%s handler, %s, window %u, prefetch %u)\n",
		       (unsigned long long)hdr.memory_size >> 20, (now_ns() - t0) / 1e9,
		       st.faults, st.pages, st.reads, absent,
		       cfg->mode == RESTORE_URING ? "io_uring" : "synchronous",
		       cfg->answer == RESTORE_ANSWER_COPY ? "UFFDIO_COPY" : "pwrite + CONTINUE",
		       cfg->window, cfg->prefetch);
	if (hash != hdr.hash) {
		fprintf(stderr, "lazy-restore: guest memory hash %#x, the snapshot header says %#x: the snapshot is corrupt\n",
			hash, hdr.hash);
		return 1;
	}
	printf("the guest hashed all of its memory: %#x, as recorded in the snapshot\n",
	       hash);
	return 0;
}

static void usage(const char *prog)
{
	fprintf(stderr, "usage: %s save FILE MIB\n"
		"       %s restore FILE [-G] [-P] [-m sync|uring] " RESTORE_OPTS_USAGE "\n",
		prog, prog);
	exit(2);
}

int main(int argc, char **argv)
{
	struct restore_config cfg = { .window = 16, .threads = 1 };
	bool gmem_only = false;
	int opt;

	if (argc == 4 && !strcmp(argv[1], "save"))
		return save(argv[2], arg_uint("MIB", argv[3], 1, 2048));
	if (argc < 3 || strcmp(argv[1], "restore"))
		usage(argv[0]);
	optind = 3;
	while ((opt = getopt(argc, argv, "GPm:" RESTORE_OPTS)) != -1) {
		switch (opt) {
		case 'G':
			gmem_only = true;
			break;
		case 'P':
			cfg.unreadable = RESTORE_UNREADABLE_POISON;
			break;
		case 'm':
			if (!strcmp(optarg, "uring"))
				cfg.mode = RESTORE_URING;
			else if (strcmp(optarg, "sync"))
				usage(argv[0]);
			break;
		default:
			if (!restore_opt(&cfg, opt, optarg))
				usage(argv[0]);
		}
	}
	if (optind != argc)
		usage(argv[0]);
	return restore(argv[2], &cfg, gmem_only);
}

// SPDX-License-Identifier: GPL-2.0
/*
 * Tests of the gmem-restore handler library, on a real guest_memfd with
 * threads standing in for vCPUs, each with the synchronous and the
 * io_uring handler (TAP output, exit 0 if all pass, 4 if the kernel lacks
 * guest_memfd userfaultfd support):
 *
 *   duplicates  four threads fault on the same pages at once: every
 *               message is answered once, none hangs, data is the snapshot's
 *   eexist      pages the VMM wrote before the restore keep their contents
 *               (populate-once), the others are restored around them
 *   remove      MADV_REMOVE (UFFD_EVENT_REMOVE) of restored and of not yet
 *               restored pages: both read back as zeroes afterwards
 *   unmap       munmap() of part of the area while it is being restored
 *               (UFFD_EVENT_UNMAP): the rest is restored, nothing hangs
 *   churn       one thread walks the memory while another keeps removing
 *               pages behind it: CONTINUE's EAGAIN (an event is pending)
 *               is retried, every byte read is the snapshot's or zero
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "gmem-restore.h"
#include "gmem-vm.h"

#define SKIP 4
#define NR_PAGES 512

static long page_size;
static size_t size;
static struct gmem_vm vm;
static int nr_failed, nr_tests;

struct env {
	struct restore_config cfg;
	struct restore *r;
	struct restore_stats st;
};

static void die(const char *what)
{
	printf("Bail out! %s: %s\n", what, strerror(errno));
	exit(1);
}

static char pattern(size_t page, size_t i)
{
	return (char)(page * 11 + i / 16 + 1);	/* never 0 */
}

static char vmm_byte(size_t page)
{
	return (char)(0xa0 + page % 16);	/* differs from pattern() */
}

static void check_kernel(void)
{
	const char *why;
	int ret = gmem_vm_open(&vm, &why);

	if (ret > 0) {
		printf("1..0 # SKIP %s\n", why);
		exit(SKIP);
	}
	if (ret < 0)
		die(why);
}

/* A fresh guest_memfd, mapped and registered, and its snapshot. */
static void env_init(struct env *e, enum restore_mode mode, unsigned int window,
		     unsigned int threads)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP,
	};
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	char *page = malloc(page_size);

	alarm(60);		/* per test */
	memset(e, 0, sizeof(*e));
	e->cfg.mode = mode;
	e->cfg.window = window;
	e->cfg.threads = threads;
	e->cfg.size = size;
	e->cfg.snapshot = memfd_create("snapshot", MFD_CLOEXEC);
	if (e->cfg.snapshot < 0 || !page)
		die("memfd_create");
	for (size_t n = 0; n < NR_PAGES; n++) {
		for (long i = 0; i < page_size; i++)
			page[i] = pattern(n, i);
		if (pwrite(e->cfg.snapshot, page, page_size, n * page_size) != page_size)
			die("writing the snapshot");
	}
	free(page);
	e->cfg.gmem = gmem_vm_create(&vm, size);
	if (e->cfg.gmem < 0)
		die("KVM_CREATE_GUEST_MEMFD");
	e->cfg.area = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED,
			   e->cfg.gmem, 0);
	if (e->cfg.area == MAP_FAILED)
		die("mmap");
	e->cfg.uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (e->cfg.uffd < 0 || ioctl(e->cfg.uffd, UFFDIO_API, &api))
		die("userfaultfd");
	reg.range.start = (unsigned long)e->cfg.area;
	reg.range.len = size;
	if (ioctl(e->cfg.uffd, UFFDIO_REGISTER, &reg)) {
		if (errno == EINVAL) {
			printf("1..0 # SKIP userfaultfd on guest_memfd is not supported\n");
			exit(SKIP);
		}
		die("UFFDIO_REGISTER");
	}
}

static void env_start(struct env *e)
{
	e->r = restore_start(&e->cfg);
	if (!e->r)
		die("restore_start");
}

static void env_stop(struct env *e, size_t unmapped_from)
{
	restore_stop(e->r, &e->st);
	/* Nobody reads the userfaultfd now: an UNMAP event would wait forever. */
	close(e->cfg.uffd);
	munmap(e->cfg.area, unmapped_from);
	close(e->cfg.gmem);
	close(e->cfg.snapshot);
}

/* Is every byte of page @n the snapshot's (or zero, if @zero)? */
static bool page_is(struct env *e, size_t n, bool zero)
{
	const char *p = e->cfg.area + n * page_size;

	for (long i = 0; i < page_size; i++)
		if (p[i] != (zero ? 0 : pattern(n, i)))
			return false;
	return true;
}

static void result(bool ok, const char *name, const char *mode, const char *why)
{
	nr_tests++;
	if (!ok)
		nr_failed++;
	printf("%sok %d %s (%s)%s%s\n", ok ? "" : "not ", nr_tests, name, mode,
	       ok ? "" : " # ", ok ? "" : why);
}

struct walker {
	struct env *e;
	size_t first, end;
};

static void *walk(void *arg)
{
	struct walker *w = arg;

	for (size_t n = w->first; n < w->end; n++)
		(void)*(volatile char *)(w->e->cfg.area + n * page_size);
	return NULL;
}

static void walk_threads(struct env *e, int nr, size_t first, size_t end)
{
	pthread_t t[8];
	struct walker w = { e, first, end };

	for (int i = 0; i < nr; i++)
		if (pthread_create(&t[i], NULL, walk, &w))
			die("pthread_create");
	for (int i = 0; i < nr; i++)
		pthread_join(t[i], NULL);
}

static void test_duplicates(enum restore_mode mode, const char *name)
{
	struct env e;
	bool ok = true;

	env_init(&e, mode, 1, 2);
	env_start(&e);
	walk_threads(&e, 4, 0, NR_PAGES);
	for (size_t n = 0; n < NR_PAGES; n++)
		ok &= page_is(&e, n, false);
	env_stop(&e, size);
	result(ok && e.st.pages == NR_PAGES, "duplicates", name,
	       "a page differs from the snapshot, or was written twice");
}

static void test_eexist(enum restore_mode mode, const char *name)
{
	char *page = malloc(page_size);
	struct env e;
	bool ok = true;

	/* The VMM wrote every 5th page itself before restoring. */
	env_init(&e, mode, 16, 1);
	for (size_t n = 0; n < NR_PAGES; n += 5) {
		memset(page, vmm_byte(n), page_size);
		if (pwrite(e.cfg.gmem, page, page_size, n * page_size) != page_size)
			die("pwrite");
	}
	env_start(&e);
	walk_threads(&e, 1, 0, NR_PAGES);
	for (size_t n = 0; n < NR_PAGES; n++) {
		if (n % 5)
			ok &= page_is(&e, n, false);
		else
			ok &= e.cfg.area[n * page_size] == vmm_byte(n) &&
			      e.cfg.area[(n + 1) * page_size - 1] == vmm_byte(n);
	}
	env_stop(&e, size);
	free(page);
	result(ok && e.st.eexist > 0, "eexist", name,
	       "a page the VMM wrote was overwritten, or one was not restored");
}

static void test_remove(enum restore_mode mode, const char *name)
{
	size_t half = NR_PAGES / 2, quarter = NR_PAGES / 4;
	struct env e;
	bool ok = true;

	env_init(&e, mode, 16, 1);
	env_start(&e);
	walk_threads(&e, 1, 0, half);
	/* A restored quarter and a quarter never touched. */
	if (madvise(e.cfg.area + quarter * page_size, half * page_size, MADV_REMOVE))
		die("madvise(MADV_REMOVE)");
	walk_threads(&e, 1, 0, NR_PAGES);
	for (size_t n = 0; n < NR_PAGES; n++)
		ok &= page_is(&e, n, n >= quarter && n < quarter + half);
	env_stop(&e, size);
	result(ok && e.st.removes > 0 && e.st.zero_pages > 0, "remove", name,
	       "removed memory did not read back as zeroes");
}

static void *unmap_half(void *arg)
{
	struct env *e = arg;

	usleep(2000);
	if (munmap(e->cfg.area + size / 2, size / 2))
		die("munmap");
	return NULL;
}

static void test_unmap(enum restore_mode mode, const char *name)
{
	struct env e;
	pthread_t t;
	bool ok = true;

	env_init(&e, mode, 4, 1);
	env_start(&e);
	if (pthread_create(&t, NULL, unmap_half, &e))
		die("pthread_create");
	walk_threads(&e, 1, 0, NR_PAGES / 2);
	pthread_join(t, NULL);
	for (size_t n = 0; n < NR_PAGES / 2; n++)
		ok &= page_is(&e, n, false);
	env_stop(&e, size / 2);
	result(ok && e.st.unmaps == 1, "unmap", name,
	       "the mapped half was not restored, or no UNMAP event");
}

static volatile bool churning;

static void *remove_behind(void *arg)
{
	struct env *e = arg;

	while (churning)
		for (size_t n = 0; n < NR_PAGES && churning; n += 7)
			madvise(e->cfg.area + n * page_size, page_size, MADV_REMOVE);
	return NULL;
}

static void test_churn(enum restore_mode mode, const char *name)
{
	struct env e;
	pthread_t t;
	bool ok = true;

	env_init(&e, mode, 4, 2);
	env_start(&e);
	churning = true;
	if (pthread_create(&t, NULL, remove_behind, &e))
		die("pthread_create");
	for (int pass = 0; pass < 4; pass++)
		walk_threads(&e, 1, 0, NR_PAGES);
	churning = false;
	pthread_join(t, NULL);
	for (size_t n = 0; n < NR_PAGES; n++)
		ok &= page_is(&e, n, false) || page_is(&e, n, true);
	env_stop(&e, size);
	printf("# churn (%s): %lu removes, %lu EAGAIN retries, %lu zero pages\n",
	       name, e.st.removes, e.st.eagain, e.st.zero_pages);
	result(ok && e.st.removes > 0, "churn", name,
	       "a page is neither the snapshot's nor zero");
}

static void timed_out(int sig)
{
	/* A handler that lost a fault leaves its thread asleep: fail, not hang. */
	printf("Bail out! test %d timed out\n", nr_tests + 1);
	_exit(1);
}

int main(void)
{
	static const struct {
		enum restore_mode mode;
		const char *name;
	} modes[] = { { RESTORE_SYNC, "sync" }, { RESTORE_URING, "io_uring" } };

	setvbuf(stdout, NULL, _IOLBF, 0);
	page_size = sysconf(_SC_PAGESIZE);
	size = NR_PAGES * page_size;
	check_kernel();
	printf("TAP version 13\n1..10\n");
	signal(SIGALRM, timed_out);
	for (int i = 0; i < 2; i++) {
		test_duplicates(modes[i].mode, modes[i].name);
		test_eexist(modes[i].mode, modes[i].name);
		test_remove(modes[i].mode, modes[i].name);
		test_unmap(modes[i].mode, modes[i].name);
		test_churn(modes[i].mode, modes[i].name);
	}
	printf("# %d of %d failed\n", nr_failed, nr_tests);
	return nr_failed ? 1 : 0;
}

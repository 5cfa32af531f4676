// SPDX-License-Identifier: GPL-2.0
/*
 * Tests of the gmem-restore handler library, on a real guest_memfd with
 * threads standing in for vCPUs (TAP output; exit 0 if all pass, 1 if one
 * fails, 4 if the kernel lacks guest_memfd userfaultfd support).
 *
 * Each case runs in a child process with a time box (30 s, or
 * $GMEM_RESTORE_TEST_TIME_BOX): a fault the library drops leaves a thread
 * asleep forever, which shows as "not ok ... timed out", and the next case
 * runs on ($GMEM_RESTORE_TEST_FAIL_FAST set: stops at the first failure).
 * Arguments, if any, select the cases whose "name (config)" contains one
 * of them.
 *
 * Under several configurations of both handlers (window 1 and 16,
 * readahead, the mapped image, a simulated read latency):
 *   duplicates  four threads fault on the same pages at once: every page
 *               is written once, none hangs, data is the snapshot's
 *   eexist      pages the VMM wrote before the restore keep their contents
 *               (populate-once), the others are restored around them
 *   remove      MADV_REMOVE of restored and of not yet restored pages:
 *               both read back as zeroes afterwards
 *   unmap       munmap() of half the area while the other half is being
 *               restored: the rest is restored, nothing hangs, no page is
 *               left absent
 *   churn       a thread walks the memory while another keeps removing
 *               every 7th page: pages never removed read exactly the
 *               snapshot, removed ones zero in the end
 *   vma-split   mprotect() and MADV_DONTDUMP split the VMA inside a window:
 *               every page is restored, nothing hangs
 * Races with a handler that holds a page (slow snapshot read):
 *   busy-remove-write   the page is removed while being filled, a thread
 *               touches it again and writes: it sees zeroes, its write
 *               survives the handler
 *   busy-remove-twice   two MADV_REMOVEs while it is filled: zeroes after
 *   unmap-pending       a fault waits while its page is unmapped: the
 *               thread is woken (and gets SIGSEGV), it does not hang
 *   stop-with-absent    restore_stop() with one page being filled and one
 *               fault not served yet: both complete, it returns how many
 *               pages are left absent, as restore_progress() said
 *   demand-before-readahead   a fault far from a long readahead is served
 *               within a few read delays, not after the readahead
 * KVM Userfault (a gmem-only memslot's bitmap; threads stand in for vCPUs
 * and call restore_vcpu_fault() as a vCPU thread does on its exits):
 *   vcpu-faults   two vCPUs walk the memory answering their own exits, a
 *               thread touches it through the mapping (userfaultfd), and a
 *               checker watches the bitmap: a clear bit always means the
 *               page is in the guest_memfd; every page is read once and
 *               every bit is clear in the end
 *   vcpu-busy   a vCPU exits on a page a handler is filling: it waits for
 *               it, the page is read once
 *   vcpu-discarded   pages removed (MADV_REMOVE) or discarded by the VMM
 *               have their bits cleared and read zeroes
 *   vcpu-poison   the snapshot is cut short while restoring, with
 *               RESTORE_UNREADABLE_POISON: the vCPU gets EHWPOISON on a
 *               page past the cut and keeps its bit, a thread touching one
 *               gets SIGBUS BUS_MCEERR_AR, pages before the cut restore,
 *               and restore_finish() reports EIO
 *   vcpu-api    restore_vcpu_attach() without a bitmap and bad offsets
 *               fail with EINVAL
 * Start and stop:
 *   pending-before-start   faults raised before restore_start() are served,
 *               one of them half-answered by the VMM (pwrite + CONTINUE
 *               with DONTWAKE, then restore_populated())
 *   blocking-uffd   a userfaultfd without O_NONBLOCK is refused (EINVAL)
 *   many-runs-faults / many-runs-readahead   more runs in flight than the
 *               io_uring handler has slots
 *   finish      restore_finish() fills what was never touched, progress
 *               counts down; after it the userfaultfd can be closed and
 *               every page reads the snapshot
 *   vmm-populated / vmm-discarded   ranges the VMM wrote or punched itself
 *   range-validation   restore_populated/discarded() refuse bad ranges
 *   config-*    restore_start() refuses bad sizes with EINVAL
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gmem-restore.h"
#include "gmem-vm.h"

#define SKIP 4
#define NR_PAGES 512
#define TIME_BOX 30		/* seconds, per case */
#define MS 1000			/* in read_delay_us */

static long page_size;
static struct gmem_vm vm;

/* One test configuration of the library. */
struct conf {
	const char *name;
	enum restore_mode mode;
	unsigned int window, prefetch, threads, delay_us;
	bool image;
	int arg;		/* case-specific */
	bool copy;		/* answer with UFFDIO_COPY, not pwrite + CONTINUE */
};

struct env {
	struct restore_config cfg;
	struct restore *r;
	struct restore_stats st;
	size_t nr;		/* pages */
	size_t size;
	size_t mapped;		/* bytes of the area still mapped */
	bool uffd_closed;
};

enum { ENV_BLOCKING = 1, ENV_SPARSE = 2 };

/* --- the child's verdict, read by the parent --- */

static char *verdict;		/* MAP_SHARED: the first failure */
#define VERDICT_SIZE 512
static int nr_check_failed;

static void __attribute__((format(printf, 1, 2))) fail(const char *fmt, ...)
{
	char msg[VERDICT_SIZE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	printf("# %s\n", msg);
	if (!nr_check_failed++)
		snprintf(verdict, VERDICT_SIZE, "%s", msg);
}

#define CHECK(cond, ...) do { if (!(cond)) fail(__VA_ARGS__); } while (0)

static void __attribute__((noreturn)) die(const char *what)
{
	fail("%s: %s", what, strerror(errno));
	fflush(stdout);
	_exit(2);
}

static void on_fatal(void *ctx, const char *msg)
{
	fail("library fatal(%s): %s", ctx == verdict ? "ctx ok" : "WRONG ctx", msg);
	fflush(stdout);
	_exit(3);
}

/* --- helpers --- */

static char pattern(size_t page, size_t i)
{
	return (char)((page * 11 + i / 16) % 255 + 1);	/* never 0 */
}

static char vmm_byte(size_t page)
{
	return (char)(0xa0 + page % 16);	/* differs from pattern() */
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, ms % 1000 * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static pthread_t spawn(void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	pthread_t t;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 << 10);
	errno = pthread_create(&t, &attr, fn, arg);
	if (errno)
		die("pthread_create");
	pthread_attr_destroy(&attr);
	return t;
}

static void fill_page(char *buf, size_t n)
{
	for (long i = 0; i < page_size; i++)
		buf[i] = pattern(n, i);
}

/*
 * A fresh guest_memfd of @nr pages, mapped and registered (MISSING, as
 * restore_start() asks), and its snapshot; the library configured by @c.
 */
static void env_init(struct env *e, const struct conf *c, size_t nr, int flags)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP,
	};
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	char *page = malloc(page_size);

	memset(e, 0, sizeof(*e));
	e->nr = nr;
	e->size = e->mapped = nr * page_size;
	e->cfg.mode = c->mode;
	e->cfg.answer = c->copy ? RESTORE_ANSWER_COPY : RESTORE_ANSWER_WRITE;
	e->cfg.window = c->window;
	e->cfg.prefetch = c->prefetch;
	e->cfg.threads = c->threads;
	e->cfg.read_delay_us = c->delay_us;
	e->cfg.size = e->size;
	e->cfg.fatal = on_fatal;
	e->cfg.ctx = verdict;
	e->cfg.snapshot = memfd_create("snapshot", MFD_CLOEXEC);
	if (e->cfg.snapshot < 0 || !page)
		die("memfd_create");
	if (flags & ENV_SPARSE) {
		if (ftruncate(e->cfg.snapshot, e->size))
			die("ftruncate");
	} else {
		for (size_t n = 0; n < nr; n++) {
			fill_page(page, n);
			if (pwrite(e->cfg.snapshot, page, page_size, n * page_size) != page_size)
				die("writing the snapshot");
		}
	}
	free(page);
	if (c->image) {
		e->cfg.image = mmap(NULL, e->size, PROT_READ, MAP_SHARED,
				    e->cfg.snapshot, 0);
		if (e->cfg.image == MAP_FAILED)
			die("mmap(snapshot)");
		e->cfg.image_size = e->size;
	}
	e->cfg.gmem = gmem_vm_create(&vm, e->size);
	if (e->cfg.gmem < 0)
		die("KVM_CREATE_GUEST_MEMFD");
	e->cfg.area = mmap(NULL, e->size, PROT_READ | PROT_WRITE, MAP_SHARED,
			   e->cfg.gmem, 0);
	if (e->cfg.area == MAP_FAILED)
		die("mmap");
	e->cfg.uffd = syscall(__NR_userfaultfd, O_CLOEXEC |
			      (flags & ENV_BLOCKING ? 0 : O_NONBLOCK));
	if (e->cfg.uffd < 0 || ioctl(e->cfg.uffd, UFFDIO_API, &api))
		die("userfaultfd");
	reg.range.start = (unsigned long)e->cfg.area;
	reg.range.len = e->size;
	if (ioctl(e->cfg.uffd, UFFDIO_REGISTER, &reg))
		die("UFFDIO_REGISTER");
}

static void env_start(struct env *e)
{
	e->r = restore_start(&e->cfg);
	if (!e->r)
		die("restore_start");
}

static void env_close_uffd(struct env *e)
{
	if (!e->uffd_closed)
		close(e->cfg.uffd);
	e->uffd_closed = true;
}

/*
 * Stop the library and close the userfaultfd (nobody reads it any more: an
 * UNMAP event would wait forever); the area stays mapped for checks, and
 * pages left absent read as zeroes from now on. Returns restore_stop()'s.
 */
static size_t env_stop(struct env *e)
{
	size_t absent = restore_stop(e->r, &e->st);

	e->r = NULL;
	env_close_uffd(e);
	return absent;
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

static const char *page_what(struct env *e, size_t n)
{
	if (page_is(e, n, false))
		return "the snapshot";
	if (page_is(e, n, true))
		return "zeroes";
	return "other data";
}

/* Check pages [first, end) are the snapshot's (or zero); count failures. */
static void expect_pages(struct env *e, size_t first, size_t end, bool zero,
			 const char *what)
{
	size_t bad = 0, first_bad = 0;

	for (size_t n = first; n < end; n++) {
		if (page_is(e, n, zero))
			continue;
		if (!bad++)
			first_bad = n;
	}
	CHECK(!bad, "%s: %zu of pages %zu-%zu are not %s (page %zu: %s)", what,
	      bad, first, end - 1, zero ? "zero" : "the snapshot's", first_bad,
	      page_what(e, first_bad));
}

static char touch(struct env *e, size_t n)
{
	return *(volatile char *)(e->cfg.area + n * page_size);
}

struct walker {
	struct env *e;
	size_t first, end;
	bool reverse;
};

static void *walk(void *arg)
{
	struct walker *w = arg;

	for (size_t i = w->first; i < w->end; i++)
		touch(w->e, w->reverse ? w->end - 1 - (i - w->first) : i);
	return NULL;
}

static void walk_threads(struct env *e, int nr, size_t first, size_t end)
{
	pthread_t t[8];
	struct walker w = { e, first, end, false };

	for (int i = 0; i < nr; i++)
		t[i] = spawn(walk, &w);
	for (int i = 0; i < nr; i++)
		pthread_join(t[i], NULL);
}

/* A vCPU stand-in that touches one byte and says when it got it. */
struct toucher {
	struct env *e;
	size_t page, off;
	char val;
	int64_t ns;		/* how long the access took */
	atomic_bool done;
	bool segv;
	bool sigbus;
	int code;		/* the signal's si_code */
	pthread_t t;
};

static __thread sigjmp_buf *volatile segv_jmp;
static __thread volatile int fault_sig, fault_code;

/* SIGSEGV or SIGBUS in a toucher: say which, and go back to it. */
static void on_fault_signal(int sig, siginfo_t *si, void *uc)
{
	fault_sig = sig;
	fault_code = si->si_code;
	if (segv_jmp)
		siglongjmp(*segv_jmp, 1);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void catch_fault_signal(int sig)
{
	struct sigaction sa = { .sa_sigaction = on_fault_signal, .sa_flags = SA_SIGINFO };

	sigaction(sig, &sa, NULL);
}

static void *touch_fn(void *arg)
{
	struct toucher *t = arg;
	sigjmp_buf jb;
	int64_t t0 = now_ns();

	if (sigsetjmp(jb, 1)) {
		t->segv = fault_sig == SIGSEGV;
		t->sigbus = fault_sig == SIGBUS;
		t->code = fault_code;
	} else {
		segv_jmp = &jb;
		t->val = *(volatile char *)(t->e->cfg.area + t->page * page_size + t->off);
	}
	segv_jmp = NULL;
	t->ns = now_ns() - t0;
	atomic_store(&t->done, true);
	return NULL;
}

static void touch_start(struct toucher *t, struct env *e, size_t page)
{
	memset(t, 0, sizeof(*t));
	t->e = e;
	t->page = page;
	t->t = spawn(touch_fn, t);
}

static void touch_join(struct toucher *t)
{
	pthread_join(t->t, NULL);
}

static void check_touch(struct toucher *t)
{
	CHECK(!t->segv, "the thread on page %zu got SIGSEGV", t->page);
	CHECK(t->segv || t->val == pattern(t->page, t->off),
	      "the thread on page %zu read %#x, not the snapshot's %#x", t->page,
	      (unsigned char)t->val, (unsigned char)pattern(t->page, t->off));
}

/* Wait (a while) until the userfaultfd has a message to read. */
static bool uffd_readable(struct env *e, int timeout_ms)
{
	struct pollfd pfd = { .fd = e->cfg.uffd, .events = POLLIN };

	return poll(&pfd, 1, timeout_ms) > 0 && (pfd.revents & POLLIN);
}

static void remove_pages(struct env *e, size_t first, size_t count)
{
	if (madvise(e->cfg.area + first * page_size, count * page_size, MADV_REMOVE))
		die("madvise(MADV_REMOVE)");
}

/* --- the cases on every configuration --- */

static void t_duplicates(const struct conf *c)
{
	struct env e;

	env_init(&e, c, NR_PAGES, 0);
	env_start(&e);
	walk_threads(&e, 4, 0, NR_PAGES);
	expect_pages(&e, 0, NR_PAGES, false, "after four walks");
	env_stop(&e);
	CHECK(e.st.pages == NR_PAGES, "%lu pages written from the snapshot, not %d",
	      e.st.pages, NR_PAGES);
}

static void t_eexist(const struct conf *c)
{
	char *page = malloc(page_size);
	struct env e;

	/* The VMM wrote every 5th page itself before restoring. */
	env_init(&e, c, NR_PAGES, 0);
	for (size_t n = 0; n < NR_PAGES; n += 5) {
		memset(page, vmm_byte(n), page_size);
		if (pwrite(e.cfg.gmem, page, page_size, n * page_size) != page_size)
			die("pwrite");
	}
	env_start(&e);
	walk_threads(&e, 2, 0, NR_PAGES);
	for (size_t n = 0; n < NR_PAGES; n++) {
		if (n % 5) {
			CHECK(page_is(&e, n, false), "page %zu is %s, not the snapshot",
			      n, page_what(&e, n));
			continue;
		}
		memset(page, vmm_byte(n), page_size);
		CHECK(!memcmp(e.cfg.area + n * page_size, page, page_size),
		      "page %zu, written by the VMM, was overwritten (%s)", n,
		      page_what(&e, n));
	}
	env_stop(&e);
	free(page);
	/* With window 1 such a page may never fault (MISSING only). */
	CHECK(c->window == 1 || e.st.eexist > 0, "no EEXIST counted");
}

static void t_remove(const struct conf *c)
{
	size_t half = NR_PAGES / 2, quarter = NR_PAGES / 4;
	struct env e;

	env_init(&e, c, NR_PAGES, 0);
	env_start(&e);
	walk_threads(&e, 1, 0, half);
	/* A restored quarter and a quarter never touched. */
	remove_pages(&e, quarter, half);
	walk_threads(&e, 2, 0, NR_PAGES);
	expect_pages(&e, 0, quarter, false, "before the removed range");
	expect_pages(&e, quarter, quarter + half, true, "the removed range");
	expect_pages(&e, quarter + half, NR_PAGES, false, "after the removed range");
	env_stop(&e);
	CHECK(e.st.removes > 0, "no REMOVE event counted");
	CHECK(e.st.zero_pages > 0, "no zero page counted");
}

static void *unmap_half(void *arg)
{
	struct env *e = arg;

	sleep_ms(2);
	if (munmap(e->cfg.area + e->size / 2, e->size / 2))
		die("munmap");
	return NULL;
}

static void t_unmap(const struct conf *c)
{
	struct env e;
	pthread_t t;
	size_t absent;

	env_init(&e, c, NR_PAGES, 0);
	env_start(&e);
	t = spawn(unmap_half, &e);
	walk_threads(&e, 1, 0, NR_PAGES / 2);
	pthread_join(t, NULL);
	e.mapped = e.size / 2;
	expect_pages(&e, 0, NR_PAGES / 2, false, "the half still mapped");
	absent = env_stop(&e);
	CHECK(e.st.unmaps == 1, "%lu UNMAP events counted, not 1", e.st.unmaps);
	CHECK(absent == 0, "restore_stop() says %zu pages are absent, not 0 "
	      "(all mapped ones restored, the others unmapped)", absent);
}

#define CHURN_PAGES (NR_PAGES / 2)

struct churn {
	struct env *e;
	atomic_bool stop;
	atomic_int sweeps;
};

static void *remove_behind(void *arg)
{
	struct churn *ch = arg;

	/*
	 * A pause after each REMOVE: until the remover has run on after its
	 * event was read, every UFFDIO_CONTINUE fails with EAGAIN, so back to
	 * back REMOVEs starve the walker (a page a sweep in a loaded VM).
	 */
	while (!atomic_load(&ch->stop)) {
		for (size_t n = 0; n < ch->e->nr && !atomic_load(&ch->stop); n += 7) {
			remove_pages(ch->e, n, 1);
			usleep(200);
		}
		atomic_fetch_add(&ch->sweeps, 1);
	}
	return NULL;
}

static void t_churn(const struct conf *c)
{
	struct churn ch = { 0 };
	struct env e;
	pthread_t t;

	env_init(&e, c, CHURN_PAGES, 0);
	ch.e = &e;
	env_start(&e);
	t = spawn(remove_behind, &ch);
	for (int pass = 0; pass < 2 || atomic_load(&ch.sweeps) < 2; pass++)
		if (pass < 1000)
			walk_threads(&e, 1, 0, CHURN_PAGES);
		else
			sleep_ms(1);
	atomic_store(&ch.stop, true);
	pthread_join(t, NULL);
	/* Every 7th page was removed (at least once), the others never. */
	for (size_t n = 0; n < CHURN_PAGES; n++)
		CHECK(page_is(&e, n, n % 7 == 0), "page %zu (%sremoved) is %s", n,
		      n % 7 ? "never " : "", page_what(&e, n));
	env_stop(&e);
	printf("# %d sweeps, %lu removes, %lu EAGAIN retries, %lu zero pages, %lu punched\n",
	       atomic_load(&ch.sweeps), e.st.removes, e.st.eagain,
	       e.st.zero_pages, e.st.punched);
	CHECK(e.st.removes > 0, "no REMOVE event counted");
}

/* mprotect() and MADV_DONTDUMP split the VMA in the middle of windows. */
static void t_vma_split(const struct conf *c)
{
	struct env e;

	env_init(&e, c, NR_PAGES, 0);
	env_start(&e);
	if (mprotect(e.cfg.area + 8 * page_size, page_size, PROT_READ) ||
	    madvise(e.cfg.area + 40 * page_size, 2 * page_size, MADV_DONTDUMP) ||
	    madvise(e.cfg.area + 203 * page_size, 5 * page_size, MADV_DONTDUMP))
		die("splitting the VMA");
	walk_threads(&e, 2, 0, NR_PAGES);
	expect_pages(&e, 0, NR_PAGES, false, "split area");
	env_stop(&e);
	printf("# %lu runs split\n", e.st.split);
}

/* --- a handler holds a page (slow read) while the guest discards it --- */

#define HELD_PAGE 40		/* in the middle of a window of 16 */

struct writer {
	struct env *e;
	size_t page;
	bool rest_zero;
	char saw;
};

#define X ((char)0x5a)	/* the guest's write */

/* Touch the page (and wait), then write X and read the rest back. */
static void *write_after_remove(void *arg)
{
	struct writer *w = arg;
	volatile char *p = w->e->cfg.area + w->page * page_size;

	w->saw = p[1];
	p[0] = X;
	w->rest_zero = true;
	for (long i = 1; i < page_size; i++)
		w->rest_zero &= p[i] == 0;
	return NULL;
}

/*
 * The writer runs SCHED_FIFO on the CPU the handlers are pinned to: the
 * CONTINUE that wakes it lets it run at once, before the handler's next
 * step (where a handler that punches after CONTINUE would lose its write).
 */
static pthread_t spawn_fifo(void *(*fn)(void *), void *arg)
{
	struct sched_param sp = { .sched_priority = 1 };
	pthread_attr_t attr;
	pthread_t t;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 << 10);
	pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
	pthread_attr_setschedpolicy(&attr, SCHED_FIFO);
	pthread_attr_setschedparam(&attr, &sp);
	errno = pthread_create(&t, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	if (!errno)
		return t;
	printf("# no SCHED_FIFO thread (%s): the race is left to chance\n",
	       strerror(errno));
	return spawn(fn, arg);
}

static void pin_to_this_cpu(void)
{
	cpu_set_t set;
	int cpu = sched_getcpu();

	CPU_ZERO(&set);
	CPU_SET(cpu < 0 ? 0 : cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		printf("# sched_setaffinity: %s\n", strerror(errno));
}

static void t_busy_remove_write(const struct conf *c)
{
	struct writer w = { 0 };
	struct toucher t1;
	struct env e;
	pthread_t t2;
	const char *p;
	bool rest_zero = true;

	env_init(&e, c, NR_PAGES, 0);
	pin_to_this_cpu();	/* the handler threads too */
	env_start(&e);
	touch_start(&t1, &e, HELD_PAGE);
	sleep_ms(60);		/* a handler holds it, reading the snapshot */
	remove_pages(&e, HELD_PAGE, 1);
	w.e = &e;
	w.page = HELD_PAGE;
	t2 = spawn_fifo(write_after_remove, &w);
	pthread_join(t2, NULL);
	touch_join(&t1);
	CHECK(w.rest_zero, "the thread that touched the page after MADV_REMOVE "
	      "read %s (byte 1: %#x), not zeroes", w.saw ? "data" : "zero then data",
	      (unsigned char)w.saw);
	env_stop(&e);
	p = e.cfg.area + HELD_PAGE * page_size;
	for (long i = 1; i < page_size; i++)
		rest_zero &= p[i] == 0;
	CHECK(p[0] == X, "the guest's write after MADV_REMOVE is lost: byte 0 is %#x, "
	      "not %#x (page: %s)", (unsigned char)p[0], (unsigned char)X,
	      page_what(&e, HELD_PAGE));
	CHECK(rest_zero, "after the handler finished, the removed page holds data");
}

static void t_busy_remove_twice(const struct conf *c)
{
	struct toucher t1;
	struct env e;

	env_init(&e, c, NR_PAGES, 0);
	env_start(&e);
	touch_start(&t1, &e, HELD_PAGE);
	sleep_ms(60);		/* a handler holds it, reading the snapshot */
	remove_pages(&e, HELD_PAGE, 1);
	remove_pages(&e, HELD_PAGE, 1);
	touch_join(&t1);
	CHECK(page_is(&e, HELD_PAGE, true), "page removed twice while being filled "
	      "is %s, not zeroes (while restoring)", page_what(&e, HELD_PAGE));
	env_stop(&e);
	CHECK(page_is(&e, HELD_PAGE, true), "page removed twice while being filled "
	      "is %s, not zeroes (after restore_stop)", page_what(&e, HELD_PAGE));
}

/*
 * A thread waits on a page whose fault is not served yet (one sync handler
 * busy elsewhere, or a slow read in flight) when the page is unmapped: it
 * must be woken, and then gets SIGSEGV.
 */
static void t_unmap_pending(const struct conf *c)
{
	size_t a = 10, b = NR_PAGES / 2 + 10;
	struct toucher t1, t2;
	struct env e;

	catch_fault_signal(SIGSEGV);
	env_init(&e, c, NR_PAGES, 0);
	env_start(&e);
	touch_start(&t1, &e, a);
	sleep_ms(60);
	touch_start(&t2, &e, b);
	sleep_ms(60);
	if (munmap(e.cfg.area + e.size / 2, e.size / 2))
		die("munmap");
	e.mapped = e.size / 2;
	touch_join(&t2);
	touch_join(&t1);
	check_touch(&t1);
	CHECK(t2.segv, "the thread on the unmapped page read %#x instead of SIGSEGV",
	      (unsigned char)t2.val);
	env_stop(&e);
	CHECK(e.st.unmaps == 1, "%lu UNMAP events counted, not 1", e.st.unmaps);
}

/*
 * restore_stop() with a page being filled and a fault not served yet:
 * both threads get their pages, and it returns the pages left absent.
 */
static void t_stop_with_absent(const struct conf *c)
{
	struct restore_progress p;
	struct toucher t1, t2;
	struct env e;
	size_t absent;

	env_init(&e, c, NR_PAGES, 0);
	env_start(&e);
	touch_start(&t1, &e, 10);
	sleep_ms(60);
	touch_start(&t2, &e, 300);
	sleep_ms(60);
	restore_progress(e.r, &p);
	absent = restore_stop(e.r, &e.st);
	e.r = NULL;
	/* Not closed yet: a thread not served would read zeroes after that. */
	touch_join(&t1);
	touch_join(&t2);
	check_touch(&t1);
	check_touch(&t2);
	env_close_uffd(&e);
	CHECK(page_is(&e, 10, false) && page_is(&e, 300, false),
	      "the faulting pages are not the snapshot's");
	CHECK(p.total == NR_PAGES, "restore_progress() total %zu, not %d", p.total,
	      NR_PAGES);
	CHECK(absent == NR_PAGES - 2, "restore_stop() returned %zu, not %d",
	      absent, NR_PAGES - 2);
	CHECK(p.absent >= absent && p.absent <= NR_PAGES,
	      "restore_progress() before the stop said %zu absent, restore_stop() %zu",
	      p.absent, absent);
	CHECK(e.st.pages == 2, "%lu pages written, not 2", e.st.pages);
}

/*
 * A fault far from a long readahead waits a few read delays at most
 * (c->arg of them: io_uring runs the writes to one file in order, so a
 * demand write may wait behind those of the readahead in flight). The
 * readahead is started by a fault on page 0, then one on page 40 (for a
 * second sync thread, which may read ahead from there); a handler that
 * did all of it first would take 64 read delays (sync), or 32 rounds of
 * its 64 io_uring slots.
 */
static void t_demand_before_readahead(const struct conf *c)
{
	size_t nr = c->mode == RESTORE_URING ? 8 * NR_PAGES : NR_PAGES;
	int64_t limit = (int64_t)c->arg * c->delay_us * 1000;
	struct toucher a, a2, b;
	struct env e;

	env_init(&e, c, nr, 0);
	env_start(&e);
	touch_start(&a, &e, 0);
	touch_join(&a);
	sleep_ms(2 * c->delay_us / MS);	/* the readahead is under way */
	if (c->threads > 1) {
		/* Another handler thread gets a fault in the readahead's span. */
		touch_start(&a2, &e, 40);
		touch_join(&a2);
		sleep_ms(2 * c->delay_us / MS);
	}
	touch_start(&b, &e, nr - 1);
	touch_join(&b);
	check_touch(&b);
	printf("# a fault outside the readahead waited %lld ms (read delay %u ms)\n",
	       (long long)(b.ns / 1000000), c->delay_us / MS);
	CHECK(b.ns < limit, "a demand fault waited %lld ms behind the readahead "
	      "(limit %lld ms = %d read delays)", (long long)(b.ns / 1000000),
	      (long long)(limit / 1000000), c->arg);
	env_stop(&e);
}

/* --- start, stop, finish --- */

/*
 * Faults raised before restore_start() are served. The VMM half-answers
 * one (writes the page, CONTINUEs without waking) and tells the library
 * with restore_populated(): its thread must be woken.
 */
static void t_pending_before_start(const struct conf *c)
{
	size_t p = 40, q = 300;
	struct uffdio_continue cont = { .mode = UFFDIO_CONTINUE_MODE_DONTWAKE };
	struct toucher tp, tq;
	char *page = malloc(page_size);
	struct env e;
	int64_t t0;

	env_init(&e, c, NR_PAGES, 0);
	touch_start(&tp, &e, p);
	CHECK(uffd_readable(&e, 5000), "no fault message before restore_start()");
	touch_start(&tq, &e, q);
	sleep_ms(50);
	fill_page(page, p);
	if (pwrite(e.cfg.gmem, page, page_size, p * page_size) != page_size)
		die("pwrite");
	cont.range.start = (unsigned long)e.cfg.area + p * page_size;
	cont.range.len = page_size;
	if (ioctl(e.cfg.uffd, UFFDIO_CONTINUE, &cont))
		die("UFFDIO_CONTINUE(DONTWAKE)");
	sleep_ms(20);
	CHECK(!atomic_load(&tp.done), "the thread was woken before restore_start()");
	t0 = now_ns();
	env_start(&e);
	CHECK(!restore_populated(e.r, p * page_size, page_size),
	      "restore_populated(): %s", strerror(errno));
	touch_join(&tp);
	touch_join(&tq);
	printf("# the pending faults were served %lld ms after restore_start()\n",
	       (long long)((now_ns() - t0) / 1000000));
	check_touch(&tp);
	check_touch(&tq);
	t0 = now_ns();
	walk_threads(&e, 1, 0, NR_PAGES);
	printf("# a walk took %lld ms\n", (long long)((now_ns() - t0) / 1000000));
	expect_pages(&e, 0, NR_PAGES, false, "after a walk");
	env_stop(&e);
	free(page);
}

static void t_blocking_uffd(const struct conf *c)
{
	struct env e;

	env_init(&e, c, NR_PAGES, ENV_BLOCKING);
	e.r = restore_start(&e.cfg);
	if (e.r) {
		/* Its threads may block in read(): leave them to exit(). */
		fail("restore_start() accepted a blocking userfaultfd");
		return;
	}
	CHECK(errno == EINVAL, "restore_start() failed with %s, not EINVAL",
	      strerror(errno));
}

/* Many vCPUs fault at once, each on its own window. */
#define MANY 128

static void t_many_runs_faults(const struct conf *c)
{
	struct toucher *t = calloc(MANY, sizeof(*t));
	struct env e;

	env_init(&e, c, NR_PAGES, 0);
	env_start(&e);
	for (int i = 0; i < MANY; i++)
		touch_start(&t[i], &e, (size_t)i * (NR_PAGES / MANY) + 1);
	for (int i = 0; i < MANY; i++)
		touch_join(&t[i]);
	for (int i = 0; i < MANY; i++) {
		check_touch(&t[i]);
		CHECK(page_is(&e, t[i].page, false), "page %zu is %s", t[i].page,
		      page_what(&e, t[i].page));
	}
	env_stop(&e);
	/* Each thread faulted in a window of its own. */
	CHECK(e.st.pages == MANY * c->window, "%lu pages written from the snapshot, not %u",
	      e.st.pages, MANY * c->window);
	free(t);
}

/* One fault queues a readahead of hundreds of runs. */
static void t_many_runs_readahead(const struct conf *c)
{
	struct env e;

	env_init(&e, c, NR_PAGES, 0);
	env_start(&e);
	touch(&e, 0);
	walk_threads(&e, 2, 0, NR_PAGES);
	expect_pages(&e, 0, NR_PAGES, false, "after a walk");
	env_stop(&e);
	CHECK(e.st.pages == NR_PAGES, "%lu pages written from the snapshot, not %d",
	      e.st.pages, NR_PAGES);
	printf("# %lu of them by readahead\n", e.st.readahead_pages);
}

static void t_finish(const struct conf *c)
{
	struct restore_progress p0, p1;
	struct walker w;
	struct env e;
	pthread_t t;
	int ret;

	env_init(&e, c, NR_PAGES, 0);
	env_start(&e);
	restore_progress(e.r, &p0);
	walk_threads(&e, 1, 0, 20);
	restore_progress(e.r, &p1);
	CHECK(p0.total == NR_PAGES && p1.total == NR_PAGES,
	      "restore_progress() total %zu, %zu, not %d", p0.total, p1.total, NR_PAGES);
	CHECK(p0.absent == NR_PAGES, "restore_progress() at start: %zu absent, not %d",
	      p0.absent, NR_PAGES);
	CHECK(p1.absent <= NR_PAGES - 20,
	      "restore_progress() after 20 pages: %zu absent", p1.absent);
	/* A vCPU runs on meanwhile, from the other end. */
	w = (struct walker){ &e, 0, NR_PAGES, true };
	t = spawn(walk, &w);
	ret = restore_finish(e.r, &e.st);
	e.r = NULL;
	pthread_join(t, NULL);
	CHECK(ret == 0, "restore_finish() returned %d", ret);
	CHECK(e.st.pages == NR_PAGES, "%lu pages written from the snapshot, not %d",
	      e.st.pages, NR_PAGES);
	env_close_uffd(&e);
	/* No handler now: a page not restored would read as zeroes. */
	expect_pages(&e, 0, NR_PAGES, false, "after restore_finish() and close(uffd)");
}

/* The VMM wrote part of a window itself and says so. */
static void t_vmm_populated(const struct conf *c)
{
	size_t first = 40, count = 8;	/* half of the window 32-47 */
	char *buf = malloc(count * page_size);
	struct env e;

	env_init(&e, c, NR_PAGES, 0);
	env_start(&e);
	for (size_t i = 0; i < count; i++)
		memset(buf + i * page_size, vmm_byte(first + i), page_size);
	if (pwrite(e.cfg.gmem, buf, count * page_size, first * page_size) !=
	    (ssize_t)(count * page_size))
		die("pwrite");
	CHECK(!restore_populated(e.r, first * page_size, count * page_size),
	      "restore_populated(): %s", strerror(errno));
	walk_threads(&e, 2, 0, NR_PAGES);
	expect_pages(&e, 0, first, false, "before the VMM's range");
	CHECK(!memcmp(e.cfg.area + first * page_size, buf, count * page_size),
	      "the range the VMM wrote does not read its data (page %zu: %s)",
	      first, page_what(&e, first));
	expect_pages(&e, first + count, NR_PAGES, false, "after the VMM's range");
	env_stop(&e);
	CHECK(e.st.pages == NR_PAGES - count,
	      "%lu pages written from the snapshot, not %zu", e.st.pages,
	      NR_PAGES - count);
	free(buf);
}

/* The VMM punches a restored range and a range never restored itself. */
static void t_vmm_discarded(const struct conf *c)
{
	size_t ranges[2][2] = { { 16, 16 }, { 100, 16 } };
	struct env e;

	env_init(&e, c, NR_PAGES, 0);
	env_start(&e);
	walk_threads(&e, 1, 0, 64);
	for (int i = 0; i < 2; i++) {
		off_t off = ranges[i][0] * page_size;
		size_t len = ranges[i][1] * page_size;

		CHECK(!restore_discarded(e.r, off, len), "restore_discarded(): %s",
		      strerror(errno));
		if (fallocate(e.cfg.gmem, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      off, len))
			die("fallocate(PUNCH_HOLE)");
	}
	walk_threads(&e, 2, 0, NR_PAGES);
	expect_pages(&e, 0, 16, false, "restored, kept");
	expect_pages(&e, 16, 32, true, "restored, then discarded by the VMM");
	expect_pages(&e, 32, 100, false, "between the discarded ranges");
	expect_pages(&e, 100, 116, true, "never restored, discarded by the VMM");
	expect_pages(&e, 116, NR_PAGES, false, "after the discarded ranges");
	env_stop(&e);
}

static void t_range_validation(const struct conf *c)
{
	struct {
		size_t off, len;
		const char *what;
	} bad[] = {
		{ 1, page_size, "offset not page aligned" },
		{ 0, page_size + 1, "length not page aligned" },
		{ 0, NR_PAGES * page_size + page_size, "past the end" },
		{ NR_PAGES * page_size, page_size, "offset at the end" },
		{ page_size, SIZE_MAX - page_size + 1, "length wrapping around" },
	};
	struct env e;

	env_init(&e, c, NR_PAGES, 0);
	env_start(&e);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		CHECK(restore_populated(e.r, bad[i].off, bad[i].len) == -1 &&
		      errno == EINVAL, "restore_populated(%s) did not fail with EINVAL",
		      bad[i].what);
		errno = 0;
		CHECK(restore_discarded(e.r, bad[i].off, bad[i].len) == -1 &&
		      errno == EINVAL, "restore_discarded(%s) did not fail with EINVAL",
		      bad[i].what);
	}
	walk_threads(&e, 1, 0, NR_PAGES);
	expect_pages(&e, 0, NR_PAGES, false, "after the refused calls");
	env_stop(&e);
}

/* restore_start() with one bad size: EINVAL, checked at start. */
enum {
	CFG_VALID, CFG_PREFETCH_MAX, CFG_WINDOW_MAX, CFG_THREADS_MAX, CFG_SIZE_0,
	CFG_SIZE_UNALIGNED, CFG_IMAGE_SHORT, CFG_SNAPSHOT_SHORT,
	CFG_SNAPSHOT_OFFSET,
};

static void t_config(const struct conf *c)
{
	size_t big = RESTORE_MAX_WINDOW_BYTES * 2 / page_size;
	struct env e;

	env_init(&e, c, c->arg == CFG_WINDOW_MAX ? big : NR_PAGES,
		 c->arg == CFG_WINDOW_MAX ? ENV_SPARSE : 0);
	switch (c->arg) {
	case CFG_VALID:
		break;
	case CFG_PREFETCH_MAX:
		e.cfg.prefetch = UINT_MAX;
		break;
	case CFG_WINDOW_MAX:
		e.cfg.window = RESTORE_MAX_WINDOW_BYTES / page_size + 1;
		break;
	case CFG_THREADS_MAX:
		e.cfg.threads = RESTORE_MAX_THREADS + 1;
		break;
	case CFG_SIZE_0:
		e.cfg.size = 0;
		break;
	case CFG_SIZE_UNALIGNED:
		e.cfg.size = e.size - 1;
		break;
	case CFG_IMAGE_SHORT:
		e.cfg.image_size = e.size - page_size;
		break;
	case CFG_SNAPSHOT_SHORT:
		if (ftruncate(e.cfg.snapshot, e.size - page_size))
			die("ftruncate");
		break;
	case CFG_SNAPSHOT_OFFSET:
		e.cfg.snapshot_offset = page_size;
		break;
	}
	errno = 0;
	e.r = restore_start(&e.cfg);
	if (c->arg == CFG_VALID) {
		CHECK(e.r, "a valid configuration is refused: %s", strerror(errno));
		if (e.r) {
			walk_threads(&e, 1, 0, NR_PAGES);
			expect_pages(&e, 0, NR_PAGES, false, "after a walk");
			env_stop(&e);
		}
		return;
	}
	if (e.r) {
		fail("restore_start() accepted it");
		env_stop(&e);
		return;
	}
	CHECK(errno == EINVAL, "restore_start() failed with %s, not EINVAL",
	      strerror(errno));
}

/* --- KVM Userfault --- */

#define BITS_PER_WORD (8 * sizeof(unsigned long))

/* The memslot's bitmap, every bit set: nothing is restored yet. */
static unsigned long *env_userfault(struct env *e)
{
	size_t words = (e->nr + BITS_PER_WORD - 1) / BITS_PER_WORD;
	unsigned long *map = malloc(words * sizeof(*map));

	if (!map)
		die("malloc");
	memset(map, 0xff, words * sizeof(*map));
	e->cfg.kvm_userfault_bitmap = map;
	return map;
}

/* What KVM does before it maps a page: an acquire load of its bit. */
static bool userfault_bit(struct env *e, size_t n)
{
	return __atomic_load_n(&e->cfg.kvm_userfault_bitmap[n / BITS_PER_WORD],
			       __ATOMIC_ACQUIRE) & (1UL << (n % BITS_PER_WORD));
}

/*
 * Is page @n in the guest_memfd, written? mincore() on a shared mapping
 * reports the page cache's up-to-date folios, without faulting.
 */
static bool gmem_has_page(struct env *e, size_t n)
{
	unsigned char vec;

	if (mincore(e->cfg.area + n * page_size, page_size, &vec))
		die("mincore");
	return vec & 1;
}

struct vcpu {
	struct env *e;
	size_t first, end;
	bool reverse;
	unsigned long exits, errors;
	size_t bad_page;
	int err;
};

/* A vCPU walking memory: each page whose bit is set is an exit. */
static void *vcpu_walk(void *arg)
{
	struct vcpu *v = arg;
	struct restore_vcpu *rv = restore_vcpu_attach(v->e->r);

	if (!rv) {
		v->errors++;
		v->err = errno;
		return NULL;
	}
	for (size_t i = v->first; i < v->end; i++) {
		size_t n = v->reverse ? v->end - 1 - (i - v->first) : i;

		if (!userfault_bit(v->e, n))
			continue;
		v->exits++;
		if (restore_vcpu_fault(rv, n * page_size) || userfault_bit(v->e, n)) {
			if (!v->errors++) {
				v->bad_page = n;
				v->err = errno;
			}
		}
	}
	restore_vcpu_detach(rv);
	return NULL;
}

struct bit_checker {
	struct env *e;
	atomic_bool stop;
	unsigned long checks, bad;
	size_t bad_page;
};

/* A clear bit must mean the page is there: KVM maps it from the file. */
static void *check_bits(void *arg)
{
	struct bit_checker *c = arg;

	while (!atomic_load(&c->stop)) {
		for (size_t n = 0; n < c->e->nr; n++) {
			if (userfault_bit(c->e, n))
				continue;
			c->checks++;
			if (!gmem_has_page(c->e, n) && !c->bad++)
				c->bad_page = n;
		}
	}
	return NULL;
}

static void t_vcpu_faults(const struct conf *c)
{
	struct bit_checker bc = { 0 };
	struct vcpu v[2] = { 0 };
	pthread_t tv[2], tc, tw;
	struct walker w;
	struct env e;
	size_t set = 0;

	env_init(&e, c, NR_PAGES, 0);
	env_userfault(&e);
	env_start(&e);
	bc.e = &e;
	tc = spawn(check_bits, &bc);
	for (int i = 0; i < 2; i++) {
		v[i] = (struct vcpu){ &e, 0, NR_PAGES, i == 1 };
		tv[i] = spawn(vcpu_walk, &v[i]);
	}
	/* The VMM's own accesses, through the mapping, every 8th page. */
	w = (struct walker){ &e, NR_PAGES / 2, NR_PAGES, false };
	tw = spawn(walk, &w);
	for (int i = 0; i < 2; i++)
		pthread_join(tv[i], NULL);
	pthread_join(tw, NULL);
	atomic_store(&bc.stop, true);
	pthread_join(tc, NULL);
	for (int i = 0; i < 2; i++)
		CHECK(!v[i].errors, "vCPU %d: %lu exits failed or left the bit set, first on page %zu (%s)",
		      i, v[i].errors, v[i].bad_page, strerror(v[i].err));
	CHECK(!bc.bad, "%lu times a clear bit had no page in the guest_memfd (first: page %zu, of %lu checks)",
	      bc.bad, bc.bad_page, bc.checks);
	for (size_t n = 0; n < NR_PAGES; n++)
		set += userfault_bit(&e, n);
	CHECK(!set, "%zu bits still set after both vCPUs walked all memory", set);
	env_stop(&e);
	CHECK(e.st.pages == NR_PAGES, "%lu pages written from the snapshot, not %d",
	      e.st.pages, NR_PAGES);
	CHECK(e.st.vcpu_faults == v[0].exits + v[1].exits,
	      "stats count %lu vCPU faults, the vCPUs %lu", e.st.vcpu_faults,
	      v[0].exits + v[1].exits);
	expect_pages(&e, 0, NR_PAGES, false, "after the vCPUs' walks");
}

/* A vCPU exits on a page a handler is reading: it waits, nothing is read twice. */
static void t_vcpu_busy(const struct conf *c)
{
	struct vcpu v = { 0 };
	struct toucher t1;
	struct env e;
	pthread_t tv;

	env_init(&e, c, NR_PAGES, 0);
	env_userfault(&e);
	env_start(&e);
	touch_start(&t1, &e, HELD_PAGE);
	sleep_ms(60);		/* a handler holds it, reading the snapshot */
	CHECK(userfault_bit(&e, HELD_PAGE), "the bit was cleared before the page was written");
	v = (struct vcpu){ &e, HELD_PAGE, HELD_PAGE + 1, false };
	tv = spawn(vcpu_walk, &v);
	pthread_join(tv, NULL);
	touch_join(&t1);
	check_touch(&t1);
	CHECK(!v.errors, "the vCPU's exit failed or left the bit set (%s)", strerror(v.err));
	CHECK(gmem_has_page(&e, HELD_PAGE), "the page is not in the guest_memfd after the exit");
	env_stop(&e);
	CHECK(e.st.vcpu_waits == 1, "%lu vCPU waits, not 1", e.st.vcpu_waits);
	CHECK(e.st.reads == 1, "%lu snapshot reads for one window, not 1", e.st.reads);
	expect_pages(&e, HELD_PAGE, HELD_PAGE + 1, false, "the page both wanted");
}

static void t_vcpu_discarded(const struct conf *c)
{
	struct vcpu v;
	struct env e;
	pthread_t tv;

	env_init(&e, c, NR_PAGES, 0);
	env_userfault(&e);
	env_start(&e);
	remove_pages(&e, 0, 16);	/* the guest gave them back */
	if (restore_discarded(e.r, 16 * page_size, 16 * page_size) ||
	    fallocate(e.cfg.gmem, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      16 * page_size, 16 * page_size))
		die("discarding");
	for (size_t n = 0; n < 32; n++)
		CHECK(!userfault_bit(&e, n), "discarded page %zu keeps its bit", n);
	CHECK(userfault_bit(&e, 32), "page 32's bit was cleared, nothing wrote it");
	v = (struct vcpu){ &e, 0, 64, false };
	tv = spawn(vcpu_walk, &v);
	pthread_join(tv, NULL);
	CHECK(!v.errors, "an exit failed or left the bit set, page %zu (%s)", v.bad_page,
	      strerror(v.err));
	CHECK(v.exits == 32 / c->window, "%lu exits, not %u (pages 32-63, window %u)",
	      v.exits, 32 / c->window, c->window);
	env_stop(&e);
	expect_pages(&e, 0, 32, true, "discarded pages");
	expect_pages(&e, 32, 64, false, "pages the vCPU restored");
}

#define CUT (NR_PAGES / 2)	/* the snapshot ends here, mid-restore */

static void t_vcpu_poison(const struct conf *c)
{
	struct toucher t;
	struct restore_vcpu *rv;
	struct env e;
	int ret, err;

	env_init(&e, c, NR_PAGES, 0);
	env_userfault(&e);
	e.cfg.unreadable = RESTORE_UNREADABLE_POISON;
	env_start(&e);
	catch_fault_signal(SIGBUS);
	rv = restore_vcpu_attach(e.r);
	if (!rv)
		die("restore_vcpu_attach");
	CHECK(!restore_vcpu_fault(rv, 0), "a vCPU exit before the cut failed: %s",
	      strerror(errno));
	if (ftruncate(e.cfg.snapshot, CUT * page_size))
		die("ftruncate");
	errno = 0;
	ret = restore_vcpu_fault(rv, (CUT + 8) * page_size);
	err = errno;
	CHECK(ret == -1 && err == EHWPOISON,
	      "a vCPU exit past the cut returned %d (%s), not EHWPOISON", ret, strerror(err));
	CHECK(userfault_bit(&e, CUT + 8), "the poisoned page's bit was cleared");
	ret = restore_vcpu_fault(rv, (CUT + 8) * page_size);
	CHECK(ret == -1 && errno == EHWPOISON, "the second exit on it returned %d (%s)",
	      ret, strerror(errno));
	CHECK(!restore_vcpu_fault(rv, (CUT - 1) * page_size),
	      "the last page before the cut failed: %s", strerror(errno));
	restore_vcpu_detach(rv);

	touch_start(&t, &e, CUT + 40);
	touch_join(&t);
	CHECK(t.sigbus && t.code == BUS_MCEERR_AR,
	      "a thread touching a page past the cut got %s (si_code %d), not SIGBUS BUS_MCEERR_AR",
	      t.sigbus ? "SIGBUS" : "no signal", t.code);
	ret = restore_finish(e.r, &e.st);
	err = errno;
	e.r = NULL;
	env_close_uffd(&e);
	CHECK(ret == -1 && err == EIO, "restore_finish() returned %d (%s), not EIO",
	      ret, strerror(err));
	CHECK(e.st.poisoned == NR_PAGES - CUT, "%lu pages poisoned, not the %d past the cut",
	      e.st.poisoned, NR_PAGES - CUT);
	expect_pages(&e, 0, CUT, false, "pages before the cut");
}

static void t_vcpu_api(const struct conf *c)
{
	struct restore_vcpu *rv;
	struct env e;

	env_init(&e, c, NR_PAGES, 0);
	env_start(&e);
	errno = 0;
	rv = restore_vcpu_attach(e.r);
	CHECK(!rv && errno == EINVAL, "restore_vcpu_attach() without a bitmap: %s",
	      rv ? "accepted" : strerror(errno));
	env_stop(&e);

	env_init(&e, c, NR_PAGES, 0);
	env_userfault(&e);
	e.cfg.unreadable = RESTORE_UNREADABLE_POISON + 1;
	errno = 0;
	e.r = restore_start(&e.cfg);
	CHECK(!e.r && errno == EINVAL, "an unknown unreadable setting: %s",
	      e.r ? "accepted" : strerror(errno));
	if (e.r)
		env_stop(&e);
	e.cfg.unreadable = RESTORE_UNREADABLE_FATAL;
	env_start(&e);
	rv = restore_vcpu_attach(e.r);
	if (!rv)
		die("restore_vcpu_attach");
	errno = 0;
	CHECK(restore_vcpu_fault(rv, 1) == -1 && errno == EINVAL,
	      "an unaligned offset: %s", strerror(errno));
	errno = 0;
	CHECK(restore_vcpu_fault(rv, NR_PAGES * page_size) == -1 && errno == EINVAL,
	      "an offset past the area: %s", strerror(errno));
	restore_vcpu_detach(rv);
	env_stop(&e);
}

/* --- the cases, their configurations, and running them --- */

struct tcase {
	const char *name;
	void (*fn)(const struct conf *c);
	struct conf c;
};

#define MAX_CASES 160
static struct tcase cases[MAX_CASES];
static int nr_cases;

static void add(const char *name, void (*fn)(const struct conf *), struct conf c)
{
	if (nr_cases == MAX_CASES) {
		printf("Bail out! too many cases\n");
		exit(1);
	}
	cases[nr_cases++] = (struct tcase){ name, fn, c };
}

static void add_cases(void)
{
	static const struct conf every[] = {
		{ "sync w1 t2", RESTORE_SYNC, 1, 0, 2, 0, false, 0, false },
		{ "sync w16 t2 ra4", RESTORE_SYNC, 16, 4, 2, 0, false, 0, false },
		{ "sync w1 t2 image", RESTORE_SYNC, 1, 0, 2, 0, true, 0, false },
		{ "sync w16 t3 ra2 d2ms", RESTORE_SYNC, 16, 2, 3, 2 * MS, false, 0, false },
		{ "uring w1", RESTORE_URING, 1, 0, 0, 0, false, 0, false },
		{ "uring w16 ra4", RESTORE_URING, 16, 4, 0, 0, false, 0, false },
		{ "uring w4 image", RESTORE_URING, 4, 0, 0, 0, true, 0, false },
		{ "uring w16 ra2 d2ms", RESTORE_URING, 16, 2, 0, 2 * MS, false, 0, false },
		{ "sync w16 t2 ra4 copy", RESTORE_SYNC, 16, 4, 2, 0, false, 0, true },
		{ "sync w1 t2 image copy", RESTORE_SYNC, 1, 0, 2, 0, true, 0, true },
		{ "uring w16 ra2 d2ms copy", RESTORE_URING, 16, 2, 0, 2 * MS, false, 0,
		  true },
	};
	/* A handler holds a page 200 ms; another thread reads events. */
	static const struct conf held[] = {
		{ "sync w1 t2 d200ms", RESTORE_SYNC, 1, 0, 2, 200 * MS, false, 0, false },
		{ "sync w16 t2 d200ms", RESTORE_SYNC, 16, 0, 2, 200 * MS, false, 0, false },
		{ "uring w1 d200ms", RESTORE_URING, 1, 0, 0, 200 * MS, false, 0, false },
		{ "uring w16 d200ms", RESTORE_URING, 16, 0, 0, 200 * MS, false, 0, false },
		{ "sync w16 t2 d200ms copy", RESTORE_SYNC, 16, 0, 2, 200 * MS, false, 0,
		  true },
		{ "uring w1 d200ms copy", RESTORE_URING, 1, 0, 0, 200 * MS, false, 0,
		  true },
	};
	/* One handler busy 200 ms: the next fault waits unserved. */
	static const struct conf one_busy[] = {
		{ "sync w1 t1 d200ms", RESTORE_SYNC, 1, 0, 1, 200 * MS, false, 0, false },
		{ "uring w1 d200ms", RESTORE_URING, 1, 0, 0, 200 * MS, false, 0, false },
	};
	static const struct conf split[] = {
		{ "sync w16 t2", RESTORE_SYNC, 16, 0, 2, 0, false, 0, false },
		{ "sync w16 t2 ra4 image", RESTORE_SYNC, 16, 4, 2, 0, true, 0, false },
		{ "uring w16", RESTORE_URING, 16, 0, 0, 0, false, 0, false },
		{ "uring w16 ra4 d2ms", RESTORE_URING, 16, 4, 0, 2 * MS, false, 0, false },
	};
	static const struct conf plain[] = {
		{ "sync w1 t2", RESTORE_SYNC, 1, 0, 2, 0, false, 0, false },
		{ "sync w16 t1", RESTORE_SYNC, 16, 0, 1, 0, false, 0, false },
		{ "uring w1", RESTORE_URING, 1, 0, 0, 0, false, 0, false },
		{ "uring w16", RESTORE_URING, 16, 0, 0, 0, false, 0, false },
	};
	static const struct conf finish[] = {
		{ "sync w16 t2", RESTORE_SYNC, 16, 0, 2, 0, false, 0, false },
		{ "sync w4 t1 image", RESTORE_SYNC, 4, 0, 1, 0, true, 0, false },
		{ "uring w1", RESTORE_URING, 1, 0, 0, 0, false, 0, false },
		{ "uring w16 ra2 d1ms", RESTORE_URING, 16, 2, 0, 1 * MS, false, 0, false },
	};
	static const struct conf readahead[] = {
		{ "sync w1 t1 ra64 d40ms", RESTORE_SYNC, 1, 64, 1, 40 * MS, false, 8, false },
		{ "sync w1 t2 ra64 d40ms", RESTORE_SYNC, 1, 64, 2, 40 * MS, false, 8, false },
		{ "uring w1 ra2048 d40ms", RESTORE_URING, 1, 2048, 0, 40 * MS, false, 16, false },
	};
	static const struct conf many_faults[] = {
		{ "uring w1 d20ms", RESTORE_URING, 1, 0, 0, 20 * MS, false, 0, false },
		{ "uring w4 d20ms", RESTORE_URING, 4, 0, 0, 20 * MS, false, 0, false },
		{ "sync w1 t4 d10ms", RESTORE_SYNC, 1, 0, 4, 10 * MS, false, 0, false },
	};
	static const struct conf many_readahead[] = {
		{ "uring w1 ra300 d5ms", RESTORE_URING, 1, 300, 0, 5 * MS, false, 0, false },
		{ "uring w1 ra511", RESTORE_URING, 1, 511, 0, 0, false, 0, false },
		{ "sync w1 t2 ra300 d1ms", RESTORE_SYNC, 1, 300, 2, 1 * MS, false, 0, false },
	};
	static const struct conf vcpus[] = {
		{ "sync w1 t1", RESTORE_SYNC, 1, 0, 1, 0, false, 0, false },
		{ "sync w16 t2 ra4 d1ms", RESTORE_SYNC, 16, 4, 2, 1 * MS, false, 0, false },
		{ "uring w1 image", RESTORE_URING, 1, 0, 0, 0, true, 0, false },
		{ "uring w16 ra2 d1ms", RESTORE_URING, 16, 2, 0, 1 * MS, false, 0, false },
		{ "sync w4 t2 copy", RESTORE_SYNC, 4, 0, 2, 0, false, 0, true },
	};
	static const struct conf vcpu_held[] = {
		{ "sync w1 t2 d200ms", RESTORE_SYNC, 1, 0, 2, 200 * MS, false, 0, false },
		{ "uring w16 d200ms", RESTORE_URING, 16, 0, 0, 200 * MS, false, 0, false },
	};
	static const struct conf poison[] = {
		{ "sync w1 t2", RESTORE_SYNC, 1, 0, 2, 0, false, 0, false },
		{ "sync w16 t2 ra4", RESTORE_SYNC, 16, 4, 2, 0, false, 0, false },
		{ "uring w16 ra2", RESTORE_URING, 16, 2, 0, 0, false, 0, false },
		{ "uring w4 copy", RESTORE_URING, 4, 0, 0, 0, false, 0, true },
	};
	static const struct { const char *name; int arg; } configs[] = {
		{ "config-valid", CFG_VALID },
		{ "config-prefetch-max", CFG_PREFETCH_MAX },
		{ "config-window-max", CFG_WINDOW_MAX },
		{ "config-threads-max", CFG_THREADS_MAX },
		{ "config-size-0", CFG_SIZE_0 },
		{ "config-size-unaligned", CFG_SIZE_UNALIGNED },
		{ "config-image-short", CFG_IMAGE_SHORT },
		{ "config-snapshot-short", CFG_SNAPSHOT_SHORT },
		{ "config-snapshot-offset", CFG_SNAPSHOT_OFFSET },
	};
#define EACH(name, fn, confs) \
	for (size_t i = 0; i < sizeof(confs) / sizeof(confs[0]); i++) \
		add(name, fn, confs[i])

	EACH("duplicates", t_duplicates, every);
	EACH("eexist", t_eexist, every);
	EACH("remove", t_remove, every);
	EACH("unmap", t_unmap, every);
	EACH("churn", t_churn, every);
	EACH("vma-split", t_vma_split, split);
	EACH("busy-remove-write", t_busy_remove_write, held);
	EACH("busy-remove-twice", t_busy_remove_twice, held);
	EACH("unmap-pending", t_unmap_pending, one_busy);
	EACH("stop-with-absent", t_stop_with_absent, one_busy);
	EACH("demand-before-readahead", t_demand_before_readahead, readahead);
	EACH("pending-before-start", t_pending_before_start, plain);
	EACH("blocking-uffd", t_blocking_uffd, plain);
	EACH("many-runs-faults", t_many_runs_faults, many_faults);
	EACH("many-runs-readahead", t_many_runs_readahead, many_readahead);
	EACH("finish", t_finish, finish);
	EACH("vmm-populated", t_vmm_populated, plain);
	EACH("vmm-discarded", t_vmm_discarded, plain);
	EACH("vcpu-faults", t_vcpu_faults, vcpus);
	EACH("vcpu-busy", t_vcpu_busy, vcpu_held);
	EACH("vcpu-discarded", t_vcpu_discarded, plain);
	EACH("vcpu-poison", t_vcpu_poison, poison);
	add("vcpu-api", t_vcpu_api, plain[0]);
	add("range-validation", t_range_validation, plain[0]);
	for (size_t i = 0; i < sizeof(configs) / sizeof(configs[0]); i++) {
		struct conf c = { "sync", RESTORE_SYNC, 1, 0, 1, 0, false, configs[i].arg, false };

		if (configs[i].arg == CFG_IMAGE_SHORT) {
			c.name = "sync image";
			c.image = true;
		}

		add(configs[i].name, t_config, c);
	}
}

static bool selected(const struct tcase *t, int argc, char **argv)
{
	char full[128];

	if (argc < 2)
		return true;
	snprintf(full, sizeof(full), "%s (%s)", t->name, t->c.name);
	for (int i = 1; i < argc; i++)
		if (strstr(full, argv[i]))
			return true;
	return false;
}

/* Can this kernel register a guest_memfd mapping with userfaultfd? */
static void check_kernel(void)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	const char *why;
	int ret = gmem_vm_open(&vm, &why), gmem, uffd;
	char *area;

	if (ret > 0) {
		printf("1..0 # SKIP %s\n", why);
		exit(SKIP);
	}
	if (ret < 0) {
		printf("Bail out! %s: %s\n", why, strerror(errno));
		exit(1);
	}
	gmem = gmem_vm_create(&vm, page_size);
	area = gmem < 0 ? MAP_FAILED :
	       mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_SHARED, gmem, 0);
	uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (area == MAP_FAILED || uffd < 0 || ioctl(uffd, UFFDIO_API, &api)) {
		printf("Bail out! guest_memfd or userfaultfd: %s\n", strerror(errno));
		exit(1);
	}
	reg.range.start = (unsigned long)area;
	reg.range.len = page_size;
	if (ioctl(uffd, UFFDIO_REGISTER, &reg)) {
		if (errno == EINVAL) {
			printf("1..0 # SKIP userfaultfd on guest_memfd is not supported\n");
			exit(SKIP);
		}
		printf("Bail out! UFFDIO_REGISTER: %s\n", strerror(errno));
		exit(1);
	}
	close(uffd);
	munmap(area, page_size);
	close(gmem);
	close(vm.vm);
	close(vm.kvm);
}

/* Run one case in a child, time-boxed; print its TAP line. */
static bool run_case(int nr, const struct tcase *t, unsigned int time_box)
{
	char why[VERDICT_SIZE];
	int status;
	int64_t t0 = now_ns();
	pid_t pid;

	verdict[0] = 0;
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		printf("Bail out! fork: %s\n", strerror(errno));
		exit(1);
	}
	if (!pid) {
		const char *vwhy;

		alarm(time_box);	/* SIGALRM kills the child: a hang fails */
		if (gmem_vm_open(&vm, &vwhy)) {
			fail("%s: %s", vwhy, strerror(errno));
			_exit(2);
		}
		t->fn(&t->c);
		fflush(stdout);
		_exit(nr_check_failed ? 1 : 0);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			printf("Bail out! waitpid: %s\n", strerror(errno));
			exit(1);
		}
	snprintf(why, sizeof(why), "%s", verdict);
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
		snprintf(why, sizeof(why), "timed out after %u s (a thread never woken?)%s%s",
			 time_box, verdict[0] ? "; first: " : "", verdict);
	else if (WIFSIGNALED(status))
		snprintf(why, sizeof(why), "killed by signal %d (%s)%s%s",
			 WTERMSIG(status), strsignal(WTERMSIG(status)),
			 verdict[0] ? "; first: " : "", verdict);
	else if (WEXITSTATUS(status) && !why[0])
		snprintf(why, sizeof(why), "exited with %d", WEXITSTATUS(status));
	else if (!WEXITSTATUS(status))
		why[0] = 0;
	printf("%sok %d %s (%s) %lld ms%s%s\n", why[0] ? "not " : "", nr, t->name,
	       t->c.name, (long long)((now_ns() - t0) / 1000000),
	       why[0] ? " # " : "", why);
	return !why[0];
}

int main(int argc, char **argv)
{
	int nr_selected = 0, nr = 0, nr_failed = 0;
	unsigned int time_box = TIME_BOX;
	int64_t t0 = now_ns();

	setvbuf(stdout, NULL, _IOLBF, 0);
	page_size = sysconf(_SC_PAGESIZE);
	verdict = mmap(NULL, VERDICT_SIZE, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (verdict == MAP_FAILED) {
		printf("Bail out! mmap: %s\n", strerror(errno));
		return 1;
	}
	check_kernel();
	add_cases();
	for (int i = 0; i < nr_cases; i++)
		nr_selected += selected(&cases[i], argc, argv);
	printf("TAP version 13\n1..%d\n", nr_selected);
	if (getenv("GMEM_RESTORE_TEST_TIME_BOX"))
		time_box = atoi(getenv("GMEM_RESTORE_TEST_TIME_BOX"));
	for (int i = 0; i < nr_cases; i++) {
		if (!selected(&cases[i], argc, argv) ||
		    run_case(++nr, &cases[i], time_box))
			continue;
		nr_failed++;
		if (getenv("GMEM_RESTORE_TEST_FAIL_FAST")) {
			printf("Bail out! stopping at the first failure\n");
			return 1;
		}
	}
	printf("# %d of %d failed (%lld s)\n", nr_failed, nr,
	       (long long)((now_ns() - t0) / 1000000000));
	return nr_failed ? 1 : 0;
}

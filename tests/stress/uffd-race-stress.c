// SPDX-License-Identifier: GPL-2.0
/*
 * uffd-race-stress: randomized, multi-threaded userfaultfd stress on shmem
 * (memfd) and guest_memfd mappings, checked against a per-page data model.
 *
 * Usage: uffd-race-stress [shmem|guest_memfd|all] [-t SECONDS] [-s SEED]
 *                         [-m missing|minor|missing+minor|all] [-p PAGES]
 *                         [-W WATCHDOG_SECONDS] [-r READERS] [-u MUTATORS]
 *
 * Exit status: 0 pass, 1 failure (model violation, hang or unexpected
 * error), 4 skip (kselftest: this kernel cannot do it, with the reason).
 *
 * The model
 * ---------
 * Every page p has an authoritative "source" version (post-copy: what the
 * source VM holds), state[p].  Version v of page p is 512 words, each
 * encoding a magic byte, p, the word's slot and v, so any word says whose
 * it is.  Registered for MISSING, a hole is filled by the handler with the
 * page's current version; a guest write (through the registered mapping)
 * makes version v + 1; pwrite() into the file makes v + 1 where it writes
 * (guest_memfd is populate-once: EEXIST and short counts write nothing past
 * the first populated page); PUNCH_HOLE and MADV_REMOVE change nothing the
 * model can see when MISSING is registered (the next access raises MISSING
 * and gets the current version back).  Registered for MINOR only, nothing
 * answers a hole, so the kernel legitimately fills it with zeroes: there a
 * punch makes the page's state "zero".
 *
 * Mutators of one page are serialized by its mutex (mlock); each one opens
 * a seqcount window (seq odd while it runs) and records its kind (may tear,
 * may zero) in a small per-page ring.  Readers take no page lock: they
 * note seq and state, copy the page through the registered mapping, note
 * seq and state again.  With no mutation in between, the page must be
 * exactly the noted version.  Otherwise any version from the first noted
 * one up to the last (+1 if a mutation is still running) is allowed, mixed
 * only if an overlapping mutation may tear (guest writes, shmem pwrite over
 * data), zero only if the state was or may have become zero.
 *
 * What keeps that exact: the handler reads a page's state and installs it
 * under a second per-page mutex (plock), which every mutator that changes
 * the state or makes a hole also holds while it does.  So a handler never
 * installs a version older than the current one (a message read before a
 * punch is answered after it with the new state), and a guest write that
 * faults can be answered while its writer holds only mlock.  Lock order:
 * mlock, then the chunk's rwlock (read), then plock; handlers take plock
 * only and never touch the registered mapping.
 *
 * Remapping (mmap MAP_FIXED over the chunk, munmap + mmap, mremap away and
 * back, or UFFDIO_UNREGISTER + REGISTER) takes the chunk's rwlock for
 * writing: a new VMA is unregistered until UFFDIO_REGISTER, and a fault in
 * that gap would legitimately fill a hole with zeroes.  Every access through
 * the mapping holds it for reading.
 *
 * fork(): without UFFD_FEATURE_EVENT_FORK the child's copy of the mapping is
 * not registered, so a child reading a hole would make the kernel fill the
 * shared file with zeroes, legitimately, and the parent would then read
 * them.  A child therefore reads only pages the parent populated (touched)
 * and keeps locked until the child is gone; it must see exactly their
 * current versions.
 *
 * What is flagged: a ZERO page nobody wrote (a lost MISSING fault: the
 * kernel filled a hole behind the handler's back), a TORN page (mixed
 * versions, or data mixed with zeroes), a STALE page (older than allowed),
 * a NEWER one, a page of the WRONG INDEX (another page's or garbage), a
 * forked child seeing anything but the current version, and a thread that
 * stays inside one access (a fault) for more than the watchdog's time while
 * no handler is working on its page: a fault nobody woke.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
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

#include "gmem-vm.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define PROG		"uffd-race-stress"
#define RING		16		/* mutations remembered per page */
#define CHUNK_PAGES	16		/* pages per remap unit */
#define NHOT		4		/* pages half the accesses go to */
#define MAX_THREADS	32
#define FORK_PAGES	4
#define MAGIC		0xa5ULL
#define VER_MASK	0x7fffffU	/* 23 bits of version in a word */
#define ZERO_STATE	0x80000000U	/* state flag: the page reads as zeroes */

#define VER(st)		((st) & ~ZERO_STATE)

#define __noreturn	__attribute__((noreturn))
#define __printf(a, b)	__attribute__((format(printf, a, b)))
/* One access to the mapping, as the code says: never merged or elided. */
#define READ_ONCE(x)	(*(const volatile typeof(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile typeof(x) *)&(x) = (v))

/* What a mutation may do to the content while it runs. */
#define K_TEAR		0x1		/* mix old and new version */
#define K_ZERO		0x2		/* make the page read as zeroes */

enum mem_type { MEM_SHMEM, MEM_GMEM };

enum mode {
	MODE_MISSING = 1,
	MODE_MINOR = 2,
	MODE_BOTH = 3,
};

enum op {
	OP_READ,
	OP_PROBE,
	OP_WRITE,
	OP_PWRITE,
	OP_PUNCH,
	OP_REMOVE,
	OP_ZAPPUNCH,
	OP_DONTNEED,
	OP_REMAP,
	OP_FORK,
	OP_FORK_WAIT,
	OP_MISSING,
	OP_MINOR,
	OP_VERIFY,
	NR_OPS,
};

static const char *const op_name[NR_OPS] = {
	[OP_READ] = "read",
	[OP_PROBE] = "probe (one word, again and again)",
	[OP_WRITE] = "guest write",
	[OP_PWRITE] = "pwrite",
	[OP_PUNCH] = "PUNCH_HOLE",
	[OP_REMOVE] = "MADV_REMOVE",
	[OP_ZAPPUNCH] = "pwrite+DONTNEED+PUNCH_HOLE",
	[OP_DONTNEED] = "MADV_DONTNEED",
	[OP_REMAP] = "remap",
	[OP_FORK] = "fork (touch)",
	[OP_FORK_WAIT] = "fork (child reads)",
	[OP_MISSING] = "MISSING answer",
	[OP_MINOR] = "MINOR answer",
	[OP_VERIFY] = "final read",
};

enum stat_id {
	ST_READ, ST_PROBE, ST_WRITE, ST_PWRITE, ST_PWRITE_PAGES, ST_PWRITE_EEXIST,
	ST_PWRITE_SHORT, ST_PUNCH, ST_REMOVE, ST_ZAPPUNCH, ST_DONTNEED,
	ST_REMAP_FIXED, ST_REMAP_MUNMAP, ST_REMAP_MREMAP, ST_REMAP_REREG,
	ST_FORK, ST_FORK_PAGES, ST_MISSING, ST_MISSING_COPY,
	ST_MISSING_PWRITE, ST_MINOR, ST_EEXIST_WAKE, ST_HOLE_WAKE, ST_STALE,
	ST_VERIFY, NR_STATS,
};

struct page {
	pthread_mutex_t mlock;		/* serializes the page's mutators */
	pthread_mutex_t plock;		/* state changes and holes vs. fills */
	_Atomic uint32_t seq;		/* odd while a mutation runs */
	_Atomic uint32_t state;		/* version | ZERO_STATE */
	_Atomic uint32_t hist_op[RING];	/* mutation k: op << 8 | K_* */
	_Atomic uint32_t hist_st[RING];	/* mutation k: state after it */
	_Atomic int handling;		/* handler threads working on it */
};

/* What a forked child found, in memory shared with the parent. */
struct child_result {
	uint32_t bad;
	uint32_t page;
	uint32_t word;
	uint32_t nzero;
	uint64_t seen;
	uint64_t want;
};

struct thr {
	pthread_t pt;
	int idx;
	const char *role;
	uint64_t rng;
	pid_t tid;
	uint64_t *buf;			/* one page */
	uint64_t *buf2;			/* FORK_PAGES pages */
	struct child_result *child;	/* MAP_SHARED */
	/* what the watchdog sees */
	_Atomic uint64_t since;		/* ns; 0: not inside an access */
	_Atomic uint32_t wpage;
	_Atomic int wop;
	_Atomic uint64_t gen;
	_Atomic pid_t child_pid;
	uint64_t seen_gen;
	int strikes;
	uint64_t stats[NR_STATS];
	uint64_t op_n[NR_OPS], op_ns[NR_OPS];	/* -v: time per mutator op */
	void *(*fn)(void *arg);
};

/* Run parameters, fixed for the whole program. */
static struct {
	int types;			/* bit per enum mem_type */
	int modes;			/* 0: all, phases */
	unsigned int secs;
	uint64_t seed;
	unsigned int npages;
	unsigned int watchdog_s;
	unsigned int nreaders, nmutators, nhandlers;
	const char *type_arg, *mode_arg;
	int inject;			/* a handler bug, to show detection */
	bool verbose;
} opt = {
	.types = 3, .secs = 20, .npages = 256, .watchdog_s = 5,
	.nreaders = 2, .nmutators = 3, .nhandlers = 2,
	.type_arg = "all", .mode_arg = "all",
};

/* One phase: a memory type, a mode, a fresh file, region and userfaultfd. */
static struct {
	enum mem_type type;
	int mode;
	const char *type_name, *mode_name;
	int fd, uffd;
	char *base;			/* the registered region */
	char *spare;			/* PROT_NONE: where mremap moves chunks */
	size_t ps, size;
	unsigned int npages, nchunks;
	struct page *pages;
	pthread_rwlock_t *chunk;
	unsigned int hot[NHOT];
	bool can_continue;		/* advertised for this registration */
	atomic_bool no_remove;		/* MADV_REMOVE unsupported here */
	uint64_t start_ns;
	atomic_bool go, stop_workers, stop_handlers;
	_Atomic int workers_left, handlers_left;
	struct thr *thr[MAX_THREADS];
	unsigned int nthr;
	_Atomic int64_t dropped;	/* -i nowake: the page left unanswered */
} R;

/*
 * -i KIND: make the handler misbehave 0.5 s into each phase, so that each
 * kind of report can be seen to fire: install zeroes, an older version,
 * another page's content or half of an older version (MISSING answers), or
 * stop answering the faults of one page (any answer).
 */
enum inject { INJ_NONE, INJ_ZERO, INJ_STALE, INJ_WRONG, INJ_TORN, INJ_NOWAKE };

static const char *const inject_name[] = {
	[INJ_ZERO] = "zero", [INJ_STALE] = "stale", [INJ_WRONG] = "wrong",
	[INJ_TORN] = "torn", [INJ_NOWAKE] = "nowake",
};

static struct gmem_vm vm;
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static double run_secs(void)
{
	return (now_ns() - R.start_ns) / 1e9;
}

static uint64_t rnd(struct thr *t)
{
	/* xorshift64* */
	t->rng ^= t->rng >> 12;
	t->rng ^= t->rng << 25;
	t->rng ^= t->rng >> 27;
	return t->rng * 0x2545f4914f6cdd1dULL;
}

static unsigned int rnd_below(struct thr *t, unsigned int n)
{
	return (rnd(t) >> 32) % n;
}

static uint64_t mix_seed(uint64_t seed, uint64_t salt)
{
	uint64_t z = seed + salt * 0x9e3779b97f4a7c15ULL;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	z ^= z >> 31;
	return z ? z : 1;
}

static const char *mode_str(int mode)
{
	switch (mode) {
	case MODE_MISSING: return "MISSING";
	case MODE_MINOR: return "MINOR";
	default: return "MISSING|MINOR";
	}
}

static const char *mode_opt(int mode)
{
	switch (mode) {
	case MODE_MISSING: return "missing";
	case MODE_MINOR: return "minor";
	case MODE_BOTH: return "missing+minor";
	default: return "all";
	}
}

/* --- failure reports ------------------------------------------------------ */

static void report_begin(void)
{
	pthread_mutex_lock(&fail_lock);	/* never released: we exit */
	fflush(stdout);
}

static void __noreturn report_end(void)
{
	printf("  %s %s, seed %" PRIu64 ", %.2f s into the phase\n",
	       R.type_name ? R.type_name : "-",
	       R.mode ? mode_str(R.mode) : "-", opt.seed,
	       R.start_ns ? run_secs() : 0.0);
	printf("  replay (as far as thread timing allows): %s %s -t %u -s %" PRIu64
	       " -m %s -p %u%s%s\n", PROG, R.type_name ? R.type_name : opt.type_arg,
	       opt.secs, opt.seed, R.mode ? mode_opt(R.mode) : opt.mode_arg,
	       opt.npages, opt.inject ? " -i " : "",
	       opt.inject ? inject_name[opt.inject] : "");
	fflush(stdout);
	_exit(1);
}

static void __printf(1, 2) __noreturn
die(const char *fmt, ...)
{
	va_list ap;
	int err = errno;

	report_begin();
	printf("FAIL: error: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf(": %s\n", strerror(err));
	report_end();
}

static void __printf(1, 2) __noreturn
skip(const char *fmt, ...)
{
	va_list ap;

	printf("SKIP: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	exit(4);
}

static void print_history(unsigned int p)
{
	struct page *pg = &R.pages[p];
	uint32_t seq = atomic_load(&pg->seq), k, first, n;

	n = seq / 2 + (seq & 1);
	first = n > RING ? n - RING : 0;
	printf("  page %u: state now %s%u, seq %u; last mutations (oldest first):",
	       p, atomic_load(&pg->state) & ZERO_STATE ? "zero, " : "version ",
	       VER(atomic_load(&pg->state)), seq);
	if (n == first)
		printf(" none");
	for (k = first; k < n; k++) {
		uint32_t h = atomic_load(&pg->hist_op[k % RING]);
		uint32_t st = atomic_load(&pg->hist_st[k % RING]);

		printf("\n    #%u %s%s%s -> %s%u%s", k, op_name[h >> 8],
		       h & K_TEAR ? " (may tear)" : "",
		       h & K_ZERO ? " (may zero)" : "",
		       st & ZERO_STATE ? "zero " : "v", VER(st),
		       (seq & 1) && k == n - 1 ? " (running)" : "");
	}
	printf("\n");
}

static void fatal_signal(int sig, siginfo_t *si, void *uc)
{
	char msg[256];
	long off = (char *)si->si_addr - R.base;
	int n;

	(void)uc;
	if (R.base && off >= 0 && (size_t)off < R.size)
		n = snprintf(msg, sizeof(msg),
			     "FAIL: %s on page %lu of the registered %s mapping (addr %p, %s %s, seed %" PRIu64 ")\n",
			     strsignal(sig), off / (long)R.ps, R.type_name,
			     si->si_addr, R.type_name, mode_str(R.mode), opt.seed);
	else
		n = snprintf(msg, sizeof(msg), "FAIL: %s at %p (seed %" PRIu64 ")\n",
			     strsignal(sig), si->si_addr, opt.seed);
	if (write(STDOUT_FILENO, msg, n) < 0)
		_exit(1);
	_exit(1);
}

/* --- page content ----------------------------------------------------------- */

static inline uint64_t word(unsigned int p, uint32_t v, unsigned int i)
{
	return MAGIC << 56 | (uint64_t)(p & 0xffffff) << 32 |
	       (uint64_t)(i & 0x1ff) << 23 | (v & VER_MASK);
}

static void fill(uint64_t *buf, unsigned int p, uint32_t st)
{
	unsigned int i, words = R.ps / 8;

	if (st & ZERO_STATE) {
		memset(buf, 0, R.ps);
		return;
	}
	for (i = 0; i < words; i++)
		buf[i] = word(p, VER(st), i);
}

static char *page_addr(unsigned int p)
{
	return R.base + (size_t)p * R.ps;
}

static pthread_rwlock_t *chunk_of(unsigned int p)
{
	return &R.chunk[p / CHUNK_PAGES];
}

/* --- the watchdog's view of a thread ------------------------------------------ */

static void busy(struct thr *t, unsigned int p, enum op op)
{
	atomic_store(&t->wpage, p);
	atomic_store(&t->wop, op);
	atomic_fetch_add(&t->gen, 1);
	atomic_store(&t->since, now_ns());
}

static void idle(struct thr *t)
{
	atomic_store(&t->since, 0);
}

/* --- mutations ------------------------------------------------------------------ */

/* With mlock held: open page @pg's window for mutation (op, flags). */
static uint32_t mut_begin(struct page *pg, enum op op, int flags)
{
	uint32_t seq = atomic_load(&pg->seq);
	uint32_t k = seq / 2;

	atomic_store(&pg->hist_op[k % RING], (uint32_t)op << 8 | flags);
	atomic_store(&pg->hist_st[k % RING], atomic_load(&pg->state));
	atomic_store(&pg->seq, seq + 1);
	return k;
}

/* With mlock and plock held: the new state, and close the window. */
static void mut_end(struct page *pg, uint32_t k, uint32_t st)
{
	atomic_store(&pg->hist_st[k % RING], st);
	atomic_store(&pg->state, st);
	atomic_store(&pg->seq, 2 * k + 2);
}

/* --- the reader's check --------------------------------------------------------- */

struct window {
	uint32_t s1, s2, st1, st2;
	uint32_t lo, hi;
	bool tear, zero, overflow, stable;
};

static void window_close(struct page *pg, struct window *w)
{
	uint32_t k1 = w->s1 / 2, k2, k, s3;

	w->lo = VER(w->st1);
	w->hi = VER(w->st2) + (w->s2 & 1);
	w->zero = (w->st1 | w->st2) & ZERO_STATE;
	w->tear = false;
	w->overflow = false;
	w->stable = w->s1 == w->s2 && !(w->s1 & 1);
	if (w->stable)
		return;
	k2 = (w->s2 & 1) ? w->s2 / 2 : w->s2 / 2 - 1;
	for (k = k1; k <= k2 && k - k1 < RING; k++) {
		uint32_t h = atomic_load(&pg->hist_op[k % RING]);

		w->tear |= h & K_TEAR;
		w->zero |= h & K_ZERO;
	}
	s3 = atomic_load(&pg->seq);
	if (k2 - k1 >= RING || s3 >= 2 * (k1 + RING)) {
		/* The ring moved on: be lenient, the window was huge. */
		w->overflow = true;
		w->tear = true;
		w->zero |= !(R.mode & MODE_MISSING);
	}
}

enum verdict { V_OK, V_ZERO, V_WRONG, V_TORN, V_STALE, V_NEWER };

struct scan {
	unsigned int nzero, nwrong, nmixed, first_wrong, first_mixed;
	unsigned int first_backwards;	/* a word older than the one before */
	uint32_t vmin, vmax;
};

/*
 * Whether every byte of @w is the same byte of an allowed version of word
 * @i (or zero, if zeroes are allowed): what a reader sees while the kernel
 * copies a page in with byte moves (pwrite over data the reader maps).
 */
static bool byte_mix(uint64_t w, unsigned int p, unsigned int i,
		     const struct window *win)
{
	unsigned int b;
	uint32_t v;

	if (win->hi - win->lo >= 64)
		return true;	/* a huge window: anything goes */
	for (b = 0; b < 8; b++) {
		uint8_t x = w >> (8 * b);
		bool ok = win->zero && !x;

		for (v = win->lo; !ok && v <= win->hi; v++)
			ok = x == (uint8_t)(word(p, v, i) >> (8 * b));
		if (!ok)
			return false;
	}
	return true;
}

static void scan_page(const uint64_t *buf, unsigned int p,
		      const struct window *win, struct scan *s)
{
	unsigned int i, words = R.ps / 8;
	uint32_t prev = 0;

	memset(s, 0, sizeof(*s));
	s->vmin = UINT32_MAX;
	s->first_wrong = s->first_mixed = s->first_backwards = words;
	for (i = 0; i < words; i++) {
		uint64_t w = buf[i];
		uint32_t v = w & VER_MASK;

		if (!w) {
			/* Zeroes come before any version, in word order. */
			if (prev && s->first_backwards == words)
				s->first_backwards = i;
			s->nzero++;
			continue;
		}
		if (w >> 56 != MAGIC || ((w >> 32) & 0xffffff) != p ||
		    ((w >> 23) & 0x1ff) != (i & 0x1ff)) {
			if (byte_mix(w, p, i, win)) {
				if (!s->nmixed++)
					s->first_mixed = i;
			} else if (!s->nwrong++) {
				s->first_wrong = i;
			}
			continue;
		}
		if (v < prev && s->first_backwards == words)
			s->first_backwards = i;
		prev = v;
		if (v < s->vmin)
			s->vmin = v;
		if (v > s->vmax)
			s->vmax = v;
	}
}

static enum verdict judge(const struct scan *s, const struct window *w)
{
	unsigned int words = R.ps / 8;

	if (s->nzero == words)
		return w->zero ? V_OK : V_ZERO;
	if (s->nwrong)
		return V_WRONG;
	if (s->nzero && !w->zero)
		return V_TORN;
	if (!w->tear) {
		/*
		 * No mutation that may tear overlapped the read, so the page
		 * changed only as a whole: the reader, copying in word order,
		 * may see old words then new ones (when the window is not
		 * stable), never the reverse, and never bytes of both.
		 */
		if (s->nmixed || s->first_backwards < words)
			return V_TORN;
		if (w->stable && (s->vmin != s->vmax || s->nzero))
			return V_TORN;
	}
	if (s->vmin < w->lo)
		return V_STALE;
	if (s->vmax > w->hi)
		return V_NEWER;
	return V_OK;
}

static const char *const verdict_name[] = {
	[V_OK] = "OK",
	[V_ZERO] = "ZERO page",
	[V_WRONG] = "WRONG INDEX",
	[V_TORN] = "TORN page",
	[V_STALE] = "STALE page",
	[V_NEWER] = "NEWER page",
};

static void print_words(const uint64_t *buf, unsigned int p)
{
	unsigned int i, words = R.ps / 8, shown = 0;
	uint64_t prev = ~0ULL;

	/* Runs of equal words, as "[first..last] value". */
	for (i = 0; i < words && shown < 12; ) {
		unsigned int j = i;

		while (j + 1 < words && ((buf[j + 1] ^ buf[i]) & ~(0x1ffULL << 23)) == 0 &&
		       buf[j + 1] && buf[i])
			j++;
		while (j + 1 < words && !buf[i] && !buf[j + 1])
			j++;
		if (buf[i] != prev || i == 0) {
			uint64_t w = buf[i];

			if (!w)
				printf("    words %3u..%3u: 0\n", i, j);
			else
				printf("    words %3u..%3u: %#018" PRIx64 " (magic %#" PRIx64
				       ", page %" PRIu64 ", slot %" PRIu64 ", version %" PRIu64 ")\n",
				       i, j, w, w >> 56, (w >> 32) & 0xffffff,
				       (w >> 23) & 0x1ff, w & VER_MASK);
			shown++;
		}
		prev = buf[i];
		i = j + 1;
	}
	if (i < words)
		printf("    ... (more runs)\n");
	(void)p;
}

static void __noreturn
report_page(struct thr *t, unsigned int p, const uint64_t *buf,
	    const struct scan *s, const struct window *w, enum verdict v,
	    const char *who)
{
	report_begin();
	printf("FAIL: %s %s: %s: page %u (file offset %#zx) read by %s %d (%s)",
	       R.type_name, mode_str(R.mode), verdict_name[v], p, p * R.ps,
	       t->role, t->idx, who);
	switch (v) {
	case V_ZERO:
		printf(": all zeroes, which nobody wrote: %s\n",
		       R.mode & MODE_MISSING ?
		       "a lost MISSING fault (the kernel filled a hole behind the handler's back)" :
		       "the page was never zeroed in the model");
		break;
	case V_WRONG:
		printf(": %u words belong to another page or are garbage (first: word %u)\n",
		       s->nwrong, s->first_wrong);
		break;
	case V_TORN:
		printf(": mixed content: %u zero words, %u words mixed byte by byte (first: word %u), versions %u..%u",
		       s->nzero, s->nmixed, s->first_mixed,
		       s->vmin == UINT32_MAX ? 0 : s->vmin, s->vmax);
		if (s->first_backwards < R.ps / 8)
			printf(", word %u older than the one before it", s->first_backwards);
		printf("\n");
		break;
	case V_STALE:
		printf(": version %u is older than the model allows\n", s->vmin);
		break;
	default:
		printf(": version %u is newer than any the model made\n", s->vmax);
		break;
	}
	if (w->lo == w->hi)
		printf("  allowed: version %u", w->lo);
	else
		printf("  allowed: versions %u..%u", w->lo, w->hi);
	printf(", %s, %s (seq %u -> %u%s)\n",
	       w->tear ? "mixed versions allowed" : w->stable ? "no mix" :
	       "old words then new ones in word order",
	       w->zero ? "zeroes allowed" : "no zeroes",
	       w->s1, w->s2, w->stable ? ", no mutation overlapped the read" :
	       w->overflow ? ", many mutations overlapped" : "");
	printf("  seen:\n");
	print_words(buf, p);
	print_history(p);
	report_end();
}

/*
 * Read page @p through the registered mapping and check it; the caller holds
 * the chunk's lock for reading.
 */
static void read_check_locked(struct thr *t, unsigned int p, enum op op)
{
	struct page *pg = &R.pages[p];
	uint64_t *src = (uint64_t *)page_addr(p);
	unsigned int i, words = R.ps / 8;
	struct window w;
	struct scan s;
	enum verdict v;

	w.s1 = atomic_load(&pg->seq);
	w.st1 = atomic_load(&pg->state);
	busy(t, p, op);
	for (i = 0; i < words; i++)
		t->buf[i] = READ_ONCE(src[i]);
	idle(t);
	atomic_thread_fence(memory_order_seq_cst);
	w.s2 = atomic_load(&pg->seq);
	w.st2 = atomic_load(&pg->state);

	window_close(pg, &w);
	scan_page(t->buf, p, &w, &s);
	v = judge(&s, &w);
	if (v != V_OK)
		report_page(t, p, t->buf, &s, &w, v, op_name[op]);
	t->stats[op == OP_VERIFY ? ST_VERIFY : ST_READ]++;
}

static void read_check(struct thr *t, unsigned int p, enum op op)
{
	pthread_rwlock_rdlock(chunk_of(p));
	read_check_locked(t, p, op);
	pthread_rwlock_unlock(chunk_of(p));
}

/*
 * With MISSING registered no word of any page is ever zero: every version
 * of every word has the magic byte, and a hole is answered, never zeroed.
 * So a reader may spin on one word, which keeps it faulting right when a
 * hole is punched under it (the race a lost MISSING fault needs), and
 * check only that.
 */
static void probe(struct thr *t, unsigned int p)
{
	struct page *pg = &R.pages[p];
	unsigned int i = rnd_below(t, R.ps / 8), n;
	uint64_t *src = (uint64_t *)page_addr(p) + i;
	uint64_t w = 0;
	struct window win;

	pthread_rwlock_rdlock(chunk_of(p));
	win.s1 = atomic_load(&pg->seq);
	win.st1 = atomic_load(&pg->state);
	busy(t, p, OP_PROBE);
	for (n = 0; n < 1024; n++) {
		w = READ_ONCE(*src);
		if (!w)
			break;
	}
	idle(t);
	atomic_thread_fence(memory_order_seq_cst);
	win.s2 = atomic_load(&pg->seq);
	win.st2 = atomic_load(&pg->state);
	pthread_rwlock_unlock(chunk_of(p));
	t->stats[ST_PROBE]++;
	if (w)
		return;

	window_close(pg, &win);
	report_begin();
	printf("FAIL: %s %s: ZERO page: page %u (file offset %#zx) word %u read as 0 by %s %d (%s, read %u of 1024): a lost MISSING fault (the kernel filled a hole behind the handler's back)\n",
	       R.type_name, mode_str(R.mode), p, p * R.ps, i, t->role,
	       t->idx, op_name[OP_PROBE], n + 1);
	printf("  allowed: with MISSING registered no word is ever zero; versions %u..%u (seq %u -> %u)\n",
	       win.lo, win.hi, win.s1, win.s2);
	printf("  the page, read again now:\n");
	pthread_rwlock_rdlock(chunk_of(p));
	memcpy(t->buf, (void *)page_addr(p), R.ps);
	pthread_rwlock_unlock(chunk_of(p));
	print_words(t->buf, p);
	print_history(p);
	report_end();
}

/* Threads start together, once all of them exist (see start_threads()). */
static void wait_go(struct thr *t)
{
	t->tid = gettid();
	while (!atomic_load(&R.go))
		sched_yield();
}

/* --- userfaultfd ---------------------------------------------------------------- */

static void uffd_wake(unsigned long addr)
{
	struct uffdio_range r = { .start = addr, .len = R.ps };

	if (ioctl(R.uffd, UFFDIO_WAKE, &r) && errno != ENOENT)
		die("UFFDIO_WAKE %#lx", addr);
}

/* 0 if mapped (and woken), else EEXIST, EFAULT (a hole) or ENOENT (no VMA). */
static int uffd_continue(unsigned long addr)
{
	struct uffdio_continue c;

	for (;;) {
		memset(&c, 0, sizeof(c));
		c.range.start = addr;
		c.range.len = R.ps;
		if (!ioctl(R.uffd, UFFDIO_CONTINUE, &c))
			return 0;
		if (errno == EAGAIN)
			continue;
		if (errno == EEXIST || errno == EFAULT || errno == ENOENT)
			return errno;
		die("UFFDIO_CONTINUE %#lx", addr);
	}
}

/* 0 if copied (and woken), else EEXIST or ENOENT. */
static int uffd_copy(unsigned long addr, const void *src)
{
	struct uffdio_copy c;

	for (;;) {
		memset(&c, 0, sizeof(c));
		c.dst = addr;
		c.src = (unsigned long)src;
		c.len = R.ps;
		if (!ioctl(R.uffd, UFFDIO_COPY, &c))
			return 0;
		if (errno == EAGAIN)
			continue;
		if (errno == EEXIST || errno == ENOENT)
			return errno;
		die("UFFDIO_COPY %#lx", addr);
	}
}

static bool shmem_hole(off_t off)
{
	off_t d = lseek(R.fd, off, SEEK_DATA);

	if (d < 0 && errno != ENXIO)
		die("lseek SEEK_DATA");
	return d != off;
}

static bool inject_now(enum inject kind)
{
	return opt.inject == (int)kind && run_secs() > 0.5;
}

/* -i nowake: whether to drop this message (every one for the chosen page). */
static bool inject_drop(unsigned int p)
{
	int64_t none = -1;

	if (!inject_now(INJ_NOWAKE))
		return false;
	atomic_compare_exchange_strong(&R.dropped, &none, p);
	return atomic_load(&R.dropped) == p;
}

/* -i zero|stale|wrong|torn: what a buggy handler would install instead. */
static void inject_content(uint64_t *buf, unsigned int p, uint32_t st)
{
	if (inject_now(INJ_ZERO))
		memset(buf, 0, R.ps);
	else if (inject_now(INJ_STALE) && VER(st) > 1)
		fill(buf, p, VER(st) - 1);
	else if (inject_now(INJ_WRONG))
		fill(buf, (p + 1) % R.npages, st);
	else if (inject_now(INJ_TORN) && VER(st) > 1)
		fill(buf, p, VER(st) - 1), buf[R.ps / 16] = word(p, VER(st), R.ps / 16);
}

/* MISSING: install the page's current state, under its plock. */
static void answer_missing(struct thr *t, unsigned int p, unsigned long addr)
{
	struct page *pg = &R.pages[p];
	off_t off = (off_t)p * R.ps;
	uint32_t st;
	int ret, tries;
	ssize_t n;

	if (!(R.mode & MODE_MISSING)) {
		report_begin();
		printf("FAIL: %s %s: a MISSING fault on page %u, which is registered for MINOR only\n",
		       R.type_name, mode_str(R.mode), p);
		report_end();
	}
	pthread_mutex_lock(&pg->plock);
	st = atomic_load(&pg->state);
	if (st & ZERO_STATE) {
		report_begin();
		printf("FAIL: internal: page %u in the zero state with MISSING registered\n", p);
		report_end();
	}
	fill(t->buf, p, st);
	inject_content(t->buf, p, st);
	if (R.type == MEM_SHMEM && !(R.can_continue && (rnd(t) & 1))) {
		t->stats[ST_MISSING_COPY]++;
		ret = uffd_copy(addr, t->buf);
	} else {
		t->stats[ST_MISSING_PWRITE]++;
		for (tries = 0;; tries++) {
			if (R.type == MEM_GMEM || shmem_hole(off)) {
				n = pwrite(R.fd, t->buf, R.ps, off);
				if (n < 0 && errno != EEXIST)
					die("pwrite page %u in the MISSING handler", p);
				if (n >= 0 && (size_t)n != R.ps) {
					report_begin();
					printf("FAIL: %s: pwrite of one page wrote %zd bytes\n",
					       R.type_name, n);
					report_end();
				}
			}
			ret = uffd_continue(addr);
			if (ret != EFAULT)
				break;
			/* Populated just now, and we hold plock: no hole can be made. */
			if (tries == 100) {
				report_begin();
				printf("FAIL: %s %s: UFFDIO_CONTINUE of page %u fails with EFAULT (a hole) right after pwrite populated it (100 tries)\n",
				       R.type_name, mode_str(R.mode), p);
				report_end();
			}
			usleep(100);
		}
	}
	pthread_mutex_unlock(&pg->plock);
	if (ret == EEXIST) {
		t->stats[ST_EEXIST_WAKE]++;
		uffd_wake(addr);
	} else if (ret == ENOENT) {
		t->stats[ST_STALE]++;
	}
	t->stats[ST_MISSING]++;
}

static void answer_minor(struct thr *t, unsigned long addr)
{
	int ret = uffd_continue(addr);

	if (ret == EEXIST) {
		t->stats[ST_EEXIST_WAKE]++;
		uffd_wake(addr);
	} else if (ret == EFAULT) {
		/* Punched since: the retried fault raises MISSING or zero-fills. */
		t->stats[ST_HOLE_WAKE]++;
		uffd_wake(addr);
	} else if (ret == ENOENT) {
		t->stats[ST_STALE]++;
	}
	t->stats[ST_MINOR]++;
}

static void *handler_main(void *arg)
{
	struct thr *t = arg;

	wait_go(t);
	while (!atomic_load(&R.stop_handlers)) {
		struct pollfd pfd = { .fd = R.uffd, .events = POLLIN };
		struct uffd_msg msg;
		unsigned long addr;
		unsigned int p;
		ssize_t n;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		n = read(R.uffd, &msg, sizeof(msg));
		if (n < 0 && errno == EAGAIN)
			continue;
		if (n != sizeof(msg))
			die("read userfaultfd (%zd)", n);
		if (msg.event != UFFD_EVENT_PAGEFAULT) {
			report_begin();
			printf("FAIL: unexpected userfaultfd event %#x (no events were asked for)\n",
			       msg.event);
			report_end();
		}
		addr = msg.arg.pagefault.address & ~(R.ps - 1);
		if (addr < (unsigned long)R.base ||
		    addr >= (unsigned long)R.base + R.size) {
			report_begin();
			printf("FAIL: a fault at %#llx, outside the registered region\n",
			       msg.arg.pagefault.address);
			report_end();
		}
		p = (addr - (unsigned long)R.base) / R.ps;
		if (inject_drop(p))
			continue;
		atomic_fetch_add(&R.pages[p].handling, 1);
		if (msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_MINOR) {
			busy(t, p, OP_MINOR);
			answer_minor(t, addr);
		} else {
			busy(t, p, OP_MISSING);
			answer_missing(t, p, addr);
		}
		idle(t);
		atomic_fetch_sub(&R.pages[p].handling, 1);
	}
	atomic_fetch_sub(&R.handlers_left, 1);
	return NULL;
}

static void uffd_register(char *addr, size_t len)
{
	struct uffdio_register reg = {
		.range = { .start = (unsigned long)addr, .len = len },
	};

	if (R.mode & MODE_MISSING)
		reg.mode |= UFFDIO_REGISTER_MODE_MISSING;
	if (R.mode & MODE_MINOR)
		reg.mode |= UFFDIO_REGISTER_MODE_MINOR;
	if (ioctl(R.uffd, UFFDIO_REGISTER, &reg))
		die("UFFDIO_REGISTER %p+%#zx", addr, len);
}

/* --- the mutators ----------------------------------------------------------------- */

/* A guest write: version + 1 through the registered mapping. */
static void op_write(struct thr *t, unsigned int p)
{
	struct page *pg = &R.pages[p];
	uint64_t *dst = (uint64_t *)page_addr(p);
	unsigned int i, words = R.ps / 8;
	uint32_t k, st, v;

	pthread_mutex_lock(&pg->mlock);
	st = atomic_load(&pg->state);
	v = VER(st) + 1;
	if (v > VER_MASK) {
		pthread_mutex_unlock(&pg->mlock);
		return;
	}
	pthread_rwlock_rdlock(chunk_of(p));
	k = mut_begin(pg, OP_WRITE, K_TEAR);
	busy(t, p, OP_WRITE);
	for (i = 0; i < words; i++)
		WRITE_ONCE(dst[i], word(p, v, i));
	idle(t);
	pthread_mutex_lock(&pg->plock);
	mut_end(pg, k, v);
	pthread_mutex_unlock(&pg->plock);
	pthread_rwlock_unlock(chunk_of(p));
	pthread_mutex_unlock(&pg->mlock);
	t->stats[ST_WRITE]++;
}

/*
 * pwrite() of new versions into 1..4 pages of the file.  guest_memfd is
 * populate-once: the pages up to the first populated one are written, the
 * rest keep their versions.  shmem overwrites, and a reader that has the
 * page mapped may see the copy half done: that may tear.
 */
static void op_pwrite(struct thr *t, unsigned int p)
{
	unsigned int n = 1 + rnd_below(t, 4), nw, i, done;
	uint32_t k[4], st[4];
	ssize_t ret;

	if (p + n > R.npages)
		n = R.npages - p;
	/* All mlocks, then all plocks, in page order. */
	for (i = 0; i < n; i++)
		pthread_mutex_lock(&R.pages[p + i].mlock);
	for (i = 0; i < n; i++)
		pthread_mutex_lock(&R.pages[p + i].plock);
	for (nw = 0; nw < n; nw++) {
		st[nw] = atomic_load(&R.pages[p + nw].state);
		if (VER(st[nw]) + 1 > VER_MASK)
			break;
	}
	for (i = 0; i < nw; i++) {
		k[i] = mut_begin(&R.pages[p + i], OP_PWRITE,
				 R.type == MEM_SHMEM ? K_TEAR : 0);
		fill((uint64_t *)((char *)t->buf2 + i * R.ps), p + i,
		     VER(st[i]) + 1);
	}
	if (nw) {
		busy(t, p, OP_PWRITE);
		ret = pwrite(R.fd, t->buf2, nw * R.ps, (off_t)p * R.ps);
		idle(t);
		if (ret < 0 && !(R.type == MEM_GMEM && errno == EEXIST))
			die("pwrite %u pages at page %u", nw, p);
		if (ret < 0) {
			done = 0;
			t->stats[ST_PWRITE_EEXIST]++;
		} else {
			if (ret % R.ps || !ret ||
			    (R.type == MEM_SHMEM && (size_t)ret != nw * R.ps)) {
				report_begin();
				printf("FAIL: %s: pwrite of %u pages at page %u returned %zd\n",
				       R.type_name, nw, p, ret);
				report_end();
			}
			done = ret / R.ps;
			if (done < nw)
				t->stats[ST_PWRITE_SHORT]++;
		}
		for (i = 0; i < nw; i++)
			mut_end(&R.pages[p + i], k[i],
				i < done ? VER(st[i]) + 1 : st[i]);
		t->stats[ST_PWRITE]++;
		t->stats[ST_PWRITE_PAGES] += done;
	}
	for (i = 0; i < n; i++) {
		pthread_mutex_unlock(&R.pages[p + i].plock);
		pthread_mutex_unlock(&R.pages[p + i].mlock);
	}
}

/* The state a page has after a hole is made in it. */
static uint32_t state_after_hole(uint32_t st)
{
	/* MISSING: the next access gets the source version back. */
	if (R.mode & MODE_MISSING)
		return st;
	/* MINOR only: nobody answers a hole, the kernel zero-fills it. */
	return (VER(st) + 1) | ZERO_STATE;
}

static void punch(unsigned int p)
{
	if (fallocate(R.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)p * R.ps, R.ps))
		die("fallocate(PUNCH_HOLE) page %u", p);
}

/*
 * PUNCH_HOLE (op == OP_PUNCH), MADV_REMOVE (OP_REMOVE), or the sequence
 * that races a reader's fault with a hole punch (OP_ZAPPUNCH): make sure
 * the page is populated (pwrite of its current content, identical bytes),
 * zap it from the registered mapping, wait a little, punch it.
 */
static void op_hole(struct thr *t, unsigned int p, enum op op)
{
	struct page *pg = &R.pages[p];
	bool zero = !(R.mode & MODE_MISSING);
	uint64_t delay;
	uint32_t k, st;

	if (op == OP_REMOVE && atomic_load(&R.no_remove))
		op = OP_PUNCH;
	pthread_mutex_lock(&pg->mlock);
	if (VER(atomic_load(&pg->state)) + 1 > VER_MASK) {
		pthread_mutex_unlock(&pg->mlock);
		return;
	}
	if (op != OP_PUNCH)
		pthread_rwlock_rdlock(chunk_of(p));
	pthread_mutex_lock(&pg->plock);
	st = atomic_load(&pg->state);
	/*
	 * MINOR only, the content changes to zeroes, which a reader copying
	 * the page may see halfway (it may tear); with MISSING it does not
	 * change at all.
	 */
	k = mut_begin(pg, op, zero ? K_ZERO | K_TEAR : 0);
	busy(t, p, op);
	switch (op) {
	case OP_ZAPPUNCH:
		fill(t->buf, p, st);
		if (pwrite(R.fd, t->buf, R.ps, (off_t)p * R.ps) < 0 &&
		    !(R.type == MEM_GMEM && errno == EEXIST))
			die("pwrite page %u", p);
		if (madvise(page_addr(p), R.ps, MADV_DONTNEED))
			die("MADV_DONTNEED page %u", p);
		/* A random short delay, 0 to 50 us, to let readers fault. */
		delay = rnd_below(t, 4) ? now_ns() + rnd_below(t, 50000) : 0;
		while (now_ns() < delay)
			;
		punch(p);
		t->stats[ST_ZAPPUNCH]++;
		break;
	case OP_REMOVE:
		if (madvise(page_addr(p), R.ps, MADV_REMOVE)) {
			if (errno != EINVAL && errno != EOPNOTSUPP)
				die("MADV_REMOVE page %u", p);
			atomic_store(&R.no_remove, true);
			punch(p);
		}
		t->stats[ST_REMOVE]++;
		break;
	default:
		punch(p);
		t->stats[ST_PUNCH]++;
		break;
	}
	idle(t);
	mut_end(pg, k, state_after_hole(st));
	pthread_mutex_unlock(&pg->plock);
	if (op != OP_PUNCH)
		pthread_rwlock_unlock(chunk_of(p));
	pthread_mutex_unlock(&pg->mlock);
}

/* MADV_DONTNEED on 1..4 pages of one chunk: content unchanged. */
static void op_dontneed(struct thr *t, unsigned int p)
{
	unsigned int n = 1 + rnd_below(t, 4);
	unsigned int end = (p / CHUNK_PAGES + 1) * CHUNK_PAGES;

	if (end > R.npages)
		end = R.npages;
	if (p + n > end)
		n = end - p;
	pthread_rwlock_rdlock(chunk_of(p));
	busy(t, p, OP_DONTNEED);
	if (madvise(page_addr(p), n * R.ps, MADV_DONTNEED))
		die("MADV_DONTNEED pages %u..%u", p, p + n - 1);
	idle(t);
	pthread_rwlock_unlock(chunk_of(p));
	t->stats[ST_DONTNEED]++;
}

/*
 * Replace the mapping of one chunk, with no access through it meanwhile
 * (the chunk's lock, for writing), and register the new one.
 */
static void op_remap(struct thr *t, unsigned int p)
{
	unsigned int c = p / CHUNK_PAGES;
	unsigned int first = c * CHUNK_PAGES;
	unsigned int n = R.npages - first < CHUNK_PAGES ? R.npages - first : CHUNK_PAGES;
	char *addr = page_addr(first), *tmp = R.spare + (size_t)first * R.ps;
	size_t len = n * R.ps;
	off_t off = (off_t)first * R.ps;
	struct uffdio_range range = { .start = (unsigned long)addr, .len = len };
	void *q;

	pthread_rwlock_wrlock(&R.chunk[c]);
	busy(t, first, OP_REMAP);
	switch (rnd_below(t, 4)) {
	case 0:		/* mmap(MAP_FIXED) over it: munmap + mmap in one */
		q = mmap(addr, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
			 R.fd, off);
		if (q != addr)
			die("mmap(MAP_FIXED) chunk %u", c);
		t->stats[ST_REMAP_FIXED]++;
		break;
	case 1:		/* munmap, then mmap the same offsets there again */
		if (munmap(addr, len))
			die("munmap chunk %u", c);
		q = mmap(addr, len, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_FIXED_NOREPLACE, R.fd, off);
		if (q != addr)
			die("mmap(MAP_FIXED_NOREPLACE) chunk %u (got %p)", c, q);
		t->stats[ST_REMAP_MUNMAP]++;
		break;
	case 2:		/* mremap away and back (drops the registration) */
		q = mremap(addr, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, tmp);
		if (q != tmp)
			die("mremap chunk %u away", c);
		q = mremap(tmp, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, addr);
		if (q != addr)
			die("mremap chunk %u back", c);
		if (mmap(tmp, len, PROT_NONE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE,
			 -1, 0) != tmp)
			die("mmap spare");
		t->stats[ST_REMAP_MREMAP]++;
		break;
	default:	/* UFFDIO_UNREGISTER, then register again */
		if (ioctl(R.uffd, UFFDIO_UNREGISTER, &range))
			die("UFFDIO_UNREGISTER chunk %u", c);
		t->stats[ST_REMAP_REREG]++;
		break;
	}
	uffd_register(addr, len);
	idle(t);
	pthread_rwlock_unlock(&R.chunk[c]);
}

/*
 * fork(): the child reads up to FORK_PAGES pages that the parent has
 * populated and holds (mlock) until the child is gone, so they cannot
 * change, and must see exactly their current versions.  The child's mapping
 * is not registered (no UFFD_FEATURE_EVENT_FORK), so holes are off limits:
 * the kernel would fill them with zeroes, in the shared file.
 */
static void op_fork(struct thr *t, unsigned int p0)
{
	unsigned int pages[FORK_PAGES], n = 1 + rnd_below(t, FORK_PAGES);
	unsigned int i, j, c, last_chunk = UINT32_MAX;
	uint32_t st[FORK_PAGES];
	struct child_result *res = t->child;
	int status;
	pid_t pid;

	/* n distinct pages in ascending order (the lock order). */
	pages[0] = p0;
	for (i = 1; i < n; i++)
		pages[i] = rnd_below(t, R.npages);
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			if (pages[j] < pages[i]) {
				unsigned int x = pages[i];

				pages[i] = pages[j];
				pages[j] = x;
			}
	for (i = j = 0; i < n; i++)
		if (!j || pages[i] != pages[j - 1])
			pages[j++] = pages[i];
	n = j;

	for (i = 0; i < n; i++)
		pthread_mutex_lock(&R.pages[pages[i]].mlock);
	for (i = 0; i < n; i++) {
		c = pages[i] / CHUNK_PAGES;
		if (c != last_chunk)
			pthread_rwlock_rdlock(&R.chunk[c]);
		last_chunk = c;
	}
	for (i = 0; i < n; i++) {
		/* Populate it, and check it: a read through the mapping. */
		read_check_locked(t, pages[i], OP_FORK);
		st[i] = atomic_load(&R.pages[pages[i]].state);
	}
	memset(res, 0, sizeof(*res));
	busy(t, pages[0], OP_FORK_WAIT);
	pid = fork();
	if (pid < 0)
		die("fork");
	if (!pid) {
		unsigned int words = R.ps / 8;

		for (i = 0; i < n; i++) {
			uint64_t *src = (uint64_t *)page_addr(pages[i]);
			unsigned int nzero = 0;

			for (j = 0; j < words; j++) {
				uint64_t want = st[i] & ZERO_STATE ? 0 :
						word(pages[i], VER(st[i]), j);
				uint64_t w = READ_ONCE(src[j]);

				nzero += !w;
				if (w != want && !res->bad) {
					res->bad = 1;
					res->page = pages[i];
					res->word = j;
					res->seen = w;
					res->want = want;
				}
			}
			if (res->bad) {
				res->nzero = nzero;
				_exit(1);
			}
		}
		_exit(0);
	}
	atomic_store(&t->child_pid, pid);
	if (waitpid(pid, &status, 0) != pid)
		die("waitpid");
	idle(t);
	atomic_store(&t->child_pid, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		report_begin();
		if (WIFSIGNALED(status))
			printf("FAIL: %s %s: a forked child reading pages %u.. was killed by %s\n",
			       R.type_name, mode_str(R.mode), pages[0],
			       strsignal(WTERMSIG(status)));
		else
			printf("FAIL: %s %s: a forked child read page %u word %u as %#018" PRIx64
			       ", the page's current content has %#018" PRIx64
			       " there (%u zero words): a forked child must see the pages the parent populated, as they are\n",
			       R.type_name, mode_str(R.mode), res->page, res->word,
			       res->seen, res->want, res->nzero);
		for (i = 0; i < n; i++)
			print_history(pages[i]);
		report_end();
	}
	last_chunk = UINT32_MAX;
	for (i = 0; i < n; i++) {
		c = pages[i] / CHUNK_PAGES;
		if (c != last_chunk)
			pthread_rwlock_unlock(&R.chunk[c]);
		last_chunk = c;
	}
	for (i = 0; i < n; i++)
		pthread_mutex_unlock(&R.pages[pages[i]].mlock);
	t->stats[ST_FORK]++;
	t->stats[ST_FORK_PAGES] += n;
}

static unsigned int pick_page(struct thr *t)
{
	if (rnd_below(t, 100) < 50)
		return R.hot[rnd_below(t, NHOT)];
	return rnd_below(t, R.npages);
}

/* Holes go mostly where readers spin: 3 in 4 to a hot page. */
static unsigned int hole_page(struct thr *t, unsigned int p)
{
	return rnd_below(t, 2) ? R.hot[rnd_below(t, NHOT)] : p;
}

static void *reader_main(void *arg)
{
	struct thr *t = arg;

	wait_go(t);
	while (!atomic_load(&R.stop_workers)) {
		if ((R.mode & MODE_MISSING) && rnd_below(t, 2))
			probe(t, R.hot[rnd_below(t, 2)]);
		else
			read_check(t, pick_page(t), OP_READ);
	}
	atomic_fetch_sub(&R.workers_left, 1);
	return NULL;
}

static void *mutator_main(void *arg)
{
	struct thr *t = arg;

	wait_go(t);
	while (!atomic_load(&R.stop_workers)) {
		unsigned int p = pick_page(t), r = rnd_below(t, 100);
		uint64_t t0 = now_ns();

		/*
		 * With MISSING registered, mutator 0 is mostly a racer: it
		 * punches the two pages the readers' probes spin on.
		 */
		if (!t->idx && (R.mode & MODE_MISSING) && rnd_below(t, 3)) {
			p = R.hot[rnd_below(t, 2)];
			r = 40 + rnd_below(t, 40);
		}
		enum op op = r < 15 ? OP_READ : r < 30 ? OP_WRITE :
			     r < 40 ? OP_PWRITE : r < 50 ? OP_PUNCH :
			     r < 55 ? OP_REMOVE : r < 80 ? OP_ZAPPUNCH :
			     r < 92 ? OP_DONTNEED : r < 97 ? OP_REMAP : OP_FORK;

		if (r < 15)
			read_check(t, p, OP_READ);
		else if (r < 30)
			op_write(t, p);
		else if (r < 40)
			op_pwrite(t, p);
		else if (r < 50)
			op_hole(t, hole_page(t, p), OP_PUNCH);
		else if (r < 55)
			op_hole(t, hole_page(t, p), OP_REMOVE);
		else if (r < 80)
			op_hole(t, hole_page(t, p), OP_ZAPPUNCH);
		else if (r < 92)
			op_dontneed(t, p);
		else if (r < 97)
			op_remap(t, p);
		else
			op_fork(t, p);
		t->op_n[op]++;
		t->op_ns[op] += now_ns() - t0;
	}
	atomic_fetch_sub(&R.workers_left, 1);
	return NULL;
}

/* After the workers stopped: every page must read as its current state. */
static void *verifier_main(void *arg)
{
	struct thr *t = arg;
	unsigned int p;

	wait_go(t);
	for (p = 0; p < R.npages; p++)
		read_check(t, p, OP_VERIFY);
	atomic_fetch_sub(&R.workers_left, 1);
	return NULL;
}

/* --- the watchdog ------------------------------------------------------------------ */

static void thread_state(struct thr *t, char *out, size_t len)
{
	char path[64], buf[512], wchan[64] = "";
	char *s;
	int fd;
	ssize_t n;

	snprintf(out, len, "?");
	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", t->tid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	s = strrchr(buf, ')');
	snprintf(path, sizeof(path), "/proc/self/task/%d/wchan", t->tid);
	fd = open(path, O_RDONLY);
	if (fd >= 0) {
		n = read(fd, wchan, sizeof(wchan) - 1);
		wchan[n > 0 ? n : 0] = 0;
		close(fd);
	}
	snprintf(out, len, "state %c%s%s", s && s[1] ? s[2] : '?',
		 wchan[0] && strcmp(wchan, "0") ? ", wchan " : "", wchan);
}

static bool uffd_pending(void)
{
	struct pollfd pfd = { .fd = R.uffd, .events = POLLIN };

	return poll(&pfd, 1, 0) > 0;
}

/* Whether a handler is on @t's page, or a message waits to be read. */
static bool waiting_for_handler(struct thr *t)
{
	return atomic_load(&R.pages[atomic_load(&t->wpage)].handling) ||
	       uffd_pending();
}

static void __noreturn report_hang(struct thr *t, uint64_t now)
{
	unsigned int p = atomic_load(&t->wpage), i;
	enum op op = atomic_load(&t->wop);
	double secs = (now - atomic_load(&t->since)) / 1e9;
	bool pending = uffd_pending();
	int handling = atomic_load(&R.pages[p].handling);
	char state[128];

	report_begin();
	thread_state(t, state, sizeof(state));
	if (t->role[0] == 'h')
		printf("FAIL: %s %s: HUNG: handler %d has been in its %s for page %u for %.1f s (%s)\n",
		       R.type_name, mode_str(R.mode), t->idx, op_name[op], p, secs, state);
	else if (op == OP_FORK_WAIT)
		printf("FAIL: %s %s: HUNG: the child forked by %s %d (pid %d) has not exited after %.1f s; it reads pages the parent populated, with nothing registered in the child\n",
		       R.type_name, mode_str(R.mode), t->role, t->idx,
		       atomic_load(&t->child_pid), secs);
	else if (!handling && !pending)
		printf("FAIL: %s %s: HUNG: %s %d has been in a %s of page %u for %.1f s (%s), and no handler is working on the page and no userfaultfd message is pending: a fault nobody woke\n",
		       R.type_name, mode_str(R.mode), t->role, t->idx, op_name[op],
		       p, secs, state);
	else
		printf("FAIL: %s %s: HUNG: %s %d has been in a %s of page %u for %.1f s (%s); %d handler(s) on that page, a userfaultfd message %s\n",
		       R.type_name, mode_str(R.mode), t->role, t->idx, op_name[op],
		       p, secs, state, handling,
		       pending ? "pending" : "not pending");
	for (i = 0; i < R.nthr; i++) {
		struct thr *o = R.thr[i];
		uint64_t since = atomic_load(&o->since);

		thread_state(o, state, sizeof(state));
		if (since)
			printf("  %s %d: %s of page %u for %.1f s (%s)\n", o->role,
			       o->idx, op_name[atomic_load(&o->wop)],
			       atomic_load(&o->wpage), (now - since) / 1e9, state);
		else
			printf("  %s %d: not in an access (%s)\n", o->role, o->idx, state);
	}
	print_history(p);
	report_end();
}

static void watchdog_tick(void)
{
	uint64_t now = now_ns(), limit = opt.watchdog_s * 1000000000ULL;
	unsigned int i;

	for (i = 0; i < R.nthr; i++) {
		struct thr *t = R.thr[i];
		uint64_t since = atomic_load(&t->since);
		uint64_t gen = atomic_load(&t->gen);
		uint64_t lim = limit * (atomic_load(&t->wop) == OP_FORK_WAIT ? 3 : 1);

		if (!since || gen != t->seen_gen) {
			t->seen_gen = gen;
			t->strikes = 0;
			continue;
		}
		if (now - since < lim)
			continue;
		/*
		 * Over the limit, with nobody working on the page and nothing
		 * to read from the userfaultfd, on 5 ticks in a row (1 s): not
		 * a time jump of a VM that was descheduled, nor handlers slow
		 * to get the CPU.  Past 6 times the limit, whatever the reason.
		 */
		if (t->role[0] != 'h' && waiting_for_handler(t) &&
		    now - since < 6 * lim) {
			t->strikes = 0;
			continue;
		}
		if (++t->strikes >= 5)
			report_hang(t, now);
	}
}

static void watch_until(bool (*done)(void), uint64_t deadline)
{
	while (!done() && (!deadline || now_ns() < deadline)) {
		usleep(200000);
		watchdog_tick();
	}
}

static bool workers_done(void)
{
	return atomic_load(&R.workers_left) == 0;
}

static bool handlers_done(void)
{
	return atomic_load(&R.handlers_left) == 0;
}

static bool never(void)
{
	return false;
}

/* --- a phase ------------------------------------------------------------------------ */

static struct thr *new_thread(const char *role, int idx, void *(*fn)(void *))
{
	struct thr *t;

	if (R.nthr == MAX_THREADS)
		die("too many threads");
	t = calloc(1, sizeof(*t));
	if (!t || posix_memalign((void **)&t->buf, R.ps, R.ps) ||
	    posix_memalign((void **)&t->buf2, R.ps, FORK_PAGES * R.ps))
		die("malloc");
	t->child = mmap(NULL, R.ps, PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (t->child == MAP_FAILED)
		die("mmap");
	t->role = role;
	t->idx = idx;
	t->rng = mix_seed(opt.seed, R.nthr * 7919 + R.type * 131 + R.mode);
	t->fn = fn;
	R.thr[R.nthr++] = t;
	return t;
}

/*
 * Start the threads made since @first, and let them run only once all of
 * them exist: nothing may be mapped while a remap has a chunk unmapped.
 */
static void start_threads(unsigned int first)
{
	unsigned int i;

	atomic_store(&R.go, false);
	for (i = first; i < R.nthr; i++) {
		errno = pthread_create(&R.thr[i]->pt, NULL, R.thr[i]->fn, R.thr[i]);
		if (errno)
			die("pthread_create");
	}
	atomic_store(&R.go, true);
}

static int phase_setup(enum mem_type type, int mode)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { 0 };
	pthread_rwlockattr_t ra;
	unsigned int i;
	struct thr seed_thr = { .rng = mix_seed(opt.seed, 1000 + type * 10 + mode) };
	uint64_t *buf;

	memset(&R, 0, sizeof(R));
	R.fd = R.uffd = -1;
	R.base = R.spare = MAP_FAILED;
	atomic_store(&R.dropped, -1);
	R.type = type;
	R.mode = mode;
	R.type_name = type == MEM_SHMEM ? "shmem" : "guest_memfd";
	R.ps = sysconf(_SC_PAGESIZE);
	R.npages = opt.npages;
	R.size = R.npages * R.ps;
	R.nchunks = (R.npages + CHUNK_PAGES - 1) / CHUNK_PAGES;

	R.pages = calloc(R.npages, sizeof(*R.pages));
	R.chunk = calloc(R.nchunks, sizeof(*R.chunk));
	if (!R.pages || !R.chunk)
		die("calloc");
	for (i = 0; i < R.npages; i++) {
		pthread_mutex_init(&R.pages[i].mlock, NULL);
		pthread_mutex_init(&R.pages[i].plock, NULL);
		atomic_store(&R.pages[i].state, 1);
	}
	/* Writers first: a remap waits for accesses, new accesses wait for it. */
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	for (i = 0; i < R.nchunks; i++)
		pthread_rwlock_init(&R.chunk[i], &ra);
	for (i = 0; i < NHOT; i++)
		R.hot[i] = rnd_below(&seed_thr, R.npages);

	if (type == MEM_SHMEM) {
		R.fd = memfd_create(PROG, MFD_CLOEXEC);
		if (R.fd < 0)
			die("memfd_create");
		if (ftruncate(R.fd, R.size))
			die("ftruncate");
	} else {
		R.fd = gmem_vm_create(&vm, R.size);
		if (R.fd < 0)
			die("KVM_CREATE_GUEST_MEMFD of %zu bytes", R.size);
	}

	/* MINOR only: memory is populated to begin with (version 1). */
	if (!(mode & MODE_MISSING)) {
		buf = malloc(R.ps);
		if (!buf)
			die("malloc");
		for (i = 0; i < R.npages; i++) {
			fill(buf, i, 1);
			if (pwrite(R.fd, buf, R.ps, (off_t)i * R.ps) == (ssize_t)R.ps)
				continue;
			if (type == MEM_GMEM && !i && (errno == ENODEV ||
			    errno == ESPIPE || errno == EINVAL || errno == EBADF)) {
				printf("# guest_memfd: pwrite: %s: this kernel cannot populate a guest_memfd with write()\n",
				       strerror(errno));
				free(buf);
				return 4;
			}
			die("populating page %u", i);
		}
		free(buf);
	}

	R.base = mmap(NULL, R.size, PROT_READ | PROT_WRITE, MAP_SHARED, R.fd, 0);
	if (R.base == MAP_FAILED)
		die("mmap %s", R.type_name);
	R.spare = mmap(NULL, R.size, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (R.spare == MAP_FAILED)
		die("mmap");

	R.uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (R.uffd < 0) {
		if (errno == ENOSYS)
			skip("no userfaultfd in this kernel");
		die("userfaultfd");
	}
	if (ioctl(R.uffd, UFFDIO_API, &api))
		die("UFFDIO_API");

	reg.range.start = (unsigned long)R.base;
	reg.range.len = R.size;
	if (mode & MODE_MISSING)
		reg.mode |= UFFDIO_REGISTER_MODE_MISSING;
	if (mode & MODE_MINOR)
		reg.mode |= UFFDIO_REGISTER_MODE_MINOR;
	if (ioctl(R.uffd, UFFDIO_REGISTER, &reg)) {
		if (errno == EINVAL) {
			printf("# %s %s: UFFDIO_REGISTER: EINVAL: this kernel cannot register such a mapping\n",
			       R.type_name, mode_str(mode));
			return 4;
		}
		die("UFFDIO_REGISTER");
	}
	R.can_continue = reg.ioctls & (1ULL << _UFFDIO_CONTINUE);
	if (type == MEM_GMEM && !R.can_continue) {
		report_begin();
		printf("FAIL: guest_memfd %s registration does not offer UFFDIO_CONTINUE (ioctls %#llx)\n",
		       mode_str(mode), reg.ioctls);
		report_end();
	}
	if (type == MEM_SHMEM && (mode & MODE_MISSING) &&
	    !(reg.ioctls & (1ULL << _UFFDIO_COPY))) {
		report_begin();
		printf("FAIL: shmem MISSING registration does not offer UFFDIO_COPY\n");
		report_end();
	}
	return 0;
}

static void phase_teardown(void)
{
	unsigned int i;

	for (i = 0; i < R.nthr; i++) {
		struct thr *t = R.thr[i];

		if (t->pt)
			pthread_join(t->pt, NULL);
		munmap(t->child, R.ps);
		free(t->buf);
		free(t->buf2);
		free(t);
	}
	if (R.uffd >= 0)
		close(R.uffd);
	if (R.base != MAP_FAILED)
		munmap(R.base, R.size);
	if (R.spare != MAP_FAILED)
		munmap(R.spare, R.size);
	if (R.fd >= 0)
		close(R.fd);
	free(R.pages);
	free(R.chunk);
}

static uint64_t total[NR_STATS];	/* over all phases, for the last line */
static unsigned int phases_run;

static void phase_summary(double secs)
{
	uint64_t s[NR_STATS] = { 0 };
	unsigned int i, j;

	for (i = 0; i < R.nthr; i++)
		for (j = 0; j < NR_STATS; j++)
			s[j] += R.thr[i]->stats[j];
	for (j = 0; j < NR_STATS; j++)
		total[j] += s[j];
	phases_run++;
	printf("ok %s %s %.1f s: %" PRIu64 " reads, %" PRIu64 " probes, %" PRIu64 " guest writes, %" PRIu64
	       " pwrites (%" PRIu64 " pages, %" PRIu64 " EEXIST, %" PRIu64 " short), %"
	       PRIu64 " PUNCH_HOLE, %" PRIu64 " MADV_REMOVE%s, %" PRIu64
	       " zap+punch races, %" PRIu64 " MADV_DONTNEED, %" PRIu64
	       " remaps (%" PRIu64 " MAP_FIXED, %" PRIu64 " munmap+mmap, %" PRIu64
	       " mremap, %" PRIu64 " re-register), %" PRIu64 " forks (%" PRIu64
	       " pages read by children), %" PRIu64 " MISSING answered (%" PRIu64
	       " UFFDIO_COPY, %" PRIu64 " pwrite+CONTINUE), %" PRIu64
	       " MINOR answered, %" PRIu64 " EEXIST+WAKE, %" PRIu64
	       " hole+WAKE, %" PRIu64 " stale, %" PRIu64 " pages verified at the end\n",
	       R.type_name, mode_str(R.mode), secs, s[ST_READ], s[ST_PROBE], s[ST_WRITE],
	       s[ST_PWRITE], s[ST_PWRITE_PAGES], s[ST_PWRITE_EEXIST],
	       s[ST_PWRITE_SHORT], s[ST_PUNCH], s[ST_REMOVE],
	       atomic_load(&R.no_remove) ? " (unsupported: punched instead)" : "",
	       s[ST_ZAPPUNCH], s[ST_DONTNEED],
	       s[ST_REMAP_FIXED] + s[ST_REMAP_MUNMAP] + s[ST_REMAP_MREMAP] + s[ST_REMAP_REREG],
	       s[ST_REMAP_FIXED], s[ST_REMAP_MUNMAP], s[ST_REMAP_MREMAP],
	       s[ST_REMAP_REREG], s[ST_FORK], s[ST_FORK_PAGES], s[ST_MISSING],
	       s[ST_MISSING_COPY], s[ST_MISSING_PWRITE], s[ST_MINOR],
	       s[ST_EEXIST_WAKE], s[ST_HOLE_WAKE], s[ST_STALE], s[ST_VERIFY]);
	if (opt.verbose) {
		for (j = 0; j < NR_OPS; j++) {
			uint64_t n = 0, ns = 0;

			for (i = 0; i < R.nthr; i++) {
				n += R.thr[i]->op_n[j];
				ns += R.thr[i]->op_ns[j];
			}
			if (n)
				printf("#   mutators: %-28s %8" PRIu64 " x %8.1f us\n",
				       op_name[j], n, ns / 1e3 / n);
		}
	}
	fflush(stdout);
}

/* Run one memory type in one mode for @secs seconds: 0 pass, 4 skip. */
static int run_phase(enum mem_type type, int mode, double secs)
{
	unsigned int i;
	uint64_t end;
	int ret;

	ret = phase_setup(type, mode);
	if (ret) {
		phase_teardown();
		return ret;
	}
	R.start_ns = now_ns();
	end = R.start_ns + (uint64_t)(secs * 1e9);

	atomic_store(&R.handlers_left, opt.nhandlers);
	for (i = 0; i < opt.nhandlers; i++)
		new_thread("handler", i, handler_main);
	atomic_store(&R.workers_left, opt.nreaders + opt.nmutators);
	for (i = 0; i < opt.nreaders; i++)
		new_thread("reader", i, reader_main);
	for (i = 0; i < opt.nmutators; i++)
		new_thread("mutator", i, mutator_main);
	start_threads(0);

	watch_until(never, end);
	atomic_store(&R.stop_workers, true);
	watch_until(workers_done, 0);

	atomic_store(&R.workers_left, 1);
	new_thread("verifier", 0, verifier_main);
	start_threads(R.nthr - 1);
	watch_until(workers_done, 0);

	atomic_store(&R.stop_handlers, true);
	watch_until(handlers_done, 0);
	phase_summary((now_ns() - R.start_ns) / 1e9);
	phase_teardown();
	return 0;
}

static int parse_mode(const char *s)
{
	if (!strcmp(s, "missing") || !strcmp(s, "MISSING"))
		return MODE_MISSING;
	if (!strcmp(s, "minor") || !strcmp(s, "MINOR"))
		return MODE_MINOR;
	if (!strcmp(s, "missing+minor") || !strcmp(s, "missing|minor") ||
	    !strcmp(s, "missing,minor") || !strcmp(s, "MISSING|MINOR") ||
	    !strcmp(s, "both"))
		return MODE_BOTH;
	if (!strcmp(s, "all"))
		return 0;
	return -1;
}

static void __noreturn usage(void)
{
	fprintf(stderr,
		"usage: %s [shmem|guest_memfd|all] [-t SECONDS] [-s SEED] [-m missing|minor|missing+minor|all]\n"
		"       [-p PAGES] [-W WATCHDOG_SECONDS] [-r READERS] [-u MUTATORS] [-H HANDLERS]\n"
		"  -t  run time per memory type (default 20); with -m all, 60%% of it\n"
		"      MISSING, 20%% each MISSING|MINOR and MINOR\n"
		"  -s  seed of the random choices (default: from the clock; printed)\n"
		"  -W  a thread inside one access (a fault) this long fails the run (default 5)\n"
		"  -i  zero|stale|wrong|torn|nowake: inject a handler bug (must fail)\n",
		PROG);
	exit(2);
}

int main(int argc, char **argv)
{
	static const int all_modes[] = { MODE_MISSING, MODE_BOTH, MODE_MINOR };
	static const double share[] = { 0.6, 0.2, 0.2 };
	struct sigaction sa = { .sa_sigaction = fatal_signal, .sa_flags = SA_SIGINFO };
	bool seeded = false, ran = false;
	int c, type, m, ret;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1 && argv[1][0] != '-') {
		opt.type_arg = argv[1];
		if (!strcmp(argv[1], "shmem"))
			opt.types = 1 << MEM_SHMEM;
		else if (!strcmp(argv[1], "guest_memfd") || !strcmp(argv[1], "gmem"))
			opt.types = 1 << MEM_GMEM;
		else if (!strcmp(argv[1], "all"))
			opt.types = 3;
		else
			usage();
		argv++;
		argc--;
	}
	while ((c = getopt(argc, argv, "t:s:m:p:W:r:u:H:i:vh")) != -1) {
		switch (c) {
		case 'v':
			opt.verbose = true;
			break;
		case 'i':
			for (opt.inject = INJ_NOWAKE; opt.inject; opt.inject--)
				if (!strcmp(optarg, inject_name[opt.inject]))
					break;
			if (!opt.inject)
				usage();
			break;
		case 't':
			opt.secs = strtoul(optarg, NULL, 0);
			break;
		case 's':
			opt.seed = strtoull(optarg, NULL, 0);
			seeded = true;
			break;
		case 'm':
			opt.mode_arg = optarg;
			opt.modes = parse_mode(optarg);
			if (opt.modes < 0)
				usage();
			break;
		case 'p':
			opt.npages = strtoul(optarg, NULL, 0);
			break;
		case 'W':
			opt.watchdog_s = strtoul(optarg, NULL, 0);
			break;
		case 'r':
			opt.nreaders = strtoul(optarg, NULL, 0);
			break;
		case 'u':
			opt.nmutators = strtoul(optarg, NULL, 0);
			break;
		case 'H':
			opt.nhandlers = strtoul(optarg, NULL, 0);
			break;
		default:
			usage();
		}
	}
	if (optind != argc || !opt.secs || opt.npages < CHUNK_PAGES ||
	    opt.npages > 0xffffff || !opt.watchdog_s || !opt.nhandlers ||
	    opt.nreaders + opt.nmutators + opt.nhandlers + 1 > MAX_THREADS)
		usage();
	if (!seeded)
		opt.seed = now_ns() ^ ((uint64_t)getpid() << 32);

	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);

	printf("%s: seed %" PRIu64 ", %u pages, %u s per memory type, mode %s, %u readers, %u mutators, %u handlers, watchdog %u s%s%s\n",
	       PROG, opt.seed, opt.npages, opt.secs, mode_opt(opt.modes),
	       opt.nreaders, opt.nmutators, opt.nhandlers, opt.watchdog_s,
	       opt.inject ? ", injecting handler bug: " : "",
	       opt.inject ? inject_name[opt.inject] : "");

	for (type = MEM_SHMEM; type <= MEM_GMEM; type++) {
		if (!(opt.types & (1 << type)))
			continue;
		if (type == MEM_GMEM) {
			const char *why;

			ret = gmem_vm_open(&vm, &why);
			if (ret > 0) {
				if (opt.types == 1 << MEM_GMEM)
					skip("guest_memfd: %s", why);
				printf("# guest_memfd: not run: %s\n", why);
				continue;
			}
			if (ret < 0)
				die("guest_memfd: %s", why);
		}
		for (m = 0; m < 3; m++) {
			int mode = opt.modes ? opt.modes : all_modes[m];
			double secs = opt.modes ? opt.secs : opt.secs * share[m];

			ret = run_phase(type, mode, secs);
			if (ret == 4 && type == MEM_GMEM) {
				/* No such guest_memfd here: no mode will do. */
				if (opt.types == 1 << MEM_GMEM)
					skip("guest_memfd: this kernel cannot demand-page it with userfaultfd");
				printf("# guest_memfd: not run: this kernel cannot demand-page it with userfaultfd\n");
				break;
			}
			if (ret == 0)
				ran = true;
			if (opt.modes)
				break;
		}
	}
	if (!ran)
		skip("nothing could run");
	printf("%s: pass: %u phases (memory type x mode), seed %" PRIu64 ": %" PRIu64
	       " reads and %" PRIu64 " probes checked, %" PRIu64 " guest writes, %" PRIu64
	       " pwrites, %" PRIu64 " holes punched (%" PRIu64 " racing readers), %" PRIu64
	       " MADV_DONTNEED, %" PRIu64 " remaps, %" PRIu64 " forks, %" PRIu64
	       " MISSING and %" PRIu64 " MINOR faults answered\n", PROG, phases_run,
	       opt.seed, total[ST_READ] + total[ST_VERIFY], total[ST_PROBE],
	       total[ST_WRITE], total[ST_PWRITE],
	       total[ST_PUNCH] + total[ST_REMOVE] + total[ST_ZAPPUNCH],
	       total[ST_ZAPPUNCH], total[ST_DONTNEED],
	       total[ST_REMAP_FIXED] + total[ST_REMAP_MUNMAP] +
	       total[ST_REMAP_MREMAP] + total[ST_REMAP_REREG],
	       total[ST_FORK], total[ST_MISSING], total[ST_MINOR]);
	return 0;
}

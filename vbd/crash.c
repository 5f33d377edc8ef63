/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The crash driver: fault injection for the crash tests.  It opens its
 * file with the raw driver and forwards every request; armed through
 * vbd/crash.h, it "loses power" after the N-th write and leaves the file
 * as a crash would (see enum vbd_crash_mode).
 *
 * A format driver is put on top of it with the spec's `file_driver`
 * ("crash"), so the format writes its image through here.  Everything
 * happens under one global lock while armed: the journal, the count and
 * the crash must see the writes in one order, and tests do not need
 * speed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/iov.h"
#include "../common/log.h"
#include "crash.h"
#include "driver.h"

enum jop {
	J_WRITE,
	J_ZEROES,
	J_DISCARD,
};

/* One write since the last flush, with what it overwrote. */
struct jentry {
	enum jop op;
	uint64_t off, len;
	unsigned flags;	  /* J_ZEROES: VBD_ZERO_* */
	uint8_t *pre;	  /* the bytes before the write... */
	uint64_t pre_len; /* ...as far as they lay inside the file */
	uint8_t *data;	  /* J_WRITE: the bytes written */
};

struct crash {
	struct vbd *file;    /* the raw layer */
	struct crash *next;  /* the list of open crash vbds */
	uint64_t eof;	     /* the file's size as written so far */
	uint64_t stable_eof; /* its size at the last flush */
	struct jentry *j;    /* writes since the last flush, in order */
	size_t jn, jcap;
};

/* Only for tests: one crash per process. */
static struct {
	pthread_mutex_t lock;
	bool armed;
	bool fired;
	enum vbd_crash_mode mode;
	uint64_t after;	 /* fire after this many writes (0: never) */
	uint64_t writes; /* writes since arming */
	uint64_t rng;	 /* VBD_CRASH_SUBSET's choices */
	struct crash *open;
} g = {.lock = PTHREAD_MUTEX_INITIALIZER};

static struct crash *crash_of(struct vbd *vbd)
{
	return vbd->opaque;
}

/* splitmix64: small and the same everywhere, so a seed replays. */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The journal. */

static void journal_clear(struct crash *c)
{
	for (size_t i = 0; i < c->jn; i++) {
		free(c->j[i].pre);
		free(c->j[i].data);
	}
	c->jn = 0;
}

/* Only a crash that undoes writes needs them journalled; counting and
 * VBD_CRASH_KEEP are cheaper without. */
static bool journaling(void)
{
	return g.after && g.mode != VBD_CRASH_KEEP;
}

/* A flush made everything written so far stable. */
static void journal_stable(struct crash *c)
{
	journal_clear(c);
	c->stable_eof = c->eof;
}

/*
 * Append `e` with its pre-image (read from the file now) and, for a
 * write, a copy of its data, so that it can be undone or replayed.
 */
static int journal_add(struct crash *c, const struct jentry *e,
		       const struct iovec *iov, int iovcnt)
{
	struct jentry *n;
	int ret;

	if (c->jn == c->jcap) {
		size_t cap = c->jcap ? 2 * c->jcap : 16;

		n = realloc(c->j, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		c->j = n;
		c->jcap = cap;
	}
	n = &c->j[c->jn];
	*n = *e;
	n->pre = NULL;
	n->data = NULL;
	n->pre_len = e->off < c->eof ? VS_MIN(e->len, c->eof - e->off) : 0;
	if (n->pre_len && !(n->pre = malloc(n->pre_len)))
		return -ENOMEM;
	ret = n->pre_len ? vbd_pread(c->file, e->off, n->pre, n->pre_len) : 0;
	if (ret == 0 && e->op == J_WRITE) {
		n->data = malloc(e->len);
		if (n->data)
			vs_iov_to_buf(iov, iovcnt, 0, n->data, e->len);
		else
			ret = -ENOMEM;
	}
	if (ret < 0) {
		free(n->pre);
		free(n->data);
		return ret;
	}
	c->jn++;
	return 0;
}

static void journal_drop_last(struct crash *c)
{
	c->jn--;
	free(c->j[c->jn].pre);
	free(c->j[c->jn].data);
}

/* Forwarding. */

/*
 * The format above raises our size as its image grows (writes past the
 * end of the file); the raw layer checks ranges against its own size, so
 * it has to grow with us.
 */
static void sync_size(struct vbd *vbd, struct crash *c)
{
	uint64_t want = __atomic_load_n(&vbd->size, __ATOMIC_ACQUIRE);
	uint64_t cur = __atomic_load_n(&c->file->size, __ATOMIC_ACQUIRE);

	while (cur < want &&
	       !__atomic_compare_exchange_n(&c->file->size, &cur, want, false,
					    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		;
}

static int forward(struct crash *c, const struct jentry *e,
		   const struct iovec *iov, int iovcnt)
{
	switch (e->op) {
	case J_WRITE: return vbd_pwritev(c->file, e->off, iov, iovcnt);
	case J_ZEROES:
		return vbd_write_zeroes(c->file, e->off, e->len, e->flags);
	case J_DISCARD: return vbd_discard(c->file, e->off, e->len);
	}
	return -EINVAL;
}

/* The crash. */

/* Cut the file back to `size`: growth since the last flush is lost too. */
static int cut_file(struct vbd *vbd, uint64_t size)
{
	if (truncate(vbd->filename, (off_t)size) < 0)
		return -errno;
	return 0;
}

/* Undo every journalled write, newest first: the state at the flush. */
static int roll_back(struct vbd *vbd, struct crash *c)
{
	int ret = 0;

	for (size_t i = c->jn; i-- > 0 && ret == 0;) {
		const struct jentry *e = &c->j[i];

		if (e->pre_len)
			ret = vbd_pwrite(c->file, e->off, e->pre, e->pre_len);
	}
	if (ret == 0 && c->eof > c->stable_eof)
		ret = cut_file(vbd, c->stable_eof);
	if (ret == 0)
		c->eof = c->stable_eof;
	return ret;
}

/*
 * Replay a random subset of the journal over the rolled-back file, in
 * the original order, so that later writes win where they overlap as
 * they would on the disk.
 */
static int replay_subset(struct crash *c)
{
	int ret = 0;

	for (size_t i = 0; i < c->jn && ret == 0; i++) {
		const struct jentry *e = &c->j[i];
		struct iovec iov = {.iov_base = e->data, .iov_len = e->len};

		if (!(rng_next(&g.rng) & 1))
			continue;
		ret = forward(c, e, &iov, 1);
		if (ret == 0 && e->op == J_WRITE)
			c->eof = VS_MAX(c->eof, e->off + e->len);
	}
	return ret;
}

/* Power is lost: leave every open crash file as the mode says. */
static void fire(void)
{
	g.fired = true;
	for (struct crash *c = g.open; c; c = c->next) {
		struct vbd *vbd = c->file;
		int ret = 0;

		if (g.mode != VBD_CRASH_KEEP)
			ret = roll_back(vbd, c);
		if (ret == 0 && g.mode == VBD_CRASH_SUBSET)
			ret = replay_subset(c);
		/* The test's verification will fail on this file: say why
		 * it is not the crash it asked for. */
		if (ret < 0)
			vs_log(VS_LOG_ERROR, "crash",
			       "%s: cannot leave the file as crashed: %s",
			       vbd->filename, strerror(-ret));
		journal_clear(c);
	}
}

/*
 * Every write kind goes through here: unarmed straight to the file;
 * armed, refused after the crash, else journalled, counted, and the one
 * that makes the count fires the crash once it is in the file.
 */
static int do_write(struct vbd *vbd, const struct jentry *e,
		    const struct iovec *iov, int iovcnt)
{
	struct crash *c = crash_of(vbd);
	int ret;

	sync_size(vbd, c);
	pthread_mutex_lock(&g.lock);
	if (!g.armed) {
		pthread_mutex_unlock(&g.lock);
		return forward(c, e, iov, iovcnt);
	}
	ret = g.fired	     ? -EIO
	      : journaling() ? journal_add(c, e, iov, iovcnt)
			     : 0;
	if (ret == 0) {
		ret = forward(c, e, iov, iovcnt);
		if (ret < 0 && journaling())
			journal_drop_last(c);
	}
	if (ret == 0) {
		if (e->op == J_WRITE)
			c->eof = VS_MAX(c->eof, e->off + e->len);
		if (++g.writes == g.after)
			fire();
	}
	pthread_mutex_unlock(&g.lock);
	return ret;
}

/* The driver. */

static int crash_open(struct vbd *vbd, const struct vbd_spec *spec,
		      struct vs_error **errp)
{
	struct vbd_spec raw = {
		.target = vbd->filename,
		.format = "raw",
		.readonly = vbd->readonly,
		.devnum = -1,
	};
	struct crash *c = calloc(1, sizeof(*c));
	int ret;

	if (!c)
		return vs_error_set(errp, ENOMEM, "out of memory");
	ret = vbd_open(&raw, vbd->flags & ~VBD_O_PROBE, vbd->aio, &c->file,
		       errp);
	if (ret < 0) {
		free(c);
		return ret;
	}
	vbd->size = c->file->size;
	vbd->request_align = c->file->request_align;
	vbd->opaque = c;
	c->eof = c->stable_eof = vbd->size;
	pthread_mutex_lock(&g.lock);
	c->next = g.open;
	g.open = c;
	pthread_mutex_unlock(&g.lock);
	return 0;
}

static void crash_close(struct vbd *vbd)
{
	struct crash *c = crash_of(vbd);

	pthread_mutex_lock(&g.lock);
	for (struct crash **p = &g.open; *p; p = &(*p)->next) {
		if (*p == c) {
			*p = c->next;
			break;
		}
	}
	pthread_mutex_unlock(&g.lock);
	journal_clear(c);
	free(c->j);
	vbd_close(c->file);
	free(c);
}

static int crash_preadv(struct vbd *vbd, uint64_t offset,
			const struct iovec *iov, int iovcnt)
{
	struct crash *c = crash_of(vbd);

	sync_size(vbd, c);
	return vbd_preadv(c->file, offset, iov, iovcnt);
}

static int crash_pwritev(struct vbd *vbd, uint64_t offset,
			 const struct iovec *iov, int iovcnt)
{
	struct jentry e = {
		.op = J_WRITE, .off = offset, .len = vs_iov_size(iov, iovcnt)};

	return do_write(vbd, &e, iov, iovcnt);
}

static int crash_write_zeroes(struct vbd *vbd, uint64_t offset, uint64_t len,
			      unsigned flags)
{
	struct jentry e = {
		.op = J_ZEROES, .off = offset, .len = len, .flags = flags};

	return do_write(vbd, &e, NULL, 0);
}

static int crash_discard(struct vbd *vbd, uint64_t offset, uint64_t len)
{
	struct jentry e = {.op = J_DISCARD, .off = offset, .len = len};

	return do_write(vbd, &e, NULL, 0);
}

/* Armed, the journal is the disk's volatile cache: a flush empties it
 * and needs no fdatasync. */
static int crash_flush(struct vbd *vbd)
{
	struct crash *c = crash_of(vbd);
	int ret = 0;

	pthread_mutex_lock(&g.lock);
	if (!g.armed) {
		pthread_mutex_unlock(&g.lock);
		return vbd_flush(c->file);
	}
	if (g.fired)
		ret = -EIO;
	else
		journal_stable(c);
	pthread_mutex_unlock(&g.lock);
	return ret;
}

static int crash_block_status(struct vbd *vbd, uint64_t offset, uint64_t len,
			      struct vbd_extent *ext)
{
	struct crash *c = crash_of(vbd);

	sync_size(vbd, c);
	return vbd_block_status(c->file, offset, len, ext);
}

const struct vbd_driver vbd_driver_crash = {
	.name = "crash",
	.open = crash_open,
	.close = crash_close,
	.preadv = crash_preadv,
	.pwritev = crash_pwritev,
	.flush = crash_flush,
	.discard = crash_discard,
	.write_zeroes = crash_write_zeroes,
	.block_status = crash_block_status,
};

/* Test control (crash.h). */

/* Unarmed writes are not tracked: take the size the file has now. */
static void restart_at_flush(struct crash *c)
{
	struct stat st;

	if (stat(c->file->filename, &st) == 0 && S_ISREG(st.st_mode))
		c->eof = (uint64_t)st.st_size;
	journal_stable(c);
}

void vbd_crash_arm(uint64_t after_writes, enum vbd_crash_mode mode,
		   uint64_t seed)
{
	pthread_mutex_lock(&g.lock);
	g.armed = true;
	g.fired = false;
	g.mode = mode;
	g.after = after_writes;
	g.writes = 0;
	g.rng = seed;
	for (struct crash *c = g.open; c; c = c->next)
		restart_at_flush(c);
	pthread_mutex_unlock(&g.lock);
}

void vbd_crash_disarm(void)
{
	pthread_mutex_lock(&g.lock);
	g.armed = false;
	for (struct crash *c = g.open; c; c = c->next)
		journal_stable(c);
	pthread_mutex_unlock(&g.lock);
}

bool vbd_crash_fired(void)
{
	bool fired;

	pthread_mutex_lock(&g.lock);
	fired = g.fired;
	pthread_mutex_unlock(&g.lock);
	return fired;
}

uint64_t vbd_crash_writes(void)
{
	uint64_t n;

	pthread_mutex_lock(&g.lock);
	n = g.writes;
	pthread_mutex_unlock(&g.lock);
	return n;
}

int vbd_crash_mode_from_name(const char *name, enum vbd_crash_mode *out)
{
	static const char *const names[] = {
		[VBD_CRASH_KEEP] = "keep",
		[VBD_CRASH_DROP] = "drop",
		[VBD_CRASH_SUBSET] = "subset",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(name, names[i])) {
			*out = (enum vbd_crash_mode)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The cluster walk (backup-walk.h): workers read, hash and hand chunks
 * to the caller; stores run in disk order. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/iov.h"
#include "backup-walk.h"
#include "checksum.h"

struct walk_state {
	struct lvm_walk *w;
	uint64_t nclusters;
	pthread_mutex_t lock;
	pthread_cond_t turn;
	uint64_t next_cluster; /* where the next chunk starts looking */
	uint64_t next_seq;     /* chunks handed out */
	uint64_t store_seq;    /* the chunk whose store is next */
	uint64_t done;	       /* bytes stored, for progress */
	int ret;

	/* Read-ahead of a sparse walk (w->want): the source's page-cache
	 * fd (-1: none), the first cluster not yet hinted, and the wanted
	 * clusters hinted but not yet handed out. */
	int ra_fd;
	uint64_t ra_base; /* the fd's offset of the source's byte 0 */
	uint64_t ra_next;
	uint64_t ra_pending;
};

unsigned lvm_walk_default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	return n > (long)LVM_WALK_MAX_THREADS ? LVM_WALK_MAX_THREADS
					      : (unsigned)n;
}

int lvm_walk_fail(struct lvm_walk *w, int code, const char *fmt, ...)
{
	struct vs_error *err = NULL;
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = vs_error_setv(&err, code, fmt, ap);
	va_end(ap);
	/* The first error wins: it is the cause, later ones its echoes. */
	pthread_mutex_lock(&w->err_lock);
	if (!w->err)
		w->err = vs_steal(&err);
	pthread_mutex_unlock(&w->err_lock);
	vs_error_free(err);
	return ret;
}

static bool wanted(const struct lvm_walk *w, uint64_t i)
{
	return !w->want || lvm_bit(w->want, i);
}

static uint64_t count_wanted(const struct lvm_walk *w, uint64_t from,
			     uint64_t to)
{
	uint64_t n = 0;

	for (uint64_t i = from; i < to; i++)
		n += wanted(w, i);
	return n;
}

/*
 * A sparse walk reads scattered clusters one chunk at a time, each a
 * synchronous read the kernel's read-ahead cannot guess, so with a
 * worker per CPU only that many are in flight (an incremental backup
 * read 328 clusters of a thin snapshot as 328 round trips).  Chunk
 * handout therefore keeps about LVM_WALK_RA_CLUSTERS wanted clusters
 * ahead hinted with POSIX_FADV_WILLNEED: the kernel starts reading them
 * all at once, and the workers' reads find them in the page cache.
 * Each handout hints at most LVM_WALK_RA_BATCH more: a whole window at
 * the first chunk (hundreds of calls, each submitting reads) held that
 * chunk up, and every store waits for the first one.
 *
 * Called with s->lock held for the chunk [first, end) just handed out;
 * returns the clusters [*from, *to) whose wanted runs the caller hints
 * (outside the lock), an empty range when nothing is due.
 */
static void ra_plan(struct walk_state *s, uint64_t first, uint64_t end,
		    uint64_t *from, uint64_t *to)
{
	const struct lvm_walk *w = s->w;
	uint64_t i, got = 0;

	*from = *to = 0;
	if (s->ra_fd < 0)
		return;
	if (s->ra_next <= first) {
		/* Fallen behind (or the first chunk): start from here. */
		s->ra_next = first;
		s->ra_pending = 0;
	} else {
		uint64_t k = count_wanted(w, first, VS_MIN(end, s->ra_next));

		s->ra_pending -= VS_MIN(k, s->ra_pending);
	}
	if (s->ra_pending >= LVM_WALK_RA_CLUSTERS)
		return;
	i = s->ra_next;
	while (i < s->nclusters && got < LVM_WALK_RA_BATCH &&
	       s->ra_pending + got < LVM_WALK_RA_CLUSTERS) {
		if (i % 8 == 0 && i + 8 <= s->nclusters && !w->want[i / 8]) {
			i += 8;
			continue;
		}
		got += wanted(w, i);
		i++;
	}
	*from = s->ra_next;
	*to = i;
	s->ra_next = i;
	s->ra_pending += got;
	/* This chunk's own clusters were hinted, or are read now. */
	if (*from < end)
		s->ra_pending -=
			VS_MIN(s->ra_pending,
			       count_wanted(w, *from, VS_MIN(end, *to)));
}

/* Hint the wanted runs of clusters [from, to).  A hint that fails costs
 * nothing but the speed: the reads themselves report errors. */
static void ra_hint(const struct walk_state *s, uint64_t from, uint64_t to)
{
	const struct lvm_walk *w = s->w;
	uint64_t i = from;

	while (i < to) {
		uint64_t j = i, off, len;

		if (!wanted(w, i)) {
			i++;
			continue;
		}
		while (j < to && wanted(w, j))
			j++;
		off = i * w->cluster;
		len = VS_MIN(j * w->cluster, w->size) - off;
		(void)posix_fadvise(s->ra_fd, (off_t)(s->ra_base + off),
				    (off_t)len, POSIX_FADV_WILLNEED);
		i = j;
	}
}

/* The next chunk to work on: its first wanted cluster and the clusters
 * after it.  Returns false at the end or after an error. */
static bool next_chunk(struct walk_state *s, struct lvm_walk_chunk *c,
		       uint64_t *seq)
{
	struct lvm_walk *w = s->w;
	uint64_t i, ra_from, ra_to;

	pthread_mutex_lock(&s->lock);
	if (s->ret == 0 && w->cancel && *w->cancel) {
		s->ret = -EINTR;
		pthread_cond_broadcast(&s->turn);
	}
	i = s->next_cluster;
	if (w->want)
		while (i < s->nclusters && !wanted(w, i)) {
			/* Skip whole empty bytes of the map at once. */
			if (i % 8 == 0 && i + 8 <= s->nclusters &&
			    !w->want[i / 8])
				i += 8;
			else
				i++;
		}
	if (s->ret || i >= s->nclusters) {
		s->next_cluster = s->nclusters;
		pthread_mutex_unlock(&s->lock);
		return false;
	}
	c->first = i;
	c->n = (unsigned)VS_MIN((uint64_t)LVM_WALK_CHUNK, s->nclusters - i);
	s->next_cluster = i + c->n;
	*seq = s->next_seq++;
	ra_plan(s, i, i + c->n, &ra_from, &ra_to);
	pthread_mutex_unlock(&s->lock);
	ra_hint(s, ra_from, ra_to);
	return true;
}

/* Read the wanted clusters of the chunk (runs of them at once), hash
 * them and test them for zeros. */
static int read_chunk(struct lvm_walk *w, struct lvm_walk_chunk *c)
{
	uint64_t cs = w->cluster;
	unsigned i = 0;

	c->off = c->first * cs;
	for (unsigned k = 0; k < c->n; k++) {
		uint64_t off = (c->first + k) * cs;

		c->want[k] = wanted(w, c->first + k);
		c->len[k] = (uint32_t)VS_MIN(cs, w->size - off);
		c->zero[k] = false;
		c->act[k] = LVM_ACT_SKIP;
		c->clen[k] = 0;
	}
	while (i < c->n) {
		unsigned j = i;
		uint64_t len = 0;
		int ret;

		if (!c->want[i]) {
			i++;
			continue;
		}
		while (j < c->n && c->want[j])
			len += c->len[j++];
		ret = vbd_pread(w->src, c->off + i * cs, c->buf + i * cs,
				(size_t)len);
		if (ret < 0)
			return lvm_walk_fail(
				w, ret,
				"%s: read error at offset 0x%" PRIx64 ": %s",
				w->what, c->off + i * cs, strerror(-ret));
		for (; i < j; i++) {
			const uint8_t *p = c->buf + i * cs;

			c->zero[i] = vs_buf_is_zero(p, c->len[i]);
			w->sums[c->first + i] =
				c->zero[i] ? lvm_sum_zero(c->len[i])
					   : lvm_sum(p, c->len[i]);
		}
	}
	return 0;
}

static void fail_locked(struct walk_state *s, int ret)
{
	if (!s->ret)
		s->ret = ret;
	pthread_cond_broadcast(&s->turn);
}

static void *worker(void *arg)
{
	struct walk_state *s = arg;
	struct lvm_walk *w = s->w;
	struct lvm_walk_chunk c = {0};
	uint64_t seq;

	c.buf = malloc((size_t)w->cluster * LVM_WALK_CHUNK);
	if (w->need_comp) {
		c.comp_cap = (size_t)w->cluster * 2;
		c.comp = malloc(c.comp_cap * LVM_WALK_CHUNK);
	}
	if (!c.buf || (w->need_comp && !c.comp)) {
		pthread_mutex_lock(&s->lock);
		lvm_walk_fail(w, ENOMEM, "%s: out of memory", w->what);
		fail_locked(s, -ENOMEM);
		pthread_mutex_unlock(&s->lock);
		goto out;
	}
	while (next_chunk(s, &c, &seq)) {
		int ret = read_chunk(w, &c);

		if (ret == 0 && w->work)
			ret = w->work(w, &c);
		pthread_mutex_lock(&s->lock);
		while (s->ret == 0 && s->store_seq != seq)
			pthread_cond_wait(&s->turn, &s->lock);
		if (ret == 0 && s->ret == 0 && w->store) {
			/* The turn is ours until store_seq moves on; the
			 * other workers meanwhile take chunks and read
			 * them instead of waiting for the lock. */
			pthread_mutex_unlock(&s->lock);
			ret = w->store(w, &c);
			pthread_mutex_lock(&s->lock);
		}
		if (ret < 0) {
			fail_locked(s, ret);
		} else if (s->ret == 0) {
			s->store_seq++;
			/* Clusters skipped between chunks count as done. */
			s->done = VS_MIN(w->size, (c.first + c.n) *
							  (uint64_t)w->cluster);
			vs_progress_update(w->progress, s->done, w->size);
			pthread_cond_broadcast(&s->turn);
		}
		pthread_mutex_unlock(&s->lock);
	}
out:
	free(c.buf);
	free(c.comp);
	return NULL;
}

int lvm_walk_run(struct lvm_walk *w, struct vs_error **errp)
{
	struct walk_state s = {.w = w, .ra_fd = -1};
	pthread_t tid[LVM_WALK_MAX_THREADS];
	unsigned n = VS_MAX(1u, VS_MIN(w->threads, LVM_WALK_MAX_THREADS));
	unsigned started = 0;

	if (!w->cluster || (w->cluster & (w->cluster - 1)) ||
	    w->cluster > (64u << 20))
		return vs_error_set(errp, EINVAL,
				    "%s: bad cluster size %" PRIu32, w->what,
				    w->cluster);
	s.nclusters = w->size / w->cluster + (w->size % w->cluster != 0);
	/* A whole walk is sequential: the kernel's own read-ahead serves
	 * it.  Sources outside the page cache (qcow2, O_DIRECT) get no
	 * hints. */
	if (w->want && vbd_host_fd(w->src, 0, w->size, &s.ra_fd, &s.ra_base))
		s.ra_fd = -1;
	w->err = NULL;
	pthread_mutex_init(&w->err_lock, NULL);
	pthread_mutex_init(&s.lock, NULL);
	pthread_cond_init(&s.turn, NULL);
	for (; started < n; started++)
		if (pthread_create(&tid[started], NULL, worker, &s))
			break;
	if (!started) {
		s.ret = -EAGAIN;
		lvm_walk_fail(w, EAGAIN, "%s: cannot start a thread", w->what);
	}
	for (unsigned i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	pthread_mutex_destroy(&s.lock);
	pthread_cond_destroy(&s.turn);
	pthread_mutex_destroy(&w->err_lock);
	if (s.ret == 0)
		vs_progress_update(w->progress, w->size, w->size);
	if (s.ret == -EINTR && !w->err)
		lvm_walk_fail(w, EINTR, "%s: interrupted by a signal", w->what);
	if (s.ret < 0) {
		int ret = vs_error_set(
			errp, w->err ? w->err->code : -s.ret, "%s",
			w->err ? vs_error_msg(w->err) : "the walk failed");
		vs_error_free(w->err);
		w->err = NULL;
		return ret < 0 ? ret : s.ret;
	}
	vs_error_free(w->err);
	w->err = NULL;
	return 0;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The cluster walk (backup-walk.h): workers read, hash and hand chunks
 * to the caller; stores run in disk order. */
#include <errno.h>
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

/* The next chunk to work on: its first wanted cluster and the clusters
 * after it.  Returns false at the end or after an error. */
static bool next_chunk(struct walk_state *s, struct lvm_walk_chunk *c,
		       uint64_t *seq)
{
	struct lvm_walk *w = s->w;
	uint64_t i;

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
	pthread_mutex_unlock(&s->lock);
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
		if (ret == 0 && s->ret == 0 && w->store)
			ret = w->store(w, &c);
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
	struct walk_state s = {.w = w};
	pthread_t tid[LVM_WALK_MAX_THREADS];
	unsigned n = VS_MAX(1u, VS_MIN(w->threads, LVM_WALK_MAX_THREADS));
	unsigned started = 0;

	if (!w->cluster || (w->cluster & (w->cluster - 1)) ||
	    w->cluster > (64u << 20))
		return vs_error_set(errp, EINVAL,
				    "%s: bad cluster size %" PRIu32, w->what,
				    w->cluster);
	s.nclusters = w->size / w->cluster + (w->size % w->cluster != 0);
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

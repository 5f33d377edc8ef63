/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A served disk: one open vbd under its vdev name, shared by reference
 * between the disk table, exports and connections.  The last reference
 * drains, flushes and closes the vbd, so an image is closed cleanly
 * whichever holder lets go last.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/log.h"
#include "../vbd/diskspec.h"
#include "disk-priv.h"
#include "server.h"

int blkback_disk_open(const char *spec_text, unsigned vbd_flags,
		      struct blkback_disk **out, struct vs_error **errp)
{
	struct vbd_spec *spec = NULL;
	struct blkback_disk *d;
	int ret;

	ret = vbd_spec_parse(spec_text, &spec, errp);
	if (ret < 0)
		return ret;
	/* The parser insists on a vdev; the name is what exports and the
	 * control socket call the disk, so make sure. */
	if (!spec->vdev || !*spec->vdev) {
		ret = vs_error_set(errp, EINVAL, "disk spec '%s' has no vdev",
				   spec_text);
		goto out;
	}
	d = calloc(1, sizeof(*d));
	if (!d || !(d->name = strdup(spec->vdev))) {
		free(d);
		ret = vs_error_set(errp, ENOMEM, "out of memory");
		goto out;
	}
	ret = vbd_open(spec, vbd_flags, VBD_AIO_DEFAULT, &d->vbd, errp);
	if (ret < 0) {
		vs_error_prefix(errp, "disk %s", d->name);
		free(d->name);
		free(d);
		goto out;
	}
	d->size = vbd_size(d->vbd);
	d->readonly = vbd_readonly(d->vbd);
	d->discard = spec->discard != VBD_NO;
	d->refs = 1;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->idle, NULL);
	pthread_cond_init(&d->unused, NULL);
	vs_debug("blkback", "disk %s: %s (%s), %llu bytes%s", d->name,
		 vbd_filename(d->vbd), vbd_format(d->vbd),
		 (unsigned long long)d->size, d->readonly ? ", read-only" : "");
	*out = d;
	ret = 0;
out:
	vbd_spec_free(spec);
	return ret;
}

struct blkback_disk *blkback_disk_ref(struct blkback_disk *d)
{
	pthread_mutex_lock(&d->lock);
	d->refs++;
	pthread_mutex_unlock(&d->lock);
	return d;
}

static int disk_destroy(struct blkback_disk *d)
{
	int ret;

	blkback_disk_drain(d);
	ret = d->readonly ? 0 : vbd_flush(d->vbd);
	if (ret < 0)
		vs_log(VS_LOG_ERROR, "blkback",
		       "disk %s: flush of %s failed: %s", d->name,
		       vbd_filename(d->vbd), strerror(-ret));
	vs_debug("blkback", "disk %s: closed", d->name);
	vbd_close(d->vbd);
	pthread_cond_destroy(&d->unused);
	pthread_cond_destroy(&d->idle);
	pthread_mutex_destroy(&d->lock);
	free(d->name);
	free(d);
	return ret;
}

int blkback_disk_close(struct blkback_disk *d)
{
	unsigned left;

	pthread_mutex_lock(&d->lock);
	left = --d->refs;
	if (left == 1)
		pthread_cond_broadcast(&d->unused);
	pthread_mutex_unlock(&d->lock);
	return left ? 0 : disk_destroy(d);
}

void blkback_disk_unref(struct blkback_disk *d)
{
	if (d)
		blkback_disk_close(d);
}

bool blkback_disk_wait_unused(struct blkback_disk *d, unsigned wait_ms)
{
	struct timespec until;
	bool alone;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += wait_ms / 1000;
	until.tv_nsec += (long)(wait_ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&d->lock);
	while (d->refs > 1 && pthread_cond_timedwait(&d->unused, &d->lock,
						     &until) != ETIMEDOUT)
		;
	alone = d->refs == 1;
	pthread_mutex_unlock(&d->lock);
	return alone;
}

const char *blkback_disk_name(const struct blkback_disk *d)
{
	return d->name;
}

struct vbd *blkback_disk_vbd(const struct blkback_disk *d)
{
	return d->vbd;
}

uint64_t blkback_disk_size(const struct blkback_disk *d)
{
	return d->size;
}

bool blkback_disk_readonly(const struct blkback_disk *d)
{
	return d->readonly;
}

bool blkback_disk_discard(const struct blkback_disk *d)
{
	return d->discard;
}

const char *blkback_disk_format(const struct blkback_disk *d)
{
	return vbd_format(d->vbd);
}

bool blkback_disk_retired(const struct blkback_disk *d)
{
	return __atomic_load_n(&d->retired, __ATOMIC_SEQ_CST);
}

void blkback_disk_retire(struct blkback_disk *d)
{
	/* Sequentially consistent, as is the request path's increment of
	 * in_flight before it reads `retired`: either a submitter sees the
	 * flag, or the drain below sees its request. */
	__atomic_store_n(&d->retired, true, __ATOMIC_SEQ_CST);
	blkback_disk_drain(d);
}

void blkback_disk_drain(struct blkback_disk *d)
{
	pthread_mutex_lock(&d->lock);
	while (__atomic_load_n(&d->in_flight, __ATOMIC_SEQ_CST))
		pthread_cond_wait(&d->idle, &d->lock);
	pthread_mutex_unlock(&d->lock);
}

void blkback_disk_put_in_flight(struct blkback_disk *d)
{
	uint64_t cur = __atomic_load_n(&d->in_flight, __ATOMIC_SEQ_CST);

	/* Most completions leave others in flight: a compare-and-swap
	 * suffices.  The last one takes the lock, so that a drainer that
	 * sees zero (under the lock) cannot free the disk while this
	 * thread still touches it. */
	while (cur > 1)
		if (__atomic_compare_exchange_n(&d->in_flight, &cur, cur - 1,
						false, __ATOMIC_SEQ_CST,
						__ATOMIC_SEQ_CST))
			return;
	pthread_mutex_lock(&d->lock);
	if (__atomic_sub_fetch(&d->in_flight, 1, __ATOMIC_SEQ_CST) == 0)
		pthread_cond_broadcast(&d->idle);
	pthread_mutex_unlock(&d->lock);
}

void blkback_disk_stats(const struct blkback_disk *d, struct blkback_stats *out)
{
	for (int i = 0; i < BLKBACK_OP_COUNT; i++) {
		const struct blkback_op_stats *s = &d->stats[i];

		out->op[i].ops = __atomic_load_n(&s->ops, __ATOMIC_RELAXED);
		out->op[i].errors =
			__atomic_load_n(&s->errors, __ATOMIC_RELAXED);
		out->op[i].bytes = __atomic_load_n(&s->bytes, __ATOMIC_RELAXED);
		out->op[i].lat_ns =
			__atomic_load_n(&s->lat_ns, __ATOMIC_RELAXED);
		out->op[i].max_lat_ns =
			__atomic_load_n(&s->max_lat_ns, __ATOMIC_RELAXED);
	}
	out->in_flight = __atomic_load_n(&d->in_flight, __ATOMIC_RELAXED);
}

const char *blkback_op_name(enum blkback_op op)
{
	static const char *const names[BLKBACK_OP_COUNT] = {
		[BLKBACK_OP_READ] = "read",
		[BLKBACK_OP_WRITE] = "write",
		[BLKBACK_OP_FLUSH] = "flush",
		[BLKBACK_OP_DISCARD] = "discard",
		[BLKBACK_OP_WRITE_ZEROES] = "write-zeroes",
	};

	return (unsigned)op < BLKBACK_OP_COUNT ? names[op] : "unknown";
}

uint64_t blkback_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

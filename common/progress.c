/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Progress lines for people (stderr) and scripts (JSON on a fd). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "progress.h"

struct vs_progress {
	pthread_mutex_t lock;
	bool bar;
	int fd;
	uint64_t done, total;
	/* What was last shown, in hundredths of a percent (-1: nothing
	 * yet), and when. */
	int64_t shown;
	uint64_t shown_ns, shown_done;
	bool fd_broken; /* the script went away: stop writing */
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Hundredths of a percent, without overflow for any 64-bit sizes. */
static int64_t hundredths(uint64_t done, uint64_t total)
{
	if (!total || done >= total)
		return 10000;
	return (int64_t)((long double)done * 10000.0L / (long double)total);
}

int vs_progress_json(char *buf, unsigned buflen, uint64_t done, uint64_t total)
{
	int n = snprintf(buf, buflen,
			 "{\"done\": %" PRIu64 ", \"total\": %" PRIu64 "}\n",
			 done, total);

	return n < 0 ? 0 : n >= (int)buflen ? (int)buflen - 1 : n;
}

struct vs_progress *vs_progress_new(bool bar, int fd)
{
	struct vs_progress *p;

	if (!bar && fd < 0)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	pthread_mutex_init(&p->lock, NULL);
	p->bar = bar;
	p->fd = fd;
	p->shown = -1;
	return p;
}

/* The whole line or nothing more: a script reading the fd must never see
 * half a line followed by another one. */
static void write_fd(struct vs_progress *p, const char *buf, size_t len)
{
	while (len && !p->fd_broken) {
		ssize_t n = write(p->fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			p->fd_broken = true;
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

static void show(struct vs_progress *p, int64_t h)
{
	char line[96];
	int n;

	if (p->bar) {
		fprintf(stderr, "    (%" PRId64 ".%02" PRId64 "/100%%)\r",
			h / 100, h % 100);
		fflush(stderr);
	}
	if (p->fd >= 0) {
		n = vs_progress_json(line, sizeof(line), p->done, p->total);
		write_fd(p, line, (size_t)n);
	}
	p->shown = h;
	p->shown_done = p->done;
	p->shown_ns = now_ns();
}

void vs_progress_update(struct vs_progress *p, uint64_t done, uint64_t total)
{
	int64_t h;

	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	if (done > p->done || total != p->total) {
		p->done = done > p->done ? done : p->done;
		p->total = total;
		h = hundredths(p->done, total);
		/* The first line at once; then on a new hundredth at most
		 * ten times a second, and on every whole percent. */
		if (p->shown < 0 ||
		    (h != p->shown && now_ns() - p->shown_ns >= 100000000u) ||
		    h / 100 != p->shown / 100)
			show(p, h);
	}
	pthread_mutex_unlock(&p->lock);
}

void vs_progress_end(struct vs_progress *p, bool success)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	if (success && (p->shown < 0 || p->shown_done != p->total)) {
		p->done = p->total;
		show(p, 10000);
	}
	if (p->bar && p->shown >= 0)
		fputc('\n', stderr);
	pthread_mutex_unlock(&p->lock);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

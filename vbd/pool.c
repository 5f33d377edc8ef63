/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The process-wide worker pool.
 *
 * One FIFO of jobs under one mutex.  A worker is started when a job is
 * queued and no idle worker is left to take it, up to max_workers; idle
 * workers wait IDLE_SECONDS for work and then exit, so that a burst does
 * not leave dozens of threads behind.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <time.h>

#include "pool.h"

#define DEFAULT_MAX_WORKERS 64
#define IDLE_SECONDS	    10

static struct {
	pthread_mutex_t lock;
	pthread_cond_t work;
	struct vbd_pool_job *head, *tail;
	unsigned queued;  /* jobs in the FIFO */
	unsigned workers; /* running workers, idle or not */
	unsigned idle;	  /* workers waiting on `work` */
	unsigned max_workers;
} pool = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.max_workers = DEFAULT_MAX_WORKERS,
};

/* Condition variables cannot be statically initialized with a monotonic
 * clock, and a wall-clock jump must not wake (or starve) idle workers. */
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void pool_init(void)
{
	pthread_condattr_t attr;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&pool.work, &attr);
	pthread_condattr_destroy(&attr);
}

static struct vbd_pool_job *pool_pop_locked(void)
{
	struct vbd_pool_job *job = pool.head;

	if (job) {
		pool.head = job->next;
		if (!pool.head)
			pool.tail = NULL;
		pool.queued--;
	}
	return job;
}

/*
 * Wait for a job.  NULL tells the worker to leave: it has been idle for
 * IDLE_SECONDS, or there are more workers than the (lowered) limit.
 */
static struct vbd_pool_job *pool_wait_locked(void)
{
	struct timespec deadline;
	int ret = 0;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += IDLE_SECONDS;
	for (;;) {
		if (pool.workers > pool.max_workers)
			return NULL;
		if (pool.head)
			return pool_pop_locked();
		if (ret == ETIMEDOUT)
			return NULL;
		pool.idle++;
		ret = pthread_cond_timedwait(&pool.work, &pool.lock, &deadline);
		pool.idle--;
	}
}

static void *pool_worker(void *arg)
{
	struct vbd_pool_job *job;

	(void)arg;
	pthread_mutex_lock(&pool.lock);
	while ((job = pool_wait_locked())) {
		pthread_mutex_unlock(&pool.lock);
		/* The job may free itself; it is not touched afterwards. */
		job->fn(job);
		pthread_mutex_lock(&pool.lock);
	}
	pool.workers--;
	/* This worker may have taken the wakeup meant for a queued job. */
	if (pool.head)
		pthread_cond_signal(&pool.work);
	pthread_mutex_unlock(&pool.lock);
	return NULL;
}

/*
 * Workers run with every signal blocked: a signal meant for the main
 * thread (SIGINT, SIGTERM) must not land in a worker, and an EINTR in
 * the middle of a job helps nobody.
 */
static int pool_spawn_locked(void)
{
	sigset_t all, old;
	pthread_attr_t attr;
	pthread_t tid;
	int ret;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = pthread_create(&tid, &attr, pool_worker, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (ret)
		return -ret;
	pthread_setname_np(tid, "vbd-pool");
	pool.workers++;
	return 0;
}

void vbd_pool_run(struct vbd_pool_job *job)
{
	bool inline_run = false;

	pthread_once(&pool_once, pool_init);
	job->next = NULL;
	pthread_mutex_lock(&pool.lock);
	if (pool.tail)
		pool.tail->next = job;
	else
		pool.head = job;
	pool.tail = job;
	pool.queued++;
	/*
	 * An idle worker that was signalled but has not woken yet still
	 * counts as idle, so compare with everything queued: a second job
	 * must not wait behind the first for the same worker.
	 */
	if (pool.queued > pool.idle && pool.workers < pool.max_workers &&
	    pool_spawn_locked() < 0 && pool.workers == 0) {
		/* No thread at all and none can be made: the caller's thread
		 * is the only one left to do the work. */
		inline_run = true;
		job = pool_pop_locked();
	} else {
		pthread_cond_signal(&pool.work);
	}
	pthread_mutex_unlock(&pool.lock);
	if (inline_run && job)
		job->fn(job);
}

void vbd_pool_set_max_workers(unsigned n)
{
	pthread_mutex_lock(&pool.lock);
	pool.max_workers = n ? n : 1;
	pthread_mutex_unlock(&pool.lock);
	/* Idle workers above the new limit leave now. */
	pthread_once(&pool_once, pool_init);
	pthread_cond_broadcast(&pool.work);
}

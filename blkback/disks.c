/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The disk table of the running server: the disks by name, in the order
 * they were added (the first one is NBD's default export).  Lookups come
 * from connection threads (NBD export names), changes from the server
 * under its own lock; a small list under a mutex is enough for the
 * handful of disks one server holds.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "disk-priv.h"
#include "server.h"

struct entry {
	struct blkback_disk *disk; /* the table's reference */
	struct entry *next;
};

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry *table;

static struct entry **find_locked(const char *name)
{
	struct entry **p;

	for (p = &table; *p; p = &(*p)->next)
		if (!strcmp((*p)->disk->name, name))
			break;
	return p;
}

int blkback_disks_add(struct blkback_disk *d, struct vs_error **errp)
{
	struct entry *e = malloc(sizeof(*e)), **p;

	if (!e)
		return vs_error_set(errp, ENOMEM, "out of memory");
	pthread_mutex_lock(&table_lock);
	p = find_locked(d->name);
	if (*p) {
		pthread_mutex_unlock(&table_lock);
		free(e);
		return vs_error_set(errp, EEXIST,
				    "disk %s: a disk of that name is already "
				    "served",
				    d->name);
	}
	e->disk = blkback_disk_ref(d);
	e->next = NULL;
	*p = e;
	pthread_mutex_unlock(&table_lock);
	return 0;
}

struct blkback_disk *blkback_disks_remove(const char *name)
{
	struct blkback_disk *d = NULL;
	struct entry **p, *e;

	pthread_mutex_lock(&table_lock);
	p = find_locked(name);
	if (*p) {
		e = *p;
		*p = e->next;
		d = e->disk;
		free(e);
	}
	pthread_mutex_unlock(&table_lock);
	return d;
}

struct blkback_disk *blkback_disks_find(const char *name)
{
	struct blkback_disk *d = NULL;
	struct entry **p;

	if (!name)
		return NULL;
	pthread_mutex_lock(&table_lock);
	p = find_locked(name);
	if (*p)
		d = blkback_disk_ref((*p)->disk);
	pthread_mutex_unlock(&table_lock);
	return d;
}

struct blkback_disk *blkback_disks_first(void)
{
	struct blkback_disk *d = NULL;

	pthread_mutex_lock(&table_lock);
	if (table)
		d = blkback_disk_ref(table->disk);
	pthread_mutex_unlock(&table_lock);
	return d;
}

void blkback_disks_foreach(void (*fn)(struct blkback_disk *d, void *opaque),
			   void *opaque)
{
	pthread_mutex_lock(&table_lock);
	for (struct entry *e = table; e; e = e->next)
		fn(e->disk, opaque);
	pthread_mutex_unlock(&table_lock);
}

unsigned blkback_disks_count(void)
{
	unsigned n = 0;

	pthread_mutex_lock(&table_lock);
	for (struct entry *e = table; e; e = e->next)
		n++;
	pthread_mutex_unlock(&table_lock);
	return n;
}

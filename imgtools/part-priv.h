/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Inside imgtools' partition mapping (part-*.c): loop devices, device-
 * mapper maps, the disk made ready as a block device, and the state file
 * that unmap reads.  Only part-map.c and part-*.c include this; cli/ uses
 * part-map.h and part-table.h.
 */
#ifndef VS_IMGTOOLS_PART_PRIV_H
#define VS_IMGTOOLS_PART_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "../common/error.h"

/* ---- loop devices (part-loop.c) ---- */

/* What a bound loop device is: enough to recognise it later, when its
 * number may have gone to someone else. */
struct img_loop {
	char dev[32]; /* "/dev/loop3" */
	dev_t rdev;
	uint64_t backing_dev, backing_ino; /* the file or device behind */
	uint64_t offset, sizelimit;	   /* bytes */
	bool autoclear;
};

/*
 * Bind a free loop device to the file or device open on `backing_fd`
 * (`name` goes into the loop's file-name field), `offset` and
 * `sizelimit` in bytes (0: to the end).  With `autoclear` the kernel
 * detaches it when its last opener closes.  Returns the loop device open
 * (read-only or read-write as `ro` says) in *fd and what it is in *out.
 */
int img_loop_attach(int backing_fd, const char *name, uint64_t offset,
		    uint64_t sizelimit, bool ro, bool autoclear,
		    struct img_loop *out, int *fd, struct vs_error **errp);

/* What `dev` is bound to now: 0, -ENXIO when unbound, or -errno. */
int img_loop_status(const char *dev, struct img_loop *out);

/* A loop device bound to the whole of the file (st_dev, st_ino), with
 * no offset or size limit: 1 and *out, or 0 when there is none. */
int img_loop_find(uint64_t st_dev, uint64_t st_ino, struct img_loop *out);

/* A loop device whose backing file is the path `path` (a block device
 * that partition loops were attached to): 1 and its name, or 0. */
int img_loop_find_on(const char *path, char *found, size_t len);

/*
 * Detach `want` if the loop device still is what it was (same backing
 * file, offset and size limit): 0 when detached or already gone (also
 * when its number now belongs to another file: then it is left alone).
 * The kernel defers the detach of a device still open elsewhere; `wait`
 * waits (bounded) until it is unbound.
 */
int img_loop_detach(const struct img_loop *want, bool wait,
		    struct vs_error **errp);

/*
 * Is the block device `dev` (rdev) in use: mounted, held by a device
 * stacked on it, or open in a process other than this one?  1 and a
 * reason in `why`, or 0.
 */
int img_dev_busy(const char *dev, dev_t rdev, char *why, size_t len);

/* ---- device-mapper (part-dm.c) ---- */

/* Device-mapper works here: /dev/mapper/control opens and the kernel
 * answers a version query. */
bool img_dm_available(void);

/* If `devt` is a device-mapper device: 1, its name and its uuid ("" when
 * it has none); 0 for other devices; -errno. */
int img_dm_name_of(dev_t devt, char *name, size_t nlen, char *uuid,
		   size_t ulen);

struct img_dm_info {
	bool exists;
	dev_t devt;
	int open_count;
	char uuid[160];
	/* The table when it is one linear target: */
	bool linear;
	uint64_t length;  /* sectors */
	dev_t target_dev; /* of the linear target */
	uint64_t target_start;
};

int img_dm_info(const char *name, struct img_dm_info *out,
		struct vs_error **errp);

/* A linear map `name` of `size` sectors onto (`dev`, `start`), with the
 * node's mode and owner taken from `like` (as kpartx does). */
int img_dm_create_linear(const char *name, const char *uuid, uint64_t size,
			 dev_t dev, uint64_t start, bool ro, mode_t mode,
			 uid_t uid, gid_t gid, dev_t *out,
			 struct vs_error **errp);

int img_dm_remove(const char *name, struct vs_error **errp);

/* Names of every device-mapper device, NUL-separated in *names (the
 * caller frees it), *n of them. */
int img_dm_list(char **names, size_t *n, struct vs_error **errp);

/* ---- the state file (part-state.c) ---- */

enum img_part_map_kind {
	IMG_MAP_DM,
	IMG_MAP_LOOP,
};

struct img_part_rec {
	char name[128]; /* kpartx's name: loop0p1 */
	enum img_part_map_kind kind;
	char dev[160]; /* /dev/mapper/loop0p1 or /dev/loop5 */
	unsigned number;
	struct img_loop loop; /* IMG_MAP_LOOP: the partition's loop */
};

/* What map made and unmap undoes, in /run/vstor/part/KEY.json (the
 * folder is $VSTOR_PART_STATE_DIR when set). */
struct img_part_state {
	char disk[4096];   /* the disk as given, resolved */
	char format[32];   /* of the image file; "raw" for a device */
	bool loop_created; /* `whole` was attached by map */
	bool has_whole;
	struct img_loop whole; /* the loop device holding an image file */
	pid_t serve_pid;       /* the FUSE server map started, or 0 */
	uint64_t serve_start;  /* its start time (/proc/PID/stat) */
	char fuse_file[4096];
	char pidfile[4096];
	size_t n;
	struct img_part_rec recs[];
};

struct img_part_state *img_part_state_new(size_t n);

/* The state folder (created 0700 when missing) and the key of a disk:
 * "file-DEV-INO" for an image file, "dev-MAJ-MIN" for a block device. */
int img_part_state_dir(char *buf, size_t len, struct vs_error **errp);
void img_part_state_key(const struct stat *st, char *buf, size_t len);

/* Write (atomically) or read DIR/KEY.json; read gives -ENOENT when
 * there is none. */
int img_part_state_save(const char *dir, const char *key,
			const struct img_part_state *s, struct vs_error **errp);
int img_part_state_load(const char *dir, const char *key,
			struct img_part_state **out, struct vs_error **errp);
int img_part_state_remove(const char *dir, const char *key,
			  struct vs_error **errp);

/* The text of a state file (what save writes), malloc'd; NULL when out
 * of memory.  Parse takes len bytes of text (ending early at a NUL) as
 * load does the file's, `path` naming it in errors. */
char *img_part_state_format(const struct img_part_state *s);
int img_part_state_parse(const char *text, size_t len, const char *path,
			 struct img_part_state **out, struct vs_error **errp);

/* ---- a FUSE export through `vstor serve` (part-serve.c) ---- */

/* Start `vstor serve --daemonize` showing `image` (of `format`) as the
 * file `fuse_file`; its pid and start time in *pid, *start. */
int img_part_serve_start(const char *image, const char *format, bool ro,
			 const char *fuse_file, const char *pidfile, pid_t *pid,
			 uint64_t *start, struct vs_error **errp);

/* SIGTERM to the server if it still is the process started at `start`,
 * then wait (bounded) until it has gone. */
int img_part_serve_stop(pid_t pid, uint64_t start, struct vs_error **errp);

/* The start time of process `pid` (/proc/PID/stat field 22), 0 if it is
 * gone or a zombie. */
uint64_t img_part_proc_start(pid_t pid);

#endif

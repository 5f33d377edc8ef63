/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Changed blocks of a thin LV between two thin snapshots: thin_delta on
 * a metadata snapshot of the pool (the pool stays live meanwhile; the
 * thin ids and the pool messages go through libdevmapper), and the
 * small exec helper that runs thin_delta.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libdevmapper.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "backup-priv.h"
#include "backup-walk.h"
#include "lvm-priv.h"

#define ERR_KEEP 2048u
/* thin_delta prints a line per changed run; 256 MiB is millions of
 * them, far past any sane pool, and bounds what we hold. */
#define DELTA_MAX (256u << 20)

static int grow_append(char **buf, size_t *len, size_t *cap, const char *p,
		       size_t n, size_t max)
{
	if (*len + n > max)
		return -EFBIG;
	if (*len + n + 1 > *cap) {
		size_t ncap = VS_MAX(*cap * 2, *len + n + 1);
		char *nb = realloc(*buf, ncap);

		if (!nb)
			return -ENOMEM;
		*buf = nb;
		*cap = ncap;
	}
	memcpy(*buf + *len, p, n);
	*len += n;
	(*buf)[*len] = 0;
	return 0;
}

static void child(const char *const *argv, int outfd, int errfd)
{
	int devnull = open("/dev/null", O_RDONLY);

	if (devnull >= 0)
		dup2(devnull, 0);
	dup2(outfd, 1);
	dup2(errfd, 2);
	setenv("LC_ALL", "C", 1);
	/* The parent's handlers for SIGINT/SIGTERM do not survive exec,
	 * but an ignored SIGPIPE would: give the tool the default. */
	signal(SIGPIPE, SIG_DFL);
	execvp(argv[0], (char *const *)argv);
	dprintf(2, "cannot run %s: %s", argv[0], strerror(errno));
	_exit(127);
}

int lvm_backup_exec(const char *const *argv, size_t max, char **out,
		    struct vs_error **errp)
{
	int op[2], ep[2], status, ret = 0;
	autofree char *obuf = NULL;
	char ebuf[ERR_KEEP + 1] = "";
	size_t olen = 0, ocap = 0, elen = 0;
	pid_t pid;

	if (pipe2(op, O_CLOEXEC) < 0)
		return vs_error_set_errno(errp, errno, "%s: pipe", argv[0]);
	if (pipe2(ep, O_CLOEXEC) < 0) {
		close(op[0]);
		close(op[1]);
		return vs_error_set_errno(errp, errno, "%s: pipe", argv[0]);
	}
	pid = fork();
	if (pid == 0)
		child(argv, op[1], ep[1]);
	close(op[1]);
	close(ep[1]);
	if (pid < 0) {
		close(op[0]);
		close(ep[0]);
		return vs_error_set_errno(errp, errno, "%s: fork", argv[0]);
	}
	struct pollfd pf[2] = {{op[0], POLLIN, 0}, {ep[0], POLLIN, 0}};
	while (pf[0].fd >= 0 || pf[1].fd >= 0) {
		char tmp[65536];

		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		for (int i = 0; i < 2; i++) {
			ssize_t n;

			if (pf[i].fd < 0 || !pf[i].revents)
				continue;
			n = read(pf[i].fd, tmp, sizeof(tmp));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				close(pf[i].fd);
				pf[i].fd = -1;
				continue;
			}
			if (i == 1) {
				size_t k = VS_MIN((size_t)n, ERR_KEEP - elen);

				memcpy(ebuf + elen, tmp, k);
				elen += k;
				ebuf[elen] = 0;
			} else if (out && ret == 0) {
				ret = grow_append(&obuf, &olen, &ocap, tmp,
						  (size_t)n, max);
			}
		}
	}
	for (int i = 0; i < 2; i++)
		if (pf[i].fd >= 0)
			close(pf[i].fd);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return vs_error_set_errno(errp, errno, "%s: waitpid",
						  argv[0]);
	while (elen && (ebuf[elen - 1] == '\n' || ebuf[elen - 1] == ' '))
		ebuf[--elen] = 0;
	for (char *p = ebuf; *p; p++)
		if (*p == '\n')
			*p = ' ';
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return vs_error_set(errp, EIO, "%s %s failed (%s %d)%s%s",
				    argv[0], argv[1] ? argv[1] : "",
				    WIFEXITED(status) ? "exit status"
						      : "signal",
				    WIFEXITED(status) ? WEXITSTATUS(status)
						      : WTERMSIG(status),
				    elen ? ": " : "", ebuf);
	if (ret == -EFBIG)
		return vs_error_set(errp, EFBIG,
				    "%s: more than %zu bytes of output",
				    argv[0], max);
	if (ret < 0)
		return vs_error_set_errno(errp, -ret, "%s: reading its output",
					  argv[0]);
	if (out) {
		if (!obuf)
			obuf = strdup("");
		if (!obuf)
			return vs_error_set(errp, ENOMEM, "out of memory");
		*out = vs_steal(&obuf);
	}
	return 0;
}

/* --- thin_delta's XML --------------------------------------------- */

/*
 * The output is a flat list of self-closing tags inside <superblock>
 * and <diff>:
 *
 *   <superblock uuid="" time="2" transaction="3" data_block_size="128"
 *               nr_data_blocks="0">
 *     <diff left="2" right="3">
 *       <left_only begin="0" length="1"/>
 *       <same begin="1" length="2"/>
 *       <different begin="3" length="2"/>
 *       <right_only begin="200" length="1"/>
 *     </diff>
 *   </superblock>
 *
 * in data blocks of data_block_size sectors.  left_only (unmapped now:
 * reads zeros), different and right_only are changes; same is not.
 * Anything else (--verbose's nested <range> form included) is refused
 * rather than guessed at.
 */

struct xml_tag {
	char name[32];
	uint64_t begin, length, dbs;
	bool has_begin, has_length, has_dbs;
	bool closing;
};

static int parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (!n || n > 20)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

/* One tag starting at p ('<'); *end is set past its '>'. */
static int next_tag(const char *p, const char *lim, struct xml_tag *t,
		    const char **end)
{
	const char *q = p + 1;
	size_t n;

	memset(t, 0, sizeof(*t));
	if (q < lim && *q == '/') {
		t->closing = true;
		q++;
	}
	n = 0;
	while (q + n < lim && (q[n] == '_' || (q[n] >= 'a' && q[n] <= 'z')))
		n++;
	if (!n || n >= sizeof(t->name))
		return -EINVAL;
	memcpy(t->name, q, n);
	q += n;
	for (;;) {
		const char *k, *v;
		size_t kn, vn;
		uint64_t x;

		while (q < lim && (*q == ' ' || *q == '\t' || *q == '\n'))
			q++;
		if (q < lim && *q == '>') {
			*end = q + 1;
			return 0;
		}
		if (q + 1 < lim && q[0] == '/' && q[1] == '>') {
			*end = q + 2;
			return 0;
		}
		k = q;
		while (q < lim && ((*q >= 'a' && *q <= 'z') || *q == '_'))
			q++;
		kn = (size_t)(q - k);
		if (!kn || q + 1 >= lim || q[0] != '=' || q[1] != '"')
			return -EINVAL;
		v = q + 2;
		q = memchr(v, '"', (size_t)(lim - v));
		if (!q)
			return -EINVAL;
		vn = (size_t)(q - v);
		q++;
		if (kn == 5 && !memcmp(k, "begin", 5)) {
			if (parse_u64(v, vn, &x) < 0)
				return -EINVAL;
			t->begin = x;
			t->has_begin = true;
		} else if (kn == 6 && !memcmp(k, "length", 6)) {
			if (parse_u64(v, vn, &x) < 0)
				return -EINVAL;
			t->length = x;
			t->has_length = true;
		} else if (kn == 15 && !memcmp(k, "data_block_size", 15)) {
			if (parse_u64(v, vn, &x) < 0)
				return -EINVAL;
			t->dbs = x;
			t->has_dbs = true;
		}
	}
}

static int mark(const char *what, uint64_t block_bytes, const struct xml_tag *t,
		uint64_t nclusters, uint8_t *changed, struct vs_error **errp)
{
	uint64_t cs = LVM_BACKUP_CLUSTER, start, len, first, last;

	if (!t->has_begin || !t->has_length || !t->length ||
	    t->begin > UINT64_MAX / block_bytes ||
	    t->length > UINT64_MAX / block_bytes)
		return vs_error_set(errp, EINVAL,
				    "%s: <%s> without a valid begin and length",
				    what, t->name);
	start = t->begin * block_bytes;
	len = t->length * block_bytes;
	if (start > UINT64_MAX - len || start / cs >= nclusters ||
	    (start + len - 1) / cs >= nclusters)
		return vs_error_set(errp, EINVAL,
				    "%s: <%s begin=\"%" PRIu64
				    "\" length=\"%" PRIu64
				    "\"> lies past the end of the volume",
				    what, t->name, t->begin, t->length);
	first = start / cs;
	last = (start + len - 1) / cs;
	for (uint64_t i = first; i <= last; i++)
		lvm_bit_set(changed, i);
	return 0;
}

int lvm_thin_delta_parse(const char *xml, size_t len, const char *what,
			 uint64_t nclusters, uint8_t *changed,
			 struct vs_error **errp)
{
	const char *p = xml, *lim = xml + len;
	uint64_t block_bytes = 0;
	int depth = 0, diffs = 0;
	bool done = false;

	while ((p = memchr(p, '<', (size_t)(lim - p)))) {
		struct xml_tag t;
		const char *end;
		int ret;

		if (done)
			return vs_error_set(errp, EINVAL,
					    "%s: text after </superblock>",
					    what);
		if (next_tag(p, lim, &t, &end) < 0)
			return vs_error_set(errp, EINVAL,
					    "%s: malformed tag at byte %zu",
					    what, (size_t)(p - xml));
		p = end;
		if (t.closing) {
			if (!strcmp(t.name, "diff") && depth == 2)
				depth = 1;
			else if (!strcmp(t.name, "superblock") && depth == 1)
				depth = 0, done = true;
			else
				return vs_error_set(errp, EINVAL,
						    "%s: unexpected </%s>",
						    what, t.name);
			continue;
		}
		if (!strcmp(t.name, "superblock") && depth == 0) {
			/* Sectors per block: a power of two in dm-thin's
			 * range (64 KiB to 1 GiB). */
			if (!t.has_dbs || t.dbs < 128 || t.dbs > (1u << 21) ||
			    (t.dbs & (t.dbs - 1)))
				return vs_error_set(
					errp, EINVAL,
					"%s: data_block_size missing or out of "
					"range (128..2097152 sectors)",
					what);
			block_bytes = t.dbs * 512;
			depth = 1;
		} else if (!strcmp(t.name, "diff") && depth == 1) {
			depth = 2;
			diffs++;
		} else if (depth == 2 && !strcmp(t.name, "same")) {
			continue;
		} else if (depth == 2 && (!strcmp(t.name, "different") ||
					  !strcmp(t.name, "left_only") ||
					  !strcmp(t.name, "right_only"))) {
			ret = mark(what, block_bytes, &t, nclusters, changed,
				   errp);
			if (ret < 0)
				return ret;
		} else {
			return vs_error_set(errp, EINVAL, "%s: unexpected <%s>",
					    what, t.name);
		}
	}
	if (!done || diffs != 1)
		return vs_error_set(errp, EINVAL,
				    "%s: incomplete output (no closed "
				    "<superblock> with one <diff>)",
				    what);
	return 0;
}

/* --- the thin ids and the pool ------------------------------------ */

/* dm's name for VG/LV: dashes doubled, joined by one dash. */
static char *dm_name(const char *vg, const char *lv, const char *suffix)
{
	size_t n = 2 * (strlen(vg) + strlen(lv)) + strlen(suffix) + 2;
	char *s = malloc(n), *q = s;

	if (!s)
		return NULL;
	for (const char *p = vg; *p; p++) {
		if (*p == '-')
			*q++ = '-';
		*q++ = *p;
	}
	*q++ = '-';
	for (const char *p = lv; *p; p++) {
		if (*p == '-')
			*q++ = '-';
		*q++ = *p;
	}
	strcpy(q, suffix);
	return s;
}

/*
 * The thin device id of the active thin LV whose dm name is `dm`, read
 * from its table through libdevmapper, and its dm uuid.  In-process: an
 * lvs run costs a second or more on a busy host, which would dwarf a
 * small incremental backup.
 */
static int dm_thin_id(const char *dm, uint64_t *id, char **dm_uuid,
		      struct vs_error **errp)
{
	struct lvm_dm_table tb;
	dev_t pool;
	int ret = lvm_dm_table_one(dm, &tb);

	if (ret == -ENOMEM)
		return vs_error_set(errp, ENOMEM, "out of memory");
	if (ret == -ENOENT)
		return vs_error_set(errp, ENOENT, "%s: no such active device",
				    dm);
	if (ret == -EINVAL)
		return vs_error_set(errp, EINVAL,
				    "%s: not a single thin target", dm);
	if (ret < 0)
		return vs_error_set(errp, EIO, "%s: cannot read its table", dm);
	if (strcmp(tb.type, "thin"))
		ret = vs_error_set(errp, EINVAL,
				   "%s: not a single thin target (%s)", dm,
				   tb.type);
	else if (lvm_dm_thin_params_parse(tb.params, &pool, id) < 0)
		ret = vs_error_set(errp, EINVAL,
				   "%s: thin table '%s' without a device id",
				   dm, tb.params);
	else
		*dm_uuid = vs_steal(&tb.uuid);
	lvm_dm_table_clear(&tb);
	return ret;
}

/* The thin ids of OLD and NEW, and OLD checked to be the recorded LV. */
static int thin_ids(const struct lvm_lv *origin, const char *old,
		    const char *old_uuid, const char *new, uint64_t *a,
		    uint64_t *b, struct vs_error **errp)
{
	autofree char *d1 = dm_name(origin->vg, old, "");
	autofree char *d2 = dm_name(origin->vg, new, "");
	autofree char *u1 = NULL, *u2 = NULL;
	int ret;

	if (!d1 || !d2)
		return vs_error_set(errp, ENOMEM, "out of memory");
	if ((ret = dm_thin_id(d1, a, &u1, errp)) < 0 ||
	    (ret = dm_thin_id(d2, b, &u2, errp)) < 0)
		return ret;
	if (!lvm_dm_uuid_is_lv(u1, old_uuid))
		return vs_error_set(errp, ESTALE,
				    "%s/%s is not the last backup's snapshot "
				    "(its uuid changed)",
				    origin->vg, old);
	return 0;
}

/* A message to the pool's target, as `dmsetup message DM 0 MSG`. */
static int pool_message(const char *tpool, const char *msg,
			struct vs_error **errp)
{
	struct dm_task *t = dm_task_create(DM_DEVICE_TARGET_MSG);
	int ret = 0;

	if (!t)
		return vs_error_set(errp, ENOMEM, "out of memory");
	if (!dm_task_set_name(t, tpool) || !dm_task_set_sector(t, 0) ||
	    !dm_task_set_message(t, msg) || !dm_task_run(t))
		ret = vs_error_set(errp, EIO, "%s: message '%s' failed", tpool,
				   msg);
	dm_task_destroy(t);
	return ret;
}

int lvm_thin_changed(const struct lvm_lv *origin, const char *old_snap,
		     const char *old_uuid, const char *new_snap,
		     uint64_t nclusters, uint8_t *changed,
		     struct vs_error **errp)
{
	autofree char *tpool = NULL, *tmeta = NULL, *xml = NULL;
	char id1[24], id2[24];
	uint64_t a = 0, b = 0;
	struct vs_error *err = NULL;
	int ret;

	if (!origin->pool)
		return vs_error_set(errp, EINVAL, "%s/%s is not a thin LV",
				    origin->vg, origin->name);
	ret = thin_ids(origin, old_snap, old_uuid, new_snap, &a, &b, errp);
	if (ret < 0)
		return ret;
	tpool = dm_name(origin->vg, origin->pool, "-tpool");
	tmeta = dm_name(origin->vg, origin->pool, "_tmeta");
	if (!tpool || !tmeta)
		return vs_error_set(errp, ENOMEM, "out of memory");
	{
		char *p = NULL;

		if (asprintf(&p, "/dev/mapper/%s", tmeta) < 0)
			return vs_error_set(errp, ENOMEM, "out of memory");
		free(tmeta);
		tmeta = p;
	}
	snprintf(id1, sizeof(id1), "%" PRIu64, a);
	snprintf(id2, sizeof(id2), "%" PRIu64, b);

	ret = pool_message(tpool, "reserve_metadata_snap", &err);
	if (ret < 0) {
		/* A metadata snapshot left by a crashed run blocks a new
		 * one: release it and try once more. */
		vs_error_free(err);
		err = NULL;
		pool_message(tpool, "release_metadata_snap", NULL);
		ret = pool_message(tpool, "reserve_metadata_snap", errp);
		if (ret < 0)
			return ret;
	}
	const char *argv[] = {"thin_delta", "-m", "--snap1", id1,
			      "--snap2",    id2,  tmeta,     NULL};
	ret = lvm_backup_exec(argv, DELTA_MAX, &xml, errp);
	/* Released whatever happened: a reserved metadata snapshot costs
	 * the pool metadata space for as long as it lives. */
	if (pool_message(tpool, "release_metadata_snap", &err) < 0) {
		if (ret == 0)
			ret = vs_error_set(errp, err->code, "%s",
					   vs_error_msg(err));
		vs_error_free(err);
	}
	if (ret < 0)
		return ret;
	return lvm_thin_delta_parse(xml, strlen(xml), "thin_delta", nclusters,
				    changed, errp);
}

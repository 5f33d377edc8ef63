/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vstor clone --customize: a clone starts as a byte copy of its template,
 * so it would come up with the template's hostname, machine-id and SSH
 * host keys: two machines one could not tell apart, and one host key
 * shared by both.  These are reset here, inside the clone's ext2/3/4
 * file system, with e2fsprogs' debugfs, which edits the file system
 * without mounting it (no kernel file system driver, no mount namespace,
 * nothing for a hostile image to exploit in the host kernel).
 *
 * debugfs reports most failures on stderr and still exits 0, so nothing
 * it is asked to do is trusted: the result is read back and checked.
 */
#include <blkid/blkid.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/log.h"
#include "clone.h"

/* debugfs output read at most (an /etc listing is a few KiB). */
#define MAX_OUTPUT (4 * 1024 * 1024)

/* Where debugfs is when root's PATH is not set (cron, systemd). */
static const char *const debugfs_paths[] = {
	"/usr/sbin/debugfs",
	"/sbin/debugfs",
};

static const char *find_debugfs(void)
{
	for (size_t i = 0; i < VS_ARRAY_SIZE(debugfs_paths); i++)
		if (access(debugfs_paths[i], X_OK) == 0)
			return debugfs_paths[i];
	return "debugfs"; /* then PATH */
}

/* Read a pipe to its end into a NUL-terminated buffer. */
static int read_all(int fd, char **out)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n;

		if (len + 1 >= cap) {
			char *b;

			if (cap >= MAX_OUTPUT) {
				free(buf);
				return -EFBIG;
			}
			b = realloc(buf, cap * 2);
			if (!b) {
				free(buf);
				return -ENOMEM;
			}
			buf = b;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(buf);
			return -errno;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*out = buf;
	return 0;
}

/*
 * Run debugfs with `args` (after the program name), stdout in *out and
 * stderr folded into it: debugfs's messages are part of what is checked.
 */
static int debugfs(const char *const *args, size_t n_args, char **out,
		   const char *what, struct vs_error **err)
{
	const char *argv[16];
	int pfd[2], status, ret;
	pid_t pid;

	if (n_args + 2 > VS_ARRAY_SIZE(argv))
		return vs_error_set(err, E2BIG, "debugfs: too many arguments");
	argv[0] = find_debugfs();
	for (size_t i = 0; i < n_args; i++)
		argv[i + 1] = args[i];
	argv[n_args + 1] = NULL;
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return vs_error_set_errno(err, errno, "pipe");
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		close(pfd[0]);
		close(pfd[1]);
		return vs_error_set_errno(err, -ret, "fork");
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		if (null >= 0)
			dup2(null, STDIN_FILENO);
		dup2(pfd[1], STDOUT_FILENO);
		dup2(pfd[1], STDERR_FILENO);
		execvp(argv[0], (char *const *)argv);
		dprintf(STDERR_FILENO, "cannot run %s: %s\n", argv[0],
			strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	ret = read_all(pfd[0], out);
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (ret < 0)
		return vs_error_set_errno(err, -ret, "%s: debugfs output",
					  what);
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		char *nl = strchr(*out, '\n');

		if (nl && !nl[1])
			*nl = '\0';
		ret = vs_error_set(err, EIO,
				   "%s: debugfs failed (status %d): "
				   "%.300s",
				   what,
				   WIFEXITED(status) ? WEXITSTATUS(status) : -1,
				   *out);
		free(*out);
		*out = NULL;
		return ret;
	}
	return 0;
}

/* One request: `debugfs -R REQUEST PATH`. */
static int debugfs_request(const char *path, const char *request, char **out,
			   const char *what, struct vs_error **err)
{
	const char *args[] = {"-R", request, path};

	return debugfs(args, VS_ARRAY_SIZE(args), out, what, err);
}

/*
 * The entry `name` in debugfs's parseable listing (`ls -p`), whose lines
 * read "/INODE/MODE/UID/GID/NAME/SIZE/".  Returns true and its mode and
 * size when found.
 */
static bool listing_find(const char *listing, const char *name, unsigned *mode,
			 unsigned long long *size)
{
	size_t nlen = strlen(name);

	for (const char *l = listing; l && *l;) {
		const char *nl = strchr(l, '\n'), *p = l, *f[6];
		size_t len = nl ? (size_t)(nl - l) : strlen(l);
		int n = 0;

		for (; p < l + len && n < 6; p++)
			if (*p == '/')
				f[n++] = p + 1;
		if (n == 6 && (size_t)(f[5] - f[4] - 1) == nlen &&
		    !memcmp(f[4], name, nlen)) {
			*mode = (unsigned)strtoul(f[1], NULL, 8);
			*size = strtoull(f[5], NULL, 10);
			return true;
		}
		l = nl ? nl + 1 : NULL;
	}
	return false;
}

/* Names in a listing that start with `prefix`, appended to f as
 * debugfs `rm` commands. */
static size_t listing_rm_prefixed(const char *listing, const char *dir,
				  const char *prefix, FILE *f)
{
	size_t count = 0, plen = strlen(prefix);

	for (const char *l = listing; l && *l;) {
		const char *nl = strchr(l, '\n'), *p = l, *f5[6];
		size_t len = nl ? (size_t)(nl - l) : strlen(l);
		int n = 0;

		for (; p < l + len && n < 6; p++)
			if (*p == '/')
				f5[n++] = p + 1;
		if (n == 6 && f5[5] - f5[4] - 1 > (long)plen &&
		    !memcmp(f5[4], prefix, plen)) {
			int nlen = (int)(f5[5] - f5[4] - 1);

			/* debugfs splits a command line on blanks: a name
			 * holding one could not be named to it. */
			if (!memchr(f5[4], ' ', (size_t)nlen) &&
			    !memchr(f5[4], '"', (size_t)nlen)) {
				if (f)
					fprintf(f, "rm %s/%.*s\n", dir, nlen,
						f5[4]);
				count++;
			}
		}
		l = nl ? nl + 1 : NULL;
	}
	return count;
}

static bool is_dir_mode(unsigned mode)
{
	return (mode & 0170000) == 0040000;
}

/* A partition that may hold a file system: bytes of the disk. */
struct part {
	int no;
	uint64_t start, size;
};

static bool is_ext(const char *fstype)
{
	return !strcmp(fstype, "ext2") || !strcmp(fstype, "ext3") ||
	       !strcmp(fstype, "ext4");
}

/*
 * The partitions of a table blkid found (its numbers come from the
 * image: checked against the disk's size before use).
 */
static int list_parts(blkid_probe pr, uint64_t disk, struct part **out,
		      size_t *n, const char *what, struct vs_error **err)
{
	blkid_partlist ls = blkid_probe_get_partitions(pr);
	int count = ls ? blkid_partlist_numof_partitions(ls) : 0;

	*out = NULL;
	*n = 0;
	if (count <= 0)
		return 0;
	*out = calloc((size_t)count, sizeof(**out));
	if (!*out)
		return vs_error_set(err, ENOMEM, "out of memory");
	for (int i = 0; i < count; i++) {
		blkid_partition p = blkid_partlist_get_partition(ls, i);
		long long start = p ? blkid_partition_get_start(p) : -1;
		long long size = p ? blkid_partition_get_size(p) : -1;

		/* Sectors of 512 bytes, as libblkid counts them. */
		if (start <= 0 || size <= 0 || start > (long long)(disk >> 9) ||
		    size > (long long)(disk >> 9) - start) {
			vs_warn("%s: partition %d lies outside the disk; "
				"skipped",
				what,
				p ? blkid_partition_get_partno(p) : i + 1);
			continue;
		}
		(*out)[*n] = (struct part){
			.no = blkid_partition_get_partno(p),
			.start = (uint64_t)start << 9,
			.size = (uint64_t)size << 9,
		};
		(*n)++;
	}
	return 0;
}

/*
 * blkid's word on `size` bytes at `off` of fd: the file system type, and
 * with `parts`, the partitions of a table there.
 */
static int probe(int fd, uint64_t off, uint64_t size, char *fstype, size_t len,
		 struct part **parts, size_t *n_parts, const char *what,
		 struct vs_error **err)
{
	blkid_probe pr = blkid_new_probe();
	const char *v = NULL;
	int ret;

	fstype[0] = '\0';
	if (parts) {
		*parts = NULL;
		*n_parts = 0;
	}
	if (!pr)
		return vs_error_set(err, ENOMEM, "%s: cannot probe", what);
	if (blkid_probe_set_device(pr, fd, (blkid_loff_t)off,
				   (blkid_loff_t)size) < 0) {
		blkid_free_probe(pr);
		return vs_error_set(err, EIO, "%s: cannot probe", what);
	}
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE);
	blkid_probe_enable_partitions(pr, parts != NULL);
	ret = blkid_do_safeprobe(pr);
	if (ret == 0 && blkid_probe_lookup_value(pr, "TYPE", &v, NULL) == 0)
		snprintf(fstype, len, "%s", v);
	if (ret == 0 && parts &&
	    blkid_probe_lookup_value(pr, "PTTYPE", &v, NULL) == 0)
		ret = list_parts(pr, (uint64_t)blkid_probe_get_size(pr), parts,
				 n_parts, what, err);
	blkid_free_probe(pr);
	if (ret == -2)
		return vs_error_set(err, EINVAL,
				    "%s: ambiguous: more than one file system "
				    "signature",
				    what);
	return ret < 0 ? ret : 0;
}

void lvm_clone_tmpdir(char *buf, size_t len, const char *prefix)
{
	const char *t = getenv("TMPDIR");

	/* A TMPDIR too long for buf falls back on /tmp rather than being
	 * cut into another path. */
	if (!t || t[0] != '/' ||
	    (size_t)snprintf(buf, len, "%s/%s-XXXXXX", t, prefix) >= len)
		snprintf(buf, len, "/tmp/%s-XXXXXX", prefix);
}

/* A local file with `content`, for debugfs's `write`. */
static int write_temp(const char *tmpl, const char *content,
		      struct vs_error **err)
{
	int fd = open(tmpl, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	size_t len = strlen(content);

	if (fd < 0)
		return vs_error_set_errno(err, errno, "%s", tmpl);
	if (fchmod(fd, 0644) < 0 || write(fd, content, len) != (ssize_t)len) {
		int e = errno;

		close(fd);
		unlink(tmpl);
		return vs_error_set_errno(err, e ? e : EIO, "%s", tmpl);
	}
	close(fd);
	return 0;
}

struct etc_state {
	bool hostname, machine_id;
	unsigned long long machine_id_size;
	bool ssh;
	char *ssh_listing;
};

/* What /etc holds now; false in *has_etc when there is no /etc. */
static int read_etc(const char *path, const char *what, bool *has_etc,
		    struct etc_state *st, struct vs_error **err)
{
	autofree char *root = NULL, *etc = NULL;
	unsigned long long size;
	unsigned mode;
	int ret;

	memset(st, 0, sizeof(*st));
	*has_etc = false;
	ret = debugfs_request(path, "ls -p /", &root, what, err);
	if (ret)
		return ret;
	if (!listing_find(root, "etc", &mode, &size) || !is_dir_mode(mode))
		return 0;
	*has_etc = true;
	ret = debugfs_request(path, "ls -p /etc", &etc, what, err);
	if (ret)
		return ret;
	st->hostname = listing_find(etc, "hostname", &mode, &size);
	st->machine_id =
		listing_find(etc, "machine-id", &mode, &st->machine_id_size);
	st->ssh = listing_find(etc, "ssh", &mode, &size) && is_dir_mode(mode);
	if (st->ssh)
		return debugfs_request(path, "ls -p /etc/ssh", &st->ssh_listing,
				       what, err);
	return 0;
}

static int write_script(FILE *f, const struct etc_state *st,
			const char *hostname_file, const char *empty_file)
{
	/* debugfs's write links the name it is given, slashes and all,
	 * into the current directory: hence the cd. */
	fputs("cd /etc\n", f);
	if (st->hostname)
		fputs("rm /etc/hostname\n", f);
	fprintf(f, "write %s hostname\n", hostname_file);
	fputs("sif /etc/hostname mode 0100644\n"
	      "sif /etc/hostname uid 0\n"
	      "sif /etc/hostname gid 0\n",
	      f);
	/* An empty machine-id makes systemd draw a new one at boot. */
	if (st->machine_id) {
		fputs("rm /etc/machine-id\n", f);
		fprintf(f, "write %s machine-id\n", empty_file);
		fputs("sif /etc/machine-id mode 0100444\n"
		      "sif /etc/machine-id uid 0\n"
		      "sif /etc/machine-id gid 0\n",
		      f);
	}
	if (st->ssh)
		listing_rm_prefixed(st->ssh_listing, "/etc/ssh", "ssh_host_",
				    f);
	return fflush(f) ? -errno : 0;
}

/* Read back what debugfs was asked to do. */
static int verify(const char *path, const char *what, const char *hostname,
		  struct vs_error **err)
{
	autofree char *content = NULL;
	struct etc_state st;
	bool has_etc;
	size_t hl = strlen(hostname);
	int ret;

	ret = debugfs_request(path, "cat /etc/hostname", &content, what, err);
	if (ret)
		return ret;
	/* debugfs prints its banner first; the file follows it. */
	{
		size_t cl = strlen(content);

		if (cl < hl + 1 ||
		    memcmp(content + cl - hl - 1, hostname, hl) ||
		    content[cl - 1] != '\n' ||
		    (cl > hl + 1 && content[cl - hl - 2] != '\n'))
			return vs_error_set(err, EIO,
					    "%s: /etc/hostname does not read "
					    "back as '%s' after debugfs",
					    what, hostname);
	}
	ret = read_etc(path, what, &has_etc, &st, err);
	if (ret)
		return ret;
	if (st.machine_id && st.machine_id_size)
		ret = vs_error_set(err, EIO,
				   "%s: /etc/machine-id still holds %llu bytes "
				   "after debugfs",
				   what, st.machine_id_size);
	else if (st.ssh &&
		 listing_rm_prefixed(st.ssh_listing, "", "ssh_host_", NULL))
		ret = vs_error_set(err, EIO,
				   "%s: SSH host keys left in /etc/ssh after "
				   "debugfs",
				   what);
	free(st.ssh_listing);
	return ret;
}

static int customize(const char *path, const char *what, const char *hostname,
		     const struct etc_state *st, const char *dir,
		     struct vs_error **err)
{
	char hfile[PATH_MAX + 16], efile[PATH_MAX + 16], sfile[PATH_MAX + 16];
	autofree char *line = NULL, *out = NULL;
	int ret;
	FILE *f;

	/* Fixed names: the folder is private (mkdtemp) and new. */
	snprintf(hfile, sizeof(hfile), "%s/hostname", dir);
	snprintf(efile, sizeof(efile), "%s/empty", dir);
	snprintf(sfile, sizeof(sfile), "%s/script", dir);
	if (asprintf(&line, "%s\n", hostname) < 0) {
		line = NULL;
		return vs_error_set(err, ENOMEM, "out of memory");
	}
	ret = write_temp(hfile, line, err);
	if (ret)
		return ret;
	ret = write_temp(efile, "", err);
	if (!ret)
		ret = write_temp(sfile, "", err);
	if (!ret) {
		f = fopen(sfile, "w");
		if (!f)
			ret = vs_error_set_errno(err, errno, "%s", sfile);
		else {
			ret = write_script(f, st, hfile, efile);
			if (fclose(f) && !ret)
				ret = -EIO;
			if (ret)
				vs_error_set_errno(err, -ret, "%s", sfile);
		}
	}
	if (!ret) {
		const char *args[] = {"-w", "-f", sfile, path};

		ret = debugfs(args, VS_ARRAY_SIZE(args), &out, what, err);
	}
	unlink(hfile);
	unlink(efile);
	unlink(sfile);
	if (!ret)
		ret = verify(path, what, hostname, err);
	return ret;
}

/* One file system: *done when it had an /etc and was customized. */
static int customize_fs(const char *path, const char *what,
			const char *hostname, bool *done, struct vs_error **err)
{
	char dir[PATH_MAX];
	struct etc_state st;
	bool has_etc;
	int ret;

	*done = false;
	ret = read_etc(path, what, &has_etc, &st, err);
	if (ret || !has_etc) {
		free(st.ssh_listing);
		return ret;
	}
	lvm_clone_tmpdir(dir, sizeof(dir), "vstor-customize");
	if (!mkdtemp(dir)) {
		free(st.ssh_listing);
		return vs_error_set_errno(err, errno, "%s", dir);
	}
	ret = customize(path, what, hostname, &st, dir, err);
	rmdir(dir);
	free(st.ssh_listing);
	*done = ret == 0;
	return ret;
}

/* The ext2/3/4 file systems in the partitions; debugfs reaches each at
 * its offset ("FILE?offset=N", e2fsprogs' I/O options). */
static int customize_parts(const char *path, int fd, const struct part *parts,
			   size_t n, const char *what, const char *hostname,
			   bool *done, struct vs_error **err)
{
	for (size_t i = 0; i < n; i++) {
		char fstype[32], pwhat[128];
		autofree char *dev = NULL;
		bool d = false;
		int ret;

		snprintf(pwhat, sizeof(pwhat), "%s partition %d", what,
			 parts[i].no);
		ret = probe(fd, parts[i].start, parts[i].size, fstype,
			    sizeof(fstype), NULL, NULL, pwhat, err);
		if (ret)
			return ret;
		if (!is_ext(fstype))
			continue;
		if (asprintf(&dev, "%s?offset=%llu", path,
			     (unsigned long long)parts[i].start) < 0) {
			dev = NULL;
			return vs_error_set(err, ENOMEM, "out of memory");
		}
		ret = customize_fs(dev, pwhat, hostname, &d, err);
		if (ret)
			return ret;
		*done |= d;
	}
	return 0;
}

int lvm_clone_customize(const char *path, const char *what,
			const char *hostname, bool *done, struct vs_error **err)
{
	autoclose int fd = -1;
	struct part *parts = NULL;
	char fstype[32];
	size_t n = 0;
	int ret;

	*done = false;
	/* debugfs takes what follows a '?' as I/O options. */
	if (strchr(path, '?'))
		return vs_error_set(err, ENOTSUP,
				    "%s: '%s' has a '?', which debugfs would "
				    "take as options",
				    what, path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vs_error_set_errno(err, errno, "%s: %s", what, path);
	ret = probe(fd, 0, 0, fstype, sizeof(fstype), &parts, &n, what, err);
	if (!ret && is_ext(fstype))
		ret = customize_fs(path, what, hostname, done, err);
	else if (!ret && n)
		ret = customize_parts(path, fd, parts, n, what, hostname, done,
				      err);
	else if (!ret)
		vs_debug("clone", "%s: '%s' is not ext2/3/4", what, fstype);
	free(parts);
	return ret;
}

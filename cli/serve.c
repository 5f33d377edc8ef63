/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vstor serve [--nbd ADDR]... [--vhost-user [VDEV=]SOCK[,OPTS]]...
 *             [--fuse [VDEV=]FILE[,OPTS]]... [--control SOCK] [--readonly]
 *             [--daemonize] [--pidfile FILE] DISKSPEC... */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../blkback/server.h"
#include "../common/log.h"
#include "cli.h"

static const char usage[] =
	"Usage: vstor serve [--nbd ADDR]... [--vhost-user "
	"[VDEV=]SOCK[,OPTS]]...\n"
	"                   [--fuse [VDEV=]FILE[,OPTS]]... [--control SOCK]\n"
	"                   [--readonly] [--daemonize] [--pidfile FILE]\n"
	"                   DISKSPEC...\n"
	"\n"
	"Serve disks of any format (raw, qcow2, vmdk, vhd, vdi) to guests\n"
	"through vhost-user-blk, to tools and hosts through NBD, and as\n"
	"regular files through FUSE, until SIGTERM or SIGINT.  Then every\n"
	"export stops, in-flight requests finish, and every image is flushed\n"
	"and closed.\n"
	"\n"
	"Each DISKSPEC is an xl disk spec ('qcow2:/a.qcow2,xvda,w'); its vdev\n"
	"names the disk.  Every disk is an NBD export named by its vdev on\n"
	"each --nbd address; the first disk is also the default export \"\".\n"
	"\n"
	"Options:\n"
	"  --nbd ADDR           serve NBD on ADDR: PATH or unix:PATH (a unix\n"
	"                       socket, mode 0600) or tcp:HOST:PORT; "
	"repeatable\n"
	"  --vhost-user [VDEV=]SOCK[,num-queues=N]\n"
	"                       serve disk VDEV as a vhost-user-blk device on\n"
	"                       the unix socket SOCK; repeatable\n"
	"  --fuse [VDEV=]FILE   show disk VDEV as the regular file FILE;\n"
	"                       repeatable\n"
	"  --control SOCK       a JSON-lines control socket (mode 0600) to "
	"add\n"
	"                       and remove disks and exports and read\n"
	"                       statistics (see vstor-serve(1))\n"
	"  --readonly           open every disk read-only\n"
	"  --daemonize          run in the background once every export\n"
	"                       listens; errors before that are printed and\n"
	"                       the command exits 1\n"
	"  --pidfile FILE       write the server's pid to FILE once ready;\n"
	"                       removed at exit\n"
	"  -h, --help           this help\n"
	"\n"
	"VDEV= may be left out when there is one disk.  What follows the\n"
	"first comma of an export goes to its transport as options.\n"
	"\n"
	"Exit status:\n"
	"  0   stopped by SIGTERM, SIGINT or the control socket's quit, with\n"
	"      every image flushed and closed\n"
	"  1   an error (the message says which disk or export)\n"
	"\n"
	"Examples:\n"
	"  vstor serve --nbd /run/web1.sock 'qcow2:/srv/web1.qcow2,xvda,w'\n"
	"  vstor serve --vhost-user /run/web1-blk.sock,num-queues=2 \\\n"
	"              --control /run/web1.ctl 'qcow2:/srv/web1.qcow2,xvda,w'\n"
	"  vstor serve --fuse xvdb=/mnt/disk.raw --daemonize \\\n"
	"              --pidfile /run/s.pid 'vmdk:/srv/a.vmdk,xvdb,r'\n";

struct export_arg {
	const char *type;
	char *disk; /* NULL: left out */
	char *addr;
	char *opts; /* NULL: none */
};

struct serve_opts {
	struct export_arg *exports;
	size_t n_exports;
	const char *control, *pidfile;
	bool readonly, daemonize;
};

/*
 * "[VDEV=]ADDR[,OPTS]" into its parts.  A '=' before any '/' marks the
 * VDEV (socket paths rarely hold one; write ./a=b to be sure).
 */
static int parse_export(const char *type, const char *arg, bool takes_disk,
			struct serve_opts *o)
{
	const char *comma = strchr(arg, ','), *eq = strchr(arg, '=');
	const char *slash = strchr(arg, '/');
	bool has_disk = eq && (!comma || eq < comma) && (!slash || eq < slash);
	size_t addr_len = comma ? (size_t)(comma - arg) : strlen(arg);
	struct export_arg *ex, *grown;

	grown = realloc(o->exports, (o->n_exports + 1) * sizeof(*grown));
	if (!grown)
		return cli_usage_error("serve", NULL, "out of memory");
	o->exports = grown;
	/* Counted at once, so that free_opts frees what a failure leaves. */
	ex = &o->exports[o->n_exports++];
	*ex = (struct export_arg){.type = type};
	if (has_disk) {
		if (!takes_disk)
			return cli_usage_error(
				"serve", NULL,
				"--%s %s: NBD serves every disk by its name; "
				"no VDEV= here",
				type, arg);
		if (eq == arg)
			return cli_usage_error("serve", NULL,
					       "--%s %s: empty VDEV before '='",
					       type, arg);
		ex->disk = strndup(arg, (size_t)(eq - arg));
		addr_len -= (size_t)(eq + 1 - arg);
		arg = eq + 1;
	}
	if (!addr_len)
		return cli_usage_error("serve", NULL,
				       "--%s: no address in '%s'", type, arg);
	ex->addr = strndup(arg, addr_len);
	if (comma && comma[1])
		ex->opts = strdup(comma + 1);
	if (!ex->addr || (has_disk && !ex->disk) ||
	    (comma && comma[1] && !ex->opts))
		return cli_usage_error("serve", NULL, "out of memory");
	return 0;
}

static void free_opts(struct serve_opts *o)
{
	for (size_t i = 0; i < o->n_exports; i++) {
		free(o->exports[i].disk);
		free(o->exports[i].addr);
		free(o->exports[i].opts);
	}
	free(o->exports);
}

enum {
	OPT_NBD = 256,
	OPT_VHOST_USER,
	OPT_FUSE,
	OPT_CONTROL,
	OPT_READONLY,
	OPT_DAEMONIZE,
	OPT_PIDFILE,
};

static int parse_args(int argc, char **argv, struct serve_opts *o)
{
	static const struct option longopts[] = {
		{"nbd", required_argument, NULL, OPT_NBD},
		{"vhost-user", required_argument, NULL, OPT_VHOST_USER},
		{"fuse", required_argument, NULL, OPT_FUSE},
		{"control", required_argument, NULL, OPT_CONTROL},
		{"readonly", no_argument, NULL, OPT_READONLY},
		{"daemonize", no_argument, NULL, OPT_DAEMONIZE},
		{"pidfile", required_argument, NULL, OPT_PIDFILE},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c, ret = 0;

	while (!ret &&
	       (c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_NBD:
			ret = parse_export("nbd", optarg, false, o);
			break;
		case OPT_VHOST_USER:
			ret = parse_export("vhost-user", optarg, true, o);
			break;
		case OPT_FUSE:
			ret = parse_export("fuse", optarg, true, o);
			break;
		case OPT_CONTROL: o->control = optarg; break;
		case OPT_READONLY: o->readonly = true; break;
		case OPT_DAEMONIZE: o->daemonize = true; break;
		case OPT_PIDFILE: o->pidfile = optarg; break;
		case 'h': cli_print_usage(&cli_verb_serve); return -1;
		default: fputs("Try 'vstor help serve'.\n", stderr); return 1;
		}
	}
	if (ret)
		return ret;
	if (optind >= argc && !o->control)
		return cli_usage_error("serve", NULL,
				       "no DISKSPEC (a disk to serve) given");
	if (!o->n_exports && !o->control)
		return cli_usage_error("serve", NULL,
				       "nothing to serve on: give --nbd, "
				       "--vhost-user, --fuse or --control");
	return 0;
}

/*
 * --daemonize: the parent waits on a pipe until the child is ready ("R")
 * or has failed (its message follows "E"), so that the command's exit
 * status and message are the server's own.  Returns in the child with
 * the pipe's write end in *ready_fd; the parent never returns.
 */
static int daemonize(int *ready_fd)
{
	int pfd[2];
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0) {
		vs_log(VS_LOG_ERROR, NULL, "--daemonize: pipe: %s",
		       strerror(errno));
		return -1;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		vs_log(VS_LOG_ERROR, NULL, "--daemonize: fork: %s",
		       strerror(errno));
		return -1;
	}
	if (pid == 0) {
		close(pfd[0]);
		setsid();
		*ready_fd = pfd[1];
		return 0;
	}
	close(pfd[1]);
	{
		char msg[4096];
		size_t fill = 0;
		ssize_t n;

		while (fill < sizeof(msg) - 1 &&
		       (n = read(pfd[0], msg + fill, sizeof(msg) - 1 - fill)) !=
			       0) {
			if (n < 0) {
				if (errno == EINTR)
					continue;
				break;
			}
			fill += (size_t)n;
			if (msg[0] == 'R')
				_exit(0);
		}
		msg[fill] = '\0';
		if (fill > 1 && msg[0] == 'E')
			fprintf(stderr, "vstor: %s\n", msg + 1);
		else
			fprintf(stderr, "vstor: the server exited while "
					"starting\n");
		/* Reap it, so that a caller never sees a zombie around. */
		waitpid(pid, NULL, 0);
		_exit(1);
	}
}

/* An error before the server is ready: printed, or sent to the parent
 * waiting on --daemonize. */
static int fail(struct vs_error *err, int ready_fd)
{
	if (ready_fd < 0) {
		vs_error_report(err);
		return 1;
	}
	if (err) {
		const char *m = vs_error_msg(err);
		size_t len = strlen(m);

		if (write(ready_fd, "E", 1) != 1 ||
		    write(ready_fd, m, len) != (ssize_t)len)
			vs_log(VS_LOG_ERROR, NULL, "%s", m);
		vs_error_free(err);
	}
	return 1;
}

static int run(int argc, char **argv)
{
	struct serve_opts o = {0};
	struct blkback_server_config cfg = {.ready_fd = -1};
	struct vs_error *err = NULL;
	int ret;

	ret = parse_args(argc, argv, &o);
	if (ret) {
		free_opts(&o);
		return ret < 0 ? 0 : ret;
	}
	/* Fork before anything starts a thread: threads do not survive a
	 * fork, and the server's all belong to the child. */
	if (o.daemonize && daemonize(&cfg.ready_fd) < 0) {
		free_opts(&o);
		return 1;
	}
	ret = blkback_server_init(o.readonly ? VBD_O_RDONLY : 0, &err);
	for (int i = optind; ret == 0 && i < argc; i++)
		ret = blkback_server_add_disk(argv[i], &err);
	for (size_t i = 0; ret == 0 && i < o.n_exports; i++) {
		const struct export_arg *ex = &o.exports[i];

		ret = blkback_server_add_export(ex->type, ex->disk, ex->addr,
						ex->opts, NULL, &err);
	}
	if (ret == 0) {
		cfg.control = o.control;
		cfg.pidfile = o.pidfile;
		ret = blkback_server_run(&cfg, &err);
		if (err) {
			blkback_server_teardown();
			free_opts(&o);
			return fail(err, cfg.ready_fd);
		}
		free_opts(&o);
		return ret;
	}
	/* Nothing is left behind: exports that started stop (and remove
	 * their sockets), disks that opened close. */
	blkback_server_teardown();
	free_opts(&o);
	return fail(err, cfg.ready_fd);
}

const struct cli_verb cli_verb_serve = {
	.name = "serve",
	.summary = "serve disks over vhost-user-blk, NBD and FUSE",
	.usage = usage,
	.run = run,
};

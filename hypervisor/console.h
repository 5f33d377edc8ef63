/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A domain's serial console: QEMU serves it on a unix socket
 * (-chardev socket,server=on,wait=off), and `vstor console` attaches a
 * terminal or a pipe to it.
 *
 * On a terminal the input is put in raw mode (restored on every exit,
 * signals included) and Ctrl-] (0x1d) detaches, as with xl console and
 * virsh console.  From a pipe or file, the input is copied to the guest
 * until its end; output keeps flowing until the guest's side closes, the
 * idle timeout expires, or a pattern is seen (for scripts and tests).
 */
#ifndef VS_HYPERVISOR_CONSOLE_H
#define VS_HYPERVISOR_CONSOLE_H

#include <stdbool.h>

struct vs_error;

/* The byte that detaches from the console on a terminal: Ctrl-]. */
#define DOM_CONSOLE_ESCAPE 0x1d

struct dom_console_opts {
	/* Leave when nothing came from either side for this long; 0 = never. */
	int idle_timeout_ms;
	/* Leave with success once the guest printed this text (a plain
	 * substring, may span reads); NULL = never. */
	const char *until;
	/* Leave when in_fd reaches its end instead of waiting for the guest
	 * (the default is to keep showing output after the input ends). */
	bool exit_on_eof;
};

/* Why dom_console_attach_opts returned 0. */
enum dom_console_end {
	DOM_CONSOLE_DETACHED,	 /* the user typed the escape byte */
	DOM_CONSOLE_PEER_CLOSED, /* QEMU closed the socket (the domain ended) */
	DOM_CONSOLE_IDLE,	 /* idle_timeout_ms passed */
	DOM_CONSOLE_MATCHED,	 /* `until` was seen */
	DOM_CONSOLE_INPUT_EOF,	 /* in_fd ended and exit_on_eof was set */
};

/*
 * Connect to the console socket at sock_path and copy in_fd to it and its
 * output to out_fd until one of the ends above, with the default options
 * (no timeout, no pattern, keep going after the input ends).  Returns 0,
 * or a negative errno with err set as dom_console_attach_opts.
 */
int dom_console_attach(const char *sock_path, int in_fd, int out_fd,
		       struct vs_error **err);

/*
 * The same with options (opts may be NULL for the defaults).  If in_fd is
 * a terminal it is put in raw mode for the duration and the escape byte
 * detaches; otherwise all bytes go through.  in_fd may be -1 (no input).
 * Returns 0 with *end (if non-NULL) set, or a negative errno with err set
 * (-ENOENT/-ECONNREFUSED: nobody serves the socket; a read or write that
 * failed: its errno, e.g. -EPIPE when out_fd's reader went away).
 * SIGINT, SIGTERM, SIGHUP and SIGQUIT restore the terminal and make it
 * return -EINTR.  The handlers of those signals (and SIGPIPE, ignored
 * meanwhile) are the process's: one attachment per process at a time.
 */
int dom_console_attach_opts(const char *sock_path, int in_fd, int out_fd,
			    const struct dom_console_opts *opts,
			    enum dom_console_end *end, struct vs_error **err);

#endif

/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "log.h"

#define MAX_DEBUG_MODULES 32

static char *debug_modules[MAX_DEBUG_MODULES];
static int n_debug_modules;
static bool debug_all;
static bool use_syslog;
static bool quiet;

void vs_log_debug_enable(const char *modules)
{
	char *copy = strdup(modules), *save = NULL, *tok;

	if (!copy)
		return;
	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(tok, "all"))
			debug_all = true;
		else if (n_debug_modules < MAX_DEBUG_MODULES)
			debug_modules[n_debug_modules++] = strdup(tok);
	}
	free(copy);
}

bool vs_log_debug_on(const char *module)
{
	if (debug_all)
		return true;
	for (int i = 0; i < n_debug_modules; i++)
		if (debug_modules[i] && module &&
		    !strcmp(debug_modules[i], module))
			return true;
	return false;
}

void vs_log_to_syslog(void)
{
	openlog("vstor", LOG_PID, LOG_DAEMON);
	use_syslog = true;
}

void vs_log_set_quiet(bool q)
{
	quiet = q;
}

void vs_log(enum vs_log_level level, const char *module, const char *fmt, ...)
{
	static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
	static const char *const tag[] = {"", "warning: ", "", "debug: "};
	char buf[4096];
	va_list ap;

	if (quiet && (level == VS_LOG_WARN || level == VS_LOG_INFO))
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (use_syslog) {
		syslog(prio[level], "%s%s%s%s", module ? "[" : "",
		       module ? module : "", module ? "] " : "", buf);
		return;
	}
	/* One fprintf so that lines from several threads do not interleave. */
	fprintf(stderr, "vstor: %s%s%s%s%s\n", tag[level], module ? "[" : "",
		module ? module : "", module ? "] " : "", buf);
}

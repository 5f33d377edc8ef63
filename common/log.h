/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One printf-checked logging API for every module.
 *
 * Messages go to stderr ("vstor: ..." or "vstor: [module] ...") or, for
 * daemons, to syslog.  Debug messages are off unless their module was
 * switched on with vs_log_debug_enable("qcow2") (the -D option of the
 * vstor command) or "all".
 */
#ifndef VS_COMMON_LOG_H
#define VS_COMMON_LOG_H

#include <stdbool.h>

enum vs_log_level {
	VS_LOG_ERROR,
	VS_LOG_WARN,
	VS_LOG_INFO,
	VS_LOG_DEBUG,
};

void vs_log(enum vs_log_level level, const char *module, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Enable debug output for a comma-separated list of modules, or "all". */
void vs_log_debug_enable(const char *modules);
bool vs_log_debug_on(const char *module);

/* Send everything to syslog (identity "vstor") from now on. */
void vs_log_to_syslog(void);

/* Suppress VS_LOG_INFO and VS_LOG_WARN (-q). Errors are always printed. */
void vs_log_set_quiet(bool quiet);

#define vs_debug(module, ...)                                      \
	do {                                                       \
		if (vs_log_debug_on(module))                       \
			vs_log(VS_LOG_DEBUG, module, __VA_ARGS__); \
	} while (0)

#define vs_warn(...) vs_log(VS_LOG_WARN, NULL, __VA_ARGS__)
#define vs_info(...) vs_log(VS_LOG_INFO, NULL, __VA_ARGS__)

#endif

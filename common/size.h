/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Sizes as users write them: "512", "10G", "1.5T", "64k". */
#ifndef VS_COMMON_SIZE_H
#define VS_COMMON_SIZE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/*
 * Parse a size with an optional binary suffix (B, K, M, G, T, P, E; case
 * does not matter; K = 1024).  A bare number is bytes.  Fractions are
 * allowed with a suffix ("1.5G") and must come out a whole number of
 * bytes.  `what` names the value in the error ("image size").
 */
int vs_parse_size(const char *s, uint64_t *out, const char *what,
		  struct vs_error **errp);

/* Format a size as qemu-img does: "10 GiB", "1.5 MiB", "512 B". */
void vs_format_size(uint64_t size, char *buf, size_t buflen);

#endif

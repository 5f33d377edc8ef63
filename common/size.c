/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "size.h"

static int suffix_shift(char c)
{
	switch (toupper((unsigned char)c)) {
	case 'B': return 0;
	case 'K': return 10;
	case 'M': return 20;
	case 'G': return 30;
	case 'T': return 40;
	case 'P': return 50;
	case 'E': return 60;
	default: return -1;
	}
}

int vs_parse_size(const char *s, uint64_t *out, const char *what,
		  struct vs_error **errp)
{
	const char *p = s, *frac = NULL;
	uint64_t whole = 0, num = 0, den = 1;
	int shift = 0;

	if (!s || !*s)
		return vs_error_set(errp, EINVAL, "%s: empty size", what);
	if (!isdigit((unsigned char)*p))
		goto bad;
	for (; isdigit((unsigned char)*p); p++) {
		uint64_t d = (uint64_t)(*p - '0');

		if (whole > (UINT64_MAX - d) / 10)
			goto big;
		whole = whole * 10 + d;
	}
	if (*p == '.') {
		frac = ++p;
		for (; isdigit((unsigned char)*p); p++) {
			if (den > UINT64_MAX / 100)
				goto bad;
			num = num * 10 + (uint64_t)(*p - '0');
			den *= 10;
		}
		if (p == frac)
			goto bad;
	}
	if (*p) {
		shift = suffix_shift(*p);
		if (shift < 0 || p[1])
			goto bad;
	}
	if (frac && shift == 0 && num)
		goto bad;
	if (shift && whole > (UINT64_MAX >> shift))
		goto big;
	whole <<= shift;
	if (num) {
		/* num/den of one unit must be a whole number of bytes. */
		unsigned __int128 f = (unsigned __int128)num << shift;

		if (f % den)
			return vs_error_set(
				errp, EINVAL,
				"%s '%s' is not a whole number of bytes", what,
				s);
		f /= den;
		if (whole + (uint64_t)f < whole)
			goto big;
		whole += (uint64_t)f;
	}
	*out = whole;
	return 0;
bad:
	return vs_error_set(errp, EINVAL,
			    "%s '%s' is not a size (a number with an optional "
			    "suffix B, K, M, G, T, P or E)",
			    what, s);
big:
	return vs_error_set(errp, ERANGE, "%s '%s' is too large", what, s);
}

void vs_format_size(uint64_t size, char *buf, size_t buflen)
{
	static const char *const unit[] = {"B",	  "KiB", "MiB", "GiB",
					   "TiB", "PiB", "EiB"};
	int i = 0;
	double v = (double)size;

	/* qemu's size_to_str takes the next unit from 1000 on: 1000 bytes
	 * are "0.977 KiB", never "1e+03 B". */
	while (v >= 1000 && i < 6) {
		v /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(buf, buflen, "%llu B", (unsigned long long)size);
	else
		snprintf(buf, buflen, "%.3g %s", v, unit[i]);
}

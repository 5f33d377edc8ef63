/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target for what a backup folder hands back (lvmglue/
 * manifest.c): the JSON manifest and the binary .sums file.  A backup
 * folder may sit on a shared file server, so both are untrusted.  An
 * input is manifest text, optionally followed by a NUL and the bytes of
 * a .sums file.  A manifest that parses must keep manifest.h's promises
 * (plain file names, consistent cluster counts, seq 0 exactly when there
 * is no backing link) and must read back the same after
 * lvm_manifest_format; a .sums file is only accepted when its length and
 * its hash agree with the manifest.
 */
#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lvmglue/checksum.h"
#include "lvmglue/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A name the reader may join to a folder: no slash, not . or .. */
static bool plain(const char *s)
{
	return s && s[0] && !strchr(s, '/') && strcmp(s, ".") &&
	       strcmp(s, "..");
}

static bool same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

static void check(const struct lvm_manifest *m)
{
	struct vs_error *err = NULL;
	struct lvm_manifest again;
	char *text = NULL;

	assert(plain(m->name));
	assert(m->vg && m->lv && m->uuid && m->lv_type && m->method);
	assert(m->time);
	assert((m->seq == 0) == (m->backing == NULL));
	assert(!m->backing || plain(m->backing));
	assert(m->cluster_size && !(m->cluster_size & (m->cluster_size - 1)));
	/* clusters = ceil(size / cluster_size), without overflow. */
	assert(m->clusters ==
	       m->size / m->cluster_size + (m->size % m->cluster_size != 0));
	assert(m->changed <= m->clusters && m->zeroed <= m->changed);

	/* What is accepted, written again, reads back the same. */
	assert(lvm_manifest_format(m, &text, &err) == 0 && text);
	assert(lvm_manifest_parse(text, strlen(text), "fuzz-again", &again,
				  &err) == 0);
	assert(same(again.name, m->name) && same(again.vg, m->vg) &&
	       same(again.lv, m->lv) && same(again.uuid, m->uuid) &&
	       same(again.backing, m->backing) &&
	       same(again.method, m->method) &&
	       same(again.thin_snapshot, m->thin_snapshot));
	assert(again.size == m->size && again.seq == m->seq &&
	       again.time_ns == m->time_ns && again.clusters == m->clusters &&
	       again.image_sum == m->image_sum && again.changed == m->changed &&
	       again.zeroed == m->zeroed);
	lvm_manifest_clear(&again);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t tlen = nul ? (size_t)(nul - data) : size;
	struct vs_error *err = NULL;
	struct lvm_manifest m;
	uint64_t *sums = NULL;

	if (lvm_manifest_parse((const char *)data, tlen, "fuzz.json", &m,
			       &err) < 0) {
		assert(err && vs_error_msg(err)[0]);
		vs_error_free(err);
		return 0;
	}
	assert(!err);
	check(&m);
	if (nul) {
		const uint8_t *sd = nul + 1;
		size_t slen = size - tlen - 1;

		if (lvm_sums_parse(sd, slen, "fuzz.sums", &m, &sums, &err) ==
		    0) {
			/* Accepted: the header, length and hash agree. */
			assert(!err && sums);
			assert(slen == 32 + m.clusters * 8);
			assert(lvm_sum_image(sums, m.clusters) == m.image_sum);
			free(sums);
		} else {
			assert(err && vs_error_msg(err)[0] && !sums);
			vs_error_free(err);
		}
	}
	lvm_manifest_clear(&m);
	return 0;
}

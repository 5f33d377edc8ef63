/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target for domain configs (hypervisor/config*.c): a config
 * file is untrusted input, so no byte sequence may crash the parser or
 * leak; and what parses must survive the state record (to JSON and back,
 * unchanged) and vstor clone's rewrite (the rewritten text parses, with
 * the new name).
 */
#include <assert.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "hypervisor/config.h"
#include "vbd/diskspec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_json(const struct dom_config *cfg)
{
	struct json_object *o = dom_config_to_json(cfg), *o2;
	struct dom_config *back = NULL;
	struct vs_error *err = NULL;

	assert(o);
	if (dom_config_from_json(o, &back, &err))
		abort(); /* every parsed config must come back */
	o2 = dom_config_to_json(back);
	assert(!strcmp(json_object_to_json_string(o),
		       json_object_to_json_string(o2)));
	json_object_put(o);
	json_object_put(o2);
	dom_config_free(back);
}

static void check_rewrite(const char *text, const struct dom_config *cfg)
{
	struct dom_config_rewrite rw = {
		.name = "fuzz-clone",
		.uuid = "11111111-2222-4333-8444-555555555555",
	};
	struct dom_config *again = NULL;
	struct vs_error *err = NULL;
	char *out = NULL;

	(void)cfg;
	if (dom_config_rewrite_text(text, "fuzz", &rw, &out, &err)) {
		/* Refused: a key assigned twice, which the parser allows. */
		assert(err && !out);
		vs_error_free(err);
		return;
	}
	if (dom_config_parse_text(out, "fuzz", NULL, 0, &again, &err) == 0) {
		assert(!strcmp(again->name, "fuzz-clone"));
		assert(!strcmp(again->uuid, rw.uuid));
		dom_config_free(again);
	} else {
		vs_error_free(err);
	}
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vs_error *err = NULL;
	struct dom_config *cfg = NULL;
	char *text = malloc(size + 1);

	if (!text)
		return 0;
	vs_log_set_quiet(true);
	memcpy(text, data, size);
	text[size] = '\0';
	if (dom_config_parse_text(text, "fuzz", NULL, 0, &cfg, &err) == 0) {
		assert(cfg && !err);
		assert(cfg->name && cfg->kernel && cfg->cmdline);
		assert(cfg->vcpus >= 1 && cfg->maxvcpus >= cfg->vcpus);
		assert(cfg->memory_mib >= 1 &&
		       cfg->maxmem_mib >= cfg->memory_mib);
		assert(strlen(cfg->uuid) == 36);
		for (size_t i = 0; i < cfg->n_vifs; i++)
			assert(cfg->vifs[i].mac &&
			       strlen(cfg->vifs[i].mac) == 17);
		for (size_t i = 0; i < cfg->n_disks; i++)
			assert(cfg->disks[i].spec && cfg->disks[i].text);
		check_json(cfg);
		/* Only a complete text can be rewritten meaningfully: the
		 * input may hold a NUL that ended it early. */
		if (strlen(text) == size)
			check_rewrite(text, cfg);
		dom_config_free(cfg);
	} else {
		assert(err && !cfg);
		assert(vs_error_msg(err)[0] != '\0');
		vs_error_free(err);
	}
	free(text);
	return 0;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target for domain state records (hypervisor/state.c): the
 * JSON files in $VSTOR_STATE_DIR/domains are read back by every command,
 * and a hand edit or a disk that lost a write makes them untrusted.  An
 * input is the text of one record.  A record that parses must keep
 * state.h's promises (a known state, a domain ID in range, the run
 * folder of that ID, a config, every disk named) and must read back the
 * same after dom_record_to_json, as dom_record_save writes it.
 */
#include <assert.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hypervisor/config.h"
#include "hypervisor/state.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The run folder a record must name follows from the state folder: keep
 * it the default whatever the environment says, so that the corpus
 * (written for /var/lib/vstor) means the same everywhere. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	unsetenv("VSTOR_STATE_DIR");
	return 0;
}

static bool same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

static char *record_text(const struct dom_record *rec)
{
	struct json_object *o = dom_record_to_json(rec);
	char *text;

	assert(o);
	text = strdup(json_object_to_json_string_ext(
		o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	assert(text);
	json_object_put(o);
	return text;
}

static void check(const struct dom_record *rec)
{
	struct dom_record *again = NULL;
	struct vs_error *err = NULL;
	char want[64], *text, *text2;

	assert(rec->name && rec->rundir && rec->cfg);
	assert(strcmp(dom_state_name(rec->state), "unknown"));
	assert(rec->domid <= DOM_DOMID_MAX && rec->created >= 0);
	assert(rec->qemu.pid >= 0 && rec->serve.pid >= 0 &&
	       rec->monitor.pid >= 0);
	/* Teardown empties rundir: it may only be this domain's. */
	snprintf(want, sizeof(want), "%s/run/%u", DOM_STATE_DIR_DEFAULT,
		 rec->domid);
	assert(!strcmp(rec->rundir, want));
	assert(rec->n_disks == 0 || rec->disks);
	for (size_t i = 0; i < rec->n_disks; i++)
		assert(rec->disks[i].vdev && rec->disks[i].spec);

	/* What is accepted, written again, reads back the same. */
	text = record_text(rec);
	if (dom_record_parse(text, strlen(text), "fuzz-again", &again, &err))
		abort(); /* err names what the writer got wrong */
	assert(same(again->name, rec->name) && again->domid == rec->domid &&
	       again->state == rec->state && again->created == rec->created &&
	       same(again->rundir, rec->rundir) &&
	       again->reboot_requested == rec->reboot_requested &&
	       again->restarts == rec->restarts);
	assert(again->qemu.pid == rec->qemu.pid &&
	       again->qemu.start == rec->qemu.start &&
	       again->serve.pid == rec->serve.pid &&
	       again->serve.start == rec->serve.start &&
	       again->monitor.pid == rec->monitor.pid &&
	       again->monitor.start == rec->monitor.start);
	assert(again->n_disks == rec->n_disks);
	for (size_t i = 0; i < rec->n_disks; i++) {
		const struct dom_rec_disk *a = &rec->disks[i],
					  *b = &again->disks[i];

		assert(same(a->vdev, b->vdev) && same(a->spec, b->spec) &&
		       same(a->socket, b->socket) && a->dev == b->dev &&
		       a->ino == b->ino && a->readonly == b->readonly &&
		       a->empty == b->empty);
	}
	/* The config has its own fuzz target; here its JSON is compared
	 * whole, with everything else. */
	text2 = record_text(again);
	assert(!strcmp(text, text2));
	free(text2);
	free(text);
	dom_record_free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vs_error *err = NULL;
	struct dom_record *rec = NULL;

	if (dom_record_parse((const char *)data, size, "fuzz.json", &rec,
			     &err) < 0) {
		assert(err && vs_error_msg(err)[0] && !rec);
		vs_error_free(err);
		return 0;
	}
	assert(!err && rec);
	check(rec);
	dom_record_free(rec);
	return 0;
}

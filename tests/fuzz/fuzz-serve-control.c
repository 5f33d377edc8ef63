/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target for the request parser of `vstor serve`'s control
 * socket (blkback_control_parse in blkback/control.c).  Any local user
 * allowed on the socket, or a toolstack with a bug, may send any bytes.
 * Each input is a stream of lines, split as the server splits them (a
 * trailing \r dropped, blank lines skipped), and each line is parsed.
 *
 * Only the parser runs: the commands themselves open images, bind
 * sockets and mount FUSE exports, which a fuzzer must not do; the
 * integration tests (serve-control.t) drive them over the real socket.
 * What the parser accepts must be what the server relies on: a JSON
 * object whose strings are valid UTF-8, so that a reply echoing one (in
 * "unknown command 'X'") is itself one valid JSON line.
 */
#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "blkback/server.h"
#include "common/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The reply the server would send for `msg`, checked as a client reads
 * it: one line that parses back, strictly, to the same text. */
static void check_reply(const char *msg)
{
	struct json_object *reply = json_object_new_object(), *back, *v;
	struct json_tokener *tok;
	const char *line;

	json_object_object_add(reply, "ok", json_object_new_boolean(false));
	json_object_object_add(reply, "error", json_object_new_string(msg));
	line = json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN);
	assert(line && !strchr(line, '\n'));
	tok = json_tokener_new();
	assert(tok);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
					    JSON_TOKENER_VALIDATE_UTF8);
	back = json_tokener_parse_ex(tok, line, (int)strlen(line));
	assert(back && json_tokener_get_error(tok) == json_tokener_success);
	assert(json_object_object_get_ex(back, "error", &v));
	assert(!strcmp(json_object_get_string(v), msg));
	json_object_put(back);
	json_tokener_free(tok);
	json_object_put(reply);
}

static void parse_line(const char *line, size_t len)
{
	struct json_object *req = NULL, *cmd;
	struct vs_error *err = NULL;
	char *msg;
	int r;

	r = blkback_control_parse(line, len, &req, &err);
	if (r < 0) {
		assert(!req && err && vs_error_msg(err)[0] != '\0');
		check_reply(vs_error_msg(err));
		vs_error_free(err);
		return;
	}
	assert(r == 0 && req && !err);
	assert(json_object_is_type(req, json_type_object));
	/* The server answers an unknown command by quoting it, and an
	 * unknown field by naming it. */
	if (json_object_object_get_ex(req, "cmd", &cmd) &&
	    json_object_is_type(cmd, json_type_string)) {
		if (asprintf(&msg, "unknown command '%s'",
			     json_object_get_string(cmd)) < 0)
			abort();
		check_reply(msg);
		free(msg);
	}
	json_object_object_foreach(req, key, val)
	{
		(void)val;
		if (asprintf(&msg, "unknown field '%s'", key) < 0)
			abort();
		check_reply(msg);
		free(msg);
	}
	json_object_put(req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1);
	size_t start = 0;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	/* Lines as serve_lines cuts them; a last line without its newline
	 * counts too (the server would wait for the rest, then parse it). */
	while (start < size) {
		char *nl = memchr(buf + start, '\n', size - start);
		size_t len = nl ? (size_t)(nl - (buf + start)) : size - start;
		size_t next = start + len + 1;

		buf[start + len] = '\0';
		if (len && buf[start + len - 1] == '\r')
			buf[start + --len] = '\0';
		if (len != strspn(buf + start, " \t"))
			parse_line(buf + start, len);
		start = next;
	}
	free(buf);
	return 0;
}

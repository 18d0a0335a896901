/*
 * s3xml.c - S3's XML read with expat (see s3xml.h).
 *
 * Documents are small (a list page is at most 1,000 entries), so paths and
 * text are accumulated in plain growable buffers; nothing is kept after the
 * walk returns.
 */
#include "store/s3xml.h"

#include <errno.h>
#include <jansson.h>
#include <expat.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct walk {
	XML_Parser parser;
	char path[512];
	size_t path_len;
	char *text;
	size_t text_len, text_cap;
	int (*fn)(void *ctx, const char *path, const char *text);
	void *ctx;
	int error;
};

static const char *local_name(const char *name)
{
	const char *colon = strrchr(name, ':');

	return colon ? colon + 1 : name;
}

static void on_start(void *data, const char *name, const char **attrs)
{
	struct walk *w = data;
	const char *ln = local_name(name);
	size_t n = strlen(ln);

	(void)attrs;
	if (w->path_len + n + 2 > sizeof(w->path)) {
		w->error = -EPROTO;
		XML_StopParser(w->parser, XML_FALSE);
		return;
	}
	if (w->path_len)
		w->path[w->path_len++] = '/';
	memcpy(w->path + w->path_len, ln, n + 1);
	w->path_len += n;
	w->text_len = 0;
}

static void on_end(void *data, const char *name)
{
	struct walk *w = data;
	char *slash;
	int r;

	(void)name;
	if (w->error)
		return;
	r = w->fn(w->ctx, w->path, w->text_len ? w->text : "");
	if (r < 0) {
		w->error = r;
		XML_StopParser(w->parser, XML_FALSE);
		return;
	}
	w->text_len = 0;
	slash = strrchr(w->path, '/');
	w->path_len = slash ? (size_t)(slash - w->path) : 0;
	w->path[w->path_len] = '\0';
}

static void on_text(void *data, const char *s, int len)
{
	struct walk *w = data;

	if (w->error)
		return;
	if (w->text_len + (size_t)len + 1 > w->text_cap) {
		size_t cap = w->text_cap ? w->text_cap : 256;
		char *bigger;

		while (cap < w->text_len + (size_t)len + 1)
			cap *= 2;
		bigger = realloc(w->text, cap);
		if (!bigger) {
			w->error = -ENOMEM;
			XML_StopParser(w->parser, XML_FALSE);
			return;
		}
		w->text = bigger;
		w->text_cap = cap;
	}
	memcpy(w->text + w->text_len, s, (size_t)len);
	w->text_len += (size_t)len;
	w->text[w->text_len] = '\0';
}

int s3xml_walk(const char *doc, size_t len,
	       int (*fn)(void *ctx, const char *path, const char *text), void *ctx)
{
	struct walk w = {.fn = fn, .ctx = ctx};
	int r = 0;

	w.parser = XML_ParserCreate(NULL);
	if (!w.parser)
		return -ENOMEM;
	XML_SetUserData(w.parser, &w);
	XML_SetElementHandler(w.parser, on_start, on_end);
	XML_SetCharacterDataHandler(w.parser, on_text);
	if (XML_Parse(w.parser, doc, (int)len, XML_TRUE) != XML_STATUS_OK)
		r = w.error ? w.error : -EPROTO;
	XML_ParserFree(w.parser);
	free(w.text);
	return r;
}

size_t s3xml_escape(const char *text, char *out, size_t outlen)
{
	size_t n = 0, written = 0;
	bool fits = outlen > 0;

	for (const char *p = text; *p; p++) {
		const char *rep = NULL;
		size_t rlen;

		switch (*p) {
		case '&':
			rep = "&amp;";
			break;
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '"':
			rep = "&quot;";
			break;
		case '\'':
			rep = "&apos;";
			break;
		default:
			break;
		}
		rlen = rep ? strlen(rep) : 1;
		/* Never cut an entity in half: stop at the first piece that doesn't fit. */
		if (fits && written + rlen < outlen) {
			memcpy(out + written, rep ? rep : p, rlen);
			written += rlen;
		} else {
			fits = false;
		}
		n += rlen;
	}
	if (outlen)
		out[written] = '\0';
	return n;
}

struct error_fields {
	char *code, *msg;
	size_t codelen, msglen;
};

static int error_field(void *ctx, const char *path, const char *text)
{
	struct error_fields *f = ctx;

	if (strcmp(path, "Error/Code") == 0)
		snprintf(f->code, f->codelen, "%s", text);
	else if (strcmp(path, "Error/Message") == 0)
		snprintf(f->msg, f->msglen, "%s", text);
	return 0;
}

/* String member NAME of the JSON object O into OUT (left "" when absent). */
static void json_member(const json_t *o, const char *name, char *out, size_t outlen)
{
	const char *v = json_string_value(json_object_get(o, name));

	if (v)
		snprintf(out, outlen, "%s", v);
}

void s3xml_error_fields(const char *doc, size_t len, char *code, size_t codelen, char *msg,
			size_t msglen)
{
	struct error_fields f = {code, msg, codelen, msglen};

	code[0] = msg[0] = '\0';
	if (!doc || !len)
		return;
	while (len && (*doc == ' ' || *doc == '\n' || *doc == '\r' || *doc == '\t')) {
		doc++;
		len--;
	}
	if (len && *doc == '{') {
		/* B2's native API answers errors in JSON: {"status", "code", "message"} */
		json_t *o = json_loadb(doc, len, 0, NULL);
		json_member(o, "code", code, codelen);
		json_member(o, "message", msg, msglen);
		json_decref(o);
		return;
	}
	s3xml_walk(doc, len, error_field, &f);
}

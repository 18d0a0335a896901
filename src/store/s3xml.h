/*
 * s3xml.h - the little XML that S3 speaks (list results, multipart answers,
 * error documents), read with expat into callbacks.
 */
#ifndef ZERO_S3XML_H
#define ZERO_S3XML_H

#include <stddef.h>

/*
 * Parse DOC (LEN bytes) and call FN at the end of every element with the
 * element's path from the root ("ListBucketResult/Contents/Key", namespace
 * prefixes dropped) and its text content ("" for elements with children).
 * Returns 0, -EPROTO for malformed XML, or the first negative FN result.
 */
int s3xml_walk(const char *doc, size_t len,
	       int (*fn)(void *ctx, const char *path, const char *text), void *ctx);

/* Append TEXT to OUT with &, <, >, ", ' escaped; returns the bytes needed (like snprintf). */
size_t s3xml_escape(const char *text, char *out, size_t outlen);

/*
 * Error documents: S3 XML (<Error><Code>..<Message>..) or B2 JSON
 * ({"code": .., "message": ..}). Copies what it finds into CODE and MSG
 * (empty strings when absent).
 */
void s3xml_error_fields(const char *doc, size_t len, char *code, size_t codelen, char *msg,
			size_t msglen);

#endif /* ZERO_S3XML_H */

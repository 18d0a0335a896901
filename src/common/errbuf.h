/*
 * errbuf.h - one-line error messages written into a caller's buffer.
 *
 * Constructors and loaders report why they failed through (ERR, ERRLEN);
 * either may be NULL/0, in which case the message is dropped.
 */
#ifndef ZERO_ERRBUF_H
#define ZERO_ERRBUF_H

#include <stddef.h>

void errbuf_set(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif /* ZERO_ERRBUF_H */

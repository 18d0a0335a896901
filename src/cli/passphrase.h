/*
 * passphrase.h - the passphrase of an encrypted filesystem, from where its
 * user keeps it: an environment variable, a file private to its owner, or
 * a prompt on the terminal (without echo).
 */
#ifndef ZERO_PASSPHRASE_H
#define ZERO_PASSPHRASE_H

#include <stdbool.h>
#include <stddef.h>

/* The longest passphrase taken, in bytes. */
#define PASSPHRASE_MAX 1024

struct passphrase_source {
	const char *env;    /* variable to take it from (ZERO_PASSPHRASE), or NULL */
	const char *file;   /* file whose content it is (one trailing newline dropped), or NULL */
	const char *prompt; /* on a terminal: what to ask */
	bool confirm;	    /* on a terminal: ask twice (a new passphrase) */
};

/*
 * Get a passphrase from the first of SRC's places that has one: ENV, then
 * FILE, then the terminal on standard input. Into BUF (PASSPHRASE_MAX + 1
 * bytes), NUL-terminated; *LEN its length. On failure ERR says why: none
 * given (-ENOKEY), a FILE others may read (-EPERM), unreadable (-errno),
 * empty or too long (-EINVAL), the two entries differ (-EINVAL). The caller
 * wipes BUF after use.
 */
int passphrase_get(const struct passphrase_source *src, char *buf, size_t *len, char *err,
		   size_t errlen);

#endif /* ZERO_PASSPHRASE_H */

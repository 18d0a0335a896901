/*
 * passphrase.c - the passphrase of an encrypted filesystem (see
 * passphrase.h). A passphrase file must be a regular file of the user
 * running zero (or root's), closed to group and others, as ssh does with
 * private keys: a passphrase anyone may read protects nothing.
 */
#include "cli/passphrase.h"

#include "common/errbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

/* Take TEXT (N bytes) as the passphrase, dropping one trailing newline. */
static int take(const char *text, size_t n, const char *from, char *buf, size_t *len, char *err,
		size_t errlen)
{
	if (n && text[n - 1] == '\n')
		n--;
	if (n && text[n - 1] == '\r')
		n--;
	if (n == 0) {
		errbuf_set(err, errlen, "%s: the passphrase is empty", from);
		return -EINVAL;
	}
	if (n > PASSPHRASE_MAX) {
		errbuf_set(err, errlen, "%s: the passphrase is longer than %d bytes", from,
			   PASSPHRASE_MAX);
		return -EINVAL;
	}
	memcpy(buf, text, n);
	buf[n] = '\0';
	*len = n;
	return 0;
}

static int from_file(const char *path, char *buf, size_t *len, char *err, size_t errlen)
{
	char text[PASSPHRASE_MAX + 3];
	struct stat st;
	ssize_t n;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		ret = -errno;
		errbuf_set(err, errlen, "passphraseFile %s: %s", path, strerror(errno));
		return ret;
	}
	ret = -EPERM;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		errbuf_set(err, errlen, "passphraseFile %s is not a regular file", path);
		goto out_close;
	}
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		errbuf_set(err, errlen, "passphraseFile %s belongs to another user (uid %u)", path,
			   (unsigned)st.st_uid);
		goto out_close;
	}
	if (st.st_mode & 077) {
		errbuf_set(err, errlen,
			   "passphraseFile %s is open to other users (mode %04o): make it private "
			   "(chmod 600 %s)",
			   path, (unsigned)(st.st_mode & 07777), path);
		goto out_close;
	}
	n = read(fd, text, sizeof(text));
	if (n < 0) {
		ret = -errno;
		errbuf_set(err, errlen, "passphraseFile %s: %s", path, strerror(errno));
		goto out_close;
	}
	ret = take(text, (size_t)n, path, buf, len, err, errlen);
	explicit_bzero(text, sizeof(text));
out_close:
	close(fd);
	return ret;
}

/* One line from the terminal on standard input, echo off. */
static int ask(const char *prompt, char *line, size_t size)
{
	struct termios old, quiet;
	bool restore = tcgetattr(STDIN_FILENO, &old) == 0;
	int ret = 0;

	/* echo off before the prompt: what is typed after it is never shown, nor flushed */
	if (restore) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
		quiet.c_lflag |= ICANON;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	fprintf(stderr, "%s", prompt);
	fflush(stderr);
	ssize_t n = read(STDIN_FILENO, line, size - 1);
	if (n < 0)
		ret = -errno;
	else
		line[n] = '\0';
	if (restore)
		tcsetattr(STDIN_FILENO, TCSADRAIN, &old);
	fputc('\n', stderr);
	return ret ? ret : (int)n;
}

static int from_terminal(const struct passphrase_source *src, char *buf, size_t *len, char *err,
			 size_t errlen)
{
	char first[PASSPHRASE_MAX + 3], again[PASSPHRASE_MAX + 3], check[PASSPHRASE_MAX + 1];
	size_t check_len = 0;
	int n, ret;

	n = ask(src->prompt, first, sizeof(first));
	if (n < 0) {
		errbuf_set(err, errlen, "cannot read the passphrase: %s", strerror(-n));
		return n;
	}
	ret = take(first, (size_t)n, "terminal", buf, len, err, errlen);
	if (ret == 0 && src->confirm) {
		n = ask("again, to be sure: ", again, sizeof(again));
		if (n < 0 || take(again, (size_t)n, "terminal", check, &check_len, NULL, 0) != 0 ||
		    check_len != *len || memcmp(check, buf, check_len) != 0) {
			errbuf_set(err, errlen, "the two passphrases differ");
			ret = -EINVAL;
		}
	}
	explicit_bzero(first, sizeof(first));
	explicit_bzero(again, sizeof(again));
	explicit_bzero(check, sizeof(check));
	return ret;
}

int passphrase_get(const struct passphrase_source *src, char *buf, size_t *len, char *err,
		   size_t errlen)
{
	const char *v = src->env ? getenv(src->env) : NULL;

	*len = 0;
	if (v && *v)
		return take(v, strlen(v), src->env, buf, len, err, errlen);
	if (src->file)
		return from_file(src->file, buf, len, err, errlen);
	if (isatty(STDIN_FILENO))
		return from_terminal(src, buf, len, err, errlen);
	errbuf_set(err, errlen, "%s", "no passphrase given");
	return -ENOKEY;
}

/*
 * log.c - timestamped, levelled log lines, one write(2) per message so that
 * lines from concurrent threads never interleave.
 */
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level_current = LOG_INFO;
static atomic_int log_fd = STDERR_FILENO;

void log_set_level(enum log_level level)
{
	atomic_store(&log_level_current, level);
}

int log_open_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

	if (fd < 0)
		return -errno;
	int old = atomic_exchange(&log_fd, fd);
	if (old != STDERR_FILENO)
		close(old);
	return 0;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};
	char line[4096];
	struct timespec now;
	struct tm tm;
	size_t n;
	va_list ap;

	if ((int)level > atomic_load(&log_level_current))
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ %s: ", now.tv_nsec / 1000000,
			      names[level]);
	va_start(ap, fmt);
	int r = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	if (r < 0)
		r = 0;
	n += (size_t)r;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	ssize_t w = write(atomic_load(&log_fd), line, n);
	(void)w;
}

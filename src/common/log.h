/*
 * log.h - Zero's one logging facility.
 *
 * Messages go to stderr until log_open_file() points them at a file (the
 * daemon's log once it detaches). Each line carries a UTC timestamp and a
 * level. Safe to call from any thread: each message is formatted into one
 * buffer and written with a single write(2).
 */
#ifndef ZERO_LOG_H
#define ZERO_LOG_H

#include <stdarg.h>

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* Messages above this level are dropped. Default LOG_INFO. */
void log_set_level(enum log_level level);

/* Send messages to PATH (appended). Returns 0 or -errno. */
int log_open_file(const char *path);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif /* ZERO_LOG_H */

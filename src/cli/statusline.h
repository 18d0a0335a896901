/*
 * statusline.h - reading a mount's status line (user.zero.status, JSON) for
 * the commands that show it: zero status, sync, zero-worker and the systemd
 * notifier; and the one way they all write a byte count.
 */
#ifndef ZERO_STATUSLINE_H
#define ZERO_STATUSLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Parse TEXT as a status line: a JSON object, or NULL (caller decrefs). */
json_t *statusline_parse(const char *text);
/* Read and parse the status of the mount that PATH is in; NULL with *ERR = -errno. */
json_t *statusline_read(const char *path, int *err);

struct fs;
/*
 * The status line of FS, which this process serves (the daemon's own
 * threads: the systemd notifier, the metrics endpoint), into BUF as text,
 * NUL-terminated: its length, or -errno.
 */
int statusline_fs_text(struct fs *fs, char *buf, size_t size);

/* Member KEY of status S: a non-negative integer (0 when absent, negative or not one). */
uint64_t statusline_u64(const json_t *s, const char *key);
/* Member KEY as a number (0 when absent). */
double statusline_number(const json_t *s, const char *key);
/* Member KEY is true. */
bool statusline_true(const json_t *s, const char *key);
/* Member KEY as a string into OUT ("" when absent); control characters become spaces. */
void statusline_string(const json_t *s, const char *key, char *out, size_t size);

/* N bytes as "512 B", "3.2 MiB", "140 GiB" into OUT. */
void statusline_bytes(uint64_t n, char *out, size_t size);

#endif /* ZERO_STATUSLINE_H */

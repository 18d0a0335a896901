/*
 * recover.h - restoring the bucket's filesystem into a new cache (recover.c).
 */
#ifndef ZERO_CLI_RECOVER_H
#define ZERO_CLI_RECOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct objstore;
struct keyring;
struct journal_target;

/*
 * When DB_PATH does not exist and STORE holds a journal, restore it there
 * with KEYS (NULL: not encrypted; TARGET: which state, NULL the newest), make it ready for an empty cache
 * and list what could not be restored (log, and stderr when TO_STDERR).
 * *RESTORED says whether it did. A bucket without a journal is no error
 * (a new filesystem), unless a past state was asked for.
 */
int recover_new_cache(struct objstore *store, const struct keyring *keys, const char *db_path,
		      const struct journal_target *t, bool to_stderr, bool *restored, char *err,
		      size_t errlen);
/* "@SECONDS[.frac]" or "YYYY-MM-DD HH:MM:SS" (local time, also with T) into ms. */
int recover_parse_time(const char *s, int64_t *ms);

#endif /* ZERO_CLI_RECOVER_H */

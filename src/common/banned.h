/*
 * banned.h - functions Zero's code must not call.
 *
 * Force-included into every translation unit by the build. Each of these
 * either cannot bound its output (strcpy, strcat, sprintf, vsprintf, gets)
 * or silently truncates without terminating (strncpy), or keeps hidden
 * global state (strtok, asctime, ctime, localtime, gmtime). Use snprintf,
 * memcpy with a checked length, strtok_r, localtime_r and gmtime_r.
 * System headers are included before the macros take effect, so their own
 * prototypes stay intact.
 */
#ifndef ZERO_BANNED_H
#define ZERO_BANNED_H

#include <stdio.h>
#include <string.h>
#include <time.h>

#define BANNED(func) sorry_##func##_is_a_banned_function

#undef strcpy
#define strcpy(x, y) BANNED(strcpy)
#undef strcat
#define strcat(x, y) BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) BANNED(strncpy)
#undef sprintf
#define sprintf(...) BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) BANNED(vsprintf)
#undef gets
#define gets(x) BANNED(gets)
#undef strtok
#define strtok(x, y) BANNED(strtok)
#undef asctime
#define asctime(x) BANNED(asctime)
#undef ctime
#define ctime(x) BANNED(ctime)
#undef localtime
#define localtime(x) BANNED(localtime)
#undef gmtime
#define gmtime(x) BANNED(gmtime)

#endif /* ZERO_BANNED_H */

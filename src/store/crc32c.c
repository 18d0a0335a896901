/*
 * crc32c.c - CRC-32C, reflected polynomial 0x82f63b78 (see crc32c.h).
 *
 * The hardware path runs one dependent chain of crc32q instructions (about
 * 8 bytes per 3 cycles), fast enough that checksumming an upload costs a
 * few percent of sending it even on loopback. The table path exists for
 * other CPUs and is what the unit test compares the hardware against.
 */
#include "store/crc32c.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#define POLY 0x82f63b78u

static uint32_t table[256];
static bool have_sse42;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void crc32c_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
		table[i] = c;
	}
#if defined(__x86_64__)
	__builtin_cpu_init();
	have_sse42 = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t crc32c_table(uint32_t c, const unsigned char *p, size_t n)
{
	while (n--)
		c = table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return c;
}

#if defined(__x86_64__)
#include <nmmintrin.h>

__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t c, const unsigned char *p,
							       size_t n)
{
	uint64_t c64;

	while (n && ((uintptr_t)p & 7)) {
		c = _mm_crc32_u8(c, *p++);
		n--;
	}
	c64 = c;
	while (n >= 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		c64 = _mm_crc32_u64(c64, v);
		p += 8;
		n -= 8;
	}
	c = (uint32_t)c64;
	while (n--)
		c = _mm_crc32_u8(c, *p++);
	return c;
}
#endif

uint32_t crc32c_update(uint32_t crc, const void *data, size_t len)
{
	uint32_t c = ~crc;

	pthread_once(&init_once, crc32c_init);
#if defined(__x86_64__)
	if (have_sse42)
		return ~crc32c_sse42(c, data, len);
#endif
	return ~crc32c_table(c, data, len);
}

uint32_t crc32c_update_table(uint32_t crc, const void *data, size_t len)
{
	pthread_once(&init_once, crc32c_init);
	return ~crc32c_table(~crc, data, len);
}

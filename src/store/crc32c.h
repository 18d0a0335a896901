/*
 * crc32c.h - CRC-32C (Castagnoli), the checksum S3 calls CRC32C
 * (x-amz-checksum-crc32c). Uses the SSE4.2 instruction where the CPU has
 * it, a table otherwise.
 */
#ifndef ZERO_CRC32C_H
#define ZERO_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* CRC of DATA continuing from CRC (0 to start); crc32c_update(0, "123456789", 9) == 0xe3069283. */
uint32_t crc32c_update(uint32_t crc, const void *data, size_t len);

/* The same with the table only, whatever the CPU (tests check one against the other). */
uint32_t crc32c_update_table(uint32_t crc, const void *data, size_t len);

#endif /* ZERO_CRC32C_H */

/*
 * yp_status.c — status texts and the CRC-32 used by chunk headers and
 * payloads. CRC-32 is the IEEE polynomial (as zlib), table-driven, table built
 * once at compile time so the function is pure and thread-safe.
 */
#include <assert.h>

#include "yprof/format.h"

static const char *const yp_status_text[] = {
    [YP_OK] = "ok",
    [YP_ERR_NOMEM] = "out of memory",
    [YP_ERR_IO] = "i/o error",
    [YP_ERR_CORRUPT] = "corrupt data",
    [YP_ERR_VERSION] = "unsupported format version",
    [YP_ERR_NOT_TRACE] = "not a yprof trace",
    [YP_ERR_TRUNCATED] = "trace cut short",
    [YP_ERR_CHECKSUM] = "checksum mismatch",
    [YP_ERR_ARG] = "bad argument",
    [YP_END] = "end of trace",
};
static_assert(sizeof yp_status_text / sizeof yp_status_text[0] == YP_STATUS_COUNT,
              "status table out of step with yp_status");

const char *yp_status_str(yp_status st) {
    if ((unsigned)st >= YP_STATUS_COUNT) return "unknown status";
    return yp_status_text[st];
}

#define P 0xEDB88320u
#define C1(c) (((c)&1u) ? ((c) >> 1) ^ P : (c) >> 1)
#define C8(c) C1(C1(C1(C1(C1(C1(C1(C1(c))))))))
#define R4(n) C8(n), C8(n + 1), C8(n + 2), C8(n + 3)
#define R16(n) R4(n), R4(n + 4), R4(n + 8), R4(n + 12)
#define R64(n) R16(n), R16(n + 16), R16(n + 32), R16(n + 48)
static const uint32_t yp_crc_table[256] = {R64(0u), R64(64u), R64(128u), R64(192u)};

uint32_t yp_crc32(uint32_t crc, const void *data, size_t len) {
    const uint8_t *p = data;
    crc = ~crc;
    while (len--) crc = yp_crc_table[(crc ^ *p++) & 0xFFu] ^ (crc >> 8);
    return ~crc;
}

/*
 * yp_status.c — status texts and the CRC-32 used by chunk headers and
 * payloads. CRC-32 is the IEEE polynomial (as zlib), slicing-by-8, the tables
 * built once under pthread_once so the function is thread-safe.
 */
#include <assert.h>
#include <pthread.h>

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

/* Slicing-by-8: eight 256-entry tables, built once (pthread_once), then
 * eight bytes per step. Table 0 is the classic byte-at-a-time table. */
static uint32_t yp_crc_tab[8][256];
static pthread_once_t yp_crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1u) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
        yp_crc_tab[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            yp_crc_tab[t][i] = (yp_crc_tab[t - 1][i] >> 8) ^ yp_crc_tab[0][yp_crc_tab[t - 1][i] & 0xFFu];
}

uint32_t yp_crc32(uint32_t crc, const void *data, size_t len) {
    pthread_once(&yp_crc_once, crc_init);
    const uint8_t *p = data;
    crc = ~crc;
    while (len >= 8) {
        uint32_t lo =
            crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
        crc = yp_crc_tab[7][lo & 0xFF] ^ yp_crc_tab[6][(lo >> 8) & 0xFF] ^ yp_crc_tab[5][(lo >> 16) & 0xFF] ^
              yp_crc_tab[4][lo >> 24] ^ yp_crc_tab[3][hi & 0xFF] ^ yp_crc_tab[2][(hi >> 8) & 0xFF] ^
              yp_crc_tab[1][(hi >> 16) & 0xFF] ^ yp_crc_tab[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--) crc = yp_crc_tab[0][(crc ^ *p++) & 0xFFu] ^ (crc >> 8);
    return ~crc;
}

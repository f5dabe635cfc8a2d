/*
 * yp_format_int.h — little-endian load/store helpers shared by the writer and
 * the reader. Private to format/.
 */
#ifndef YP_FORMAT_INT_H
#define YP_FORMAT_INT_H

#include <stdint.h>
#include <string.h>

#include "yprof/containers.h"
#include "yprof/format.h"

static inline void yp_put_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void yp_put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void yp_put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t yp_get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t yp_get_u32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static inline uint64_t yp_get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static inline void yp_put_f64(uint8_t *p, double d) {
    uint64_t v;
    memcpy(&v, &d, sizeof v);
    yp_put_u64(p, v);
}
static inline double yp_get_f64(const uint8_t *p) {
    uint64_t v = yp_get_u64(p);
    double d;
    memcpy(&d, &v, sizeof d);
    return d;
}

/* Chunk header <-> 56 bytes. Pack also fills header_crc. */
void yp_chunk_header_pack(yp_chunk_header *h, uint8_t out[YP_CHUNK_HEADER_SIZE]);
/* YP_OK, or YP_ERR_CORRUPT if magic, size or CRC is wrong. */
yp_status yp_chunk_header_unpack(const uint8_t in[YP_CHUNK_HEADER_SIZE], yp_chunk_header *h);

/* Offsets in the 64-byte file header (docs/format.md, "File header"). */
enum {
    YP_FH_MAGIC = 0,
    YP_FH_VERSION = 8,
    YP_FH_SIZE = 12,
    YP_FH_CLOCK = 16,
    YP_FH_EXTRA = 20,
    YP_FH_NS_PER_TICK = 24,
    YP_FH_WALL = 32,
    YP_FH_TICKS = 40,
    YP_FH_PID = 48,
    YP_FH_PPID = 52, /* "flags", always 0, before the parent pid was written */
    YP_FH_EXTRA_CRC = 56,
    YP_FH_CRC = 60
};

#endif

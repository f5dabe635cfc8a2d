/*
 * yp_pb.c — Protocol Buffers writing and a stored-block gzip stream (see
 * yp_pb_int.h).
 */
#include "yp_pb_int.h"

#include <stdlib.h>
#include <string.h>

#include "yprof/containers.h"
#include "yprof/format.h"

static void put(yp_pb *b, const void *data, size_t n) {
    if (b->failed || yp_grow((void **)&b->p, &b->cap, b->len + n, 1, 256)) {
        b->failed = 1;
        return;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

void yp_pb_reset(yp_pb *b) { b->len = 0; }

void yp_pb_free(yp_pb *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

void yp_pb_varint(yp_pb *b, uint64_t v) {
    uint8_t out[10];
    size_t n = 0;
    do {
        out[n++] = (uint8_t)((v & 0x7F) | (v > 0x7F ? 0x80 : 0));
        v >>= 7;
    } while (v);
    put(b, out, n);
}

void yp_pb_uint(yp_pb *b, uint32_t field, uint64_t v) {
    yp_pb_varint(b, (uint64_t)field << 3);
    yp_pb_varint(b, v);
}

void yp_pb_sint(yp_pb *b, uint32_t field, int64_t v) { yp_pb_uint(b, field, (uint64_t)v); }

void yp_pb_bytes(yp_pb *b, uint32_t field, const void *data, size_t n) {
    yp_pb_varint(b, (uint64_t)field << 3 | 2);
    yp_pb_varint(b, n);
    put(b, data, n);
}

void yp_pb_str(yp_pb *b, uint32_t field, const char *s) { yp_pb_bytes(b, field, s, strlen(s)); }

void yp_pb_msg(yp_pb *b, uint32_t field, const yp_pb *m) {
    if (m->failed) b->failed = 1;
    yp_pb_bytes(b, field, m->p, m->len);
}

/* ---- gzip, stored blocks -------------------------------------------------- */

static void block(yp_gz *z, int last) {
    uint8_t h[5] = {(uint8_t)(last ? 1 : 0), (uint8_t)(z->n & 0xFF), (uint8_t)(z->n >> 8),
                    (uint8_t)(~z->n & 0xFF), (uint8_t)((~z->n >> 8) & 0xFF)};
    fwrite(h, 1, sizeof h, z->f);
    fwrite(z->block, 1, z->n, z->f);
    z->n = 0;
}

void yp_gz_open(yp_gz *z, FILE *f) {
    static const uint8_t hdr[10] = {0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3}; /* deflate, no name, Unix */
    z->f = f;
    z->n = 0;
    z->crc = z->size = 0;
    fwrite(hdr, 1, sizeof hdr, f);
}

void yp_gz_write(yp_gz *z, const void *data, size_t n) {
    const uint8_t *p = data;
    z->crc = yp_crc32(z->crc, p, n);
    z->size += (uint32_t)n;
    while (n) {
        size_t k = sizeof z->block - z->n < n ? sizeof z->block - z->n : n;
        memcpy(z->block + z->n, p, k);
        z->n += k, p += k, n -= k;
        if (z->n == sizeof z->block) block(z, 0);
    }
}

void yp_gz_close(yp_gz *z) {
    block(z, 1);
    uint8_t t[8];
    for (int i = 0; i < 4; i++) t[i] = (uint8_t)(z->crc >> (8 * i)), t[4 + i] = (uint8_t)(z->size >> (8 * i));
    fwrite(t, 1, sizeof t, z->f);
}

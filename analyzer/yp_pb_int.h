/*
 * yp_pb_int.h — writing Protocol Buffers (the exports' pprof and Perfetto
 * encodings): varints and length-delimited fields into a growable buffer,
 * and a gzip stream of them (yp_pb.c).
 *
 * Hand-written and small on purpose: the exports need five wire rules
 * (varint, length-delimited, packed varints, nested messages by length)
 * and no schema compiler; tests/python/test_pprof.py decodes what they write
 * with a reader of its own, and `go tool pprof` reads it.
 */
#ifndef YP_PB_INT_H
#define YP_PB_INT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus /* tests/unit/test_export.cc */
extern "C" {
#endif

/* A message being built. failed: an allocation failed (the rest is ignored). */
typedef struct yp_pb {
    uint8_t *p;
    size_t len, cap;
    int failed;
} yp_pb;

void yp_pb_reset(yp_pb *b); /* len = 0, keeps the memory */
void yp_pb_free(yp_pb *b);
void yp_pb_varint(yp_pb *b, uint64_t v);               /* a bare varint (packed fields) */
void yp_pb_uint(yp_pb *b, uint32_t field, uint64_t v); /* wire type 0 */
void yp_pb_sint(yp_pb *b, uint32_t field, int64_t v);  /* int64 as two's complement, wire type 0 */
void yp_pb_bytes(yp_pb *b, uint32_t field, const void *data, size_t n); /* wire type 2 */
void yp_pb_str(yp_pb *b, uint32_t field, const char *s);
void yp_pb_msg(yp_pb *b, uint32_t field, const yp_pb *m); /* m as a nested message */

/* A gzip file (RFC 1952) whose deflate data are stored blocks (RFC 1951,
 * BTYPE 00): what every gunzip and pprof read, with no compression library. */
typedef struct yp_gz {
    FILE *f;
    uint8_t block[65535];
    size_t n;
    uint32_t crc, size;
} yp_gz;

void yp_gz_open(yp_gz *z, FILE *f); /* writes the header */
void yp_gz_write(yp_gz *z, const void *data, size_t n);
void yp_gz_close(yp_gz *z); /* the last block and the trailer; f stays open */

#ifdef __cplusplus
}
#endif

#endif

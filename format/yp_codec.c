/*
 * yp_codec.c — the on-disk coding of EVENTS payloads.
 *
 * In memory an event is 16 bytes. On disk (format versions 2 to 4) a chunk of n
 * events is two columns of LEB128 varints:
 *
 *   n x varint(ts - prev_ts)          prev_ts starts at the chunk's first_ts
 *   n x varint(func_id << 4 | kind)   kind in the low 4 bits (a CORO
 *                                     or SWITCH record: its 56-bit identity << 4)
 *
 * Columns, not interleaved pairs: the id column repeats the program's call
 * patterns and zstd finds them when the timing noise is not in between (the
 * writer also ends a zstd block between the two, so each gets its own
 * entropy tables). Timestamps are stored >> ts_shift (the trace's
 * resolution, docs/format.md). Timestamps that go backwards (a CPU clock
 * read on another core, say) are clamped, so deltas are never negative. The
 * decoder reads nothing past its end pointer and insists on consuming its
 * input exactly. Version 1 traces (pairs interleaved) are still read.
 */
#include "yprof/format.h"

#include <assert.h>

static_assert(sizeof(yp_event) == 16, "yp_event is the 16-byte ring record");
static_assert(YP_EV_KIND_COUNT <= (1u << YP_KIND_BITS), "kind must fit 4 bits");

size_t yp_events_encode_bound(size_t n) { return n * 18u; } /* 10 (ts) + 8 (a CORO's 60 bits) */

static inline uint8_t *put_varint(uint8_t *p, uint64_t v) {
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

size_t yp_events_encode(const yp_event *ev, size_t n, uint64_t first_ts, unsigned ts_shift, uint8_t *out,
                        size_t out_cap, size_t *ts_bytes) {
    if (out_cap < yp_events_encode_bound(n) || ts_shift > 32) return 0;
    uint8_t *p = out;
    uint64_t prev = first_ts;
    for (size_t i = 0; i < n; i++) {
        uint64_t ts = ev[i].ts >> ts_shift;
        if (ts < prev) ts = prev;
        p = put_varint(p, ts - prev);
        prev = ts;
    }
    if (ts_bytes) *ts_bytes = (size_t)(p - out);
    for (size_t i = 0; i < n; i++) {
        uint64_t id = yp_kind_has_identity(ev[i].kind) ? yp_event_coro(&ev[i])
                      : ev[i].func_id > YP_FUNC_ID_MAX ? YP_FUNC_ID_MAX
                                                       : ev[i].func_id;
        p = put_varint(p, (id << YP_KIND_BITS) | (ev[i].kind & YP_KIND_MASK));
    }
    return (size_t)(p - out);
}

/* One LEB128 varint from *pp (not past end); -1 when cut short or over 64 bits. */
static inline int get_varint(const uint8_t **pp, const uint8_t *end, uint64_t *v) {
    const uint8_t *p = *pp;
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (p >= end) return -1;
        uint8_t b = *p++;
        x |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) {
            *pp = p;
            *v = x;
            return 0;
        }
    }
    return -1;
}

static inline int set_id_kind(yp_event *e, uint64_t idk) {
    unsigned kind = (unsigned)(idk & YP_KIND_MASK);
    if (kind >= YP_EV_KIND_COUNT) return -1;
    e->kind = (uint8_t)kind;
    if (yp_kind_has_identity(kind)) { /* a 56-bit identity */
        if (idk >> (56 + YP_KIND_BITS)) return -1;
        yp_event_set_coro(e, idk >> YP_KIND_BITS);
        return 0;
    }
    if (idk >> 32) return -1;
    e->func_id = (uint32_t)(idk >> YP_KIND_BITS);
    e->pad[0] = e->pad[1] = e->pad[2] = 0;
    return 0;
}

yp_status yp_events_decode(const uint8_t *in, size_t len, size_t n, uint64_t first_ts, yp_event *out) {
    /* where the id column starts: after the n-th byte without a continuation
     * bit (a byte count, cheap); then one pass reads both columns */
    const uint8_t *end = in + len, *ids = in;
    size_t left = n;
    while (left && ids < end) left -= !(*ids++ & 0x80);
    if (left) return YP_ERR_CORRUPT;
    const uint8_t *p = in, *q = ids;
    uint64_t ts = first_ts;
    for (size_t i = 0; i < n; i++) {
        uint64_t d, idk;
        if (get_varint(&p, ids, &d) || get_varint(&q, end, &idk) || set_id_kind(&out[i], idk))
            return YP_ERR_CORRUPT;
        ts += d;
        out[i].ts = ts;
    }
    return p == ids && q == end ? YP_OK : YP_ERR_CORRUPT;
}

yp_status yp_events_decode_v1(const uint8_t *in, size_t len, size_t n, uint64_t first_ts, yp_event *out) {
    const uint8_t *p = in, *end = in + len;
    uint64_t ts = first_ts;
    for (size_t i = 0; i < n; i++) {
        uint64_t d, idk;
        if (get_varint(&p, end, &d) || get_varint(&p, end, &idk) || set_id_kind(&out[i], idk))
            return YP_ERR_CORRUPT;
        ts += d;
        out[i].ts = ts;
    }
    return p == end ? YP_OK : YP_ERR_CORRUPT;
}

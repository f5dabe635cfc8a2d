/*
 * yp_reader.c — streaming, bounded-memory reader of yprof traces.
 *
 * The reader walks the file chunk by chunk with pread (or over a memory
 * buffer). Every size read from the file is checked against a fixed cap
 * (YP_CHUNK_COMP_MAX, YP_CHUNK_RAW_MAX, YP_CHUNK_EVENTS_MAX) and against the
 * bytes actually left before anything is allocated, so no input can make it
 * allocate more than about 64 MiB + 128 MiB of events, whatever it claims.
 *
 * Damage is handled like this:
 *   - a chunk header with a bad magic, size or CRC: YP_ERR_CORRUPT is
 *     returned once, and the reader scans forward for the next valid chunk
 *     header (bytes_skipped counts what it passed over);
 *   - a payload whose CRC, zstd frame or event coding is wrong: the chunk is
 *     skipped by its length and YP_ERR_CHECKSUM / YP_ERR_CORRUPT returned;
 *   - the file ends inside a chunk: YP_ERR_TRUNCATED, and bytes_ok tells how
 *     much of the file was whole.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "yp_format_int.h"

struct yp_reader {
    int fd;             /* -1 for memory */
    const uint8_t *mem; /* memory source */
    uint64_t size;
    uint64_t off; /* next chunk header */
    yp_header hdr;
    char *extra; /* header strings */
    ZSTD_DCtx *dctx;
    uint8_t *comp;
    size_t comp_cap;
    uint8_t *raw;
    size_t raw_cap;
    yp_event *ev;
    size_t ev_cap;
    int done;
    yp_reader_stats st;
};

static void fmt_err(char *errbuf, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#include <stdarg.h>
static void fmt_err(char *errbuf, size_t errlen, const char *fmt, ...) {
    if (!errbuf || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}

/* Read exactly len bytes at off; 0 on success. */
static int src_read(yp_reader *r, uint64_t off, void *buf, size_t len) {
    if (off > r->size || len > r->size - off) return -1;
    if (r->fd < 0) {
        memcpy(buf, r->mem + off, len);
        return 0;
    }
    uint8_t *p = buf;
    while (len) {
        ssize_t k = pread(r->fd, p, len, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        off += (uint64_t)k;
        len -= (size_t)k;
    }
    return 0;
}

static int grow(void **buf, size_t *cap, size_t need, size_t elem) {
    return yp_grow(buf, cap, need, elem, 4096);
}

/* Read and check the file header and its strings into r->hdr; the error said in errbuf. */
static yp_status read_header(yp_reader *r, char *errbuf, size_t errlen) {
    uint8_t h[YP_FILE_HEADER_SIZE];
    if (r->size < 8) {
        if (r->size == 0) {
            fmt_err(errbuf, errlen, "empty file, not a yprof trace");
            return YP_ERR_NOT_TRACE;
        }
    }
    size_t n = r->size < sizeof h ? (size_t)r->size : sizeof h;
    if (src_read(r, 0, h, n)) {
        fmt_err(errbuf, errlen, "cannot read header: %s", strerror(errno));
        return YP_ERR_IO;
    }
    if (n < 8 || memcmp(h, YP_FILE_MAGIC, 8) != 0) {
        fmt_err(errbuf, errlen, "not a yprof trace (bad magic)");
        return YP_ERR_NOT_TRACE;
    }
    if (n < sizeof h) {
        fmt_err(errbuf, errlen, "trace cut short inside its header (%zu of %u bytes)", n,
                YP_FILE_HEADER_SIZE);
        return YP_ERR_TRUNCATED;
    }
    uint32_t version = yp_get_u32(h + YP_FH_VERSION);
    if (yp_get_u32(h + YP_FH_CRC) != yp_crc32(0, h, YP_FH_CRC)) {
        fmt_err(errbuf, errlen, "corrupt trace header (checksum mismatch)");
        return YP_ERR_CORRUPT;
    }
    if (version < YP_FORMAT_VERSION_MIN || version > YP_FORMAT_VERSION) {
        fmt_err(errbuf, errlen, "unsupported trace format version %u (this build reads %u to %u)", version,
                YP_FORMAT_VERSION_MIN, YP_FORMAT_VERSION);
        return YP_ERR_VERSION;
    }
    uint32_t hsize = yp_get_u32(h + YP_FH_SIZE), extra = yp_get_u32(h + YP_FH_EXTRA);
    if (hsize != YP_FILE_HEADER_SIZE || extra < 2 || extra > YP_HEADER_EXTRA_MAX) {
        fmt_err(errbuf, errlen, "corrupt trace header (sizes %u/%u)", hsize, extra);
        return YP_ERR_CORRUPT;
    }
    if (r->size - YP_FILE_HEADER_SIZE < extra) {
        fmt_err(errbuf, errlen, "trace cut short inside its header");
        return YP_ERR_TRUNCATED;
    }
    r->extra = malloc(extra + 1);
    if (!r->extra) return YP_ERR_NOMEM;
    if (src_read(r, YP_FILE_HEADER_SIZE, r->extra, extra)) return YP_ERR_IO;
    r->extra[extra] = 0;
    if (yp_get_u32(h + YP_FH_EXTRA_CRC) != yp_crc32(0, r->extra, extra) || r->extra[extra - 1] != 0) {
        fmt_err(errbuf, errlen, "corrupt trace header (strings checksum mismatch)");
        return YP_ERR_CORRUPT;
    }
    size_t l1 = strlen(r->extra);
    if (l1 + 1 >= extra) {
        fmt_err(errbuf, errlen, "corrupt trace header (strings)");
        return YP_ERR_CORRUPT;
    }
    r->hdr.version = version;
    r->hdr.clock_kind = yp_get_u32(h + YP_FH_CLOCK);
    r->hdr.ns_per_tick = yp_get_f64(h + YP_FH_NS_PER_TICK);
    if (!(r->hdr.ns_per_tick > 0 && r->hdr.ns_per_tick < 1e6)) {
        fmt_err(errbuf, errlen, "corrupt trace header (clock rate)");
        return YP_ERR_CORRUPT;
    }
    r->hdr.start_wall_ns = yp_get_u64(h + YP_FH_WALL);
    r->hdr.start_ticks = yp_get_u64(h + YP_FH_TICKS);
    r->hdr.pid = yp_get_u32(h + YP_FH_PID);
    r->hdr.ppid = yp_get_u32(h + YP_FH_PPID);
    r->hdr.python_version = r->extra;
    r->hdr.command_line = r->extra + l1 + 1;
    r->off = YP_FILE_HEADER_SIZE + extra;
    r->st.bytes_ok = r->off;
    return YP_OK;
}

static yp_status open_common(yp_reader *r, yp_reader **out, char *errbuf, size_t errlen) {
    r->st.bytes_total = r->size;
    r->dctx = ZSTD_createDCtx();
    yp_status st = r->dctx ? read_header(r, errbuf, errlen) : YP_ERR_NOMEM;
    if (st != YP_OK) {
        if (st == YP_ERR_NOMEM) fmt_err(errbuf, errlen, "out of memory");
        yp_reader_close(r);
        return st;
    }
    *out = r;
    return YP_OK;
}

yp_status yp_reader_open(const char *path, yp_reader **out, char *errbuf, size_t errlen) {
    if (!out) return YP_ERR_ARG;
    *out = NULL;
    yp_reader *r = calloc(1, sizeof *r);
    if (!r) return YP_ERR_NOMEM;
    /* O_NONBLOCK: opening a FIFO (or a device) must not wait for a writer;
     * it is refused below, and a regular file ignores the flag */
    r->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat sb;
    if (r->fd < 0 || fstat(r->fd, &sb) != 0) {
        fmt_err(errbuf, errlen, "cannot open %s: %s", path, strerror(errno));
        yp_reader_close(r);
        return YP_ERR_IO;
    }
    if (!S_ISREG(sb.st_mode)) {
        fmt_err(errbuf, errlen, "%s is not a regular file", path);
        yp_reader_close(r);
        return YP_ERR_IO;
    }
    r->size = (uint64_t)sb.st_size;
    return open_common(r, out, errbuf, errlen);
}

yp_status yp_reader_open_mem(const void *data, size_t len, yp_reader **out, char *errbuf, size_t errlen) {
    if (!out || (!data && len)) return YP_ERR_ARG;
    *out = NULL;
    yp_reader *r = calloc(1, sizeof *r);
    if (!r) return YP_ERR_NOMEM;
    r->fd = -1;
    r->mem = data ? data : (const uint8_t *)"";
    r->size = len;
    return open_common(r, out, errbuf, errlen);
}

const yp_header *yp_reader_header(const yp_reader *r) { return r ? &r->hdr : NULL; }

yp_status yp_chunk_header_unpack(const uint8_t in[YP_CHUNK_HEADER_SIZE], yp_chunk_header *h) {
    h->magic = yp_get_u32(in);
    h->kind = in[4];
    h->flags = in[5];
    h->header_size = yp_get_u16(in + 6);
    h->thread_id = yp_get_u32(in + 8);
    h->seq = yp_get_u32(in + 12);
    h->n_records = yp_get_u32(in + 16);
    h->raw_bytes = yp_get_u32(in + 20);
    h->comp_bytes = yp_get_u32(in + 24);
    h->dropped = yp_get_u32(in + 28);
    h->first_ts = yp_get_u64(in + 32);
    h->last_ts = yp_get_u64(in + 40);
    h->payload_crc = yp_get_u32(in + 48);
    h->header_crc = yp_get_u32(in + 52);
    if (h->magic != YP_CHUNK_MAGIC || h->header_size != YP_CHUNK_HEADER_SIZE ||
        h->header_crc != yp_crc32(0, in, 52))
        return YP_ERR_CORRUPT;
    if (h->comp_bytes > YP_CHUNK_COMP_MAX || h->raw_bytes > YP_CHUNK_RAW_MAX) return YP_ERR_CORRUPT;
    if (h->kind == YP_CHUNK_EVENTS && (h->n_records == 0 || h->n_records > YP_CHUNK_EVENTS_MAX ||
                                       h->raw_bytes < 2ull * h->n_records || h->last_ts < h->first_ts))
        return YP_ERR_CORRUPT;
    return YP_OK;
}

/* Scan from r->off + 1 for the next valid chunk header; leaves r->off there
 * (or at the end of the file). */
static void resync(yp_reader *r) {
    uint64_t start = r->off, pos = r->off + 1;
    uint8_t buf[4096 + YP_CHUNK_HEADER_SIZE];
    while (pos + YP_CHUNK_HEADER_SIZE <= r->size) {
        uint64_t left = r->size - pos;
        size_t n = left < sizeof buf ? (size_t)left : sizeof buf;
        if (src_read(r, pos, buf, n)) break;
        for (size_t i = 0; i + YP_CHUNK_HEADER_SIZE <= n; i++) {
            if (buf[i] != 'Y' || buf[i + 1] != 'P' || buf[i + 2] != 'C' || buf[i + 3] != 'K') continue;
            yp_chunk_header h;
            if (yp_chunk_header_unpack(buf + i, &h) == YP_OK) {
                r->off = pos + i;
                r->st.bytes_skipped += r->off - start;
                return;
            }
        }
        pos += n - YP_CHUNK_HEADER_SIZE + 1;
    }
    r->off = r->size;
    r->st.bytes_skipped += r->size - start;
}

/* The chunk's payload read into r->comp: checked, decompressed and, for
 * events, decoded into c. A damaged payload is counted. */
static yp_status unpack_payload(yp_reader *r, yp_chunk *c) {
    if (yp_crc32(0, r->comp, c->h.comp_bytes) != c->h.payload_crc) {
        r->st.chunks_bad++;
        return YP_ERR_CHECKSUM;
    }
    unsigned long long fcs = ZSTD_getFrameContentSize(r->comp, c->h.comp_bytes);
    if (fcs != c->h.raw_bytes) {
        r->st.chunks_bad++;
        return YP_ERR_CORRUPT;
    }
    size_t k = ZSTD_decompressDCtx(r->dctx, r->raw, r->raw_cap, r->comp, c->h.comp_bytes);
    if (ZSTD_isError(k) || k != c->h.raw_bytes) {
        r->st.chunks_bad++;
        return YP_ERR_CORRUPT;
    }
    c->payload = r->raw;
    if (c->h.kind == YP_CHUNK_EVENTS) {
        if (grow((void **)&r->ev, &r->ev_cap, c->h.n_records, sizeof(yp_event))) {
            r->done = 1;
            return YP_ERR_NOMEM;
        }
        yp_status ds = r->hdr.version == 1
                           ? yp_events_decode_v1(r->raw, k, c->h.n_records, c->h.first_ts, r->ev)
                           : yp_events_decode(r->raw, k, c->h.n_records, c->h.first_ts, r->ev);
        if (ds != YP_OK) {
            r->st.chunks_bad++;
            return YP_ERR_CORRUPT;
        }
        c->events = r->ev;
        r->st.events += c->h.n_records;
    }
    return YP_OK;
}

yp_status yp_reader_next(yp_reader *r, yp_chunk *c) {
    if (!r || !c) return YP_ERR_ARG;
    if (r->done) return YP_END;
    if (r->off >= r->size) {
        r->done = 1;
        return YP_END;
    }
    if (r->size - r->off < YP_CHUNK_HEADER_SIZE) {
        r->st.truncated = 1;
        r->done = 1;
        return YP_ERR_TRUNCATED;
    }
    uint8_t hb[YP_CHUNK_HEADER_SIZE];
    if (src_read(r, r->off, hb, sizeof hb)) {
        r->done = 1;
        return YP_ERR_IO;
    }
    memset(c, 0, sizeof *c);
    if (yp_chunk_header_unpack(hb, &c->h) != YP_OK) {
        r->st.chunks_bad++;
        resync(r);
        return YP_ERR_CORRUPT;
    }
    c->header_ok = 1;
    uint64_t body = r->off + YP_CHUNK_HEADER_SIZE;
    if (r->size - body < c->h.comp_bytes) {
        /* A header whose payload runs past the end: either the file was cut
         * short (usual), or the header lies. Both mean: stop here. */
        r->st.truncated = 1;
        r->done = 1;
        return YP_ERR_TRUNCATED;
    }
    c->offset = r->off;
    uint64_t next = body + c->h.comp_bytes;
    if (grow((void **)&r->comp, &r->comp_cap, c->h.comp_bytes + 1, 1) ||
        grow((void **)&r->raw, &r->raw_cap, c->h.raw_bytes + 1, 1)) {
        r->done = 1;
        return YP_ERR_NOMEM;
    }
    if (src_read(r, body, r->comp, c->h.comp_bytes)) {
        r->done = 1;
        return YP_ERR_IO;
    }
    r->off = next;
    yp_status st = unpack_payload(r, c);
    if (st != YP_OK) return st;
    /* complete when the last chunk is a footer (a trace continued after a
     * stop has footers in the middle) */
    r->st.has_footer = c->h.kind == YP_CHUNK_FOOTER;
    r->st.chunks_ok++;
    r->st.bytes_ok = next;
    return YP_OK;
}

yp_status yp_chunk_symbols(const yp_chunk *c, yp_symbol_fn fn, void *ctx) {
    if (!c || c->h.kind != YP_CHUNK_SYMBOLS || !fn) return YP_ERR_ARG;
    const uint8_t *p = c->payload, *end = p + c->h.raw_bytes;
    for (uint32_t i = 0; i < c->h.n_records; i++) {
        if (end - p < 15) return YP_ERR_CORRUPT;
        yp_symbol s;
        s.func_id = yp_get_u32(p);
        s.lineno = yp_get_u32(p + 4);
        s.builtin = p[8] <= YP_SYM_KIND_MAX ? p[8] : YP_C_METHOD; /* a newer kind: a C function still */
        uint16_t len[3] = {yp_get_u16(p + 9), yp_get_u16(p + 11), yp_get_u16(p + 13)};
        const char *str[3];
        p += 15;
        for (int j = 0; j < 3; j++) {
            if ((size_t)(end - p) < (size_t)len[j] + 1 || p[len[j]] != 0) return YP_ERR_CORRUPT;
            str[j] = (const char *)p;
            p += len[j] + 1;
        }
        s.name = str[0];
        s.module = str[1];
        s.filename = str[2];
        if (fn(ctx, &s)) return YP_OK;
    }
    return p == end ? YP_OK : YP_ERR_CORRUPT;
}

yp_status yp_chunk_threads(const yp_chunk *c, yp_thread_fn fn, void *ctx) {
    if (!c || c->h.kind != YP_CHUNK_THREADS || !fn) return YP_ERR_ARG;
    const uint8_t *p = c->payload, *end = p + c->h.raw_bytes;
    for (uint32_t i = 0; i < c->h.n_records; i++) {
        if (end - p < 30) return YP_ERR_CORRUPT;
        yp_thread_info t;
        t.thread_id = yp_get_u32(p);
        t.ident = yp_get_u64(p + 4);
        t.native_id = yp_get_u64(p + 12);
        t.cpu_ns = yp_get_u64(p + 20);
        uint16_t ln = yp_get_u16(p + 28);
        p += 30;
        if ((size_t)(end - p) < (size_t)ln + 1 || p[ln] != 0) return YP_ERR_CORRUPT;
        t.name = (const char *)p;
        p += ln + 1;
        if (fn(ctx, &t)) return YP_OK;
    }
    return p == end ? YP_OK : YP_ERR_CORRUPT;
}

yp_status yp_chunk_footer(const yp_chunk *c, yp_footer *f) {
    if (!c || c->h.kind != YP_CHUNK_FOOTER || !f) return YP_ERR_ARG;
    if (c->h.raw_bytes < YP_FOOTER_FIXED_BYTES) return YP_ERR_CORRUPT;
    const uint8_t *p = c->payload;
    uint64_t v[11];
    for (int i = 0; i < 11; i++) v[i] = yp_get_u64(p + 8 * i);
    if (v[10] > YP_FOOTER_INDEX_MAX || c->h.raw_bytes != YP_FOOTER_FIXED_BYTES + v[10] * 8)
        return YP_ERR_CORRUPT;
    f->n_chunks = v[0];
    f->n_events = v[1];
    f->n_dropped = v[2];
    f->end_ticks = v[3];
    f->end_wall_ns = v[4];
    f->hook_ns = v[5];
    f->flusher_ns = v[6];
    f->profiler_bytes = v[7];
    f->interp_ns = v[8];
    f->app_ns = v[9];
    f->n_index = v[10];
    return YP_OK;
}

uint64_t yp_chunk_footer_index(const yp_chunk *c, uint64_t i) {
    if (!c || c->h.kind != YP_CHUNK_FOOTER || c->h.raw_bytes < YP_FOOTER_FIXED_BYTES ||
        i >= (c->h.raw_bytes - YP_FOOTER_FIXED_BYTES) / 8)
        return 0;
    return yp_get_u64(c->payload + YP_FOOTER_FIXED_BYTES + 8 * i);
}

void yp_reader_stats_get(const yp_reader *r, yp_reader_stats *out) {
    if (!out) return;
    if (!r) {
        memset(out, 0, sizeof *out);
        return;
    }
    *out = r->st;
}

void yp_reader_close(yp_reader *r) {
    if (!r) return;
    if (r->fd >= 0) close(r->fd);
    ZSTD_freeDCtx(r->dctx);
    free(r->extra);
    free(r->comp);
    free(r->raw);
    free(r->ev);
    free(r);
}

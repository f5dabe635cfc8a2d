/*
 * yp_writer.c — appends a yprof trace: header, chunks, footer.
 *
 * Used by one thread at a time (the recorder's flusher). Each chunk is built
 * in full in memory (encode, compress, checksum) and then written with one
 * write loop, so a crash leaves at most one partial chunk at the end, which
 * the reader reports as "cut short". The first write error is sticky: later
 * calls return it without writing, and close skips the footer.
 *
 * Buffers grow to the largest chunk seen and are reused; the chunk index kept
 * for the footer is capped at YP_FOOTER_INDEX_MAX entries.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "yp_format_int.h"

struct yp_writer {
    int fd;
    yp_status err;
    int sys_errno; /* errno of the first failed write */
    int level;
    unsigned ts_shift; /* timestamps are stored >> ts_shift */
    ZSTD_CCtx *cctx;
    uint8_t *raw;
    size_t raw_cap;
    uint8_t *comp;
    size_t comp_cap;
    uint64_t offset; /* bytes written so far */
    uint64_t n_chunks, n_events, n_dropped;
    uint32_t misc_seq;
    uint64_t *index;
    size_t n_index, index_cap;
    /* per-thread sequence numbers, grown on demand */
    uint32_t *seq;
    size_t seq_cap;
};

static void set_err(char *errbuf, size_t errlen, const char *fmt, const char *a, const char *b) {
    if (errbuf && errlen) snprintf(errbuf, errlen, fmt, a, b);
}

static int grow(uint8_t **buf, size_t *cap, size_t need) { return yp_grow((void **)buf, cap, need, 1, 4096); }

/* All len bytes at the end of the file, retrying short writes and EINTR;
 * YP_ERR_IO on error (the first errno kept). */
static yp_status write_all(yp_writer *w, const uint8_t *p, size_t len) {
    while (len) {
        ssize_t k = write(w->fd, p, len);
        if (k < 0) {
            if (errno == EINTR) continue;
            if (!w->sys_errno) w->sys_errno = errno;
            return YP_ERR_IO;
        }
        if (k == 0) {
            if (!w->sys_errno) w->sys_errno = EIO;
            return YP_ERR_IO;
        }
        p += k;
        len -= (size_t)k;
        w->offset += (uint64_t)k;
    }
    return YP_OK;
}

void yp_chunk_header_pack(yp_chunk_header *h, uint8_t out[YP_CHUNK_HEADER_SIZE]) {
    yp_put_u32(out + 0, YP_CHUNK_MAGIC);
    out[4] = h->kind;
    out[5] = h->flags;
    yp_put_u16(out + 6, YP_CHUNK_HEADER_SIZE);
    yp_put_u32(out + 8, h->thread_id);
    yp_put_u32(out + 12, h->seq);
    yp_put_u32(out + 16, h->n_records);
    yp_put_u32(out + 20, h->raw_bytes);
    yp_put_u32(out + 24, h->comp_bytes);
    yp_put_u32(out + 28, h->dropped);
    yp_put_u64(out + 32, h->first_ts);
    yp_put_u64(out + 40, h->last_ts);
    yp_put_u32(out + 48, h->payload_crc);
    h->magic = YP_CHUNK_MAGIC;
    h->header_size = YP_CHUNK_HEADER_SIZE;
    h->header_crc = yp_crc32(0, out, 52);
    yp_put_u32(out + 52, h->header_crc);
}

yp_status yp_writer_open(const char *path, const yp_writer_options *opt, yp_writer **out, char *errbuf,
                         size_t errlen) {
    if (!out) return YP_ERR_ARG;
    *out = NULL;
    if (!path || !opt) {
        set_err(errbuf, errlen, "%s%s", "no path given", "");
        return YP_ERR_ARG;
    }
    yp_writer *w = calloc(1, sizeof *w);
    if (!w) return YP_ERR_NOMEM;
    w->fd = -1;
    w->level = opt->zstd_level ? opt->zstd_level : 1;
    w->cctx = ZSTD_createCCtx();
    if (!w->cctx) goto nomem;
    ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, w->level);

    const char *pyv = opt->python_version ? opt->python_version : "";
    const char *cmd = opt->command_line ? opt->command_line : "";
    size_t lp = strnlen(pyv, 255), lc = strnlen(cmd, YP_HEADER_EXTRA_MAX - 512);
    size_t extra = lp + 1 + lc + 1;
    uint8_t *hdr = calloc(1, YP_FILE_HEADER_SIZE + extra);
    if (!hdr) goto nomem;
    memcpy(hdr + YP_FH_MAGIC, YP_FILE_MAGIC, 8);
    yp_put_u32(hdr + YP_FH_VERSION, YP_FORMAT_VERSION);
    yp_put_u32(hdr + YP_FH_SIZE, YP_FILE_HEADER_SIZE);
    yp_put_u32(hdr + YP_FH_CLOCK, opt->clock_kind);
    yp_put_u32(hdr + YP_FH_EXTRA, (uint32_t)extra);
    double ns_per_tick = opt->ns_per_tick > 0 ? opt->ns_per_tick : 1.0;
    /* the power of two of ticks nearest to resolution_ns (a calibrated TSC
     * tick is 0.5000009 ns, say: 8 of them still make a 4 ns unit) */
    while (opt->resolution_ns > 0 && w->ts_shift < 32 && ns_per_tick * 1.5 < opt->resolution_ns) {
        ns_per_tick *= 2;
        w->ts_shift++;
    }
    yp_put_f64(hdr + YP_FH_NS_PER_TICK, ns_per_tick);
    uint64_t wall = opt->start_wall_ns;
    if (!wall) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        wall = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    }
    yp_put_u64(hdr + YP_FH_WALL, wall);
    yp_put_u64(hdr + YP_FH_TICKS, opt->start_ticks >> w->ts_shift);
    yp_put_u32(hdr + YP_FH_PID, opt->pid ? opt->pid : (uint32_t)getpid());
    yp_put_u32(hdr + YP_FH_PPID, opt->ppid ? opt->ppid : (uint32_t)getppid());
    memcpy(hdr + YP_FILE_HEADER_SIZE, pyv, lp);
    memcpy(hdr + YP_FILE_HEADER_SIZE + lp + 1, cmd, lc);
    yp_put_u32(hdr + YP_FH_EXTRA_CRC, yp_crc32(0, hdr + YP_FILE_HEADER_SIZE, extra));
    yp_put_u32(hdr + YP_FH_CRC, yp_crc32(0, hdr, YP_FH_CRC));

    w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        set_err(errbuf, errlen, "cannot open %s: %s", path, strerror(errno));
        free(hdr);
        yp_writer_close(w, NULL);
        return YP_ERR_IO;
    }
    yp_status st = write_all(w, hdr, YP_FILE_HEADER_SIZE + extra);
    free(hdr);
    if (st != YP_OK) {
        set_err(errbuf, errlen, "cannot write %s: %s", path, strerror(errno));
        yp_writer_close(w, NULL);
        return st;
    }
    *out = w;
    return YP_OK;
nomem:
    set_err(errbuf, errlen, "%s%s", "out of memory", "");
    yp_writer_close(w, NULL);
    return YP_ERR_NOMEM;
}

/* Compress w->raw[0..raw_len) into one zstd frame at w->comp after the
 * chunk header; when 0 < split < raw_len, a zstd block ends at split (the
 * two parts get their own entropy tables). Returns the frame's size, 0 on
 * failure. */
static size_t compress(yp_writer *w, size_t raw_len, size_t split) {
    size_t bound = ZSTD_compressBound(raw_len) + 64; /* + one more block header */
    if (grow(&w->comp, &w->comp_cap, YP_CHUNK_HEADER_SIZE + bound)) return 0;
    uint8_t *dst = w->comp + YP_CHUNK_HEADER_SIZE;
    if (split == 0 || split >= raw_len) {
        size_t k = ZSTD_compress2(w->cctx, dst, bound, w->raw, raw_len);
        return ZSTD_isError(k) ? 0 : k;
    }
    ZSTD_CCtx_reset(w->cctx, ZSTD_reset_session_only);
    ZSTD_CCtx_setPledgedSrcSize(w->cctx, raw_len); /* the frame records its size */
    ZSTD_outBuffer out = {dst, bound, 0};
    ZSTD_inBuffer a = {w->raw, split, 0}, b = {w->raw + split, raw_len - split, 0};
    size_t r = ZSTD_compressStream2(w->cctx, &out, &a, ZSTD_e_flush);
    if (ZSTD_isError(r) || r != 0 || a.pos != a.size) goto fail;
    r = ZSTD_compressStream2(w->cctx, &out, &b, ZSTD_e_end);
    if (ZSTD_isError(r) || r != 0 || b.pos != b.size) goto fail;
    return out.pos;
fail:
    ZSTD_CCtx_reset(w->cctx, ZSTD_reset_session_only);
    return 0;
}

/* Compress w->raw[0..raw_len) and write one chunk with header h. */
static yp_status emit(yp_writer *w, yp_chunk_header *h, size_t raw_len, size_t split) {
    if (w->err) return w->err;
    size_t k = compress(w, raw_len, split);
    if (k == 0) return w->err = YP_ERR_NOMEM;
    h->raw_bytes = (uint32_t)raw_len;
    h->comp_bytes = (uint32_t)k;
    h->payload_crc = yp_crc32(0, w->comp + YP_CHUNK_HEADER_SIZE, k);
    yp_chunk_header_pack(h, w->comp);
    uint64_t at = w->offset;
    yp_status st = write_all(w, w->comp, YP_CHUNK_HEADER_SIZE + k);
    if (st) return w->err = st;
    w->n_chunks++;
    if (h->kind == YP_CHUNK_EVENTS && w->n_index < YP_FOOTER_INDEX_MAX) {
        if (w->n_index == w->index_cap) {
            size_t nc = w->index_cap ? w->index_cap * 2 : 256;
            uint64_t *p = realloc(w->index, nc * sizeof *p);
            if (!p) return YP_OK; /* the index is optional: stop growing it */
            w->index = p;
            w->index_cap = nc;
        }
        w->index[w->n_index++] = at;
    }
    return YP_OK;
}

yp_status yp_writer_events(yp_writer *w, uint32_t thread_id, const yp_event *ev, size_t n, uint32_t dropped) {
    if (!w || !ev || n == 0 || n > YP_CHUNK_EVENTS_MAX) return YP_ERR_ARG;
    if (w->err) return w->err;
    if (thread_id >= w->seq_cap) {
        size_t nc = w->seq_cap ? w->seq_cap : 64;
        while (nc <= thread_id) nc *= 2;
        uint32_t *p = realloc(w->seq, nc * sizeof *p);
        if (!p) return w->err = YP_ERR_NOMEM;
        memset(p + w->seq_cap, 0, (nc - w->seq_cap) * sizeof *p);
        w->seq = p;
        w->seq_cap = nc;
    }
    if (grow(&w->raw, &w->raw_cap, yp_events_encode_bound(n))) return w->err = YP_ERR_NOMEM;
    uint64_t first = ev[0].ts, last = first;
    for (size_t i = 1; i < n; i++)
        if (ev[i].ts > last) last = ev[i].ts;
    first >>= w->ts_shift;
    last >>= w->ts_shift;
    size_t ts_len = 0;
    size_t len = yp_events_encode(ev, n, first, w->ts_shift, w->raw, w->raw_cap, &ts_len);
    yp_chunk_header h = {0};
    h.kind = YP_CHUNK_EVENTS;
    h.thread_id = thread_id;
    h.seq = w->seq[thread_id]++;
    h.n_records = (uint32_t)n;
    h.dropped = dropped;
    h.first_ts = first;
    h.last_ts = last;
    yp_status st = emit(w, &h, len, ts_len);
    if (st == YP_OK) {
        w->n_events += n;
        w->n_dropped += dropped;
    }
    return st;
}

/* Appends a string with its NUL; lengths are capped at 65534 bytes. */
static uint8_t *put_str(uint8_t *p, const char *s, uint16_t len) {
    memcpy(p, s, len);
    p[len] = 0;
    return p + len + 1;
}

static uint16_t cap_len(const char *s) {
    size_t n = s ? strlen(s) : 0;
    return (uint16_t)(n > 65534 ? 65534 : n);
}

yp_status yp_writer_symbols(yp_writer *w, const yp_symbol *syms, size_t n) {
    if (!w || (!syms && n)) return YP_ERR_ARG;
    if (w->err) return w->err;
    if (n == 0) return YP_OK;
    size_t need = 0;
    for (size_t i = 0; i < n; i++)
        need += 15 + 3 + cap_len(syms[i].name) + cap_len(syms[i].module) + cap_len(syms[i].filename);
    if (need > YP_CHUNK_RAW_MAX) { /* split a huge batch */
        size_t half = n / 2;
        yp_status st = yp_writer_symbols(w, syms, half);
        return st ? st : yp_writer_symbols(w, syms + half, n - half);
    }
    if (grow(&w->raw, &w->raw_cap, need)) return w->err = YP_ERR_NOMEM;
    uint8_t *p = w->raw;
    for (size_t i = 0; i < n; i++) {
        const yp_symbol *s = &syms[i];
        uint16_t ln = cap_len(s->name), lm = cap_len(s->module), lf = cap_len(s->filename);
        yp_put_u32(p, s->func_id);
        yp_put_u32(p + 4, s->lineno);
        p[8] = s->builtin;
        yp_put_u16(p + 9, ln);
        yp_put_u16(p + 11, lm);
        yp_put_u16(p + 13, lf);
        p += 15;
        p = put_str(p, s->name ? s->name : "", ln);
        p = put_str(p, s->module ? s->module : "", lm);
        p = put_str(p, s->filename ? s->filename : "", lf);
    }
    yp_chunk_header h = {0};
    h.kind = YP_CHUNK_SYMBOLS;
    h.seq = w->misc_seq++;
    h.n_records = (uint32_t)n;
    return emit(w, &h, (size_t)(p - w->raw), 0);
}

yp_status yp_writer_threads(yp_writer *w, const yp_thread_info *th, size_t n) {
    if (!w || (!th && n)) return YP_ERR_ARG;
    if (w->err) return w->err;
    if (n == 0) return YP_OK;
    size_t need = 0;
    for (size_t i = 0; i < n; i++) need += 30 + 1 + cap_len(th[i].name);
    if (grow(&w->raw, &w->raw_cap, need)) return w->err = YP_ERR_NOMEM;
    uint8_t *p = w->raw;
    for (size_t i = 0; i < n; i++) {
        uint16_t ln = cap_len(th[i].name);
        yp_put_u32(p, th[i].thread_id);
        yp_put_u64(p + 4, th[i].ident);
        yp_put_u64(p + 12, th[i].native_id);
        yp_put_u64(p + 20, th[i].cpu_ns);
        yp_put_u16(p + 28, ln);
        p = put_str(p + 30, th[i].name ? th[i].name : "", ln);
    }
    yp_chunk_header h = {0};
    h.kind = YP_CHUNK_THREADS;
    h.seq = w->misc_seq++;
    h.n_records = (uint32_t)n;
    return emit(w, &h, (size_t)(p - w->raw), 0);
}

yp_status yp_writer_marker(yp_writer *w, const char *text, size_t len) {
    if (!w || (!text && len) || len > YP_CHUNK_RAW_MAX) return YP_ERR_ARG;
    if (w->err) return w->err;
    if (grow(&w->raw, &w->raw_cap, len + 1)) return w->err = YP_ERR_NOMEM;
    if (len) memcpy(w->raw, text, len);
    yp_chunk_header h = {0};
    h.kind = YP_CHUNK_MARKER;
    h.seq = w->misc_seq++;
    h.n_records = 1;
    return emit(w, &h, len, 0);
}

void yp_writer_totals(const yp_writer *w, uint64_t *n_chunks, uint64_t *n_events, uint64_t *n_dropped,
                      uint64_t *bytes_written) {
    if (n_chunks) *n_chunks = w ? w->n_chunks : 0;
    if (n_events) *n_events = w ? w->n_events : 0;
    if (n_dropped) *n_dropped = w ? w->n_dropped : 0;
    if (bytes_written) *bytes_written = w ? w->offset : 0;
}

uint64_t yp_writer_bytes(const yp_writer *w) {
    if (!w) return 0;
    return sizeof *w + w->raw_cap + w->comp_cap + w->index_cap * sizeof *w->index +
           w->seq_cap * sizeof *w->seq + ZSTD_sizeof_CCtx(w->cctx);
}

yp_status yp_writer_error(const yp_writer *w) { return w ? w->err : YP_ERR_ARG; }

int yp_writer_errno(const yp_writer *w) { return w ? w->sys_errno : 0; }

yp_status yp_writer_footer(yp_writer *w, const yp_footer *foot) {
    if (!w || !foot) return YP_ERR_ARG;
    if (w->err) return w->err;
    size_t len = YP_FOOTER_FIXED_BYTES + w->n_index * 8;
    if (grow(&w->raw, &w->raw_cap, len)) return w->err = YP_ERR_NOMEM;
    uint8_t *p = w->raw;
    /* drops still pending in a ring are known to the caller only */
    uint64_t dropped = foot->n_dropped > w->n_dropped ? foot->n_dropped : w->n_dropped;
    uint64_t v[11] = {w->n_chunks,       w->n_events,   dropped,          foot->end_ticks >> w->ts_shift,
                      foot->end_wall_ns, foot->hook_ns, foot->flusher_ns, foot->profiler_bytes,
                      foot->interp_ns,   foot->app_ns,  w->n_index};
    for (int i = 0; i < 11; i++) yp_put_u64(p + 8 * i, v[i]);
    for (size_t i = 0; i < w->n_index; i++) yp_put_u64(p + YP_FOOTER_FIXED_BYTES + 8 * i, w->index[i]);
    yp_chunk_header h = {0};
    h.kind = YP_CHUNK_FOOTER;
    h.seq = w->misc_seq++;
    h.n_records = 1;
    return emit(w, &h, len, 0);
}

yp_status yp_writer_close(yp_writer *w, const yp_footer *foot) {
    if (!w) return YP_OK;
    yp_status st = w->err;
    if (foot && w->fd >= 0 && st == YP_OK) st = yp_writer_footer(w, foot);
    if (w->fd >= 0 && close(w->fd) != 0 && st == YP_OK) st = YP_ERR_IO;
    ZSTD_freeCCtx(w->cctx);
    free(w->raw);
    free(w->comp);
    free(w->index);
    free(w->seq);
    free(w);
    return st;
}

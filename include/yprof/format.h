/*
 * yprof/format.h — the yprof trace file format (*.yp): records, writer, reader.
 *
 * Condensed spec (docs/format.md is the full, versioned one). All integers are
 * little-endian.
 *
 *   file    := header chunk* [footer chunk]
 *   header  := 64 fixed bytes (yp_file_header) + extra_bytes of UTF-8 text:
 *              python version, NUL, command line, NUL
 *   chunk   := 56-byte chunk header (yp_chunk_header) + comp_bytes of payload
 *              payload = one independent zstd frame that inflates to
 *              raw_bytes; its CRC-32 is in the header, and the header has a
 *              CRC-32 of its own first 52 bytes.
 *
 * Chunk kinds: EVENTS (delta/varint coded events of one thread), SYMBOLS,
 * THREADS, MARKER (key=value text), FOOTER (totals, written by a clean
 * close). A reader skips unknown kinds by their length. A file without a
 * footer was cut short; every whole chunk before the cut is still readable.
 *
 * In memory an event is the fixed 16-byte yp_event; on disk an EVENTS chunk
 * stores, per event, varint(ts - previous ts) then varint(func_id << 4 | kind),
 * the first delta taken against the chunk header's first_ts; a CORO record
 * stores its 56-bit identity in place of func_id (format version 3), and so
 * does a SWITCH record (version 4).
 *
 * Thread safety: a writer or a reader is used by one thread at a time.
 * Errors: every call returns a yp_status; nothing aborts or exits.
 */
#ifndef YPROF_FORMAT_H
#define YPROF_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define YP_FORMAT_VERSION 4u     /* written */
#define YP_FORMAT_VERSION_MIN 1u /* oldest read */

/* ---- status ------------------------------------------------------------- */

typedef enum yp_status {
    YP_OK = 0,
    YP_ERR_NOMEM = 1,     /* allocation failed */
    YP_ERR_IO = 2,        /* read/write/open failed (errno kept by caller) */
    YP_ERR_CORRUPT = 3,   /* a size, kind or value that cannot be right */
    YP_ERR_VERSION = 4,   /* a yprof trace of a format version we don't read */
    YP_ERR_NOT_TRACE = 5, /* not a yprof trace at all (wrong magic) */
    YP_ERR_TRUNCATED = 6, /* the file ends inside a header or a chunk */
    YP_ERR_CHECKSUM = 7,  /* a chunk's payload failed its CRC (chunk skipped) */
    YP_ERR_ARG = 8,       /* bad argument from the caller */
    YP_END = 9,           /* iteration finished (not an error) */
    YP_STATUS_COUNT
} yp_status;

/* Static English text for a status; never NULL. */
const char *yp_status_str(yp_status st);

/* ---- events ------------------------------------------------------------- */

typedef enum yp_event_kind {
    YP_EV_SWITCH = 0,       /* greenlets and tasks (format version 4): func_id
                               and pad hold a sub-kind and a value
                               (yp_switch_sub, below) */
    YP_EV_CALL = 1,         /* Python function entered (or generator resumed) */
    YP_EV_RETURN = 2,       /* Python function returned (or generator yielded) */
    YP_EV_C_CALL = 3,       /* C function entered */
    YP_EV_C_RETURN = 4,     /* C function returned or raised */
    YP_EV_UNWIND = 5,       /* Python function left by an exception */
    YP_EV_THREAD_START = 6, /* first event of a thread; func_id = 0 */
    YP_EV_THREAD_END = 7,   /* the thread ended; func_id = 0 */
    YP_EV_REC_START = 8,    /* recording interval starts in this thread */
    YP_EV_REC_STOP = 9,     /* recording interval ends in this thread */
    YP_EV_DROPPED = 10,     /* func_id = number of events lost just before */
    YP_EV_OPEN = 11,        /* frame already on the stack when recording
                               started: pushed, never counted as a call */
    YP_EV_CORO = 12,        /* names the coroutine of the SUSPEND or RESUME
                               that follows: func_id and pad hold its
                               identity (yp_event_coro); ts is that event's */
    YP_EV_SUSPEND = 13,     /* a coroutine's frame suspended (await, yield):
                               kept, not closed; func_id its function */
    YP_EV_RESUME = 14,      /* a suspended coroutine's frame resumed */
    YP_EV_TAG = 15,         /* the thread's calls from here on belong to tag
                               func_id (a symbol of kind YP_SYM_TAG_*); 0: none */
    YP_EV_KIND_COUNT
} yp_event_kind;

/* The fixed in-memory record, written by the hook into a thread's ring. */
typedef struct yp_event {
    uint64_t ts;      /* clock ticks (see header ns_per_tick) */
    uint32_t func_id; /* interned function id; 0 = none */
    uint8_t kind;     /* yp_event_kind */
    uint8_t pad[3];
} yp_event;

/* The kind word a ring push stores: the kind in bits 0-7, a CORO record's
 * identity bits 32-55 in bits 8-31 (pad); one 4-byte store. */
static inline void yp_event_put_kindw(yp_event *e, uint32_t kindw) {
    e->kind = (uint8_t)kindw;
    e->pad[0] = (uint8_t)(kindw >> 8);
    e->pad[1] = (uint8_t)(kindw >> 16);
    e->pad[2] = (uint8_t)(kindw >> 24);
}
static inline uint32_t yp_coro_kindw(uint64_t co) { return YP_EV_CORO | (uint32_t)(co >> 32) << 8; }
static inline uint32_t yp_switch_kindw(uint64_t g) { return YP_EV_SWITCH | (uint32_t)(g >> 32) << 8; }

/* A CORO or SWITCH record's identity: 56 bits, func_id then pad. */
#define YP_CORO_ID_MAX ((1ull << 56) - 1)

/* A SWITCH record's identity: a sub-kind in bits 48-55, a value in bits
 * 0-47 (docs/format.md, "Greenlets and tasks"). Identities of greenlets,
 * coroutines and coroutine objects are addresses >> 3, masked to 48 bits. */
#define YP_SW_VAL_MAX ((1ull << 48) - 1)
enum yp_switch_sub {
    YP_SW_GLET_IN = 0x00,      /* the thread enters greenlet VAL */
    YP_SW_GLET_MAIN_IN = 0x01, /* ... its main greenlet VAL (not a task) */
    YP_SW_TASK_NAME = 0x10,    /* the next TASK_NEW's name: VAL with bit 47 set, a
                                  symbol id in bits 0-31; else N of "Task-N" */
    YP_SW_TASK_OBJ = 0x11,     /* the next TASK_NEW's coroutine object VAL */
    YP_SW_TASK_NEW = 0x12,     /* an asyncio task's first step: its root coroutine
                                  (VAL: its CORO identity) starts with the next frame */
    YP_SW_TASK_CREATED = 0x13, /* a task of coroutine object VAL is created */
    YP_SW_GLET_OUT = 0x80,     /* the thread leaves greenlet VAL ... */
    YP_SW_GLET_OUT_DEAD = 0x81 /* ... which has ended */
};
#define YP_SW_NAME_SYMBOL (1ull << 47)
#define YP_SWITCH_FROM (1ull << 55) /* a GLET_OUT sub-kind */
static inline uint64_t yp_switch(unsigned sub, uint64_t val) {
    return (uint64_t)sub << 48 | (val & YP_SW_VAL_MAX);
}
static inline int yp_kind_has_identity(unsigned kind) { return kind == YP_EV_CORO || kind == YP_EV_SWITCH; }
static inline uint64_t yp_event_coro(const yp_event *e) {
    return (uint64_t)e->func_id | (uint64_t)e->pad[0] << 32 | (uint64_t)e->pad[1] << 40 |
           (uint64_t)e->pad[2] << 48;
}
static inline void yp_event_set_coro(yp_event *e, uint64_t co) {
    e->func_id = (uint32_t)co;
    e->pad[0] = (uint8_t)(co >> 32);
    e->pad[1] = (uint8_t)(co >> 40);
    e->pad[2] = (uint8_t)(co >> 48);
}

#define YP_KIND_BITS 4u
#define YP_KIND_MASK 0xFu
#define YP_FUNC_ID_MAX 0x0FFFFFFFu /* func_id << 4 must fit 32 bits */

/* A symbol's builtin byte: 0 Python code; otherwise a C function, and which
 * of cProfile's pstats labels is its (docs/format.md, symbols). */
enum { YP_C_METHOD = 1, YP_C_BOUND = 2, YP_C_STATIC = 3 };
/* A symbol that is a tag's value, not a function (its name is the value's
 * text): a str or an int tag (docs/api.md, "Tags"). */
enum { YP_SYM_TAG_STR = 4, YP_SYM_TAG_INT = 5 };
#define YP_SYM_IS_TAG(builtin) ((builtin) == YP_SYM_TAG_STR || (builtin) == YP_SYM_TAG_INT)
/* A symbol that is a task's name (format version 4), its name the text. */
enum { YP_SYM_TASK_NAME = 6 };
/* Not a function: a tag's value or a task's name. */
#define YP_SYM_NOT_FUNC(builtin) ((builtin) >= YP_SYM_TAG_STR && (builtin) <= YP_SYM_TASK_NAME)
#define YP_SYM_KIND_MAX YP_SYM_TASK_NAME

/* ---- file header ------------------------------------------------------- */

#define YP_FILE_MAGIC "YPROF\x00\r\n"
#define YP_FILE_HEADER_SIZE 64u
#define YP_HEADER_EXTRA_MAX 65536u

typedef enum yp_clock_kind {
    YP_CLOCK_MONOTONIC = 0, /* CLOCK_MONOTONIC, 1 tick = 1 ns */
    YP_CLOCK_TSC = 1,       /* invariant TSC, ns_per_tick calibrated */
    YP_CLOCK_THREAD_CPU = 2 /* per-thread CPU time, 1 tick = 1 ns */
} yp_clock_kind;

/* Decoded header; the strings point into the reader's memory. */
typedef struct yp_header {
    uint32_t version;
    uint32_t clock_kind;    /* yp_clock_kind */
    double ns_per_tick;     /* tick -> ns conversion */
    uint64_t start_wall_ns; /* CLOCK_REALTIME at open, ns since epoch */
    uint64_t start_ticks;   /* clock value at open, in ticks */
    uint32_t pid;
    uint32_t ppid;              /* parent process id; 0 when not known */
    const char *python_version; /* "" when unknown */
    const char *command_line;   /* "" when unknown */
} yp_header;

/* ---- chunks ------------------------------------------------------------- */

typedef enum yp_chunk_kind {
    YP_CHUNK_EVENTS = 1,
    YP_CHUNK_SYMBOLS = 2,
    YP_CHUNK_THREADS = 3,
    YP_CHUNK_MARKER = 4,
    YP_CHUNK_FOOTER = 5,
    YP_CHUNK_KIND_COUNT
} yp_chunk_kind;

#define YP_CHUNK_MAGIC 0x4B435059u /* "YPCK" little-endian */
#define YP_CHUNK_HEADER_SIZE 56u
#define YP_CHUNK_RAW_MAX (64u << 20)   /* a reader never inflates more */
#define YP_CHUNK_COMP_MAX (64u << 20)  /* nor reads a bigger payload */
#define YP_CHUNK_EVENTS_MAX (8u << 20) /* events in one chunk, at most */

typedef struct yp_chunk_header {
    uint32_t magic;       /* YP_CHUNK_MAGIC */
    uint8_t kind;         /* yp_chunk_kind */
    uint8_t flags;        /* 0 */
    uint16_t header_size; /* YP_CHUNK_HEADER_SIZE */
    uint32_t thread_id;   /* recorder's thread id (EVENTS), else 0 */
    uint32_t seq;         /* EVENTS: the thread's chunk number, from 0;
                             else a file-wide count of the other chunks */
    uint32_t n_records;   /* events / symbols / threads in the payload */
    uint32_t raw_bytes;   /* payload size after inflation */
    uint32_t comp_bytes;  /* payload size on disk */
    uint32_t dropped;     /* events dropped just before this chunk */
    uint64_t first_ts;
    uint64_t last_ts;
    uint32_t payload_crc; /* CRC-32 of the comp_bytes on disk */
    uint32_t header_crc;  /* CRC-32 of the 52 bytes before it */
} yp_chunk_header;

/* A function's description; strings are NUL-terminated UTF-8. */
typedef struct yp_symbol {
    uint32_t func_id;
    uint32_t lineno;
    uint8_t builtin;      /* 1 for a C function */
    const char *name;     /* qualified: "Server.handle", "list.append" */
    const char *module;   /* "" when unknown */
    const char *filename; /* "" for builtins */
} yp_symbol;

typedef struct yp_thread_info {
    uint32_t thread_id; /* recorder's id, as in EVENTS chunks */
    uint64_t ident;     /* threading.get_ident() */
    uint64_t native_id; /* OS thread id */
    uint64_t cpu_ns;    /* the thread's CPU time when this record was made */
    const char *name;   /* threading name, "" when unknown */
} yp_thread_info;

/* Totals written by a clean close. */
typedef struct yp_footer {
    uint64_t n_chunks; /* chunks before the footer */
    uint64_t n_events;
    uint64_t n_dropped;
    uint64_t end_ticks;
    uint64_t end_wall_ns;
    uint64_t hook_ns;        /* time inside the hook, all threads */
    uint64_t flusher_ns;     /* flusher thread CPU time */
    uint64_t profiler_bytes; /* peak memory held by the recorder */
    uint64_t interp_ns;      /* estimated interpreter slow-down (see docs) */
    uint64_t app_ns;         /* recorded wall time, summed over intervals */
    uint64_t n_index;        /* EVENTS chunk offsets indexed (capped, may be
                                less than the EVENTS chunks written) */
} yp_footer;

#define YP_FOOTER_FIXED_BYTES 88u
#define YP_FOOTER_INDEX_MAX (1u << 20)

/* ---- CRC ---------------------------------------------------------------- */

/* CRC-32 (IEEE, as zlib), continuing from crc (0 to start). */
uint32_t yp_crc32(uint32_t crc, const void *data, size_t len);

/* ---- event coding -------------------------------------------------------- */

/* Bytes that yp_events_encode may need for n events. */
size_t yp_events_encode_bound(size_t n);

/* Delta/varint-code n events into out (capacity out_cap, at least
 * yp_events_encode_bound(n)), timestamps column first, then ids and kinds.
 * Each ts is stored as ts >> ts_shift; first_ts, the base of the first
 * delta, is already shifted. *ts_bytes (may be NULL) gets the size of the
 * timestamp column. Returns the bytes written, or 0 when out_cap is too
 * small. Timestamps going backwards are clamped to the previous one. */
size_t yp_events_encode(const yp_event *ev, size_t n, uint64_t first_ts, unsigned ts_shift, uint8_t *out,
                        size_t out_cap, size_t *ts_bytes);

/* Decode exactly n events from in[0..len). Every read is bounded by len;
 * YP_ERR_CORRUPT when the bytes don't hold n well-formed events or have
 * bytes left over. */
yp_status yp_events_decode(const uint8_t *in, size_t len, size_t n, uint64_t first_ts, yp_event *out);
/* The same for a format version 1 payload (ts and id varints interleaved). */
yp_status yp_events_decode_v1(const uint8_t *in, size_t len, size_t n, uint64_t first_ts, yp_event *out);

/* ---- writer ------------------------------------------------------------- */

typedef struct yp_writer yp_writer;

typedef struct yp_writer_options {
    uint32_t clock_kind;
    double ns_per_tick; /* 0 means 1.0 */
    uint64_t start_ticks;
    uint64_t start_wall_ns;     /* 0: taken now */
    uint32_t pid;               /* 0: getpid() */
    uint32_t ppid;              /* 0: getppid() */
    const char *python_version; /* may be NULL */
    const char *command_line;   /* may be NULL */
    int zstd_level;             /* 0: default (1, fast) */
    double resolution_ns;       /* 0: every tick kept; else timestamps are
                                   stored in units of 2^k ticks, the power of
                                   two nearest to resolution_ns (the header's
                                   ns_per_tick is then per unit) */
} yp_writer_options;

/* Create (truncate) path and write the header. On error *out is NULL and,
 * when errbuf is given, a one-line reason goes there. */
yp_status yp_writer_open(const char *path, const yp_writer_options *opt, yp_writer **out, char *errbuf,
                         size_t errlen);

/* Append one EVENTS chunk of n (1..YP_CHUNK_EVENTS_MAX) events of a thread.
 * dropped: events lost just before these. Compresses, checksums, writes. */
yp_status yp_writer_events(yp_writer *w, uint32_t thread_id, const yp_event *ev, size_t n, uint32_t dropped);

yp_status yp_writer_symbols(yp_writer *w, const yp_symbol *syms, size_t n);
yp_status yp_writer_threads(yp_writer *w, const yp_thread_info *th, size_t n);
/* text: "key=value" lines. */
yp_status yp_writer_marker(yp_writer *w, const char *text, size_t len);

/* Memory the writer holds: its buffers, zstd context, chunk index (capped
 * at 2^20 offsets) and per-thread sequence numbers. */
uint64_t yp_writer_bytes(const yp_writer *w);
/* Totals so far. Every chunk goes to the OS (write(2)) as it is made: no
 * buffer is left to flush. */
void yp_writer_totals(const yp_writer *w, uint64_t *n_chunks, uint64_t *n_events, uint64_t *n_dropped,
                      uint64_t *bytes_written);

/* The first error met by any write (sticky), or YP_OK. */
yp_status yp_writer_error(const yp_writer *w);
/* errno of the first failed write, 0 if none. */
int yp_writer_errno(const yp_writer *w);

/* Write a footer chunk now and keep the file open: the trace is complete up
 * to here, and appending more chunks later continues it (a reader counts the
 * trace complete when its last chunk is a footer). */
yp_status yp_writer_footer(yp_writer *w, const yp_footer *foot);

/* Write the footer (when foot is not NULL and no write failed) and close.
 * Accepts NULL. Returns the first error met, if any. Frees w. */
yp_status yp_writer_close(yp_writer *w, const yp_footer *foot);

/* ---- reader ------------------------------------------------------------- */

typedef struct yp_reader yp_reader;

/* One chunk as returned by yp_reader_next. Pointers stay valid until the
 * next call. For EVENTS, events[] holds n_records decoded events. */
typedef struct yp_chunk {
    yp_chunk_header h;
    uint64_t offset;        /* file offset of the chunk header */
    const uint8_t *payload; /* raw_bytes inflated bytes */
    const yp_event *events; /* EVENTS only */
    int header_ok;          /* h is a whole header (also when the payload is
                               damaged: YP_ERR_CHECKSUM / YP_ERR_CORRUPT) */
} yp_chunk;

/* Open a trace and read its header. Errors: YP_ERR_IO (with errno text),
 * YP_ERR_NOT_TRACE, YP_ERR_VERSION, YP_ERR_TRUNCATED, YP_ERR_CORRUPT. */
yp_status yp_reader_open(const char *path, yp_reader **out, char *errbuf, size_t errlen);

/* Same, over a memory buffer (not copied; must outlive the reader). */
yp_status yp_reader_open_mem(const void *data, size_t len, yp_reader **out, char *errbuf, size_t errlen);

const yp_header *yp_reader_header(const yp_reader *r);

/* Next chunk. YP_OK: *c filled. YP_END: clean end of file. YP_ERR_TRUNCATED:
 * the file ends inside a chunk (stop). YP_ERR_CHECKSUM / YP_ERR_CORRUPT: a
 * damaged chunk was skipped (counted); calling again goes on with the next
 * whole chunk found. YP_ERR_NOMEM / YP_ERR_IO: stop. Unknown chunk kinds are
 * returned too (callers ignore them). */
yp_status yp_reader_next(yp_reader *r, yp_chunk *c);

/* Decode helpers for the non-event payloads. Each calls fn per record;
 * fn returning nonzero stops early. YP_ERR_CORRUPT on malformed payloads. */
typedef int (*yp_symbol_fn)(void *ctx, const yp_symbol *s);
typedef int (*yp_thread_fn)(void *ctx, const yp_thread_info *t);
yp_status yp_chunk_symbols(const yp_chunk *c, yp_symbol_fn fn, void *ctx);
yp_status yp_chunk_threads(const yp_chunk *c, yp_thread_fn fn, void *ctx);
/* The footer's totals. */
yp_status yp_chunk_footer(const yp_chunk *c, yp_footer *out);
/* File offset of the i-th indexed EVENTS chunk, 0 when i is out of range. */
uint64_t yp_chunk_footer_index(const yp_chunk *c, uint64_t i);

typedef struct yp_reader_stats {
    uint64_t bytes_total; /* file size */
    uint64_t bytes_ok;    /* bytes in header + whole good chunks */
    uint64_t chunks_ok;
    uint64_t chunks_bad;    /* checksum or corrupt, skipped */
    uint64_t bytes_skipped; /* bytes skipped while resynchronising */
    uint64_t events;        /* events in good EVENTS chunks */
    int truncated;          /* ended inside a chunk */
    int has_footer;
} yp_reader_stats;

void yp_reader_stats_get(const yp_reader *r, yp_reader_stats *out);

/* Accepts NULL. */
void yp_reader_close(yp_reader *r);

#ifdef __cplusplus
}
#endif

#endif /* YPROF_FORMAT_H */

/*
 * yp_perfetto.c — the Perfetto export: a trace of protobuf TracePackets
 * (perfetto.protos.Trace), what ui.perfetto.dev and trace_processor read
 * natively, at a fraction of the JSON's size.
 *
 * One process track (its pid and command line) and one thread track per
 * thread (pid, native thread id, name) as TrackDescriptors; then per call a
 * TrackEvent SLICE_BEGIN and SLICE_END on its thread's track, in time
 * order per thread (yp_timeline_int.h). Each thread has a packet sequence
 * of its own, whose defaults (TracePacketDefaults) name its track and its
 * clock, so an event does neither. That clock is the sequence's own
 * incremental one (ClockSnapshot, clock 64, is_incremental): an event's
 * timestamp is the ns since the sequence's previous packet, a byte or two,
 * where an absolute one takes nine. The snapshot ties it to the trace's
 * start as wall-clock ns on the trace clock (BOOTTIME), so traces of
 * several processes line up. Function names are interned per sequence: the
 * first packet that uses a name carries it (InternedData.event_names), the
 * rest its iid.
 *
 * Field numbers: perfetto's protos/perfetto/trace (trace_packet.proto,
 * track_event/track_event.proto, track_descriptor.proto, ...), checked by
 * tests/python/test_perfetto.py against perfetto's own generated classes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yp_out_int.h"
#include "yp_pb_int.h"
#include "yp_timeline_int.h"
#include "yprof/analyze.h"

enum { TRACE_PACKET = 1 };
enum { PK_TIMESTAMP = 8, PK_SEQ_ID = 10, PK_TRACK_EVENT = 11, PK_INTERNED = 12, PK_SEQ_FLAGS = 13 };
enum { PK_TRACK_DESCRIPTOR = 60, PK_DEFAULTS = 59, DEF_TRACK_EVENT = 11, TED_TRACK_UUID = 11 };
enum { PK_CLOCK_SNAPSHOT = 6, PK_CLOCK_ID = 58, DEF_CLOCK_ID = 58, CS_CLOCKS = 1 };
enum { CL_ID = 1, CL_TIMESTAMP = 2, CL_INCREMENTAL = 3, CLOCK_BOOTTIME = 6, CLOCK_SEQ = 64 };
enum { SEQ_CLEARED = 1, SEQ_NEEDS_STATE = 2 };
enum { TE_TYPE = 9, TE_NAME_IID = 10, TE_TRACK_UUID = 11 };
enum { SLICE_BEGIN = 1, SLICE_END = 2 };
enum { TD_UUID = 1, TD_NAME = 2, TD_PROCESS = 3, TD_THREAD = 4, TD_PARENT = 5 };
enum { PD_PID = 1, PD_CMDLINE = 2, PD_NAME = 6 };
enum { THD_PID = 1, THD_TID = 2, THD_NAME = 5 };
enum { ID_EVENT_NAMES = 2, EN_IID = 1, EN_NAME = 2 };

typedef struct perfetto {
    FILE *f; /* NULL: the counting pass */
    uint64_t pid;
    uint8_t *interned;   /* per thread index and function index: its name was sent on the thread's sequence */
    uint64_t *last_ns;   /* per thread index: its sequence's clock (the last packet's time) */
    uint64_t cached_tid; /* thread id + 1 of cached_index (0: none) */
    size_t cached_index;
    yp_pb pk, te, sub, out;
    uint64_t bytes, calls;
} perfetto;

static uint64_t proc_uuid(const perfetto *p) { return p->pid + 1; }
static uint64_t thread_uuid(const perfetto *p, uint32_t tid) {
    return (p->pid + 1) << 24 ^ ((uint64_t)tid + 1);
}

/* pk as the next packet of the trace. */
static void packet(perfetto *p) {
    yp_pb_reset(&p->out);
    yp_pb_msg(&p->out, TRACE_PACKET, &p->pk);
    p->bytes += p->out.len;
    if (p->f) fwrite(p->out.p, 1, p->out.len, p->f);
}

/* The walked thread's index in s->threads (its sequence is index + 1). */
static size_t thread_index(const yp_tl *t, perfetto *p, uint32_t tid) {
    if (p->cached_tid == tid + 1) return p->cached_index; /* a chunk's events are one thread's */
    size_t i = 0;
    while (i < t->s->n_threads && t->s->threads[i].id != tid)
        i++; /* n_threads: not there, a slot of its own */
    p->cached_tid = tid + 1;
    p->cached_index = i;
    return i;
}

static void event(yp_tl *t, uint32_t func_id, uint64_t ts, int type) {
    perfetto *p = t->user;
    size_t ti = thread_index(t, p, t->cur->tid);
    uint64_t ns = t->start_wall_ns + (uint64_t)((double)ts * t->ns_per_tick);
    uint64_t delta = ns > p->last_ns[ti] ? ns - p->last_ns[ti] : 0; /* in order per thread: never below */
    p->last_ns[ti] += delta;
    yp_pb_reset(&p->pk);
    yp_pb_uint(&p->pk, PK_TIMESTAMP, delta);
    yp_pb_uint(&p->pk, PK_SEQ_ID, ti + 1);
    yp_pb_uint(&p->pk, PK_SEQ_FLAGS, SEQ_NEEDS_STATE);
    yp_pb_reset(&p->te);
    yp_pb_uint(&p->te, TE_TYPE, (uint64_t)type);
    uint32_t idx;
    if (type == SLICE_BEGIN && yp_map_get(&t->funcs, func_id, &idx)) {
        yp_pb_uint(&p->te, TE_NAME_IID, (uint64_t)idx + 1);
        uint8_t *sent = &p->interned[ti * (t->s->n_funcs + 1) + idx];
        if (!*sent) { /* its first use on this sequence: the name goes with it */
            *sent = 1;
            yp_pb_reset(&p->sub);
            yp_pb_uint(&p->sub, EN_IID, (uint64_t)idx + 1);
            yp_pb_str(&p->sub, EN_NAME, t->s->funcs[idx].name);
            yp_pb_reset(&p->out);
            yp_pb_msg(&p->out, ID_EVENT_NAMES, &p->sub);
            yp_pb_msg(&p->pk, PK_INTERNED, &p->out);
        }
    }
    yp_pb_msg(&p->pk, PK_TRACK_EVENT, &p->te);
    packet(p);
}

static void on_begin(yp_tl *t, uint32_t func_id, uint64_t ts) { event(t, func_id, ts, SLICE_BEGIN); }

static void on_end(yp_tl *t, uint32_t func_id, uint64_t start, uint64_t end) {
    perfetto *p = t->user;
    (void)start;
    p->calls++;
    event(t, func_id, end, SLICE_END);
}

static const yp_tl_ops k_perfetto = {on_begin, on_end};

/* Thread i's sequence starts: its incremental clock at the trace's start. */
static void clock_snapshot(const yp_tl *t, perfetto *p, size_t i) {
    yp_pb_reset(&p->pk);
    yp_pb_uint(&p->pk, PK_TIMESTAMP, t->start_wall_ns);
    yp_pb_uint(&p->pk, PK_CLOCK_ID, CLOCK_BOOTTIME);
    yp_pb_uint(&p->pk, PK_SEQ_ID, i + 1);
    yp_pb_uint(&p->pk, PK_SEQ_FLAGS, SEQ_CLEARED);
    yp_pb_reset(&p->te);
    yp_pb_reset(&p->sub);
    yp_pb_uint(&p->sub, CL_ID, CLOCK_BOOTTIME);
    yp_pb_uint(&p->sub, CL_TIMESTAMP, t->start_wall_ns);
    yp_pb_msg(&p->te, CS_CLOCKS, &p->sub);
    yp_pb_reset(&p->sub);
    yp_pb_uint(&p->sub, CL_ID, CLOCK_SEQ);
    yp_pb_uint(&p->sub, CL_TIMESTAMP, t->start_wall_ns);
    yp_pb_uint(&p->sub, CL_INCREMENTAL, 1);
    yp_pb_msg(&p->te, CS_CLOCKS, &p->sub);
    yp_pb_msg(&p->pk, PK_CLOCK_SNAPSHOT, &p->te);
    packet(p);
    p->last_ns[i] = t->start_wall_ns;
}

/* The first packets: the process's track, then per thread its sequence's
 * start (its clock, its defaults: that clock and that track) and track. */
static void tracks(const yp_tl *t, perfetto *p) {
    const yp_session *ss = &t->s->session;
    yp_pb_reset(&p->pk);
    yp_pb_uint(&p->pk, PK_SEQ_ID, t->s->n_threads + 2);
    yp_pb_reset(&p->te);
    yp_pb_uint(&p->te, TD_UUID, proc_uuid(p));
    yp_pb_reset(&p->sub);
    yp_pb_uint(&p->sub, PD_PID, p->pid);
    yp_pb_str(&p->sub, PD_CMDLINE, ss->command_line);
    yp_pb_str(&p->sub, PD_NAME, "python (yprof)");
    yp_pb_msg(&p->te, TD_PROCESS, &p->sub);
    yp_pb_msg(&p->pk, PK_TRACK_DESCRIPTOR, &p->te);
    packet(p);
    for (size_t i = 0; i < t->s->n_threads; i++) {
        const yp_thread_stat *th = &t->s->threads[i];
        if (t->o->thread_id != UINT32_MAX && th->id != t->o->thread_id) continue;
        clock_snapshot(t, p, i);
        yp_pb_reset(&p->pk);
        yp_pb_uint(&p->pk, PK_SEQ_ID, i + 1);
        yp_pb_reset(&p->sub);
        yp_pb_uint(&p->sub, TED_TRACK_UUID, thread_uuid(p, th->id));
        yp_pb_reset(&p->te);
        yp_pb_uint(&p->te, DEF_CLOCK_ID, CLOCK_SEQ);
        yp_pb_msg(&p->te, DEF_TRACK_EVENT, &p->sub);
        yp_pb_msg(&p->pk, PK_DEFAULTS, &p->te);
        yp_pb_reset(&p->te);
        yp_pb_uint(&p->te, TD_UUID, thread_uuid(p, th->id));
        yp_pb_uint(&p->te, TD_PARENT, proc_uuid(p));
        yp_pb_reset(&p->sub);
        yp_pb_uint(&p->sub, THD_PID, p->pid);
        yp_pb_uint(&p->sub, THD_TID, th->native_id ? th->native_id : th->id);
        yp_pb_str(&p->sub, THD_NAME, th->name[0] ? th->name : "thread");
        yp_pb_msg(&p->te, TD_THREAD, &p->sub);
        yp_pb_msg(&p->pk, PK_TRACK_DESCRIPTOR, &p->te);
        packet(p);
    }
}

/* One pass: the tracks and the calls (written, or only counted). */
static yp_status run(yp_tl *t, perfetto *p, const char *trace_path, char *errbuf, size_t errlen) {
    memset(p->interned, 0, (t->s->n_threads + 1) * (t->s->n_funcs + 1));
    for (size_t i = 0; i <= t->s->n_threads; i++) p->last_ns[i] = t->start_wall_ns;
    p->bytes = p->calls = 0;
    tracks(t, p);
    yp_status st = yp_tl_pass(t, trace_path, errbuf, errlen);
    if (!st && (p->pk.failed || p->te.failed || p->sub.failed || p->out.failed)) {
        snprintf(errbuf, errlen, "out of memory");
        st = YP_ERR_NOMEM;
    }
    return st;
}

yp_status yp_export_perfetto(const char *trace_path, const yp_stats *s, const char *path,
                             const yp_timeline_opts *o, char *errbuf, size_t errlen) {
    perfetto p = {0};
    p.pid = s->session.pid;
    yp_tl t = {0};
    t.s = s, t.o = o, t.ops = &k_perfetto, t.user = &p;
    yp_status st = yp_tl_init(&t, trace_path, errbuf, errlen);
    p.last_ns = calloc(s->n_threads + 1, sizeof *p.last_ns);
    if (!st && (!(p.interned = calloc((s->n_threads + 1) * (s->n_funcs + 1), 1)) || !p.last_ns))
        st = YP_ERR_NOMEM;
    uint64_t least, most, calls;
    /* a call: two packets of 8 bytes at the least, 40 at the most (its
     * name once per thread aside) */
    yp_tl_bounds(&t, 16, 80, 0, &least, &most, &calls);
    for (size_t i = 0; i < s->n_funcs; i++) most += (s->n_threads + 1) * (16 + strlen(s->funcs[i].name));
    if (!st && t.o->max_bytes && least > t.o->max_bytes) {
        yp_tl_too_big(&t, least, calls, 1, errbuf, errlen);
        st = YP_ERR_ARG;
    } else if (!st && t.o->max_bytes && most > t.o->max_bytes) { /* count first */
        st = run(&t, &p, trace_path, errbuf, errlen);
        if (!st && p.bytes > t.o->max_bytes) {
            yp_tl_too_big(&t, p.bytes, p.calls, 0, errbuf, errlen);
            st = YP_ERR_ARG;
        }
    }
    if (!st && !(p.f = yp_out_open(path, "wb"))) {
        snprintf(errbuf, errlen, "%s", strerror(yp_export_errno()));
        st = YP_ERR_IO;
    }
    if (!st) {
        st = run(&t, &p, trace_path, errbuf, errlen);
        yp_status cs = yp_out_close(p.f);
        if (!st && cs) snprintf(errbuf, errlen, "%s", strerror(yp_export_errno()));
        st = st ? st : cs;
    }
    free(p.interned);
    free(p.last_ns);
    yp_pb_free(&p.pk);
    yp_pb_free(&p.te);
    yp_pb_free(&p.sub);
    yp_pb_free(&p.out);
    yp_tl_free(&t);
    return st;
}

/*
 * yp_pprof.c — the pprof export: a gzipped perftools.profiles.Profile
 * (github.com/google/pprof, proto/profile.proto), what Pyroscope, Parca,
 * Grafana and `go tool pprof` read.
 *
 * One sample per call path of the call tree (the snapshot's nodes): its
 * stack from the leaf up, values [calls, self time in ns] (sample types
 * calls/count and wall|cpu/nanoseconds, the time the default), labels
 * thread (its name) and process (its pid). One location and one function
 * per function. pprof sums samples, so a function's flat time is its self
 * time and its cumulative time its total time (recursion counted once per
 * stack, as pprof does).
 *
 * The string table's indexes are fixed before it is written: the seven
 * constant strings, then each function's name and file, then each thread's
 * name and pid; duplicates are allowed by the format.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yp_out_int.h"
#include "yp_pb_int.h"
#include "yprof/analyze.h"

/* Profile's fields */
enum { P_SAMPLE_TYPE = 1, P_SAMPLE, P_MAPPING, P_LOCATION, P_FUNCTION, P_STRING_TABLE };
enum { P_TIME_NANOS = 9, P_DURATION_NANOS = 10, P_DEFAULT_SAMPLE_TYPE = 14 };

enum { S_EMPTY, S_CALLS, S_COUNT, S_CLOCK, S_NS, S_THREAD, S_PROCESS, S_FIXED };

static uint64_t fn_name(size_t i) { return S_FIXED + 2 * (uint64_t)i; }
static uint64_t fn_file(size_t i) { return S_FIXED + 2 * (uint64_t)i + 1; }
static uint64_t th_name(const yp_stats *s, size_t t) { return S_FIXED + 2 * (uint64_t)s->n_funcs + 2 * t; }
static uint64_t th_pid(const yp_stats *s, size_t t) { return th_name(s, t) + 1; }

/* Write m as field `field` of the profile (the file is the top message). */
static void top(yp_gz *z, yp_pb *out, uint32_t field, const yp_pb *m) {
    yp_pb_reset(out);
    yp_pb_msg(out, field, m);
    yp_gz_write(z, out->p, out->len);
}

static void value_type(yp_gz *z, yp_pb *m, yp_pb *out, uint32_t field, uint64_t type, uint64_t unit) {
    yp_pb_reset(m);
    yp_pb_uint(m, 1, type);
    yp_pb_uint(m, 2, unit);
    top(z, out, field, m);
}

static void label(yp_pb *sample, yp_pb *tmp, uint64_t key, uint64_t str) {
    yp_pb_reset(tmp);
    yp_pb_uint(tmp, 1, key);
    yp_pb_uint(tmp, 2, str);
    yp_pb_msg(sample, 3, tmp);
}

/* Buffers reused for every message. */
typedef struct bufs {
    yp_pb m, sub, ids, out;
} bufs;

/* One sample per call-tree node with calls or time. */
static void samples(yp_gz *z, const yp_stats *s, bufs *b) {
    for (size_t i = 0; i < s->n_nodes; i++) {
        const yp_node *n = &s->nodes[i];
        int64_t ns = (int64_t)llround(n->self_s * 1e9);
        if (!n->ncalls && ns <= 0) continue;
        yp_pb_reset(&b->m);
        yp_pb_reset(&b->ids);
        for (uint32_t k = (uint32_t)i; k != UINT32_MAX; k = s->nodes[k].parent)
            yp_pb_varint(&b->ids, (uint64_t)s->nodes[k].func + 1); /* leaf first */
        yp_pb_bytes(&b->m, 1, b->ids.p, b->ids.len);               /* location_id, packed */
        yp_pb_reset(&b->ids);
        yp_pb_varint(&b->ids, n->ncalls);
        yp_pb_varint(&b->ids, (uint64_t)(ns > 0 ? ns : 0));
        yp_pb_bytes(&b->m, 2, b->ids.p, b->ids.len); /* value, packed */
        label(&b->m, &b->sub, S_THREAD, th_name(s, n->thread));
        label(&b->m, &b->sub, S_PROCESS, th_pid(s, n->thread));
        top(z, &b->out, P_SAMPLE, &b->m);
    }
}

/* A location (id = function index + 1) and a function per function. */
static void functions(yp_gz *z, const yp_stats *s, bufs *b) {
    for (size_t i = 0; i < s->n_funcs; i++) {
        yp_pb_reset(&b->m);
        yp_pb_uint(&b->m, 1, i + 1); /* Location.id */
        yp_pb_reset(&b->sub);
        yp_pb_uint(&b->sub, 1, i + 1); /* Line.function_id */
        yp_pb_uint(&b->sub, 2, s->funcs[i].lineno);
        yp_pb_msg(&b->m, 4, &b->sub); /* Location.line */
        top(z, &b->out, P_LOCATION, &b->m);
        yp_pb_reset(&b->m);
        yp_pb_uint(&b->m, 1, i + 1);      /* Function.id */
        yp_pb_uint(&b->m, 2, fn_name(i)); /* name */
        yp_pb_uint(&b->m, 3, fn_name(i)); /* system_name */
        yp_pb_uint(&b->m, 4, fn_file(i)); /* filename */
        yp_pb_uint(&b->m, 5, s->funcs[i].lineno);
        top(z, &b->out, P_FUNCTION, &b->m);
    }
}

static void string(yp_gz *z, yp_pb *out, const char *str) {
    yp_pb_reset(out);
    yp_pb_str(out, P_STRING_TABLE, str);
    yp_gz_write(z, out->p, out->len);
}

/* The string table, in the order of the indexes above. */
static void strings(yp_gz *z, const yp_stats *s, bufs *b) {
    const char *fixed[S_FIXED] = {"", "calls", "count", s->session.clock, "nanoseconds", "thread", "process"};
    for (int i = 0; i < S_FIXED; i++) string(z, &b->out, fixed[i]);
    for (size_t i = 0; i < s->n_funcs; i++) {
        const yp_func *f = &s->funcs[i];
        char name[1200];
        if (f->module[0] && strcmp(f->module, "builtins") && !f->builtin)
            snprintf(name, sizeof name, "%s.%s", f->module, f->name);
        else
            snprintf(name, sizeof name, "%s", f->name);
        string(z, &b->out, name);
        string(z, &b->out, f->filename);
    }
    for (size_t t = 0; t < s->n_threads; t++) {
        char pid[24];
        snprintf(pid, sizeof pid, "%" PRIu64, yp_stats_proc(s, s->threads[t].process)->pid);
        string(z, &b->out, s->threads[t].name);
        string(z, &b->out, pid);
    }
}

yp_status yp_export_pprof(const yp_stats *s, const char *path) {
    FILE *f = yp_out_open(path, "wb");
    if (!f) return YP_ERR_IO;
    yp_gz z;
    bufs b = {0};
    yp_gz_open(&z, f);
    value_type(&z, &b.m, &b.out, P_SAMPLE_TYPE, S_CALLS, S_COUNT);
    value_type(&z, &b.m, &b.out, P_SAMPLE_TYPE, S_CLOCK, S_NS);
    samples(&z, s, &b);
    functions(&z, s, &b);
    strings(&z, s, &b);
    yp_pb_reset(&b.out);
    yp_pb_sint(&b.out, P_TIME_NANOS, (int64_t)llround(s->session.started_at * 1e9));
    yp_pb_sint(&b.out, P_DURATION_NANOS, (int64_t)llround(s->session.duration_s * 1e9));
    yp_pb_uint(&b.out, P_DEFAULT_SAMPLE_TYPE, S_CLOCK);
    yp_gz_write(&z, b.out.p, b.out.len);
    yp_gz_close(&z);
    int failed = b.m.failed || b.sub.failed || b.ids.failed || b.out.failed;
    yp_pb_free(&b.m);
    yp_pb_free(&b.sub);
    yp_pb_free(&b.ids);
    yp_pb_free(&b.out);
    yp_status st = yp_out_close(f);
    return failed ? YP_ERR_NOMEM : st;
}

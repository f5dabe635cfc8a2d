/*
 * yp_chrome.c — Chrome trace event JSON (Perfetto UI, chrome://tracing).
 *
 * Needs every call, so it re-reads the trace (yp_timeline_int.h, which
 * narrows it to what yp_timeline_opts admits): one complete event ("ph":"X",
 * start and duration) per call, one track (tid) per thread named by a
 * thread_name metadata event. A limit on the size is checked before anything
 * is written: when the statistics' call count could exceed it, a first pass
 * counts the bytes exactly, and an export over the limit is refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yp_out_int.h"
#include "yp_timeline_int.h"
#include "yprof/analyze.h"

/* s as a JSON string; its length when f is NULL. */
static size_t json_str(FILE *f, const char *s) {
    size_t n = 2;
    if (f) fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            n += 2;
            if (f) fprintf(f, "\\%c", c);
        } else if (c < 0x20) {
            n += 6;
            if (f) fprintf(f, "\\u%04x", c);
        } else {
            n++;
            if (f) fputc(c, f);
        }
    }
    if (f) fputc('"', f);
    return n;
}

/* The export's state beside the walk's. */
typedef struct chrome {
    FILE *f; /* NULL: the counting pass */
    uint64_t pid;
    double us_per_tick;
    uint64_t bytes, calls; /* written (or that would be) */
} chrome;

static void on_begin(yp_tl *t, uint32_t func_id, uint64_t ts) { (void)t, (void)func_id, (void)ts; }

/* One complete event per call, written at its end. */
static void on_end(yp_tl *t, uint32_t func_id, uint64_t start, uint64_t end) {
    chrome *c = t->user;
    const char *name = yp_tl_name(t, func_id);
    char head[160];
    int n = snprintf(head, sizeof head,
                     ",\n{\"ph\":\"X\",\"pid\":%llu,\"tid\":%u,\"ts\":%.3f,\"dur\":%.3f,\"name\":",
                     (unsigned long long)c->pid, t->cur->tid, (double)start * c->us_per_tick,
                     (double)(end - start) * c->us_per_tick);
    c->calls++;
    c->bytes += (uint64_t)n + json_str(NULL, name) + 1;
    if (!c->f) return;
    fputs(head, c->f);
    json_str(c->f, name);
    fputc('}', c->f);
}

static const yp_tl_ops k_chrome = {on_begin, on_end};

static void write_metadata(const yp_tl *t, chrome *c) {
    fprintf(c->f,
            "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n{\"ph\":\"M\",\"pid\":%llu,"
            "\"name\":\"process_name\",\"args\":{\"name\":\"python (yprof)\"}}",
            (unsigned long long)c->pid);
    for (size_t i = 0; i < t->s->n_threads; i++) {
        if (t->o->thread_id != UINT32_MAX && t->s->threads[i].id != t->o->thread_id) continue;
        fprintf(c->f, ",\n{\"ph\":\"M\",\"pid\":%llu,\"tid\":%u,\"name\":\"thread_name\",\"args\":{\"name\":",
                (unsigned long long)c->pid, t->s->threads[i].id);
        json_str(c->f, t->s->threads[i].name[0] ? t->s->threads[i].name : "thread");
        fputs("}}", c->f);
    }
}

yp_status yp_export_chrome(const char *trace_path, const yp_stats *s, const char *path,
                           const yp_timeline_opts *o, char *errbuf, size_t errlen) {
    chrome c = {NULL, s->session.pid, 0, 0, 0};
    yp_tl t = {0};
    t.s = s, t.o = o, t.ops = &k_chrome, t.user = &c;
    yp_status st = yp_tl_init(&t, trace_path, errbuf, errlen);
    c.us_per_tick = t.ns_per_tick / 1000.0;
    uint64_t least, most, calls;
    /* a call's event: 50 bytes and its name at the least, 160 and its name
     * escaped at the most */
    yp_tl_bounds(&t, 50, 160, 6, &least, &most, &calls);
    if (!st && t.o->max_bytes && least > t.o->max_bytes) {
        yp_tl_too_big(&t, least, calls, 1, errbuf, errlen);
        st = YP_ERR_ARG;
    } else if (!st && t.o->max_bytes && most > t.o->max_bytes) { /* count first */
        st = yp_tl_pass(&t, trace_path, errbuf, errlen);
        if (!st && c.bytes > t.o->max_bytes) {
            yp_tl_too_big(&t, c.bytes, c.calls, 0, errbuf, errlen);
            st = YP_ERR_ARG;
        }
    }
    if (!st && !(c.f = yp_out_open(path, "w"))) {
        snprintf(errbuf, errlen, "%s", strerror(yp_export_errno()));
        st = YP_ERR_IO;
    }
    if (!st) {
        write_metadata(&t, &c);
        st = yp_tl_pass(&t, trace_path, errbuf, errlen);
        fputs("\n]}\n", c.f);
        yp_status cs = yp_out_close(c.f);
        if (!st && cs) snprintf(errbuf, errlen, "%s", strerror(yp_export_errno()));
        st = st ? st : cs;
    }
    yp_tl_free(&t);
    return st;
}

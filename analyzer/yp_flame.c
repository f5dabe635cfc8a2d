/*
 * yp_flame.c — the SVG flame graph: one self-contained file (no network)
 * that a browser opens as flamegraph.pl's do.
 *
 * Stacks grow up from a root per thread, labelled with its name (and its
 * process's pid when there are several), widths by inclusive time, in the
 * call tree's order. Each frame is a <g class="f"> with its place as
 * fractions of the total (data-x, data-w), its level (data-d) and name
 * (data-n), so the script lays it out for any width and zoom:
 *   - the graph takes the window's width, and follows it;
 *   - a click on a frame zooms to it (its callers stay, cut to the width);
 *     "Reset zoom" goes back;
 *   - "Search" takes a regular expression: matching frames turn purple and
 *     the share of the total they cover is shown; `FILE.svg?s=REGEX` opens
 *     with that search, `FILE.svg?z=REGEX` zoomed to the widest frame that
 *     matches (tests/python/test_flamegraph.py opens both);
 *   - the height is the stacks' own: no empty band above them.
 * Frames narrower than 0.1 of 1200 units are left out, as flamegraph.pl's.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yp_export_int.h"
#include "yp_out_int.h"
#include "yprof/analyze.h"

#define SVG_W 1200.0
#define ROW_H 16
#define TOP 44 /* title, buttons */
#define BOTTOM 8

static void xml_text(FILE *f, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default:
            if ((unsigned char)*s >= 0x20 || *s == '\t') fputc(*s, f);
        }
    }
}

/* The script: layout for a width and a zoom, click, reset, search. */
static const char k_script[] =
    "<script type=\"text/ecmascript\"><![CDATA[\n"
    "var svg, frames, zx = 0, zw = 1, W = 1200, TOP = 44, ROW = 16, BOTTOM = 8;\n"
    "function init() {\n"
    "  svg = document.documentElement;\n"
    "  frames = Array.prototype.slice.call(document.querySelectorAll('g.f'));\n"
    "  svg.addEventListener('click', click);\n"
    "  window.addEventListener('resize', fit);\n"
    "  var q = /[?&]s=([^&#]*)/.exec(window.location.search || '');\n"
    "  if (q) search(decodeURIComponent(q[1]));\n"
    "  var z = /[?&]z=([^&#]*)/.exec(window.location.search || '');\n"
    "  if (z) zoomTo(decodeURIComponent(z[1]));\n"
    "  fit();\n"
    "  svg.setAttribute('data-ready', '1');\n"
    "}\n"
    "function fit() {\n"
    "  W = Math.max(300, window.innerWidth || 1200);\n"
    "  layout();\n"
    "}\n"
    "function layout() {\n"
    "  var shown = [], top = 0;\n"
    "  for (var i = 0; i < frames.length; i++) {\n"
    "    var g = frames[i], x = (g.getAttribute('data-x') - zx) / zw * W;\n"
    "    var r = x + g.getAttribute('data-w') / zw * W;\n"
    "    var a = Math.max(x, 0), b = Math.min(r, W);\n"
    "    if (b - a < 0.5) { g.setAttribute('display', 'none'); continue; }\n"
    "    g.removeAttribute('display');\n"
    "    var rect = g.firstElementChild.nextElementSibling, text = rect.nextElementSibling;\n"
    "    rect.setAttribute('x', a); rect.setAttribute('width', b - a);\n"
    "    text.setAttribute('x', a + 3);\n"
    "    var name = g.getAttribute('data-n'), n = Math.floor((b - a - 6) / 7);\n"
    "    text.textContent = n < 3 ? '' : name.length <= n ? name : name.substring(0, n - 2) + '..';\n"
    "    shown.push(g); top = Math.max(top, +g.getAttribute('data-d'));\n"
    "  }\n"
    "  var H = TOP + (top + 1) * ROW + BOTTOM;\n" /* the stacks' own height: nothing empty above */
    "  for (var k = 0; k < shown.length; k++) {\n"
    "    var y = H - BOTTOM - (+shown[k].getAttribute('data-d') + 1) * ROW;\n"
    "    var re = shown[k].firstElementChild.nextElementSibling;\n"
    "    re.setAttribute('y', y); re.nextElementSibling.setAttribute('y', y + 11);\n"
    "  }\n"
    "  svg.setAttribute('width', W); svg.setAttribute('height', H);\n"
    "  svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);\n"
    "  var bg = document.getElementById('background');\n"
    "  bg.setAttribute('width', W); bg.setAttribute('height', H);\n"
    "  document.getElementById('reset').setAttribute('display', zw < 1 ? 'inline' : 'none');\n"
    "}\n"
    "function click(e) {\n"
    "  var t = e.target;\n"
    "  if (t.id === 'reset') { zx = 0; zw = 1; layout(); return; }\n"
    "  if (t.id === 'search') { var re = window.prompt('Search (a regular expression)', ''); if (re !== "
    "null) "
    "search(re); return; }\n"
    "  while (t && t !== svg && !(t.getAttribute && t.getAttribute('class') === 'f')) t = t.parentNode;\n"
    "  if (!t || t === svg) return;\n"
    "  zx = +t.getAttribute('data-x'); zw = +t.getAttribute('data-w') || 1; layout();\n"
    "}\n"
    "function zoomTo(re) {\n" /* the widest frame whose name matches */
    "  var best = null, rx = new RegExp(re);\n"
    "  for (var i = 0; i < frames.length; i++)\n"
    "    if (rx.test(frames[i].getAttribute('data-n')) && (!best || +frames[i].getAttribute('data-w') > "
    "+best.getAttribute('data-w'))) best = frames[i];\n"
    "  if (best) { zx = +best.getAttribute('data-x'); zw = +best.getAttribute('data-w') || 1; }\n"
    "}\n"
    "function search(re) {\n"
    "  var rx = null, n = 0, spans = [];\n"
    "  try { rx = re ? new RegExp(re) : null; } catch (err) { rx = null; }\n"
    "  for (var i = 0; i < frames.length; i++) {\n"
    "    var g = frames[i], hit = rx !== null && g.getAttribute('data-d') !== '0' && "
    "rx.test(g.getAttribute('data-n'));\n"
    "    g.firstElementChild.nextElementSibling.setAttribute('fill', hit ? 'rgb(230,0,230)' : "
    "g.getAttribute('data-c'));\n"
    "    if (hit) { n++; spans.push([+g.getAttribute('data-x'), +g.getAttribute('data-w')]); }\n"
    "  }\n"
    "  spans.sort(function (p, q) { return p[0] - q[0] || q[1] - p[1]; });\n"
    "  var covered = 0, end = -1;\n"
    "  for (var k = 0; k < spans.length; k++) {\n"
    "    var s0 = spans[k][0], s1 = s0 + spans[k][1];\n"
    "    if (s1 <= end) continue;\n"
    "    covered += s1 - Math.max(s0, end); end = s1;\n"
    "  }\n"
    "  var pct = (100 * covered).toFixed(1);\n"
    "  document.getElementById('matched').textContent = rx ? 'Matched: ' + n + ' frames, ' + pct + '%' : "
    "'';\n"
    "  svg.setAttribute('data-matched', n); svg.setAttribute('data-matched-pct', pct);\n"
    "}\n"
    "]]></script>\n";

/* Each node's x and each thread's start (fractions of the total): threads
 * side by side, a node after its earlier siblings. Sets *total (s); -1 when
 * out of memory. */
static int layout(const yp_stats *s, double *x, double *tx, double *tw, double *total) {
    double *cursor = calloc(s->n_nodes + 1, sizeof *cursor);
    if (!cursor) return -1;
    *total = 0;
    for (size_t i = 0; i < s->n_nodes; i++)
        if (s->nodes[i].parent == UINT32_MAX) {
            *total += s->nodes[i].total_s;
            tw[s->nodes[i].thread] += s->nodes[i].total_s;
        }
    double scale = *total > 0 ? 1 / *total : 0, acc = 0;
    for (size_t t = 0; t < s->n_threads; t++) {
        tw[t] *= scale;
        tx[t] = acc;
        acc += tw[t];
    }
    double *tcur = calloc(s->n_threads + 1, sizeof *tcur);
    if (!tcur) {
        free(cursor);
        return -1;
    }
    memcpy(tcur, tx, s->n_threads * sizeof *tcur);
    for (size_t i = 0; i < s->n_nodes; i++) {
        const yp_node *nd = &s->nodes[i];
        double w = nd->total_s * scale;
        if (nd->parent == UINT32_MAX) {
            x[i] = tcur[nd->thread];
            tcur[nd->thread] += w;
        } else {
            x[i] = x[nd->parent] + cursor[nd->parent];
            cursor[nd->parent] += w;
        }
    }
    free(cursor);
    free(tcur);
    return 0;
}

static int drawn(double w) { return w * SVG_W >= 0.1; }

/* One frame: its group (place, level, name, colour), hover title, box and
 * label (the script fits the label to the box). */
static void frame(FILE *f, double x, double w, int level, int height, const char *name, const char *title,
                  unsigned color) {
    double y = height - BOTTOM - (level + 1) * ROW_H;
    char fill[32];
    snprintf(fill, sizeof fill, "rgb(%u,%u,%u)", color >> 16, (color >> 8) & 0xFF, color & 0xFF);
    fprintf(f, "<g class=\"f\" data-x=\"%.9f\" data-w=\"%.9f\" data-d=\"%d\" data-c=\"%s\" data-n=\"", x, w,
            level, fill);
    xml_text(f, name);
    fputs("\"><title>", f);
    xml_text(f, title);
    fprintf(f, "</title><rect x=\"%.2f\" y=\"%.0f\" width=\"%.2f\" height=\"%d\" fill=\"%s\" rx=\"2\"/>",
            x * SVG_W, y, w * SVG_W, ROW_H - 1, fill);
    fprintf(f, "<text x=\"%.2f\" y=\"%.0f\"></text></g>\n", x * SVG_W + 3, y + 11);
}

/* The thread roots: a frame per thread, its name (and pid). */
static void thread_frames(FILE *f, const yp_stats *s, const double *tx, const double *tw, int height,
                          double total) {
    int procs = yp_stats_n_procs(s) > 1;
    for (size_t t = 0; t < s->n_threads; t++) {
        if (!drawn(tw[t])) continue;
        const yp_thread_stat *th = &s->threads[t];
        char name[300], title[400];
        if (procs)
            snprintf(name, sizeof name, "%s (pid %llu)", th->name[0] ? th->name : "thread",
                     (unsigned long long)yp_stats_proc(s, th->process)->pid);
        else
            snprintf(name, sizeof name, "%s", th->name[0] ? th->name : "thread");
        snprintf(title, sizeof title, "%s: %.6f s (%.2f%%)", name, tw[t] * total, 100.0 * tw[t]);
        frame(f, tx[t], tw[t], 0, height, name, title, 0xB4B4C8);
    }
}

static void nodes(FILE *f, const yp_stats *s, const double *x, int height, double total) {
    for (size_t i = 0; i < s->n_nodes; i++) {
        const yp_node *nd = &s->nodes[i];
        double w = total > 0 ? nd->total_s / total : 0;
        if (!drawn(w)) continue;
        char name[1100], title[1400];
        yp_frame_name(s, nd->func, name, sizeof name);
        snprintf(title, sizeof title, "%s [%s]: %llu calls, %.6f s total, %.6f s self (%.2f%%)", name,
                 s->threads[nd->thread].name, (unsigned long long)nd->ncalls, nd->total_s, nd->self_s,
                 100.0 * w);
        unsigned h = (nd->func * 2654435761u) >> 24;
        frame(f, x[i], w, (int)nd->depth + 1, height, name, title,
              (200u + h % 55) << 16 | (80u + h % 120) << 8 | 60u);
    }
}

/* The deepest level drawn (thread roots are level 0). */
static int top_level(const yp_stats *s, double total) {
    int top = 0;
    for (size_t i = 0; i < s->n_nodes; i++)
        if (total > 0 && drawn(s->nodes[i].total_s / total) && (int)s->nodes[i].depth + 1 > top)
            top = (int)s->nodes[i].depth + 1;
    return top;
}

static void header(FILE *f, const yp_stats *s, int height, double total) {
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
            "onload=\"init()\" font-family=\"monospace\" font-size=\"11\">\n"
            "<style>g.f:hover rect { stroke: #222; stroke-width: 0.7; } g.f { cursor: pointer; } "
            ".btn { cursor: pointer; fill: #24c; }</style>\n%s"
            "<rect id=\"background\" x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#f8f8f0\"/>\n"
            "<text x=\"4\" y=\"16\" font-size=\"14\">yprof flame graph: ",
            (int)SVG_W, height, (int)SVG_W, height, k_script, (int)SVG_W, height);
    const char *base = strrchr(s->session.trace_path, '/');
    xml_text(f, base ? base + 1 : s->session.trace_path[0] ? s->session.trace_path : "live");
    fprintf(f,
            " (width = inclusive time, %.3f s; click to zoom, hover for details)</text>\n"
            "<text id=\"search\" class=\"btn\" x=\"4\" y=\"34\">Search</text>\n"
            "<text id=\"reset\" class=\"btn\" x=\"70\" y=\"34\" display=\"none\">Reset zoom</text>\n"
            "<text id=\"matched\" x=\"170\" y=\"34\"></text>\n",
            total);
}

yp_status yp_export_flamegraph(const yp_stats *s, const char *path) {
    double *x = calloc(s->n_nodes + 1, sizeof *x), total = 0;
    double *tx = calloc(s->n_threads + 1, sizeof *tx), *tw = calloc(s->n_threads + 1, sizeof *tw);
    if (!x || !tx || !tw || layout(s, x, tx, tw, &total)) {
        free(x), free(tx), free(tw);
        return YP_ERR_NOMEM;
    }
    int height = TOP + (top_level(s, total) + 1) * ROW_H + BOTTOM;
    FILE *f = yp_out_open(path, "w");
    if (f) {
        header(f, s, height, total);
        thread_frames(f, s, tx, tw, height, total);
        nodes(f, s, x, height, total);
        fputs("</svg>\n", f);
    }
    free(x), free(tx), free(tw);
    return f ? yp_out_close(f) : YP_ERR_IO;
}

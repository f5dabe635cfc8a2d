/*
 * yp_filter.c — include / exclude filters: which Python code is recorded.
 *
 * A filter is a list of patterns, each a module name (matching the module
 * and its submodules: "myapp" matches "myapp" and "myapp.db", not
 * "myapplication") or a file path glob (fnmatch(3), `*` also matching `/`),
 * each including or excluding. Code is recorded when no pattern includes
 * or one matches, and no exclude pattern matches.
 *
 * The decision is taken once per code object, in the hook's slow path
 * (yp_names.c), and cached on the code object like its id, so the fast path
 * is the same as without a filter. Each distinct filter gets its own code
 * extra slot (the decision depends on the filter): switching between
 * filters, or back to none, never meets a stale decision, and the slot of
 * "no filter" holds the symbol ids every filter shares. CPython has 255
 * slots per interpreter for every tool: a process may use YP_MAX_FILTERS
 * distinct filters.
 */
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "yp_hook_int.h"

#define YP_MAX_FILTERS 16

typedef struct {
    char *key;      /* the filter's patterns, as one string */
    Py_ssize_t idx; /* its code extra slot */
} yp_filter_slot;

static yp_filter_slot g_slots[YP_MAX_FILTERS];
static int g_nslots;

static void patterns_free(yp_filter *f) {
    for (int i = 0; i < f->n; i++) free(f->pat[i].text);
    free(f->pat);
    memset(f, 0, sizeof *f);
}

/* Append the strings of `seq` (a tuple) to f and to the key. */
static int add_patterns(yp_filter *f, PyObject *seq, int exclude, int glob, PyObject *key) {
    if (!PyTuple_Check(seq)) {
        PyErr_SetString(PyExc_TypeError, "filter patterns must be a tuple of str");
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(seq); i++) {
        Py_ssize_t len;
        const char *s = PyUnicode_Check(PyTuple_GET_ITEM(seq, i))
                            ? PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(seq, i), &len)
                            : NULL;
        if (!s) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "filter patterns must be str");
            return -1;
        }
        yp_pattern *p = realloc(f->pat, (size_t)(f->n + 1) * sizeof *p);
        if (!p) return PyErr_NoMemory(), -1;
        f->pat = p;
        p[f->n] = (yp_pattern){
            .text = strdup(s), .len = (size_t)len, .exclude = (uint8_t)exclude, .glob = (uint8_t)glob};
        if (!p[f->n].text) return PyErr_NoMemory(), -1;
        f->n++;
        if (!exclude) f->n_include++;
        char tag[3] = {exclude ? '-' : '+', glob ? 'g' : 'm', 0};
        PyObject *part = PyUnicode_FromFormat("%s%s\x1f", tag, s);
        int rc = part ? PyList_Append(key, part) : -1;
        Py_XDECREF(part);
        if (rc < 0) return -1;
    }
    return 0;
}

/* The code extra slot of the filter `key`: a new one for a filter not seen
 * before. -1 with an exception set when none is left. */
static Py_ssize_t slot_of(const char *key) {
    for (int i = 0; i < g_nslots; i++)
        if (!strcmp(g_slots[i].key, key)) return g_slots[i].idx;
    if (g_nslots == YP_MAX_FILTERS) {
        PyErr_Format(PyExc_ValueError,
                     "at most %d different include/exclude filters can be used in one process",
                     YP_MAX_FILTERS);
        return -1;
    }
    char *k = strdup(key);
    if (!k) return PyErr_NoMemory(), -1;
    Py_ssize_t idx = YP_REQUEST_EXTRA(NULL);
    if (idx < 0) {
        free(k);
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, "no code extra slot left for a filter");
        return -1;
    }
    g_slots[g_nslots++] = (yp_filter_slot){k, idx};
    return idx;
}

int yp_filter_set(PyObject *inc_mods, PyObject *inc_globs, PyObject *exc_mods, PyObject *exc_globs) {
    if (H.running) {
        PyErr_SetString(PyExc_RuntimeError, "the filter cannot change while recording");
        return -1;
    }
    yp_filter f = {0};
    PyObject *parts = PyList_New(0), *sep = NULL, *key = NULL;
    int rc = -1;
    if (!parts || add_patterns(&f, inc_mods, 0, 0, parts) || add_patterns(&f, inc_globs, 0, 1, parts) ||
        add_patterns(&f, exc_mods, 1, 0, parts) || add_patterns(&f, exc_globs, 1, 1, parts))
        goto out;
    Py_ssize_t idx = -1;
    if (f.n) {
        sep = PyUnicode_FromString("");
        key = sep ? PyUnicode_Join(sep, parts) : NULL;
        const char *k = key ? PyUnicode_AsUTF8(key) : NULL;
        if (!k || (idx = slot_of(k)) < 0) goto out;
    }
    patterns_free(&H.filter);
    H.filter = f;
    f = (yp_filter){0};
    H.filter_idx = idx;
    rc = 0;
out:
    patterns_free(&f);
    Py_XDECREF(parts);
    Py_XDECREF(sep);
    Py_XDECREF(key);
    return rc;
}

static int pattern_matches(const yp_pattern *p, const char *module, const char *filename) {
    if (p->glob) return fnmatch(p->text, filename, 0) == 0;
    return !strncmp(module, p->text, p->len) && (module[p->len] == 0 || module[p->len] == '.');
}

/* The file name as the globs see it: absolute (from the current directory)
 * and without "." components: 3.8 names a module found through sys.path's
 * "." "./pkg/mod.py", or "/cwd/./pkg/mod.py". Names like "<string>" are
 * left as they are. */
static const char *normalized(const char *filename, char *buf, size_t n) {
    if (filename[0] == '<' || !filename[0]) return filename;
    size_t len = 0;
    if (filename[0] != '/') {
        if (!getcwd(buf, n)) return filename;
        len = strlen(buf);
    }
    if (snprintf(buf + len, n - len, "/%s", filename) >= (int)(n - len)) return filename;
    char *w = buf;
    for (const char *r = buf; *r;) {
        if (r[0] == '/' && r[1] == '.' && (r[2] == '/' || !r[2])) {
            r += 2; /* "/./" -> "/" */
        } else if (r[0] == '/' && r[1] == '/') {
            r++;
        } else {
            *w++ = *r++;
        }
    }
    *w = 0;
    return buf;
}

int yp_filter_admits(const char *module, const char *filename) {
    const yp_filter *f = &H.filter;
    char buf[4096];
    filename = normalized(filename, buf, sizeof buf);
    int included = f->n_include == 0;
    for (int i = 0; i < f->n; i++) {
        const yp_pattern *p = &f->pat[i];
        if (p->exclude) {
            if (pattern_matches(p, module, filename)) return 0;
        } else if (!included && pattern_matches(p, module, filename)) {
            included = 1;
        }
    }
    return included;
}

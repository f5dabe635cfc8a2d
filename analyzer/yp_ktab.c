/* yp_ktab.c — the keyed record table (yp_ktab_int.h). */
#include <stdlib.h>
#include <string.h>

#include "yp_ktab_int.h"

static size_t home(uint64_t key, size_t mask) { return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & mask; }

static int grow(yp_ktab *t) {
    size_t cap = t->cap ? t->cap * 2 : 64;
    unsigned char *s = calloc(cap, t->elem);
    if (!s) return -1;
    for (size_t i = 0; i < t->cap; i++) {
        const void *rec = yp_ktab_at(t, i);
        uint64_t key = yp_ktab_key(rec);
        if (!key) continue;
        size_t j = home(key, cap - 1);
        while (yp_ktab_key(s + j * t->elem)) j = (j + 1) & (cap - 1);
        memcpy(s + j * t->elem, rec, t->elem);
    }
    free(t->slots);
    t->slots = s;
    t->cap = cap;
    return 0;
}

void *yp_ktab_put(yp_ktab *t, uint64_t key) {
    if ((t->n + 1) * 4 > t->cap * 3 && grow(t)) return NULL;
    size_t mask = t->cap - 1, i = home(key, mask);
    unsigned char *rec;
    while ((rec = yp_ktab_at(t, i)), yp_ktab_key(rec) && yp_ktab_key(rec) != key) i = (i + 1) & mask;
    if (!yp_ktab_key(rec)) {
        t->n++;
        memset(rec, 0, t->elem);
        memcpy(rec, &key, sizeof key);
    }
    return rec;
}

void *yp_ktab_get(const yp_ktab *t, uint64_t key) {
    if (!t->n) return NULL;
    size_t mask = t->cap - 1;
    for (size_t i = home(key, mask);; i = (i + 1) & mask) {
        void *rec = yp_ktab_at(t, i);
        if (yp_ktab_key(rec) == key) return rec;
        if (!yp_ktab_key(rec)) return NULL;
    }
}

int yp_ktab_take(yp_ktab *t, uint64_t key, void *out) {
    if (!t->n) return 0;
    size_t mask = t->cap - 1, i = home(key, mask);
    while (yp_ktab_key(yp_ktab_at(t, i)) != key) {
        if (!yp_ktab_key(yp_ktab_at(t, i))) return 0;
        i = (i + 1) & mask;
    }
    memcpy(out, yp_ktab_at(t, i), t->elem);
    /* backward shift: a record after the hole moves into it unless its home
     * lies cyclically in (hole, its slot] */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; yp_ktab_key(yp_ktab_at(t, j)); j = (j + 1) & mask) {
        size_t h = home(yp_ktab_key(yp_ktab_at(t, j)), mask);
        if (((j - h) & mask) >= ((j - hole) & mask)) {
            memcpy(yp_ktab_at(t, hole), yp_ktab_at(t, j), t->elem);
            hole = j;
        }
    }
    memset(yp_ktab_at(t, hole), 0, t->elem);
    t->n--;
    return 1;
}

void yp_ktab_free(yp_ktab *t) {
    free(t->slots);
    t->slots = NULL;
    t->cap = t->n = 0;
}

size_t yp_ktab_bytes(const yp_ktab *t) { return t->cap * t->elem; }

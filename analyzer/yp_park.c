/*
 * yp_park.c — the suspended coroutines' frames of a thread (yp_agg.c): an
 * open-addressing table with linear probing, keyed by the coroutine's
 * identity, with deletion by backward shift (no tombstones), so memory is
 * O(coroutines suspended now).
 */
#include <stdlib.h>
#include <string.h>

#include "yp_agg_int.h"

static size_t home(uint64_t key, size_t mask) { return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & mask; }

static int grow(yp_park *p) {
    size_t cap = p->cap ? p->cap * 2 : 64;
    yp_parked *s = calloc(cap, sizeof *s);
    if (!s) return -1;
    for (size_t i = 0; i < p->cap; i++) {
        if (!p->slots[i].key) continue;
        size_t j = home(p->slots[i].key, cap - 1);
        while (s[j].key) j = (j + 1) & (cap - 1);
        s[j] = p->slots[i];
    }
    free(p->slots);
    p->slots = s;
    p->cap = cap;
    return 0;
}

int yp_park_put(yp_park *p, uint64_t co, const yp_frame *f, uint64_t ts) {
    if ((p->n + 1) * 4 > p->cap * 3 && grow(p)) return -1;
    uint64_t key = co + 1;
    size_t mask = p->cap - 1, i = home(key, mask);
    while (p->slots[i].key && p->slots[i].key != key) i = (i + 1) & mask;
    if (!p->slots[i].key) p->n++;
    p->slots[i] = (yp_parked){key, ts, *f};
    return 0;
}

int yp_park_take(yp_park *p, uint64_t co, yp_parked *out) {
    if (!p->n) return 0;
    uint64_t key = co + 1;
    size_t mask = p->cap - 1, i = home(key, mask);
    while (p->slots[i].key != key) {
        if (!p->slots[i].key) return 0;
        i = (i + 1) & mask;
    }
    *out = p->slots[i];
    /* backward shift: an entry after the hole moves into it unless its home
     * lies cyclically in (hole, its slot] */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; p->slots[j].key; j = (j + 1) & mask) {
        size_t h = home(p->slots[j].key, mask);
        if (((j - h) & mask) >= ((j - hole) & mask)) {
            p->slots[hole] = p->slots[j];
            hole = j;
        }
    }
    memset(&p->slots[hole], 0, sizeof p->slots[hole]);
    p->n--;
    return 1;
}

void yp_park_free(yp_park *p) {
    free(p->slots);
    memset(p, 0, sizeof *p);
}

size_t yp_park_bytes(const yp_park *p) { return p->cap * sizeof *p->slots; }

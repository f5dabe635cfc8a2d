/* yp_containers.c — growth of the containers in yprof/containers.h. */
#include "yprof/containers.h"

#include <stdlib.h>

int yp_grow_slow(void **p, size_t *cap, size_t need, size_t elem, size_t first) {
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap : (first ? first : 16);
    while (n < need) {
        if (n > SIZE_MAX / 2) return -1;
        n *= 2;
    }
    if (elem && n > SIZE_MAX / elem) return -1;
    void *q = realloc(*p, n * elem);
    if (!q) return -1;
    *p = q;
    *cap = n;
    return 0;
}

/* Move every key into a table of cap slots; -1 when out of memory (m unchanged). */
static size_t home(const yp_map *m, uint64_t key, size_t mask) {
    return m->ptr_keys ? yp_map_home_ptr(key, mask) : yp_map_home(key, mask);
}

static int rehash(yp_map *m, size_t cap) {
    yp_mslot *slots = malloc(cap * sizeof *slots);
    if (!slots) return -1;
    for (size_t i = 0; i < cap; i++) slots[i] = (yp_mslot){YP_MAP_EMPTY, 0, 0};
    size_t mask = cap - 1;
    for (size_t j = 0; j < m->cap; j++) {
        if (m->slots[j].key == YP_MAP_EMPTY) continue;
        size_t i = home(m, m->slots[j].key, mask);
        while (slots[i].key != YP_MAP_EMPTY) i = (i + 1) & mask;
        slots[i] = m->slots[j];
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

int yp_map_put(yp_map *m, uint64_t key, uint32_t val) {
    if (key == YP_MAP_EMPTY) return -1;
    /* pointer keys (a few hundred C functions, clustered in memory) start
     * sparser: with 16 slots they probed six slots on average */
    size_t first = m->ptr_keys ? 256 : 16;
    if ((m->n + 1) * 2 > m->cap && rehash(m, m->cap ? m->cap * 2 : first)) return -1;
    size_t mask = m->cap - 1;
    size_t i = home(m, key, mask);
    while (m->slots[i].key != YP_MAP_EMPTY && m->slots[i].key != key) i = (i + 1) & mask;
    if (m->slots[i].key == YP_MAP_EMPTY) m->n++;
    m->slots[i].key = key;
    m->slots[i].val = val;
    return 0;
}

int yp_map_put_ptr(yp_map *m, const void *p, uint32_t val) {
    if (!m->n) m->ptr_keys = 1;
    if (!m->ptr_keys) return -1;
    return yp_map_put(m, (uint64_t)(uintptr_t)p, val);
}

void yp_map_free(yp_map *m) {
    free(m->slots);
    m->slots = NULL;
    m->cap = m->n = 0;
    m->ptr_keys = 0;
}

size_t yp_map_bytes(const yp_map *m) { return m->cap * sizeof(yp_mslot); }

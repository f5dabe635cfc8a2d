/* yp_map.c — growth of the hash map declared in yp_map_int.h. */
#include "yp_map_int.h"

#include <stdlib.h>

static int rehash(yp_map *m, size_t cap) {
    uint64_t *keys = malloc(cap * sizeof *keys);
    uint32_t *vals = malloc(cap * sizeof *vals);
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return -1;
    }
    for (size_t i = 0; i < cap; i++) keys[i] = YP_MAP_EMPTY;
    size_t mask = cap - 1;
    for (size_t j = 0; j < m->cap; j++) {
        if (m->keys[j] == YP_MAP_EMPTY) continue;
        size_t i = (size_t)((m->keys[j] * 0x9E3779B97F4A7C15ull) >> 32) & mask;
        while (keys[i] != YP_MAP_EMPTY) i = (i + 1) & mask;
        keys[i] = m->keys[j];
        vals[i] = m->vals[j];
    }
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
    return 0;
}

int yp_map_put(yp_map *m, uint64_t key, uint32_t val) {
    if (key == YP_MAP_EMPTY) return -1;
    if ((m->n + 1) * 2 > m->cap && rehash(m, m->cap ? m->cap * 2 : 16)) return -1;
    size_t mask = m->cap - 1;
    size_t i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & mask;
    while (m->keys[i] != YP_MAP_EMPTY && m->keys[i] != key) i = (i + 1) & mask;
    if (m->keys[i] == YP_MAP_EMPTY) m->n++;
    m->keys[i] = key;
    m->vals[i] = val;
    return 0;
}

void yp_map_free(yp_map *m) {
    free(m->keys);
    free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
    m->cap = m->n = 0;
}

size_t yp_map_bytes(const yp_map *m) { return m->cap * (sizeof(uint64_t) + sizeof(uint32_t)); }

/*
 * yp_map_int.h — open-addressing hash map from uint64 keys to uint32 values,
 * linear probing, power-of-two capacity, load factor <= 1/2. UINT64_MAX is
 * the one key it cannot hold (the empty mark). Not thread-safe.
 */
#ifndef YP_MAP_INT_H
#define YP_MAP_INT_H

#include <stddef.h>
#include <stdint.h>

typedef struct yp_map {
    uint64_t *keys;
    uint32_t *vals;
    size_t cap; /* 0 or a power of two */
    size_t n;
} yp_map;

#define YP_MAP_EMPTY UINT64_MAX

/* 1 and *val set when found, else 0. */
static inline int yp_map_get(const yp_map *m, uint64_t key, uint32_t *val) {
    if (!m->cap) return 0;
    size_t mask = m->cap - 1;
    size_t i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & mask;
    for (;;) {
        uint64_t k = m->keys[i];
        if (k == key) {
            *val = m->vals[i];
            return 1;
        }
        if (k == YP_MAP_EMPTY) return 0;
        i = (i + 1) & mask;
    }
}

/* Insert or replace; 0 on success, -1 when out of memory (map unchanged). */
int yp_map_put(yp_map *m, uint64_t key, uint32_t val);
void yp_map_free(yp_map *m);
size_t yp_map_bytes(const yp_map *m);

#endif

/*
 * yp_map_int.h — open-addressing hash map from uint64 keys to uint32 values,
 * linear probing, power-of-two capacity, load factor <= 1/2. UINT64_MAX is
 * the one key it cannot hold (the empty mark). Not thread-safe.
 */
#ifndef YP_MAP_INT_H
#define YP_MAP_INT_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

/* Key and value side by side: a lookup touches one cache line, not two
 * (with 20,000 functions most lookups miss the cache: the hashed slot is
 * random by design). */
typedef struct yp_mslot {
    uint64_t key;
    uint32_t val, pad;
} yp_mslot;
static_assert(sizeof(yp_mslot) == 16, "four slots per cache line");

typedef struct yp_map {
    yp_mslot *slots;
    size_t cap; /* 0 or a power of two */
    size_t n;
} yp_map;

#define YP_MAP_EMPTY UINT64_MAX

/* Keys that differ only in their two low bits (ids next to each other: a
 * loop calling functions first seen one after another) go to the same
 * 4-slot group, one cache line; the rest of the key picks the group. */
static inline size_t yp_map_home(uint64_t key, size_t mask) {
    return (size_t)(((((key >> 2) * 0x9E3779B97F4A7C15ull) >> 32) << 2) | (key & 3)) & mask;
}

/* 1 and *val set when found, else 0. */
static inline int yp_map_get(const yp_map *m, uint64_t key, uint32_t *val) {
    if (!m->cap) return 0;
    size_t mask = m->cap - 1;
    size_t i = yp_map_home(key, mask);
    for (;;) {
        uint64_t k = m->slots[i].key;
        if (k == key) {
            *val = m->slots[i].val;
            return 1;
        }
        if (k == YP_MAP_EMPTY) return 0;
        i = (i + 1) & mask;
    }
}

/* Start loading key's home slot into the cache, for a lookup soon. An asm
 * statement on x86-64: GCC 12 deletes a __builtin_prefetch whose function has
 * no other effect. */
static inline void yp_map_prefetch(const yp_map *m, uint64_t key) {
    if (!m->cap) return;
    const yp_mslot *p = &m->slots[yp_map_home(key, m->cap - 1)];
#if defined(__x86_64__)
    __asm__ volatile("prefetcht0 %0" : : "m"(*p));
#else
    __builtin_prefetch(p);
#endif
}

/* Insert or replace; 0 on success, -1 when out of memory (map unchanged). */
int yp_map_put(yp_map *m, uint64_t key, uint32_t val);
void yp_map_free(yp_map *m);
size_t yp_map_bytes(const yp_map *m);

#endif

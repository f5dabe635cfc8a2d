/*
 * yprof/containers.h — the two containers every part of yprof shares: a
 * growable array (yp_grow) and an open-addressing hash map from uint64 keys
 * to uint32 values (yp_map). One copy of each, in the format library, which
 * everything else may include. Not thread-safe: each owner locks (or owns)
 * its own.
 */
#ifndef YPROF_CONTAINERS_H
#define YPROF_CONTAINERS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Make *p hold at least `need` elements of `elem` bytes: capacity doubles
 * from `first` (or from *cap). 0 on success; -1 when out of memory or the
 * size overflows (*p and *cap unchanged). The usual case, room already
 * there, is one compare. */
int yp_grow_slow(void **p, size_t *cap, size_t need, size_t elem, size_t first);
static inline int yp_grow(void **p, size_t *cap, size_t need, size_t elem, size_t first) {
    return need <= *cap ? 0 : yp_grow_slow(p, cap, need, elem, first);
}

/* ---- the hash map: linear probing, power-of-two capacity, load <= 1/2 ---- */

/* Key and value side by side: a lookup touches one cache line, not two
 * (with 20,000 functions most lookups miss the cache: the hashed slot is
 * random by design). */
typedef struct yp_mslot {
    uint64_t key;
    uint32_t val, pad;
} yp_mslot;
#ifndef __cplusplus
_Static_assert(sizeof(yp_mslot) == 16, "four slots per cache line");
#else
static_assert(sizeof(yp_mslot) == 16, "four slots per cache line");
#endif

typedef struct yp_map {
    yp_mslot *slots;
    size_t cap;   /* 0 or a power of two */
    size_t n;     /* keys held */
    int ptr_keys; /* keys are pointers (yp_map_put_ptr): their own home slots */
} yp_map;

/* The one key a map cannot hold (its empty mark). */
#define YP_MAP_EMPTY UINT64_MAX

/* Keys that differ only in their two low bits (ids next to each other: a
 * loop calling functions first seen one after another) go to the same
 * 4-slot group, one cache line; the rest of the key picks the group. */
static inline size_t yp_map_home(uint64_t key, size_t mask) {
    return (size_t)(((((key >> 2) * 0x9E3779B97F4A7C15ull) >> 32) << 2) | (key & 3)) & mask;
}

/* The probe both lookups share: from home slot i on. */
static inline int yp_map_probe(const yp_map *m, uint64_t key, size_t i, uint32_t *val) {
    size_t mask = m->cap - 1;
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

/* 1 and *val set when found, else 0. */
static inline int yp_map_get(const yp_map *m, uint64_t key, uint32_t *val) {
    return m->cap ? yp_map_probe(m, key, yp_map_home(key, m->cap - 1), val) : 0;
}

/* Pointer keys (the hook's table of C functions) have aligned, sparse
 * values: their home is the plain multiplicative hash, three instructions,
 * every slot a home (yp_map_home would use one in four for them). */
static inline size_t yp_map_home_ptr(uint64_t key, size_t mask) {
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & mask;
}

/* 1 and *val set when pointer p is in a map filled by yp_map_put_ptr. */
static inline int yp_map_get_ptr(const yp_map *m, const void *p, uint32_t *val) {
    uint64_t key = (uint64_t)(uintptr_t)p;
    return m->cap ? yp_map_probe(m, key, yp_map_home_ptr(key, m->cap - 1), val) : 0;
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

/* Insert or replace; 0 on success, -1 when out of memory or key is
 * YP_MAP_EMPTY (map unchanged). A map takes integer keys (yp_map_put,
 * yp_map_get) or pointer keys (yp_map_put_ptr, yp_map_get_ptr), not both. */
int yp_map_put(yp_map *m, uint64_t key, uint32_t val);
int yp_map_put_ptr(yp_map *m, const void *p, uint32_t val);
void yp_map_free(yp_map *m);
/* Bytes the map holds. */
size_t yp_map_bytes(const yp_map *m);

#ifdef __cplusplus
}
#endif

#endif

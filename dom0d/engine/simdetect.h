/*
 * simdetect.h - the paper's HashSimilarityDetector(k, s) with c candidates
 * per bucket.
 *
 * A page is fingerprinted by hashing k*s 64-byte blocks at fixed
 * pseudo-random offsets (the same offsets for every page, chosen from a
 * seed), grouped into k keys of s block hashes each. Each key indexes a
 * hash table whose buckets hold up to c candidate reference pages (oldest
 * replaced first). A lookup collects the candidates of all k keys and
 * returns the one hit by the most keys. Paper default: k=2, s=1, c=1.
 */
#ifndef DE_SIMDETECT_H
#define DE_SIMDETECT_H

#include <stddef.h>
#include <stdint.h>

#define SIMDETECT_MAX_K 8
#define SIMDETECT_MAX_S 8
#define SIMDETECT_MAX_C 8
#define SIMDETECT_BLOCK 64

struct simdetect_params {
    unsigned k;         /* keys per page (1..SIMDETECT_MAX_K) */
    unsigned s;         /* blocks per key (1..SIMDETECT_MAX_S) */
    unsigned c;         /* candidates per bucket (1..SIMDETECT_MAX_C) */
    uint64_t seed;      /* picks the block offsets; fixed for a run */
};

/* The paper's (2,1) with c=1 and a fixed seed. */
void simdetect_default_params(struct simdetect_params *p);

struct simdetect_keys {
    uint64_t key[SIMDETECT_MAX_K];
};

struct simdetect;

/* Creates a detector sized for about `expected` reference pages.
 * Returns NULL with errno set (EINVAL for parameters out of range). */
struct simdetect *simdetect_new(const struct simdetect_params *p,
                                size_t expected);
void simdetect_free(struct simdetect *sd);

/* Computes the k keys of a page. Pure: no state is touched. */
void simdetect_keys(const struct simdetect *sd, const void *page,
                    struct simdetect_keys *out);

/* Finds the best reference candidate for keys `k`, ignoring `self` (pass
 * UINT64_MAX for none). Returns the number of keys that hit it (>= 1) and
 * stores its id in *ref, or 0 when nothing matches. */
unsigned simdetect_find(const struct simdetect *sd,
                        const struct simdetect_keys *k, uint64_t self,
                        uint64_t *ref);

/* Offers page `id` with keys `k` as a reference candidate. Returns 0 or
 * -ENOMEM. */
int simdetect_insert(struct simdetect *sd, const struct simdetect_keys *k,
                     uint64_t id);

/* Withdraws `id` (e.g. its page changed). Returns 0, or -ENOENT when it
 * was not (or no longer) a candidate. */
int simdetect_remove(struct simdetect *sd, const struct simdetect_keys *k,
                     uint64_t id);

/* Bytes of memory the detector's tables use. */
size_t simdetect_bytes(const struct simdetect *sd);

/* Byte offset of block i (0 <= i < k*s) in a page; for tests and tools. */
unsigned simdetect_block_offset(const struct simdetect *sd, unsigned i);

#endif

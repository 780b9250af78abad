/*
 * simdetect.c - HashSimilarityDetector(k, s) with c candidates per bucket.
 *
 * One open-addressing table maps a key to a bucket of up to c page ids.
 * The key of group g mixes g in, so a block only matches the block at the
 * same offset of another page: that is what makes the pages patchable.
 *
 * Groups made only of uniform blocks (one byte repeated, above all zeros)
 * give no key. Such blocks are on a large share of all pages; as keys they
 * would pile every half-empty page into one bucket and offer references
 * that share nothing but emptiness.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "page.h"
#include "simdetect.h"

#define KEY_NONE  0                 /* group had only uniform blocks */
#define KEY_EMPTY 0
#define KEY_DEAD  1
#define NO_ID     UINT64_MAX

struct sd_bucket {
    uint64_t key;       /* KEY_EMPTY, KEY_DEAD, or a key (>= 2) */
    uint32_t n;         /* ids in use, newest at ids[0] */
};

struct simdetect {
    struct simdetect_params p;
    uint16_t off[SIMDETECT_MAX_K * SIMDETECT_MAX_S];
    struct sd_bucket *b;
    uint64_t *ids;      /* c per bucket */
    size_t mask;
    size_t live;
    size_t dead;
};

void simdetect_default_params(struct simdetect_params *p)
{
    p->k = 2;
    p->s = 1;
    p->c = 1;
    p->seed = 0x5eed0fde0ull;
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);

    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Distinct 64-byte-aligned blocks, so groups never overlap. */
static void pick_offsets(struct simdetect *sd)
{
    unsigned nblocks = DE_PAGE_SIZE / SIMDETECT_BLOCK, n = sd->p.k * sd->p.s;
    uint8_t used[DE_PAGE_SIZE / SIMDETECT_BLOCK] = { 0 };
    uint64_t x = sd->p.seed;

    for (unsigned i = 0; i < n; i++) {
        unsigned blk;

        do
            blk = (unsigned)(splitmix64(&x) % nblocks);
        while (used[blk]);
        used[blk] = 1;
        sd->off[i] = (uint16_t)(blk * SIMDETECT_BLOCK);
    }
}

static size_t pow2_at_least(size_t n)
{
    size_t c = 64;

    while (c < n)
        c <<= 1;
    return c;
}

static int table_alloc(struct simdetect *sd, size_t cap)
{
    sd->b = calloc(cap, sizeof *sd->b);
    sd->ids = malloc(cap * sd->p.c * sizeof *sd->ids);
    if (!sd->b || !sd->ids) {
        free(sd->b);
        free(sd->ids);
        return -ENOMEM;
    }
    sd->mask = cap - 1;
    sd->live = sd->dead = 0;
    return 0;
}

struct simdetect *simdetect_new(const struct simdetect_params *p,
                                size_t expected)
{
    struct simdetect *sd;

    if (!p || p->k < 1 || p->k > SIMDETECT_MAX_K || p->s < 1 ||
        p->s > SIMDETECT_MAX_S || p->c < 1 || p->c > SIMDETECT_MAX_C) {
        errno = EINVAL;
        return NULL;
    }
    sd = calloc(1, sizeof *sd);
    if (!sd)
        return NULL;
    sd->p = *p;
    pick_offsets(sd);
    /* at most half full when `expected` pages are in */
    if (table_alloc(sd, pow2_at_least(2 * expected * p->k)) != 0) {
        free(sd);
        errno = ENOMEM;
        return NULL;
    }
    return sd;
}

void simdetect_free(struct simdetect *sd)
{
    if (!sd)
        return;
    free(sd->b);
    free(sd->ids);
    free(sd);
}

static int block_is_uniform(const uint8_t *blk)
{
    uint64_t w0, w;

    memcpy(&w0, blk, 8);
    if ((w0 & 0xff) * 0x0101010101010101ull != w0)
        return 0;
    for (unsigned i = 8; i < SIMDETECT_BLOCK; i += 8) {
        memcpy(&w, blk + i, 8);
        if (w != w0)
            return 0;
    }
    return 1;
}

void simdetect_keys(const struct simdetect *sd, const void *page,
                    struct simdetect_keys *out)
{
    const uint8_t *pg = page;

    for (unsigned g = 0; g < sd->p.k; g++) {
        uint64_t key = 0x9E3779B97F4A7C15ull * (g + 1);
        unsigned useful = 0;

        for (unsigned j = 0; j < sd->p.s; j++) {
            const uint8_t *blk = pg + sd->off[g * sd->p.s + j];

            useful += !block_is_uniform(blk);
            key = XXH3_64bits_withSeed(blk, SIMDETECT_BLOCK, key);
        }
        /* Keys 0 and 1 are the table's sentinels. */
        out->key[g] = useful ? (key < 2 ? key + 2 : key) : KEY_NONE;
    }
}

/* Slot holding `key`, or the free slot where it would go (*found = 0). */
static size_t probe(const struct simdetect *sd, uint64_t key, int *found)
{
    size_t i = key & sd->mask, first_dead = SIZE_MAX;

    for (;; i = (i + 1) & sd->mask) {
        uint64_t k = sd->b[i].key;

        if (k == key) {
            *found = 1;
            return i;
        }
        if (k == KEY_EMPTY) {
            *found = 0;
            return first_dead != SIZE_MAX ? first_dead : i;
        }
        if (k == KEY_DEAD && first_dead == SIZE_MAX)
            first_dead = i;
    }
}

unsigned simdetect_find(const struct simdetect *sd,
                        const struct simdetect_keys *k, uint64_t self,
                        uint64_t *ref)
{
    uint64_t cand[SIMDETECT_MAX_K * SIMDETECT_MAX_C];
    unsigned hits[SIMDETECT_MAX_K * SIMDETECT_MAX_C], n = 0, best = 0;

    for (unsigned g = 0; g < sd->p.k; g++) {
        int found;
        size_t i;

        if (k->key[g] == KEY_NONE)
            continue;
        i = probe(sd, k->key[g], &found);
        if (!found)
            continue;
        for (uint32_t j = 0; j < sd->b[i].n; j++) {
            uint64_t id = sd->ids[i * sd->p.c + j];
            unsigned m;

            if (id == self)
                continue;
            for (m = 0; m < n && cand[m] != id; m++)
                ;
            if (m == n) {
                cand[n] = id;
                hits[n++] = 0;
            }
            hits[m]++;
        }
    }
    /* Most keys hit wins; on a tie the earliest seen (newest in the first
     * group's bucket) wins. */
    for (unsigned m = 0; m < n; m++)
        if (hits[m] > best) {
            best = hits[m];
            *ref = cand[m];
        }
    return best;
}

static int grow(struct simdetect *sd)
{
    struct sd_bucket *ob = sd->b;
    uint64_t *oids = sd->ids;
    size_t ocap = sd->mask + 1, cap = ocap;

    if (sd->live * 2 >= ocap)
        cap <<= 1;
    if (table_alloc(sd, cap) != 0) {
        sd->b = ob;
        sd->ids = oids;
        sd->mask = ocap - 1;
        return -ENOMEM;
    }
    for (size_t i = 0; i < ocap; i++) {
        int found;
        size_t j;

        if (ob[i].key < 2)
            continue;
        j = probe(sd, ob[i].key, &found);
        sd->b[j] = ob[i];
        memcpy(&sd->ids[j * sd->p.c], &oids[i * sd->p.c],
               ob[i].n * sizeof *oids);
        sd->live++;
    }
    free(ob);
    free(oids);
    return 0;
}

int simdetect_insert(struct simdetect *sd, const struct simdetect_keys *k,
                     uint64_t id)
{
    for (unsigned g = 0; g < sd->p.k; g++) {
        uint64_t *ids;
        int found;
        size_t i;
        uint32_t j, n;

        if (k->key[g] == KEY_NONE)
            continue;
        if ((sd->live + sd->dead + 1) * 4 > (sd->mask + 1) * 3 &&
            grow(sd) != 0)
            return -ENOMEM;
        i = probe(sd, k->key[g], &found);
        ids = &sd->ids[i * sd->p.c];
        if (!found) {
            if (sd->b[i].key == KEY_DEAD)
                sd->dead--;
            sd->b[i].key = k->key[g];
            sd->b[i].n = 0;
            sd->live++;
        }
        /* Newest first; the oldest falls off a full bucket. A page already
         * present moves to the front instead of appearing twice. */
        n = sd->b[i].n;
        for (j = 0; j < n && ids[j] != id; j++)
            ;
        if (j == n)
            j = n < sd->p.c ? n++ : n - 1;
        memmove(&ids[1], &ids[0], j * sizeof *ids);
        ids[0] = id;
        sd->b[i].n = n;
    }
    return 0;
}

int simdetect_remove(struct simdetect *sd, const struct simdetect_keys *k,
                     uint64_t id)
{
    int removed = 0;

    for (unsigned g = 0; g < sd->p.k; g++) {
        uint64_t *ids;
        int found;
        size_t i;
        uint32_t j;

        if (k->key[g] == KEY_NONE)
            continue;
        i = probe(sd, k->key[g], &found);
        if (!found)
            continue;
        ids = &sd->ids[i * sd->p.c];
        for (j = 0; j < sd->b[i].n && ids[j] != id; j++)
            ;
        if (j == sd->b[i].n)
            continue;
        memmove(&ids[j], &ids[j + 1], (sd->b[i].n - j - 1) * sizeof *ids);
        removed = 1;
        if (--sd->b[i].n == 0) {
            sd->b[i].key = KEY_DEAD;
            sd->live--;
            sd->dead++;
        }
    }
    return removed ? 0 : -ENOENT;
}

size_t simdetect_bytes(const struct simdetect *sd)
{
    return sizeof *sd + (sd->mask + 1) * (sizeof *sd->b +
                                          sd->p.c * sizeof *sd->ids);
}

unsigned simdetect_block_offset(const struct simdetect *sd, unsigned i)
{
    return i < sd->p.k * sd->p.s ? sd->off[i] : 0;
}

/*
 * share_index.c - open-addressing hash table of (page hash, id).
 *
 * Entries are 16 bytes and hold no page data, so the index costs 16 bytes
 * per indexed page divided by the load factor. Distinct pages with equal
 * hashes may coexist (each insert is its own entry); a lookup walks the
 * probe sequence and confirms every hash match with a full memcmp.
 * Deletion uses tombstones; the table is rebuilt when live entries plus
 * tombstones pass 3/4 of it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "page_hash.h"
#include "share_index.h"

#define SLOT_EMPTY UINT64_MAX
#define SLOT_DEAD  (UINT64_MAX - 1)

struct si_slot {
    uint64_t hash;
    uint64_t id;        /* SLOT_EMPTY or SLOT_DEAD when free */
};

struct share_index {
    struct si_slot *slot;
    size_t mask;        /* capacity - 1 (capacity is a power of two) */
    size_t live;
    size_t dead;
    share_page_fn page_fn;
    void *ctx;
};

static size_t pow2_at_least(size_t n)
{
    size_t c = 64;

    while (c < n)
        c <<= 1;
    return c;
}

static struct si_slot *slots_new(size_t cap)
{
    struct si_slot *s = malloc(cap * sizeof *s);

    if (s)
        for (size_t i = 0; i < cap; i++)
            s[i].id = SLOT_EMPTY;
    return s;
}

struct share_index *share_index_new(size_t expected, share_page_fn page_fn,
                                    void *ctx)
{
    struct share_index *si;

    if (!page_fn) {
        errno = EINVAL;
        return NULL;
    }
    si = calloc(1, sizeof *si);
    if (!si)
        return NULL;
    si->mask = pow2_at_least(expected + expected / 2 + 1) - 1;
    si->slot = slots_new(si->mask + 1);
    if (!si->slot) {
        free(si);
        return NULL;
    }
    si->page_fn = page_fn;
    si->ctx = ctx;
    return si;
}

void share_index_free(struct share_index *si)
{
    if (!si)
        return;
    free(si->slot);
    free(si);
}

static int rehash(struct share_index *si, size_t cap)
{
    struct si_slot *old = si->slot, *s;
    size_t oldcap = si->mask + 1;

    s = slots_new(cap);
    if (!s)
        return -ENOMEM;
    for (size_t i = 0; i < oldcap; i++) {
        size_t j;

        if (old[i].id >= SLOT_DEAD)
            continue;
        for (j = old[i].hash & (cap - 1); s[j].id != SLOT_EMPTY;
             j = (j + 1) & (cap - 1))
            ;
        s[j] = old[i];
    }
    free(old);
    si->slot = s;
    si->mask = cap - 1;
    si->dead = 0;
    return 0;
}

int share_index_lookup(struct share_index *si, const void *page,
                       uint64_t hash, uint64_t *twin)
{
    for (size_t i = hash & si->mask;; i = (i + 1) & si->mask) {
        const struct si_slot *s = &si->slot[i];
        const void *other;

        if (s->id == SLOT_EMPTY)
            return 0;
        if (s->id == SLOT_DEAD || s->hash != hash)
            continue;
        other = si->page_fn(si->ctx, s->id);
        if (other && page_equal(other, page)) {
            *twin = s->id;
            return 1;
        }
    }
}

int share_index_insert(struct share_index *si, uint64_t hash, uint64_t id)
{
    size_t i;

    if (id >= SLOT_DEAD)
        return -EINVAL;
    if ((si->live + si->dead + 1) * 4 > (si->mask + 1) * 3) {
        /* Grow only if live entries need it; otherwise just sweep the
         * tombstones out. */
        size_t cap = si->mask + 1;
        if ((si->live + 1) * 2 > cap)
            cap <<= 1;
        if (rehash(si, cap) != 0)
            return -ENOMEM;
    }
    for (i = hash & si->mask; si->slot[i].id < SLOT_DEAD;
         i = (i + 1) & si->mask)
        ;
    if (si->slot[i].id == SLOT_DEAD)
        si->dead--;
    si->slot[i].hash = hash;
    si->slot[i].id = id;
    si->live++;
    return 0;
}

int share_index_find_or_insert(struct share_index *si, const void *page,
                               uint64_t hash, uint64_t id, uint64_t *twin)
{
    if (share_index_lookup(si, page, hash, twin))
        return 1;
    return share_index_insert(si, hash, id);
}

int share_index_remove(struct share_index *si, uint64_t hash, uint64_t id)
{
    for (size_t i = hash & si->mask;; i = (i + 1) & si->mask) {
        struct si_slot *s = &si->slot[i];

        if (s->id == SLOT_EMPTY)
            return -ENOENT;
        if (s->id == id && s->hash == hash) {
            s->id = SLOT_DEAD;
            si->live--;
            si->dead++;
            return 0;
        }
    }
}

size_t share_index_count(const struct share_index *si)
{
    return si->live;
}

size_t share_index_bytes(const struct share_index *si)
{
    return sizeof *si + (si->mask + 1) * sizeof(struct si_slot);
}

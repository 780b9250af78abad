/*
 * store.c - size-class slab allocator with an indirection table.
 *
 * Layout. Objects are rounded up to a multiple of STORE_GRAIN (32 B) and
 * placed in 16 KiB slabs dedicated to that size; 128 classes cover 32 B
 * to 4 KiB. Rounding costs 16 B per object on average and a slab's tail
 * at most one object, about 6% for 1 KiB patches. Slabs are small because
 * a class's last slab is mostly empty: with 64 KiB slabs, 128 sparse
 * classes held 3 MiB of air for 4 MiB of data on a 24 MiB guest set.
 * Slabs are carved out of 512 KiB arenas so a store of many GiB stays at
 * tens of thousands of mappings at most
 * (vm.max_map_count is 65530 by default); a slab that empties is given
 * back with MADV_DONTNEED at once, and an arena whose slabs are all free
 * is unmapped.
 *
 * Allocation picks a slab from the fullest non-full group of its class
 * (4 fullness groups per class, zsmalloc's trick) so live objects
 * concentrate in few slabs and the emptiest ones tend to drain on their
 * own when pages fault back. What does not drain, store_compact() moves.
 *
 * Handles are (generation << 32 | index + 1) into a table of 16-byte
 * entries (slab, slot, length, generation, references); each slab keeps
 * the reverse map (slot -> entry), which is what lets compaction move an
 * object and fix its one entry. Free slots are linked through that same
 * reverse map, never through the object memory, so freeing does not
 * touch (and re-fault) pages the kernel may already have reclaimed.
 * Metadata is about 20 B per object, 2% of a 1 KiB patch.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "store.h"

#define NGROUPS 4
#define SLOT_NONE 0xffffu
#define OWNER_FREE 0x80000000u          /* owner[]: free, low bits = next */
#define HCHUNK_SHIFT 12
#define HCHUNK (1u << HCHUNK_SHIFT)     /* handle entries per chunk */
#define HNONE UINT32_MAX
#define HIDX_LIMIT (OWNER_FREE - 1)     /* owner[] needs the top bit */
#define ARENA_SIZE ((size_t)STORE_SLAB_SIZE * STORE_ARENA_SLABS)

struct slab {
    struct slab *prev, *next;   /* in its class's fullness group */
    uint32_t *owner;            /* slot -> handle index, or OWNER_FREE|next */
    uint32_t id;                /* arena index * STORE_ARENA_SLABS + pos */
    uint16_t cls;
    uint16_t inuse;
    uint16_t free_head;         /* freed slots, linked through owner[] */
    uint16_t bump;              /* slots [bump, objs) never handed out */
    int8_t group;               /* -1: full, on no list */
};

struct arena {
    uint8_t *base;
    uint32_t used;              /* bitmap of live slabs */
    uint32_t index;
    struct slab slab[STORE_ARENA_SLABS];
};

struct sclass {
    uint32_t size;
    uint32_t objs;
    uint64_t nslabs;
    uint64_t nobjs;
    struct slab *group[NGROUPS];
};

struct hent {
    uint32_t slab;              /* free entry: next free index */
    uint16_t slot;
    uint16_t len;               /* 0 marks a free entry */
    uint32_t gen;
    uint32_t refs;
};

struct store {
    struct sclass cls[STORE_NCLASSES];
    struct arena **arenas;
    size_t narena_slots;
    size_t narenas;
    struct hent **chunk;
    size_t nchunks;
    size_t chunk_cap;
    uint32_t hfree;
    uint32_t hnext;             /* entries [hnext, ...) never used */
    uint64_t objects;
    uint64_t payload;
    uint64_t slabs;
    uint64_t owner_bytes;
    uint64_t compact_moves;
};

_Static_assert(STORE_SLAB_SIZE / STORE_GRAIN <= SLOT_NONE,
               "slot numbers must fit in 16 bits");
_Static_assert(sizeof(struct hent) == 16, "handle entries are 16 bytes");

static struct hent *hent_at(const struct store *st, uint32_t idx)
{
    return &st->chunk[idx >> HCHUNK_SHIFT][idx & (HCHUNK - 1)];
}

static struct slab *slab_at(const struct store *st, uint32_t id)
{
    return &st->arenas[id / STORE_ARENA_SLABS]->slab[id % STORE_ARENA_SLABS];
}

static uint8_t *slab_mem(const struct store *st, const struct slab *sl)
{
    return st->arenas[sl->id / STORE_ARENA_SLABS]->base +
           (size_t)(sl->id % STORE_ARENA_SLABS) * STORE_SLAB_SIZE;
}

static uint8_t *obj_mem(const struct store *st, const struct slab *sl,
                        unsigned slot)
{
    return slab_mem(st, sl) + (size_t)slot * st->cls[sl->cls].size;
}

/* Resolves a handle to its live entry, or NULL. */
static struct hent *lookup(const struct store *st, store_handle_t h)
{
    uint32_t idx = (uint32_t)h - 1;
    struct hent *e;

    if ((uint32_t)h == 0 || idx >= st->hnext)
        return NULL;
    e = hent_at(st, idx);
    if (e->len == 0 || e->gen != (uint32_t)(h >> 32))
        return NULL;
    return e;
}

struct store *store_new(void)
{
    struct store *st = calloc(1, sizeof *st);

    if (!st)
        return NULL;
    for (unsigned c = 0; c < STORE_NCLASSES; c++) {
        st->cls[c].size = (c + 1) * STORE_GRAIN;
        st->cls[c].objs = STORE_SLAB_SIZE / st->cls[c].size;
    }
    st->hfree = HNONE;
    return st;
}

void store_destroy(struct store *st)
{
    if (!st)
        return;
    for (size_t a = 0; a < st->narena_slots; a++) {
        struct arena *ar = st->arenas[a];

        if (!ar)
            continue;
        for (unsigned i = 0; i < STORE_ARENA_SLABS; i++)
            if (ar->used & (1u << i))
                free(ar->slab[i].owner);
        munmap(ar->base, ARENA_SIZE);
        free(ar);
    }
    free(st->arenas);
    for (size_t i = 0; i < st->nchunks; i++)
        free(st->chunk[i]);
    free(st->chunk);
    free(st);
}

/* ---- fullness groups ---- */

static void list_remove(struct sclass *c, struct slab *sl)
{
    if (sl->group < 0)
        return;
    if (sl->prev)
        sl->prev->next = sl->next;
    else
        c->group[sl->group] = sl->next;
    if (sl->next)
        sl->next->prev = sl->prev;
    sl->prev = sl->next = NULL;
    sl->group = -1;
}

static void list_push(struct sclass *c, struct slab *sl, int g)
{
    sl->group = (int8_t)g;
    sl->prev = NULL;
    sl->next = c->group[g];
    if (sl->next)
        sl->next->prev = sl;
    c->group[g] = sl;
}

static int group_of(const struct sclass *c, const struct slab *sl)
{
    if (sl->inuse >= c->objs)
        return -1;
    return (int)((uint32_t)sl->inuse * NGROUPS / c->objs);
}

/* Puts a slab on the list its fill level calls for. */
static void regroup(struct store *st, struct slab *sl)
{
    struct sclass *c = &st->cls[sl->cls];
    int g = group_of(c, sl);

    if (g == sl->group)
        return;
    list_remove(c, sl);
    if (g >= 0)
        list_push(c, sl, g);
}

/* ---- slabs and arenas ---- */

static struct arena *arena_new(struct store *st)
{
    struct arena *ar;
    size_t slot;

    for (slot = 0; slot < st->narena_slots; slot++)
        if (!st->arenas[slot])
            break;
    if (slot == st->narena_slots) {
        size_t n = st->narena_slots ? st->narena_slots * 2 : 16;
        struct arena **na;

        if (n * STORE_ARENA_SLABS > UINT32_MAX)
            return NULL;
        na = realloc(st->arenas, n * sizeof *na);
        if (!na)
            return NULL;
        memset(na + st->narena_slots, 0,
               (n - st->narena_slots) * sizeof *na);
        st->arenas = na;
        st->narena_slots = n;
    }
    ar = calloc(1, sizeof *ar);
    if (!ar)
        return NULL;
    /* NORESERVE: only the slabs in use are ever touched; the rest of the
     * arena is address space, not commitment. */
    ar->base = mmap(NULL, ARENA_SIZE, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (ar->base == MAP_FAILED) {
        free(ar);
        return NULL;
    }
    ar->index = (uint32_t)slot;
    st->arenas[slot] = ar;
    st->narenas++;
    return ar;
}

static struct slab *slab_new(struct store *st, unsigned cls)
{
    struct sclass *c = &st->cls[cls];
    struct arena *ar = NULL;
    struct slab *sl;
    unsigned pos;

    /* Lowest arena first: packs live slabs low so high arenas empty out
     * and get unmapped. */
    for (size_t a = 0; a < st->narena_slots; a++)
        if (st->arenas[a] && st->arenas[a]->used != UINT32_MAX) {
            ar = st->arenas[a];
            break;
        }
    if (!ar && !(ar = arena_new(st)))
        return NULL;
    pos = (unsigned)__builtin_ctz(~ar->used);
    sl = &ar->slab[pos];
    memset(sl, 0, sizeof *sl);
    sl->owner = malloc(c->objs * sizeof *sl->owner);
    if (!sl->owner) {
        if (ar->used == 0) {
            st->arenas[ar->index] = NULL;
            st->narenas--;
            munmap(ar->base, ARENA_SIZE);
            free(ar);
        }
        return NULL;
    }
    ar->used |= 1u << pos;
    sl->id = ar->index * STORE_ARENA_SLABS + pos;
    sl->cls = (uint16_t)cls;
    sl->free_head = SLOT_NONE;
    sl->group = -1;
    c->nslabs++;
    st->slabs++;
    st->owner_bytes += c->objs * sizeof *sl->owner;
    regroup(st, sl);
    return sl;
}

static void slab_release(struct store *st, struct slab *sl)
{
    struct sclass *c = &st->cls[sl->cls];
    struct arena *ar = st->arenas[sl->id / STORE_ARENA_SLABS];
    unsigned pos = sl->id % STORE_ARENA_SLABS;

    list_remove(c, sl);
    free(sl->owner);
    sl->owner = NULL;
    c->nslabs--;
    st->slabs--;
    st->owner_bytes -= c->objs * sizeof(uint32_t);
    ar->used &= ~(1u << pos);
    if (ar->used == 0) {
        st->arenas[ar->index] = NULL;
        st->narenas--;
        munmap(ar->base, ARENA_SIZE);
        free(ar);
        return;
    }
    /* The pages go back to the kernel now; the address range stays ours
     * and reads as zeros if the slab is reused. */
    madvise(ar->base + (size_t)pos * STORE_SLAB_SIZE, STORE_SLAB_SIZE,
            MADV_DONTNEED);
}

static unsigned slot_take(struct slab *sl)
{
    unsigned slot;

    if (sl->free_head != SLOT_NONE) {
        slot = sl->free_head;
        sl->free_head = (uint16_t)(sl->owner[slot] & ~OWNER_FREE);
    } else {
        slot = sl->bump++;
    }
    sl->inuse++;
    return slot;
}

static void slot_put(struct slab *sl, unsigned slot)
{
    sl->owner[slot] = OWNER_FREE | sl->free_head;
    sl->free_head = (uint16_t)slot;
    sl->inuse--;
}

/* ---- handle entries ---- */

static int hent_alloc(struct store *st, uint32_t *out)
{
    uint32_t idx;

    if (st->hfree != HNONE) {
        idx = st->hfree;
        st->hfree = hent_at(st, idx)->slab;
        *out = idx;
        return 0;
    }
    if (st->hnext >= HIDX_LIMIT)
        return -ENOMEM;
    if ((st->hnext >> HCHUNK_SHIFT) == st->nchunks) {
        struct hent *ch;

        if (st->nchunks == st->chunk_cap) {
            size_t n = st->chunk_cap ? st->chunk_cap * 2 : 16;
            struct hent **nc = realloc(st->chunk, n * sizeof *nc);

            if (!nc)
                return -ENOMEM;
            st->chunk = nc;
            st->chunk_cap = n;
        }
        ch = malloc(HCHUNK * sizeof *ch);
        if (!ch)
            return -ENOMEM;
        st->chunk[st->nchunks++] = ch;
    }
    idx = st->hnext++;
    hent_at(st, idx)->gen = 0;
    *out = idx;
    return 0;
}

static void hent_release(struct store *st, uint32_t idx)
{
    struct hent *e = hent_at(st, idx);

    e->len = 0;
    e->refs = 0;
    e->gen++;           /* outstanding copies of the handle go stale */
    e->slab = st->hfree;
    st->hfree = idx;
}

/* ---- public ---- */

int store_alloc(struct store *st, size_t len, store_handle_t *h)
{
    unsigned cls, slot;
    struct sclass *c;
    struct slab *sl = NULL;
    struct hent *e;
    uint32_t idx;
    int rc;

    if (len == 0 || len > STORE_MAX_OBJECT)
        return -EINVAL;
    cls = (unsigned)((len - 1) / STORE_GRAIN);
    c = &st->cls[cls];
    if ((rc = hent_alloc(st, &idx)) != 0)
        return rc;
    for (int g = NGROUPS - 1; g >= 0 && !sl; g--)
        sl = c->group[g];
    if (!sl && !(sl = slab_new(st, cls))) {
        hent_release(st, idx);
        return -ENOMEM;
    }
    slot = slot_take(sl);
    sl->owner[slot] = idx;
    regroup(st, sl);

    e = hent_at(st, idx);
    e->slab = sl->id;
    e->slot = (uint16_t)slot;
    e->len = (uint16_t)len;
    e->refs = 1;
    c->nobjs++;
    st->objects++;
    st->payload += len;
    *h = ((store_handle_t)e->gen << 32) | (idx + 1);
    return 0;
}

int store_put(struct store *st, const void *data, size_t len,
              store_handle_t *h)
{
    int rc = store_alloc(st, len, h);

    if (rc == 0)
        memcpy(store_ptr(st, *h), data, len);
    return rc;
}

void *store_ptr(const struct store *st, store_handle_t h)
{
    const struct hent *e = lookup(st, h);

    if (!e)
        return NULL;
    return obj_mem(st, slab_at(st, e->slab), e->slot);
}

size_t store_len(const struct store *st, store_handle_t h)
{
    const struct hent *e = lookup(st, h);

    return e ? e->len : 0;
}

static void free_entry(struct store *st, uint32_t idx)
{
    struct hent *e = hent_at(st, idx);
    struct slab *sl = slab_at(st, e->slab);
    struct sclass *c = &st->cls[sl->cls];

    slot_put(sl, e->slot);
    c->nobjs--;
    st->objects--;
    st->payload -= e->len;
    if (sl->inuse == 0)
        slab_release(st, sl);
    else
        regroup(st, sl);
    hent_release(st, idx);
}

int store_free(struct store *st, store_handle_t h)
{
    if (!lookup(st, h))
        return -ENOENT;
    free_entry(st, (uint32_t)h - 1);
    return 0;
}

int64_t store_ref(struct store *st, store_handle_t h)
{
    struct hent *e = lookup(st, h);

    if (!e)
        return -ENOENT;
    if (e->refs == UINT32_MAX)
        return -EOVERFLOW;
    return ++e->refs;
}

int64_t store_unref(struct store *st, store_handle_t h)
{
    struct hent *e = lookup(st, h);

    if (!e)
        return -ENOENT;
    if (--e->refs > 0)
        return e->refs;
    free_entry(st, (uint32_t)h - 1);
    return 0;
}

uint32_t store_refcount(const struct store *st, store_handle_t h)
{
    const struct hent *e = lookup(st, h);

    return e ? e->refs : 0;
}

static uint64_t meta_bytes(const struct store *st)
{
    return st->nchunks * (uint64_t)HCHUNK * sizeof(struct hent) +
           st->chunk_cap * sizeof(struct hent *) +
           st->narenas * sizeof(struct arena) +
           st->narena_slots * sizeof(struct arena *) +
           st->owner_bytes + sizeof *st;
}

size_t store_footprint(const struct store *st)
{
    return (size_t)(st->slabs * STORE_SLAB_SIZE + meta_bytes(st));
}

void store_stats(const struct store *st, struct store_stats *out)
{
    memset(out, 0, sizeof *out);
    out->objects = st->objects;
    out->payload_bytes = st->payload;
    out->slab_bytes = st->slabs * STORE_SLAB_SIZE;
    out->meta_bytes = meta_bytes(st);
    out->footprint = out->slab_bytes + out->meta_bytes;
    out->overhead = out->footprint - out->payload_bytes;
    out->arenas = st->narenas;
    out->compact_moves = st->compact_moves;
    for (unsigned c = 0; c < STORE_NCLASSES; c++) {
        out->cls[c].obj_size = st->cls[c].size;
        out->cls[c].objs_per_slab = st->cls[c].objs;
        out->cls[c].slabs = st->cls[c].nslabs;
        out->cls[c].objects = st->cls[c].nobjs;
    }
}

/* ---- compaction ---- */

static struct slab *emptiest(const struct sclass *c)
{
    for (int g = 0; g < NGROUPS; g++)
        if (c->group[g])
            return c->group[g];
    return NULL;
}

static struct slab *fullest_except(const struct sclass *c,
                                   const struct slab *not)
{
    for (int g = NGROUPS - 1; g >= 0; g--)
        for (struct slab *sl = c->group[g]; sl; sl = sl->next)
            if (sl != not)
                return sl;
    return NULL;
}

size_t store_compact(struct store *st, size_t max_bytes)
{
    size_t moved = 0, released = 0;

    for (unsigned ci = 0; ci < STORE_NCLASSES && moved < max_bytes; ci++) {
        struct sclass *c = &st->cls[ci];

        /* Only when the free slots add up to a whole slab can moving
         * objects give one back. */
        while (moved < max_bytes &&
               c->nslabs * c->objs - c->nobjs >= c->objs) {
            struct slab *src = emptiest(c), *dst;

            if (!src || !(dst = fullest_except(c, src)))
                break;
            for (unsigned s = 0; s < src->bump && src->inuse > 0 &&
                                 dst->inuse < c->objs && moved < max_bytes;
                 s++) {
                uint32_t idx = src->owner[s];
                struct hent *e;
                unsigned d;

                if (idx & OWNER_FREE)
                    continue;
                e = hent_at(st, idx);
                d = slot_take(dst);
                dst->owner[d] = idx;
                memcpy(obj_mem(st, dst, d), obj_mem(st, src, s), e->len);
                e->slab = dst->id;
                e->slot = (uint16_t)d;
                slot_put(src, s);
                moved += e->len;
                st->compact_moves++;
            }
            regroup(st, dst);
            if (src->inuse == 0) {
                slab_release(st, src);
                released += STORE_SLAB_SIZE;
            } else {
                regroup(st, src);
            }
        }
    }
    return released;
}

/* ---- self-check ---- */

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

int store_check(const struct store *st, char *err, size_t errlen)
{
    uint64_t objs = 0, payload = 0, slabs = 0, live_entries = 0;

    for (size_t a = 0; a < st->narena_slots; a++) {
        const struct arena *ar = st->arenas[a];

        if (!ar)
            continue;
        if (ar->used == 0)
            return fail(err, errlen, "arena %zu mapped but empty", a);
        for (unsigned i = 0; i < STORE_ARENA_SLABS; i++) {
            const struct slab *sl = &ar->slab[i];
            const struct sclass *c;
            unsigned inuse = 0, nfree = 0;

            if (!(ar->used & (1u << i)))
                continue;
            slabs++;
            c = &st->cls[sl->cls];
            if (sl->id != a * STORE_ARENA_SLABS + i)
                return fail(err, errlen, "slab %zu/%u has id %u", a, i,
                            sl->id);
            for (unsigned s = 0; s < sl->bump; s++) {
                const struct hent *e;

                if (sl->owner[s] & OWNER_FREE)
                    continue;
                inuse++;
                if (sl->owner[s] >= st->hnext)
                    return fail(err, errlen, "slab %u slot %u: bad owner",
                                sl->id, s);
                e = hent_at(st, sl->owner[s]);
                if (e->len == 0 || e->slab != sl->id || e->slot != s)
                    return fail(err, errlen,
                                "slab %u slot %u: entry points elsewhere",
                                sl->id, s);
                if ((e->len - 1) / STORE_GRAIN != sl->cls)
                    return fail(err, errlen, "slab %u: object of %u B in "
                                "class %u", sl->id, e->len, sl->cls);
            }
            for (unsigned f = sl->free_head; f != SLOT_NONE;
                 f = sl->owner[f] & ~OWNER_FREE) {
                if (f >= sl->bump || !(sl->owner[f] & OWNER_FREE) ||
                    ++nfree > c->objs)
                    return fail(err, errlen, "slab %u: bad free list",
                                sl->id);
            }
            if (inuse != sl->inuse || inuse + nfree != sl->bump ||
                inuse == 0)
                return fail(err, errlen, "slab %u: inuse %u counted %u "
                            "free %u bump %u", sl->id, sl->inuse, inuse,
                            nfree, sl->bump);
            if (sl->group != group_of(c, sl))
                return fail(err, errlen, "slab %u in group %d, wants %d",
                            sl->id, sl->group, group_of(c, sl));
        }
    }
    for (unsigned ci = 0; ci < STORE_NCLASSES; ci++) {
        const struct sclass *c = &st->cls[ci];

        for (int g = 0; g < NGROUPS; g++)
            for (const struct slab *sl = c->group[g]; sl; sl = sl->next)
                if (sl->group != g || sl->cls != ci ||
                    (sl->next && sl->next->prev != sl))
                    return fail(err, errlen, "class %u group %d: bad list",
                                ci, g);
    }
    for (uint32_t i = 0; i < st->hnext; i++) {
        const struct hent *e = hent_at(st, i);

        if (e->len == 0)
            continue;
        live_entries++;
        objs++;
        payload += e->len;
        if (e->refs == 0)
            return fail(err, errlen, "entry %u live with no reference", i);
    }
    if (objs != st->objects || payload != st->payload ||
        slabs != st->slabs || live_entries != st->objects)
        return fail(err, errlen, "totals: objects %llu/%llu payload "
                    "%llu/%llu slabs %llu/%llu",
                    (unsigned long long)objs,
                    (unsigned long long)st->objects,
                    (unsigned long long)payload,
                    (unsigned long long)st->payload,
                    (unsigned long long)slabs,
                    (unsigned long long)st->slabs);
    return 0;
}

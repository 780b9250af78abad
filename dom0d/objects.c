/*
 * objects.c - canonical contents and sharing groups.
 *
 * An object is one 4 KiB copy the daemon owns. Shared pages restore from
 * it and patches are made against it, so a guest writing the page an
 * object came from never breaks what depends on the object. Objects are
 * reference counted by the pages that need them.
 *
 * The share index and the similarity detector of a group hold two kinds
 * of id: object ids, and candidate ids naming a frozen guest page that has
 * no twin yet. A candidate is only trusted while its page is still frozen:
 * index_page() re-reads it, and a page that changed reads as absent.
 *
 * Objects are held compressed when that saves space (compress_objects,
 * on by default): on the uffd backend they are the only copy of every
 * shared content, and a third of what the daemon holds when whole. A
 * compressed object is checked to decode bit-exact before it is kept,
 * and decoded on use into one buffer that doubles as a one-entry cache,
 * since a patch is made and checked against the same reference twice in
 * a row and runs of faults hit the same shared content.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dom0d.h"
#include "log.h"
#include "page.h"
#include "page_hash.h"

#define CAND_BIT   (UINT64_C(1) << 63)
#define CAND_SHIFT 40

uint64_t cand_id(const struct guest *g, uint64_t gfn)
{
    return CAND_BIT | ((uint64_t)g->slot << CAND_SHIFT) | gfn;
}

bool id_is_cand(uint64_t id)
{
    return (id & CAND_BIT) != 0;
}

struct guest *cand_guest(const struct daemon *d, uint64_t id, uint64_t *gfn)
{
    uint64_t slot = (id & ~CAND_BIT) >> CAND_SHIFT;
    struct guest *g;

    if (slot >= d->nguests_cap || !(g = d->guests[slot]) || g->gone)
        return NULL;
    *gfn = id & ((UINT64_C(1) << CAND_SHIFT) - 1);
    return *gfn < g->npages ? g : NULL;
}

/* Held compressed only when that saves at least a quarter of the page:
 * below that the decode on every use buys too little. */
#define OBJ_COMPRESS_MAX (DE_PAGE_SIZE * 3 / 4)

bool object_live(const struct daemon *d, uint32_t id)
{
    return id < d->nobj && d->obj[id].h != STORE_HANDLE_NONE;
}

const void *object_data(struct daemon *d, uint32_t id)
{
    const struct object *o;
    struct compressor *cc;

    if (!object_live(d, id))
        return NULL;
    o = &d->obj[id];
    if (o->len == DE_PAGE_SIZE)
        return store_ptr(d->store, o->h);
    if (d->objbuf_ok && d->objbuf_id == id)
        return d->objbuf;
    d->objbuf_ok = false;
    cc = daemon_decompressor(d, o->codec);
    if (!cc || compressor_decode(cc, store_ptr(d->store, o->h), o->len,
                                 d->objbuf) != 0) {
        log_warnx("object %u does not decode", id);
        return NULL;
    }
    d->objbuf_id = id;
    d->objbuf_ok = true;
    return d->objbuf;
}

/* Encodes `page` for the store: into d->objenc when compressing pays and
 * decodes back bit-exact, else the page itself. Returns the length. */
static size_t object_encode(struct daemon *d, const void *page,
                            const void **enc, uint8_t *codec)
{
    struct compressor *dec;
    ssize_t len;

    *enc = page;
    if (!d->cfg->compress_objects)
        return DE_PAGE_SIZE;
    if (!d->obj_cc) {
        d->obj_cc = compressor_new(d->cfg->policy.compressor,
                                   d->cfg->policy.zstd_level);
        if (!d->obj_cc)
            return DE_PAGE_SIZE;
    }
    len = compressor_encode(d->obj_cc, page, d->objenc, OBJ_COMPRESS_MAX);
    if (len <= 0)
        return DE_PAGE_SIZE;
    /* never keep what we could not give back */
    d->objbuf_ok = false;
    dec = daemon_decompressor(d, compressor_id(d->obj_cc));
    if (!dec || compressor_decode(dec, d->objenc, (size_t)len, d->objbuf) != 0 ||
        memcmp(d->objbuf, page, DE_PAGE_SIZE) != 0)
        return DE_PAGE_SIZE;
    *codec = (uint8_t)compressor_id(d->obj_cc);
    *enc = d->objenc;
    return (size_t)len;
}

const void *index_page(void *ctx, uint64_t id)
{
    struct daemon *d = ctx;
    struct guest *g;
    uint64_t gfn;

    if (!id_is_cand(id))
        return id <= UINT32_MAX ? object_data(d, (uint32_t)id) : NULL;
    g = cand_guest(d, id, &gfn);
    if (!g || g->rec[gfn].state != PR_FROZEN)
        return NULL;
    return guest_read(g, gfn, d->idxbuf) == 0 ? d->idxbuf : NULL;
}

static int group_build_sd(struct daemon *d, struct share_group *sg, uint32_t gi)
{
    sg->sd = simdetect_new(&sg->sdp, 4096);
    if (!sg->sd)
        return -ENOMEM;
    sg->sd_inserts = 0;
    for (uint32_t i = 0; i < d->nobj; i++)
        if (d->obj[i].h != STORE_HANDLE_NONE && d->obj[i].group == gi) {
            struct simdetect_keys k;
            const void *data = object_data(d, i);

            if (!data)
                continue;
            simdetect_keys(sg->sd, data, &k);
            if (simdetect_insert(sg->sd, &k, i) != 0)
                return -ENOMEM;
        }
    return 0;
}

int group_for(struct daemon *d, const char *name, uint32_t *out)
{
    struct share_group *sg, *n;
    uint32_t free_slot = UINT32_MAX;

    for (uint32_t i = 0; i < d->ngroups; i++) {
        if (d->groups[i].users == 0) {
            if (free_slot == UINT32_MAX)
                free_slot = i;
            continue;
        }
        if (strcmp(d->groups[i].name, name) == 0) {
            d->groups[i].users++;
            *out = i;
            return 0;
        }
    }
    if (free_slot == UINT32_MAX) {
        n = realloc(d->groups, (d->ngroups + 1) * sizeof *n);
        if (!n)
            return -ENOMEM;
        d->groups = n;
        free_slot = d->ngroups++;
    }
    sg = &d->groups[free_slot];
    memset(sg, 0, sizeof *sg);
    snprintf(sg->name, sizeof sg->name, "%s", name);
    sg->si = share_index_new(4096, index_page, d);
    sg->sdp.k = d->cfg->policy.sim_k;
    sg->sdp.s = d->cfg->policy.sim_s;
    sg->sdp.c = d->cfg->policy.sim_c;
    {
        struct simdetect_params dp;
        simdetect_default_params(&dp);
        sg->sdp.seed = dp.seed;
    }
    if (!sg->si || group_build_sd(d, sg, free_slot) != 0) {
        share_index_free(sg->si);
        simdetect_free(sg->sd);
        memset(sg, 0, sizeof *sg);
        return -ENOMEM;
    }
    sg->users = 1;
    *out = free_slot;
    return 0;
}

void group_release(struct daemon *d, uint32_t gi)
{
    struct share_group *sg = &d->groups[gi];

    if (--sg->users > 0)
        return;
    share_index_free(sg->si);
    simdetect_free(sg->sd);
    sg->si = NULL;
    sg->sd = NULL;
}

/* Offers a reference candidate. Stale candidates (pages that changed) are
 * not removed one by one, since their keys are gone with their contents;
 * instead the detector is rebuilt from the objects once it has taken many
 * more inserts than it can hold live, and live candidates come back as
 * the clock passes them again. */
void group_offer_reference(struct daemon *d, uint32_t gi,
                           const struct simdetect_keys *k, uint64_t id)
{
    struct share_group *sg = &d->groups[gi];
    uint64_t pages = 0;

    for (uint32_t i = 0; i < d->nguests_cap; i++)
        if (d->guests[i] && d->guests[i]->group == gi)
            pages += d->guests[i]->ram_pages;
    if (sg->sd_inserts > 2 * pages + 65536) {
        simdetect_free(sg->sd);
        sg->sd = NULL;
        if (group_build_sd(d, sg, gi) != 0) {
            log_warnx("similarity detector rebuild failed: out of memory");
            return;
        }
    }
    if (simdetect_insert(sg->sd, k, id) == 0)
        sg->sd_inserts++;
}

int object_new(struct daemon *d, uint32_t gi, const void *page, uint64_t hash,
               uint32_t *out)
{
    struct share_group *sg = &d->groups[gi];
    struct simdetect_keys k;
    store_handle_t h;
    const void *enc;
    uint8_t codec = 0;
    size_t len;
    uint32_t id;
    int rc;

    len = object_encode(d, page, &enc, &codec);
    rc = store_put(d->store, enc, len, &h);
    if (rc != 0)
        return rc;
    if (d->obj_free != OBJ_NONE) {
        id = d->obj_free;
        d->obj_free = d->obj[id].next_free;
    } else {
        if (d->nobj == d->obj_cap) {
            uint32_t cap = d->obj_cap ? d->obj_cap * 2 : 1024;
            struct object *n = realloc(d->obj, cap * sizeof *n);
            if (!n) {
                store_free(d->store, h);
                return -ENOMEM;
            }
            d->obj = n;
            d->obj_cap = cap;
        }
        id = d->nobj++;
    }
    d->obj[id] = (struct object){ .h = h, .hash = hash, .refs = 0,
                                  .group = gi, .next_free = OBJ_NONE,
                                  .len = (uint16_t)len, .codec = codec };
    if (len < DE_PAGE_SIZE) {
        /* object_encode() left the checked decode in objbuf */
        d->objbuf_id = id;
        d->objbuf_ok = true;
    } else if (d->objbuf_id == id) {
        d->objbuf_ok = false;
    }
    if (share_index_insert(sg->si, hash, id) != 0) {
        store_free(d->store, h);
        d->obj[id].h = STORE_HANDLE_NONE;
        d->objbuf_ok = false;
        d->obj[id].next_free = d->obj_free;
        d->obj_free = id;
        return -ENOMEM;
    }
    simdetect_keys(sg->sd, page, &k);
    group_offer_reference(d, gi, &k, id);
    *out = id;
    return 0;
}

void object_ref(struct daemon *d, uint32_t id)
{
    d->obj[id].refs++;
}

void object_unref(struct daemon *d, uint32_t id)
{
    struct object *o = &d->obj[id];
    struct share_group *sg = &d->groups[o->group];
    struct simdetect_keys k;
    const void *data;

    if (o->refs == 0 || --o->refs > 0)
        return;
    if (sg->si) {
        share_index_remove(sg->si, o->hash, id);
        /* an entry left behind names a free object: lookups skip it */
        if (sg->sd && (data = object_data(d, id)) != NULL) {
            simdetect_keys(sg->sd, data, &k);
            simdetect_remove(sg->sd, &k, id);
        }
    }
    store_free(d->store, o->h);
    o->h = STORE_HANDLE_NONE;
    if (d->objbuf_id == id)
        d->objbuf_ok = false;
    o->next_free = d->obj_free;
    d->obj_free = id;
}

/*
 * guest.c - adopting guests, their page records, flushing and release.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "dom0d.h"
#include "log.h"
#include "page.h"
#include "swapfile.h"

static void guest_event_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    fault_service(arg);
}

struct guest *guest_find(struct daemon *d, const char *name)
{
    char *end;
    unsigned long id = strtoul(name, &end, 10);

    for (uint32_t i = 0; i < d->nguests_cap; i++) {
        struct guest *g = d->guests[i];

        if (!g || g->gone)
            continue;
        if (strcmp(g->name, name) == 0 || (*name && !*end && g->id == id))
            return g;
    }
    return NULL;
}

int guest_read(struct guest *g, uint64_t gfn, void *buf)
{
    dexc_mapping *m = NULL;
    const void *p = NULL;
    int rc = 0, n;

    n = dexc_map_ro(g->dx, &gfn, 1, &p, &rc, &m);
    if (n == 1)
        memcpy(buf, p, DE_PAGE_SIZE);
    dexc_unmap(g->dx, m);
    return n == 1 ? 0 : (n < 0 ? n : rc);
}

/* Takes a candidate page out of its group's share index. */
void guest_uncandidate(struct guest *g, uint64_t gfn)
{
    struct share_group *sg = &g->d->groups[g->group];

    if (!g->rec[gfn].indexed)
        return;
    if (sg->si)
        share_index_remove(sg->si, g->cand_hash[gfn], cand_id(g, gfn));
    g->rec[gfn].indexed = 0;
}

static uint64_t grain(uint64_t len)
{
    return (len + STORE_GRAIN - 1) / STORE_GRAIN * STORE_GRAIN;
}

/* Releases what a record holds and makes it PR_NORMAL. The page's data
 * must already be back in the guest (or the guest gone). */
void guest_drop_record(struct guest *g, uint64_t gfn)
{
    struct daemon *d = g->d;
    struct prec *r = &g->rec[gfn];

    switch (r->state) {
    case PR_FROZEN:
        guest_uncandidate(g, gfn);
        break;
    case PR_ZERO:
        g->st.pages_zero--;
        g->st.pages_shared--;
        break;
    case PR_SHARED:
        object_unref(d, r->obj);
        g->st.pages_shared--;
        break;
    case PR_PATCHED:
        store_free(d->store, r->ref);
        object_unref(d, r->obj);
        g->enc_bytes -= grain(r->len);
        g->st.pages_patched--;
        break;
    case PR_COMPRESSED:
        store_free(d->store, r->ref);
        g->enc_bytes -= grain(r->len);
        g->st.pages_compressed--;
        break;
    case PR_SWAPPED:
        if (d->swap)
            swapfile_free(d->swap, r->ref);
        if (r->enc == ENC_PATCH)
            object_unref(d, r->obj);
        g->st.pages_swapped--;
        g->st.swap_bytes -= r->len;
        break;
    default:
        break;
    }
    r->state = PR_NORMAL;
    r->ref = 0;
    r->obj = OBJ_NONE;
    r->len = 0;
    r->enc = 0;
    r->flags = 0;
}

void guest_apply_policy(struct guest *g)
{
    struct patch_codec *pc;
    struct compressor *cc;

    if (!g->pc || patch_codec_id(g->pc) != (enum patch_codec_id)g->pol.patch_codec) {
        pc = patch_codec_new((enum patch_codec_id)g->pol.patch_codec, 0);
        if (pc) {
            patch_codec_free(g->pc);
            g->pc = pc;
        } else {
            log_warn("guest %s: patch codec", g->name);
        }
    }
    /* zstd's level is a context parameter: remake it on every change */
    cc = compressor_new((enum compressor_id)g->pol.compressor, g->pol.zstd_level);
    if (cc) {
        compressor_free(g->cc);
        g->cc = cc;
    } else {
        log_warn("guest %s: compressor", g->name);
    }
}

static int ram_run_add(struct ram_run **runs, size_t *n, size_t *cap,
                       uint64_t start, uint64_t end)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 8;
        struct ram_run *r = realloc(*runs, c * sizeof *r);

        if (!r)
            return -ENOMEM;
        *runs = r;
        *cap = c;
    }
    (*runs)[(*n)++] = (struct ram_run){ start, end };
    return 0;
}

/* Learns which gfns are RAM (the backend's state is not DEXC_STATE_OTHER)
 * as runs for the clock. Where a whole query fails, its gfns count as
 * RAM: scanning a hole costs time, never data. Returns 0 or -ENOMEM. */
int guest_map_ram(struct guest *g)
{
    enum { BATCH = 512 };
    struct dexc_page q[BATCH];
    struct ram_run *runs = NULL;
    size_t n = 0, cap = 0;
    uint64_t pages = 0, start = UINT64_MAX;

    for (uint64_t base = 0; base < g->npages; base += BATCH) {
        size_t m = g->npages - base < BATCH ? g->npages - base : BATCH;
        bool whole;

        for (size_t i = 0; i < m; i++)
            q[i] = (struct dexc_page){ .gfn = base + i };
        whole = dexc_query(g->dx, q, m) < 0;
        for (size_t i = 0; i < m; i++) {
            bool ram = whole || (q[i].rc == 0 && q[i].state != DEXC_STATE_OTHER);

            if (ram && start == UINT64_MAX) {
                start = base + i;
            } else if (!ram && start != UINT64_MAX) {
                if (ram_run_add(&runs, &n, &cap, start, base + i) != 0)
                    goto nomem;
                pages += base + i - start;
                start = UINT64_MAX;
            }
        }
    }
    if (start != UINT64_MAX) {
        if (ram_run_add(&runs, &n, &cap, start, g->npages) != 0)
            goto nomem;
        pages += g->npages - start;
    }
    free(g->ram);
    g->ram = runs;
    g->nram = n;
    g->ram_pages = pages;
    /* the hand stays where it is; find its run again */
    for (g->ram_cur = 0; g->ram_cur < n && runs[g->ram_cur].end <= g->hand;
         g->ram_cur++)
        ;
    return 0;
nomem:
    free(runs);
    return -ENOMEM;
}

/* Frees the guest's own memory: codecs, per-page arrays, the struct. */
static void guest_free_mem(struct guest *g)
{
    patch_codec_free(g->pc);
    compressor_free(g->cc);
    free(g->rec);
    free(g->cand_hash);
    free(g->heat);
    free(g->wtrack);
    free(g->ram);
    free(g);
}

int guest_adopt(struct daemon *d, dexc_guest *dx, const char *name,
                const struct de_policy *pol)
{
    struct dexc_info info;
    struct guest *g;
    char gname[CONFIG_NAME_MAX + 8];
    uint32_t slot;
    int rc;

    if (dexc_get_info(dx, &info) != 0)
        return -EINVAL;
    for (slot = 0; slot < d->nguests_cap && d->guests[slot]; slot++)
        ;
    if (slot == d->nguests_cap) {
        uint32_t cap = d->nguests_cap ? d->nguests_cap * 2 : 8;
        struct guest **n = realloc(d->guests, cap * sizeof *n);
        if (!n)
            return -ENOMEM;
        memset(n + d->nguests_cap, 0, (cap - d->nguests_cap) * sizeof *n);
        d->guests = n;
        d->nguests_cap = cap;
    }
    g = calloc(1, sizeof *g);
    if (!g)
        return -ENOMEM;
    g->d = d;
    g->slot = slot;
    g->id = info.id;
    g->dx = dx;
    g->npages = info.nr_pages;
    if (!name || !*name)
        name = info.name && *info.name ? info.name : "guest";
    snprintf(g->name, sizeof g->name, "%s", name);
    if (guest_find(d, g->name))     /* names identify guests: keep unique */
        snprintf(g->name, sizeof g->name, "%.40s-%u", name, g->id);
    stats_init(&g->st);
    if (pol)
        g->pol = *pol;
    else
        config_for_guest(d->cfg, g->name, &g->pol);
    g->rec = calloc(g->npages, sizeof *g->rec);
    g->cand_hash = calloc(g->npages, sizeof *g->cand_hash);
    g->heat = calloc(g->npages, 1);
    g->wtrack = calloc(g->npages, 1);
    if (!g->rec || !g->cand_hash || !g->heat || !g->wtrack) {
        rc = -ENOMEM;
        goto fail;
    }
    for (uint64_t i = 0; i < g->npages; i++)
        g->rec[i].obj = OBJ_NONE;
    rc = guest_map_ram(g);
    if (rc != 0)
        goto fail;
    /* A guest with no group shares with no one else. */
    snprintf(gname, sizeof gname, "%s%s", g->pol.share_group[0] ? "" : "guest:",
             g->pol.share_group[0] ? g->pol.share_group : g->name);
    rc = group_for(d, gname, &g->group);
    if (rc != 0)
        goto fail;
    guest_apply_policy(g);
    if (!g->pc || !g->cc) {
        group_release(d, g->group);
        rc = -ENOMEM;
        goto fail;
    }
    g->ev = event_new(d->base, dexc_event_fd(dx), EV_READ | EV_PERSIST,
                      guest_event_cb, g);
    if (!g->ev || event_add(g->ev, NULL) != 0) {
        group_release(d, g->group);
        rc = -ENOMEM;
        goto fail;
    }
    d->guests[slot] = g;
    log_info("guest %s (id %u, pid %d): %llu MiB adopted (%zu RAM runs), %s, "
             "group %s", g->name, g->id, info.pid,
             (unsigned long long)(g->ram_pages * DE_PAGE_SIZE >> 20), g->nram,
             g->pol.enable ? "enabled" : "disabled", gname);
    return 0;
fail:
    if (g->ev)
        event_free(g->ev);
    guest_free_mem(g);
    return rc;
}

/* Restores every page the daemon holds for g, in batches, and thaws the
 * frozen ones. Returns the number of pages that could not be restored. */
int guest_flush(struct guest *g)
{
    enum { BATCH = 64 };
    static uint8_t buf[BATCH * DE_PAGE_SIZE];
    struct dexc_page pg[BATCH];
    uint64_t gfns[BATCH];
    int failed = 0;
    size_t n = 0;

    for (uint64_t gfn = 0; gfn <= g->npages; gfn++) {
        bool last = gfn == g->npages;

        if (!last) {
            struct prec *r = &g->rec[gfn];
            enum page_kind kind;

            if (r->state == PR_FROZEN) {
                struct dexc_page t = { .gfn = gfn, .handle = r->ref };
                dexc_thaw(g->dx, &t, 1);
                guest_drop_record(g, gfn);
                continue;
            }
            if (r->state <= PR_FROZEN)
                continue;
            if (fault_decode(g, gfn, buf + n * DE_PAGE_SIZE, &kind) != 0) {
                log_warnx("guest %s: gfn %llu cannot be rebuilt; left with the daemon",
                          g->name, (unsigned long long)gfn);
                failed++;
                continue;
            }
            gfns[n] = gfn;
            pg[n] = (struct dexc_page){ .gfn = gfn };
            n++;
        }
        if (n == BATCH || (last && n)) {
            dexc_restore(g->dx, pg, n, buf, 0);
            for (size_t i = 0; i < n; i++) {
                if (pg[i].rc == 0 || pg[i].rc == -EEXIST) {
                    guest_drop_record(g, gfns[i]);
                    g->rec[gfns[i]].age = 0;
                } else {
                    errno = -pg[i].rc;
                    log_warn("guest %s: restore of gfn %llu", g->name,
                             (unsigned long long)gfns[i]);
                    failed++;
                }
            }
            n = 0;
        }
    }
    return failed;
}

void guest_gone(struct guest *g)
{
    struct daemon *d = g->d;
    int rc;

    if (g->gone)
        return;
    g->gone = true;
    for (uint64_t gfn = 0; gfn < g->npages; gfn++)
        guest_drop_record(g, gfn);
    event_free(g->ev);
    g->ev = NULL;
    rc = dexc_close(g->dx);
    if (rc != 0)
        log_warnx("guest %s: close: %s", g->name, strerror(-rc));
    stats_merge(&d->gone_st, &g->st);
    group_release(d, g->group);
    d->guests[g->slot] = NULL;
    log_info("guest %s (id %u) released", g->name, g->id);
    guest_free_mem(g);
}

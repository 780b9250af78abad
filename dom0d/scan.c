/*
 * scan.c - the not-recently-used clock and the Difference Engine pipeline.
 *
 * Every tick each enabled guest gets one slice of scan_batch pages (a fair
 * share each), starting where its clock hand stopped. For the slice:
 *  1. harvest accessed/dirty bits: a used page's age drops to 0, others
 *     age by one sweep;
 *  2. pages unused for a sweep are frozen: the daemon may now read a
 *     stable copy, and a guest write thaws the page and invalidates its
 *     handle, which makes any later reclaim fail (EAGAIN) safely;
 *  3. each frozen page: zero -> reclaimed as zero; an identical content in
 *     the group -> shared; else it becomes a sharing and reference
 *     candidate; unused for nru_patch_age sweeps -> patched against a
 *     similar reference; unused for nru_compress_age -> compressed;
 *     incompressible and colder still -> swap file (when enabled);
 *  4. over the store budget, the coldest encoded pages of the slice move to
 *     the swap file.
 * A page is reclaimed only after its encoding is stored and checked to
 * decode bit-exact; any failure on the way leaves the page in the guest.
 *
 * Refault back-off. On the uffd backend reads of resident pages are
 * invisible (only writes and faults are seen), so a page that is read
 * often looks unused and would be reclaimed and faulted back over and
 * over. Each refault doubles how many unused sweeps a page needs before
 * the pipeline takes it again (its heat, up to 2^HEAT_MAX); a page that
 * then stays reclaimed cools down again. Xen's A/D bits see reads, but
 * the back-off costs nothing there.
 *
 * Write back-off. Seeing writes means write-protecting pages (a harvest
 * clear), and each protected page's next write costs the guest a fault
 * through the daemon. A page found written is therefore not re-armed for
 * 2^level - 1 sweeps (level up to WT_MAX_LEVEL), during which it counts as
 * used; a re-armed page found clean drops a level.
 */
#include <errno.h>
#include <string.h>

#include "dom0d.h"
#include "log.h"
#include "page.h"
#include "page_hash.h"
#include "swapfile.h"

/* Pages colder than compression by this many sweeps may go to swap raw. */
#define SWAP_RAW_EXTRA_AGE 2

/* Sweeps a page must stay unused before the pipeline may take it. */
static unsigned cold_after(const struct guest *g, uint64_t gfn)
{
    return 1u << g->heat[gfn];
}

static uint64_t grain(uint64_t len)
{
    return (len + STORE_GRAIN - 1) / STORE_GRAIN * STORE_GRAIN;
}

/* The guest wrote frozen page gfn since it was frozen: its handle is
 * stale and the page is NORMAL again (and in use). */
static void handle_went_stale(struct guest *g, uint64_t gfn)
{
    g->st.reclaim_stale++;
    guest_drop_record(g, gfn);
    g->rec[gfn].age = 0;
}

/* Frozen page gfn, all zeros, was reclaimed. */
static void zero_reclaimed(struct guest *g, uint64_t gfn)
{
    g->rec[gfn].state = PR_ZERO;
    g->st.pages_zero++;
    g->st.pages_shared++;
    g->st.reclaimed[KIND_ZERO]++;
}

/* Reclaims frozen page gfn (its handle in the record). 0 or -errno; on
 * -EAGAIN the guest wrote it meanwhile and it is NORMAL again. */
static int reclaim_one(struct guest *g, uint64_t gfn)
{
    struct dexc_page p = { .gfn = gfn, .handle = g->rec[gfn].ref };
    int rc = dexc_reclaim(g->dx, &p, 1);

    if (rc < 0)
        return rc;
    if (p.rc != 0) {
        if (p.rc == -EAGAIN)
            handle_went_stale(g, gfn);
        return p.rc;
    }
    guest_uncandidate(g, gfn);
    return 0;
}

static int share_one(struct guest *g, uint64_t gfn, uint32_t obj)
{
    struct dexc_share s = { .gfn = gfn, .handle = g->rec[gfn].ref,
                            .canonical = obj };
    int rc = dexc_share(g->dx, NULL, &s, 1, 0);

    if (rc < 0)
        return rc;
    if (s.rc != 0) {
        if (s.rc == -EAGAIN)
            handle_went_stale(g, gfn);
        return s.rc;
    }
    guest_uncandidate(g, gfn);
    object_ref(g->d, obj);
    g->rec[gfn].state = PR_SHARED;
    g->rec[gfn].obj = obj;
    g->st.pages_shared++;
    g->st.reclaimed[KIND_SHARED]++;
    return 0;
}

/* Shares page gfn (content `page`) with twin `twin` found in the index.
 * Returns 0 when gfn was shared. */
static int share_with(struct guest *g, uint64_t gfn, const uint8_t *page,
                      uint64_t hash, uint64_t twin)
{
    struct daemon *d = g->d;
    struct guest *tg;
    uint64_t tgfn;
    uint32_t obj;
    int rc;

    if (!id_is_cand(twin))
        return share_one(g, gfn, (uint32_t)twin);
    /* The twin is a frozen page with no copy yet: make the canonical copy
     * now, then move both pages onto it. */
    tg = cand_guest(d, twin, &tgfn);
    if (!tg)
        return -ENOENT;
    rc = object_new(d, g->group, page, hash, &obj);
    if (rc != 0)
        return rc;
    object_ref(d, obj);             /* hold it while we share */
    guest_uncandidate(tg, tgfn);
    if (share_one(tg, tgfn, obj) != 0)
        log_debug("guest %s: twin gfn %llu changed before sharing", tg->name,
                  (unsigned long long)tgfn);
    rc = share_one(g, gfn, obj);
    object_unref(d, obj);
    return rc;
}

/* Stores `enc` and reclaims gfn; the record becomes `state`. */
static int store_and_reclaim(struct guest *g, uint64_t gfn, const void *enc,
                             size_t len, enum prec_state state, uint32_t obj)
{
    struct daemon *d = g->d;
    store_handle_t h;
    int rc;

    rc = store_put(d->store, enc, len, &h);
    if (rc != 0)
        return rc;
    rc = reclaim_one(g, gfn);
    if (rc != 0) {
        store_free(d->store, h);
        return rc;
    }
    g->rec[gfn].state = (uint8_t)state;
    g->rec[gfn].flags = state == PR_PATCHED ? patch_codec_id(g->pc)
                                            : compressor_id(g->cc);
    g->rec[gfn].ref = h;
    g->rec[gfn].len = (uint16_t)len;
    g->rec[gfn].obj = obj;
    g->enc_bytes += grain(len);
    if (state == PR_PATCHED) {
        object_ref(d, obj);
        g->st.pages_patched++;
        g->st.reclaimed[KIND_PATCHED]++;
    } else {
        g->st.pages_compressed++;
        g->st.reclaimed[KIND_COMPRESSED]++;
    }
    return 0;
}

/* The reference for a patch: an object, or a candidate page promoted to
 * an object (the daemon's own copy of the reference). */
static int find_reference(struct guest *g, uint64_t gfn,
                          const struct simdetect_keys *k, uint32_t *obj)
{
    struct daemon *d = g->d;
    struct share_group *sg = &d->groups[g->group];
    struct guest *rg;
    uint64_t ref, rgfn;
    const void *data;

    if (!simdetect_find(sg->sd, k, cand_id(g, gfn), &ref))
        return -ENOENT;
    if (!id_is_cand(ref)) {
        if (!object_live(d, (uint32_t)ref))
            return -ENOENT;
        *obj = (uint32_t)ref;
        return 0;
    }
    rg = cand_guest(d, ref, &rgfn);
    if (!rg || rg->rec[rgfn].state != PR_FROZEN)
        return -ENOENT;
    data = index_page(d, ref);
    if (!data)
        return -ENOENT;
    /* The copy is stable: the page is frozen, and a write since would have
     * changed its state, which index_page checked after reading... but a
     * write may land between: check the handle once more after copying. */
    {
        struct dexc_page q = { .gfn = rgfn };
        if (dexc_query(rg->dx, &q, 1) < 0 || q.rc != 0 ||
            q.state != DEXC_STATE_FROZEN || q.handle != rg->rec[rgfn].ref)
            return -ENOENT;
    }
    guest_uncandidate(rg, rgfn);
    return object_new(d, rg->group, data, page_hash(data), obj);
}

static int try_patch(struct guest *g, uint64_t gfn, const uint8_t *page,
                     const struct simdetect_keys *k)
{
    struct daemon *d = g->d;
    uint8_t *check = d->scratch;
    uint32_t obj;
    ssize_t len;
    int rc;

    if (find_reference(g, gfn, k, &obj) != 0)
        return -ENOENT;
    object_ref(d, obj);     /* a fresh object lives only while used */
    len = patch_encode(g->pc, object_data(d, obj), page, d->encbuf,
                       g->pol.patch_threshold);
    if (len <= 0) {
        if (len == PATCH_TOO_BIG)
            g->st.patch_rejected++;
        object_unref(d, obj);
        return -E2BIG;
    }
    /* never reclaim what we could not give back */
    rc = patch_decode(g->pc, object_data(d, obj), d->encbuf, (size_t)len, check);
    if (rc != 0 || memcmp(check, page, DE_PAGE_SIZE) != 0) {
        log_warnx("guest %s: patch of gfn %llu did not round-trip", g->name,
                  (unsigned long long)gfn);
        object_unref(d, obj);
        return -EIO;
    }
    rc = store_and_reclaim(g, gfn, d->encbuf, (size_t)len, PR_PATCHED, obj);
    object_unref(d, obj);
    return rc;
}

static int try_compress(struct guest *g, uint64_t gfn, const uint8_t *page)
{
    struct daemon *d = g->d;
    uint8_t *check = d->scratch;
    ssize_t len;

    len = compressor_encode(g->cc, page, d->encbuf, g->pol.compress_threshold);
    if (len <= 0) {
        if (len == COMP_TOO_BIG)
            g->st.compress_rejected++;
        return -E2BIG;
    }
    if (compressor_decode(g->cc, d->encbuf, (size_t)len, check) != 0 ||
        memcmp(check, page, DE_PAGE_SIZE) != 0) {
        log_warnx("guest %s: compression of gfn %llu did not round-trip",
                  g->name, (unsigned long long)gfn);
        return -EIO;
    }
    return store_and_reclaim(g, gfn, d->encbuf, (size_t)len, PR_COMPRESSED,
                             OBJ_NONE);
}

static uint64_t swap_tag(const struct guest *g, uint64_t gfn)
{
    return ((uint64_t)g->id << 40) | gfn;
}

static int swap_raw(struct guest *g, uint64_t gfn, const uint8_t *page)
{
    struct daemon *d = g->d;
    uint64_t slot;
    int rc;

    if (!d->swap)
        return -ENOSPC;
    rc = swapfile_write_tag(d->swap, swap_tag(g, gfn), page, DE_PAGE_SIZE, &slot);
    if (rc != 0)
        return rc;
    rc = reclaim_one(g, gfn);
    if (rc != 0) {
        swapfile_free(d->swap, slot);
        return rc;
    }
    g->rec[gfn].state = PR_SWAPPED;
    g->rec[gfn].enc = ENC_RAW;
    g->rec[gfn].flags = 0;
    g->rec[gfn].ref = slot;
    g->rec[gfn].len = DE_PAGE_SIZE;
    g->st.pages_swapped++;
    g->st.reclaimed[KIND_SWAPPED]++;
    g->st.swap_bytes += DE_PAGE_SIZE;
    return 0;
}

/* Moves an encoded page from the store to the swap file. */
static int swap_out_encoded(struct guest *g, uint64_t gfn)
{
    struct daemon *d = g->d;
    struct prec *r = &g->rec[gfn];
    uint64_t slot;
    int rc;

    rc = swapfile_write_tag(d->swap, swap_tag(g, gfn), store_ptr(d->store, r->ref),
                            r->len, &slot);
    if (rc != 0)
        return rc;
    store_free(d->store, r->ref);
    g->enc_bytes -= grain(r->len);
    if (r->state == PR_PATCHED) {
        g->st.pages_patched--;
        r->enc = ENC_PATCH;     /* keeps its reference object */
    } else {
        g->st.pages_compressed--;
        r->enc = ENC_COMPRESSED;
    }
    r->state = PR_SWAPPED;
    r->ref = slot;
    g->st.pages_swapped++;
    g->st.reclaimed[KIND_SWAPPED]++;
    g->st.swap_bytes += r->len;
    return 0;
}

/* Takes frozen page gfn through the pipeline; `page` is a copy of it read
 * after the freeze (a write since makes every reclaim fail: stale handle). */
static void process_frozen(struct guest *g, uint64_t gfn, const uint8_t *page)
{
    struct daemon *d = g->d;
    struct share_group *sg = &d->groups[g->group];
    struct prec *r = &g->rec[gfn];
    struct simdetect_keys k;
    uint64_t hash, twin;
    unsigned extra = cold_after(g, gfn) - 1;

    if (g->pol.share && page_is_zero(page)) {
        if (reclaim_one(g, gfn) == 0)
            zero_reclaimed(g, gfn);
        return;
    }
    hash = page_hash(page);
    /* Look up without ourselves in the index, so a twin is someone else. */
    guest_uncandidate(g, gfn);
    if (g->pol.share && share_index_lookup(sg->si, page, hash, &twin) == 1) {
        if (share_with(g, gfn, page, hash, twin) == 0 ||
            r->state != PR_FROZEN)
            return;
    }
    if (r->state != PR_FROZEN)
        return;
    /* A failed patch is retried a few sweeps later (new references may
     * have come), a failed compression never while the page is unchanged. */
    if (g->pol.patch && r->age >= g->pol.nru_patch_age + extra &&
        (!(r->flags & PF_NO_PATCH) || r->age % 4 == 0)) {
        simdetect_keys(sg->sd, page, &k);
        if (try_patch(g, gfn, page, &k) == 0 || r->state != PR_FROZEN)
            return;
        r->flags |= PF_NO_PATCH;
    }
    if (g->pol.compress && r->age >= g->pol.nru_compress_age + extra &&
        !(r->flags & PF_NO_COMPRESS)) {
        if (try_compress(g, gfn, page) == 0 || r->state != PR_FROZEN)
            return;
        r->flags |= PF_NO_COMPRESS;
    }
    if (g->pol.swap && d->swap &&
        r->age >= g->pol.nru_compress_age + SWAP_RAW_EXTRA_AGE + extra) {
        if (swap_raw(g, gfn, page) == 0 || r->state != PR_FROZEN)
            return;
    }
    /* Still here: a candidate for the pages that come after it. */
    if (g->pol.share && share_index_insert(sg->si, hash, cand_id(g, gfn)) == 0) {
        g->cand_hash[gfn] = hash;
        r->indexed = 1;
    }
    if (g->pol.patch && !(r->flags & PF_OFFERED)) {
        simdetect_keys(sg->sd, page, &k);
        group_offer_reference(d, g->group, &k, cand_id(g, gfn));
        r->flags |= PF_OFFERED;
    }
}

/* Reclaims the zero pages among a chunk's copies in one call: the most
 * common reclaim, and one hypercall per page is what costs on Xen. Pages
 * left frozen (a failed call) go the one-page way in process_frozen. */
static void reclaim_zeros(struct guest *g, const uint64_t *gfns,
                          const int *rcs, size_t n)
{
    struct daemon *d = g->d;
    struct dexc_page p[SCAN_CHUNK];
    size_t k = 0;

    if (!g->pol.share)
        return;
    for (size_t i = 0; i < n; i++)
        if (rcs[i] == 0 && page_is_zero(d->chunkbuf[i]))
            p[k++] = (struct dexc_page){ .gfn = gfns[i],
                                         .handle = g->rec[gfns[i]].ref };
    if (!k || dexc_reclaim(g->dx, p, k) < 0)
        return;
    for (size_t j = 0; j < k; j++) {
        if (p[j].rc == 0) {
            guest_uncandidate(g, p[j].gfn);
            zero_reclaimed(g, p[j].gfn);
        } else if (p[j].rc == -EAGAIN) {
            handle_went_stale(g, p[j].gfn);
        }
    }
}

/* Reads the frozen pages among [base, base + m) in one batch (one
 * foreign mapping on Xen rather than one per page) into d->chunkbuf, and
 * takes each through the pipeline. The mapping is gone before any page
 * is reclaimed (a mapped page cannot be). */
static void process_chunk(struct guest *g, uint64_t base, size_t m)
{
    struct daemon *d = g->d;
    uint64_t gfns[SCAN_CHUNK];
    const void *ptrs[SCAN_CHUNK];
    int rcs[SCAN_CHUNK];
    dexc_mapping *map = NULL;
    size_t n = 0;

    for (size_t i = 0; i < m; i++)
        if (g->rec[base + i].state == PR_FROZEN)
            gfns[n++] = base + i;
    if (!n)
        return;
    if (dexc_map_ro(g->dx, gfns, n, ptrs, rcs, &map) <= 0) {
        dexc_unmap(g->dx, map);
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (rcs[i] == 0)
            memcpy(d->chunkbuf[i], ptrs[i], DE_PAGE_SIZE);
    dexc_unmap(g->dx, map);
    reclaim_zeros(g, gfns, rcs, n);
    for (size_t i = 0; i < n && !g->gone; i++)
        if (rcs[i] == 0 && g->rec[gfns[i]].state == PR_FROZEN)
            process_frozen(g, gfns[i], d->chunkbuf[i]);
}

/* Scans [first, first + n) chunk by chunk until `deadline` (monotonic ns)
 * has passed; returns the pages scanned. */
static uint64_t scan_slice(struct guest *g, uint64_t first, uint64_t n,
                           uint64_t deadline)
{
    struct daemon *d = g->d;
    uint8_t bits[SCAN_CHUNK];
    struct dexc_page fz[SCAN_CHUNK];
    uint64_t off;

    for (off = 0; off < n && !g->gone; off += SCAN_CHUNK) {
        size_t m = n - off < SCAN_CHUNK ? n - off : SCAN_CHUNK, nf = 0;
        uint64_t base = first + off;

        if (off && stats_now_ns() > deadline)
            break;

        if (dexc_harvest(g->dx, base, m, bits, 0) < 0)
            return off;
        for (size_t i = 0; i < m; i++) {
            struct prec *r = &g->rec[base + i];
            uint8_t *w = &g->wtrack[base + i];
            bool used = bits[i] & (DEXC_AD_ACCESSED | DEXC_AD_DIRTY);

            if (r->state <= PR_FROZEN && (used || (*w & WT_SKIP))) {
                r->age = 0;
                if (*w & WT_SKIP) {
                    (*w)--;             /* not re-armed: still counts as used */
                } else {
                    unsigned lvl = *w >> 4;
                    lvl += lvl < WT_MAX_LEVEL;
                    *w = (uint8_t)(lvl << 4 | ((1u << lvl) - 1));
                }
                continue;
            }
            if (*w >> 4)                /* re-armed and found clean: cool down */
                *w = (uint8_t)(((*w >> 4) - 1) << 4);
            if (r->age < AGE_MAX)
                r->age++;
            if (r->state > PR_FROZEN && r->age % 8 == 0 && g->heat[base + i])
                g->heat[base + i]--;
            if (r->state == PR_NORMAL && r->age >= cold_after(g, base + i))
                fz[nf++] = (struct dexc_page){ .gfn = base + i };
        }
        /* Re-arm dirty tracking only where it is due: one write fault per
         * re-armed page is the price of seeing writes on this backend. */
        for (size_t i = 0; i < m;) {
            size_t j = i;

            while (j < m && !(g->wtrack[base + j] & WT_SKIP))
                j++;
            if (j > i)
                dexc_harvest(g->dx, base + i, j - i, NULL, DEXC_HARVEST_CLEAR);
            while (j < m && (g->wtrack[base + j] & WT_SKIP))
                j++;
            i = j;
        }
        if (nf && dexc_freeze(g->dx, fz, nf) >= 0) {
            for (size_t i = 0; i < nf; i++)
                if (fz[i].rc == 0) {
                    struct prec *r = &g->rec[fz[i].gfn];
                    r->state = PR_FROZEN;
                    r->ref = fz[i].handle;
                    r->flags = 0;
                }
        }
        process_chunk(g, base, m);
        g->st.pages_scanned += m;
        /* Over budget: the coldest encoded pages go to the swap file. */
        if (d->swap && g->pol.swap &&
            store_footprint(d->store) > d->cfg->store_budget) {
            for (size_t i = 0; i < m; i++) {
                struct prec *r = &g->rec[base + i];
                if ((r->state == PR_COMPRESSED || r->state == PR_PATCHED) &&
                    r->age >= g->pol.nru_compress_age &&
                    swap_out_encoded(g, base + i) != 0)
                    break;
            }
        }
    }
    return off < n ? off : n;
}

/* The clock went round g once; now and then it re-learns g's RAM. */
static void sweep_done(struct guest *g)
{
    if (++g->sweeps % RAM_MAP_SWEEPS == 0 && guest_map_ram(g) != 0)
        log_warnx("guest %s: RAM map not renewed: out of memory", g->name);
}

/* Scans up to scan_batch RAM pages of g from its hand, run by run, until
 * `deadline`; a sweep's end ends the guest's turn. */
static void scan_guest(struct daemon *d, uint32_t slot, struct guest *g,
                       uint64_t deadline)
{
    uint64_t budget = g->pol.scan_batch;

    if (!g->nram) {     /* no RAM seen (yet): still ask again now and then */
        sweep_done(g);
        return;
    }
    while (budget && g->ram_cur < g->nram) {
        const struct ram_run *run = &g->ram[g->ram_cur];
        uint64_t n, done;

        if (g->hand < run->start)
            g->hand = run->start;
        n = run->end - g->hand < budget ? run->end - g->hand : budget;
        done = scan_slice(g, g->hand, n, deadline);
        if (d->guests[slot] != g || g->gone)
            return;     /* left while we scanned */
        g->hand += done;
        budget -= done;
        if (g->hand < run->end) {
            if (done < n)
                return; /* out of time: go on from here next tick */
            continue;
        }
        if (++g->ram_cur == g->nram) {
            g->hand = 0;
            g->ram_cur = 0;
            sweep_done(g);
            return;
        }
    }
}

/* A tick scans for at most half the scan interval, shared out among the
 * guests (time a guest leaves unused goes to the next): the loop must
 * come back to serve faults and the control socket, and where pages cost
 * much (Xen under emulation, a loaded host) a fixed scan_batch could hold
 * it for seconds. The rest of a batch waits for the next tick. */
void scan_tick(struct daemon *d)
{
    uint64_t t0 = stats_now_ns();
    uint64_t span = (uint64_t)d->cfg->scan_interval_ms * 1000000u / 2;
    uint32_t active = 0, k = 0;

    for (uint32_t i = 0; i < d->nguests_cap; i++) {
        struct guest *g = d->guests[i];
        active += g && !g->gone && !g->paused && g->pol.enable;
    }
    for (uint32_t i = 0; i < d->nguests_cap && !d->stopping; i++) {
        struct guest *g = d->guests[i];
        uint64_t c0;

        if (!g || g->gone || g->paused || !g->pol.enable)
            continue;
        k++;
        c0 = stats_thread_cpu_ns();
        scan_guest(d, i, g, t0 + span * k / (active ? active : 1));
        if (d->guests[i] == g)
            g->st.scan_cpu_ns += stats_thread_cpu_ns() - c0;
    }
}

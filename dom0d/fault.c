/*
 * fault.c - serving guest faults on reclaimed pages.
 *
 * Faults come before policy work: the event loop runs this callback as
 * soon as a guest's event fd is readable, and the scan only does bounded
 * batches between them.
 */
#include <errno.h>
#include <string.h>

#include "dom0d.h"
#include "log.h"
#include "page.h"
#include "swapfile.h"

static struct patch_codec *patch_decoder(struct daemon *d, unsigned id)
{
    if (id >= PATCH_NCODECS)
        return NULL;
    if (!d->dec_pc[id])
        d->dec_pc[id] = patch_codec_new((enum patch_codec_id)id, 0);
    return d->dec_pc[id];
}

struct compressor *daemon_decompressor(struct daemon *d, unsigned id)
{
    if (id >= COMP_NCOMPRESSORS)
        return NULL;
    if (!d->dec_cc[id])
        d->dec_cc[id] = compressor_new((enum compressor_id)id, 0);
    return d->dec_cc[id];
}

static int unpatch(struct daemon *d, unsigned codec, const void *ref,
                   const void *enc, size_t len, void *page)
{
    struct patch_codec *pc = patch_decoder(d, codec);

    return pc && ref ? patch_decode(pc, ref, enc, len, page) : -EIO;
}

static int uncompress(struct daemon *d, unsigned id, const void *enc,
                      size_t len, void *page)
{
    struct compressor *cc = daemon_decompressor(d, id);

    return cc ? compressor_decode(cc, enc, len, page) : -EIO;
}

/* Rebuilds page gfn of g into `page` from what the daemon holds. */
int fault_decode(struct guest *g, uint64_t gfn, void *page,
                 enum page_kind *kind)
{
    struct daemon *d = g->d;
    struct prec *r = &g->rec[gfn];
    const void *ref;
    size_t len;
    int rc;

    switch (r->state) {
    case PR_ZERO:
        *kind = KIND_ZERO;
        memset(page, 0, DE_PAGE_SIZE);
        return 0;
    case PR_SHARED:
        *kind = KIND_SHARED;
        ref = object_data(d, r->obj);
        if (!ref)
            return -EIO;
        memcpy(page, ref, DE_PAGE_SIZE);
        return 0;
    case PR_PATCHED:
        *kind = KIND_PATCHED;
        ref = object_data(d, r->obj);
        if (!ref)
            return -EIO;
        return unpatch(d, r->flags, ref, store_ptr(d->store, r->ref), r->len,
                       page);
    case PR_COMPRESSED:
        *kind = KIND_COMPRESSED;
        return uncompress(d, r->flags, store_ptr(d->store, r->ref), r->len,
                          page);
    case PR_SWAPPED:
        *kind = KIND_SWAPPED;
        if (!d->swap)
            return -EIO;
        rc = swapfile_read(d->swap, r->ref, d->encbuf, sizeof d->encbuf, &len);
        if (rc != 0) {
            log_warnx("guest %s: gfn %llu: swap file: %s", g->name,
                      (unsigned long long)gfn, swapfile_strerror(rc));
            return rc;
        }
        switch (r->enc) {
        case ENC_RAW:
            if (len != DE_PAGE_SIZE)
                return -EIO;
            memcpy(page, d->encbuf, DE_PAGE_SIZE);
            return 0;
        case ENC_COMPRESSED:
            return uncompress(d, r->flags, d->encbuf, len, page);
        default:
            ref = object_data(d, r->obj);
            return unpatch(d, r->flags, ref, d->encbuf, len, page);
        }
    default:
        return -ENOENT;
    }
}

/* Returns -ESRCH when the guest has gone (the caller releases it). */
static int serve_fault(struct guest *g, const struct dexc_event *ev)
{
    struct prec *r;
    struct dexc_page p = { .gfn = ev->gfn };
    enum page_kind kind = KIND_ZERO;
    uint64_t t0 = stats_now_ns();
    int rc;

    if (ev->gfn >= g->npages)
        return 0;
    r = &g->rec[ev->gfn];
    rc = fault_decode(g, ev->gfn, g->d->scratch, &kind);
    if (rc != 0) {
        /* Never hand the guest wrong bytes: it waits, and we say why. */
        g->st.errors++;
        log_warnx("guest %s: fault on gfn %llu (state %u) cannot be served: %s",
                  g->name, (unsigned long long)ev->gfn, r->state,
                  strerror(rc < 0 ? -rc : EIO));
        return 0;
    }
    rc = dexc_restore(g->dx, &p, 1, g->d->scratch, 0);
    if (rc == -ESRCH || p.rc == -ESRCH)
        return -ESRCH;
    if (rc < 0 || (p.rc != 0 && p.rc != -EEXIST)) {
        g->st.errors++;
        log_warnx("guest %s: restore of gfn %llu failed: %s", g->name,
                  (unsigned long long)ev->gfn,
                  strerror(-(rc < 0 ? rc : p.rc)));
        return 0;
    }
    guest_drop_record(g, ev->gfn);
    r->age = 0;
    if (g->heat[ev->gfn] < HEAT_MAX)
        g->heat[ev->gfn]++;
    g->st.faults++;
    stats_fault(&g->st, kind, stats_now_ns() - t0);
    return 0;
}

void fault_service(struct guest *g)
{
    struct dexc_event ev;
    int rc;

    /* Bounded, so one guest's storm cannot starve the others. */
    for (int i = 0; i < 256; i++) {
        rc = dexc_next_event(g->dx, &ev);
        if (rc <= 0) {
            if (rc < 0 && rc != -EAGAIN && rc != -ESRCH)
                log_warnx("guest %s: events: %s", g->name, strerror(-rc));
            if (rc == -ESRCH)
                guest_gone(g);
            return;
        }
        switch (ev.type) {
        case DEXC_EV_FAULT:
            if (serve_fault(g, &ev) == -ESRCH) {
                guest_gone(g);
                return;     /* g is freed */
            }
            break;
        case DEXC_EV_THAWED:
            if (ev.gfn < g->npages && g->rec[ev.gfn].state == PR_FROZEN) {
                guest_drop_record(g, ev.gfn);
                g->rec[ev.gfn].age = 0;
                g->st.cow_breaks++;
            }
            break;
        case DEXC_EV_GONE:
            guest_gone(g);
            return;     /* g is freed */
        default:
            break;
        }
    }
}

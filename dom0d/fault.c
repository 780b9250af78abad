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
        return patch_decode(g->pc, ref, store_ptr(d->store, r->ref), r->len,
                            page);
    case PR_COMPRESSED:
        *kind = KIND_COMPRESSED;
        return compressor_decode(g->cc, store_ptr(d->store, r->ref), r->len,
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
            return compressor_decode(g->cc, d->encbuf, len, page);
        default:
            ref = object_data(d, r->obj);
            return ref ? patch_decode(g->pc, ref, d->encbuf, len, page) : -EIO;
        }
    default:
        return -ENOENT;
    }
}

static void serve_fault(struct guest *g, const struct dexc_event *ev)
{
    struct prec *r;
    struct dexc_page p = { .gfn = ev->gfn };
    enum page_kind kind = KIND_ZERO;
    uint64_t t0 = stats_now_ns();
    int rc;

    if (ev->gfn >= g->npages)
        return;
    r = &g->rec[ev->gfn];
    rc = fault_decode(g, ev->gfn, g->d->scratch[1], &kind);
    if (rc != 0) {
        /* Never hand the guest wrong bytes: it waits, and we say why. */
        g->st.errors++;
        log_warnx("guest %s: fault on gfn %llu (state %u) cannot be served: %s",
                  g->name, (unsigned long long)ev->gfn, r->state,
                  strerror(rc < 0 ? -rc : EIO));
        return;
    }
    rc = dexc_restore(g->dx, &p, 1, g->d->scratch[1], 0);
    if (rc < 0 || (p.rc != 0 && p.rc != -EEXIST)) {
        g->st.errors++;
        log_warnx("guest %s: restore of gfn %llu failed: %s", g->name,
                  (unsigned long long)ev->gfn,
                  strerror(-(rc < 0 ? rc : p.rc)));
        return;
    }
    guest_drop_record(g, ev->gfn);
    r->age = 0;
    g->st.faults++;
    stats_fault(&g->st, kind, stats_now_ns() - t0);
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
            serve_fault(g, &ev);
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

/*
 * xen.c - the Xen backend: XENMEM_dex_op (the project's hypervisor patch,
 * CONFIG_MEM_DEX) through xencall hypercall buffers, read-only foreign
 * maps through libxenforeignmemory, fault events from the mem_paging
 * vm_event ring and copy-on-write ENOMEM events from the sharing ring.
 *
 * Exact per-gfn state. The library keeps one byte per gfn (enum
 * dexc_state). RECLAIMED is exact: only this handle reclaims a gfn and
 * only a restore (or the guest dropping the gfn) ends it, so dexc_map_ro
 * never foreign-maps a reclaimed gfn (which would make Xen post a FOREIGN
 * paging request to ourselves). FROZEN can go stale silently (a guest
 * write makes the gfn private again in Xen without telling us), which is
 * harmless: dexc_query asks Xen.
 *
 * Fallback. When the hypervisor has no XENMEM_dex_op (ENOSYS: a build with
 * only MEM_SHARING/MEM_PAGING), freeze/share use XENMEM_sharing_op
 * (xc_memshr_*), thaw unshares through a writable foreign map, query
 * reports the library's own state, restore uses xc_mem_paging_load;
 * reclaim and harvest are refused (-EOPNOTSUPP): reclaim needs the atomic
 * "frozen and unchanged -> paged" step that only MEM_DEX has. Without
 * MEM_SHARING either (Debian's stock hypervisor), dexc_open_xen refuses
 * with -ENOSYS.
 *
 * This file compiles against Debian 12's libxen-dev (Xen 4.17); it runs
 * only in dom0 of a Xen host (tests/xen boots one in QEMU).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <xenctrl.h>
#include <xencall.h>
#include <xenevtchn.h>
#include <xenforeignmemory.h>
#include <xen/vm_event.h>
#include <xen/hvm/params.h>

#include "private.h"
#include "xen_abi.h"

_Static_assert(sizeof(struct dexc_page) == sizeof(struct xen_dex_page),
               "struct dexc_page is laid out as xen_dex_page");
_Static_assert(sizeof(struct dexc_share) == sizeof(struct xen_dex_share),
               "struct dexc_share is laid out as xen_dex_share");

#define XG_BUF_PAGES 16                         /* entry buffer, 64 KiB */
#define XG_DATA_PAGES 64                        /* restore data, 256 KiB */
#define XG_PAGE_ENTRIES (XG_BUF_PAGES * DEXC_PAGE_SIZE / sizeof(struct xen_dex_page))
#define XG_SHARE_ENTRIES (XG_BUF_PAGES * DEXC_PAGE_SIZE / sizeof(struct xen_dex_share))
#define XG_BITS (XG_BUF_PAGES * DEXC_PAGE_SIZE)

struct xg_ring {
    bool enabled;
    const char *name;
    uint64_t pfn;                   /* the ring's gfn in the guest */
    void *page;
    vm_event_back_ring_t back;
    evtchn_port_t remote, local;
};

/* A paging request waiting for a restore (or a drop). */
struct xg_pending {
    uint64_t gfn;
    vm_event_request_t req;
};

struct xg_map {
    void *addr;
    size_t n;
};

struct xen_guest {
    dexc_guest g;                   /* first */
    uint32_t domid;
    bool dex;                       /* XENMEM_dex_op available */
    xc_interface *xch;
    xencall_handle *xcall;
    xenforeignmemory_handle *fmem;
    xenevtchn_handle *xce;
    int epfd;
    struct xg_ring paging, sharing;
    uint8_t *state;                 /* enum dexc_state per gfn */
    uint16_t *maps;                 /* dexc_map_ro references per gfn */
    struct xg_pending *pend;
    size_t npend, cappend;
    struct xen_dex_op *op;          /* xencall memory */
    void *buf;                      /* xencall memory, XG_BUF_PAGES */
    void *data;                     /* xencall memory, XG_DATA_PAGES */
    uint64_t enomem_events;
};

static struct xen_guest *XG(dexc_guest *g)
{
    return DEXC_CONTAINER(g, struct xen_guest, g);
}

/* ------------------------------------------------------------------ */
/* XENMEM_dex_op                                                       */

/* One hypercall; 0 or -errno (whole call). */
static int dex_call(struct xen_guest *x, unsigned op, uint16_t src_domid,
                    unsigned flags, uint32_t nr, void *list,
                    const void *data, uint64_t first_gfn)
{
    struct xen_dex_op *o = x->op;
    int rc;

    memset(o, 0, sizeof *o);
    o->op = op;
    o->domid = x->domid;
    o->src_domid = src_domid;
    o->flags = flags;
    o->nr = nr;
    o->list = (uintptr_t)list;
    o->data = (uintptr_t)data;
    o->first_gfn = first_gfn;
    rc = xencall2(x->xcall, __HYPERVISOR_memory_op, XENMEM_dex_op,
                  (uintptr_t)o);
    return rc < 0 ? -errno : 0;
}

static void count_states(const struct xen_guest *x, struct dexc_info *info)
{
    for (uint64_t i = 0; i < x->g.nr_pages; i++)
        switch (x->state[i]) {
        case DEXC_STATE_NORMAL: info->normal++; break;
        case DEXC_STATE_FROZEN: info->frozen++; break;
        case DEXC_STATE_SHARED: info->shared++; break;
        case DEXC_STATE_RECLAIMED: info->reclaimed++; break;
        default: break;
        }
}

/* ------------------------------------------------------------------ */
/* vm_event rings                                                      */

static void ring_respond(struct xen_guest *x, struct xg_ring *r,
                         const vm_event_request_t *req)
{
    vm_event_response_t rsp;

    memset(&rsp, 0, sizeof rsp);
    rsp.version = VM_EVENT_INTERFACE_VERSION;  /* Xen drops it otherwise */
    rsp.vcpu_id = req->vcpu_id;
    rsp.flags = req->flags & VM_EVENT_FLAG_VCPU_PAUSED;
    rsp.reason = req->reason;
    if (req->reason == VM_EVENT_REASON_MEM_PAGING) {
        rsp.u.mem_paging.gfn = req->u.mem_paging.gfn;
        rsp.u.mem_paging.flags = req->u.mem_paging.flags &
                                 MEM_PAGING_DROP_PAGE;
    } else if (req->reason == VM_EVENT_REASON_MEM_SHARING) {
        rsp.u.mem_sharing.gfn = req->u.mem_sharing.gfn;
    }
    *RING_GET_RESPONSE(&r->back, r->back.rsp_prod_pvt) = rsp;
    r->back.rsp_prod_pvt++;
    RING_PUSH_RESPONSES(&r->back);
}

static void ring_kick(struct xen_guest *x, struct xg_ring *r)
{
    if (r->enabled && xenevtchn_notify(x->xce, r->local) < 0)
        dxi_log(DEXC_LOG_WARN, "xen d%u: notify %s ring: %s", x->domid,
                r->name, strerror(errno));
}

static bool ring_get(struct xg_ring *r, vm_event_request_t *req)
{
    if (!r->enabled || !RING_HAS_UNCONSUMED_REQUESTS(&r->back))
        return false;
    *req = *RING_GET_REQUEST(&r->back, r->back.req_cons);
    r->back.req_cons++;
    r->back.sring->req_event = r->back.req_cons + 1;
    return true;
}

static int pend_add(struct xen_guest *x, uint64_t gfn,
                    const vm_event_request_t *req)
{
    if (x->npend == x->cappend) {
        size_t nc = x->cappend ? 2 * x->cappend : 16;
        struct xg_pending *np = realloc(x->pend, nc * sizeof *np);

        if (!np)
            return -ENOMEM;
        x->pend = np;
        x->cappend = nc;
    }
    x->pend[x->npend].gfn = gfn;
    x->pend[x->npend].req = *req;
    x->npend++;
    return 0;
}

static bool pend_has(const struct xen_guest *x, uint64_t gfn)
{
    for (size_t i = 0; i < x->npend; i++)
        if (x->pend[i].gfn == gfn)
            return true;
    return false;
}

/* Answers every request waiting on gfn; returns how many. */
static size_t pend_answer(struct xen_guest *x, uint64_t gfn)
{
    size_t i = 0, n = 0;

    while (i < x->npend) {
        if (x->pend[i].gfn == gfn) {
            ring_respond(x, &x->paging, &x->pend[i].req);
            x->pend[i] = x->pend[--x->npend];
            n++;
        } else {
            i++;
        }
    }
    return n;
}

/* Maps the ring page named by an HVM param, initialises it, enables the
 * ring with `enable`, binds its event channel and removes the page from
 * the guest's physmap (the guest must not scribble on it). */
static int ring_setup(struct xen_guest *x, struct xg_ring *r, int param,
                      int (*enable)(xc_interface *, uint32_t, uint32_t *),
                      int (*disable)(xc_interface *, uint32_t))
{
    xen_pfn_t pfn;
    uint32_t port;
    int rc, lport;

    if (xc_hvm_param_get(x->xch, x->domid, param, &r->pfn) < 0)
        return -errno;
    if (!r->pfn)
        return -ENOENT;         /* the toolstack set no ring page */
    pfn = r->pfn;
    r->page = xenforeignmemory_map(x->fmem, x->domid, PROT_READ | PROT_WRITE,
                                   1, &pfn, NULL);
    if (!r->page) {
        /* Removed by an earlier run: put a page back and retry. */
        if (xc_domain_populate_physmap_exact(x->xch, x->domid, 1, 0, 0,
                                             &pfn) < 0)
            return -errno;
        r->page = xenforeignmemory_map(x->fmem, x->domid,
                                       PROT_READ | PROT_WRITE, 1, &pfn, NULL);
        if (!r->page)
            return -errno;
    }
    memset(r->page, 0, DEXC_PAGE_SIZE);
    SHARED_RING_INIT((vm_event_sring_t *)r->page);
    BACK_RING_INIT(&r->back, (vm_event_sring_t *)r->page, DEXC_PAGE_SIZE);

    rc = enable(x->xch, x->domid, &port);
    if (rc < 0 && errno == EBUSY) {
        /* Left enabled by a previous daemon that died: take it over. */
        dxi_log(DEXC_LOG_WARN, "xen d%u: %s ring already enabled, "
                "re-enabling", x->domid, r->name);
        disable(x->xch, x->domid);
        rc = enable(x->xch, x->domid, &port);
    }
    if (rc < 0) {
        rc = -errno;
        xenforeignmemory_unmap(x->fmem, r->page, 1);
        r->page = NULL;
        return rc;
    }
    r->remote = port;
    lport = xenevtchn_bind_interdomain(x->xce, x->domid, port);
    if (lport < 0) {
        rc = -errno;
        disable(x->xch, x->domid);
        xenforeignmemory_unmap(x->fmem, r->page, 1);
        r->page = NULL;
        return rc;
    }
    r->local = lport;
    r->enabled = true;
    pfn = r->pfn;
    if (xc_domain_decrease_reservation_exact(x->xch, x->domid, 1, 0,
                                             &pfn) < 0)
        dxi_log(DEXC_LOG_WARN, "xen d%u: could not remove the %s ring "
                "page from the guest: %s", x->domid, r->name,
                strerror(errno));
    return 0;
}

static void ring_teardown(struct xen_guest *x, struct xg_ring *r,
                          int (*disable)(xc_interface *, uint32_t))
{
    if (!r->enabled)
        return;
    if (!x->g.gone && disable(x->xch, x->domid) < 0 && errno != ESRCH)
        dxi_log(DEXC_LOG_WARN, "xen d%u: disabling the %s ring: %s",
                x->domid, r->name, strerror(errno));
    xenevtchn_unbind(x->xce, r->local);
    xenforeignmemory_unmap(x->fmem, r->page, 1);
    r->page = NULL;
    r->enabled = false;
}

/* ------------------------------------------------------------------ */
/* ops                                                                 */

/* Entries the library refuses by itself, before Xen sees them. */
static int precheck(struct xen_guest *x, enum dexc_page_op op,
                    struct dexc_page *p)
{
    uint8_t s;

    if (p->gfn >= x->g.nr_pages)
        return -EINVAL;
    s = x->state[p->gfn];
    switch (op) {
    case DEXC_OP_FREEZE:
        return s == DEXC_STATE_RECLAIMED ? -ENODATA : 0;
    case DEXC_OP_RECLAIM:
        if (s == DEXC_STATE_RECLAIMED)
            return -ENODATA;
        return x->maps[p->gfn] ? -EBUSY : 0;
    case DEXC_OP_RESTORE:
        return s == DEXC_STATE_RECLAIMED ? 0 : -EEXIST;
    default:
        return 0;
    }
}

/* Applies a successful (or telling) per-entry result to our state. */
static void note_result(struct xen_guest *x, enum dexc_page_op op,
                        struct dexc_page *p)
{
    uint8_t *s = &x->state[p->gfn];

    switch (op) {
    case DEXC_OP_FREEZE:
        if (!p->rc && *s != DEXC_STATE_SHARED)
            *s = DEXC_STATE_FROZEN;
        break;
    case DEXC_OP_THAW:
        if (!p->rc)
            *s = DEXC_STATE_NORMAL;
        break;
    case DEXC_OP_QUERY:
        if (!p->rc) {
            if (p->state > XEN_DEX_STATE_PAGED)
                p->state = DEXC_STATE_OTHER;
            *s = p->state;      /* XEN_DEX_STATE_* == enum dexc_state */
            if (*s != DEXC_STATE_FROZEN)
                p->handle = 0;
        }
        break;
    case DEXC_OP_RECLAIM:
        if (!p->rc)
            *s = DEXC_STATE_RECLAIMED;
        else if (p->rc == -EAGAIN && *s == DEXC_STATE_FROZEN)
            *s = DEXC_STATE_NORMAL;
        break;
    case DEXC_OP_RESTORE:
        if (!p->rc || p->rc == -EEXIST)
            *s = DEXC_STATE_NORMAL;
        break;
    }
}

static int dex_page_op(struct xen_guest *x, enum dexc_page_op op,
                       struct dexc_page *pages, size_t n, const void *data,
                       unsigned flags)
{
    struct xen_dex_page *e = x->buf;
    size_t i = 0;
    int ok = 0, rc;

    while (i < n) {
        size_t idx[XG_DATA_PAGES > XG_PAGE_ENTRIES ? XG_DATA_PAGES : XG_PAGE_ENTRIES];
        size_t lim = op == DEXC_OP_RESTORE ? XG_DATA_PAGES : XG_PAGE_ENTRIES;
        uint32_t k = 0;

        for (; i < n && k < lim; i++) {
            int pre = precheck(x, op, &pages[i]);

            if (pre) {
                pages[i].rc = pre;
                continue;
            }
            memcpy(&e[k], &pages[i], sizeof e[k]);
            e[k].rc = 0;
            if (op == DEXC_OP_RESTORE)
                memcpy((char *)x->data + (size_t)k * DEXC_PAGE_SIZE,
                       (flags & DEXC_RESTORE_ZERO) ? (const void *)dxi_zero_page
                           : (const char *)data + i * DEXC_PAGE_SIZE,
                       DEXC_PAGE_SIZE);
            idx[k++] = i;
        }
        if (!k)
            continue;
        rc = dex_call(x, op, 0, 0, k, e, op == DEXC_OP_RESTORE ? x->data
                                                                : NULL, 0);
        if (rc) {
            if (rc == -ESRCH)
                x->g.gone = true;
            if (!ok)
                return rc;
            for (uint32_t j = 0; j < k; j++)
                pages[idx[j]].rc = rc;
            continue;
        }
        for (uint32_t j = 0; j < k; j++) {
            struct dexc_page *p = &pages[idx[j]];

            p->rc = e[j].rc;
            p->handle = e[j].handle;
            p->state = e[j].state;
            note_result(x, op, p);
            ok += p->rc == 0;
        }
    }
    return ok;
}

/* Without MEM_DEX: XENMEM_sharing_op one page at a time. */
static int fb_page_op(struct xen_guest *x, enum dexc_page_op op,
                      struct dexc_page *pages, size_t n, const void *data,
                      unsigned flags)
{
    int ok = 0;

    for (size_t i = 0; i < n; i++) {
        struct dexc_page *p = &pages[i];
        int pre = precheck(x, op, p);
        uint64_t h;

        if (pre) {
            p->rc = pre;
            continue;
        }
        switch (op) {
        case DEXC_OP_FREEZE:
            if (xc_memshr_nominate_gfn(x->xch, x->domid, p->gfn, &h) < 0) {
                p->rc = (errno == E2BIG || errno == EEXIST) ? -EBUSY
                                                             : -errno;
            } else {
                p->rc = 0;
                p->handle = h;
            }
            break;
        case DEXC_OP_THAW: {
            /* A writable foreign map unshares (no handle check here). */
            xen_pfn_t pfn = p->gfn;
            void *m = xenforeignmemory_map(x->fmem, x->domid,
                                           PROT_READ | PROT_WRITE, 1, &pfn,
                                           NULL);

            if (!m) {
                p->rc = -errno;
            } else {
                xenforeignmemory_unmap(x->fmem, m, 1);
                p->rc = 0;
            }
            break;
        }
        case DEXC_OP_QUERY:
            p->state = x->state[p->gfn];
            p->handle = 0;
            p->rc = 0;
            ok++;
            continue;           /* our own state: nothing to note */
        case DEXC_OP_RECLAIM:
            p->rc = -EOPNOTSUPP;
            break;
        case DEXC_OP_RESTORE:
            if (xc_mem_paging_load(x->xch, x->domid, p->gfn,
                                   (flags & DEXC_RESTORE_ZERO)
                                       ? (void *)dxi_zero_page
                                       : (void *)((const char *)data +
                                                  i * DEXC_PAGE_SIZE)) < 0)
                p->rc = errno == ENOENT ? -EEXIST : -errno;
            else
                p->rc = 0;
            break;
        }
        note_result(x, op, p);
        ok += p->rc == 0;
    }
    if (op == DEXC_OP_RECLAIM)
        dxi_log(DEXC_LOG_ERROR, "xen d%u: reclaim needs a hypervisor with "
                "CONFIG_MEM_DEX (XENMEM_dex_op); this one has only "
                "mem_sharing", x->domid);
    return ok;
}

/*
 * DEXC_RESTORE_FROZEN: freeze the restored pages and check that what is
 * frozen is what was restored (another vCPU may have written the page
 * between the two hypercalls); a page that differs is thawed and reported
 * with handle 0 (restored, NORMAL).
 */
static void restore_freeze(struct xen_guest *x, struct dexc_page *pages,
                           size_t n, const void *data, unsigned flags)
{
    for (size_t i = 0; i < n; i++) {
        struct dexc_page f;
        xen_pfn_t pfn;
        const void *want;
        void *m;
        bool same;

        if (pages[i].rc)
            continue;
        pages[i].handle = 0;
        f = pages[i];
        f.handle = 0;
        if ((x->dex ? dex_page_op(x, DEXC_OP_FREEZE, &f, 1, NULL, 0)
                    : fb_page_op(x, DEXC_OP_FREEZE, &f, 1, NULL, 0)) != 1)
            continue;
        pfn = f.gfn;
        want = (flags & DEXC_RESTORE_ZERO) ? (const void *)dxi_zero_page
               : (const char *)data + i * DEXC_PAGE_SIZE;
        m = xenforeignmemory_map(x->fmem, x->domid, PROT_READ, 1, &pfn,
                                 NULL);
        same = m && memcmp(m, want, DEXC_PAGE_SIZE) == 0;
        if (m)
            xenforeignmemory_unmap(x->fmem, m, 1);
        if (same) {
            pages[i].handle = f.handle;
        } else if (x->dex) {
            dex_page_op(x, DEXC_OP_THAW, &f, 1, NULL, 0);
        } else {
            fb_page_op(x, DEXC_OP_THAW, &f, 1, NULL, 0);
        }
    }
}

static int xen_page_op(dexc_guest *g, enum dexc_page_op op,
                       struct dexc_page *pages, size_t n, const void *data,
                       unsigned flags)
{
    struct xen_guest *x = XG(g);
    int ok;

    ok = x->dex ? dex_page_op(x, op, pages, n, data, flags)
                : fb_page_op(x, op, pages, n, data, flags);
    if (ok < 0 || op != DEXC_OP_RESTORE)
        return ok;

    if (flags & DEXC_RESTORE_FROZEN)
        restore_freeze(x, pages, n, data, flags);

    /* Wake the vCPUs waiting for restored pages (after the freeze, so a
     * woken vCPU's write is seen as a thaw). */
    {
        size_t woken = 0;

        for (size_t i = 0; i < n; i++)
            if (pages[i].rc == 0 || pages[i].rc == -EEXIST)
                woken += pend_answer(x, pages[i].gfn);
        if (woken)
            ring_kick(x, &x->paging);
    }
    return ok;
}

static int xen_share(dexc_guest *cli, dexc_guest *src, struct dexc_share *s,
                     size_t n, unsigned flags)
{
    struct xen_guest *c = XG(cli), *sx = src ? XG(src) : c;
    int ok = 0;

    if (!src) {
        /* No source frame: the daemon holds the one copy of the contents
         * (its canonical object) and the client page is reclaimed onto
         * it, as on uffd. The saving is the same as Xen sharing a frame;
         * the difference is that a read of the page faults too. */
        enum { CHUNK = 64 };
        struct dexc_page p[CHUNK];

        for (size_t i = 0; i < n; i += CHUNK) {
            size_t k = n - i < CHUNK ? n - i : CHUNK;
            int rc;

            for (size_t j = 0; j < k; j++)
                p[j] = (struct dexc_page){ .gfn = s[i + j].gfn,
                                           .handle = s[i + j].handle };
            rc = xen_page_op(cli, DEXC_OP_RECLAIM, p, k, NULL, 0);
            if (rc < 0) {
                if (!ok)
                    return rc;
                for (size_t j = 0; j < k; j++)
                    s[i + j].rc = rc;
                continue;
            }
            for (size_t j = 0; j < k; j++) {
                s[i + j].rc = p[j].rc;
                ok += p[j].rc == 0;
            }
        }
        return ok;
    }

    if (!c->dex) {
        for (size_t i = 0; i < n; i++) {
            if (s[i].gfn >= cli->nr_pages ||
                s[i].src_gfn >= sx->g.nr_pages) {
                s[i].rc = -EINVAL;
                continue;
            }
            if (xc_memshr_share_gfns(c->xch, sx->domid, s[i].src_gfn,
                                     s[i].src_handle, c->domid, s[i].gfn,
                                     s[i].handle) < 0)
                s[i].rc = (errno == ECHILD || errno == EBADF) ? -EAGAIN
                                                              : -errno;
            else
                s[i].rc = 0;
            if (!s[i].rc) {
                c->state[s[i].gfn] = DEXC_STATE_SHARED;
                sx->state[s[i].src_gfn] = DEXC_STATE_SHARED;
                ok++;
            }
        }
        return ok;
    }

    for (size_t i = 0; i < n;) {
        struct xen_dex_share *e = c->buf;
        size_t idx[XG_SHARE_ENTRIES];
        uint32_t k = 0;
        int rc;

        for (; i < n && k < XG_SHARE_ENTRIES; i++) {
            if (s[i].gfn >= cli->nr_pages ||
                s[i].src_gfn >= sx->g.nr_pages) {
                s[i].rc = -EINVAL;
                continue;
            }
            e[k].cli_gfn = s[i].gfn;
            e[k].cli_handle = s[i].handle;
            e[k].src_gfn = s[i].src_gfn;
            e[k].src_handle = s[i].src_handle;
            e[k].cookie = s[i].canonical;
            e[k].rc = 0;
            e[k].pad = 0;
            idx[k++] = i;
        }
        if (!k)
            continue;
        rc = dex_call(c, XENMEM_dex_op_share, sx->domid, 0, k, e, NULL, 0);
        if (rc) {
            if (!ok)
                return rc;
            for (uint32_t j = 0; j < k; j++)
                s[idx[j]].rc = rc;
            continue;
        }
        for (uint32_t j = 0; j < k; j++) {
            struct dexc_share *p = &s[idx[j]];

            p->rc = e[j].rc;
            if (!p->rc) {
                c->state[p->gfn] = DEXC_STATE_SHARED;
                sx->state[p->src_gfn] = DEXC_STATE_SHARED;
                ok++;
            }
        }
    }
    return ok;
}

static int xen_harvest(dexc_guest *g, uint64_t first_gfn, size_t n,
                       uint8_t *bits, unsigned flags)
{
    struct xen_guest *x = XG(g);

    if (!x->dex)
        return -EOPNOTSUPP;
    while (n) {
        uint32_t k = n > XG_BITS ? XG_BITS : (uint32_t)n;
        int rc = dex_call(x, XENMEM_dex_op_harvest_ad, 0,
                          (flags & DEXC_HARVEST_CLEAR) ? XEN_DEX_F_CLEAR : 0,
                          k, x->buf, NULL, first_gfn);

        if (rc)
            return rc;
        if (bits) {
            memcpy(bits, x->buf, k);
            bits += k;
        }
        first_gfn += k;
        n -= k;
    }
    return 0;
}

static int xen_map_ro(dexc_guest *g, const uint64_t *gfns, size_t n,
                      const void **ptrs, int *rc, void **cookie)
{
    struct xen_guest *x = XG(g);
    xen_pfn_t *pfns = malloc(n * sizeof *pfns);
    int *err = malloc(n * sizeof *err);
    size_t *idx = malloc(n * sizeof *idx);
    struct xg_map *m = malloc(sizeof *m);
    size_t k = 0;
    int mapped = 0;

    if (!pfns || !err || !idx || !m) {
        free(pfns); free(err); free(idx); free(m);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        ptrs[i] = NULL;
        if (gfns[i] >= g->nr_pages)
            rc[i] = -EINVAL;
        else if (x->state[gfns[i]] == DEXC_STATE_RECLAIMED)
            rc[i] = -ENODATA;   /* never map a reclaimed gfn */
        else if (x->maps[gfns[i]] == UINT16_MAX)
            rc[i] = -EBUSY;
        else {
            rc[i] = 1;          /* to be mapped */
            pfns[k] = gfns[i];
            idx[k++] = i;
        }
    }
    m->addr = NULL;
    m->n = k;
    if (k) {
        m->addr = xenforeignmemory_map(x->fmem, x->domid, PROT_READ, k, pfns,
                                       err);
        if (!m->addr) {
            int e = -errno;

            for (size_t j = 0; j < k; j++)
                rc[idx[j]] = e;
            m->n = 0;
            if (e == -ESRCH)
                g->gone = true;
        } else {
            for (size_t j = 0; j < k; j++) {
                size_t i = idx[j];

                if (err[j]) {
                    rc[i] = err[j] == ENOENT ? -ENODATA : -abs(err[j]);
                    continue;
                }
                rc[i] = 0;
                ptrs[i] = (const char *)m->addr + j * DEXC_PAGE_SIZE;
                x->maps[gfns[i]]++;
                mapped++;
            }
        }
    }
    free(pfns);
    free(err);
    free(idx);
    *cookie = m;
    return mapped;
}

static void xen_unmap(dexc_guest *g, void *cookie, const uint64_t *gfns,
                      size_t n)
{
    struct xen_guest *x = XG(g);
    struct xg_map *m = cookie;

    for (size_t i = 0; i < n; i++)
        if (gfns[i] < g->nr_pages && x->maps[gfns[i]])
            x->maps[gfns[i]]--;
    if (m) {
        if (m->addr)
            xenforeignmemory_unmap(x->fmem, m->addr, m->n);
        free(m);
    }
}

static void xen_check_gone(dexc_guest *g)
{
    struct xen_guest *x = XG(g);
    xc_domaininfo_t info;
    int rc;

    if (g->gone)
        return;
    rc = xc_domain_getinfolist(x->xch, x->domid, 1, &info);
    if (rc < 0)
        return;                 /* can't tell: assume alive */
    if (rc == 0 || info.domain != x->domid ||
        (info.flags & XEN_DOMINF_dying))
        g->gone = true;
}

static void handle_paging_req(struct xen_guest *x, const vm_event_request_t *req)
{
    uint64_t gfn = req->u.mem_paging.gfn;
    struct dexc_event ev;

    if (req->version != VM_EVENT_INTERFACE_VERSION) {
        dxi_log(DEXC_LOG_WARN, "xen d%u: paging request version %u, "
                "expected %u", x->domid, req->version,
                VM_EVENT_INTERFACE_VERSION);
        ring_respond(x, &x->paging, req);
        return;
    }
    if (gfn >= x->g.nr_pages) {
        dxi_log(DEXC_LOG_WARN, "xen d%u: paging request for gfn %#" PRIx64
                " beyond the guest", x->domid, gfn);
        ring_respond(x, &x->paging, req);
        return;
    }
    if (req->u.mem_paging.flags & MEM_PAGING_DROP_PAGE) {
        /* The guest gave the gfn back (balloon): it has no contents. */
        x->state[gfn] = DEXC_STATE_OTHER;
        pend_answer(x, gfn);
        ring_respond(x, &x->paging, req);
        return;
    }
    if (x->state[gfn] != DEXC_STATE_RECLAIMED) {
        /* Already restored (a late duplicate): just let it go on. */
        ring_respond(x, &x->paging, req);
        return;
    }
    if (!pend_has(x, gfn)) {
        memset(&ev, 0, sizeof ev);
        ev.type = DEXC_EV_FAULT;
        ev.gfn = gfn;
        if (dxi_evq_push(&x->g, &ev) < 0) {
            /* Can't queue it: answer, the vCPU will fault again. */
            ring_respond(x, &x->paging, req);
            return;
        }
    }
    if (pend_add(x, gfn, req) < 0)
        ring_respond(x, &x->paging, req);
}

static int xen_poll_events(dexc_guest *g)
{
    struct xen_guest *x = XG(g);
    struct pollfd pfd = { .fd = xenevtchn_fd(x->xce), .events = POLLIN };
    vm_event_request_t req;
    bool answered_sharing = false;

    /* Acknowledge the event channels without blocking. */
    while (poll(&pfd, 1, 0) > 0 && (pfd.revents & POLLIN)) {
        xenevtchn_port_or_error_t port = xenevtchn_pending(x->xce);

        if (port < 0)
            break;
        xenevtchn_unmask(x->xce, port);
    }

    RING_IDX rsp_before = x->paging.back.rsp_prod_pvt;

    while (ring_get(&x->paging, &req))
        handle_paging_req(x, &req);

    while (ring_get(&x->sharing, &req)) {
        /* Copy-on-write found no memory for the guest: the vCPU is
         * paused. Tell the daemon through the log and let the vCPU retry;
         * the daemon's reclaim work frees memory. */
        x->enomem_events++;
        if (x->enomem_events < 10 || !(x->enomem_events % 1000))
            dxi_log(DEXC_LOG_WARN, "xen d%u: copy-on-write of gfn %#" PRIx64
                    " found no free memory (%" PRIu64 " times)", x->domid,
                    (uint64_t)req.u.mem_sharing.gfn, x->enomem_events);
        ring_respond(x, &x->sharing, &req);
        answered_sharing = true;
    }
    if (answered_sharing)
        ring_kick(x, &x->sharing);
    /* Duplicates and drops answered above. */
    if (x->paging.back.rsp_prod_pvt != rsp_before)
        ring_kick(x, &x->paging);
    return 0;
}

static bool xen_event_current(dexc_guest *g, struct dexc_event *ev)
{
    struct xen_guest *x = XG(g);

    if (ev->type != DEXC_EV_FAULT)
        return true;
    return ev->gfn < g->nr_pages &&
           x->state[ev->gfn] == DEXC_STATE_RECLAIMED;
}

static void xen_get_info(const dexc_guest *g, struct dexc_info *info)
{
    const struct xen_guest *x = DEXC_CONTAINER(g, const struct xen_guest, g);

    count_states(x, info);
}

static void xen_free(struct xen_guest *x)
{
    if (x->op)
        xencall_free_buffer(x->xcall, x->op);
    if (x->buf)
        xencall_free_buffer_pages(x->xcall, x->buf, XG_BUF_PAGES);
    if (x->data)
        xencall_free_buffer_pages(x->xcall, x->data, XG_DATA_PAGES);
    if (x->epfd >= 0)
        close(x->epfd);
    if (x->xce)
        xenevtchn_close(x->xce);
    if (x->fmem)
        xenforeignmemory_close(x->fmem);
    if (x->xcall)
        xencall_close(x->xcall);
    if (x->xch)
        xc_interface_close(x->xch);
    free(x->state);
    free(x->maps);
    free(x->pend);
}

static int xen_close(dexc_guest *g)
{
    struct xen_guest *x = XG(g);
    uint64_t reclaimed = 0;
    int rc = 0;

    if (!g->gone)
        xen_check_gone(g);
    if (!g->gone) {
        for (uint64_t i = 0; i < g->nr_pages; i++)
            reclaimed += x->state[i] == DEXC_STATE_RECLAIMED;
        if (reclaimed) {
            /* Their contents live only in the daemon: keep the paging
             * ring (faults stay pending in Xen) and say so. */
            dxi_log(DEXC_LOG_ERROR, "xen d%u: closed with %" PRIu64
                    " reclaimed pages; its vCPUs touching them will wait "
                    "until a daemon restores them", x->domid, reclaimed);
            rc = -EBUSY;
        }
    }
    /* Answer what we hold so no vCPU stays paused for nothing. */
    for (size_t i = 0; i < x->npend; i++)
        if (x->pend[i].gfn >= g->nr_pages ||
            x->state[x->pend[i].gfn] != DEXC_STATE_RECLAIMED)
            ring_respond(x, &x->paging, &x->pend[i].req);
    ring_kick(x, &x->paging);
    if (!rc)
        ring_teardown(x, &x->paging, xc_mem_paging_disable);
    else if (x->paging.enabled) {
        xenevtchn_unbind(x->xce, x->paging.local);
        xenforeignmemory_unmap(x->fmem, x->paging.page, 1);
        x->paging.enabled = false;
    }
    ring_teardown(x, &x->sharing, xc_memshr_ring_disable);
    xen_free(x);
    return rc;
}

const struct dexc_ops dxi_xen_ops = {
    .name = "xen",
    .page_op = xen_page_op,
    .share = xen_share,
    .harvest = xen_harvest,
    .map_ro = xen_map_ro,
    .unmap = xen_unmap,
    .poll_events = xen_poll_events,
    .check_gone = xen_check_gone,
    .event_current = xen_event_current,
    .get_info = xen_get_info,
    .close = xen_close,
};

/* ------------------------------------------------------------------ */
/* Opening                                                             */

static int epoll_add(int epfd, int fd)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

/* Learns every gfn's state from Xen (after a daemon restart some may
 * already be paged). */
static int initial_states(struct xen_guest *x)
{
    struct xen_dex_page *e = x->buf;
    uint64_t gfn = 0;

    while (gfn < x->g.nr_pages) {
        uint32_t k = 0;
        int rc;

        for (; gfn < x->g.nr_pages && k < XG_PAGE_ENTRIES; gfn++, k++) {
            memset(&e[k], 0, sizeof e[k]);
            e[k].gfn = gfn;
        }
        rc = dex_call(x, XENMEM_dex_op_query, 0, 0, k, e, NULL, 0);
        if (rc)
            return rc;
        for (uint32_t j = 0; j < k; j++)
            x->state[e[j].gfn] = e[j].rc ? DEXC_STATE_OTHER
                                 : (e[j].state > XEN_DEX_STATE_PAGED
                                        ? DEXC_STATE_OTHER : e[j].state);
    }
    return 0;
}

int dexc_open_xen(uint32_t domid, unsigned flags, dexc_guest **out)
{
    struct xen_guest *x;
    xc_domaininfo_t info;
    xen_pfn_t maxgpfn = 0;
    char name[32];
    int rc;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (flags || domid == 0 || domid >= DOMID_FIRST_RESERVED)
        return -EINVAL;
    x = calloc(1, sizeof *x);
    if (!x)
        return -ENOMEM;
    x->epfd = -1;
    x->domid = domid;
    x->paging.name = "paging";
    x->sharing.name = "sharing";

    x->xch = xc_interface_open(NULL, NULL, 0);
    x->xcall = xencall_open(NULL, 0);
    x->fmem = xenforeignmemory_open(NULL, 0);
    x->xce = xenevtchn_open(NULL, 0);
    if (!x->xch || !x->xcall || !x->fmem || !x->xce) {
        rc = errno ? -errno : -ENODEV;
        dxi_log(DEXC_LOG_ERROR, "xen: cannot open the Xen interfaces "
                "(not dom0 of a Xen host?): %s", strerror(-rc));
        goto fail;
    }
    rc = xc_domain_getinfolist(x->xch, domid, 1, &info);
    if (rc != 1 || info.domain != domid) {
        rc = -ESRCH;
        goto fail;
    }
    if (!(info.flags & XEN_DOMINF_hvm_guest)) {
        dxi_log(DEXC_LOG_ERROR, "xen d%u: not an HVM/PVH guest (PV guests "
                "cannot be frozen)", domid);
        rc = -EOPNOTSUPP;
        goto fail;
    }
    if (xc_domain_maximum_gpfn(x->xch, domid, &maxgpfn) < 0) {
        rc = -errno;
        goto fail;
    }
    snprintf(name, sizeof name, "d%u", domid);
    rc = dxi_guest_init(&x->g, &dxi_xen_ops, domid, 0, (uint64_t)maxgpfn + 1,
                        name);
    if (rc)
        goto fail_nofini;
    x->state = malloc(x->g.nr_pages);
    x->maps = calloc(x->g.nr_pages, sizeof *x->maps);
    x->op = xencall_alloc_buffer(x->xcall, sizeof *x->op);
    x->buf = xencall_alloc_buffer_pages(x->xcall, XG_BUF_PAGES);
    x->data = xencall_alloc_buffer_pages(x->xcall, XG_DATA_PAGES);
    if (!x->state || !x->maps || !x->op || !x->buf || !x->data) {
        rc = -ENOMEM;
        goto fail_fini;
    }
    memset(x->state, DEXC_STATE_NORMAL, x->g.nr_pages);

    /* Which hypervisor: MEM_DEX, plain mem_sharing, or neither. */
    rc = initial_states(x);
    if (rc == 0) {
        x->dex = true;
    } else if (rc == -ENOSYS) {
        if (xc_memshr_control(x->xch, domid, 1) < 0) {
            rc = -errno;
            dxi_log(DEXC_LOG_ERROR, "xen d%u: the hypervisor has neither "
                    "XENMEM_dex_op (CONFIG_MEM_DEX) nor memory sharing "
                    "(%s); boot the Difference Engine hypervisor "
                    "(hypervisor/README.md)", domid, strerror(-rc));
            if (rc == -ENOSYS || rc == -EOPNOTSUPP)
                rc = -ENOSYS;
            goto fail_fini;
        }
        dxi_log(DEXC_LOG_WARN, "xen d%u: no XENMEM_dex_op; falling back to "
                "mem_sharing: freeze/share/thaw only, no reclaim, no "
                "harvest", domid);
    } else {
        dxi_log(DEXC_LOG_ERROR, "xen d%u: XENMEM_dex_op query: %s", domid,
                strerror(-rc));
        goto fail_fini;
    }

    /* Rings: the guest is paused while they are set up. */
    if (xc_domain_pause(x->xch, domid) < 0) {
        rc = -errno;
        goto fail_fini;
    }
    rc = ring_setup(x, &x->sharing, HVM_PARAM_SHARING_RING_PFN,
                    xc_memshr_ring_enable, xc_memshr_ring_disable);
    if (rc)
        dxi_log(DEXC_LOG_WARN, "xen d%u: no sharing ring (%s): a "
                "copy-on-write that finds no memory will crash the guest",
                domid, strerror(-rc));
    if (x->dex) {
        rc = ring_setup(x, &x->paging, HVM_PARAM_PAGING_RING_PFN,
                        xc_mem_paging_enable, xc_mem_paging_disable);
        if (rc) {
            dxi_log(DEXC_LOG_ERROR, "xen d%u: cannot enable the paging "
                    "ring: %s (EMLINK: passthrough; EXDEV: "
                    "populate-on-demand, set memory = maxmem; ENODEV: no "
                    "HAP)", domid, strerror(-rc));
            xc_domain_unpause(x->xch, domid);
            goto fail_rings;
        }
    }
    xc_domain_unpause(x->xch, domid);

    x->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (x->epfd < 0 || epoll_add(x->epfd, xenevtchn_fd(x->xce)) ||
        epoll_add(x->epfd, x->g.q.efd)) {
        rc = -errno;
        goto fail_rings;
    }
    x->g.event_fd = x->epfd;
    if (x->dex && dex_call(x, XENMEM_dex_op_ad_control, 0, XEN_DEX_F_ENABLE,
                           0, NULL, NULL, 0))
        dxi_log(DEXC_LOG_INFO, "xen d%u: no accessed/dirty bits in the "
                "p2m; dexc_harvest will fail", domid);
    *out = &x->g;
    return 0;

fail_rings:
    ring_teardown(x, &x->paging, xc_mem_paging_disable);
    ring_teardown(x, &x->sharing, xc_memshr_ring_disable);
fail_fini:
    dxi_guest_fini(&x->g);
fail_nofini:
fail:
    xen_free(x);
    free(x);
    return rc;
}

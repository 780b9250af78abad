/*
 * core.c - the backend-neutral half of libdexc: argument checks, the event
 * queue, mapping objects and logging. Every public primitive lands here
 * and goes to the guest's backend through its ops table.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include "private.h"

const uint8_t dxi_zero_page[DEXC_PAGE_SIZE] __attribute__((aligned(4096)));

static dexc_log_fn *log_fn;
static void *log_ctx;

void dexc_set_logger(dexc_log_fn *fn, void *ctx)
{
    log_fn = fn;
    log_ctx = ctx;
}

void dxi_log(int level, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    int saved = errno;      /* callers often log between a failure and
                               reading errno */

    if (!log_fn)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_fn(log_ctx, level, msg);
    errno = saved;
}

const char *dexc_version(void)
{
    return PACKAGE_VERSION;
}

const char *dexc_state_name(uint32_t state)
{
    static const char *const names[] = {
        [DEXC_STATE_OTHER] = "other",
        [DEXC_STATE_NORMAL] = "normal",
        [DEXC_STATE_FROZEN] = "frozen",
        [DEXC_STATE_SHARED] = "shared",
        [DEXC_STATE_RECLAIMED] = "reclaimed",
        [DEXC_STATE_ABSENT] = "absent",
    };
    return state < sizeof names / sizeof names[0] ? names[state] : "?";
}

/* ------------------------------------------------------------------ */

int dxi_guest_init(dexc_guest *g, const struct dexc_ops *ops, uint32_t id,
                   int32_t pid, uint64_t nr_pages, const char *name)
{
    g->ops = ops;
    g->id = id;
    g->pid = pid;
    g->nr_pages = nr_pages;
    snprintf(g->name, sizeof g->name, "%s", name ? name : "");
    g->gone = false;
    memset(&g->q, 0, sizeof g->q);
    memset(&g->ctr, 0, sizeof g->ctr);
    g->event_fd = -1;
    g->q.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return g->q.efd < 0 ? -errno : 0;
}

void dxi_guest_fini(dexc_guest *g)
{
    free(g->q.ev);
    g->q.ev = NULL;
    if (g->q.efd >= 0)
        close(g->q.efd);
    g->q.efd = -1;
}

/* Keeps the eventfd's level equal to "queue not empty". */
static void evq_signal(struct dexc_evq *q)
{
    uint64_t v = 1;

    if (q->len && !q->efd_set) {
        if (write(q->efd, &v, sizeof v) == sizeof v)
            q->efd_set = true;
    } else if (!q->len && q->efd_set) {
        if (read(q->efd, &v, sizeof v) == sizeof v || errno == EAGAIN)
            q->efd_set = false;
    }
}

int dxi_evq_push(dexc_guest *g, const struct dexc_event *ev)
{
    struct dexc_evq *q = &g->q;

    if (q->len == q->cap) {
        size_t ncap = q->cap ? q->cap * 2 : 64;
        struct dexc_event *nev = malloc(ncap * sizeof *nev);

        if (!nev)
            return -ENOMEM;
        for (size_t i = 0; i < q->len; i++)
            nev[i] = q->ev[(q->head + i) % q->cap];
        free(q->ev);
        q->ev = nev;
        q->cap = ncap;
        q->head = 0;
    }
    q->ev[(q->head + q->len) % q->cap] = *ev;
    q->len++;
    return 0;
}

static bool evq_pop(struct dexc_evq *q, struct dexc_event *ev)
{
    if (!q->len)
        return false;
    *ev = q->ev[q->head];
    q->head = (q->head + 1) % q->cap;
    q->len--;
    return true;
}

void dxi_evq_clear(dexc_guest *g)
{
    g->q.len = 0;
    g->q.head = 0;
}

/* ------------------------------------------------------------------ */

int dexc_close(dexc_guest *g)
{
    int rc;

    if (!g)
        return 0;
    if (g->nr_mappings)
        dxi_log(DEXC_LOG_ERROR, "guest %u closed with %zu mappings not "
                "released: their pointers are now invalid", g->id,
                g->nr_mappings);
    rc = g->ops->close(g);
    dxi_guest_fini(g);
    free(g);
    return rc;
}

int dexc_get_info(const dexc_guest *g, struct dexc_info *info)
{
    if (!g || !info)
        return -EINVAL;
    memset(info, 0, sizeof *info);
    info->id = g->id;
    info->pid = g->pid;
    info->nr_pages = g->nr_pages;
    info->backend = g->ops->name;
    info->name = g->name;
    info->flags = g->info_flags | (g->gone ? DEXC_INFO_GONE : 0);
    info->faults = g->ctr.faults;
    info->thaws = g->ctr.thaws;
    info->wp_faults = g->ctr.wp_faults;
    info->zero_fills = g->ctr.zero_fills;
    g->ops->get_info(g, info);
    return 0;
}

int dexc_event_fd(const dexc_guest *g)
{
    return g ? g->event_fd : -EINVAL;
}

int dexc_next_event(dexc_guest *g, struct dexc_event *ev)
{
    bool drained = false;
    int rc = 0;

    if (!g || !ev)
        return -EINVAL;
    for (;;) {
        if (g->gone) {
            /* Faults of a dead guest are moot; its only event is GONE. */
            dxi_evq_clear(g);
            evq_signal(&g->q);
            memset(ev, 0, sizeof *ev);
            ev->type = DEXC_EV_GONE;
            return 1;
        }
        /* Queued events are older than whatever the kernel holds. */
        while (evq_pop(&g->q, ev))
            if (g->ops->event_current(g, ev)) {
                evq_signal(&g->q);
                if (ev->type == DEXC_EV_FAULT)
                    g->ctr.faults++;
                return 1;
            }
        if (drained) {
            /* Only when there is nothing to return: one check per batch. */
            g->ops->check_gone(g);
            if (g->gone)
                continue;
            evq_signal(&g->q);
            return rc;
        }
        rc = g->ops->poll_events(g);
        drained = true;
        if (rc > 0)
            rc = 0;
    }
}

/* ------------------------------------------------------------------ */

static int check_batch(dexc_guest *g, const void *entries, size_t n)
{
    if (!g || (n && !entries))
        return -EINVAL;
    if (g->gone)
        return -ESRCH;
    return 0;
}

static int page_op(dexc_guest *g, enum dexc_page_op op,
                   struct dexc_page *pages, size_t n, const void *data,
                   unsigned flags)
{
    int rc = check_batch(g, pages, n);

    if (rc)
        return rc;
    if (n > INT32_MAX)
        return -EINVAL;
    if (!n)
        return 0;
    rc = g->ops->page_op(g, op, pages, n, data, flags);
    /* The call may have read events out of the kernel: keep them visible
     * to poll(). */
    evq_signal(&g->q);
    return rc;
}

int dexc_freeze(dexc_guest *g, struct dexc_page *pages, size_t n)
{
    return page_op(g, DEXC_OP_FREEZE, pages, n, NULL, 0);
}

int dexc_thaw(dexc_guest *g, struct dexc_page *pages, size_t n)
{
    return page_op(g, DEXC_OP_THAW, pages, n, NULL, 0);
}

int dexc_query(dexc_guest *g, struct dexc_page *pages, size_t n)
{
    return page_op(g, DEXC_OP_QUERY, pages, n, NULL, 0);
}

int dexc_reclaim(dexc_guest *g, struct dexc_page *pages, size_t n)
{
    return page_op(g, DEXC_OP_RECLAIM, pages, n, NULL, 0);
}

int dexc_restore(dexc_guest *g, struct dexc_page *pages, size_t n,
                 const void *data, unsigned flags)
{
    if (flags & ~(DEXC_RESTORE_ZERO | DEXC_RESTORE_FROZEN))
        return -EINVAL;
    if (!data != !!(flags & DEXC_RESTORE_ZERO))
        return -EINVAL;
    return page_op(g, DEXC_OP_RESTORE, pages, n, data, flags);
}

int dexc_share(dexc_guest *cli, dexc_guest *src, struct dexc_share *shares,
               size_t n, unsigned flags)
{
    int rc = check_batch(cli, shares, n);

    if (rc)
        return rc;
    if (flags || n > INT32_MAX)
        return -EINVAL;
    if (src && src->ops != cli->ops)
        return -EINVAL;
    if (src && src->gone)
        return -ESRCH;
    for (size_t i = 0; i < n; i++)
        if (shares[i].pad)
            return -EINVAL;
    if (!n)
        return 0;
    rc = cli->ops->share(cli, src, shares, n, flags);
    evq_signal(&cli->q);
    if (src)
        evq_signal(&src->q);
    return rc;
}

int dexc_harvest(dexc_guest *g, uint64_t first_gfn, size_t n, uint8_t *bits,
                 unsigned flags)
{
    int rc = check_batch(g, "", n);

    if (rc)
        return rc;
    if (flags & ~DEXC_HARVEST_CLEAR)
        return -EINVAL;
    if (first_gfn > g->nr_pages || n > g->nr_pages - first_gfn)
        return -EINVAL;
    if (!n)
        return 0;
    rc = g->ops->harvest(g, first_gfn, n, bits, flags);
    evq_signal(&g->q);
    return rc;
}

int dexc_map_ro(dexc_guest *g, const uint64_t *gfns, size_t n,
                const void **ptrs, int *rc, dexc_mapping **out)
{
    dexc_mapping *m;
    int r, mapped;

    if (!out)
        return -EINVAL;
    *out = NULL;
    r = check_batch(g, gfns, n);
    if (r)
        return r;
    if (n && (!ptrs || !rc))
        return -EINVAL;
    if (n > INT32_MAX)
        return -EINVAL;
    m = malloc(sizeof *m + n * sizeof m->gfns[0]);
    if (!m)
        return -ENOMEM;
    m->g = g;
    m->cookie = NULL;
    m->n = 0;
    mapped = n ? g->ops->map_ro(g, gfns, n, ptrs, rc, &m->cookie) : 0;
    if (mapped < 0) {
        free(m);
        return mapped;
    }
    for (size_t i = 0; i < n; i++)
        if (rc[i] == 0)
            m->gfns[m->n++] = gfns[i];
    g->nr_mappings++;
    *out = m;
    return mapped;
}

void dexc_unmap(dexc_guest *g, dexc_mapping *m)
{
    if (!m)
        return;
    if (g != m->g)
        dxi_log(DEXC_LOG_ERROR, "dexc_unmap: mapping of guest %u released "
                "through guest %u", m->g->id, g ? g->id : 0);
    m->g->ops->unmap(m->g, m->cookie, m->gfns, m->n);
    m->g->nr_mappings--;
    free(m);
}

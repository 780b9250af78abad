/*
 * xendoms.c - de-dom0d's Xen deployment: the domains to manage come from
 * xenstore (xenstore.c) instead of the uffd attach socket, and are opened
 * with libdexc's Xen backend. Everything after adoption is the daemon's
 * ordinary pipeline (scan.c, fault.c, guest.c): this file only adopts,
 * re-configures and releases domains, publishes their statistics under
 * /local/domain/<id>/dex/stats/ and applies dex/target.
 *
 * dex/target (KiB) is the one key with no counterpart in the config file:
 * while the domain holds more memory than its target (pages with a frame:
 * normal and frozen), the daemon takes its unused pages after a single
 * sweep (nru_patch_age = nru_compress_age = 1) instead of the configured
 * ages; at or under the target the configured ages apply again. The
 * pipeline itself is unchanged: the target only makes it less patient.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "dom0d.h"
#include "log.h"
#include "page.h"
#include "xenstore.h"

#define XD_TICK_MS 2000         /* statistics and target checks */

struct xdom {
    uint32_t domid;
    uint64_t target_kb;         /* 0 = none */
    struct de_policy base;      /* the domain's policy without target */
    bool pressure;              /* over target: ages lowered */
};

struct xendoms {
    struct daemon *d;
    struct xs_watcher *w;
    struct event *tick;
    struct xdom *doms;
    size_t n, cap;
};

static struct guest *find_dom(struct daemon *d, uint32_t domid)
{
    for (uint32_t i = 0; i < d->nguests_cap; i++) {
        struct guest *g = d->guests[i];

        if (g && !g->gone && g->id == domid)
            return g;
    }
    return NULL;
}

static struct xdom *xd_find(struct xendoms *x, uint32_t domid)
{
    for (size_t i = 0; i < x->n; i++)
        if (x->doms[i].domid == domid)
            return &x->doms[i];
    return NULL;
}

static void xd_forget(struct xendoms *x, uint32_t domid)
{
    struct xdom *e = xd_find(x, domid);

    if (e)
        *e = x->doms[--x->n];
}

/* g's policy from the domain's own (xenstore) policy and its target. A
 * running guest keeps its sharing group: its candidates and objects live
 * in that group's index. */
static void apply(struct guest *g, struct xdom *e)
{
    char grp[CONFIG_NAME_MAX];

    snprintf(grp, sizeof grp, "%s", g->pol.share_group);
    g->pol = e->base;
    snprintf(g->pol.share_group, sizeof g->pol.share_group, "%s", grp);
    if (e->pressure) {
        g->pol.nru_patch_age = 1;
        g->pol.nru_compress_age = 1;
    }
    guest_apply_policy(g);
}

static void on_adopt(void *ctx, uint32_t domid, const struct xs_dom_policy *p)
{
    struct xendoms *x = ctx;
    struct daemon *d = x->d;
    char name[CONFIG_NAME_MAX];
    struct xdom *e;
    dexc_guest *dx;
    int rc;

    if (d->stopping)
        return;
    if (find_dom(d, domid))
        return;                 /* already ours */
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 8;
        struct xdom *n = realloc(x->doms, cap * sizeof *n);

        if (!n) {
            log_error("d%u: out of memory", domid);
            return;
        }
        x->doms = n;
        x->cap = cap;
    }
    rc = dexc_open_xen(domid, 0, &dx);
    if (rc != 0) {
        /* dexc's logger already said why (PV guest, passthrough, PoD, no
         * MEM_DEX hypervisor...). Toggling dex/enable retries. */
        log_warnx("d%u: cannot adopt the domain: %s", domid, strerror(-rc));
        return;
    }
    if (xs_watch_domain_name(x->w, domid, name, sizeof name) != 0)
        snprintf(name, sizeof name, "d%u", domid);
    rc = guest_adopt(d, dx, name, &p->policy);
    if (rc != 0) {
        log_warnx("d%u: cannot adopt the domain: %s", domid, strerror(-rc));
        dexc_close(dx);
        return;
    }
    e = &x->doms[x->n++];
    memset(e, 0, sizeof *e);
    e->domid = domid;
    e->target_kb = p->target_kb;
    e->base = p->policy;
    if (p->scan_rate)
        log_info("d%u: scan_rate %u pages/s = %u pages per %u ms tick",
                 domid, p->scan_rate, p->policy.scan_batch,
                 d->cfg->scan_interval_ms);
}

static void on_release(void *ctx, uint32_t domid, bool gone)
{
    struct xendoms *x = ctx;
    struct guest *g = find_dom(x->d, domid);
    int failed;

    xd_forget(x, domid);
    if (!g)
        return;                 /* never adopted, or already gone */
    if (gone) {
        log_info("guest %s (d%u) destroyed: dropping what the daemon held "
                 "for it", g->name, domid);
    } else {
        failed = guest_flush(g);
        if (failed)
            log_warnx("guest %s (d%u) disabled: %d pages could not be "
                      "given back", g->name, domid, failed);
        else
            log_info("guest %s (d%u) disabled: every page given back",
                     g->name, domid);
    }
    guest_gone(g);
}

static void on_changed(void *ctx, uint32_t domid, const struct xs_dom_policy *p)
{
    struct xendoms *x = ctx;
    struct guest *g = find_dom(x->d, domid);
    struct xdom *e = xd_find(x, domid);
    const char *cur;

    if (!g || !e)
        return;
    cur = x->d->groups[g->group].name;
    if (strcmp(p->policy.share_group, g->pol.share_group) != 0)
        log_info("guest %s (d%u): share_group '%s' applies when the domain "
                 "is next enabled (it stays in %s)", g->name, domid,
                 p->policy.share_group, cur);
    e->base = p->policy;
    if (e->target_kb != p->target_kb && !p->target_kb)
        e->pressure = false;
    e->target_kb = p->target_kb;
    apply(g, e);
    log_info("guest %s (d%u): policy from xenstore: share %s patch %s "
             "compress %s swap %s scan_batch %u target %llu KiB", g->name,
             domid, g->pol.share ? "on" : "off", g->pol.patch ? "on" : "off",
             g->pol.compress ? "on" : "off", g->pol.swap ? "on" : "off",
             g->pol.scan_batch, (unsigned long long)e->target_kb);
}

static void publish(struct xendoms *x, struct guest *g, struct xdom *e)
{
    const struct de_stats *s = &g->st;
    uint64_t reclaimed = s->pages_shared + s->pages_patched +
                         s->pages_compressed + s->pages_swapped;
    uint64_t held = g->enc_bytes + reclaimed * sizeof(struct prec);
    struct xs_dom_stats st = {
        .shared = s->pages_shared,
        .patched = s->pages_patched,
        .compressed = s->pages_compressed,
        .swapped = s->pages_swapped,
        .faults = s->faults,
        /* as de-ctl stats: per guest, canonical copies are the group's */
        .saved_kb = reclaimed * DE_PAGE_SIZE > held
                        ? (reclaimed * DE_PAGE_SIZE - held) >> 10 : 0,
    };
    struct dexc_info info;

    xs_stats_publish(x->w, e->domid, &st);
    if (!e->target_kb || dexc_get_info(g->dx, &info) != 0)
        return;
    uint64_t resident_kb = (info.normal + info.frozen) * (DE_PAGE_SIZE >> 10);
    bool over = resident_kb > e->target_kb;

    if (over != e->pressure) {
        e->pressure = over;
        log_info("guest %s (d%u): %llu KiB resident, target %llu KiB: %s",
                 g->name, e->domid, (unsigned long long)resident_kb,
                 (unsigned long long)e->target_kb,
                 over ? "reclaiming after one unused sweep"
                      : "configured ages again");
        apply(g, e);
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct xendoms *x = arg;

    (void)fd;
    (void)what;
    for (size_t i = 0; i < x->n;) {
        struct guest *g = find_dom(x->d, x->doms[i].domid);

        if (!g) {               /* left through its event fd (gone) */
            x->doms[i] = x->doms[--x->n];
            continue;
        }
        publish(x, g, &x->doms[i]);
        i++;
    }
}

int xendoms_start(struct daemon *d)
{
    static const struct xs_watch_ops ops = {
        .adopt = on_adopt,
        .release = on_release,
        .policy_changed = on_changed,
    };
    struct xendoms *x = calloc(1, sizeof *x);
    struct timeval tv = { XD_TICK_MS / 1000, (XD_TICK_MS % 1000) * 1000 };

    if (!x) {
        log_error("xen: out of memory");
        return -1;
    }
    x->d = d;
    d->xen = x;
    x->w = xs_watch_new(d->base, d->cfg, &ops, x);
    if (!x->w) {
        log_error("xen: no xenstore (is this dom0 with xenstored "
                  "running?)");
        goto fail;
    }
    x->tick = event_new(d->base, -1, EV_PERSIST, on_tick, x);
    if (!x->tick || event_add(x->tick, &tv) != 0) {
        log_error("xen: timer setup");
        goto fail;
    }
    log_info("xen: watching xenstore; a domain is managed once "
             "/local/domain/<id>/dex/enable is 1");
    return 0;
fail:
    xendoms_stop(d);
    return -1;
}

void xendoms_reload(struct daemon *d)
{
    if (d->xen && d->xen->w)
        xs_watch_set_defaults(d->xen->w, d->cfg);
}

void xendoms_stop(struct daemon *d)
{
    struct xendoms *x = d->xen;

    if (!x)
        return;
    if (x->tick)
        event_free(x->tick);
    xs_watch_free(x->w);
    free(x->doms);
    free(x);
    d->xen = NULL;
}

/*
 * xenstore.c - per-domain settings and statistics in xenstore (see
 * xenstore.h for the layout and the rules).
 */
#include "config.h"     /* dom0d/config.h: struct de_config, config_set */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "log.h"
#include "xenstore.h"      /* and libxenstore's <xenstore.h> */

#define XSW_DOMID_MAX 0x7ff0u           /* DOMID_FIRST_RESERVED */
#define TOK_INTRO "de:intro"
#define TOK_RELEASE "de:release"
#define TOK_DEX "de:dex:"               /* + domid */

struct xsw_dom {
    uint32_t domid;
    bool watched;
    bool adopted;
    bool dying;                         /* its xenstore directory is gone */
    char *last[XS_NKEYS];               /* last accepted raw value, or NULL */
    char *bad[XS_NKEYS];                /* last rejected raw value (warned
                                           once, not at every re-read) */
    struct xs_dom_policy pol;           /* effective */
    struct xsw_dom *next;
};

struct xs_watcher {
    struct xs_handle *xsh;
    struct event *ev;
    struct event *kick;                 /* initial scan, from the loop */
    struct de_config *defaults;
    struct xs_watch_ops ops;
    void *ctx;
    struct xsw_dom *doms;
};

static struct xsw_dom *dom_find(const struct xs_watcher *w, uint32_t domid)
{
    for (struct xsw_dom *d = w->doms; d; d = d->next)
        if (d->domid == domid)
            return d;
    return NULL;
}

static char *xs_get(struct xs_watcher *w, const char *path)
{
    unsigned len = 0;
    char *v = xs_read(w->xsh, XBT_NULL, path, &len);

    return v;               /* NUL-terminated by libxenstore */
}

/* Recomputes the effective policy of d from its accepted raw values. */
static void recompute(struct xs_watcher *w, struct xsw_dom *d,
                      struct xs_dom_policy *out)
{
    char err[256];

    memset(out, 0, sizeof *out);
    out->policy = w->defaults->policy;
    /* A domain is managed only when dom0 says so in its dex/enable: the
     * configuration's `enable` default would otherwise take over every
     * domain that boots. */
    out->policy.enable = false;
    for (size_t i = 0; i < XS_NKEYS; i++)
        if (d->last[i] && xs_policy_apply(w->defaults, i, d->last[i], out, err,
                                    sizeof err)) {
            /* Was valid before, not with the new defaults (e.g. swap
             * without a swap file any more): drop it. */
            log_warnx("xenstore d%u: dex/%s = '%s' no longer valid (%s), "
                      "ignored", d->domid, xs_key_name(i), d->last[i], err);
            free(d->last[i]);
            d->last[i] = NULL;
        }
}

/* Reads d's dex/ keys; a bad value keeps the previous setting. */
static void read_dom(struct xs_watcher *w, struct xsw_dom *d)
{
    char path[96], err[256];
    struct xs_permissions *perms;
    unsigned nperms = 0;
    struct xs_dom_policy trial;

    snprintf(path, sizeof path, "/local/domain/%u/dex", d->domid);
    perms = xs_get_permissions(w->xsh, XBT_NULL, path, &nperms);
    if (!perms) {
        char dompath[64];
        char *name;

        /* The toolstack removes /local/domain/<id> as it destroys the
         * domain: that is the domain going away, not a disable (its pages
         * cannot be given back any more). */
        snprintf(dompath, sizeof dompath, "/local/domain/%u/name", d->domid);
        name = xs_get(w, dompath);
        if (!name)
            d->dying = true;
        free(name);
        /* No dex/ directory: every key absent, defaults apply. */
        for (size_t i = 0; i < XS_NKEYS; i++) {
            free(d->last[i]);
            d->last[i] = NULL;
        }
        recompute(w, d, &d->pol);
        return;
    }
    if (nperms < 1 || perms[0].id != 0) {
        log_warnx("xenstore d%u: %s is owned by domain %u, not dom0: "
                  "ignored", d->domid, path, nperms ? perms[0].id : 0);
        free(perms);
        return;
    }
    free(perms);

    for (size_t i = 0; i < XS_NKEYS; i++) {
        char *v;

        snprintf(path, sizeof path, "/local/domain/%u/dex/%s", d->domid,
                 xs_key_name(i));
        v = xs_get(w, path);
        if (!v) {
            free(d->last[i]);
            d->last[i] = NULL;          /* absent: default */
            free(d->bad[i]);
            d->bad[i] = NULL;
            continue;
        }
        if (d->last[i] && strcmp(d->last[i], v) == 0) {
            free(d->bad[i]);
            d->bad[i] = NULL;
            free(v);
            continue;
        }
        if (d->bad[i] && strcmp(d->bad[i], v) == 0) {
            free(v);                    /* rejected already, said so once */
            continue;
        }
        /* Validate against the current policy (so swap sees swap_file). */
        recompute(w, d, &trial);
        if (xs_policy_apply(w->defaults, i, v, &trial, err, sizeof err)) {
            log_warnx("xenstore d%u: dex/%s = '%s' ignored: %s%s", d->domid,
                      xs_key_name(i), v, err,
                      d->last[i] ? " (previous value kept)" : "");
            free(d->bad[i]);
            d->bad[i] = v;
            continue;
        }
        free(d->bad[i]);
        d->bad[i] = NULL;
        free(d->last[i]);
        d->last[i] = v;
    }
    recompute(w, d, &d->pol);
}

static bool pol_equal(const struct xs_dom_policy *a,
                      const struct xs_dom_policy *b)
{
    /* The fields xenstore can change (memcmp would see padding). */
    return a->policy.enable == b->policy.enable &&
           a->policy.share == b->policy.share &&
           a->policy.patch == b->policy.patch &&
           a->policy.compress == b->policy.compress &&
           a->policy.swap == b->policy.swap &&
           a->policy.scan_batch == b->policy.scan_batch &&
           strcmp(a->policy.share_group, b->policy.share_group) == 0 &&
           a->target_kb == b->target_kb && a->scan_rate == b->scan_rate;
}

/* Reports what changed for d after its policy was (re)computed. */
static void report(struct xs_watcher *w, struct xsw_dom *d,
                   const struct xs_dom_policy *before)
{
    if (d->pol.policy.enable && !d->adopted) {
        d->adopted = true;
        log_info("xenstore: adopting d%u", d->domid);
        if (w->ops.adopt)
            w->ops.adopt(w->ctx, d->domid, &d->pol);
    } else if (!d->pol.policy.enable && d->adopted) {
        d->adopted = false;
        log_info("xenstore: releasing d%u (%s)", d->domid,
                 d->dying ? "destroyed" : "disabled");
        if (w->ops.release)
            w->ops.release(w->ctx, d->domid, d->dying);
    } else if (d->adopted && before && !pol_equal(before, &d->pol)) {
        if (w->ops.policy_changed)
            w->ops.policy_changed(w->ctx, d->domid, &d->pol);
    }
}

static void dom_free(struct xsw_dom *d)
{
    for (size_t i = 0; i < XS_NKEYS; i++) {
        free(d->last[i]);
        free(d->bad[i]);
    }
    free(d);
}

static void dom_remove(struct xs_watcher *w, struct xsw_dom *d)
{
    char path[64], tok[32];

    for (struct xsw_dom **pp = &w->doms; *pp; pp = &(*pp)->next)
        if (*pp == d) {
            *pp = d->next;
            break;
        }
    if (d->watched) {
        snprintf(path, sizeof path, "/local/domain/%u/dex", d->domid);
        snprintf(tok, sizeof tok, TOK_DEX "%u", d->domid);
        xs_unwatch(w->xsh, path, tok);  /* fails quietly if gone */
    }
    if (d->adopted) {
        log_info("xenstore: releasing d%u (gone)", d->domid);
        if (w->ops.release)
            w->ops.release(w->ctx, d->domid, true);
    }
    dom_free(d);
}

static void dom_add(struct xs_watcher *w, uint32_t domid)
{
    struct xsw_dom *d = calloc(1, sizeof *d);
    char path[64], tok[32];

    if (!d) {
        log_error("xenstore: out of memory for d%u", domid);
        return;
    }
    d->domid = domid;
    d->next = w->doms;
    w->doms = d;
    snprintf(path, sizeof path, "/local/domain/%u/dex", domid);
    snprintf(tok, sizeof tok, TOK_DEX "%u", domid);
    /* The watch fires once right away: that first event reads the keys. */
    if (xs_watch(w->xsh, path, tok))
        d->watched = true;
    else
        log_warn("xenstore: cannot watch %s", path);
    read_dom(w, d);
    report(w, d, NULL);
}

/* Brings the domain list up to date: new domains added, gone ones out. */
static void rescan(struct xs_watcher *w)
{
    unsigned num = 0;
    char **ents = xs_directory(w->xsh, XBT_NULL, "/local/domain", &num);
    struct xsw_dom *d, *next;

    if (!ents) {
        log_warn("xenstore: cannot list /local/domain");
        return;
    }
    for (unsigned i = 0; i < num; i++) {
        char *end;
        unsigned long id = strtoul(ents[i], &end, 10);

        if (*end || id == 0 || id >= XSW_DOMID_MAX)
            continue;           /* dom0 is never a guest */
        if (!dom_find(w, (uint32_t)id) &&
            xs_is_domain_introduced(w->xsh, (unsigned)id))
            dom_add(w, (uint32_t)id);
    }
    free(ents);
    for (d = w->doms; d; d = next) {
        next = d->next;
        if (!xs_is_domain_introduced(w->xsh, d->domid))
            dom_remove(w, d);
    }
}

static void on_watch(struct xs_watcher *w, const char *path, const char *tok)
{
    if (strcmp(tok, TOK_INTRO) == 0 || strcmp(tok, TOK_RELEASE) == 0) {
        rescan(w);
    } else if (strncmp(tok, TOK_DEX, strlen(TOK_DEX)) == 0) {
        unsigned long id = strtoul(tok + strlen(TOK_DEX), NULL, 10);
        struct xsw_dom *d = dom_find(w, (uint32_t)id);
        struct xs_dom_policy before;
        char stats[64];

        if (!d)
            return;
        snprintf(stats, sizeof stats, "/local/domain/%lu/dex/stats", id);
        if (strncmp(path, stats, strlen(stats)) == 0)
            return;             /* our own statistics */
        before = d->pol;
        read_dom(w, d);
        report(w, d, &before);
    }
}

static void on_xs_readable(evutil_socket_t fd, short what, void *arg)
{
    struct xs_watcher *w = arg;
    char **vec;

    (void)fd;
    (void)what;
    while ((vec = xs_check_watch(w->xsh)) != NULL) {
        on_watch(w, vec[XS_WATCH_PATH], vec[XS_WATCH_TOKEN]);
        free(vec);
    }
    if (errno != EAGAIN)
        log_warn("xenstore: reading watches");
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rescan(arg);
}

struct xs_watcher *xs_watch_new(struct event_base *base,
                                const struct de_config *defaults,
                                const struct xs_watch_ops *ops, void *ctx)
{
    struct xs_watcher *w = calloc(1, sizeof *w);
    struct timeval now = { 0, 0 };
    int fd;

    if (!w)
        return NULL;
    w->ops = *ops;
    w->ctx = ctx;
    w->defaults = xs_config_copy(defaults);
    if (!w->defaults)
        goto fail;
    w->xsh = xs_open(0);
    if (!w->xsh) {
        log_warn("xenstore: cannot connect to xenstored");
        goto fail;
    }
    fd = xs_fileno(w->xsh);
    if (fd < 0) {
        log_warn("xenstore: no watch fd");
        goto fail;
    }
    if (!xs_watch(w->xsh, "@introduceDomain", TOK_INTRO) ||
        !xs_watch(w->xsh, "@releaseDomain", TOK_RELEASE)) {
        log_warn("xenstore: cannot watch @introduceDomain/@releaseDomain");
        goto fail;
    }
    w->ev = event_new(base, fd, EV_READ | EV_PERSIST, on_xs_readable, w);
    w->kick = evtimer_new(base, on_kick, w);
    if (!w->ev || !w->kick || event_add(w->ev, NULL) ||
        evtimer_add(w->kick, &now)) {
        log_error("xenstore: cannot register events");
        goto fail;
    }
    return w;
fail:
    xs_watch_free(w);
    return NULL;
}

int xs_watch_set_defaults(struct xs_watcher *w,
                          const struct de_config *defaults)
{
    struct de_config *c = xs_config_copy(defaults);

    if (!c)
        return -1;
    config_free(w->defaults);
    w->defaults = c;
    for (struct xsw_dom *d = w->doms; d; d = d->next) {
        struct xs_dom_policy before = d->pol;

        recompute(w, d, &d->pol);
        report(w, d, &before);
    }
    return 0;
}

bool xs_watch_policy(const struct xs_watcher *w, uint32_t domid,
                     struct xs_dom_policy *out)
{
    const struct xsw_dom *d = dom_find(w, domid);

    if (!d)
        return false;
    *out = d->pol;
    return true;
}

int xs_watch_domain_name(struct xs_watcher *w, uint32_t domid, char *buf,
                         size_t len)
{
    char path[64];
    char *v;

    snprintf(path, sizeof path, "/local/domain/%u/name", domid);
    v = xs_get(w, path);
    if (!v || !*v) {
        free(v);
        return -1;
    }
    snprintf(buf, len, "%s", v);
    free(v);
    return 0;
}

int xs_stats_publish(struct xs_watcher *w, uint32_t domid,
                     const struct xs_dom_stats *st)
{
    const struct { const char *k; uint64_t v; } kv[] = {
        { "shared", st->shared }, { "patched", st->patched },
        { "compressed", st->compressed }, { "swapped", st->swapped },
        { "faults", st->faults }, { "saved_kb", st->saved_kb },
    };
    for (int attempt = 0; attempt < 3; attempt++) {
        xs_transaction_t t = xs_transaction_start(w->xsh);
        bool ok = t != XBT_NULL;

        for (size_t i = 0; ok && i < sizeof kv / sizeof kv[0]; i++) {
            char path[96], val[32];

            snprintf(path, sizeof path, "/local/domain/%u/dex/stats/%s",
                     domid, kv[i].k);
            snprintf(val, sizeof val, "%" PRIu64, kv[i].v);
            ok = xs_write(w->xsh, t, path, val, strlen(val));
        }
        if (t == XBT_NULL)
            break;
        if (xs_transaction_end(w->xsh, t, !ok) && ok)
            return 0;
        if (ok && errno == EAGAIN)
            continue;           /* conflicting transaction: retry */
        break;
    }
    log_warn("xenstore: publishing stats of d%u", domid);
    return -1;
}

void xs_watch_free(struct xs_watcher *w)
{
    if (!w)
        return;
    while (w->doms) {
        struct xsw_dom *d = w->doms;

        w->doms = d->next;
        if (d->watched && w->xsh) {
            char path[64], tok[32];

            snprintf(path, sizeof path, "/local/domain/%u/dex", d->domid);
            snprintf(tok, sizeof tok, TOK_DEX "%u", d->domid);
            xs_unwatch(w->xsh, path, tok);
        }
        dom_free(d);
    }
    if (w->ev)
        event_free(w->ev);
    if (w->kick)
        event_free(w->kick);
    if (w->xsh) {
        xs_unwatch(w->xsh, "@introduceDomain", TOK_INTRO);
        xs_unwatch(w->xsh, "@releaseDomain", TOK_RELEASE);
        xs_close(w->xsh);
    }
    if (w->defaults)
        config_free(w->defaults);
    free(w);
}

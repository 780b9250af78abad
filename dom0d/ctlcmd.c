/*
 * ctlcmd.c - what de-ctl's commands do in the daemon.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "control.h"
#include "dom0d.h"
#include "log.h"
#include "page.h"
#include "swapfile.h"

static void fill_gauges(const struct guest *g, struct de_stats *s)
{
    uint64_t reclaimed = s->pages_shared + s->pages_patched +
                         s->pages_compressed + s->pages_swapped;

    s->store_bytes = g ? g->enc_bytes : s->store_bytes;
    /* Per guest: its pages back in the daemon less its encodings and
     * records; canonical copies belong to the group and are charged in
     * the global figure. */
    s->saved_bytes = reclaimed * DE_PAGE_SIZE > s->store_bytes + reclaimed * 16
                         ? reclaimed * DE_PAGE_SIZE - s->store_bytes - reclaimed * 16
                         : 0;
}

static void guest_json(struct json_buf *j, struct guest *g)
{
    struct de_stats s = g->st;

    fill_gauges(g, &s);
    json_obj_begin(j);
    json_kv_str(j, "name", g->name);
    json_kv_u64(j, "id", g->id);
    json_kv_u64(j, "pages", g->npages);
    json_kv_u64(j, "ram_pages", g->ram_pages);
    json_kv_bool(j, "paused", g->paused);
    json_kv_str(j, "group", g->d->groups[g->group].name);
    stats_to_json(j, &s);
    {
        /* what the backend served without the daemon's policy seeing it:
         * the cost of tracking writes on uffd */
        struct dexc_info info;
        if (dexc_get_info(g->dx, &info) == 0) {
            json_kv_u64(j, "wp_faults", info.wp_faults);
            json_kv_u64(j, "zero_fills", info.zero_fills);
        }
    }
    json_obj_end(j);
}

static uint64_t index_bytes(const struct daemon *d)
{
    uint64_t b = 0;

    for (uint32_t i = 0; i < d->ngroups; i++)
        if (d->groups[i].users)
            b += share_index_bytes(d->groups[i].si) +
                 simdetect_bytes(d->groups[i].sd);
    return b;
}

static int cmd_stats(void *ctx, const char *name, struct json_buf *j,
                     char *err, size_t errlen)
{
    struct daemon *d = ctx;
    struct de_stats all = d->gone_st;
    uint64_t reclaimed, held, pages = 0;
    struct guest *only = NULL;

    if (name && !(only = guest_find(d, name))) {
        snprintf(err, errlen, "no guest '%s'", name);
        return -1;
    }
    /* gauges of guests that left are zero by now */
    all.pages_zero = all.pages_shared = all.pages_patched = 0;
    all.pages_compressed = all.pages_swapped = all.swap_bytes = 0;
    for (uint32_t i = 0; i < d->nguests_cap; i++)
        if (d->guests[i]) {
            stats_merge(&all, &d->guests[i]->st);
            pages += d->guests[i]->npages;
        }
    reclaimed = all.pages_shared + all.pages_patched + all.pages_compressed +
                all.pages_swapped;
    /* Globally every byte the daemon holds in memory counts: the store
     * (encodings and canonical copies), page records, index tables. */
    all.store_bytes = store_footprint(d->store);
    held = all.store_bytes + pages * sizeof(struct prec) + index_bytes(d);
    all.saved_bytes = reclaimed * DE_PAGE_SIZE > held
                          ? reclaimed * DE_PAGE_SIZE - held : 0;
    json_key(j, "global");
    json_obj_begin(j);
    json_kv_u64(j, "guest_pages", pages);
    json_kv_u64(j, "objects", d->nobj);
    json_kv_u64(j, "index_bytes", index_bytes(d));
    stats_to_json(j, &all);
    json_obj_end(j);
    json_key(j, "guests");
    json_arr_begin(j);
    for (uint32_t i = 0; i < d->nguests_cap; i++)
        if (d->guests[i] && (!only || only == d->guests[i]))
            guest_json(j, d->guests[i]);
    json_arr_end(j);
    return 0;
}

static int cmd_status(void *ctx, struct json_buf *j, char *err, size_t errlen)
{
    struct daemon *d = ctx;
    struct store_stats ss;
    unsigned n = 0;

    (void)err;
    (void)errlen;
    for (uint32_t i = 0; i < d->nguests_cap; i++)
        n += d->guests[i] != NULL;
    store_stats(d->store, &ss);
    json_kv_str(j, "version", DE_VERSION);
    json_kv_str(j, "backend",
                d->cfg->backend == DE_BACKEND_XEN ? "xen" : "uffd");
    json_kv_double(j, "uptime_s", (double)(stats_now_ns() - d->start_ns) / 1e9);
    json_kv_u64(j, "guests", n);
    json_kv_str(j, "config", d->cfg->source);
    json_kv_u64(j, "store_footprint", ss.footprint);
    json_kv_u64(j, "store_payload", ss.payload_bytes);
    json_kv_u64(j, "store_overhead", ss.overhead);
    json_kv_u64(j, "store_budget", d->cfg->store_budget);
    if (d->swap) {
        struct swapfile_stats sw;
        swapfile_stats(d->swap, &sw);
        json_kv_str(j, "swap_file", swapfile_path(d->swap));
        json_kv_u64(j, "swap_used", sw.used_bytes);
        json_kv_u64(j, "swap_capacity", sw.capacity_bytes);
    }
    return 0;
}

static int cmd_guests(void *ctx, struct json_buf *j, char *err, size_t errlen)
{
    struct daemon *d = ctx;

    (void)err;
    (void)errlen;
    json_key(j, "guests");
    json_arr_begin(j);
    for (uint32_t i = 0; i < d->nguests_cap; i++) {
        struct guest *g = d->guests[i];
        struct dexc_info info;

        if (!g)
            continue;
        dexc_get_info(g->dx, &info);
        json_obj_begin(j);
        json_kv_str(j, "name", g->name);
        json_kv_u64(j, "id", g->id);
        json_kv_i64(j, "pid", info.pid);
        json_kv_u64(j, "pages", g->npages);
        json_kv_u64(j, "ram_pages", g->ram_pages);
        json_kv_str(j, "group", d->groups[g->group].name);
        json_kv_bool(j, "enabled", g->pol.enable);
        json_kv_bool(j, "paused", g->paused);
        json_kv_u64(j, "sweeps", g->sweeps);
        json_obj_end(j);
    }
    json_arr_end(j);
    return 0;
}

static struct guest *need_guest(struct daemon *d, const char *name, char *err,
                                size_t errlen)
{
    struct guest *g = guest_find(d, name);

    if (!g)
        snprintf(err, errlen, "no guest '%s'", name);
    return g;
}

static int cmd_set(void *ctx, const char *name, const char *key,
                   const char *value, struct json_buf *j, char *err,
                   size_t errlen)
{
    struct daemon *d = ctx;
    bool all = strcmp(name, "*") == 0;
    struct guest *g = NULL;

    (void)j;
    if (!all && !(g = need_guest(d, name, err, errlen)))
        return -1;
    if (strcmp(key, "share_group") == 0) {
        snprintf(err, errlen, "share_group cannot change while a guest runs");
        return -1;
    }
    if (config_set(d->cfg, all ? NULL : g->name, key, value, err, errlen) != 0)
        return -1;
    /* "*" sets the default: every guest without its own value follows. */
    for (uint32_t i = 0; i < d->nguests_cap; i++) {
        struct guest *t = d->guests[i];
        char grp[CONFIG_NAME_MAX];

        if (!t || (!all && t != g))
            continue;
        snprintf(grp, sizeof grp, "%s", t->pol.share_group);
        config_for_guest(d->cfg, t->name, &t->pol);
        snprintf(t->pol.share_group, sizeof t->pol.share_group, "%s", grp);
        guest_apply_policy(t);
    }
    log_info("%s %s: %s = %s", all ? "every" : "guest", all ? "guest" : g->name,
             key, value);
    return 0;
}

static int cmd_pause(void *ctx, const char *name, struct json_buf *j,
                     char *err, size_t errlen)
{
    struct guest *g = need_guest(ctx, name, err, errlen);

    if (!g)
        return -1;
    g->paused = true;
    return 0;
}

static int cmd_resume(void *ctx, const char *name, struct json_buf *j,
                      char *err, size_t errlen)
{
    struct guest *g = need_guest(ctx, name, err, errlen);

    if (!g)
        return -1;
    g->paused = false;
    return 0;
}

static int cmd_flush(void *ctx, const char *name, struct json_buf *j,
                     char *err, size_t errlen)
{
    struct guest *g = need_guest(ctx, name, err, errlen);
    int failed;

    if (!g)
        return -1;
    /* Flushing leaves the guest paused: otherwise the next tick would
     * start taking its pages again. */
    g->paused = true;
    failed = guest_flush(g);
    if (failed) {
        snprintf(err, errlen, "%d pages could not be restored", failed);
        return -1;
    }
    json_kv_bool(j, "paused", true);
    return 0;
}

const struct ctl_ops dom0d_ctl_ops = {
    .status = cmd_status,
    .guests = cmd_guests,
    .stats = cmd_stats,
    .set = cmd_set,
    .pause = cmd_pause,
    .resume = cmd_resume,
    .flush = cmd_flush,
};

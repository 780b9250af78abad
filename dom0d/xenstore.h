/*
 * xenstore.h - per-domain Difference Engine settings from xenstore, for
 * de-dom0d on Xen (built only where libxen-dev was found: HAVE_XEN).
 *
 * Layout (written by dom0 only; the guest can read it):
 *
 *   /local/domain/<id>/dex/enable       0|1   manage this domain (absent:
 *                                             not managed)
 *   /local/domain/<id>/dex/share        0|1
 *   /local/domain/<id>/dex/patch        0|1
 *   /local/domain/<id>/dex/compress     0|1
 *   /local/domain/<id>/dex/swap         0|1   (needs swap_file in the config)
 *   /local/domain/<id>/dex/target       memory target of the guest, "0" =
 *                                       none, else a size in KiB or with a
 *                                       K/M/G/T suffix ("512M")
 *   /local/domain/<id>/dex/scan_rate    pages scanned per second, converted
 *                                       to the policy's scan_batch (pages per
 *                                       clock tick of scan_interval ms)
 *   /local/domain/<id>/dex/share_group  name; "" = shares with no one else
 *
 * Every value is validated like the config file's key of the same name
 * (config_set() on a scratch copy of the daemon's configuration): a bad
 * value is logged with its key and ignored, and the previous setting of
 * that key stays. A key that is absent takes the daemon's default (the
 * configuration's global policy). A dex/ directory not owned by dom0 is
 * ignored as a whole.
 *
 * Statistics are published under /local/domain/<id>/dex/stats/ (see
 * struct xs_dom_stats); writes there do not count as configuration
 * changes.
 *
 * Watches: @introduceDomain (new domains: read their dex/ and watch it),
 * @releaseDomain (domains gone: release them) and each domain's dex/
 * subtree. All callbacks run from the libevent loop given to
 * xs_watch_new, never from inside another call of this module.
 */
/*
 * libxenstore's header is also called xenstore.h, and the dom0d source
 * directory is on the include path, so <xenstore.h> finds this file:
 * pull the system header in from the rest of the search path first
 * (outside the guard: it has its own).
 */
#include_next <xenstore.h>

#ifndef DE_XENSTORE_H
#define DE_XENSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "xs_policy.h"    /* struct xs_dom_policy, the keys' rules */

struct event_base;
struct xs_watcher;

struct xs_watch_ops {
    /* A domain whose effective policy has enable = 1 appeared (or was
     * enabled). The daemon opens it (dexc_open_xen) and starts work. */
    void (*adopt)(void *ctx, uint32_t domid, const struct xs_dom_policy *p);
    /* An adopted domain was disabled (enable = 0, gone = false: the
     * daemon restores its pages and closes it) or is going away (gone =
     * true: its pages cannot be given back, the daemon just drops them). */
    void (*release)(void *ctx, uint32_t domid, bool gone);
    /* An adopted domain's settings changed (enable stays 1). */
    void (*policy_changed)(void *ctx, uint32_t domid,
                           const struct xs_dom_policy *p);
};

/* Connects to xenstored, sets the watches and arranges for callbacks from
 * `base`. `defaults` is the daemon's configuration (its global policy is
 * the default of every key; its swap_file and scan_interval_ms matter for
 * validation); it is copied, call xs_watch_set_defaults after a reload.
 * Domains present now are reported through adopt() from the loop, soon
 * after the call. Returns NULL (errno set, reason logged) on failure,
 * e.g. when xenstored is not running. */
struct xs_watcher *xs_watch_new(struct event_base *base,
                                const struct de_config *defaults,
                                const struct xs_watch_ops *ops, void *ctx);

/* New defaults (after a configuration reload): every domain's policy is
 * recomputed and changes reported through the callbacks. 0 or -1. */
int xs_watch_set_defaults(struct xs_watcher *w,
                          const struct de_config *defaults);

/* The current effective settings of a known domain: true and *out, or
 * false if the domain is unknown. */
bool xs_watch_policy(const struct xs_watcher *w, uint32_t domid,
                     struct xs_dom_policy *out);

/* The domain's name (/local/domain/<id>/name) into buf: 0, or -1. */
int xs_watch_domain_name(struct xs_watcher *w, uint32_t domid, char *buf,
                         size_t len);

/* Statistics for dex/stats/. */
struct xs_dom_stats {
    uint64_t shared, patched, compressed, swapped;  /* pages now */
    uint64_t faults;                                /* since adopted */
    uint64_t saved_kb;                              /* net savings */
};

/* Writes the statistics of domain domid under dex/stats/ (one
 * transaction). 0, or -1 if xenstore refused (logged). */
int xs_stats_publish(struct xs_watcher *w, uint32_t domid,
                     const struct xs_dom_stats *st);

/* Removes the watches, closes the connection. Releases nothing: the
 * daemon closes its domains itself. NULL is ignored. */
void xs_watch_free(struct xs_watcher *w);

#endif

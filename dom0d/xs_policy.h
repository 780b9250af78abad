/*
 * xs_policy.h - the values of a domain's xenstore dex/ keys, checked and
 * turned into a policy. Pure (no xenstore, no Xen libraries): xenstore.c
 * reads the keys and watches them, this file decides what a value means,
 * so the rules can be tested anywhere.
 */
#ifndef DE_XS_POLICY_H
#define DE_XS_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* A domain's effective settings. */
struct xs_dom_policy {
    struct de_policy policy;    /* defaults + the domain's dex/ keys */
    uint64_t target_kb;         /* dex/target; 0 = none */
    uint32_t scan_rate;         /* dex/scan_rate pages/s; 0 = default */
};

/* The keys under dex/, in a fixed order: enable, share, patch, compress,
 * swap, share_group, scan_rate, target. */
#define XS_NKEYS 8

/* Name of key i (< XS_NKEYS). */
const char *xs_key_name(size_t i);

/* Index of the key called name, or -1. */
int xs_key_index(const char *name);

/* A copy of the scalar settings of a configuration (no guest blocks), for
 * validating values against it. NULL when out of memory. */
struct de_config *xs_config_copy(const struct de_config *src);

/* Checks `value` of key i against the policy being built in *p, under
 * the daemon's configuration `defaults` (its swap_file decides whether
 * swap may be on, its scan_interval_ms turns scan_rate into scan_batch).
 * Booleans are 1/0 as xl writes them (yes/no also taken); target is KiB,
 * or a size with a K/M/G/T suffix; scan_rate is pages per second (> 0).
 * Returns 0 and updates *p, or -1 with the reason (naming the key) in err
 * and *p unchanged. */
int xs_policy_apply(const struct de_config *defaults, size_t i,
                    const char *value, struct xs_dom_policy *p, char *err,
                    size_t errlen);

#endif

/*
 * xs_policy.c - what the values of a domain's dex/ keys mean (see
 * xs_policy.h). Every value is validated by the config file's own parser
 * (config_set on a scratch copy), so xenstore and the config file can
 * never disagree on what is valid.
 */
#include "config.h"     /* dom0d/config.h */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xs_policy.h"

/* The keys, in dex/, with the config key validating each. */
static const struct {
    const char *name;
    const char *cfgkey;                 /* NULL: handled here */
} xkeys[] = {
    { "enable", "enable" },
    { "share", "share" },
    { "patch", "patch" },
    { "compress", "compress" },
    { "swap", "swap" },
    { "share_group", "share_group" },
    { "scan_rate", NULL },
    { "target", NULL },
};

_Static_assert(sizeof xkeys / sizeof xkeys[0] == XS_NKEYS, "XS_NKEYS");

const char *xs_key_name(size_t i)
{
    return i < XS_NKEYS ? xkeys[i].name : "?";
}

int xs_key_index(const char *name)
{
    for (size_t i = 0; i < XS_NKEYS; i++)
        if (strcmp(xkeys[i].name, name) == 0)
            return (int)i;
    return -1;
}

struct de_config *xs_config_copy(const struct de_config *src)
{
    struct de_config *c = config_default();

    if (!c)
        return NULL;
    /* Only the scalar fields matter here (no guest blocks). */
    memcpy(c->source, src->source, sizeof c->source);
    memcpy(c->socket, src->socket, sizeof c->socket);
    memcpy(c->guest_socket, src->guest_socket, sizeof c->guest_socket);
    c->policy = src->policy;
    c->scan_interval_ms = src->scan_interval_ms;
    c->store_budget = src->store_budget;
    memcpy(c->swap_file, src->swap_file, sizeof c->swap_file);
    c->swap_max = src->swap_max;
    c->log_level = src->log_level;
    c->stats_interval_s = src->stats_interval_s;
    return c;
}

static bool is_bool_key(const char *k)
{
    return strcmp(k, "enable") == 0 || strcmp(k, "share") == 0 ||
           strcmp(k, "patch") == 0 || strcmp(k, "compress") == 0 ||
           strcmp(k, "swap") == 0;
}

int xs_policy_apply(const struct de_config *defaults, size_t i,
                    const char *value, struct xs_dom_policy *p, char *err,
                    size_t errlen)
{
    struct de_config *scratch;
    int rc;

    if (i >= XS_NKEYS || !value) {
        snprintf(err, errlen, "no such key");
        return -1;
    }
    if (strcmp(xkeys[i].name, "target") == 0) {
        uint64_t bytes;
        char *end;
        unsigned long long kb = strtoull(value, &end, 10);

        if (*value && *end == '\0' && value[0] != '-') {
            p->target_kb = kb;
            return 0;
        }
        if (config_parse_size(value, &bytes) == 0) {
            p->target_kb = bytes >> 10;
            return 0;
        }
        snprintf(err, errlen, "target: not a size (KiB, or 512M, 2G...)");
        return -1;
    }

    /* xenstore speaks 0/1 (as xl does); the config file yes/no */
    if (xkeys[i].cfgkey && is_bool_key(xkeys[i].name)) {
        if (strcmp(value, "1") == 0)
            value = "yes";
        else if (strcmp(value, "0") == 0)
            value = "no";
        else if (strcmp(value, "yes") != 0 && strcmp(value, "no") != 0) {
            snprintf(err, errlen, "%s: expected 1 or 0", xkeys[i].name);
            return -1;
        }
    }
    scratch = xs_config_copy(defaults);
    if (!scratch) {
        snprintf(err, errlen, "%s: out of memory", xkeys[i].name);
        return -1;
    }
    scratch->policy = p->policy;
    if (strcmp(xkeys[i].name, "scan_rate") == 0) {
        char *end;
        unsigned long long rate = strtoull(value, &end, 10);
        char batch[32];

        if (!*value || *end || value[0] == '-' || rate == 0 ||
            rate > UINT32_MAX) {
            snprintf(err, errlen, "scan_rate: not a positive number of "
                     "pages per second");
            config_free(scratch);
            return -1;
        }
        /* pages per tick = rate * interval, at least 1 */
        snprintf(batch, sizeof batch, "%llu",
                 (rate * scratch->scan_interval_ms + 999) / 1000);
        rc = config_set(scratch, NULL, "scan_batch", batch, err, errlen);
        if (rc == 0)
            p->scan_rate = (uint32_t)rate;
        else
            snprintf(err, errlen, "scan_rate: %llu pages/s gives a scan "
                     "batch out of range at scan_interval %u ms", rate,
                     scratch->scan_interval_ms);
    } else {
        rc = config_set(scratch, NULL, xkeys[i].cfgkey, value, err, errlen);
    }
    if (rc == 0)
        p->policy = scratch->policy;
    config_free(scratch);
    return rc;
}

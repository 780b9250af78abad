/*
 * test_xs_policy.c - what a domain's xenstore dex/ values mean
 * (xs_policy.c): accepted values change the policy, bad ones are refused
 * with the key named and leave the policy as it was.
 */
#include <stdio.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "config.h"
#include "tests.h"
#include "xs_policy.h"

static struct de_config *defaults(const char *swap_file)
{
    struct de_config *c = config_default();

    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    snprintf(c->swap_file, sizeof c->swap_file, "%s", swap_file);
    c->scan_interval_ms = 250;
    return c;
}

static int apply(const struct de_config *c, const char *key,
                 const char *value, struct xs_dom_policy *p, char *err)
{
    int i = xs_key_index(key);

    CU_ASSERT_FATAL(i >= 0);
    err[0] = '\0';
    return xs_policy_apply(c, (size_t)i, value, p, err, 256);
}

static void test_keys(void)
{
    static const char *names[] = { "enable", "share", "patch", "compress",
                                   "swap", "share_group", "scan_rate",
                                   "target" };

    for (size_t i = 0; i < XS_NKEYS; i++) {
        CU_ASSERT_STRING_EQUAL(xs_key_name(i), names[i]);
        CU_ASSERT_EQUAL(xs_key_index(names[i]), (int)i);
    }
    CU_ASSERT_EQUAL(xs_key_index("scan_batch"), -1);  /* not a dex/ key */
    CU_ASSERT_EQUAL(xs_key_index(""), -1);
    CU_ASSERT_STRING_EQUAL(xs_key_name(XS_NKEYS), "?");
}

static void test_booleans(void)
{
    struct de_config *c = defaults("");
    struct xs_dom_policy p = { .policy = c->policy };
    char err[256];

    CU_ASSERT_EQUAL(apply(c, "enable", "0", &p, err), 0);
    CU_ASSERT(!p.policy.enable);
    CU_ASSERT_EQUAL(apply(c, "enable", "1", &p, err), 0);
    CU_ASSERT(p.policy.enable);
    CU_ASSERT_EQUAL(apply(c, "patch", "no", &p, err), 0);   /* config words */
    CU_ASSERT(!p.policy.patch);
    CU_ASSERT_EQUAL(apply(c, "compress", "0", &p, err), 0);
    CU_ASSERT(!p.policy.compress);
    CU_ASSERT_EQUAL(apply(c, "share", "0", &p, err), 0);
    CU_ASSERT(!p.policy.share);
    config_free(c);
}

static void test_bad_values_keep_policy(void)
{
    static const struct { const char *key, *value, *says; } bad[] = {
        { "enable", "2", "enable" },
        { "enable", "", "enable" },
        { "compress", "bogus", "compress" },
        { "share", "true", "share" },
        { "scan_rate", "0", "scan_rate" },
        { "scan_rate", "-5", "scan_rate" },
        { "scan_rate", "12x", "scan_rate" },
        { "scan_rate", "", "scan_rate" },
        { "scan_rate", "99999999999", "scan_rate" },  /* > UINT32_MAX */
        { "scan_rate", "8000000", "scan_rate" },      /* batch > 1M pages */
        { "target", "lots", "target" },
        { "target", "-1", "target" },
        { "share_group", "has space", "share_group" },
        { "swap", "1", "swap_file" },   /* no swap file configured */
    };
    struct de_config *c = defaults("");
    struct xs_dom_policy p = { .policy = c->policy, .target_kb = 123,
                               .scan_rate = 77 };
    struct xs_dom_policy before;
    char err[256];

    before = p;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CU_ASSERT_EQUAL(apply(c, bad[i].key, bad[i].value, &p, err), -1);
        if (!strstr(err, bad[i].says))
            fprintf(stderr, "dex/%s = '%s': error '%s' does not name %s\n",
                    bad[i].key, bad[i].value, err, bad[i].says);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].says));
        CU_ASSERT(memcmp(&p, &before, sizeof p) == 0);
    }
    CU_ASSERT_EQUAL(xs_policy_apply(c, XS_NKEYS, "1", &p, err, sizeof err), -1);
    CU_ASSERT(memcmp(&p, &before, sizeof p) == 0);
    config_free(c);
}

static void test_swap_needs_swap_file(void)
{
    struct de_config *c = defaults("/var/lib/de-dom0d.swap");
    struct xs_dom_policy p = { .policy = c->policy };
    char err[256];

    CU_ASSERT(!p.policy.swap);
    CU_ASSERT_EQUAL(apply(c, "swap", "1", &p, err), 0);
    CU_ASSERT(p.policy.swap);
    config_free(c);
}

static void test_scan_rate_and_target(void)
{
    struct de_config *c = defaults("");
    struct xs_dom_policy p = { .policy = c->policy };
    char err[256];

    /* pages per second -> pages per tick of 250 ms, rounded up */
    CU_ASSERT_EQUAL(apply(c, "scan_rate", "32768", &p, err), 0);
    CU_ASSERT_EQUAL(p.scan_rate, 32768);
    CU_ASSERT_EQUAL(p.policy.scan_batch, 8192);
    CU_ASSERT_EQUAL(apply(c, "scan_rate", "1", &p, err), 0);
    CU_ASSERT_EQUAL(p.policy.scan_batch, 1);
    CU_ASSERT_EQUAL(apply(c, "scan_rate", "1001", &p, err), 0);
    CU_ASSERT_EQUAL(p.policy.scan_batch, 251);

    CU_ASSERT_EQUAL(apply(c, "target", "65536", &p, err), 0);  /* KiB */
    CU_ASSERT_EQUAL(p.target_kb, 65536);
    CU_ASSERT_EQUAL(apply(c, "target", "512M", &p, err), 0);
    CU_ASSERT_EQUAL(p.target_kb, 512u * 1024);
    CU_ASSERT_EQUAL(apply(c, "target", "2G", &p, err), 0);
    CU_ASSERT_EQUAL(p.target_kb, 2u * 1024 * 1024);
    CU_ASSERT_EQUAL(apply(c, "target", "0", &p, err), 0);
    CU_ASSERT_EQUAL(p.target_kb, 0);

    CU_ASSERT_EQUAL(apply(c, "share_group", "web", &p, err), 0);
    CU_ASSERT_STRING_EQUAL(p.policy.share_group, "web");
    CU_ASSERT_EQUAL(apply(c, "share_group", "", &p, err), 0);
    CU_ASSERT_STRING_EQUAL(p.policy.share_group, "");
    config_free(c);
}

/* The scratch copy used for validation carries every scalar setting:
 * a value valid under one configuration and not another is judged by
 * the configuration given. */
static void test_config_copy(void)
{
    struct de_config *c = defaults("/tmp/swap"), *k;

    c->store_budget = 12u << 20;
    c->policy.nru_patch_age = 3;
    k = xs_config_copy(c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_STRING_EQUAL(k->swap_file, "/tmp/swap");
    CU_ASSERT_EQUAL(k->scan_interval_ms, 250);
    CU_ASSERT_EQUAL(k->store_budget, 12u << 20);
    CU_ASSERT_EQUAL(k->policy.nru_patch_age, 3);
    config_free(k);
    config_free(c);
}

int register_xs_policy_tests(void)
{
    CU_pSuite s = CU_add_suite("xs_policy", NULL, NULL);

    if (!s)
        return -1;
    if (!CU_add_test(s, "key names", test_keys) ||
        !CU_add_test(s, "booleans 1/0", test_booleans) ||
        !CU_add_test(s, "bad values named, policy kept",
                     test_bad_values_keep_policy) ||
        !CU_add_test(s, "swap needs a swap_file", test_swap_needs_swap_file) ||
        !CU_add_test(s, "scan_rate, target, share_group",
                     test_scan_rate_and_target) ||
        !CU_add_test(s, "config copy", test_config_copy))
        return -1;
    return 0;
}

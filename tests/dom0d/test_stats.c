/*
 * test_stats.c - latency histogram buckets, percentiles, merging.
 */
#include <math.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "stats.h"
#include "tests.h"

/* Every value falls in the bucket whose range holds it; buckets tile. */
static void test_buckets(void)
{
    uint64_t prev_hi = 0, lo, hi;

    for (unsigned b = 0; b < HIST_NBUCKETS; b++) {
        hist_bucket_range(b, &lo, &hi);
        CU_ASSERT_EQUAL(lo, prev_hi);
        CU_ASSERT(hi > lo);
        CU_ASSERT_EQUAL(hist_bucket(lo), b);
        if (hi != UINT64_MAX)
            CU_ASSERT_EQUAL(hist_bucket(hi - 1), b);
        prev_hi = hi;
    }
    CU_ASSERT_EQUAL(prev_hi, UINT64_MAX);
    /* 0.5 us .. 10 s are bucketed with ~6% width at most */
    for (uint64_t v = 512; v < UINT64_C(10000000000); v = v * 3 / 2 + 1) {
        hist_bucket_range(hist_bucket(v), &lo, &hi);
        CU_ASSERT(lo <= v && v < hi);
        CU_ASSERT((double)(hi - lo) / (double)lo <= 1.0 / HIST_SUB + 1e-9);
    }
    CU_ASSERT_EQUAL(hist_bucket(0), 0);
    CU_ASSERT_EQUAL(hist_bucket(UINT64_MAX), HIST_NBUCKETS - 1);
}

static void assert_near(uint64_t got, uint64_t want, double tol)
{
    double err = fabs((double)got - (double)want) / (double)want;

    if (err > tol)
        fprintf(stderr, "\n  got %llu want %llu (err %.3f)\n",
                (unsigned long long)got, (unsigned long long)want, err);
    CU_ASSERT(err <= tol);
}

static void test_percentiles(void)
{
    struct lat_hist h;

    hist_init(&h);
    CU_ASSERT_EQUAL(hist_percentile(&h, 50), 0);
    CU_ASSERT_EQUAL(hist_mean(&h), 0);

    /* 1..10000 us, once each */
    for (uint64_t us = 1; us <= 10000; us++)
        hist_record(&h, us * 1000);
    CU_ASSERT_EQUAL(h.count, 10000);
    assert_near(hist_percentile(&h, 50), 5000 * 1000, 0.5 / HIST_SUB);
    assert_near(hist_percentile(&h, 99), 9900 * 1000, 0.5 / HIST_SUB);
    assert_near(hist_percentile(&h, 90), 9000 * 1000, 0.5 / HIST_SUB);
    assert_near(hist_percentile(&h, 1), 100 * 1000, 0.5 / HIST_SUB);
    CU_ASSERT_EQUAL(hist_percentile(&h, 100), 10000 * 1000);
    CU_ASSERT_EQUAL(hist_percentile(&h, 0), 1000);
    CU_ASSERT_EQUAL(hist_mean(&h), 5000500);

    /* one sample reports itself exactly */
    hist_init(&h);
    hist_record(&h, 7321);
    CU_ASSERT_EQUAL(hist_percentile(&h, 50), 7321);
    CU_ASSERT_EQUAL(hist_percentile(&h, 99), 7321);

    /* 99 fast, 1 slow: p50 fast, p99 still fast, p99.5 slow */
    hist_init(&h);
    for (int i = 0; i < 99; i++)
        hist_record(&h, 2000);
    hist_record(&h, 5000000);
    assert_near(hist_percentile(&h, 50), 2000, 0.5 / HIST_SUB);
    assert_near(hist_percentile(&h, 99), 2000, 0.5 / HIST_SUB);
    CU_ASSERT_EQUAL(hist_percentile(&h, 99.5), 5000000);

    /* under- and overflow */
    hist_init(&h);
    hist_record(&h, 100);
    hist_record(&h, UINT64_C(20000000000));
    CU_ASSERT_EQUAL(hist_percentile(&h, 50), 256);
    CU_ASSERT_EQUAL(hist_percentile(&h, 99), UINT64_C(20000000000));
}

static void test_merge(void)
{
    struct lat_hist a, b, all;
    uint64_t seed = 42;

    hist_init(&a);
    hist_init(&b);
    hist_init(&all);
    for (int i = 0; i < 5000; i++) {
        uint64_t v = td_rand(&seed) % UINT64_C(50000000);

        hist_record(i & 1 ? &a : &b, v);
        hist_record(&all, v);
    }
    hist_merge(&a, &b);
    CU_ASSERT_EQUAL(memcmp(&a, &all, sizeof a), 0);
    /* merging an empty histogram changes nothing */
    hist_init(&b);
    hist_merge(&a, &b);
    CU_ASSERT_EQUAL(memcmp(&a, &all, sizeof a), 0);
}

static void test_counters(void)
{
    struct de_stats g, x, y;
    struct lat_hist all;

    stats_init(&g);
    stats_init(&x);
    stats_init(&y);
    x.pages_shared = 10;
    x.store_bytes = 1000;
    y.pages_shared = 5;
    y.pages_patched = 7;
    y.scan_cpu_ns = 1500;
    stats_fault(&x, KIND_ZERO, 1000);
    stats_fault(&y, KIND_SWAPPED, 9000000);
    stats_fault(&y, KIND_PATCHED, 20000);
    stats_merge(&g, &x);
    stats_merge(&g, &y);
    CU_ASSERT_EQUAL(g.pages_shared, 15);
    CU_ASSERT_EQUAL(g.pages_patched, 7);
    CU_ASSERT_EQUAL(g.store_bytes, 1000);
    CU_ASSERT_EQUAL(g.scan_cpu_ns, 1500);
    CU_ASSERT_EQUAL(g.faults, 3);
    CU_ASSERT_EQUAL(g.fault_lat[KIND_SWAPPED].count, 1);
    stats_fault_hist(&g, &all);
    CU_ASSERT_EQUAL(all.count, 3);
    CU_ASSERT_EQUAL(all.max_ns, 9000000);
    CU_ASSERT_EQUAL(all.min_ns, 1000);
    CU_ASSERT_STRING_EQUAL(page_kind_name(KIND_COMPRESSED), "compressed");
    CU_ASSERT(stats_now_ns() > 0);
}

int register_stats_tests(void)
{
    CU_pSuite s = CU_add_suite("stats", NULL, NULL);

    if (!s ||
        !CU_add_test(s, "histogram buckets", test_buckets) ||
        !CU_add_test(s, "percentiles on known data", test_percentiles) ||
        !CU_add_test(s, "histogram merge", test_merge) ||
        !CU_add_test(s, "counters merge", test_counters))
        return CU_get_error();
    return CUE_SUCCESS;
}

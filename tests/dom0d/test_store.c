/*
 * test_store.c - the size-class store: contents, handles, density,
 * footprint, reference counts, compaction.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "store.h"
#include "tests.h"

static void check_store(const struct store *st)
{
    char err[256];

    if (store_check(st, err, sizeof err) != 0)
        fprintf(stderr, "\n  store_check: %s\n", err);
    CU_ASSERT_EQUAL(store_check(st, err, sizeof err), 0);
}

/* Deterministic contents for object `id` of length len. */
static void fill(uint8_t *p, size_t len, uint64_t id)
{
    uint64_t s = id * 0x9e3779b97f4a7c15u + 1;

    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(td_rand(&s) >> 56);
}

static int same(const uint8_t *p, size_t len, uint64_t id)
{
    uint8_t buf[STORE_MAX_OBJECT];

    fill(buf, len, id);
    return memcmp(p, buf, len) == 0;
}

static void test_basic(void)
{
    struct store *st = store_new();
    store_handle_t h, h2, h3;
    uint8_t data[STORE_MAX_OBJECT];

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(store_alloc(st, 0, &h), -EINVAL);
    CU_ASSERT_EQUAL(store_alloc(st, STORE_MAX_OBJECT + 1, &h), -EINVAL);
    CU_ASSERT_PTR_NULL(store_ptr(st, STORE_HANDLE_NONE));
    CU_ASSERT_PTR_NULL(store_ptr(st, 12345));

    fill(data, sizeof data, 1);
    CU_ASSERT_EQUAL_FATAL(store_put(st, data, 1000, &h), 0);
    CU_ASSERT_NOT_EQUAL(h, STORE_HANDLE_NONE);
    CU_ASSERT_EQUAL(store_len(st, h), 1000);
    CU_ASSERT(memcmp(store_ptr(st, h), data, 1000) == 0);
    CU_ASSERT_EQUAL(store_put(st, data, STORE_MAX_OBJECT, &h2), 0);
    CU_ASSERT(((uintptr_t)store_ptr(st, h2) & 4095) == 0);
    CU_ASSERT(memcmp(store_ptr(st, h2), data, STORE_MAX_OBJECT) == 0);
    CU_ASSERT_EQUAL(store_put(st, data, 1, &h3), 0);
    CU_ASSERT_EQUAL(store_len(st, h3), 1);
    check_store(st);

    /* freed handles go stale, even once the entry is reused */
    CU_ASSERT_EQUAL(store_free(st, h), 0);
    CU_ASSERT_PTR_NULL(store_ptr(st, h));
    CU_ASSERT_EQUAL(store_len(st, h), 0);
    CU_ASSERT_EQUAL(store_free(st, h), -ENOENT);
    CU_ASSERT_EQUAL(store_alloc(st, 1000, &h3), 0);
    CU_ASSERT_NOT_EQUAL(h3, h);
    CU_ASSERT_PTR_NULL(store_ptr(st, h));
    CU_ASSERT_PTR_NOT_NULL(store_ptr(st, h3));
    check_store(st);
    store_destroy(st);
    store_destroy(NULL);
}

static void test_refcount(void)
{
    struct store *st = store_new();
    store_handle_t h;

    CU_ASSERT_EQUAL_FATAL(store_alloc(st, 4096, &h), 0);
    CU_ASSERT_EQUAL(store_refcount(st, h), 1);
    CU_ASSERT_EQUAL(store_ref(st, h), 2);
    CU_ASSERT_EQUAL(store_ref(st, h), 3);
    CU_ASSERT_EQUAL(store_unref(st, h), 2);
    CU_ASSERT_EQUAL(store_unref(st, h), 1);
    CU_ASSERT_PTR_NOT_NULL(store_ptr(st, h));
    CU_ASSERT_EQUAL(store_unref(st, h), 0);
    CU_ASSERT_PTR_NULL(store_ptr(st, h));
    CU_ASSERT_EQUAL(store_unref(st, h), -ENOENT);
    CU_ASSERT_EQUAL(store_ref(st, h), -ENOENT);
    CU_ASSERT_EQUAL(store_refcount(st, h), 0);
    CU_ASSERT_EQUAL(store_footprint(st) > 0, 1);
    check_store(st);
    store_destroy(st);
}

/* Sizes like real encoded pages: mostly 50..2048, some pages, some tiny. */
static size_t random_len(uint64_t *seed)
{
    uint64_t r = td_rand(seed);

    switch (r % 10) {
    case 0: return 4096;
    case 1: return 1 + (r >> 8) % 64;
    default: return 50 + (r >> 8) % 1999;
    }
}

static void test_random(void)
{
    enum { N = 6000, OPS = 60000 };
    struct store *st = store_new();
    store_handle_t *h = calloc(N, sizeof *h);
    size_t *len = calloc(N, sizeof *len);
    uint64_t *id = calloc(N, sizeof *id);
    uint64_t seed = 1234, next_id = 1;
    struct store_stats ss;
    size_t peak = 0, live = 0, bad = 0;

    CU_ASSERT_FATAL(st && h && len && id);
    for (int op = 0; op < OPS; op++) {
        unsigned i = (unsigned)(td_rand(&seed) % N);

        if (h[i] == STORE_HANDLE_NONE) {
            len[i] = random_len(&seed);
            id[i] = next_id++;
            if (store_alloc(st, len[i], &h[i]) != 0) {
                CU_FAIL("store_alloc");
                break;
            }
            fill(store_ptr(st, h[i]), len[i], id[i]);
            live++;
        } else {
            if (!same(store_ptr(st, h[i]), len[i], id[i]))
                bad++;
            CU_ASSERT_EQUAL(store_free(st, h[i]), 0);
            h[i] = STORE_HANDLE_NONE;
            live--;
        }
        if (store_footprint(st) > peak)
            peak = store_footprint(st);
        if (op % 20000 == 0)
            check_store(st);
    }
    CU_ASSERT_EQUAL(bad, 0);
    check_store(st);
    store_stats(st, &ss);
    CU_ASSERT_EQUAL(ss.objects, live);
    for (unsigned i = 0; i < N; i++)
        if (h[i] != STORE_HANDLE_NONE) {
            CU_ASSERT_EQUAL(store_len(st, h[i]), len[i]);
            if (!same(store_ptr(st, h[i]), len[i], id[i]))
                bad++;
        }
    CU_ASSERT_EQUAL(bad, 0);

    /* everything back: no slab left, only the handle table */
    for (unsigned i = 0; i < N; i++)
        if (h[i] != STORE_HANDLE_NONE)
            CU_ASSERT_EQUAL(store_free(st, h[i]), 0);
    store_stats(st, &ss);
    CU_ASSERT_EQUAL(ss.objects, 0);
    CU_ASSERT_EQUAL(ss.payload_bytes, 0);
    CU_ASSERT_EQUAL(ss.slab_bytes, 0);
    CU_ASSERT_EQUAL(ss.arenas, 0);
    CU_ASSERT(store_footprint(st) < peak / 10);
    check_store(st);
    store_destroy(st);
    free(h);
    free(len);
    free(id);
}

/* 10,000 patches of about 1 KiB: footprint within 1.2x of the payload. */
static void test_density(void)
{
    enum { N = 10000 };
    struct store *st = store_new();
    store_handle_t *h = calloc(N, sizeof *h);
    uint64_t seed = 99;
    struct store_stats ss;
    double ratio;

    CU_ASSERT_FATAL(st && h);
    for (unsigned i = 0; i < N; i++) {
        size_t len = 900 + td_rand(&seed) % 250;

        CU_ASSERT_EQUAL_FATAL(store_alloc(st, len, &h[i]), 0);
        memset(store_ptr(st, h[i]), (int)i, len);
    }
    store_stats(st, &ss);
    ratio = (double)ss.footprint / (double)ss.payload_bytes;
    printf("\n  density: %llu objects, payload %.2f MiB, footprint %.2f "
           "MiB (x%.3f: slabs %.2f MiB, metadata %.0f KiB) ",
           (unsigned long long)ss.objects, ss.payload_bytes / 1048576.0,
           ss.footprint / 1048576.0, ratio, ss.slab_bytes / 1048576.0,
           ss.meta_bytes / 1024.0);
    CU_ASSERT(ratio < 1.2);
    /* versus one 4 KiB page per patch */
    CU_ASSERT(ss.footprint < (uint64_t)N * 4096 / 3);

    /* the same with pages, which must cost a page each and no more */
    for (unsigned i = 0; i < N; i++)
        store_free(st, h[i]);
    for (unsigned i = 0; i < 2000; i++)
        CU_ASSERT_EQUAL_FATAL(store_alloc(st, 4096, &h[i]), 0);
    store_stats(st, &ss);
    CU_ASSERT_EQUAL(ss.slab_bytes, 2000 * 4096);
    for (unsigned i = 0; i < 2000; i++)
        store_free(st, h[i]);
    store_stats(st, &ss);
    CU_ASSERT_EQUAL(ss.slab_bytes, 0);
    store_destroy(st);
    free(h);
}

/* Free 3 objects in 4 at random: few slabs empty by themselves; compaction
 * gives them back and keeps every handle and byte. */
static void test_compact(void)
{
    enum { N = 20000 };
    struct store *st = store_new();
    store_handle_t *h = calloc(N, sizeof *h);
    size_t *len = calloc(N, sizeof *len);
    uint64_t seed = 5;
    struct store_stats before, after;
    size_t released, bad = 0;

    CU_ASSERT_FATAL(st && h && len);
    for (unsigned i = 0; i < N; i++) {
        len[i] = 200 + td_rand(&seed) % 1800;
        CU_ASSERT_EQUAL_FATAL(store_alloc(st, len[i], &h[i]), 0);
        fill(store_ptr(st, h[i]), len[i], i);
    }
    for (unsigned i = 0; i < N; i++)
        if (td_rand(&seed) % 4 != 0) {
            store_free(st, h[i]);
            h[i] = STORE_HANDLE_NONE;
        }
    check_store(st);
    store_stats(st, &before);
    released = store_compact(st, SIZE_MAX);
    store_stats(st, &after);
    check_store(st);
    printf("\n  compaction: slabs %.2f -> %.2f MiB for %.2f MiB payload, "
           "%llu moves ", before.slab_bytes / 1048576.0,
           after.slab_bytes / 1048576.0, after.payload_bytes / 1048576.0,
           (unsigned long long)after.compact_moves);
    CU_ASSERT_EQUAL(released, before.slab_bytes - after.slab_bytes);
    CU_ASSERT(after.slab_bytes < before.slab_bytes / 2);
    CU_ASSERT((double)after.footprint < 1.25 * (double)after.payload_bytes +
              128.0 * STORE_SLAB_SIZE);
    CU_ASSERT_EQUAL(after.objects, before.objects);
    for (unsigned i = 0; i < N; i++)
        if (h[i] != STORE_HANDLE_NONE) {
            CU_ASSERT_EQUAL(store_len(st, h[i]), len[i]);
            if (!same(store_ptr(st, h[i]), len[i], i))
                bad++;
        }
    CU_ASSERT_EQUAL(bad, 0);
    /* nothing more to gain: a second pass moves nothing */
    CU_ASSERT_EQUAL(store_compact(st, SIZE_MAX), 0);
    store_destroy(st);
    free(h);
    free(len);
}

static void test_compact_bounded(void)
{
    enum { N = 4000 };
    struct store *st = store_new();
    store_handle_t *h = calloc(N, sizeof *h);
    struct store_stats a, b;

    CU_ASSERT_FATAL(st && h);
    for (unsigned i = 0; i < N; i++)
        CU_ASSERT_EQUAL_FATAL(store_alloc(st, 512, &h[i]), 0);
    for (unsigned i = 0; i < N; i++)
        if (i % 3)
            store_free(st, h[i]);
    store_stats(st, &a);
    store_compact(st, 4096);
    store_stats(st, &b);
    CU_ASSERT(b.compact_moves - a.compact_moves <= 4096 / 512 + 1);
    CU_ASSERT(b.compact_moves > a.compact_moves);
    check_store(st);
    store_destroy(st);
    free(h);
}

int register_store_tests(void)
{
    CU_pSuite s = CU_add_suite("store", NULL, NULL);

    if (!s ||
        !CU_add_test(s, "alloc, ptr, len, free, stale handles", test_basic) ||
        !CU_add_test(s, "reference counts", test_refcount) ||
        !CU_add_test(s, "random alloc/free with content checks",
                     test_random) ||
        !CU_add_test(s, "density of 1 KiB objects", test_density) ||
        !CU_add_test(s, "compaction", test_compact) ||
        !CU_add_test(s, "bounded compaction", test_compact_bounded))
        return CU_get_error();
    return CUE_SUCCESS;
}

/*
 * test_objects.c - the daemon's own copies (objects): held compressed or
 * whole, always handed back bit-exact, the one-entry decode cache never
 * serving a stale or reused id, a damaged copy reported, not returned.
 */
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "dom0d.h"
#include "page.h"
#include "page_hash.h"
#include "tests.h"

static struct daemon *daemon_new(bool compress_objects, uint32_t *gi)
{
    struct daemon *d = calloc(1, sizeof *d);

    if (!d)
        return NULL;
    d->cfg = config_default();
    d->store = store_new();
    d->obj_free = OBJ_NONE;
    if (!d->cfg || !d->store || group_for(d, "t", gi) != 0) {
        CU_FAIL("daemon set-up");
        return d;
    }
    d->cfg->compress_objects = compress_objects;
    return d;
}

static void daemon_free(struct daemon *d, uint32_t gi)
{
    group_release(d, gi);
    store_destroy(d->store);
    free(d->obj);
    free(d->groups);
    compressor_free(d->obj_cc);
    for (int i = 0; i < COMP_NCOMPRESSORS; i++)
        compressor_free(d->dec_cc[i]);
    config_free(d->cfg);
    free(d);
}

/* A page like a guest's text: compresses well, differs by seed. */
static void text_page(uint8_t *p, uint64_t seed)
{
    static const char words[] = "the quick brown fox jumps over a lazy dog ";

    for (size_t i = 0; i < DE_PAGE_SIZE; i++)
        p[i] = (uint8_t)words[(i + seed * 7) % (sizeof words - 1)];
    memcpy(p, &seed, sizeof seed);
}

static void random_page(uint8_t *p, uint64_t seed)
{
    uint64_t s = seed * 0x9e3779b97f4a7c15u + 1;

    for (size_t i = 0; i < DE_PAGE_SIZE; i++)
        p[i] = (uint8_t)(td_rand(&s) >> 56);
}

static uint32_t add(struct daemon *d, uint32_t gi, const uint8_t *page)
{
    uint32_t id = OBJ_NONE;

    CU_ASSERT_EQUAL_FATAL(object_new(d, gi, page, page_hash(page), &id), 0);
    object_ref(d, id);
    return id;
}

static void test_compressed_and_whole(void)
{
    enum { N = 64 };
    static uint8_t want[N][DE_PAGE_SIZE];
    uint32_t gi, id[N];
    struct daemon *d = daemon_new(true, &gi);
    size_t compressed = 0;

    for (int i = 0; i < N; i++) {
        if (i % 4 == 3)
            random_page(want[i], (uint64_t)i);
        else
            text_page(want[i], (uint64_t)i);
        id[i] = add(d, gi, want[i]);
        compressed += d->obj[id[i]].len < DE_PAGE_SIZE;
        /* incompressible contents are held whole */
        if (i % 4 == 3)
            CU_ASSERT_EQUAL(d->obj[id[i]].len, DE_PAGE_SIZE);
    }
    CU_ASSERT_EQUAL(compressed, N - N / 4);
    /* in an order that defeats the one-entry cache */
    for (int pass = 0; pass < 3; pass++)
        for (int i = 0; i < N; i++) {
            int j = (i * 37 + pass) % N;
            const void *p = object_data(d, id[j]);

            CU_ASSERT_PTR_NOT_NULL_FATAL(p);
            CU_ASSERT(memcmp(p, want[j], DE_PAGE_SIZE) == 0);
        }
    daemon_free(d, gi);
}

static void test_footprint(void)
{
    enum { N = 256 };
    uint8_t page[DE_PAGE_SIZE];
    size_t fp[2];

    for (int c = 0; c < 2; c++) {
        uint32_t gi;
        struct daemon *d = daemon_new(c == 1, &gi);

        for (int i = 0; i < N; i++) {
            text_page(page, (uint64_t)i);
            add(d, gi, page);
        }
        fp[c] = store_footprint(d->store);
        daemon_free(d, gi);
    }
    /* whole: at least N pages; compressed: well under a quarter of that */
    CU_ASSERT(fp[0] >= (size_t)N * DE_PAGE_SIZE);
    CU_ASSERT(fp[1] * 4 < fp[0]);
}

static void test_reuse_not_stale(void)
{
    uint8_t a[DE_PAGE_SIZE], b[DE_PAGE_SIZE];
    uint32_t gi, ia, ib;
    struct daemon *d = daemon_new(true, &gi);
    const void *p;

    text_page(a, 1);
    text_page(b, 2);
    ia = add(d, gi, a);
    p = object_data(d, ia);             /* now cached */
    CU_ASSERT(p && memcmp(p, a, DE_PAGE_SIZE) == 0);
    object_unref(d, ia);                /* freed: its id is reused next */
    CU_ASSERT_FALSE(object_live(d, ia));
    CU_ASSERT_PTR_NULL(object_data(d, ia));
    ib = add(d, gi, b);
    CU_ASSERT_EQUAL(ib, ia);
    p = object_data(d, ib);
    CU_ASSERT(p && memcmp(p, b, DE_PAGE_SIZE) == 0);
    daemon_free(d, gi);
}

static void test_damaged_copy(void)
{
    uint8_t a[DE_PAGE_SIZE], b[DE_PAGE_SIZE];
    uint32_t gi, ia, ib;
    struct daemon *d = daemon_new(true, &gi);
    uint8_t *enc;

    text_page(a, 3);
    text_page(b, 4);
    ia = add(d, gi, a);
    ib = add(d, gi, b);
    CU_ASSERT_FATAL(d->obj[ia].len < DE_PAGE_SIZE);
    CU_ASSERT_PTR_NOT_NULL(object_data(d, ib));     /* cache holds b */
    /* a store bug or a stray write: the copy no longer decodes */
    enc = store_ptr(d->store, d->obj[ia].h);
    memset(enc, 0xff, d->obj[ia].len);
    CU_ASSERT_PTR_NULL(object_data(d, ia));
    /* and the other copy is unharmed */
    CU_ASSERT(memcmp(object_data(d, ib), b, DE_PAGE_SIZE) == 0);
    daemon_free(d, gi);
}

static void test_whole_when_off(void)
{
    uint8_t a[DE_PAGE_SIZE];
    uint32_t gi, ia;
    struct daemon *d = daemon_new(false, &gi);

    text_page(a, 5);
    ia = add(d, gi, a);
    CU_ASSERT_EQUAL(d->obj[ia].len, DE_PAGE_SIZE);
    CU_ASSERT(memcmp(object_data(d, ia), a, DE_PAGE_SIZE) == 0);
    daemon_free(d, gi);
}

int register_objects_tests(void)
{
    CU_pSuite s = CU_add_suite("objects", NULL, NULL);

    if (!s ||
        !CU_add_test(s, "held compressed or whole, read back exact",
                     test_compressed_and_whole) ||
        !CU_add_test(s, "footprint compressed vs whole", test_footprint) ||
        !CU_add_test(s, "a reused id never reads the old copy",
                     test_reuse_not_stale) ||
        !CU_add_test(s, "a damaged copy reads as absent", test_damaged_copy) ||
        !CU_add_test(s, "compress_objects no holds whole",
                     test_whole_when_off))
        return -1;
    return 0;
}

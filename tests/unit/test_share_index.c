/*
 * test_share_index.c - the share index finds exactly the identical twins.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "page.h"
#include "page_hash.h"
#include "share_index.h"
#include "tests.h"

struct pageset {
    uint8_t *pages;
    size_t n;
};

static const void *pageset_page(void *ctx, uint64_t id)
{
    struct pageset *ps = ctx;

    return id < ps->n ? ps->pages + id * DE_PAGE_SIZE : NULL;
}

/* A constructed set: 40 distinct random pages; copies of some of them;
 * zero pages; near-twins differing in one byte (must not share). */
static void test_exact_counts(void)
{
    struct pageset ps = { .n = 200 };
    struct share_index *si;
    size_t dups = 0, expect_dups = 0;

    ps.pages = calloc(ps.n, DE_PAGE_SIZE);
    CU_ASSERT_FATAL(ps.pages != NULL);
    for (size_t i = 0; i < ps.n; i++) {
        uint8_t *p = ps.pages + i * DE_PAGE_SIZE;

        if (i < 40) {
            tu_random_page(p, i);
        } else if (i < 100) {          /* copy of page i % 40 */
            memcpy(p, ps.pages + (i % 40) * DE_PAGE_SIZE, DE_PAGE_SIZE);
            expect_dups++;
        } else if (i < 150) {          /* zero pages: first one is unique */
            if (i > 100)
                expect_dups++;
        } else {                        /* near-twins: unique */
            memcpy(p, ps.pages + (i % 40) * DE_PAGE_SIZE, DE_PAGE_SIZE);
            p[(i * 37) % DE_PAGE_SIZE] ^= (uint8_t)(1 + i % 255);
        }
    }
    /* pages 150..189 and 190..199 near-twin the same originals with
     * different positions, except where i%40 and position coincide */
    for (size_t i = 150; i < ps.n; i++)
        for (size_t j = 150; j < i; j++)
            if (page_equal(ps.pages + i * DE_PAGE_SIZE, ps.pages + j * DE_PAGE_SIZE))
                expect_dups++;

    si = share_index_new(16, pageset_page, &ps);   /* forces growth */
    CU_ASSERT_FATAL(si != NULL);
    for (size_t i = 0; i < ps.n; i++) {
        const uint8_t *p = ps.pages + i * DE_PAGE_SIZE;
        uint64_t twin = UINT64_MAX;
        int r = share_index_find_or_insert(si, p, page_hash(p), i, &twin);

        CU_ASSERT(r == 0 || r == 1);
        if (r == 1) {
            dups++;
            CU_ASSERT(twin < i);
            CU_ASSERT(page_equal(p, ps.pages + twin * DE_PAGE_SIZE));
        }
    }
    CU_ASSERT_EQUAL(dups, expect_dups);
    CU_ASSERT_EQUAL(share_index_count(si), ps.n - expect_dups);
    CU_ASSERT(share_index_bytes(si) >= share_index_count(si) * 16);
    share_index_free(si);
    free(ps.pages);
}

/* A forced hash collision must not make different pages share. */
static void test_collision_is_confirmed(void)
{
    struct pageset ps = { .n = 2 };
    struct share_index *si;
    uint64_t twin;

    ps.pages = calloc(2, DE_PAGE_SIZE);
    tu_random_page(ps.pages, 1);
    tu_random_page(ps.pages + DE_PAGE_SIZE, 2);
    si = share_index_new(4, pageset_page, &ps);
    CU_ASSERT_FATAL(si != NULL);
    CU_ASSERT_EQUAL(share_index_insert(si, 42, 0), 0);
    /* same (fake) hash, other content: no twin */
    CU_ASSERT_EQUAL(share_index_lookup(si, ps.pages + DE_PAGE_SIZE, 42, &twin), 0);
    CU_ASSERT_EQUAL(share_index_find_or_insert(si, ps.pages + DE_PAGE_SIZE, 42, 1, &twin), 0);
    CU_ASSERT_EQUAL(share_index_count(si), 2);
    CU_ASSERT_EQUAL(share_index_lookup(si, ps.pages, 42, &twin), 1);
    CU_ASSERT_EQUAL(twin, 0);
    share_index_free(si);
    free(ps.pages);
}

static void test_remove_and_reinsert(void)
{
    struct pageset ps = { .n = 1000 };
    struct share_index *si;
    uint64_t twin;

    ps.pages = calloc(ps.n, DE_PAGE_SIZE);
    for (size_t i = 0; i < ps.n; i++)
        tu_random_page(ps.pages + i * DE_PAGE_SIZE, 1000 + i);
    si = share_index_new(8, pageset_page, &ps);
    for (size_t i = 0; i < ps.n; i++)
        CU_ASSERT_EQUAL(share_index_insert(si, page_hash(ps.pages + i * DE_PAGE_SIZE), i), 0);
    /* Remove the even ones, many times over, to exercise tombstones. */
    for (int round = 0; round < 5; round++) {
        for (size_t i = 0; i < ps.n; i += 2)
            CU_ASSERT_EQUAL(share_index_remove(si, page_hash(ps.pages + i * DE_PAGE_SIZE), i), 0);
        CU_ASSERT_EQUAL(share_index_count(si), ps.n / 2);
        for (size_t i = 0; i < ps.n; i++) {
            const uint8_t *p = ps.pages + i * DE_PAGE_SIZE;
            CU_ASSERT_EQUAL(share_index_lookup(si, p, page_hash(p), &twin), (int)(i & 1));
        }
        CU_ASSERT_EQUAL(share_index_remove(si, page_hash(ps.pages), 0), -ENOENT);
        for (size_t i = 0; i < ps.n; i += 2)
            CU_ASSERT_EQUAL(share_index_insert(si, page_hash(ps.pages + i * DE_PAGE_SIZE), i), 0);
        CU_ASSERT_EQUAL(share_index_count(si), ps.n);
    }
    share_index_free(si);
    free(ps.pages);
}

int register_share_index_tests(void)
{
    CU_pSuite s = CU_add_suite("share_index", NULL, NULL);

    if (!s || !CU_add_test(s, "exact counts on a constructed set", test_exact_counts) ||
        !CU_add_test(s, "hash collision confirmed by bytes", test_collision_is_confirmed) ||
        !CU_add_test(s, "remove and reinsert", test_remove_and_reinsert))
        return CU_get_error();
    return CUE_SUCCESS;
}

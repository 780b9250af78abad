/*
 * test_page_hash.c - page hashing, zero detection, equality.
 */
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "page.h"
#include "page_hash.h"
#include "tests.h"

static void test_zero_detection(void)
{
    static uint8_t pg[DE_PAGE_SIZE];

    memset(pg, 0, sizeof pg);
    CU_ASSERT_TRUE(page_is_zero(pg));
    /* A single set bit anywhere makes the page non-zero. */
    for (size_t pos = 0; pos < DE_PAGE_SIZE; pos += 509) {
        pg[pos] = 0x80;
        CU_ASSERT_FALSE(page_is_zero(pg));
        pg[pos] = 0;
    }
    pg[DE_PAGE_SIZE - 1] = 1;
    CU_ASSERT_FALSE(page_is_zero(pg));
}

static void test_hash_distinguishes_pages(void)
{
    size_t n = 0;
    uint8_t *pages = tu_sample_pages("vm-web-1", 0, 512, &n);
    size_t distinct = 0, collisions = 0;

    CU_ASSERT_FATAL(pages != NULL && n == 512);
    for (size_t i = 0; i < n; i++) {
        uint8_t *a = pages + i * DE_PAGE_SIZE;
        int seen = 0;

        for (size_t j = 0; j < i; j++) {
            uint8_t *b = pages + j * DE_PAGE_SIZE;
            int eq = page_equal(a, b);

            if (eq)
                seen = 1;
            /* equal contents <=> equal hashes (no collision expected in 512) */
            if (eq != (page_hash(a) == page_hash(b)))
                collisions++;
        }
        distinct += !seen;
    }
    CU_ASSERT_EQUAL(collisions, 0);
    CU_ASSERT_TRUE(distinct > 1 && distinct <= n);
    /* A one-bit change changes the hash. */
    {
        uint64_t h = page_hash(pages);
        pages[100] ^= 1;
        CU_ASSERT_NOT_EQUAL(page_hash(pages), h);
    }
    free(pages);
}

int register_page_hash_tests(void)
{
    CU_pSuite s = CU_add_suite("page_hash", NULL, NULL);

    if (!s || !CU_add_test(s, "zero detection", test_zero_detection) ||
        !CU_add_test(s, "hash distinguishes pages", test_hash_distinguishes_pages))
        return CU_get_error();
    return CUE_SUCCESS;
}

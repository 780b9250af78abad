/*
 * test_simdetect.c - the similarity detector finds planted near-twins.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "page.h"
#include "simdetect.h"
#include "tests.h"

static int in_block(const struct simdetect *sd, unsigned nblk, size_t pos)
{
    for (unsigned i = 0; i < nblk; i++) {
        unsigned o = simdetect_block_offset(sd, i);
        if (pos >= o && pos < o + SIMDETECT_BLOCK)
            return 1;
    }
    return 0;
}

/* 300 random pages as references, then a near-twin of each one (bytes
 * changed outside the fingerprinted blocks): the detector must name the
 * original for every twin. */
static void test_finds_planted_twin(void)
{
    struct simdetect_params p;
    struct simdetect *sd;
    struct simdetect_keys k;
    uint8_t *pages = malloc(300 * DE_PAGE_SIZE), twin[DE_PAGE_SIZE];
    unsigned found = 0;

    simdetect_default_params(&p);
    sd = simdetect_new(&p, 16);
    CU_ASSERT_FATAL(sd != NULL && pages != NULL);
    for (uint64_t i = 0; i < 300; i++) {
        tu_random_page(pages + i * DE_PAGE_SIZE, 7000 + i);
        simdetect_keys(sd, pages + i * DE_PAGE_SIZE, &k);
        CU_ASSERT_EQUAL(simdetect_insert(sd, &k, i), 0);
    }
    for (uint64_t i = 0; i < 300; i++) {
        uint64_t ref = UINT64_MAX;

        memcpy(twin, pages + i * DE_PAGE_SIZE, DE_PAGE_SIZE);
        for (size_t pos = i % 7; pos < DE_PAGE_SIZE; pos += 97)
            if (!in_block(sd, p.k * p.s, pos))
                twin[pos] ^= 0x5a;
        simdetect_keys(sd, twin, &k);
        if (simdetect_find(sd, &k, UINT64_MAX, &ref) == p.k && ref == i)
            found++;
    }
    CU_ASSERT_EQUAL(found, 300);
    /* An unrelated page finds nothing. */
    {
        uint64_t ref;
        tu_random_page(twin, 99999);
        simdetect_keys(sd, twin, &k);
        CU_ASSERT_EQUAL(simdetect_find(sd, &k, UINT64_MAX, &ref), 0);
    }
    /* A change inside a fingerprinted block loses that key. */
    {
        uint64_t ref = UINT64_MAX;
        memcpy(twin, pages, DE_PAGE_SIZE);
        twin[simdetect_block_offset(sd, 0)] ^= 1;
        simdetect_keys(sd, twin, &k);
        CU_ASSERT_EQUAL(simdetect_find(sd, &k, UINT64_MAX, &ref), p.k - 1);
        CU_ASSERT_EQUAL(ref, 0);
    }
    simdetect_free(sd);
    free(pages);
}

static void test_self_and_remove(void)
{
    struct simdetect_params p;
    struct simdetect *sd;
    struct simdetect_keys k;
    uint8_t pg[DE_PAGE_SIZE];
    uint64_t ref;

    simdetect_default_params(&p);
    sd = simdetect_new(&p, 4);
    tu_random_page(pg, 3);
    simdetect_keys(sd, pg, &k);
    CU_ASSERT_EQUAL(simdetect_insert(sd, &k, 5), 0);
    CU_ASSERT_EQUAL(simdetect_find(sd, &k, 5, &ref), 0);     /* itself */
    CU_ASSERT_EQUAL(simdetect_find(sd, &k, UINT64_MAX, &ref), 2);
    CU_ASSERT_EQUAL(ref, 5);
    CU_ASSERT_EQUAL(simdetect_remove(sd, &k, 5), 0);
    CU_ASSERT_EQUAL(simdetect_find(sd, &k, UINT64_MAX, &ref), 0);
    CU_ASSERT_EQUAL(simdetect_remove(sd, &k, 5), -ENOENT);
    simdetect_free(sd);
}

/* c candidates per bucket, newest first, oldest evicted; the candidate
 * hit by the most keys wins. */
static void test_buckets_and_votes(void)
{
    struct simdetect_params p = { .k = 2, .s = 1, .c = 2, .seed = 11 };
    struct simdetect *sd = simdetect_new(&p, 8);
    struct simdetect_keys k;
    uint8_t base[DE_PAGE_SIZE], v[DE_PAGE_SIZE];
    unsigned o0 = simdetect_block_offset(sd, 0), o1 = simdetect_block_offset(sd, 1);
    uint64_t ref;

    CU_ASSERT_FATAL(sd != NULL);
    tu_random_page(base, 1);
    /* pages 1..3 share block 0 only; page 4 shares both blocks */
    for (uint64_t id = 1; id <= 3; id++) {
        tu_random_page(v, 100 + id);
        memcpy(v + o0, base + o0, SIMDETECT_BLOCK);
        simdetect_keys(sd, v, &k);
        simdetect_insert(sd, &k, id);
    }
    simdetect_keys(sd, base, &k);
    CU_ASSERT_EQUAL(simdetect_find(sd, &k, UINT64_MAX, &ref), 1);
    CU_ASSERT_EQUAL(ref, 3);                 /* newest of the bucket */
    tu_random_page(v, 200);
    memcpy(v + o0, base + o0, SIMDETECT_BLOCK);
    memcpy(v + o1, base + o1, SIMDETECT_BLOCK);
    simdetect_keys(sd, v, &k);
    simdetect_insert(sd, &k, 4);
    /* bucket of block 0 now holds {4, 3}; 1 and 2 were evicted */
    simdetect_keys(sd, base, &k);
    CU_ASSERT_EQUAL(simdetect_find(sd, &k, UINT64_MAX, &ref), 2);
    CU_ASSERT_EQUAL(ref, 4);
    CU_ASSERT_EQUAL(simdetect_remove(sd, &k, 1), -ENOENT);
    CU_ASSERT_EQUAL(simdetect_remove(sd, &k, 4), 0);
    CU_ASSERT_EQUAL(simdetect_find(sd, &k, UINT64_MAX, &ref), 1);
    CU_ASSERT_EQUAL(ref, 3);
    simdetect_free(sd);
}

static void test_params_and_zero_blocks(void)
{
    struct simdetect_params bad = { .k = 0, .s = 1, .c = 1 };
    struct simdetect_params p;
    struct simdetect *sd;
    struct simdetect_keys k;
    uint8_t zero[DE_PAGE_SIZE] = { 0 };
    uint64_t ref;

    CU_ASSERT_PTR_NULL(simdetect_new(&bad, 1));
    bad.k = 1; bad.s = SIMDETECT_MAX_S + 1;
    CU_ASSERT_PTR_NULL(simdetect_new(&bad, 1));
    bad.s = 1; bad.c = 0;
    CU_ASSERT_PTR_NULL(simdetect_new(&bad, 1));
    /* Uniform blocks give no key: zero pages are never references. */
    simdetect_default_params(&p);
    sd = simdetect_new(&p, 1);
    simdetect_keys(sd, zero, &k);
    CU_ASSERT_EQUAL(simdetect_insert(sd, &k, 1), 0);
    CU_ASSERT_EQUAL(simdetect_find(sd, &k, UINT64_MAX, &ref), 0);
    simdetect_free(sd);
    /* Offsets are distinct and block aligned for the largest setting. */
    p.k = SIMDETECT_MAX_K; p.s = SIMDETECT_MAX_S;
    sd = simdetect_new(&p, 1);
    for (unsigned i = 0; i < p.k * p.s; i++) {
        CU_ASSERT_EQUAL(simdetect_block_offset(sd, i) % SIMDETECT_BLOCK, 0);
        for (unsigned j = 0; j < i; j++)
            CU_ASSERT_NOT_EQUAL(simdetect_block_offset(sd, i), simdetect_block_offset(sd, j));
    }
    simdetect_free(sd);
}

/* Real pages: every sample page is offered, then each is looked up with
 * a few bytes changed; a page must find itself as reference unless its
 * fingerprint blocks are uniform. */
static void test_real_pages(void)
{
    size_t n = 0;
    uint8_t *pages = tu_sample_pages("vm-db-2", 0, 1024, &n), v[DE_PAGE_SIZE];
    struct simdetect_params p;
    struct simdetect *sd;
    struct simdetect_keys k;
    size_t keyed = 0, found = 0;

    CU_ASSERT_FATAL(pages != NULL);
    simdetect_default_params(&p);
    sd = simdetect_new(&p, n);
    for (size_t i = 0; i < n; i++) {
        simdetect_keys(sd, pages + i * DE_PAGE_SIZE, &k);
        simdetect_insert(sd, &k, i);
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t ref;
        memcpy(v, pages + i * DE_PAGE_SIZE, DE_PAGE_SIZE);
        for (size_t pos = 3; pos < DE_PAGE_SIZE; pos += 501)
            if (!in_block(sd, 2, pos))
                v[pos] ^= 0xff;
        simdetect_keys(sd, v, &k);
        if (k.key[0] || k.key[1]) {
            keyed++;
            if (simdetect_find(sd, &k, UINT64_MAX, &ref) > 0) {
                /* the page itself or an identical-in-blocks page */
                const uint8_t *r = pages + ref * DE_PAGE_SIZE;
                found += memcmp(r + simdetect_block_offset(sd, 0), v + simdetect_block_offset(sd, 0), 64) == 0 ||
                         memcmp(r + simdetect_block_offset(sd, 1), v + simdetect_block_offset(sd, 1), 64) == 0;
            }
        }
    }
    CU_ASSERT(keyed > 0);
    CU_ASSERT_EQUAL(found, keyed);
    simdetect_free(sd);
    free(pages);
}

int register_simdetect_tests(void)
{
    CU_pSuite s = CU_add_suite("simdetect", NULL, NULL);

    if (!s || !CU_add_test(s, "finds planted near-twins", test_finds_planted_twin) ||
        !CU_add_test(s, "self and remove", test_self_and_remove) ||
        !CU_add_test(s, "buckets and votes", test_buckets_and_votes) ||
        !CU_add_test(s, "parameters and zero blocks", test_params_and_zero_blocks) ||
        !CU_add_test(s, "real pages", test_real_pages))
        return CU_get_error();
    return CUE_SUCCESS;
}

/*
 * test_analyze.c - the analysis against independent counts, and the
 * de-analyze program end to end (table, JSON, bad input).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <CUnit/CUnit.h>

#include "analyze.h"
#include "mem_image.h"
#include "page.h"
#include "page_hash.h"
#include "tests.h"

static const uint8_t **sort_base;

static int cmp_page(const void *a, const void *b)
{
    return memcmp(sort_base[*(const uint32_t *)a],
                  sort_base[*(const uint32_t *)b], DE_PAGE_SIZE);
}

/* Independent count of zero pages and of non-zero pages equal to another
 * page of the set (all but one of each content), by sorting. */
static void count_independent(struct mem_image *imgs, size_t nimg,
                              uint64_t *total, uint64_t *zero, uint64_t *dup)
{
    size_t n = 0, k = 0;
    const uint8_t **pg;
    uint32_t *idx;

    for (size_t m = 0; m < nimg; m++)
        n += imgs[m].npages;
    pg = malloc(n * sizeof *pg);
    idx = malloc(n * sizeof *idx);
    for (size_t m = 0; m < nimg; m++)
        for (size_t i = 0; i < imgs[m].npages; i++, k++) {
            pg[k] = mem_image_page(&imgs[m], i);
            idx[k] = (uint32_t)k;
        }
    sort_base = pg;
    qsort(idx, n, sizeof *idx, cmp_page);
    *total = n;
    *zero = 0;
    *dup = 0;
    for (size_t i = 0; i < n; i++) {
        static const uint8_t z[DE_PAGE_SIZE];
        if (memcmp(pg[idx[i]], z, DE_PAGE_SIZE) == 0)
            (*zero)++;
        else if (i > 0 && memcmp(pg[idx[i]], pg[idx[i - 1]], DE_PAGE_SIZE) == 0)
            (*dup)++;
    }
    free(pg);
    free(idx);
}

static int open_samples(struct mem_image *imgs, const char *const *names,
                        size_t n, const char *dir)
{
    char path[4096], err[512];

    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (mem_image_open(&imgs[i], path, err, sizeof err) != 0) {
            fprintf(stderr, "%s\n", err);
            while (i-- > 0)
                mem_image_close(&imgs[i]);
            return -1;
        }
    }
    return 0;
}

static void test_counts_match_independent_count(void)
{
    static const char *const names[] = { "vm-web-1.ram.zst", "vm-web-2.ram.zst",
                                         "vm-db-2.ram.zst" };
    struct mem_image imgs[3];
    struct analyze_opts o;
    struct analyze_result r;
    uint64_t total, zero, dup, sum = 0;
    char err[256];

    CU_ASSERT_FATAL(open_samples(imgs, names, 3, tu_samples_dir()) == 0);
    count_independent(imgs, 3, &total, &zero, &dup);
    analyze_default_opts(&o);
    CU_ASSERT_FATAL(analyze_run(imgs, 3, &o, &r, err, sizeof err) == 0);
    CU_ASSERT_EQUAL(r.total.pages_total, total);
    CU_ASSERT_EQUAL(r.total.pages_zero, zero);
    CU_ASSERT_EQUAL(r.total.pages_dup, dup);
    CU_ASSERT_EQUAL(r.verify_mismatches, 0);
    /* every page is in exactly one class */
    sum = r.total.pages_zero + r.total.pages_dup + r.total.pages_shared_first +
          r.total.pages_patched + r.total.pages_reference +
          r.total.pages_compressed + r.total.pages_incompressible;
    CU_ASSERT_EQUAL(sum, total);
    for (int m = 0; m < 3; m++)
        CU_ASSERT_EQUAL(r.image[m].pages_total, imgs[m].npages);
    /* the real samples have all kinds of redundancy */
    CU_ASSERT(r.total.pages_zero > 0);
    CU_ASSERT(r.total.pages_dup > 0);
    CU_ASSERT(r.total.pages_patched > 0);
    CU_ASSERT(r.total.pages_compressed > 0);
    CU_ASSERT(r.total.patch_bytes <= r.total.pages_patched * o.patch_threshold);
    /* Savings are net and ordered the way the techniques stack. */
    CU_ASSERT(r.saved.share > 0);
    CU_ASSERT(r.saved.de > r.saved.share_patch);
    CU_ASSERT(r.saved.de > r.saved.compress);
    CU_ASSERT(r.saved.de < (int64_t)(total * DE_PAGE_SIZE));
    /* patch codecs were compared on the same pairs */
    CU_ASSERT_EQUAL(r.patch[PATCH_XDELTA3].tried, r.patch[PATCH_ZSTD].tried);
    CU_ASSERT_EQUAL(r.patch[PATCH_BSDIFF].tried, r.patch[PATCH_ZSTD].tried);
    CU_ASSERT_EQUAL(r.patch[o.patch_codec].accepted, r.total.pages_patched);
    CU_ASSERT_EQUAL(r.comp[o.compressor].accepted, r.total.pages_compressed);
    analyze_result_free(&r);
    for (int m = 0; m < 3; m++)
        mem_image_close(&imgs[m]);
}

/* Two copies of one image: every page of the second is a twin. */
static void test_twin_images(void)
{
    static const char *const names[] = { "vm-db-2.ram.zst", "vm-db-2.ram.zst" };
    struct mem_image imgs[2];
    struct analyze_opts o;
    struct analyze_result r;
    char err[256];

    CU_ASSERT_FATAL(open_samples(imgs, names, 2, tu_samples_dir()) == 0);
    analyze_default_opts(&o);
    o.compare = 0;
    CU_ASSERT_FATAL(analyze_run(imgs, 2, &o, &r, err, sizeof err) == 0);
    CU_ASSERT_EQUAL(r.image[1].pages_zero + r.image[1].pages_dup, imgs[1].npages);
    CU_ASSERT_EQUAL(r.image[0].pages_patched + r.image[0].pages_compressed +
                    r.image[0].pages_incompressible + r.image[0].pages_reference, 0);
    analyze_result_free(&r);
    mem_image_close(&imgs[0]);
    mem_image_close(&imgs[1]);
}

static void test_bwt_experiment_round_trips(void)
{
    static const char *const names[] = { "vm-web-1.ram.zst" };
    struct mem_image img;
    struct analyze_opts o;
    struct analyze_result r;
    char err[256];

    CU_ASSERT_FATAL(open_samples(&img, names, 1, tu_samples_dir()) == 0);
    analyze_default_opts(&o);
    o.compare = 0;
    o.bwt = 1;
    CU_ASSERT_FATAL(analyze_run(&img, 1, &o, &r, err, sizeof err) == 0);
    CU_ASSERT_EQUAL(r.bwt.ran, 1);
    CU_ASSERT_EQUAL(r.bwt.mismatches, 0);
    CU_ASSERT_EQUAL(r.bwt.patched_plain, r.total.pages_patched);
    CU_ASSERT(r.bwt.ns_bwt > 0);
    analyze_result_free(&r);
    mem_image_close(&img);
}

/* Runs a shell command, returns its exit status and the first `cap` bytes
 * of its stdout. */
static int run(const char *cmd, char *out, size_t cap)
{
    FILE *p = popen(cmd, "r");
    size_t n = 0;
    int st;

    if (!p)
        return -1;
    if (out) {
        n = fread(out, 1, cap - 1, p);
        out[n] = 0;
    }
    while (fgetc(p) != EOF)
        ;
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static uint64_t json_u64(const char *js, const char *key)
{
    char pat[128];
    const char *p;

    snprintf(pat, sizeof pat, "\"%s\":", key);
    p = strstr(js, pat);
    return p ? strtoull(p + strlen(pat), NULL, 10) : UINT64_MAX;
}

static void test_program_json(void)
{
    static char out[1 << 16];
    char cmd[8192];
    struct mem_image imgs[2];
    static const char *const names[] = { "vm-web-1.ram.zst", "vm-web-2.ram.zst" };
    uint64_t total, zero, dup;

    CU_ASSERT_FATAL(open_samples(imgs, names, 2, tu_samples_dir()) == 0);
    count_independent(imgs, 2, &total, &zero, &dup);
    mem_image_close(&imgs[0]);
    mem_image_close(&imgs[1]);
    snprintf(cmd, sizeof cmd, "%s --json --verify %s/vm-web-1.ram.zst %s/vm-web-2.ram.zst",
             DE_ANALYZE_BIN, tu_samples_dir(), tu_samples_dir());
    CU_ASSERT_EQUAL_FATAL(run(cmd, out, sizeof out), 0);
    CU_ASSERT_EQUAL(json_u64(out, "pages_total"), total);
    CU_ASSERT_EQUAL(json_u64(out, "pages_zero"), zero);
    CU_ASSERT_EQUAL(json_u64(out, "pages_dup"), dup);
    CU_ASSERT_EQUAL(json_u64(out, "verify_mismatches"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"saved_bytes\":{\"share\":"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"xdelta3\":{"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"bsdiff\":{"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"lz4\":{"));
    CU_ASSERT(json_u64(out, "pages_patched") > 0 && json_u64(out, "pages_patched") < total);
}

static void test_program_bad_input(void)
{
    char cmd[8192], path[4096], out[4096];
    FILE *f;

    /* size not a whole number of pages, and the message names the file */
    snprintf(path, sizeof path, "%s/odd.ram", tu_tmpdir());
    f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    for (int i = 0; i < 5000; i++)
        fputc(i & 0xff, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s %s/vm-web-1.ram.zst %s 2>&1", DE_ANALYZE_BIN,
             tu_samples_dir(), path);
    CU_ASSERT_EQUAL(run(cmd, out, sizeof out), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, path));
    /* nothing half-reported: no table was printed */
    CU_ASSERT_PTR_NULL(strstr(out, "net saving"));
    snprintf(cmd, sizeof cmd, "%s /nonexistent/image.ram 2>&1", DE_ANALYZE_BIN);
    CU_ASSERT_EQUAL(run(cmd, out, sizeof out), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "/nonexistent/image.ram"));
    snprintf(cmd, sizeof cmd, "%s --patch-codec nosuch %s/vm-web-1.ram.zst 2>&1",
             DE_ANALYZE_BIN, tu_samples_dir());
    CU_ASSERT_EQUAL(run(cmd, out, sizeof out), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "nosuch"));
    snprintf(cmd, sizeof cmd, "%s --simdetect 2,1 %s/vm-web-1.ram.zst 2>&1",
             DE_ANALYZE_BIN, tu_samples_dir());
    CU_ASSERT_EQUAL(run(cmd, out, sizeof out), 2);
}

/* The full corpus, when present: two VMs of the same workload. */
static void test_corpus_pair(void)
{
    static const char *const names[] = { "vm-web-1.ram.zst", "vm-web-2.ram.zst" };
    struct mem_image imgs[2];
    struct analyze_opts o;
    struct analyze_result r;
    uint64_t total, zero, dup;
    char err[256];

    if (!tu_corpus_dir()) {
        fprintf(stderr, "\n  skipped: no corpus at ../shared/corpus\n");
        return;
    }
    CU_ASSERT_FATAL(open_samples(imgs, names, 2, tu_corpus_dir()) == 0);
    count_independent(imgs, 2, &total, &zero, &dup);
    analyze_default_opts(&o);
    o.compare = 0;
    CU_ASSERT_FATAL(analyze_run(imgs, 2, &o, &r, err, sizeof err) == 0);
    CU_ASSERT_EQUAL(r.total.pages_total, 65536);
    CU_ASSERT_EQUAL(r.total.pages_zero, zero);
    CU_ASSERT_EQUAL(r.total.pages_dup, dup);
    CU_ASSERT_EQUAL(r.verify_mismatches, 0);
    CU_ASSERT(r.saved.de > r.saved.share);
    analyze_result_free(&r);
    mem_image_close(&imgs[0]);
    mem_image_close(&imgs[1]);
}

int register_analyze_tests(void)
{
    CU_pSuite s = CU_add_suite("analyze", NULL, NULL);

    if (!s || !CU_add_test(s, "counts match an independent count", test_counts_match_independent_count) ||
        !CU_add_test(s, "twin images share everything", test_twin_images) ||
        !CU_add_test(s, "BWT experiment round-trips", test_bwt_experiment_round_trips) ||
        !CU_add_test(s, "de-analyze --json end to end", test_program_json) ||
        !CU_add_test(s, "de-analyze bad input", test_program_bad_input) ||
        !CU_add_test(s, "full corpus pair", test_corpus_pair))
        return CU_get_error();
    return CUE_SUCCESS;
}

/*
 * tests.h - the CUnit suites of the unit test runner, and helpers to load
 * real pages for them.
 */
#ifndef DE_TESTS_H
#define DE_TESTS_H

#include <stddef.h>
#include <stdint.h>

/* Each test file registers its suites; returns 0 or a CUnit error. */
int register_page_hash_tests(void);
int register_share_index_tests(void);
int register_simdetect_tests(void);
int register_codec_tests(void);
int register_mem_image_tests(void);
int register_analyze_tests(void);

/* Directory of the repository's shipped samples (samples/). */
const char *tu_samples_dir(void);
/* Directory of the full corpus (../shared/corpus), or NULL if absent. */
const char *tu_corpus_dir(void);
/* A scratch directory for the run, created on first use. */
const char *tu_tmpdir(void);

/* Loads up to `max` pages of a sample image ("vm-web-1" ...) starting at
 * page `first`; returns a malloc'd buffer of *n pages, or NULL. */
uint8_t *tu_sample_pages(const char *name, size_t first, size_t max,
                         size_t *n);

/* Fills a page with deterministic pseudo-random bytes. */
void tu_random_page(void *page, uint64_t seed);

#endif

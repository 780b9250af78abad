/*
 * test_util.c - where the tests find real pages.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem_image.h"
#include "page.h"
#include "tests.h"

const char *tu_samples_dir(void)
{
    const char *d = getenv("DE_SAMPLES_DIR");
    return d && *d ? d : "samples";
}

const char *tu_corpus_dir(void)
{
    static char path[4096];
    const char *d = getenv("DE_CORPUS_DIR");
    struct stat st;

    if (!d || !*d)
        d = "../shared/corpus";
    snprintf(path, sizeof path, "%s/MANIFEST.md", d);
    if (stat(path, &st) != 0)
        return NULL;
    snprintf(path, sizeof path, "%s", d);
    return path;
}

const char *tu_tmpdir(void)
{
    static char dir[64];

    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/de-unit-XXXXXX");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            exit(2);
        }
    }
    return dir;
}

uint8_t *tu_sample_pages(const char *name, size_t first, size_t max,
                         size_t *n)
{
    struct mem_image img;
    char path[4096], err[512];
    uint8_t *buf;
    size_t cnt;

    snprintf(path, sizeof path, "%s/%s.ram.zst", tu_samples_dir(), name);
    if (mem_image_open(&img, path, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return NULL;
    }
    if (first >= img.npages) {
        mem_image_close(&img);
        return NULL;
    }
    cnt = img.npages - first;
    if (cnt > max)
        cnt = max;
    buf = malloc(cnt * DE_PAGE_SIZE);
    if (buf)
        for (size_t i = 0; i < cnt; i++)
            memcpy(buf + i * DE_PAGE_SIZE, mem_image_page(&img, first + i),
                   DE_PAGE_SIZE);
    mem_image_close(&img);
    *n = cnt;
    return buf;
}

void tu_random_page(void *page, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1, *p = page;

    for (size_t i = 0; i < DE_PAGE_SIZE / 8; i++) {
        /* xorshift64*: deterministic, incompressible enough */
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        p[i] = x * 0x2545F4914F6CDD1Dull;
    }
}

/*
 * bench_ops - per-operation cost of the engine, in the shape of Table 2 of
 * the Difference Engine paper: µs per 4 KiB page for hash+lookup, share,
 * patch (including finding the reference), unpatch, compress and
 * uncompress, for every codec, on real pages.
 *
 *   bench_ops [-r ROUNDS] [--json] IMAGE...
 *
 * Each figure is the median over ROUNDS passes of the mean per page, so a
 * busy neighbour on a shared machine moves it less. For repeatable counts
 * run it under `valgrind --tool=callgrind` (instructions, not seconds).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

#include "compressor.h"
#include "mem_image.h"
#include "page.h"
#include "page_hash.h"
#include "patch_codec.h"
#include "share_index.h"
#include "simdetect.h"

#define MAX_ROUNDS 15

static const uint8_t **pg;
static size_t npg;

static double now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static const void *page_of(void *ctx, uint64_t id)
{
    (void)ctx;
    return id < npg ? pg[id] : NULL;
}

struct row {
    char op[48];
    char codec[16];
    double us;
    size_t n;
    double avg_bytes;
};

static struct row rows[64];
static int nrows;

static void add_row(const char *op, const char *codec, double us, size_t n,
                    double avg_bytes)
{
    struct row *r = &rows[nrows++];

    snprintf(r->op, sizeof r->op, "%s", op);
    snprintf(r->codec, sizeof r->codec, "%s", codec);
    r->us = us;
    r->n = n;
    r->avg_bytes = avg_bytes;
}

static void machine(char *buf, size_t len)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512], model[256] = "unknown CPU";
    struct utsname u;

    if (f) {
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "model name", 10) == 0) {
                char *c = strchr(line, ':');
                if (c) {
                    snprintf(model, sizeof model, "%s", c + 2);
                    model[strcspn(model, "\n")] = 0;
                }
                break;
            }
        fclose(f);
    }
    uname(&u);
    snprintf(buf, len, "%s, Linux %s %s", model, u.release, u.machine);
}

int main(int argc, char **argv)
{
    int rounds = 5, json = 0, ai = 1;
    struct mem_image *imgs;
    int nimg;
    uint8_t out[DE_PAGE_SIZE];
    double t[MAX_ROUNDS];
    char err[512], mach[512];

    while (ai < argc && argv[ai][0] == '-') {
        if (strcmp(argv[ai], "-r") == 0 && ai + 1 < argc) {
            rounds = atoi(argv[++ai]);
            if (rounds < 1 || rounds > MAX_ROUNDS) {
                fprintf(stderr, "bench_ops: -r wants 1..%d\n", MAX_ROUNDS);
                return 2;
            }
        } else if (strcmp(argv[ai], "--json") == 0) {
            json = 1;
        } else {
            fprintf(stderr, "usage: bench_ops [-r ROUNDS] [--json] IMAGE...\n");
            return 2;
        }
        ai++;
    }
    nimg = argc - ai;
    if (nimg < 1) {
        fprintf(stderr, "usage: bench_ops [-r ROUNDS] [--json] IMAGE...\n");
        return 2;
    }
    imgs = calloc((size_t)nimg, sizeof *imgs);
    for (int i = 0; i < nimg; i++) {
        if (mem_image_open(&imgs[i], argv[ai + i], err, sizeof err) != 0) {
            fprintf(stderr, "bench_ops: %s\n", err);
            return 2;
        }
        npg += imgs[i].npages;
    }
    pg = malloc(npg * sizeof *pg);
    for (int i = 0, k = 0; i < nimg; i++)
        for (size_t j = 0; j < imgs[i].npages; j++)
            pg[k++] = mem_image_page(&imgs[i], j);

    /* The share index over every page, and the pages with a twin. */
    struct share_index *si = share_index_new(npg, page_of, NULL);
    uint64_t *hashes = malloc(npg * sizeof *hashes);
    size_t *dups = malloc(npg * sizeof *dups), ndup = 0;
    for (size_t i = 0; i < npg; i++) {
        uint64_t twin;
        hashes[i] = page_hash(pg[i]);
        if (share_index_find_or_insert(si, pg[i], hashes[i], i, &twin) == 1)
            dups[ndup++] = i;
    }

    /* hash + lookup: every page */
    for (int r = 0; r < rounds; r++) {
        volatile uint64_t sink = 0;
        double t0 = now_us();
        for (size_t i = 0; i < npg; i++) {
            uint64_t twin = 0;
            sink += (uint64_t)share_index_lookup(si, pg[i], page_hash(pg[i]), &twin) + twin;
        }
        t[r] = (now_us() - t0) / (double)npg;
    }
    add_row("hash+lookup", "xxh3", median(t, rounds), npg, 0);

    /* share: a twin found and confirmed byte for byte */
    if (ndup) {
        for (int r = 0; r < rounds; r++) {
            volatile int sink = 0;
            double t0 = now_us();
            for (size_t j = 0; j < ndup; j++) {
                uint64_t twin;
                if (share_index_lookup(si, pg[dups[j]], hashes[dups[j]], &twin))
                    sink += page_equal(pg[dups[j]], pg[twin]);
            }
            t[r] = (now_us() - t0) / (double)ndup;
        }
        add_row("share (lookup + 4 KiB compare)", "-", median(t, rounds), ndup, 0);
    }

    /* Pairs for patching: each page without a twin against the reference
     * the detector finds among the pages before it. */
    struct simdetect_params sp;
    simdetect_default_params(&sp);
    struct simdetect *sd = simdetect_new(&sp, npg);
    size_t *pp = malloc(npg * sizeof *pp), *pr = malloc(npg * sizeof *pr), npairs = 0;
    for (size_t i = 0; i < npg; i++) {
        struct simdetect_keys k;
        uint64_t ref, twin;
        if (page_is_zero(pg[i]))
            continue;
        if (share_index_lookup(si, pg[i], hashes[i], &twin) && twin != i)
            continue;
        simdetect_keys(sd, pg[i], &k);
        if (simdetect_find(sd, &k, i, &ref)) {
            pp[npairs] = i;
            pr[npairs++] = ref;
        } else {
            simdetect_insert(sd, &k, i);
        }
    }
    for (int c = 0; c < PATCH_NCODECS && npairs; c++) {
        struct patch_codec *pc = patch_codec_new((enum patch_codec_id)c, 0);
        static uint8_t *store;
        static uint16_t *slen;
        size_t nacc = 0, bytes = 0;

        store = realloc(store, npairs * 2048);
        slen = realloc(slen, npairs * sizeof *slen);
        for (int r = 0; r < rounds; r++) {
            double t0 = now_us();
            nacc = bytes = 0;
            for (size_t j = 0; j < npairs; j++) {
                struct simdetect_keys k;
                uint64_t ref;
                ssize_t len;
                /* finding the reference is part of the cost */
                simdetect_keys(sd, pg[pp[j]], &k);
                simdetect_find(sd, &k, pp[j], &ref);
                len = patch_encode(pc, pg[pr[j]], pg[pp[j]], store + j * 2048, 2048);
                slen[j] = len > 0 ? (uint16_t)len : 0;
                if (len > 0) {
                    nacc++;
                    bytes += (size_t)len;
                }
            }
            t[r] = (now_us() - t0) / (double)npairs;
        }
        add_row("patch (find reference + encode)", patch_codec_name((enum patch_codec_id)c),
                median(t, rounds), npairs, nacc ? (double)bytes / (double)nacc : 0);
        for (int r = 0; r < rounds && nacc; r++) {
            double t0 = now_us();
            for (size_t j = 0; j < npairs; j++)
                if (slen[j] && patch_decode(pc, pg[pr[j]], store + j * 2048, slen[j], out) != 0) {
                    fprintf(stderr, "bench_ops: %s decode failed\n", patch_codec_name((enum patch_codec_id)c));
                    return 1;
                }
            t[r] = (now_us() - t0) / (double)nacc;
        }
        if (nacc)
            add_row("unpatch", patch_codec_name((enum patch_codec_id)c), median(t, rounds), nacc, 0);
        patch_codec_free(pc);
    }

    /* compress / uncompress: every non-zero page */
    for (int c = 0; c < COMP_NCOMPRESSORS; c++) {
        struct compressor *cc = compressor_new((enum compressor_id)c, 0);
        static uint8_t *store;
        static uint16_t *slen;
        size_t nacc = 0, bytes = 0, ntried = 0;

        store = realloc(store, npg * 2048);
        slen = realloc(slen, npg * sizeof *slen);
        for (int r = 0; r < rounds; r++) {
            double t0 = now_us();
            nacc = bytes = ntried = 0;
            for (size_t i = 0; i < npg; i++) {
                ssize_t len;
                if (page_is_zero(pg[i])) {
                    slen[i] = 0;
                    continue;
                }
                ntried++;
                len = compressor_encode(cc, pg[i], store + i * 2048, 2048);
                slen[i] = len > 0 ? (uint16_t)len : 0;
                if (len > 0) {
                    nacc++;
                    bytes += (size_t)len;
                }
            }
            t[r] = (now_us() - t0) / (double)ntried;
        }
        add_row("compress", compressor_name((enum compressor_id)c), median(t, rounds), ntried,
                nacc ? (double)bytes / (double)nacc : 0);
        for (int r = 0; r < rounds && nacc; r++) {
            double t0 = now_us();
            for (size_t i = 0; i < npg; i++)
                if (slen[i] && compressor_decode(cc, store + i * 2048, slen[i], out) != 0) {
                    fprintf(stderr, "bench_ops: %s decode failed\n", compressor_name((enum compressor_id)c));
                    return 1;
                }
            t[r] = (now_us() - t0) / (double)nacc;
        }
        if (nacc)
            add_row("uncompress", compressor_name((enum compressor_id)c), median(t, rounds), nacc, 0);
        compressor_free(cc);
    }

    machine(mach, sizeof mach);
    if (json) {
        printf("{\"machine\":\"%s\",\"pages\":%zu,\"rounds\":%d,\"ops\":[", mach, npg, rounds);
        for (int i = 0; i < nrows; i++)
            printf("%s{\"op\":\"%s\",\"codec\":\"%s\",\"us_per_page\":%.3f,\"pages\":%zu,\"avg_bytes\":%.1f}",
                   i ? "," : "", rows[i].op, rows[i].codec, rows[i].us, rows[i].n, rows[i].avg_bytes);
        printf("]}\n");
    } else {
        printf("machine: %s\ninput: %zu pages from", mach, npg);
        for (int i = 0; i < nimg; i++)
            printf(" %s", argv[ai + i]);
        printf("\nmedian of %d rounds, microseconds per 4 KiB page\n\n", rounds);
        printf("%-34s %-8s %10s %9s %10s\n", "operation", "codec", "us/page", "pages", "avg bytes");
        for (int i = 0; i < nrows; i++)
            printf("%-34s %-8s %10.2f %9zu %10.0f\n", rows[i].op, rows[i].codec, rows[i].us,
                   rows[i].n, rows[i].avg_bytes);
    }
    return 0;
}

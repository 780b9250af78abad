/*
 * de-analyze - what the Difference Engine would save on memory images.
 *
 * Every image is one guest's memory; the images are analyzed together, as
 * guests of one host. See de-analyze(1).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analyze.h"
#include "report.h"

static void usage(FILE *f)
{
    fprintf(f,
"usage: de-analyze [options] IMAGE...\n"
"  IMAGE: raw page dump, ELF core (QEMU dump-guest-memory, Linux core),\n"
"         either optionally zstd-compressed\n"
"  --json                 machine-readable output (docs/de-analyze-json.md)\n"
"  --verify               report decode mismatches (every encoding is decoded)\n"
"  --patch-codec NAME     xdelta3 | zstd | bsdiff        (default zstd)\n"
"  --compressor NAME      lzo | lz4 | zstd               (default lzo)\n"
"  --zstd-level N         level of the zstd compressor   (default 3)\n"
"  --patch-threshold B    keep patches of at most B bytes (default 2048)\n"
"  --compress-threshold B keep compressed pages of at most B bytes (default 2048)\n"
"  --simdetect K,S,C      similarity detector (default 2,1,1)\n"
"  --seed N               block offsets of the detector\n"
"  --main-only            measure only the chosen codec and compressor\n"
"  --bwt                  also run the BWT+MTF pre-transform experiment\n"
"  --whole-objects        count the daemon's copies of shared contents and\n"
"                         references whole (default: compressed, as de-dom0d)\n"
"  --progress | --no-progress   progress bar on stderr (default: on a tty\n"
"                         for inputs of 64 MiB or more)\n"
"  -h, --help\n");
}

static int parse_size(const char *s, size_t lo, size_t hi, size_t *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi)
        return -1;
    *out = (size_t)v;
    return 0;
}

struct progress_state {
    int last;
};

static void show_progress(void *ctx, uint64_t done, uint64_t total)
{
    struct progress_state *ps = ctx;
    int permille = total ? (int)(done * 1000 / total) : 1000;

    if (permille > 1000)
        permille = 1000;
    if (permille - ps->last < 5 && permille != 1000)
        return;
    ps->last = permille;
    fprintf(stderr, "\r[%-40.*s] %3d%%", permille * 40 / 1000,
            "########################################", permille / 10);
    if (permille == 1000)
        fputc('\n', stderr);
}

int main(int argc, char **argv)
{
    enum { O_JSON = 256, O_VERIFY, O_PCODEC, O_COMP, O_ZLEVEL, O_PTHR,
           O_CTHR, O_SIMD, O_SEED, O_MAIN, O_BWT, O_PROG, O_NOPROG,
           O_WHOLE };
    static const struct option lo[] = {
        { "json", no_argument, NULL, O_JSON },
        { "verify", no_argument, NULL, O_VERIFY },
        { "patch-codec", required_argument, NULL, O_PCODEC },
        { "compressor", required_argument, NULL, O_COMP },
        { "zstd-level", required_argument, NULL, O_ZLEVEL },
        { "patch-threshold", required_argument, NULL, O_PTHR },
        { "compress-threshold", required_argument, NULL, O_CTHR },
        { "simdetect", required_argument, NULL, O_SIMD },
        { "seed", required_argument, NULL, O_SEED },
        { "main-only", no_argument, NULL, O_MAIN },
        { "bwt", no_argument, NULL, O_BWT },
        { "whole-objects", no_argument, NULL, O_WHOLE },
        { "progress", no_argument, NULL, O_PROG },
        { "no-progress", no_argument, NULL, O_NOPROG },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct analyze_opts o;
    struct analyze_result r;
    struct progress_state ps = { -100 };
    struct mem_image *imgs;
    int json = 0, verify = 0, prog = -1, ch, nimg, rc;
    uint64_t pages = 0;
    char err[1024];

    analyze_default_opts(&o);
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        size_t v;
        int id;
        unsigned k, s, c;
        char tail;

        switch (ch) {
        case O_JSON: json = 1; break;
        case O_VERIFY: verify = 1; break;
        case O_PCODEC:
            if ((id = patch_codec_lookup(optarg)) < 0) {
                fprintf(stderr, "de-analyze: unknown patch codec '%s' (xdelta3, zstd, bsdiff)\n", optarg);
                return 2;
            }
            o.patch_codec = (enum patch_codec_id)id;
            break;
        case O_COMP:
            if ((id = compressor_lookup(optarg)) < 0) {
                fprintf(stderr, "de-analyze: unknown compressor '%s' (lzo, lz4, zstd)\n", optarg);
                return 2;
            }
            o.compressor = (enum compressor_id)id;
            break;
        case O_ZLEVEL:
            if (parse_size(optarg, 1, 19, &v) != 0) {
                fprintf(stderr, "de-analyze: --zstd-level wants 1..19, not '%s'\n", optarg);
                return 2;
            }
            o.zstd_level = (int)v;
            break;
        case O_PTHR:
        case O_CTHR:
            if (parse_size(optarg, 16, 4096, &v) != 0) {
                fprintf(stderr, "de-analyze: thresholds are 16..4096 bytes, not '%s'\n", optarg);
                return 2;
            }
            *(ch == O_PTHR ? &o.patch_threshold : &o.compress_threshold) = v;
            break;
        case O_SIMD:
            if (sscanf(optarg, "%u,%u,%u%c", &k, &s, &c, &tail) != 3 ||
                k < 1 || k > SIMDETECT_MAX_K || s < 1 || s > SIMDETECT_MAX_S ||
                c < 1 || c > SIMDETECT_MAX_C) {
                fprintf(stderr, "de-analyze: --simdetect wants K,S,C with K 1..%d, S 1..%d, C 1..%d, not '%s'\n",
                        SIMDETECT_MAX_K, SIMDETECT_MAX_S, SIMDETECT_MAX_C, optarg);
                return 2;
            }
            o.sd.k = k; o.sd.s = s; o.sd.c = c;
            break;
        case O_SEED:
            if (parse_size(optarg, 0, SIZE_MAX, &v) != 0) {
                fprintf(stderr, "de-analyze: bad --seed '%s'\n", optarg);
                return 2;
            }
            o.sd.seed = v;
            break;
        case O_MAIN: o.compare = 0; break;
        case O_BWT: o.bwt = 1; break;
        case O_WHOLE: o.whole_objects = 1; break;
        case O_PROG: prog = 1; break;
        case O_NOPROG: prog = 0; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    nimg = argc - optind;
    if (nimg < 1) {
        usage(stderr);
        return 2;
    }
    imgs = calloc((size_t)nimg, sizeof *imgs);
    if (!imgs) {
        perror("de-analyze");
        return 1;
    }
    /* Open every image before reporting anything: a bad one stops the run
     * with nothing half-reported. */
    for (int i = 0; i < nimg; i++) {
        if (mem_image_open(&imgs[i], argv[optind + i], err, sizeof err) != 0) {
            fprintf(stderr, "de-analyze: %s\n", err);
            while (i-- > 0)
                mem_image_close(&imgs[i]);
            free(imgs);
            return 2;
        }
        pages += imgs[i].npages;
    }
    if (prog < 0)
        prog = isatty(STDERR_FILENO) && pages >= 16384;
    if (prog) {
        o.progress = show_progress;
        o.progress_ctx = &ps;
    }
    rc = analyze_run(imgs, (size_t)nimg, &o, &r, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "de-analyze: %s\n", err);
    } else {
        if (json)
            report_json(stdout, &r, &o, argv + optind, verify);
        else
            report_table(stdout, &r, &o, argv + optind);
        if (r.verify_mismatches) {
            fprintf(stderr, "de-analyze: %" PRIu64 " encodings did not decode bit-exact\n",
                    r.verify_mismatches);
            rc = 1;
        }
        analyze_result_free(&r);
    }
    for (int i = 0; i < nimg; i++)
        mem_image_close(&imgs[i]);
    free(imgs);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        perror("de-analyze: stdout");
        return 1;
    }
    return rc ? 1 : 0;
}

/*
 * test_codecs.c - patch codecs, compressors and the page BWT: exact round
 * trips on real and crafted pages, the capacity limit, and hostile input
 * (truncated, bit-flipped, garbage) that must be rejected or decode to
 * exactly one page without writing outside it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "compressor.h"
#include "page.h"
#include "page_bwt.h"
#include "patch_codec.h"
#include "tests.h"

#define PG DE_PAGE_SIZE
#define CAP DE_DEFAULT_THRESHOLD
#define GUARD 64
#define GUARD_BYTE 0xA5
#define NSAMPLE 384 /* pages loaded from each sample image */

/* ---- fixtures ---------------------------------------------------------- */

struct sample {
    const char *name;
    uint8_t *pages;
    size_t n;
};

static struct sample samples[] = {
    { "vm-web-1", NULL, 0 },
    { "vm-web-2", NULL, 0 },
    { "vm-db-2", NULL, 0 },
};
enum { WEB1, WEB2, DB2 };

static const struct sample *sample(int which)
{
    struct sample *s = &samples[which];

    if (!s->pages)
        s->pages = tu_sample_pages(s->name, 0, NSAMPLE, &s->n);
    return s->pages ? s : NULL;
}

static const uint8_t *spage(const struct sample *s, size_t i)
{
    return s->pages + i * PG;
}

static int cleanup_samples(void)
{
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        free(samples[i].pages);
        samples[i].pages = NULL;
        samples[i].n = 0;
    }
    return 0;
}

static int is_zero_page(const uint8_t *p)
{
    for (size_t i = 0; i < PG; i++)
        if (p[i])
            return 0;
    return 1;
}

/* tu_random_page() stores 64-bit words: it needs an aligned page. */
static void random_page(uint8_t *p, uint64_t seed)
{
    static _Alignas(8) uint8_t tmp[PG];

    tu_random_page(tmp, seed);
    memcpy(p, tmp, PG);
}

static void fill_page(uint8_t *p, int byte)
{
    memset(p, byte, PG);
}

/* Output buffers with guard bytes right after the usable area. */
static uint8_t enc_buf[4 * PG + GUARD];
static uint8_t dec_buf[PG + GUARD];

static void arm(uint8_t *guard)
{
    memset(guard, GUARD_BYTE, GUARD);
}

static int guard_ok(const uint8_t *guard)
{
    for (size_t i = 0; i < GUARD; i++)
        if (guard[i] != GUARD_BYTE)
            return 0;
    return 1;
}

/* ---- patch helpers ----------------------------------------------------- */

static int nfail; /* round-trip failures counted by the helpers */

/* Encodes tgt against ref with capacity cap into enc_buf, checks that
 * nothing was written past cap, decodes, checks the page and the output
 * guard. Returns the patch length, or the encoder's negative code. */
static ssize_t patch_rt(struct patch_codec *pc, const uint8_t *ref,
                        const uint8_t *tgt, size_t cap)
{
    ssize_t len;
    int r;

    arm(enc_buf + cap);
    len = patch_encode(pc, ref, tgt, enc_buf, cap);
    if (!guard_ok(enc_buf + cap) || len == 0 || (len > 0 && (size_t)len > cap) ||
        (len < 0 && len != PATCH_TOO_BIG)) {
        if (nfail++ < 5)
            fprintf(stderr, "\n%s: encode returned %zd (cap %zu), guard %s\n",
                    patch_codec_name(patch_codec_id(pc)), len, cap,
                    guard_ok(enc_buf + cap) ? "ok" : "overwritten");
        return len > 0 ? -EIO : len;
    }
    if (len < 0)
        return len;
    arm(dec_buf + PG);
    r = patch_decode(pc, ref, enc_buf, (size_t)len, dec_buf);
    if (r != 0 || memcmp(dec_buf, tgt, PG) != 0 || !guard_ok(dec_buf + PG)) {
        if (nfail++ < 5)
            fprintf(stderr, "\n%s: decode returned %d, page %s\n",
                    patch_codec_name(patch_codec_id(pc)), r,
                    r ? "-" : memcmp(dec_buf, tgt, PG) ? "differs" : "ok");
        return -EIO;
    }
    return len;
}

static struct patch_codec *codecs[PATCH_NCODECS];

static int open_codecs(void)
{
    for (int c = 0; c < PATCH_NCODECS; c++)
        if (!(codecs[c] = patch_codec_new(c, 0)))
            return -1;
    return 0;
}

static int close_codecs(void)
{
    for (int c = 0; c < PATCH_NCODECS; c++) {
        patch_codec_free(codecs[c]);
        codecs[c] = NULL;
    }
    return cleanup_samples();
}

/* ---- names ------------------------------------------------------------- */

static void test_names(void)
{
    static const char *pnames[] = { "xdelta3", "zstd", "bsdiff" };
    static const char *cnames[] = { "lzo", "lz4", "zstd" };

    for (int i = 0; i < PATCH_NCODECS; i++) {
        CU_ASSERT_STRING_EQUAL(patch_codec_name(i), pnames[i]);
        CU_ASSERT_EQUAL(patch_codec_lookup(pnames[i]), i);
    }
    for (int i = 0; i < COMP_NCOMPRESSORS; i++) {
        CU_ASSERT_STRING_EQUAL(compressor_name(i), cnames[i]);
        CU_ASSERT_EQUAL(compressor_lookup(cnames[i]), i);
    }
    CU_ASSERT_EQUAL(PATCH_NCODECS, 3);
    CU_ASSERT_EQUAL(COMP_NCOMPRESSORS, 3);
    CU_ASSERT_PTR_NULL(patch_codec_name(PATCH_NCODECS));
    CU_ASSERT_PTR_NULL(patch_codec_name((enum patch_codec_id)-1));
    CU_ASSERT_PTR_NULL(compressor_name(COMP_NCOMPRESSORS));
    CU_ASSERT_EQUAL(patch_codec_lookup("lzo"), -1);
    CU_ASSERT_EQUAL(patch_codec_lookup("XDELTA3"), -1);
    CU_ASSERT_EQUAL(patch_codec_lookup(""), -1);
    CU_ASSERT_EQUAL(patch_codec_lookup(NULL), -1);
    CU_ASSERT_EQUAL(compressor_lookup("bsdiff"), -1);
    CU_ASSERT_EQUAL(compressor_lookup(NULL), -1);

    errno = 0;
    CU_ASSERT_PTR_NULL(patch_codec_new(PATCH_NCODECS, 0));
    CU_ASSERT_EQUAL(errno, EINVAL);
    errno = 0;
    CU_ASSERT_PTR_NULL(compressor_new(COMP_NCOMPRESSORS, 0));
    CU_ASSERT_EQUAL(errno, EINVAL);

    for (int i = 0; i < PATCH_NCODECS; i++) {
        struct patch_codec *pc = patch_codec_new(i, 0);

        CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
        CU_ASSERT_EQUAL((int)patch_codec_id(pc), i);
        patch_codec_free(pc);
    }
    for (int i = 0; i < COMP_NCOMPRESSORS; i++) {
        struct compressor *c = compressor_new(i, 0);

        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        CU_ASSERT_EQUAL((int)compressor_id(c), i);
        compressor_free(c);
    }
    patch_codec_free(NULL);
    compressor_free(NULL);
}

static void test_bad_args(void)
{
    static uint8_t a[PG], b[PG], out[PG];
    struct compressor *c;

    for (int i = 0; i < PATCH_NCODECS; i++) {
        struct patch_codec *pc = codecs[i];
        ssize_t len;

        CU_ASSERT_EQUAL(patch_encode(NULL, a, b, out, sizeof out), -EINVAL);
        CU_ASSERT_EQUAL(patch_encode(pc, NULL, b, out, sizeof out), -EINVAL);
        CU_ASSERT_EQUAL(patch_encode(pc, a, NULL, out, sizeof out), -EINVAL);
        CU_ASSERT_EQUAL(patch_encode(pc, a, b, NULL, sizeof out), -EINVAL);
        CU_ASSERT_EQUAL(patch_encode(pc, a, b, out, 0), PATCH_TOO_BIG);
        len = patch_encode(pc, a, b, out, sizeof out);
        CU_ASSERT_FATAL(len > 0);
        CU_ASSERT_EQUAL(patch_decode(pc, a, out, 0, b), -EINVAL);
        CU_ASSERT_EQUAL(patch_decode(NULL, a, out, (size_t)len, b), -EINVAL);
        CU_ASSERT_EQUAL(patch_decode(pc, NULL, out, (size_t)len, b), -EINVAL);
        CU_ASSERT_EQUAL(patch_decode(pc, a, NULL, (size_t)len, b), -EINVAL);
        CU_ASSERT_EQUAL(patch_decode(pc, a, out, (size_t)len, NULL), -EINVAL);
        CU_ASSERT_EQUAL(patch_decode(pc, a, out, (size_t)len, b), 0);
    }
    for (int i = 0; i < COMP_NCOMPRESSORS; i++) {
        ssize_t len;

        c = compressor_new(i, 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        CU_ASSERT_EQUAL(compressor_encode(NULL, a, out, sizeof out), -EINVAL);
        CU_ASSERT_EQUAL(compressor_encode(c, NULL, out, sizeof out), -EINVAL);
        CU_ASSERT_EQUAL(compressor_encode(c, a, NULL, sizeof out), -EINVAL);
        CU_ASSERT_EQUAL(compressor_encode(c, a, out, 0), COMP_TOO_BIG);
        len = compressor_encode(c, a, out, sizeof out);
        CU_ASSERT_FATAL(len > 0);
        CU_ASSERT_EQUAL(compressor_decode(c, out, 0, b), -EINVAL);
        CU_ASSERT_EQUAL(compressor_decode(NULL, out, (size_t)len, b), -EINVAL);
        CU_ASSERT_EQUAL(compressor_decode(c, NULL, (size_t)len, b), -EINVAL);
        CU_ASSERT_EQUAL(compressor_decode(c, out, (size_t)len, NULL), -EINVAL);
        CU_ASSERT_EQUAL(compressor_decode(c, out, (size_t)len, b), 0);
        compressor_free(c);
    }
}

/* ---- patch codecs: crafted pages --------------------------------------- */

static void test_patch_edge_pages(void)
{
    static uint8_t zero[PG], ff[PG], r1[PG], r2[PG], t[PG];
    const struct sample *web = sample(WEB1);
    const uint8_t *real = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(web);
    for (size_t i = 17; i < web->n && !real; i++)
        if (!is_zero_page(spage(web, i)))
            real = spage(web, i);
    CU_ASSERT_PTR_NOT_NULL_FATAL(real);
    fill_page(zero, 0);
    fill_page(ff, 0xFF);
    random_page(r1, 1);
    random_page(r2, 2);

    nfail = 0;
    for (int c = 0; c < PATCH_NCODECS; c++) {
        struct patch_codec *pc = codecs[c];
        const uint8_t *bases[] = { zero, ff, r1, real };
        ssize_t len;

        /* identical and constant pages: a few bytes */
        for (size_t b = 0; b < 4; b++) {
            len = patch_rt(pc, bases[b], bases[b], CAP);
            CU_ASSERT(len > 0 && len < 32);
            if (!(len > 0 && len < 32))
                fprintf(stderr, "\n%s: identical base %zu: %zd\n",
                        patch_codec_name(c), b, len);
        }
        len = patch_rt(pc, zero, ff, CAP);
        CU_ASSERT(len > 0 && len < 64);
        len = patch_rt(pc, ff, zero, CAP);
        CU_ASSERT(len > 0 && len < 64);

        /* one byte changed at the start, the middle, the end */
        for (size_t b = 0; b < 4; b++) {
            const size_t at[] = { 0, 1, PG / 2, PG - 2, PG - 1 };

            for (size_t k = 0; k < sizeof at / sizeof at[0]; k++) {
                memcpy(t, bases[b], PG);
                t[at[k]] ^= 0x5A;
                len = patch_rt(pc, bases[b], t, CAP);
                CU_ASSERT(len > 0 && len < 64);
                if (!(len > 0 && len < 64))
                    fprintf(stderr, "\n%s: base %zu byte %zu: %zd\n",
                            patch_codec_name(c), b, at[k], len);
            }
        }

        /* unrelated random pages: no patch under the threshold */
        CU_ASSERT_EQUAL(patch_rt(pc, r1, r2, CAP), PATCH_TOO_BIG);
        CU_ASSERT_EQUAL(patch_rt(pc, zero, r2, CAP), PATCH_TOO_BIG);
        /* ... but with room to spare every codec still round trips */
        len = patch_rt(pc, r1, r2, 2 * PG);
        CU_ASSERT(len > (ssize_t)PG && len < (ssize_t)(PG + 64));

        /* a random page against itself shifted by 8 bytes: one copy */
        memcpy(t, r1 + 8, PG - 8);
        memcpy(t + PG - 8, r2, 8);
        len = patch_rt(pc, r1, t, CAP);
        CU_ASSERT(len > 0 && len < 64);
    }
    CU_ASSERT_EQUAL(nfail, 0);
}

/* A reference that starts with zstd's dictionary magic must still be used
 * as raw content. */
static void test_patch_dict_magic_ref(void)
{
    static uint8_t ref[PG], t[PG];
    const uint8_t magic[4] = { 0x37, 0xA4, 0x30, 0xEC };

    random_page(ref, 7);
    memcpy(ref, magic, 4);
    memcpy(t, ref, PG);
    t[1000] ^= 1;
    t[3000] ^= 0x80;
    nfail = 0;
    for (int c = 0; c < PATCH_NCODECS; c++) {
        ssize_t len = patch_rt(codecs[c], ref, t, CAP);

        CU_ASSERT(len > 0 && len < 64);
        len = patch_rt(codecs[c], ref, ref, CAP);
        CU_ASSERT(len > 0 && len < 32);
    }
    CU_ASSERT_EQUAL(nfail, 0);
}

/* ---- patch codecs: real pages ------------------------------------------ */

/* Derived targets: kind 0 one byte, 1 sixteen scattered bytes, 2 eight
 * bytes inserted in the middle (the tail shifts), 3 a 256-byte region
 * replaced with random bytes. */
static void mutate(const uint8_t *src, uint8_t *t, int kind, size_t seed)
{
    memcpy(t, src, PG);
    switch (kind) {
    case 0:
        t[(seed * 37) % PG] ^= 0x21;
        break;
    case 1:
        for (size_t k = 0; k < 16; k++)
            t[(seed * 131 + k * 251) % PG] += (uint8_t)(1 + k);
        break;
    case 2: {
        size_t at = 1000 + seed % 2000;

        memmove(t + at + 8, t + at, PG - at - 8);
        memcpy(t + at, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
        break;
    }
    default: {
        static uint8_t r[PG];

        random_page(r, seed + 1000);
        memcpy(t + (seed * 97) % (PG - 256), r, 256);
        break;
    }
    }
}

/* The largest patch each codec may make per mutation kind. zstd's fast
 * match finder starts from the most recent occurrence of the first bytes
 * in the reference, not the aligned one: on pages full of repeats (zero
 * runs, tables) it can fragment a near-identical page into many short
 * matches, so its bound is looser and checked on average below. */
static const ssize_t limit[PATCH_NCODECS][4] = {
    [PATCH_XDELTA3] = { 64, 400, 64, 700 },
    [PATCH_ZSTD] = { 1024, 1024, 1024, 1024 },
    [PATCH_BSDIFF] = { 64, 400, 64, 700 },
};

static void patch_real_modified(int which)
{
    const struct sample *s = sample(which);
    static uint8_t t[PG];
    size_t npages = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    nfail = 0;
    for (int c = 0; c < PATCH_NCODECS; c++) {
        size_t over[4] = { 0 }, over64[2] = { 0 };
        long sum[4] = { 0 };

        npages = 0;
        for (size_t i = 0; i < s->n; i++) {
            const uint8_t *p = spage(s, i);

            if (is_zero_page(p))
                continue;
            npages++;
            for (int kind = 0; kind < 4; kind++) {
                ssize_t len;

                mutate(p, t, kind, i);
                len = patch_rt(codecs[c], p, t, CAP);
                if (len <= 0 || len > limit[c][kind])
                    over[kind]++;
                else
                    sum[kind] += len;
                if (len > 64 && (kind == 0 || kind == 2))
                    over64[kind / 2]++;
            }
        }
        for (int kind = 0; kind < 4; kind++) {
            CU_ASSERT_EQUAL(over[kind], 0);
            if (over[kind])
                fprintf(stderr, "\n%s %s: %zu of %zu pages over %zd bytes (kind %d)\n",
                        patch_codec_name(c), s->name, over[kind], npages,
                        limit[c][kind], kind);
        }
        /* one changed byte or one insertion: mostly under 64 bytes, and
         * small on average */
        CU_ASSERT(over64[0] * 5 <= npages);
        CU_ASSERT(over64[1] * 4 <= npages);
        CU_ASSERT(sum[0] < 48 * (long)npages);
        CU_ASSERT(sum[2] < 64 * (long)npages);
        if (c != PATCH_ZSTD) {
            CU_ASSERT_EQUAL(over64[0] + over64[1], 0);
            CU_ASSERT(sum[0] < 32 * (long)npages);
        }
    }
    CU_ASSERT(npages >= 200);
    CU_ASSERT_EQUAL(nfail, 0);
}

static void test_patch_real_modified_web(void)
{
    patch_real_modified(WEB1);
}

static void test_patch_real_modified_db(void)
{
    patch_real_modified(DB2);
}

/* Real similar pairs: the same guest-physical page in two VMs. Most fit
 * under the threshold with every codec; zstd and bsdiff beat xdelta3. */
static void test_patch_real_pairs(void)
{
    const int other[] = { WEB2, DB2 };

    nfail = 0;
    for (size_t o = 0; o < 2; o++) {
        const struct sample *a = sample(WEB1), *b = sample(other[o]);
        size_t npairs = 0, fit[PATCH_NCODECS] = { 0 }, both = 0;
        long sum[PATCH_NCODECS] = { 0 };

        CU_ASSERT_PTR_NOT_NULL_FATAL(a);
        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        for (size_t i = 0; i < a->n && i < b->n; i++) {
            const uint8_t *tgt = spage(a, i), *ref = spage(b, i);
            ssize_t len[PATCH_NCODECS];
            int all = 1;

            if (is_zero_page(tgt) || is_zero_page(ref) ||
                memcmp(tgt, ref, PG) == 0)
                continue;
            npairs++;
            for (int c = 0; c < PATCH_NCODECS; c++) {
                len[c] = patch_rt(codecs[c], ref, tgt, CAP);
                CU_ASSERT(len[c] > 0 || len[c] == PATCH_TOO_BIG);
                if (len[c] > 0)
                    fit[c]++;
                else
                    all = 0;
            }
            if (all) {
                both++;
                for (int c = 0; c < PATCH_NCODECS; c++)
                    sum[c] += len[c];
            }
        }
        CU_ASSERT(npairs >= 150);
        for (int c = 0; c < PATCH_NCODECS; c++)
            CU_ASSERT(fit[c] * 4 >= npairs * 3);
        CU_ASSERT(both >= 100);
        CU_ASSERT(sum[PATCH_ZSTD] < sum[PATCH_XDELTA3]);
        CU_ASSERT(sum[PATCH_BSDIFF] < sum[PATCH_XDELTA3]);
    }
    CU_ASSERT_EQUAL(nfail, 0);
}

/* The capacity is the limit: a patch of length L is produced with cap L,
 * refused with cap L-1, and nothing is written past cap either way. */
static void test_patch_capacity(void)
{
    const struct sample *a = sample(WEB1), *b = sample(WEB2);
    static uint8_t first[4 * PG];
    size_t tried = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    nfail = 0;
    for (size_t i = 0; i < a->n && i < b->n && tried < 12; i++) {
        const uint8_t *tgt = spage(a, i), *ref = spage(b, i);

        if (is_zero_page(tgt) || memcmp(tgt, ref, PG) == 0)
            continue;
        tried++;
        for (int c = 0; c < PATCH_NCODECS; c++) {
            ssize_t len = patch_rt(codecs[c], ref, tgt, 4 * PG), again;

            CU_ASSERT_FATAL(len > 0);
            memcpy(first, enc_buf, (size_t)len);
            again = patch_rt(codecs[c], ref, tgt, (size_t)len);
            CU_ASSERT_EQUAL(again, len);
            CU_ASSERT(memcmp(first, enc_buf, (size_t)len) == 0);
            CU_ASSERT_EQUAL(patch_rt(codecs[c], ref, tgt, (size_t)len - 1),
                            PATCH_TOO_BIG);
            CU_ASSERT_EQUAL(patch_rt(codecs[c], ref, tgt, 1), PATCH_TOO_BIG);
            /* the context is still good after refusals */
            again = patch_rt(codecs[c], ref, tgt, 4 * PG);
            CU_ASSERT_EQUAL(again, len);
            CU_ASSERT(memcmp(first, enc_buf, (size_t)len) == 0);
        }
    }
    CU_ASSERT_EQUAL(tried, 12);
    CU_ASSERT_EQUAL(nfail, 0);
}

/* Contexts are reused across unrelated pages, and bsdiff's cached suffix
 * array must follow the reference's content, not its address. */
static void test_patch_reuse(void)
{
    const struct sample *s = sample(DB2);
    static uint8_t ref[PG], t1[PG], t2[PG], p1[PG], p2[PG];
    ssize_t l1, l2;

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    nfail = 0;
    for (int c = 0; c < PATCH_NCODECS; c++) {
        size_t i = 40;

        while (i < s->n && is_zero_page(spage(s, i)))
            i++;
        CU_ASSERT_FATAL(i < s->n);
        memcpy(ref, spage(s, i), PG);
        mutate(ref, t1, 1, 3);
        l1 = patch_rt(codecs[c], ref, t1, CAP);
        CU_ASSERT_FATAL(l1 > 0);
        memcpy(p1, enc_buf, (size_t)l1);

        /* same buffer, new content */
        random_page(ref, 9);
        mutate(ref, t2, 1, 5);
        l2 = patch_rt(codecs[c], ref, t2, CAP);
        CU_ASSERT(l2 > 0);
        memcpy(p2, enc_buf, l2 > 0 ? (size_t)l2 : 0);

        /* back to the first content: identical patch */
        memcpy(ref, spage(s, i), PG);
        CU_ASSERT_EQUAL(patch_rt(codecs[c], ref, t1, CAP), l1);
        CU_ASSERT(memcmp(enc_buf, p1, (size_t)l1) == 0);
        /* decoding the second patch against the first reference must not
         * reproduce its target */
        if (l2 > 0) {
            int r = patch_decode(codecs[c], ref, p2, (size_t)l2, dec_buf);

            CU_ASSERT(r == -EINVAL || (r == 0 && memcmp(dec_buf, t2, PG) != 0));
        }
    }
    CU_ASSERT_EQUAL(nfail, 0);
}

/* Aliased buffers: a page patched against itself (same pointer), decoding
 * over the reference, and outputs overlapping inputs (refused). */
static void test_aliasing(void)
{
    const struct sample *s = sample(WEB1);
    static uint8_t buf[3 * PG], t[PG], patch[2 * PG];

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    nfail = 0;
    for (int c = 0; c < PATCH_NCODECS; c++) {
        const uint8_t *p = spage(s, 20);
        ssize_t len;

        memcpy(buf, p, PG);
        len = patch_rt(codecs[c], buf, buf, CAP);
        CU_ASSERT(len > 0 && len < 32);

        /* decode in place over the reference */
        mutate(p, t, 2, 7);
        len = patch_encode(codecs[c], buf, t, patch, CAP);
        CU_ASSERT_FATAL(len > 0);
        CU_ASSERT_EQUAL(patch_decode(codecs[c], buf, patch, (size_t)len, buf), 0);
        CU_ASSERT(memcmp(buf, t, PG) == 0);

        /* reference and target overlapping by half a page */
        memcpy(buf, p, PG);
        memcpy(buf + PG, p, PG);
        len = patch_rt(codecs[c], buf, buf + PG / 2, CAP);
        CU_ASSERT(len > 0);

        /* outputs over inputs */
        CU_ASSERT_EQUAL(patch_encode(codecs[c], buf, t, buf + 100, CAP), -EINVAL);
        CU_ASSERT_EQUAL(patch_encode(codecs[c], t, buf, buf + PG - 8, CAP), -EINVAL);
        CU_ASSERT(patch_encode(codecs[c], t, buf, buf + PG, CAP) > 0);
        len = patch_encode(codecs[c], p, t, buf, CAP);
        CU_ASSERT_FATAL(len > 0);
        CU_ASSERT_EQUAL(patch_decode(codecs[c], p, buf, (size_t)len, buf + 8), -EINVAL);
    }
    for (int i = 0; i < COMP_NCOMPRESSORS; i++) {
        struct compressor *c = compressor_new(i, 0);
        ssize_t len;

        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        memcpy(buf, spage(s, 20), PG);
        CU_ASSERT_EQUAL(compressor_encode(c, buf, buf + PG - 8, CAP), -EINVAL);
        len = compressor_encode(c, buf, buf + PG, CAP);
        CU_ASSERT_FATAL(len > 0);
        CU_ASSERT_EQUAL(compressor_decode(c, buf + PG, (size_t)len, buf + 16), -EINVAL);
        CU_ASSERT_EQUAL(compressor_decode(c, buf + PG, (size_t)len, buf + 2 * PG), 0);
        CU_ASSERT(memcmp(buf + 2 * PG, buf, PG) == 0);
        compressor_free(c);
    }
    CU_ASSERT_EQUAL(nfail, 0);
}

/* ---- hostile input ------------------------------------------------------ */

/* Decodes `in` with every prefix length and with every bit (or every
 * `step`th bit) flipped. Returns how many decodes misbehaved: a prefix
 * that is not refused, or any result other than -EINVAL or 0, or a
 * write past the page. */
typedef int (*decode_fn)(void *ctx, const uint8_t *aux, const uint8_t *in,
                         size_t len, uint8_t *out);

static size_t hostile(decode_fn dec, void *ctx, const uint8_t *aux,
                      const uint8_t *in, size_t len, size_t step)
{
    static uint8_t mut[4 * PG];
    size_t bad = 0;

    for (size_t l = 1; l < len; l++) {
        int r;

        arm(dec_buf + PG);
        r = dec(ctx, aux, in, l, dec_buf);
        if (r != -EINVAL || !guard_ok(dec_buf + PG))
            bad++;
    }
    memcpy(mut, in, len);
    for (size_t bit = 0; bit < len * 8; bit += step) {
        int r;

        mut[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        arm(dec_buf + PG);
        r = dec(ctx, aux, mut, len, dec_buf);
        if ((r != -EINVAL && r != 0) || !guard_ok(dec_buf + PG))
            bad++;
        mut[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    /* trailing garbage */
    for (size_t k = 1; k <= 16; k++) {
        int r;

        random_page(mut + len, k);
        arm(dec_buf + PG);
        r = dec(ctx, aux, mut, len + k, dec_buf);
        if ((r != -EINVAL && r != 0) || !guard_ok(dec_buf + PG))
            bad++;
    }
    return bad;
}

static int patch_dec(void *ctx, const uint8_t *ref, const uint8_t *in,
                     size_t len, uint8_t *out)
{
    return patch_decode(ctx, ref, in, len, out);
}

static int comp_dec(void *ctx, const uint8_t *unused, const uint8_t *in,
                    size_t len, uint8_t *out)
{
    return compressor_decode(ctx, in, len, out);
}

static void test_patch_hostile(void)
{
    const struct sample *a = sample(WEB1), *b = sample(WEB2);
    static uint8_t enc[4 * PG], t[PG], junk[4 * PG];

    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    nfail = 0;
    for (int c = 0; c < PATCH_NCODECS; c++) {
        size_t done = 0, bad = 0;

        for (size_t i = 30; i < a->n && done < 4; i++) {
            const uint8_t *ref = spage(b, i), *tgt = spage(a, i);
            ssize_t len;

            if (is_zero_page(tgt) || is_zero_page(ref))
                continue;
            /* a one-byte patch, a shifted page, then two real pairs */
            if (done == 0) {
                mutate(ref, t, 0, i);
                tgt = t;
            } else if (done == 1) {
                mutate(ref, t, 2, i);
                tgt = t;
            }
            len = patch_rt(codecs[c], ref, tgt, CAP);
            if (len <= 0)
                continue;
            done++;
            memcpy(enc, enc_buf, (size_t)len);
            bad += hostile(patch_dec, codecs[c], ref, enc, (size_t)len,
                           len <= 256 ? 1 : 7);
            /* the untouched patch still decodes */
            CU_ASSERT_EQUAL(patch_decode(codecs[c], ref, enc, (size_t)len,
                                         dec_buf), 0);
            CU_ASSERT(memcmp(dec_buf, tgt, PG) == 0);
        }
        CU_ASSERT_EQUAL(done, 4);
        CU_ASSERT_EQUAL(bad, 0);
        if (bad)
            fprintf(stderr, "\n%s: %zu hostile decodes misbehaved\n",
                    patch_codec_name(c), bad);

        /* pure garbage of many lengths */
        for (size_t k = 0; k < 64; k++) {
            size_t len = 1 + (k * k * 37) % (2 * PG);
            int r;

            random_page(junk, 100 + k);
            random_page(junk + PG, 200 + k);
            arm(dec_buf + PG);
            r = patch_decode(codecs[c], spage(a, 1), junk, len, dec_buf);
            CU_ASSERT(r == -EINVAL || r == 0);
            CU_ASSERT(guard_ok(dec_buf + PG));
        }
    }
    CU_ASSERT_EQUAL(nfail, 0);
}

/* bsdiff's own format, built by hand: byte 0 is the body coding (1 =
 * stored), then varints ctrl_len, diff_len, the ctrl triples (difflen,
 * extralen, zigzag seek), the diff bytes, the extra bytes. */
static size_t bsd_put(uint8_t *p, unsigned v)
{
    size_t n = 0;

    while (v > 0x7f) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* A stored patch: ntrip triples, diff stream of ndiff bytes equal to
 * `dbyte`, extra stream of nextra bytes equal to `ebyte`. */
static size_t bsd_make(uint8_t *out, const unsigned (*trip)[3], size_t ntrip,
                       size_t ndiff, int dbyte, size_t nextra, int ebyte)
{
    uint8_t ctrl[64];
    size_t c = 0, n = 0;

    for (size_t i = 0; i < ntrip; i++)
        for (int k = 0; k < 3; k++)
            c += bsd_put(ctrl + c, trip[i][k]);
    out[n++] = 1;
    n += bsd_put(out + n, (unsigned)c);
    n += bsd_put(out + n, (unsigned)ndiff);
    memcpy(out + n, ctrl, c);
    n += c;
    memset(out + n, dbyte, ndiff);
    n += ndiff;
    memset(out + n, ebyte, nextra);
    return n + nextra;
}

static void test_bsdiff_format(void)
{
    struct patch_codec *pc = codecs[PATCH_BSDIFF];
    static uint8_t ref[PG], patch[3 * PG], want[PG];
    size_t len;

    for (size_t i = 0; i < PG; i++)
        ref[i] = (uint8_t)(i * 7);

    /* 100 bytes of ref+1 from 0, 50 extra 0xEE, seek back 20 (zigzag 39),
     * then 3946 bytes of ref+1 from 80 */
    {
        const unsigned t[][3] = { { 100, 50, 39 }, { 3946, 0, 0 } };

        len = bsd_make(patch, t, 2, 4046, 1, 50, 0xEE);
        for (size_t i = 0; i < 100; i++)
            want[i] = (uint8_t)(ref[i] + 1);
        memset(want + 100, 0xEE, 50);
        for (size_t i = 0; i < 3946; i++)
            want[150 + i] = (uint8_t)(ref[80 + i] + 1);
        CU_ASSERT_EQUAL(patch_decode(pc, ref, patch, len, dec_buf), 0);
        CU_ASSERT(memcmp(dec_buf, want, PG) == 0);
        /* trailing byte: the extra stream is not used up */
        patch[len] = 0;
        CU_ASSERT_EQUAL(patch_decode(pc, ref, patch, len + 1, dec_buf), -EINVAL);
        /* unknown body coding */
        patch[0] = 2;
        CU_ASSERT_EQUAL(patch_decode(pc, ref, patch, len, dec_buf), -EINVAL);
    }
    /* a page only partly filled */
    {
        const unsigned t[][3] = { { 10, 0, 0 } };

        len = bsd_make(patch, t, 1, 10, 0, 0, 0);
        CU_ASSERT_EQUAL(patch_decode(pc, ref, patch, len, dec_buf), -EINVAL);
    }
    /* diff past the end of the reference after a seek */
    {
        const unsigned t[][3] = { { 100, 0, 2 * 100 }, { 3996, 0, 0 } };

        len = bsd_make(patch, t, 2, 4096, 0, 0, 0);
        CU_ASSERT_EQUAL(patch_decode(pc, ref, patch, len, dec_buf), -EINVAL);
    }
    /* seek before the start of the reference */
    {
        const unsigned t[][3] = { { 100, 0, 2 * 101 - 1 }, { 3996, 0, 0 } };

        len = bsd_make(patch, t, 2, 4096, 0, 0, 0);
        CU_ASSERT_EQUAL(patch_decode(pc, ref, patch, len, dec_buf), -EINVAL);
    }
    /* more output than a page, and more diff than the stream holds */
    {
        const unsigned t1[][3] = { { 4096, 1, 0 } };
        const unsigned t2[][3] = { { 4096, 0, 0 } };

        len = bsd_make(patch, t1, 1, 4096, 0, 1, 0);
        CU_ASSERT_EQUAL(patch_decode(pc, ref, patch, len, dec_buf), -EINVAL);
        len = bsd_make(patch, t2, 1, 4000, 0, 0, 0);
        CU_ASSERT_EQUAL(patch_decode(pc, ref, patch, len, dec_buf), -EINVAL);
    }
    /* an overlong varint (0x80 0x00 for 0) */
    {
        const unsigned t[][3] = { { 4096, 0, 0 } };
        uint8_t *p = patch;

        len = bsd_make(patch, t, 1, 4096, 0, 0, 0);
        CU_ASSERT_EQUAL(patch_decode(pc, ref, patch, len, dec_buf), 0);
        CU_ASSERT(memcmp(dec_buf, ref, PG) == 0);
        /* ctrl_len 5 instead of 4, and extralen 0 spelled 0x80 0x00 */
        memmove(p + 7, p + 6, len - 6);
        p[1] = 5;
        p[6] = 0x80;
        p[7] = 0x00;
        CU_ASSERT_EQUAL(patch_decode(pc, ref, patch, len + 1, dec_buf), -EINVAL);
    }
}

/* ---- compressors -------------------------------------------------------- */

static ssize_t comp_rt(struct compressor *c, const uint8_t *page, size_t cap)
{
    ssize_t len;
    int r;

    arm(enc_buf + cap);
    len = compressor_encode(c, page, enc_buf, cap);
    if (!guard_ok(enc_buf + cap) || len == 0 || (len > 0 && (size_t)len > cap) ||
        (len < 0 && len != COMP_TOO_BIG)) {
        if (nfail++ < 5)
            fprintf(stderr, "\n%s: encode returned %zd (cap %zu)\n",
                    compressor_name(compressor_id(c)), len, cap);
        return len > 0 ? -EIO : len;
    }
    if (len < 0)
        return len;
    arm(dec_buf + PG);
    r = compressor_decode(c, enc_buf, (size_t)len, dec_buf);
    if (r != 0 || memcmp(dec_buf, page, PG) != 0 || !guard_ok(dec_buf + PG)) {
        if (nfail++ < 5)
            fprintf(stderr, "\n%s: decode returned %d\n",
                    compressor_name(compressor_id(c)), r);
        return -EIO;
    }
    return len;
}

static void test_compress_edge_pages(void)
{
    static uint8_t zero[PG], ff[PG], rnd[PG], half[PG], one[PG];

    fill_page(zero, 0);
    fill_page(ff, 0xFF);
    random_page(rnd, 3);
    memcpy(half, rnd, PG / 2); /* half random, half zero */
    memset(half + PG / 2, 0, PG / 2);
    fill_page(one, 0);
    one[PG - 1] = 1;
    nfail = 0;
    for (int i = 0; i < COMP_NCOMPRESSORS; i++) {
        struct compressor *c = compressor_new(i, 0);
        ssize_t len;

        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        len = comp_rt(c, zero, CAP);
        CU_ASSERT(len > 0 && len < 64);
        len = comp_rt(c, ff, CAP);
        CU_ASSERT(len > 0 && len < 64);
        len = comp_rt(c, one, CAP);
        CU_ASSERT(len > 0 && len < 64);
        CU_ASSERT_EQUAL(comp_rt(c, rnd, CAP), COMP_TOO_BIG);
        CU_ASSERT_EQUAL(comp_rt(c, rnd, PG), COMP_TOO_BIG);
        /* with room for expansion, incompressible pages still round trip */
        len = comp_rt(c, rnd, 2 * PG);
        CU_ASSERT(len > (ssize_t)PG && len < (ssize_t)(PG + PG / 16 + 64));
        CU_ASSERT_EQUAL(comp_rt(c, half, CAP), COMP_TOO_BIG);
        len = comp_rt(c, half, CAP + 256);
        CU_ASSERT(len > (ssize_t)(PG / 2) && len <= CAP + 256);
        compressor_free(c);
    }
    CU_ASSERT_EQUAL(nfail, 0);
}

static void compress_real(int which)
{
    const struct sample *s = sample(which);
    long sum[COMP_NCOMPRESSORS] = { 0 };
    size_t fit[COMP_NCOMPRESSORS] = { 0 }, npages = 0, bad = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    nfail = 0;
    for (int i = 0; i < COMP_NCOMPRESSORS; i++) {
        struct compressor *c = compressor_new(i, 0);

        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        npages = 0;
        for (size_t k = 0; k < s->n; k++) {
            const uint8_t *p = spage(s, k);
            ssize_t big, len;

            if (is_zero_page(p))
                continue;
            npages++;
            big = comp_rt(c, p, 2 * PG);
            len = comp_rt(c, p, CAP);
            if (big <= 0)
                bad++;
            /* refused exactly when the unlimited result is over the cap */
            if (big > 0 && (big <= CAP ? len != big : len != COMP_TOO_BIG))
                bad++;
            if (big > 0)
                sum[i] += big;
            if (len > 0)
                fit[i]++;
        }
        compressor_free(c);
    }
    CU_ASSERT(npages >= 200);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(nfail, 0);
    for (int i = 0; i < COMP_NCOMPRESSORS; i++) {
        CU_ASSERT(fit[i] * 3 >= npages);
        CU_ASSERT(sum[i] < (long)npages * (long)PG * 3 / 4);
    }
    /* zstd out-compresses both LZ77 byte coders */
    CU_ASSERT(sum[COMP_ZSTD] < sum[COMP_LZO]);
    CU_ASSERT(sum[COMP_ZSTD] < sum[COMP_LZ4]);
}

static void test_compress_real_web(void)
{
    compress_real(WEB1);
}

static void test_compress_real_db(void)
{
    compress_real(DB2);
}

static void test_compress_capacity(void)
{
    const struct sample *s = sample(DB2);
    static uint8_t first[2 * PG];
    size_t tried = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    nfail = 0;
    for (int i = 0; i < COMP_NCOMPRESSORS; i++) {
        struct compressor *c = compressor_new(i, 0);

        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        tried = 0;
        for (size_t k = 0; k < s->n && tried < 16; k += 7) {
            const uint8_t *p = spage(s, k);
            ssize_t len;

            if (is_zero_page(p))
                continue;
            tried++;
            len = comp_rt(c, p, 2 * PG);
            CU_ASSERT_FATAL(len > 0);
            memcpy(first, enc_buf, (size_t)len);
            CU_ASSERT_EQUAL(comp_rt(c, p, (size_t)len), len);
            CU_ASSERT(memcmp(first, enc_buf, (size_t)len) == 0);
            CU_ASSERT_EQUAL(comp_rt(c, p, (size_t)len - 1), COMP_TOO_BIG);
            CU_ASSERT_EQUAL(comp_rt(c, p, 1), COMP_TOO_BIG);
            CU_ASSERT_EQUAL(comp_rt(c, p, 2 * PG), len);
            CU_ASSERT(memcmp(first, enc_buf, (size_t)len) == 0);
        }
        CU_ASSERT_EQUAL(tried, 16);
        compressor_free(c);
    }
    CU_ASSERT_EQUAL(nfail, 0);
}

/* zstd's level reaches the encoder: level 19 beats level 1 on real pages,
 * and both decode with any context. */
static void test_compress_levels(void)
{
    const struct sample *s = sample(WEB1);
    struct compressor *lo = compressor_new(COMP_ZSTD, 1);
    struct compressor *hi = compressor_new(COMP_ZSTD, 19);
    long sum_lo = 0, sum_hi = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(lo);
    CU_ASSERT_PTR_NOT_NULL_FATAL(hi);
    nfail = 0;
    for (size_t k = 0; k < s->n && k < 64; k++) {
        const uint8_t *p = spage(s, k);
        ssize_t l;

        if (is_zero_page(p))
            continue;
        l = comp_rt(hi, p, 2 * PG);
        CU_ASSERT(l > 0);
        sum_hi += l;
        CU_ASSERT_EQUAL(compressor_decode(lo, enc_buf, (size_t)l, dec_buf), 0);
        CU_ASSERT(memcmp(dec_buf, p, PG) == 0);
        l = comp_rt(lo, p, 2 * PG);
        CU_ASSERT(l > 0);
        sum_lo += l;
    }
    CU_ASSERT(sum_hi < sum_lo);
    CU_ASSERT_EQUAL(nfail, 0);
    compressor_free(lo);
    compressor_free(hi);
}

static void test_compress_hostile(void)
{
    const struct sample *s = sample(WEB1);
    static uint8_t enc[2 * PG], junk[2 * PG];

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    nfail = 0;
    for (int i = 0; i < COMP_NCOMPRESSORS; i++) {
        struct compressor *c = compressor_new(i, 0);
        size_t done = 0, bad = 0;

        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        for (size_t k = 5; k < s->n && done < 4; k += 11) {
            const uint8_t *p = spage(s, k);
            ssize_t len;

            if (is_zero_page(p))
                continue;
            len = comp_rt(c, p, CAP);
            if (len <= 0)
                continue;
            done++;
            memcpy(enc, enc_buf, (size_t)len);
            bad += hostile(comp_dec, c, NULL, enc, (size_t)len,
                           len <= 256 ? 1 : 5);
            CU_ASSERT_EQUAL(compressor_decode(c, enc, (size_t)len, dec_buf), 0);
            CU_ASSERT(memcmp(dec_buf, p, PG) == 0);
        }
        CU_ASSERT_EQUAL(done, 4);
        CU_ASSERT_EQUAL(bad, 0);
        if (bad)
            fprintf(stderr, "\n%s: %zu hostile decodes misbehaved\n",
                    compressor_name(i), bad);
        for (size_t k = 0; k < 64; k++) {
            size_t len = 1 + (k * k * 37) % (2 * PG);
            int r;

            random_page(junk, 300 + k);
            random_page(junk + PG, 400 + k);
            arm(dec_buf + PG);
            r = compressor_decode(c, junk, len, dec_buf);
            CU_ASSERT(r == -EINVAL || r == 0);
            CU_ASSERT(guard_ok(dec_buf + PG));
        }
        compressor_free(c);
    }
    CU_ASSERT_EQUAL(nfail, 0);
}

/* ---- page BWT ----------------------------------------------------------- */

static int bwt_rt(struct page_bwt *b, const uint8_t *page, uint16_t *primary)
{
    static uint8_t t[PG];

    if (page_bwt_forward(b, page, t, primary) != 0)
        return -1;
    if (*primary < 1 || *primary > PG)
        return -1;
    arm(dec_buf + PG);
    if (page_bwt_inverse(b, t, *primary, dec_buf) != 0)
        return -1;
    return memcmp(dec_buf, page, PG) == 0 && guard_ok(dec_buf + PG) ? 0 : -1;
}

static void test_bwt(void)
{
    struct page_bwt *b = page_bwt_new();
    const struct sample *s = sample(WEB1), *d = sample(DB2);
    static uint8_t p[PG], t[PG], t2[PG];
    uint16_t prim, prim2;
    size_t n = 0, bad = 0, zeros = 0, small = 0, small_in = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);

    fill_page(p, 0);
    CU_ASSERT_EQUAL(bwt_rt(b, p, &prim), 0);
    /* BWT+MTF of a constant page: the first symbol's rank, then zeros */
    CU_ASSERT_EQUAL(page_bwt_forward(b, p, t, &prim), 0);
    for (size_t i = 1; i < PG; i++)
        zeros += t[i] == 0;
    CU_ASSERT_EQUAL(zeros, PG - 1);
    fill_page(p, 0xFF);
    CU_ASSERT_EQUAL(bwt_rt(b, p, &prim), 0);
    for (uint64_t seed = 0; seed < 8; seed++) {
        random_page(p, seed);
        CU_ASSERT_EQUAL(bwt_rt(b, p, &prim), 0);
    }
    fill_page(p, 0);
    p[0] = 1;
    CU_ASSERT_EQUAL(bwt_rt(b, p, &prim), 0);
    fill_page(p, 0);
    p[PG - 1] = 1;
    CU_ASSERT_EQUAL(bwt_rt(b, p, &prim), 0);
    for (size_t i = 0; i < PG; i++) /* period-3 text */
        p[i] = "abc"[i % 3];
    CU_ASSERT_EQUAL(bwt_rt(b, p, &prim), 0);

    /* real pages: exact, and the transform concentrates on small ranks */
    for (int k = 0; k < 2; k++) {
        const struct sample *src = k ? d : s;

        for (size_t i = 0; i < src->n && i < 256; i++) {
            const uint8_t *pg = spage(src, i);

            if (is_zero_page(pg))
                continue;
            n++;
            if (bwt_rt(b, pg, &prim) != 0) {
                bad++;
                continue;
            }
            page_bwt_forward(b, pg, t, &prim);
            for (size_t j = 0; j < PG; j++) {
                small += t[j] < 4;
                small_in += pg[j] < 4;
            }
        }
    }
    CU_ASSERT(n >= 200);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(small > small_in + small_in / 4);

    /* bad primary indexes */
    random_page(p, 11);
    CU_ASSERT_EQUAL(page_bwt_forward(b, p, t, &prim), 0);
    CU_ASSERT_EQUAL(page_bwt_inverse(b, t, 0, dec_buf), -EINVAL);
    CU_ASSERT_EQUAL(page_bwt_inverse(b, t, PG + 1, dec_buf), -EINVAL);
    CU_ASSERT_EQUAL(page_bwt_inverse(b, t, UINT16_MAX, dec_buf), -EINVAL);
    /* a wrong but in-range primary never yields the page */
    prim2 = prim == PG ? 1 : prim + 1;
    CU_ASSERT(page_bwt_inverse(b, t, prim2, dec_buf) != 0 ||
              memcmp(dec_buf, p, PG) != 0);

    /* arbitrary bytes are almost never a BWT (its LF walk splits into
     * several cycles): refused, never out of bounds */
    bad = 0;
    n = 0;
    for (uint64_t seed = 0; seed < 64; seed++) {
        int r;

        random_page(t2, 500 + seed);
        if (seed & 1)
            for (size_t i = 0; i < PG; i++)
                t2[i] &= 3;
        arm(dec_buf + PG);
        r = page_bwt_inverse(b, t2, (uint16_t)(1 + seed * 61 % PG), dec_buf);
        if ((r != 0 && r != -EINVAL) || !guard_ok(dec_buf + PG))
            bad++;
        n += r == -EINVAL;
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(n >= 56);

    CU_ASSERT_EQUAL(page_bwt_forward(NULL, p, t, &prim), -EINVAL);
    CU_ASSERT_EQUAL(page_bwt_forward(b, p, t, NULL), -EINVAL);
    CU_ASSERT_EQUAL(page_bwt_inverse(b, NULL, 1, dec_buf), -EINVAL);
    page_bwt_free(b);
    page_bwt_free(NULL);
}

/* ---- registration ------------------------------------------------------- */

int register_codec_tests(void)
{
    CU_pSuite p = CU_add_suite("patch codecs", open_codecs, close_codecs);
    CU_pSuite c = CU_add_suite("compressors", NULL, cleanup_samples);
    CU_pSuite b = CU_add_suite("page bwt", NULL, cleanup_samples);

    if (!p || !c || !b ||
        !CU_add_test(p, "names and ids", test_names) ||
        !CU_add_test(p, "bad arguments", test_bad_args) ||
        !CU_add_test(p, "crafted pages", test_patch_edge_pages) ||
        !CU_add_test(p, "reference with zstd dict magic", test_patch_dict_magic_ref) ||
        !CU_add_test(p, "modified real pages (vm-web-1)", test_patch_real_modified_web) ||
        !CU_add_test(p, "modified real pages (vm-db-2)", test_patch_real_modified_db) ||
        !CU_add_test(p, "real similar pairs", test_patch_real_pairs) ||
        !CU_add_test(p, "capacity is the limit", test_patch_capacity) ||
        !CU_add_test(p, "context reuse", test_patch_reuse) ||
        !CU_add_test(p, "aliased buffers", test_aliasing) ||
        !CU_add_test(p, "truncated, flipped, garbage", test_patch_hostile) ||
        !CU_add_test(p, "bsdiff format checks", test_bsdiff_format) ||
        !CU_add_test(c, "crafted pages", test_compress_edge_pages) ||
        !CU_add_test(c, "real pages (vm-web-1)", test_compress_real_web) ||
        !CU_add_test(c, "real pages (vm-db-2)", test_compress_real_db) ||
        !CU_add_test(c, "capacity is the limit", test_compress_capacity) ||
        !CU_add_test(c, "zstd levels", test_compress_levels) ||
        !CU_add_test(c, "truncated, flipped, garbage", test_compress_hostile) ||
        !CU_add_test(b, "round trips and bad input", test_bwt))
        return CU_get_error();
    return CUE_SUCCESS;
}

/*
 * patch_zstd.c - a patch is the target page compressed by zstd with the
 * reference page as a raw-content prefix: every match into the prefix is a
 * copy from the reference, everything else is ordinary zstd compression.
 *
 * The frame is trimmed for one page: magicless (4 bytes), no content size
 * (the decoder knows the size: exactly one page) and no checksum. The
 * encoder's parameters are set once; only the prefix is set per page, and
 * zstd forgets it after the frame.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "patch_codec_impl.h"
#include "zstd_page.h"

/* On real similar page pairs level 1 is the fastest and its patches are as
 * small as level 3's (smaller on near-identical pages); levels 4-5 save
 * 2-3% more for twice the time. */
#define ZPATCH_DEFAULT_LEVEL 1

struct zstd_patch {
    struct patch_codec base;
    struct zstd_page z;
};

static void zpatch_free(struct patch_codec *pc)
{
    struct zstd_patch *zp = (struct zstd_patch *)pc;

    zstd_page_fini(&zp->z);
    free(zp);
}

static struct patch_codec *zpatch_new(int level)
{
    struct zstd_patch *zp = calloc(1, sizeof *zp);
    int rc;

    if (!zp)
        return NULL;
    rc = zstd_page_init(&zp->z, level ? level : ZPATCH_DEFAULT_LEVEL);
    if (rc != 0) {
        zpatch_free(&zp->base);
        errno = -rc;
        return NULL;
    }
    return &zp->base;
}

static ssize_t zpatch_encode(struct patch_codec *pc, const unsigned char *ref,
                             const unsigned char *target, unsigned char *out,
                             size_t cap)
{
    struct zstd_patch *zp = (struct zstd_patch *)pc;
    ssize_t r;

    if (ZSTD_isError(ZSTD_CCtx_refPrefix(zp->z.cctx, ref, DE_PAGE_SIZE)))
        return -EIO;
    r = zstd_page_encode(&zp->z, target, out, cap);
    return r == 0 ? PATCH_TOO_BIG : r;
}

/* The first four bytes of a structured zstd dictionary: such a reference
 * would be parsed as a dictionary by ZSTD_decompress_usingDict(). */
static int looks_like_zstd_dict(const unsigned char *ref)
{
    uint32_t m = (uint32_t)ref[0] | (uint32_t)ref[1] << 8 |
                 (uint32_t)ref[2] << 16 | (uint32_t)ref[3] << 24;

    return m == ZSTD_MAGIC_DICTIONARY;
}

static int zpatch_decode(struct patch_codec *pc, const unsigned char *ref,
                         const unsigned char *patch, size_t len,
                         unsigned char *page_out)
{
    struct zstd_patch *zp = (struct zstd_patch *)pc;
    ZSTD_DCtx *d = zp->z.dctx;
    size_t r;

    /* ZSTD_DCtx_refPrefix() builds a ZSTD_DDict (malloc, ~27 KiB) on every
     * call; ZSTD_decompress_usingDict() references raw content in place,
     * which is the same thing for any reference that does not start with
     * the dictionary magic. Those rare pages take the allocating path. */
    if (!looks_like_zstd_dict(ref)) {
        r = ZSTD_decompress_usingDict(d, page_out, DE_PAGE_SIZE, patch, len,
                                      ref, DE_PAGE_SIZE);
    } else {
        r = ZSTD_DCtx_refPrefix(d, ref, DE_PAGE_SIZE);
        if (!ZSTD_isError(r))
            r = ZSTD_decompressDCtx(d, page_out, DE_PAGE_SIZE, patch, len);
    }
    return zstd_page_decoded(&zp->z, r);
}

const struct patch_codec_ops de_patch_zstd_ops = {
    .name = "zstd",
    .id = PATCH_ZSTD,
    .ctx_new = zpatch_new,
    .ctx_free = zpatch_free,
    .encode = zpatch_encode,
    .decode = zpatch_decode,
};

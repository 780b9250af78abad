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

#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_c_format, ZSTD_f_zstd1_magicless */
#include <zstd.h>
#include <zstd_errors.h>

#include "page.h"
#include "patch_codec_impl.h"

/* On real similar page pairs level 1 is the fastest and its patches are as
 * small as level 3's (smaller on near-identical pages); levels 4-5 save
 * 2-3% more for twice the time. */
#define ZPATCH_DEFAULT_LEVEL 1

/* zstd's bit-stream writers keep an 8-byte container of slack: it fails
 * with dstSize_tooSmall unless it has a few bytes more than the frame it
 * ends up writing (9 at most over every sample page, at every level). So a
 * patch that would fit in cap exactly is compressed into a scratch buffer
 * with this much room beyond cap, then copied out. */
#define ZSTD_SLACK 32
#define ZSCRATCH_SIZE ZSTD_COMPRESSBOUND(DE_PAGE_SIZE)

struct zstd_patch {
    struct patch_codec base;
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
    unsigned char scratch[ZSCRATCH_SIZE];
};

static void zpatch_free(struct patch_codec *pc)
{
    struct zstd_patch *zp = (struct zstd_patch *)pc;

    ZSTD_freeCCtx(zp->cctx);
    ZSTD_freeDCtx(zp->dctx);
    free(zp);
}

static int zpatch_setup(struct zstd_patch *zp, int level)
{
    ZSTD_CCtx *c = zp->cctx;

    if (ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_format,
                                            ZSTD_f_zstd1_magicless)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 0)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_dictIDFlag, 0)) ||
        ZSTD_isError(ZSTD_DCtx_setParameter(zp->dctx, ZSTD_d_format,
                                            ZSTD_f_zstd1_magicless)))
        return -1;
    return 0;
}

static struct patch_codec *zpatch_new(int level)
{
    struct zstd_patch *zp = calloc(1, sizeof *zp);

    if (!zp)
        return NULL;
    if (level == 0)
        level = ZPATCH_DEFAULT_LEVEL;
    zp->cctx = ZSTD_createCCtx();
    zp->dctx = ZSTD_createDCtx();
    if (!zp->cctx || !zp->dctx || zpatch_setup(zp, level) != 0) {
        int err = zp->cctx && zp->dctx ? EINVAL : ENOMEM;

        zpatch_free(&zp->base);
        errno = err;
        return NULL;
    }
    return &zp->base;
}

static ssize_t zpatch_encode(struct patch_codec *pc, const unsigned char *ref,
                             const unsigned char *target, unsigned char *out,
                             size_t cap)
{
    struct zstd_patch *zp = (struct zstd_patch *)pc;
    unsigned char *dst = out;
    size_t room = cap, r;

    /* Straight into out when cap covers any frame, else into scratch with
     * the slack zstd needs beyond cap. */
    if (cap < ZSCRATCH_SIZE) {
        dst = zp->scratch;
        room = cap + ZSTD_SLACK < ZSCRATCH_SIZE ? cap + ZSTD_SLACK : ZSCRATCH_SIZE;
    }
    r = ZSTD_CCtx_refPrefix(zp->cctx, ref, DE_PAGE_SIZE);
    if (ZSTD_isError(r))
        return -EIO;
    r = ZSTD_compress2(zp->cctx, dst, room, target, DE_PAGE_SIZE);
    if (ZSTD_isError(r)) {
        /* A failed frame leaves the context mid-session (prefix still
         * referenced); start clean for the next page. */
        ZSTD_CCtx_reset(zp->cctx, ZSTD_reset_session_only);
        return ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall
                   ? PATCH_TOO_BIG : -EIO;
    }
    if (r > cap)
        return PATCH_TOO_BIG;
    if (dst != out)
        memcpy(out, dst, r);
    return (ssize_t)r;
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
    size_t r;

    /* ZSTD_DCtx_refPrefix() builds a ZSTD_DDict (malloc, ~27 KiB) on every
     * call; ZSTD_decompress_usingDict() references raw content in place,
     * which is the same thing for any reference that does not start with
     * the dictionary magic. Those rare pages take the allocating path. */
    if (!looks_like_zstd_dict(ref)) {
        r = ZSTD_decompress_usingDict(zp->dctx, page_out, DE_PAGE_SIZE,
                                      patch, len, ref, DE_PAGE_SIZE);
    } else {
        r = ZSTD_DCtx_refPrefix(zp->dctx, ref, DE_PAGE_SIZE);
        if (!ZSTD_isError(r))
            r = ZSTD_decompressDCtx(zp->dctx, page_out, DE_PAGE_SIZE, patch,
                                    len);
    }
    if (ZSTD_isError(r)) {
        ZSTD_DCtx_reset(zp->dctx, ZSTD_reset_session_only);
        return -EINVAL;
    }
    return r == DE_PAGE_SIZE ? 0 : -EINVAL;
}

const struct patch_codec_ops de_patch_zstd_ops = {
    .name = "zstd",
    .id = PATCH_ZSTD,
    .ctx_new = zpatch_new,
    .ctx_free = zpatch_free,
    .encode = zpatch_encode,
    .decode = zpatch_decode,
};

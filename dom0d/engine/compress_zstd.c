/*
 * compress_zstd.c - zstd, one frame per page.
 *
 * The frame is trimmed for one page, set once in the context: magicless
 * (4 bytes), no content size (the decoder knows it is one page), no
 * checksum. ZSTD_compressCCtx() would reset those to the level's defaults,
 * so the advanced API (ZSTD_compress2) is used with sticky parameters.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_c_format, ZSTD_f_zstd1_magicless */
#include <zstd.h>
#include <zstd_errors.h>

#include "compressor_impl.h"
#include "page.h"

#define ZCOMP_DEFAULT_LEVEL 3

/* zstd's bit-stream writers keep an 8-byte container of slack: it fails
 * with dstSize_tooSmall unless it has a few bytes more than the frame it
 * ends up writing (9 at most over every sample page, at every level). So a
 * page that would fit in cap exactly is compressed into a scratch buffer
 * with this much room beyond cap, then copied out. */
#define ZSTD_SLACK 32
#define ZSCRATCH_SIZE ZSTD_COMPRESSBOUND(DE_PAGE_SIZE)

struct zstd_comp {
    struct compressor base;
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
    unsigned char scratch[ZSCRATCH_SIZE];
};

static void zcomp_free(struct compressor *c)
{
    struct zstd_comp *zc = (struct zstd_comp *)c;

    ZSTD_freeCCtx(zc->cctx);
    ZSTD_freeDCtx(zc->dctx);
    free(zc);
}

static int zcomp_setup(struct zstd_comp *zc, int level)
{
    ZSTD_CCtx *c = zc->cctx;

    if (ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_format,
                                            ZSTD_f_zstd1_magicless)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 0)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_dictIDFlag, 0)) ||
        ZSTD_isError(ZSTD_DCtx_setParameter(zc->dctx, ZSTD_d_format,
                                            ZSTD_f_zstd1_magicless)))
        return -1;
    return 0;
}

static struct compressor *zcomp_new(int level)
{
    struct zstd_comp *zc = calloc(1, sizeof *zc);

    if (!zc)
        return NULL;
    if (level == 0)
        level = ZCOMP_DEFAULT_LEVEL;
    zc->cctx = ZSTD_createCCtx();
    zc->dctx = ZSTD_createDCtx();
    if (!zc->cctx || !zc->dctx || zcomp_setup(zc, level) != 0) {
        int err = zc->cctx && zc->dctx ? EINVAL : ENOMEM;

        zcomp_free(&zc->base);
        errno = err;
        return NULL;
    }
    return &zc->base;
}

static ssize_t zcomp_encode(struct compressor *c, const unsigned char *page,
                            unsigned char *out, size_t cap)
{
    struct zstd_comp *zc = (struct zstd_comp *)c;
    unsigned char *dst = out;
    size_t room = cap, r;

    /* Straight into out when cap covers any frame, else into scratch with
     * the slack zstd needs beyond cap. */
    if (cap < ZSCRATCH_SIZE) {
        dst = zc->scratch;
        room = cap + ZSTD_SLACK < ZSCRATCH_SIZE ? cap + ZSTD_SLACK : ZSCRATCH_SIZE;
    }
    r = ZSTD_compress2(zc->cctx, dst, room, page, DE_PAGE_SIZE);
    if (ZSTD_isError(r)) {
        ZSTD_CCtx_reset(zc->cctx, ZSTD_reset_session_only);
        return ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall
                   ? COMP_TOO_BIG : -EIO;
    }
    if (r > cap)
        return COMP_TOO_BIG;
    if (dst != out)
        memcpy(out, dst, r);
    return (ssize_t)r;
}

static int zcomp_decode(struct compressor *c, const unsigned char *in,
                        size_t len, unsigned char *page_out)
{
    struct zstd_comp *zc = (struct zstd_comp *)c;
    size_t r = ZSTD_decompressDCtx(zc->dctx, page_out, DE_PAGE_SIZE, in, len);

    if (ZSTD_isError(r)) {
        ZSTD_DCtx_reset(zc->dctx, ZSTD_reset_session_only);
        return -EINVAL;
    }
    return r == DE_PAGE_SIZE ? 0 : -EINVAL;
}

const struct compressor_ops de_compress_zstd_ops = {
    .name = "zstd",
    .id = COMP_ZSTD,
    .ctx_new = zcomp_new,
    .ctx_free = zcomp_free,
    .encode = zcomp_encode,
    .decode = zcomp_decode,
};

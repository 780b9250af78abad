/*
 * zstd_page.c - one-page zstd frames for the compressor and patch codec.
 *
 * ZSTD_compressCCtx() would reset the trimmed frame parameters to the
 * level's defaults, so the advanced API (ZSTD_compress2) is used with
 * sticky parameters set once.
 */
#include <errno.h>
#include <string.h>

#include <zstd_errors.h>

#include "zstd_page.h"

/* zstd's bit-stream writers keep an 8-byte container of slack: it fails
 * with dstSize_tooSmall unless it has a few bytes more than the frame it
 * ends up writing (9 at most over every sample page, at every level). So a
 * page that would fit in cap exactly is compressed into a scratch buffer
 * with this much room beyond cap, then copied out. */
#define ZSTD_SLACK 32

int zstd_page_init(struct zstd_page *z, int level)
{
    ZSTD_CCtx *c;

    z->cctx = c = ZSTD_createCCtx();
    z->dctx = ZSTD_createDCtx();
    if (!z->cctx || !z->dctx)
        return -ENOMEM;
    if (ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_format,
                                            ZSTD_f_zstd1_magicless)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 0)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_dictIDFlag, 0)) ||
        ZSTD_isError(ZSTD_DCtx_setParameter(z->dctx, ZSTD_d_format,
                                            ZSTD_f_zstd1_magicless)))
        return -EINVAL;
    return 0;
}

void zstd_page_fini(struct zstd_page *z)
{
    ZSTD_freeCCtx(z->cctx);
    ZSTD_freeDCtx(z->dctx);
    z->cctx = NULL;
    z->dctx = NULL;
}

ssize_t zstd_page_encode(struct zstd_page *z, const void *page, void *out,
                         size_t cap)
{
    unsigned char *dst = out;
    size_t room = cap, r;

    /* Straight into out when cap covers any frame, else into scratch with
     * the slack zstd needs beyond cap. */
    if (cap < ZSTD_PAGE_SCRATCH) {
        dst = z->scratch;
        room = cap + ZSTD_SLACK < ZSTD_PAGE_SCRATCH ? cap + ZSTD_SLACK
                                                    : ZSTD_PAGE_SCRATCH;
    }
    r = ZSTD_compress2(z->cctx, dst, room, page, DE_PAGE_SIZE);
    if (ZSTD_isError(r)) {
        /* A failed frame leaves the context mid-session (a prefix still
         * referenced); start clean for the next page. */
        ZSTD_CCtx_reset(z->cctx, ZSTD_reset_session_only);
        return ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall ? 0 : -EIO;
    }
    if (r > cap)
        return 0;
    if (dst != (unsigned char *)out)
        memcpy(out, dst, r);
    return (ssize_t)r;
}

int zstd_page_decoded(struct zstd_page *z, size_t r)
{
    if (ZSTD_isError(r)) {
        ZSTD_DCtx_reset(z->dctx, ZSTD_reset_session_only);
        return -EINVAL;
    }
    return r == DE_PAGE_SIZE ? 0 : -EINVAL;
}

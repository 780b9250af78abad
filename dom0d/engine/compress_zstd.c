/*
 * compress_zstd.c - zstd, one frame per page.
 *
 * The frame is trimmed for one page (zstd_page.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "compressor_impl.h"
#include "zstd_page.h"

#define ZCOMP_DEFAULT_LEVEL 3

struct zstd_comp {
    struct compressor base;
    struct zstd_page z;
};

static void zcomp_free(struct compressor *c)
{
    struct zstd_comp *zc = (struct zstd_comp *)c;

    zstd_page_fini(&zc->z);
    free(zc);
}

static struct compressor *zcomp_new(int level)
{
    struct zstd_comp *zc = calloc(1, sizeof *zc);
    int rc;

    if (!zc)
        return NULL;
    rc = zstd_page_init(&zc->z, level ? level : ZCOMP_DEFAULT_LEVEL);
    if (rc != 0) {
        zcomp_free(&zc->base);
        errno = -rc;
        return NULL;
    }
    return &zc->base;
}

static ssize_t zcomp_encode(struct compressor *c, const unsigned char *page,
                            unsigned char *out, size_t cap)
{
    struct zstd_comp *zc = (struct zstd_comp *)c;
    ssize_t r = zstd_page_encode(&zc->z, page, out, cap);

    return r == 0 ? COMP_TOO_BIG : r;
}

static int zcomp_decode(struct compressor *c, const unsigned char *in,
                        size_t len, unsigned char *page_out)
{
    struct zstd_comp *zc = (struct zstd_comp *)c;

    return zstd_page_decoded(&zc->z, ZSTD_decompressDCtx(zc->z.dctx, page_out,
                                                         DE_PAGE_SIZE, in, len));
}

const struct compressor_ops de_compress_zstd_ops = {
    .name = "zstd",
    .id = COMP_ZSTD,
    .ctx_new = zcomp_new,
    .ctx_free = zcomp_free,
    .encode = zcomp_encode,
    .decode = zcomp_decode,
};

/*
 * compress_lzo.c - lzo1x-1, the compressor the paper used.
 *
 * lzo1x_1_compress() takes no output limit, so a page is compressed into a
 * worst-case buffer of the context and copied out only if it fits the
 * caller's capacity (unless the capacity already covers the worst case).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <lzo/lzo1x.h>

#include "compressor_impl.h"
#include "page.h"

/* lzo1x worst case: incompressible input grows by 1/16 plus a little. */
#define LZO_PAGE_BOUND (DE_PAGE_SIZE + DE_PAGE_SIZE / 16 + 64 + 3)

#define LZO_WRK_ALIGNS \
    ((LZO1X_1_MEM_COMPRESS + sizeof(lzo_align_t) - 1) / sizeof(lzo_align_t))

struct lzo_comp {
    struct compressor base;
    lzo_align_t wrkmem[LZO_WRK_ALIGNS];
    unsigned char buf[LZO_PAGE_BOUND];
};

static struct compressor *lzo_new(int level)
{
    struct lzo_comp *lc;

    /* lzo_init() only checks the library against its headers; calling it
     * again for every context is harmless and cheap. */
    if (lzo_init() != LZO_E_OK) {
        errno = ENOSYS;
        return NULL;
    }
    lc = malloc(sizeof *lc);
    return lc ? &lc->base : NULL;
}

static void lzo_free(struct compressor *c)
{
    free(c);
}

static ssize_t lzo_encode(struct compressor *c, const unsigned char *page,
                          unsigned char *out, size_t cap)
{
    struct lzo_comp *lc = (struct lzo_comp *)c;
    unsigned char *dst = cap >= LZO_PAGE_BOUND ? out : lc->buf;
    lzo_uint len = 0;

    if (lzo1x_1_compress(page, DE_PAGE_SIZE, dst, &len, lc->wrkmem) != LZO_E_OK)
        return -EIO;
    if (len > cap)
        return COMP_TOO_BIG;
    if (dst != out)
        memcpy(out, dst, len);
    return (ssize_t)len;
}

static int lzo_decode(struct compressor *c, const unsigned char *in,
                      size_t len, unsigned char *page_out)
{
    lzo_uint out_len = DE_PAGE_SIZE;
    int r;

    /* The _safe decoder checks every read against len and every write
     * against out_len, and fails unless the input ends exactly at the end
     * marker. */
    r = lzo1x_decompress_safe(in, len, page_out, &out_len, NULL);
    return r == LZO_E_OK && out_len == DE_PAGE_SIZE ? 0 : -EINVAL;
}

const struct compressor_ops de_compress_lzo_ops = {
    .name = "lzo",
    .id = COMP_LZO,
    .ctx_new = lzo_new,
    .ctx_free = lzo_free,
    .encode = lzo_encode,
    .decode = lzo_decode,
};

/*
 * compress_lz4.c - LZ4 block format (no frame: the length is stored by the
 * caller, the decoded size is always one page).
 *
 * The 16 KiB compression state lives in the context instead of on the
 * stack as in LZ4_compress_default(). LZ4_compress_fast_extState() still
 * re-initialises it per page; the fast-reset path
 * (LZ4_resetStream_fast() + LZ4_compress_fast_continue()) measured ~20%
 * slower on real pages, as it must use 32-bit table entries.
 */
#include <errno.h>
#include <stdlib.h>

#include <lz4.h>

#include "compressor_impl.h"
#include "page.h"

struct lz4_comp {
    struct compressor base;
    LZ4_stream_t state;
};

static struct compressor *lz4_new(int level)
{
    struct lz4_comp *lc = malloc(sizeof *lc);

    return lc ? &lc->base : NULL;
}

static void lz4_free(struct compressor *c)
{
    free(c);
}

static ssize_t lz4_encode(struct compressor *c, const unsigned char *page,
                          unsigned char *out, size_t cap)
{
    struct lz4_comp *lc = (struct lz4_comp *)c;
    int n;

    /* With a limited capacity LZ4 stops and returns 0 as soon as the output
     * would overflow: the early reject. */
    n = LZ4_compress_fast_extState(&lc->state, (const char *)page,
                                   (char *)out, (int)DE_PAGE_SIZE, (int)cap, 1);
    return n > 0 ? n : COMP_TOO_BIG;
}

static int lz4_decode(struct compressor *c, const unsigned char *in,
                      size_t len, unsigned char *page_out)
{
    int n = LZ4_decompress_safe((const char *)in, (char *)page_out, (int)len,
                                (int)DE_PAGE_SIZE);

    return n == (int)DE_PAGE_SIZE ? 0 : -EINVAL;
}

const struct compressor_ops de_compress_lz4_ops = {
    .name = "lz4",
    .id = COMP_LZ4,
    .ctx_new = lz4_new,
    .ctx_free = lz4_free,
    .encode = lz4_encode,
    .decode = lz4_decode,
};

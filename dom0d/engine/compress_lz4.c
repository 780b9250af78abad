/*
 * compress_lz4.c - LZ4 block format (no frame: the length is stored by the
 * caller, the decoded size is always one page).
 *
 * The compression state lives in the context. LZ4_resetStream_fast() then
 * LZ4_compress_fast_continue() is LZ4's fast-reset path: no 16 KiB memset
 * of the hash table per page (LZ4_compress_default() does one on the
 * stack), stale entries are recognised by their offsets. Each block has no
 * dictionary, so LZ4_decompress_safe() alone decodes it.
 */
#include <errno.h>
#include <stdlib.h>

#include <lz4.h>

#include "compressor_impl.h"
#include "page.h"

struct lz4_comp {
    struct compressor base;
    LZ4_stream_t stream;
};

static struct compressor *lz4_new(int level)
{
    struct lz4_comp *lc = malloc(sizeof *lc);

    if (!lc)
        return NULL;
    if (!LZ4_initStream(&lc->stream, sizeof lc->stream)) {
        free(lc);
        errno = EINVAL;
        return NULL;
    }
    return &lc->base;
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

    LZ4_resetStream_fast(&lc->stream);
    /* With a limited capacity LZ4 stops and returns 0 as soon as the output
     * would overflow: the early reject. */
    n = LZ4_compress_fast_continue(&lc->stream, (const char *)page,
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

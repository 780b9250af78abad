/*
 * compressor.c - the compressor front end: name table, argument checks,
 * dispatch to the backend ops (compress_lzo.c, compress_lz4.c,
 * compress_zstd.c).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "compressor.h"
#include "compressor_impl.h"
#include "page.h"

static const struct compressor_ops *const comp_ops[COMP_NCOMPRESSORS] = {
    [COMP_LZO] = &de_compress_lzo_ops,
    [COMP_LZ4] = &de_compress_lz4_ops,
    [COMP_ZSTD] = &de_compress_zstd_ops,
};

static const struct compressor_ops *ops_of(enum compressor_id id)
{
    if ((unsigned)id >= COMP_NCOMPRESSORS)
        return NULL;
    return comp_ops[id];
}

const char *compressor_name(enum compressor_id id)
{
    const struct compressor_ops *ops = ops_of(id);

    return ops ? ops->name : NULL;
}

int compressor_lookup(const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i < COMP_NCOMPRESSORS; i++)
        if (strcmp(comp_ops[i]->name, name) == 0)
            return i;
    return -1;
}

struct compressor *compressor_new(enum compressor_id id, int level)
{
    const struct compressor_ops *ops = ops_of(id);
    struct compressor *c;

    if (!ops) {
        errno = EINVAL;
        return NULL;
    }
    c = ops->ctx_new(level);
    if (c)
        c->ops = ops;
    return c;
}

void compressor_free(struct compressor *c)
{
    if (c)
        c->ops->ctx_free(c);
}

enum compressor_id compressor_id(const struct compressor *c)
{
    return c->ops->id;
}

static int overlap(const void *a, size_t alen, const void *b, size_t blen)
{
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;

    return x < y + blen && y < x + alen;
}

ssize_t compressor_encode(struct compressor *c, const void *page, void *out,
                          size_t cap)
{
    if (!c || !page || !out)
        return -EINVAL;
    if (cap == 0)
        return COMP_TOO_BIG;
    /* Backends pass capacities to libraries that take an int; more than a
     * few pages of room is never needed for one page. */
    if (cap > 16 * DE_PAGE_SIZE)
        cap = 16 * DE_PAGE_SIZE;
    /* No codec compresses in place. */
    if (overlap(page, DE_PAGE_SIZE, out, cap))
        return -EINVAL;
    return c->ops->encode(c, page, out, cap);
}

int compressor_decode(struct compressor *c, const void *in, size_t len,
                      void *page_out)
{
    if (!c || !in || !page_out)
        return -EINVAL;
    if (len == 0 || len > 16 * DE_PAGE_SIZE)
        return -EINVAL;
    if (overlap(in, len, page_out, DE_PAGE_SIZE))
        return -EINVAL;
    return c->ops->decode(c, in, len, page_out);
}

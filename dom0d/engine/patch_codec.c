/*
 * patch_codec.c - the patch codec front end: name table, argument checks,
 * dispatch to the backend ops (patch_xdelta3.c, patch_zstd.c,
 * patch_bsdiff.c).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "page.h"
#include "patch_codec.h"
#include "patch_codec_impl.h"

static const struct patch_codec_ops *const codec_ops[PATCH_NCODECS] = {
    [PATCH_XDELTA3] = &de_patch_xdelta3_ops,
    [PATCH_ZSTD] = &de_patch_zstd_ops,
    [PATCH_BSDIFF] = &de_patch_bsdiff_ops,
};

static const struct patch_codec_ops *ops_of(enum patch_codec_id id)
{
    if ((unsigned)id >= PATCH_NCODECS)
        return NULL;
    return codec_ops[id];
}

const char *patch_codec_name(enum patch_codec_id id)
{
    const struct patch_codec_ops *ops = ops_of(id);

    return ops ? ops->name : NULL;
}

int patch_codec_lookup(const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i < PATCH_NCODECS; i++)
        if (strcmp(codec_ops[i]->name, name) == 0)
            return i;
    return -1;
}

struct patch_codec *patch_codec_new(enum patch_codec_id id, int level)
{
    const struct patch_codec_ops *ops = ops_of(id);
    struct patch_codec *pc;

    if (!ops) {
        errno = EINVAL;
        return NULL;
    }
    pc = ops->ctx_new(level);
    if (pc)
        pc->ops = ops;
    return pc;
}

void patch_codec_free(struct patch_codec *pc)
{
    if (pc)
        pc->ops->ctx_free(pc);
}

enum patch_codec_id patch_codec_id(const struct patch_codec *pc)
{
    return pc->ops->id;
}

static int overlap(const void *a, size_t alen, const void *b, size_t blen)
{
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;

    return x < y + blen && y < x + alen;
}

/* The backends assume the reference is not written while they read it
 * and does not alias the data they compress: zstd, for one, drops the
 * part of its prefix that overlaps its input (patching a page against
 * itself would find no match), and decoding into the reference's own
 * buffer would overwrite bytes still to be copied. A private copy makes
 * both cases work; they are rare, so the copy costs nothing in general. */
static const void *safe_ref(struct patch_codec *pc, const void *ref,
                            const void *other)
{
    if (!overlap(ref, DE_PAGE_SIZE, other, DE_PAGE_SIZE))
        return ref;
    memcpy(pc->ref_copy, ref, DE_PAGE_SIZE);
    return pc->ref_copy;
}

ssize_t patch_encode(struct patch_codec *pc, const void *ref,
                     const void *target, void *out, size_t cap)
{
    if (!pc || !ref || !target || !out)
        return -EINVAL;
    if (cap == 0)
        return PATCH_TOO_BIG;
    /* Backends keep lengths in ints and in 32-bit library types; no patch
     * of one page needs more than a few pages of room anyway. */
    if (cap > 16 * DE_PAGE_SIZE)
        cap = 16 * DE_PAGE_SIZE;
    /* Writing the patch over an input while reading it cannot work. */
    if (overlap(out, cap, ref, DE_PAGE_SIZE) ||
        overlap(out, cap, target, DE_PAGE_SIZE))
        return -EINVAL;
    return pc->ops->encode(pc, safe_ref(pc, ref, target), target, out, cap);
}

int patch_decode(struct patch_codec *pc, const void *ref, const void *patch,
                 size_t len, void *page_out)
{
    if (!pc || !ref || !patch || !page_out)
        return -EINVAL;
    if (len == 0 || len > 16 * DE_PAGE_SIZE)
        return -EINVAL;
    if (overlap(patch, len, page_out, DE_PAGE_SIZE))
        return -EINVAL;
    return pc->ops->decode(pc, safe_ref(pc, ref, page_out), patch, len,
                           page_out);
}

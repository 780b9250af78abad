/*
 * zstd_page.h - what the zstd compressor and the zstd patch codec share:
 * a compression and a decompression context set for one-page frames, and
 * an encoder that honours an exact capacity.
 */
#ifndef DE_ZSTD_PAGE_H
#define DE_ZSTD_PAGE_H

#include <stddef.h>
#include <sys/types.h>

#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_c_format, ZSTD_f_zstd1_magicless */
#include <zstd.h>

#include "page.h"

#define ZSTD_PAGE_SCRATCH ZSTD_COMPRESSBOUND(DE_PAGE_SIZE)

struct zstd_page {
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
    unsigned char scratch[ZSTD_PAGE_SCRATCH];
};

/* Makes both contexts, with the frame trimmed for one page: magicless,
 * no content size (the decoder knows it is one page), no checksum, no
 * dictionary id. Returns 0, -ENOMEM or -EINVAL (bad level); on failure
 * zstd_page_fini() is still safe. */
int zstd_page_init(struct zstd_page *z, int level);
void zstd_page_fini(struct zstd_page *z);

/* Compresses one page into out[0..cap) with whatever prefix the caller
 * referenced on z->cctx. Returns the length, 0 when it does not fit in
 * cap, or -EIO. */
ssize_t zstd_page_encode(struct zstd_page *z, const void *page, void *out,
                         size_t cap);

/* Checks a decompression result: 0 for exactly one page, else -EINVAL
 * (and the context is reset for the next call). */
int zstd_page_decoded(struct zstd_page *z, size_t r);

#endif

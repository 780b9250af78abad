/*
 * compressor.h - single-page compression behind one interface.
 *
 * Contexts are made once and reused (no allocation per page). Encoding is
 * bounded by the caller's capacity (the keep threshold): a page that does
 * not compress below it gets COMP_TOO_BIG. Decoding validates its input,
 * requires the output to be exactly one page, and never writes past it.
 */
#ifndef DE_COMPRESSOR_H
#define DE_COMPRESSOR_H

#include <stddef.h>
#include <sys/types.h>

enum compressor_id {
    COMP_LZO = 0,       /* lzo1x-1: the paper's compressor, the default */
    COMP_LZ4,
    COMP_ZSTD,
    COMP_NCOMPRESSORS
};

#define COMP_TOO_BIG (-7)

struct compressor;

/* Name of a compressor ("lzo", "lz4", "zstd"), or NULL. */
const char *compressor_name(enum compressor_id id);

/* Parses a compressor name; returns its id or -1. */
int compressor_lookup(const char *name);

/* Makes a reusable context; `level` is used by zstd (0 = default 3).
 * Returns NULL with errno set. */
struct compressor *compressor_new(enum compressor_id id, int level);
void compressor_free(struct compressor *c);
enum compressor_id compressor_id(const struct compressor *c);

/* Compresses one DE_PAGE_SIZE page into out[0..cap). Returns the length
 * (> 0), COMP_TOO_BIG when it does not fit in cap, or another negative
 * errno-style code. */
ssize_t compressor_encode(struct compressor *c, const void *page, void *out,
                          size_t cap);

/* Decompresses into page_out (DE_PAGE_SIZE bytes). Returns 0, or -EINVAL
 * when the input is corrupt, truncated or does not decode to exactly one
 * page. */
int compressor_decode(struct compressor *c, const void *in, size_t len,
                      void *page_out);

#endif

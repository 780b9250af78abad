/*
 * compressor_impl.h - private: what a compressor backend provides.
 *
 * compressor.c is the only caller. Each backend (compress_lzo.c,
 * compress_lz4.c, compress_zstd.c) exports one const ops table; its context
 * type embeds struct compressor as its first member. The core checks the
 * arguments (non-NULL pointers, cap > 0, len > 0) before dispatching, so
 * backends only check the data.
 */
#ifndef DE_COMPRESSOR_IMPL_H
#define DE_COMPRESSOR_IMPL_H

#include "compressor.h"

struct compressor_ops {
    const char *name;
    enum compressor_id id;
    /* Returns a context (all work memory allocated), or NULL with errno. */
    struct compressor *(*ctx_new)(int level);
    void (*ctx_free)(struct compressor *c);
    ssize_t (*encode)(struct compressor *c, const unsigned char *page,
                      unsigned char *out, size_t cap);
    int (*decode)(struct compressor *c, const unsigned char *in, size_t len,
                  unsigned char *page_out);
};

/* The common head of every backend context. */
struct compressor {
    const struct compressor_ops *ops;
};

extern const struct compressor_ops de_compress_lzo_ops;
extern const struct compressor_ops de_compress_lz4_ops;
extern const struct compressor_ops de_compress_zstd_ops;

#endif

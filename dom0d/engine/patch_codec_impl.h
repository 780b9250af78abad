/*
 * patch_codec_impl.h - private: what a patch codec backend provides.
 *
 * patch_codec.c is the only caller. Each backend (patch_xdelta3.c,
 * patch_zstd.c, patch_bsdiff.c) exports one const ops table; its context
 * type embeds struct patch_codec as its first member, so the core can hand
 * the same pointer back to the backend without knowing its layout.
 *
 * The core has already checked the arguments (non-NULL pointers, cap > 0,
 * len > 0) before calling encode/decode, so backends only check the data.
 */
#ifndef DE_PATCH_CODEC_IMPL_H
#define DE_PATCH_CODEC_IMPL_H

#include "page.h"
#include "patch_codec.h"

struct patch_codec_ops {
    const char *name;
    enum patch_codec_id id;
    /* Returns a context (all work memory allocated), or NULL with errno. */
    struct patch_codec *(*ctx_new)(int level);
    void (*ctx_free)(struct patch_codec *pc);
    ssize_t (*encode)(struct patch_codec *pc, const unsigned char *ref,
                      const unsigned char *target, unsigned char *out,
                      size_t cap);
    int (*decode)(struct patch_codec *pc, const unsigned char *ref,
                  const unsigned char *patch, size_t len,
                  unsigned char *page_out);
};

/* The common head of every backend context. */
struct patch_codec {
    const struct patch_codec_ops *ops;
    /* A private copy of the reference when the caller's overlaps the
     * target or the output page (see patch_codec.c). */
    unsigned char ref_copy[DE_PAGE_SIZE];
};

extern const struct patch_codec_ops de_patch_xdelta3_ops;
extern const struct patch_codec_ops de_patch_zstd_ops;
extern const struct patch_codec_ops de_patch_bsdiff_ops;

#endif

/*
 * patch_codec.h - delta encoding of a page against a reference page.
 *
 * Every codec sits behind one interface. A context is made once and reused
 * for every page: encode and decode allocate nothing per call after the
 * first. Encoding takes the caller's capacity as the size limit: a patch
 * that would not fit is rejected (PATCH_TOO_BIG) as early as the codec
 * allows, without building the whole patch. Decoding validates its input
 * and never writes outside the DE_PAGE_SIZE output page.
 */
#ifndef DE_PATCH_CODEC_H
#define DE_PATCH_CODEC_H

#include <stddef.h>
#include <sys/types.h>

enum patch_codec_id {
    PATCH_XDELTA3 = 0,  /* VCDIFF via xdelta3: what the paper used */
    PATCH_ZSTD,         /* zstd with the reference page as prefix */
    PATCH_BSDIFF,       /* suffix-array delta (bsdiff-style, libdivsufsort) */
    PATCH_NCODECS
};

/* Returned by patch_encode() when the patch would exceed the capacity. */
#define PATCH_TOO_BIG (-7)

struct patch_codec;

/* Name of a codec ("xdelta3", "zstd", "bsdiff"), or NULL. */
const char *patch_codec_name(enum patch_codec_id id);

/* Parses a codec name; returns its id or -1. */
int patch_codec_lookup(const char *name);

/* Makes a reusable context. `level` is codec specific (zstd level; ignored
 * by others; 0 = codec default). Returns NULL with errno set. */
struct patch_codec *patch_codec_new(enum patch_codec_id id, int level);
void patch_codec_free(struct patch_codec *pc);
enum patch_codec_id patch_codec_id(const struct patch_codec *pc);

/* Encodes `target` as a patch against `ref` (both DE_PAGE_SIZE bytes) into
 * out[0..cap). Returns the patch length (> 0), PATCH_TOO_BIG when it would
 * be longer than cap, or another negative errno-style code. */
ssize_t patch_encode(struct patch_codec *pc, const void *ref,
                     const void *target, void *out, size_t cap);

/* Rebuilds the target page into page_out (DE_PAGE_SIZE bytes) from `ref`
 * and the patch. Returns 0, or -EINVAL for a corrupt or truncated patch
 * (page_out is then unspecified but nothing outside it was written). */
int patch_decode(struct patch_codec *pc, const void *ref, const void *patch,
                 size_t len, void *page_out);

#endif

/*
 * patch_xdelta3.c - VCDIFF patches through xdelta3, as in the paper.
 *
 * xd3_encode_memory() builds, configures and frees a whole xd3_stream for
 * every call (about 100 KiB of hash tables, output pages and instruction
 * buffers through malloc). A stream cannot be rewound for an unrelated
 * source either: after the first window it omits the VCDIFF file header and
 * keeps source-match state. So each page still gets a freshly configured
 * stream, but every allocation xdelta3 makes is served from one arena owned
 * by the context and emptied before the next page: no malloc/free on the
 * hot path, and a hostile patch cannot make the decoder allocate more than
 * the arena (a window length of megabytes just fails with ENOMEM).
 *
 * Settings for 4 KiB pages: one 4 KiB window, whole reference as the source
 * block, no secondary compressor, no Adler-32 (4 bytes a patch; the engine
 * verifies pages by hash), no application header. The output capacity is
 * passed straight to xdelta3. It only compares it with the window's size
 * when copying the finished window out (ENOSPC), so a page that will not
 * fit still costs a whole encode: there is no earlier point to stop at
 * through its API.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "page.h"
#include "patch_codec_impl.h"

/* These must match libxdelta3_la_CPPFLAGS in Makefile.am: they decide the
 * integer types, hence the layout of xd3_stream we share with the library
 * (xd3_config_stream() reports a mismatch of usize_t/xoff_t sizes). */
#define XD3_USE_LARGEFILE64 1
#define XD3_DEBUG 0
#define XD3_ENCODER 1
#define SIZEOF_SIZE_T 8
#define SIZEOF_UNSIGNED_INT 4
#define SIZEOF_UNSIGNED_LONG 8
#define SIZEOF_UNSIGNED_LONG_LONG 8

/* xdelta3.h defines these feature macros unconditionally; the system
 * headers above have already been configured by <features.h>. */
#undef _POSIX_SOURCE
#undef _ISOC99_SOURCE
#undef _C99_SOURCE

#include "xdelta3.h"

/* The arena's high-water mark over the sample pages is 175 KiB when
 * encoding (four 16 KiB output pages, the source and target hash tables,
 * instruction buffers) and much less when decoding. Pages never touched
 * cost nothing; the slack covers instruction-buffer growth on pages that
 * need many copies. */
#define XD3C_ARENA_SIZE (384u * 1024)

/* String matcher. On real similar page pairs FAST makes patches 3-6%
 * smaller than FASTER/FASTEST at about the same speed, while DEFAULT and
 * SLOW gain another 3-5% for 2x and 4x the time. XD3_BEGREEDY is not
 * used: with it xdelta3 3.0.11 read out of bounds on sample pages. */
#define XD3C_SMATCH XD3_SMATCH_FAST
#define XD3C_FLAGS 0

struct xd3_codec {
    struct patch_codec base;
    unsigned char *arena;
    size_t arena_used;
    xd3_stream stream;
    xd3_source source;
};

static void *arena_alloc(void *opaque, size_t items, usize_t size)
{
    struct xd3_codec *xc = opaque;
    size_t n = items * size, at;

    if (size && n / size != items)
        return NULL;
    at = (xc->arena_used + 15) & ~(size_t)15;
    if (at > XD3C_ARENA_SIZE || n > XD3C_ARENA_SIZE - at)
        return NULL;
    xc->arena_used = at + n;
    return xc->arena + at;
}

/* Everything is released at once by emptying the arena. */
static void arena_free(void *opaque, void *ptr)
{
}

static struct patch_codec *xd3c_new(int level)
{
    struct xd3_codec *xc = calloc(1, sizeof *xc);

    if (!xc)
        return NULL;
    xc->arena = malloc(XD3C_ARENA_SIZE);
    if (!xc->arena) {
        free(xc);
        errno = ENOMEM;
        return NULL;
    }
    return &xc->base;
}

static void xd3c_free(struct patch_codec *pc)
{
    struct xd3_codec *xc = (struct xd3_codec *)pc;

    free(xc->arena);
    free(xc);
}

/* A fresh stream with `ref` as its single-block source, memory from the
 * emptied arena. */
static int xd3c_open(struct xd3_codec *xc, const unsigned char *ref,
                     int encoding)
{
    xd3_config cfg;
    int ret;

    xc->arena_used = 0;
    xd3_init_config(&cfg, encoding ? XD3C_FLAGS : 0);
    cfg.winsize = DE_PAGE_SIZE;
    cfg.sprevsz = DE_PAGE_SIZE;
    cfg.smatch_cfg = XD3C_SMATCH;
    cfg.alloc = arena_alloc;
    cfg.freef = arena_free;
    cfg.opaque = xc;
    ret = xd3_config_stream(&xc->stream, &cfg);
    if (ret != 0)
        return ret;

    memset(&xc->source, 0, sizeof xc->source);
    xc->source.blksize = DE_PAGE_SIZE;
    xc->source.onblk = DE_PAGE_SIZE;
    xc->source.curblk = ref;
    xc->source.curblkno = 0;
    xc->source.max_winsize = DE_PAGE_SIZE;
    return xd3_set_source_and_size(&xc->stream, &xc->source, DE_PAGE_SIZE);
}

static ssize_t xd3c_encode(struct patch_codec *pc, const unsigned char *ref,
                           const unsigned char *target, unsigned char *out,
                           size_t cap)
{
    struct xd3_codec *xc = (struct xd3_codec *)pc;
    usize_t len = 0;
    int ret;

    ret = xd3c_open(xc, ref, 1);
    if (ret == 0)
        ret = xd3_encode_stream(&xc->stream, target, DE_PAGE_SIZE, out, &len,
                                (usize_t)cap);
    switch (ret) {
    case 0:
        return len > 0 ? (ssize_t)len : -EIO;
    case ENOSPC:
        return PATCH_TOO_BIG;
    case ENOMEM:
        return -ENOMEM;
    default:
        return -EIO;
    }
}

static int xd3c_decode(struct patch_codec *pc, const unsigned char *ref,
                       const unsigned char *patch, size_t len,
                       unsigned char *page_out)
{
    struct xd3_codec *xc = (struct xd3_codec *)pc;
    usize_t outlen = 0;
    int ret;

    ret = xd3c_open(xc, ref, 0);
    if (ret != 0)
        return ret == ENOMEM ? -ENOMEM : -EIO;
    /* xd3_process_stream() copies each decoded window out only after
     * checking it fits in the DE_PAGE_SIZE we give it (ENOSPC otherwise);
     * any other failure is a malformed patch. */
    ret = xd3_decode_stream(&xc->stream, patch, (usize_t)len, page_out,
                            &outlen, DE_PAGE_SIZE);
    if (ret != 0 || outlen != DE_PAGE_SIZE)
        return -EINVAL;
    return 0;
}

const struct patch_codec_ops de_patch_xdelta3_ops = {
    .name = "xdelta3",
    .id = PATCH_XDELTA3,
    .ctx_new = xd3c_new,
    .ctx_free = xd3c_free,
    .encode = xd3c_encode,
    .decode = xd3c_decode,
};

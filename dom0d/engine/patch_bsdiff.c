/*
 * patch_bsdiff.c - bsdiff-style patches (Colin Percival's algorithm) for
 * one page: suffix array of the reference (libdivsufsort), greedy
 * approximate matches, and three streams like bspatch's:
 *
 *   ctrl   triples (difflen, extralen, seek)
 *   diff   target - reference, byte-wise, over each approximate match
 *   extra  literal target bytes between matches
 *
 * Approximate matching is the point: a region that matches the reference
 * except for scattered bytes (relocated pointers, counters) costs one
 * triple and a diff run that is mostly zeros, where an exact-copy delta
 * (VCDIFF) pays a copy per fragment. The zeros and the repeats in the diff
 * stream are then squeezed by zstd, which is what bsdiff used bzip2 for.
 *
 * Patch format (all integers LEB128 varints):
 *
 *   byte 0       body coding: BSD_ZSTD or BSD_RAW
 *   rest         body, zstd-compressed (magicless frame, no content size,
 *                no checksum) or stored as is
 *   body         ctrl_len diff_len ctrl[ctrl_len] diff[diff_len] extra[...]
 *   ctrl         (difflen extralen zigzag(seek))*
 *
 * Decoding starts with ref and target positions at 0; for each triple it
 * writes difflen bytes of ref+diff, extralen bytes of extra, then moves the
 * ref position by seek. Every length and position is checked before use,
 * and the patch is accepted only if it fills the page exactly and uses up
 * the diff and extra streams.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <divsufsort.h>
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_c_format, ZSTD_f_zstd1_magicless */
#include <zstd.h>
#include <zstd_errors.h>

#include "page.h"
#include "patch_codec_impl.h"

enum { BSD_ZSTD = 0, BSD_RAW = 1 };

#define BSD_N ((int)DE_PAGE_SIZE)
/* A triple is at most three 2-byte varints (lengths <= 4096, |seek| <=
 * 4096), and every triple but the last starts at a later target offset. */
#define BSD_TRIPLE_MAX 6
#define BSD_CTRL_MAX (BSD_TRIPLE_MAX * (BSD_N + 1))
#define BSD_HDR_MAX 8
#define BSD_BODY_MAX (BSD_HDR_MAX + BSD_CTRL_MAX + BSD_N)

/* The body is mostly zero runs in the diff stream plus new bytes. On real
 * similar pairs level 5 (lazy matching) squeezes it 7-9% more than levels
 * 1-3 for 10-25 us more; level 9 and up gain under 1% more at 3x that.
 * Without that gain bsdiff patches are no smaller than zstd-with-prefix
 * ones at level 1. */
#define BSD_ZSTD_LEVEL 5

/* zstd needs a few bytes of room beyond the frame it writes (its bit
 * streams keep an 8-byte container); see patch_zstd.c. */
#define BSD_ZSTD_SLACK 32

/* bsdiff's rule: a new exact match replaces the current alignment when it
 * covers this many more matching bytes than the alignment does. */
#define BSD_MATCH_GAIN 8

struct bsdiff_codec {
    struct patch_codec base;
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
    /* The suffix array of the last reference, kept with a copy of it:
     * divsufsort() costs 100-300 us on a page (its 256x256 bucket passes
     * dominate at this size) and mallocs its 257 KiB of buckets on every
     * call, with no way to pass them in; a reference is often patched
     * against several targets in a row. */
    int sa_valid;
    unsigned char sa_ref[DE_PAGE_SIZE];
    saidx_t sa[DE_PAGE_SIZE];
    int bucket[257]; /* suffixes starting with byte c: sa[bucket[c]..bucket[c+1]) */
    size_t ctrl_len, diff_len, extra_len;
    unsigned char ctrl[BSD_CTRL_MAX];
    unsigned char diff[DE_PAGE_SIZE];
    unsigned char extra[DE_PAGE_SIZE];
    unsigned char body[BSD_BODY_MAX];
    unsigned char zbody[BSD_BODY_MAX + BSD_ZSTD_SLACK];
};

static void bsd_free(struct patch_codec *pc)
{
    struct bsdiff_codec *bc = (struct bsdiff_codec *)pc;

    ZSTD_freeCCtx(bc->cctx);
    ZSTD_freeDCtx(bc->dctx);
    free(bc);
}

static int bsd_setup(struct bsdiff_codec *bc)
{
    ZSTD_CCtx *c = bc->cctx;

    if (ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel,
                                            BSD_ZSTD_LEVEL)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_format,
                                            ZSTD_f_zstd1_magicless)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 0)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_dictIDFlag, 0)) ||
        ZSTD_isError(ZSTD_DCtx_setParameter(bc->dctx, ZSTD_d_format,
                                            ZSTD_f_zstd1_magicless)))
        return -1;
    return 0;
}

static struct patch_codec *bsd_new(int level)
{
    struct bsdiff_codec *bc = calloc(1, sizeof *bc);

    if (!bc)
        return NULL;
    bc->cctx = ZSTD_createCCtx();
    bc->dctx = ZSTD_createDCtx();
    if (!bc->cctx || !bc->dctx || bsd_setup(bc) != 0) {
        int err = bc->cctx && bc->dctx ? EINVAL : ENOMEM;

        bsd_free(&bc->base);
        errno = err;
        return NULL;
    }
    return &bc->base;
}

/* ---- varints ---------------------------------------------------------- */

static size_t varint_put(unsigned char *p, uint32_t v)
{
    size_t n = 0;

    while (v > 0x7f) {
        p[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (unsigned char)v;
    return n;
}

/* Reads a canonical varint of at most 3 bytes (values < 2^21; no page
 * quantity needs more) from [*p, end). Returns 0 on success. */
static int varint_get(const unsigned char **p, const unsigned char *end,
                      uint32_t *v)
{
    const unsigned char *q = *p;
    uint32_t x = 0;

    for (unsigned shift = 0; shift < 21; shift += 7) {
        unsigned char b;

        if (q >= end)
            return -1;
        b = *q++;
        x |= (uint32_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            if (b == 0 && shift)
                return -1; /* overlong */
            *v = x;
            *p = q;
            return 0;
        }
    }
    return -1;
}

static uint32_t zigzag(int32_t v)
{
    return ((uint32_t)v << 1) ^ (uint32_t)(v >> 31);
}

static int32_t unzigzag(uint32_t u)
{
    return (int32_t)(u >> 1) ^ -(int32_t)(u & 1);
}

/* ---- matching --------------------------------------------------------- */

/* Common prefix length, 8 bytes at a time: most of the scan's time is
 * spent here on pages with long runs. */
static int matchlen(const unsigned char *a, int alen, const unsigned char *b,
                    int blen)
{
    int n = alen < blen ? alen : blen, i = 0;

#if defined(__GNUC__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (i + 8 <= n) {
        uint64_t x, y;

        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y)
            return i + __builtin_ctzll(x ^ y) / 8;
        i += 8;
    }
#endif
    while (i < n && a[i] == b[i])
        i++;
    return i;
}

/*
 * Longest prefix of new[0..nlen) occurring in old, by binary search over
 * the suffix array, within the bucket of suffixes starting with new[0].
 * Any suffix between two others shares at least the smaller of their
 * common prefixes with `new`, so each probe starts comparing past
 * min(llcp, hlcp): O(nlen + log n) rather than bsdiff's O(nlen log n).
 */
static int ref_search(const struct bsdiff_codec *bc, const unsigned char *old,
                      int n, const unsigned char *new, int nlen, int *pos)
{
    const saidx_t *sa = bc->sa;
    int lo = bc->bucket[new[0]], hi = bc->bucket[new[0] + 1] - 1;
    int llcp, hlcp;

    if (lo > hi) {
        *pos = 0;
        return 0;
    }
    llcp = matchlen(old + sa[lo], n - sa[lo], new, nlen);
    hlcp = lo == hi ? llcp : matchlen(old + sa[hi], n - sa[hi], new, nlen);
    while (hi - lo > 1) {
        int mid = lo + (hi - lo) / 2, s = sa[mid];
        int k = llcp < hlcp ? llcp : hlcp;
        int l = k + matchlen(old + s + k, n - s - k, new + k, nlen - k);

        if (l == nlen) {
            *pos = s;
            return l;
        }
        if (s + l == n || old[s + l] < new[l]) {
            lo = mid;
            llcp = l;
        } else {
            hi = mid;
            hlcp = l;
        }
    }
    if (llcp > hlcp) {
        *pos = sa[lo];
        return llcp;
    }
    *pos = sa[hi];
    return hlcp;
}

static int index_ref(struct bsdiff_codec *bc, const unsigned char *ref)
{
    int cnt[256] = {0};

    if (bc->sa_valid && memcmp(bc->sa_ref, ref, DE_PAGE_SIZE) == 0)
        return 0;
    bc->sa_valid = 0;
    if (divsufsort(ref, bc->sa, BSD_N) != 0)
        return -ENOMEM;
    for (int i = 0; i < BSD_N; i++)
        cnt[ref[i]]++;
    bc->bucket[0] = 0;
    for (int c = 0; c < 256; c++)
        bc->bucket[c + 1] = bc->bucket[c] + cnt[c];
    memcpy(bc->sa_ref, ref, DE_PAGE_SIZE);
    bc->sa_valid = 1;
    return 0;
}

/* Appends one triple and its diff/extra bytes to the streams. */
static void emit(struct bsdiff_codec *bc, const unsigned char *old,
                 const unsigned char *new, int lastscan, int lastpos,
                 int lenf, int extralen, int32_t seek)
{
    unsigned char *c = bc->ctrl + bc->ctrl_len;

    for (int i = 0; i < lenf; i++)
        bc->diff[bc->diff_len + i] =
            (unsigned char)(new[lastscan + i] - old[lastpos + i]);
    bc->diff_len += (size_t)lenf;
    memcpy(bc->extra + bc->extra_len, new + lastscan + lenf, (size_t)extralen);
    bc->extra_len += (size_t)extralen;

    c += varint_put(c, (uint32_t)lenf);
    c += varint_put(c, (uint32_t)extralen);
    c += varint_put(c, zigzag(seek));
    bc->ctrl_len = (size_t)(c - bc->ctrl);
}

/*
 * bsdiff's scan, specialised to one page. At each target offset, find the
 * longest exact match anywhere in the reference; keep extending the current
 * alignment (lastoffset) unless the new match beats it by BSD_MATCH_GAIN
 * bytes. When the alignment changes, the stretch since the last switch is
 * split between a forward extension of the old alignment (diffed), a
 * backward extension of the new one (diffed), and literal bytes between.
 */
static void bsd_scan(struct bsdiff_codec *bc, const unsigned char *old,
                     const unsigned char *new)
{
    const int n = BSD_N;
    int scan = 0, len = 0, pos = 0;
    int lastscan = 0, lastpos = 0, lastoffset = 0;

    bc->ctrl_len = bc->diff_len = bc->extra_len = 0;
    while (scan < n) {
        int oldscore = 0, scsc;

        for (scsc = scan += len; scan < n; scan++) {
            len = ref_search(bc, old, n, new + scan, n - scan, &pos);
            for (; scsc < scan + len; scsc++)
                if (scsc + lastoffset < n && old[scsc + lastoffset] == new[scsc])
                    oldscore++;
            if ((len == oldscore && len != 0) || len > oldscore + BSD_MATCH_GAIN)
                break;
            if (scan + lastoffset < n && old[scan + lastoffset] == new[scan])
                oldscore--;
        }

        if (len != oldscore || scan == n) {
            int s = 0, sf = 0, lenf = 0, lenb = 0, i;

            for (i = 0; lastscan + i < scan && lastpos + i < n;) {
                if (old[lastpos + i] == new[lastscan + i])
                    s++;
                i++;
                if (s * 2 - i > sf * 2 - lenf) {
                    sf = s;
                    lenf = i;
                }
            }
            if (scan < n) {
                int sb = 0;

                s = 0;
                for (i = 1; scan >= lastscan + i && pos >= i; i++) {
                    if (old[pos - i] == new[scan - i])
                        s++;
                    if (s * 2 - i > sb * 2 - lenb) {
                        sb = s;
                        lenb = i;
                    }
                }
            }
            if (lastscan + lenf > scan - lenb) {
                int overlap = (lastscan + lenf) - (scan - lenb);
                int ss = 0, lens = 0;

                s = 0;
                for (i = 0; i < overlap; i++) {
                    if (new[lastscan + lenf - overlap + i] ==
                        old[lastpos + lenf - overlap + i])
                        s++;
                    if (new[scan - lenb + i] == old[pos - lenb + i])
                        s--;
                    if (s > ss) {
                        ss = s;
                        lens = i + 1;
                    }
                }
                lenf += lens - overlap;
                lenb -= lens;
            }

            /* The last triple's seek is never used: store 0. */
            emit(bc, old, new, lastscan, lastpos, lenf,
                 (scan - lenb) - (lastscan + lenf),
                 scan < n ? (pos - lenb) - (lastpos + lenf) : 0);
            lastscan = scan - lenb;
            lastpos = pos - lenb;
            lastoffset = pos - scan;
        }
    }
}

/* ---- encode / decode -------------------------------------------------- */

static size_t bsd_body(struct bsdiff_codec *bc)
{
    unsigned char *p = bc->body;

    p += varint_put(p, (uint32_t)bc->ctrl_len);
    p += varint_put(p, (uint32_t)bc->diff_len);
    memcpy(p, bc->ctrl, bc->ctrl_len);
    p += bc->ctrl_len;
    memcpy(p, bc->diff, bc->diff_len);
    p += bc->diff_len;
    memcpy(p, bc->extra, bc->extra_len);
    p += bc->extra_len;
    return (size_t)(p - bc->body);
}

static ssize_t bsd_encode(struct patch_codec *pc, const unsigned char *ref,
                          const unsigned char *target, unsigned char *out,
                          size_t cap)
{
    struct bsdiff_codec *bc = (struct bsdiff_codec *)pc;
    size_t body_len, room, z;

    if (cap < 2)
        return PATCH_TOO_BIG;
    if (index_ref(bc, ref) != 0)
        return -ENOMEM;
    bsd_scan(bc, ref, target);
    body_len = bsd_body(bc);

    /* zstd gets room for the smaller of the capacity and the stored body
     * (plus its slack), so a page that cannot fit fails early. A stored
     * body is at least a page: it only fits capacities above a page. */
    room = cap - 1 < body_len ? cap - 1 : body_len;
    z = ZSTD_compress2(bc->cctx, bc->zbody, room + BSD_ZSTD_SLACK, bc->body,
                       body_len);
    if (ZSTD_isError(z)) {
        ZSTD_CCtx_reset(bc->cctx, ZSTD_reset_session_only);
        if (ZSTD_getErrorCode(z) != ZSTD_error_dstSize_tooSmall)
            return -EIO;
        z = SIZE_MAX;
    }
    if (z <= room) {
        out[0] = BSD_ZSTD;
        memcpy(out + 1, bc->zbody, z);
        return (ssize_t)(1 + z);
    }
    if (1 + body_len > cap)
        return PATCH_TOO_BIG;
    out[0] = BSD_RAW;
    memcpy(out + 1, bc->body, body_len);
    return (ssize_t)(1 + body_len);
}

static int bsd_apply(const unsigned char *ref, const unsigned char *body,
                     size_t body_len, unsigned char *page_out)
{
    const unsigned char *p = body, *end = body + body_len;
    const unsigned char *ctrl, *ctrl_end, *diff, *diff_end, *extra;
    uint32_t ctrl_len, diff_len;
    size_t oldpos = 0, newpos = 0;

    if (varint_get(&p, end, &ctrl_len) || varint_get(&p, end, &diff_len))
        return -EINVAL;
    if (ctrl_len > (size_t)(end - p) || diff_len > (size_t)(end - p) - ctrl_len)
        return -EINVAL;
    ctrl = p;
    ctrl_end = diff = ctrl + ctrl_len;
    diff_end = extra = diff + diff_len;

    while (ctrl < ctrl_end) {
        uint32_t difflen, extralen, zseek;
        int32_t seek;

        if (varint_get(&ctrl, ctrl_end, &difflen) ||
            varint_get(&ctrl, ctrl_end, &extralen) ||
            varint_get(&ctrl, ctrl_end, &zseek))
            return -EINVAL;
        if (difflen > DE_PAGE_SIZE - newpos ||
            difflen > DE_PAGE_SIZE - oldpos ||
            difflen > (size_t)(diff_end - diff))
            return -EINVAL;
        for (uint32_t i = 0; i < difflen; i++)
            page_out[newpos + i] = (unsigned char)(ref[oldpos + i] + diff[i]);
        newpos += difflen;
        oldpos += difflen;
        diff += difflen;

        if (extralen > DE_PAGE_SIZE - newpos ||
            extralen > (size_t)(end - extra))
            return -EINVAL;
        memcpy(page_out + newpos, extra, extralen);
        newpos += extralen;
        extra += extralen;

        seek = unzigzag(zseek);
        if (seek < 0 ? (size_t)-(int64_t)seek > oldpos
                     : (size_t)seek > DE_PAGE_SIZE - oldpos)
            return -EINVAL;
        oldpos = (size_t)((int64_t)oldpos + seek);
    }
    if (newpos != DE_PAGE_SIZE || diff != diff_end || extra != end)
        return -EINVAL;
    return 0;
}

static int bsd_decode(struct patch_codec *pc, const unsigned char *ref,
                      const unsigned char *patch, size_t len,
                      unsigned char *page_out)
{
    struct bsdiff_codec *bc = (struct bsdiff_codec *)pc;
    size_t r;

    switch (patch[0]) {
    case BSD_RAW:
        return bsd_apply(ref, patch + 1, len - 1, page_out);
    case BSD_ZSTD:
        r = ZSTD_decompressDCtx(bc->dctx, bc->body, sizeof bc->body, patch + 1,
                                len - 1);
        if (ZSTD_isError(r)) {
            ZSTD_DCtx_reset(bc->dctx, ZSTD_reset_session_only);
            return -EINVAL;
        }
        return bsd_apply(ref, bc->body, r, page_out);
    default:
        return -EINVAL;
    }
}

const struct patch_codec_ops de_patch_bsdiff_ops = {
    .name = "bsdiff",
    .id = PATCH_BSDIFF,
    .ctx_new = bsd_new,
    .ctx_free = bsd_free,
    .encode = bsd_encode,
    .decode = bsd_decode,
};

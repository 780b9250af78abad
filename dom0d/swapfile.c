/*
 * swapfile.c - block-run allocator over a file, checksummed records.
 *
 * Why 256-byte blocks and runs rather than 4 KiB slots: what we swap is
 * mostly patches and compressed pages. Measured on the shipped samples
 * (non-zero pages, LZO, raw when incompressible; mean record 1.7 KiB),
 * disk bytes per payload byte are 1.10 with 256-byte blocks, 1.19 with
 * 512, 1.39 with 1 KiB and 2.4-2.5 with a 4 KiB slot per record; 128-byte
 * blocks would gain 4% more for twice the bitmap. The two bitmaps cost
 * 1 MiB per GiB of swap. Runs are at most 17 blocks, found next-fit.
 *
 * Two bitmaps: `used` (block belongs to a record) and `start` (a record
 * begins here). A record's extent is recovered from them alone, so freeing
 * needs no I/O to learn its length, and a read of a slot that is not a
 * record start is refused before touching the disk.
 *
 * On-disk integers are little-endian whatever the host.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "swapfile.h"

#define SB_MAGIC "DE-SWAP\n"
#define SB_DIRTY 1u
#define SB_CSUM_OFF 56u
#define REC_MAGIC 0x63524544u   /* "DERc" read little-endian */
#define REC_MAX (SWAP_REC_HDR + SWAP_MAX_PAYLOAD)
#define REC_MAX_BLOCKS ((REC_MAX + SWAP_BLOCK - 1) / SWAP_BLOCK)
#define MAX_BLOCKS (UINT32_MAX - 1)
#define ADOPT_WINDOW (1u << 20)

struct swapfile {
    int fd;
    char *path;
    uint64_t nblocks;
    uint64_t *used;
    uint64_t *start;
    uint64_t cursor;            /* next-fit position */
    uint64_t next_gen;
    struct swapfile_stats st;
    uint8_t io[REC_MAX] __attribute__((aligned(64)));
};

/* ---- little-endian codec ---- */

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t v = 0;

    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* ---- records ---- */

struct rec_hdr {
    uint32_t magic;
    uint16_t len;
    uint16_t flags;
    uint32_t block;
    uint32_t gen;
    uint64_t tag;
    uint64_t csum;
};

static uint64_t rec_csum(const uint8_t *hdr, const void *payload, size_t len)
{
    /* The header's fields seed the payload hash: a record moved, retagged
     * or re-generationed fails exactly like flipped payload bits. */
    return XXH3_64bits_withSeed(payload, len, XXH3_64bits(hdr, 24));
}

static void rec_encode(uint8_t *p, const struct rec_hdr *h)
{
    put32(p, h->magic);
    put16(p + 4, h->len);
    put16(p + 6, h->flags);
    put32(p + 8, h->block);
    put32(p + 12, h->gen);
    put64(p + 16, h->tag);
    put64(p + 24, h->csum);
}

static void rec_decode(const uint8_t *p, struct rec_hdr *h)
{
    h->magic = get32(p);
    h->len = get16(p + 4);
    h->flags = get16(p + 6);
    h->block = get32(p + 8);
    h->gen = get32(p + 12);
    h->tag = get64(p + 16);
    h->csum = get64(p + 24);
}

static unsigned rec_blocks(size_t len)
{
    return (unsigned)((SWAP_REC_HDR + len + SWAP_BLOCK - 1) / SWAP_BLOCK);
}

static off_t block_off(uint64_t b)
{
    return (off_t)(SWAP_SUPER_SIZE + b * SWAP_BLOCK);
}

/* ---- bitmaps ---- */

static bool bit(const uint64_t *m, uint64_t b)
{
    return m[b >> 6] >> (b & 63) & 1;
}

static void bit_set(uint64_t *m, uint64_t b)
{
    m[b >> 6] |= UINT64_C(1) << (b & 63);
}

static void bit_clr(uint64_t *m, uint64_t b)
{
    m[b >> 6] &= ~(UINT64_C(1) << (b & 63));
}

/* First block of a free run of n blocks, next-fit from the cursor, or
 * UINT64_MAX. Full words are skipped 64 blocks at a time. */
static uint64_t find_run(struct swapfile *sw, unsigned n)
{
    uint64_t b = sw->cursor, scanned = 0;

    while (scanned < sw->nblocks + n) {
        uint64_t end;

        if (b + n > sw->nblocks) {
            scanned += sw->nblocks - b;
            b = 0;
            continue;
        }
        if ((b & 63) == 0 && sw->used[b >> 6] == UINT64_MAX) {
            b += 64;
            scanned += 64;
            continue;
        }
        for (end = b; end < b + n && !bit(sw->used, end); end++)
            ;
        if (end == b + n)
            return b;
        scanned += end + 1 - b;
        b = end + 1;
    }
    return UINT64_MAX;
}

static void mark(struct swapfile *sw, uint64_t b, unsigned n)
{
    bit_set(sw->start, b);
    for (unsigned i = 0; i < n; i++)
        bit_set(sw->used, b + i);
}

/* Clears a record's blocks; returns how many it had. */
static unsigned unmark(struct swapfile *sw, uint64_t b)
{
    unsigned n = 0;

    bit_clr(sw->start, b);
    while (b + n < sw->nblocks && bit(sw->used, b + n) &&
           (n == 0 || !bit(sw->start, b + n)) && n < REC_MAX_BLOCKS)
        bit_clr(sw->used, b + n++);
    return n;
}

/* ---- I/O ---- */

static int pwrite_full(int fd, const void *buf, size_t len, off_t off)
{
    const uint8_t *p = buf;

    while (len > 0) {
        ssize_t w = pwrite(fd, p, len, off);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (w == 0)
            return -EIO;
        p += w;
        len -= (size_t)w;
        off += w;
    }
    return 0;
}

/* Reads up to len bytes; returns the count (short only at end of file)
 * or -errno. */
static ssize_t pread_full(int fd, void *buf, size_t len, off_t off)
{
    uint8_t *p = buf;
    size_t got = 0;

    while (got < len) {
        ssize_t r = pread(fd, p + got, len - got, off + (off_t)got);

        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* ---- superblock ---- */

struct super {
    uint32_t version;
    uint32_t flags;
    uint32_t block_size;
    uint32_t hdr_size;
    uint64_t nblocks;
    uint64_t data_off;
    uint64_t next_gen;
    uint64_t stamp;
};

static int super_write(struct swapfile *sw, bool dirty)
{
    uint8_t sb[SWAP_SUPER_SIZE];

    memset(sb, 0, sizeof sb);
    memcpy(sb, SB_MAGIC, 8);
    put32(sb + 8, SWAP_VERSION);
    put32(sb + 12, dirty ? SB_DIRTY : 0);
    put32(sb + 16, SWAP_BLOCK);
    put32(sb + 20, SWAP_REC_HDR);
    put64(sb + 24, sw->nblocks);
    put64(sb + 32, SWAP_SUPER_SIZE);
    put64(sb + 40, sw->next_gen);
    put64(sb + 48, (uint64_t)time(NULL));
    put64(sb + SB_CSUM_OFF, XXH3_64bits(sb, SB_CSUM_OFF));
    return pwrite_full(sw->fd, sb, sizeof sb, 0);
}

static int seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int super_read(int fd, const char *path, struct super *s, char *err,
                      size_t errlen)
{
    uint8_t sb[SWAP_SUPER_SIZE];
    ssize_t got = pread_full(fd, sb, sizeof sb, 0);

    if (got < 0)
        return seterr(err, errlen, "%s: reading superblock: %s", path,
                      strerror((int)-got));
    if ((size_t)got < SB_CSUM_OFF + 8 || memcmp(sb, SB_MAGIC, 8) != 0)
        return seterr(err, errlen, "%s: not a de-dom0d swap file (bad "
                      "magic); refusing to use it", path);
    s->version = get32(sb + 8);
    if (s->version != SWAP_VERSION)
        return seterr(err, errlen, "%s: swap file version %u, this "
                      "de-dom0d supports %u", path, s->version,
                      SWAP_VERSION);
    if (get64(sb + SB_CSUM_OFF) != XXH3_64bits(sb, SB_CSUM_OFF))
        return seterr(err, errlen, "%s: swap file superblock is corrupt "
                      "(checksum mismatch)", path);
    s->flags = get32(sb + 12);
    s->block_size = get32(sb + 16);
    s->hdr_size = get32(sb + 20);
    s->nblocks = get64(sb + 24);
    s->data_off = get64(sb + 32);
    s->next_gen = get64(sb + 40);
    s->stamp = get64(sb + 48);
    if (s->block_size != SWAP_BLOCK || s->hdr_size != SWAP_REC_HDR ||
        s->data_off != SWAP_SUPER_SIZE)
        return seterr(err, errlen, "%s: swap file geometry (block %u, "
                      "header %u) not supported", path, s->block_size,
                      s->hdr_size);
    return 0;
}

/* ---- open / close ---- */

static void sw_release(struct swapfile *sw)
{
    if (sw->fd >= 0)
        close(sw->fd);
    free(sw->used);
    free(sw->start);
    free(sw->path);
    free(sw);
}

static int sw_alloc_maps(struct swapfile *sw, uint64_t nblocks)
{
    size_t words = (size_t)((nblocks + 63) / 64);

    sw->nblocks = nblocks;
    sw->used = calloc(words ? words : 1, sizeof *sw->used);
    sw->start = calloc(words ? words : 1, sizeof *sw->start);
    return sw->used && sw->start ? 0 : -ENOMEM;
}

/* Opens, locks and validates the file; *existing tells whether it held a
 * superblock. */
static struct swapfile *sw_open_file(const char *path, uint64_t max_bytes,
                                     bool create, struct super *sb,
                                     bool *existing, char *err,
                                     size_t errlen)
{
    struct swapfile *sw;
    struct stat stb;

    if (max_bytes < SWAP_MIN_BYTES) {
        seterr(err, errlen, "%s: swap size %llu too small (minimum %u)",
               path, (unsigned long long)max_bytes, SWAP_MIN_BYTES);
        return NULL;
    }
    sw = calloc(1, sizeof *sw);
    if (!sw || !(sw->path = strdup(path))) {
        free(sw);
        seterr(err, errlen, "out of memory");
        return NULL;
    }
    /* NOFOLLOW: the file holds guest memory; a symlink planted at the
     * configured path must not redirect it. */
    sw->fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW |
                        (create ? O_CREAT : 0), 0600);
    if (sw->fd < 0) {
        seterr(err, errlen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (fstat(sw->fd, &stb) != 0) {
        seterr(err, errlen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(stb.st_mode)) {
        seterr(err, errlen, "%s: not a regular file", path);
        goto fail;
    }
    if (flock(sw->fd, LOCK_EX | LOCK_NB) != 0) {
        seterr(err, errlen, "%s: %s", path, errno == EWOULDBLOCK
               ? "in use by another process" : strerror(errno));
        goto fail;
    }
    *existing = stb.st_size > 0;
    if (*existing && super_read(sw->fd, path, sb, err, errlen) != 0)
        goto fail;
    if ((stb.st_mode & 077) && fchmod(sw->fd, 0600) != 0) {
        seterr(err, errlen, "%s: chmod 0600: %s", path, strerror(errno));
        goto fail;
    }
    sw->next_gen = *existing ? sb->next_gen : 1;
    return sw;
fail:
    sw_release(sw);
    return NULL;
}

static uint64_t blocks_for(uint64_t max_bytes)
{
    uint64_t n = (max_bytes - SWAP_SUPER_SIZE) / SWAP_BLOCK;

    return n > MAX_BLOCKS ? MAX_BLOCKS : n;
}

static struct swapfile *sw_finish(struct swapfile *sw, char *err,
                                  size_t errlen)
{
    int rc = super_write(sw, true);

    if (rc == 0 && fdatasync(sw->fd) != 0)
        rc = -errno;
    if (rc != 0) {
        seterr(err, errlen, "%s: writing superblock: %s", sw->path,
               strerror(-rc));
        sw_release(sw);
        return NULL;
    }
    sw->st.capacity_bytes = sw->nblocks * SWAP_BLOCK;
    return sw;
}

struct swapfile *swapfile_open(const char *path, uint64_t max_bytes,
                               char *err, size_t errlen)
{
    struct super sb;
    bool existing;
    struct swapfile *sw = sw_open_file(path, max_bytes, true, &sb, &existing,
                                       err, errlen);

    if (!sw)
        return NULL;
    /* Old records belong to no one now: drop them (and the guest data in
     * them) rather than leave them readable on disk. */
    if (ftruncate(sw->fd, SWAP_SUPER_SIZE) != 0) {
        seterr(err, errlen, "%s: truncate: %s", path, strerror(errno));
        sw_release(sw);
        return NULL;
    }
    if (sw_alloc_maps(sw, blocks_for(max_bytes)) != 0) {
        seterr(err, errlen, "out of memory");
        sw_release(sw);
        return NULL;
    }
    return sw_finish(sw, err, errlen);
}

/* A read-ahead window over the file for the adoption scan. */
struct window {
    uint8_t *buf;
    off_t off;
    size_t len;
};

static const uint8_t *window_at(int fd, struct window *w, off_t off,
                                size_t *avail)
{
    ssize_t got;

    if (off < w->off || off + (off_t)REC_MAX > w->off + (off_t)w->len) {
        got = pread_full(fd, w->buf, ADOPT_WINDOW, off);
        if (got < 0)
            return NULL;
        w->off = off;
        w->len = (size_t)got;
    }
    *avail = (size_t)(w->off + (off_t)w->len - off);
    return w->buf + (off - w->off);
}

struct swapfile *swapfile_adopt(const char *path, uint64_t max_bytes,
                                swapfile_adopt_fn fn, void *ctx,
                                bool *was_clean, char *err, size_t errlen)
{
    struct super sb;
    bool existing;
    struct swapfile *sw = sw_open_file(path, max_bytes, false, &sb,
                                       &existing, err, errlen);
    struct window w = { NULL, 0, 0 };
    uint64_t file_blocks, nblocks, maxgen = 0;
    struct stat stb;

    if (!sw)
        return NULL;
    if (!existing) {
        seterr(err, errlen, "%s: empty file, nothing to adopt", path);
        goto fail;
    }
    if (fstat(sw->fd, &stb) != 0) {
        seterr(err, errlen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    file_blocks = stb.st_size > (off_t)SWAP_SUPER_SIZE
        ? ((uint64_t)stb.st_size - SWAP_SUPER_SIZE + SWAP_BLOCK - 1) /
          SWAP_BLOCK : 0;
    /* Keep every record the file holds, even past a smaller max_bytes. */
    nblocks = blocks_for(max_bytes);
    if (file_blocks > nblocks)
        nblocks = file_blocks > MAX_BLOCKS ? MAX_BLOCKS : file_blocks;
    if (sw_alloc_maps(sw, nblocks) != 0 ||
        !(w.buf = malloc(ADOPT_WINDOW))) {
        seterr(err, errlen, "out of memory");
        goto fail;
    }
    w.off = -1;
    for (uint64_t b = 0; b < file_blocks && b < nblocks;) {
        const uint8_t *p;
        struct rec_hdr h;
        size_t avail;
        unsigned n;

        p = window_at(sw->fd, &w, block_off(b), &avail);
        if (!p) {
            seterr(err, errlen, "%s: reading: %s", path, strerror(errno));
            goto fail;
        }
        if (avail < SWAP_REC_HDR)
            break;
        rec_decode(p, &h);
        if (h.magic != REC_MAGIC || h.block != b || h.len == 0 ||
            h.len > SWAP_MAX_PAYLOAD || avail < SWAP_REC_HDR + h.len ||
            b + rec_blocks(h.len) > nblocks ||
            rec_csum(p, p + SWAP_REC_HDR, h.len) != h.csum) {
            b++;
            continue;
        }
        n = rec_blocks(h.len);
        mark(sw, b, n);
        sw->st.records++;
        sw->st.used_bytes += (uint64_t)n * SWAP_BLOCK;
        if (h.gen > maxgen)
            maxgen = h.gen;
        if (fn)
            fn(ctx, (uint64_t)h.gen << 32 | b, h.tag, h.len);
        b += n;
    }
    free(w.buf);
    w.buf = NULL;
    /* New generations must not collide with adopted ones. */
    if (sw->next_gen <= maxgen)
        sw->next_gen = maxgen + 1;
    if (was_clean)
        *was_clean = !(sb.flags & SB_DIRTY);
    return sw_finish(sw, err, errlen);
fail:
    free(w.buf);
    sw_release(sw);
    return NULL;
}

int swapfile_close(struct swapfile *sw)
{
    int rc = 0;

    if (!sw)
        return 0;
    if (fdatasync(sw->fd) != 0)
        rc = -errno;
    if (rc == 0)
        rc = super_write(sw, false);
    if (rc == 0 && fdatasync(sw->fd) != 0)
        rc = -errno;
    sw_release(sw);
    return rc;
}

/* ---- records ---- */

int swapfile_write_tag(struct swapfile *sw, uint64_t tag, const void *data,
                       size_t len, uint64_t *slot)
{
    struct rec_hdr h;
    unsigned n;
    uint64_t b;
    int rc;

    if (len == 0 || len > SWAP_MAX_PAYLOAD)
        return -EINVAL;
    n = rec_blocks(len);
    b = find_run(sw, n);
    if (b == UINT64_MAX)
        return -ENOSPC;
    h.magic = REC_MAGIC;
    h.len = (uint16_t)len;
    h.flags = 0;
    h.block = (uint32_t)b;
    h.gen = (uint32_t)sw->next_gen;
    h.tag = tag;
    h.csum = 0;
    rec_encode(sw->io, &h);
    h.csum = rec_csum(sw->io, data, len);
    put64(sw->io + 24, h.csum);
    memcpy(sw->io + SWAP_REC_HDR, data, len);
    rc = pwrite_full(sw->fd, sw->io, SWAP_REC_HDR + len, block_off(b));
    if (rc != 0)
        return rc;
    sw->next_gen++;
    mark(sw, b, n);
    sw->cursor = b + n;
    sw->st.records++;
    sw->st.writes++;
    sw->st.used_bytes += (uint64_t)n * SWAP_BLOCK;
    *slot = (uint64_t)h.gen << 32 | b;
    return 0;
}

int swapfile_write(struct swapfile *sw, const void *data, size_t len,
                   uint64_t *slot)
{
    return swapfile_write_tag(sw, 0, data, len, slot);
}

int swapfile_read(struct swapfile *sw, uint64_t slot, void *buf, size_t cap,
                  size_t *len)
{
    uint64_t b = (uint32_t)slot;
    struct rec_hdr h;
    size_t want;
    ssize_t got;
    int rc;

    if (slot == SWAP_SLOT_NONE || b >= sw->nblocks)
        return -EINVAL;
    if (!bit(sw->start, b))
        return -ESTALE;
    sw->st.reads++;
    want = (size_t)((sw->nblocks - b) * SWAP_BLOCK);
    if (want > REC_MAX)
        want = REC_MAX;
    got = pread_full(sw->fd, sw->io, want, block_off(b));
    if (got < 0) {
        rc = (int)got;
        goto bad;
    }
    if ((size_t)got < SWAP_REC_HDR) {
        rc = -ENODATA;
        goto bad;
    }
    rec_decode(sw->io, &h);
    if (h.magic != REC_MAGIC || h.block != b || h.len == 0 ||
        h.len > SWAP_MAX_PAYLOAD) {
        rc = -EBADMSG;
        goto bad;
    }
    if ((size_t)got < SWAP_REC_HDR + h.len) {
        rc = -ENODATA;
        goto bad;
    }
    if (rec_csum(sw->io, sw->io + SWAP_REC_HDR, h.len) != h.csum) {
        rc = -EBADMSG;
        goto bad;
    }
    if (h.gen != (uint32_t)(slot >> 32))
        return -ESTALE;
    if (h.len > cap)
        return -ENOBUFS;
    memcpy(buf, sw->io + SWAP_REC_HDR, h.len);
    *len = h.len;
    return 0;
bad:
    sw->st.read_errors++;
    return rc;
}

int swapfile_free(struct swapfile *sw, uint64_t slot)
{
    uint64_t b = (uint32_t)slot;
    uint8_t zero[4] = { 0 };
    unsigned n;

    if (slot == SWAP_SLOT_NONE || b >= sw->nblocks)
        return -EINVAL;
    if (!bit(sw->start, b))
        return -ESTALE;
    n = unmark(sw, b);
    sw->st.records--;
    sw->st.used_bytes -= (uint64_t)n * SWAP_BLOCK;
    /* Erase the magic so a later swapfile_adopt() cannot resurrect it. A
     * failure only means adoption might: the checksum still holds. */
    (void)pwrite_full(sw->fd, zero, sizeof zero, block_off(b));
    return 0;
}

const char *swapfile_strerror(int rc)
{
    switch (rc) {
    case 0: return "success";
    case -ESTALE: return "stale swap slot (freed or reused)";
    case -EBADMSG: return "corrupt swap record (bad header or checksum)";
    case -ENODATA: return "swap file truncated (record missing)";
    case -ENOBUFS: return "buffer too small for swap record";
    case -EINVAL: return "invalid swap slot or length";
    case -ENOSPC: return "swap file full";
    default: return strerror(-rc);
    }
}

void swapfile_stats(const struct swapfile *sw, struct swapfile_stats *out)
{
    *out = sw->st;
}

const char *swapfile_path(const struct swapfile *sw)
{
    return sw->path;
}

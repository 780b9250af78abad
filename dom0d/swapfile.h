/*
 * swapfile.h - cold encoded pages on disk, once the store is over budget.
 *
 * The file is a 4 KiB superblock followed by a data area of 256-byte
 * blocks. A record (a 32-byte header and its payload of 1..4096 bytes)
 * takes the smallest run of contiguous blocks that holds it: a 1 KiB
 * patch costs 1.25 KiB on disk, a raw 4 KiB page 4.25 KiB. The header
 * carries a magic, the length, the record's own block number, a
 * generation and an XXH3 checksum of header and payload, so a truncated,
 * overwritten or bit-flipped record is reported as an error and never
 * returned as data.
 *
 * A slot id names a record: (generation << 32 | first block). Reusing a
 * freed slot bumps the generation, so a stale id is refused (-ESTALE)
 * rather than answered with another page's bytes.
 *
 * Restart: the superblock holds a format version, a clean/dirty flag and
 * the generation counter; each record carries the caller's 64-bit tag
 * (e.g. guest and gfn), so swapfile_adopt() can rebuild the allocation
 * map of a file left by a previous run and hand every intact record back
 * to its owner. swapfile_open() instead starts empty, truncating old
 * records (they hold guest memory nobody owns any more).
 *
 * Not thread-safe; pread/pwrite only, no mmap.
 */
#ifndef DE_SWAPFILE_H
#define DE_SWAPFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SWAP_BLOCK 256u
#define SWAP_SUPER_SIZE 4096u
#define SWAP_REC_HDR 32u
#define SWAP_MAX_PAYLOAD 4096u
#define SWAP_VERSION 1u
#define SWAP_SLOT_NONE UINT64_MAX
/* Smallest useful file: the superblock and one full-size record. */
#define SWAP_MIN_BYTES (SWAP_SUPER_SIZE + 17u * SWAP_BLOCK)

struct swapfile;

struct swapfile_stats {
    uint64_t capacity_bytes;    /* data area */
    uint64_t used_bytes;        /* blocks held by records, headers and
                                 * rounding included */
    uint64_t records;
    uint64_t writes;
    uint64_t reads;
    uint64_t read_errors;       /* corrupt, truncated or I/O */
};

/* Opens (creating mode 0600 if needed) a swap file of at most max_bytes,
 * starting empty. An existing non-empty file must carry a valid de-dom0d
 * superblock of this version: anything else is refused, so a mistyped
 * path cannot destroy an unrelated file. The file is locked (flock) for
 * this process. Returns NULL with a message in err. */
struct swapfile *swapfile_open(const char *path, uint64_t max_bytes,
                               char *err, size_t errlen);

/* Called once per intact record found by swapfile_adopt(). */
typedef void (*swapfile_adopt_fn)(void *ctx, uint64_t slot, uint64_t tag,
                                  size_t len);

/* Opens an existing swap file keeping its records: every record whose
 * header and checksum verify is marked in use and reported to fn; the
 * rest is free space. *was_clean (may be NULL) tells whether the last
 * run closed it cleanly. Returns NULL with a message in err. */
struct swapfile *swapfile_adopt(const char *path, uint64_t max_bytes,
                                swapfile_adopt_fn fn, void *ctx,
                                bool *was_clean, char *err, size_t errlen);

/* Flushes, marks the superblock clean and closes. NULL is a no-op.
 * Returns 0 or -errno from the final writes (the file is closed anyway). */
int swapfile_close(struct swapfile *sw);

/* Stores len (1..SWAP_MAX_PAYLOAD) bytes; returns 0 with *slot set,
 * -ENOSPC when no run of blocks is free, -EINVAL, or -errno on I/O. */
int swapfile_write(struct swapfile *sw, const void *data, size_t len,
                   uint64_t *slot);
/* The same, with a tag saved for swapfile_adopt(). */
int swapfile_write_tag(struct swapfile *sw, uint64_t tag, const void *data,
                       size_t len, uint64_t *slot);

/* Reads a record into buf[0..cap), setting *len. Returns 0, or: -ESTALE
 * (slot not in use or reused), -EBADMSG (corrupt header or checksum),
 * -ENODATA (file truncated), -ENOBUFS (cap too small), -EINVAL (bad
 * id), -errno from pread. On error buf holds no valid data. */
int swapfile_read(struct swapfile *sw, uint64_t slot, void *buf, size_t cap,
                  size_t *len);

/* Releases a record's blocks. Returns 0 or -ESTALE/-EINVAL. */
int swapfile_free(struct swapfile *sw, uint64_t slot);

/* Text for an error returned above. */
const char *swapfile_strerror(int rc);

void swapfile_stats(const struct swapfile *sw, struct swapfile_stats *out);
const char *swapfile_path(const struct swapfile *sw);

#endif

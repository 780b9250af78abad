/*
 * store.h - the compact in-memory pool for encoded pages.
 *
 * Patches and compressed pages (tens of bytes to 4 KiB) are packed densely
 * into size-classed slabs, zsmalloc style, so a 1 KiB patch costs about
 * 1 KiB and not a page. Objects of exactly DE_PAGE_SIZE bytes (canonical
 * copies of shared and reference pages) live in the same allocator, in a
 * page-aligned class.
 *
 * Objects are named by opaque 64-bit handles, never by pointers: handles
 * go through an indirection table, so store_compact() can move objects to
 * empty whole slabs without the owners noticing, and a stale handle (used
 * after its object was freed) is detected instead of reading someone
 * else's bytes. Pointers from store_ptr() are valid until the next
 * store_compact() or until the object is freed.
 *
 * Not thread-safe: the daemon's event loop owns it.
 */
#ifndef DE_STORE_H
#define DE_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef uint64_t store_handle_t;

#define STORE_HANDLE_NONE ((store_handle_t)0)   /* never a valid handle */
#define STORE_MAX_OBJECT 4096u                  /* == DE_PAGE_SIZE */
#define STORE_GRAIN 32u                         /* size-class step */
#define STORE_NCLASSES (STORE_MAX_OBJECT / STORE_GRAIN)
#define STORE_SLAB_SIZE (16u * 1024)            /* every class */
#define STORE_ARENA_SLABS 32u                   /* 512 KiB of address space (the
                                                   arena bitmap is 32 bits) */

struct store;

struct store_class_stats {
    uint32_t obj_size;          /* bytes per slot */
    uint32_t objs_per_slab;
    uint64_t slabs;
    uint64_t objects;
};

struct store_stats {
    uint64_t objects;
    uint64_t payload_bytes;     /* sum of requested lengths */
    uint64_t slab_bytes;        /* slabs in use: what the OS backs */
    uint64_t meta_bytes;        /* handle table, slab descriptors */
    uint64_t footprint;         /* slab_bytes + meta_bytes */
    uint64_t overhead;          /* footprint - payload_bytes */
    uint64_t arenas;            /* 512 KiB mappings */
    uint64_t compact_moves;     /* objects moved by compaction, total */
    struct store_class_stats cls[STORE_NCLASSES];
};

/* Returns NULL with errno set. */
struct store *store_new(void);
/* Releases every slab, object and handle. */
void store_destroy(struct store *st);

/* Allocates `len` (1..STORE_MAX_OBJECT) bytes with a reference count of
 * 1. Returns 0, -EINVAL for a bad length, or -ENOMEM. */
int store_alloc(struct store *st, size_t len, store_handle_t *h);
/* store_alloc() and copy `len` bytes of data in. */
int store_put(struct store *st, const void *data, size_t len,
              store_handle_t *h);

/* The object's bytes (read/write), or NULL for a stale or bad handle. */
void *store_ptr(const struct store *st, store_handle_t h);
/* Its length, or 0 for a stale or bad handle. */
size_t store_len(const struct store *st, store_handle_t h);

/* Frees the object whatever its reference count. Returns 0 or -ENOENT. */
int store_free(struct store *st, store_handle_t h);

/* Reference counting for objects with several owners (a canonical page
 * shared by many gfns). store_ref returns the new count; store_unref
 * returns the remaining count and frees at 0; both -ENOENT for a stale
 * handle, store_ref -EOVERFLOW past UINT32_MAX. */
int64_t store_ref(struct store *st, store_handle_t h);
int64_t store_unref(struct store *st, store_handle_t h);
uint32_t store_refcount(const struct store *st, store_handle_t h);

/* Bytes the store holds from the OS (slabs + metadata): what the memory
 * budget is checked against. */
size_t store_footprint(const struct store *st);
void store_stats(const struct store *st, struct store_stats *out);

/* Moves objects out of the emptiest slabs of each class into fuller ones
 * and releases the slabs so emptied, copying at most about max_bytes.
 * Invalidates pointers from store_ptr(), never handles. Returns the slab
 * bytes released. Worth running when stats show overhead well above the
 * size-class rounding, e.g. after many pages faulted back. */
size_t store_compact(struct store *st, size_t max_bytes);

/* Checks every internal invariant (lists, counts, owners); for tests.
 * Returns 0 or -1 with a description in err. */
int store_check(const struct store *st, char *err, size_t errlen);

#endif

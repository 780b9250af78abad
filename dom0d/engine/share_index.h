/*
 * share_index.h - finds an identical twin of a page among all pages indexed.
 *
 * The index stores (hash, id) pairs only; it never copies page contents.
 * The owner supplies a callback that returns the current bytes of an id
 * (the daemon returns its own stable copy, de-analyze the image page), and
 * every hash hit is confirmed by comparing all DE_PAGE_SIZE bytes, so a
 * hash collision can never make two different pages share.
 */
#ifndef DE_SHARE_INDEX_H
#define DE_SHARE_INDEX_H

#include <stddef.h>
#include <stdint.h>

struct share_index;

/* Returns the bytes of page `id`, or NULL if it no longer exists. */
typedef const void *(*share_page_fn)(void *ctx, uint64_t id);

/* Creates an index sized for about `expected` entries (it grows as needed).
 * Returns NULL with errno set on failure. */
struct share_index *share_index_new(size_t expected, share_page_fn page_fn,
                                    void *ctx);
void share_index_free(struct share_index *si);

/* Looks for a page identical to `page` (whose page_hash() is `hash`).
 * Returns 1 and stores its id in *twin when found, 0 when not found. */
int share_index_lookup(struct share_index *si, const void *page,
                       uint64_t hash, uint64_t *twin);

/* Adds `id` under `hash`. Returns 0, or -ENOMEM. */
int share_index_insert(struct share_index *si, uint64_t hash, uint64_t id);

/* Lookup, and insert `id` when no twin exists: the common scan step.
 * Returns 1 with *twin set when a twin exists (nothing inserted), 0 when
 * `id` was inserted, or -ENOMEM. */
int share_index_find_or_insert(struct share_index *si, const void *page,
                               uint64_t hash, uint64_t id, uint64_t *twin);

/* Removes the entry (hash, id). Returns 0, or -ENOENT. */
int share_index_remove(struct share_index *si, uint64_t hash, uint64_t id);

/* Number of entries. */
size_t share_index_count(const struct share_index *si);

/* Bytes of memory the index itself uses (tables, not page contents). */
size_t share_index_bytes(const struct share_index *si);

#endif

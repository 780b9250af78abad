/*
 * page_hash.h - content hash of a whole page, for identical-page detection.
 *
 * A hash match is only a hint: callers confirm it with page_equal() before
 * they share anything.
 */
#ifndef DE_PAGE_HASH_H
#define DE_PAGE_HASH_H

#include <stdbool.h>
#include <stdint.h>

/* 64-bit XXH3 of DE_PAGE_SIZE bytes. */
uint64_t page_hash(const void *page);

/* True when every byte of the page is zero. */
bool page_is_zero(const void *page);

/* True when the two pages hold the same DE_PAGE_SIZE bytes. */
bool page_equal(const void *a, const void *b);

#endif

/*
 * page_hash.c - whole-page content hashing.
 */
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "page.h"
#include "page_hash.h"

uint64_t page_hash(const void *page)
{
    return XXH3_64bits(page, DE_PAGE_SIZE);
}

bool page_is_zero(const void *page)
{
    const uint64_t *w = page;

    /* OR-reduce in blocks: branch once per 64 bytes so the common non-zero
     * page exits early and the zero page runs at memory speed. */
    for (size_t i = 0; i < DE_PAGE_SIZE / 8; i += 8) {
        if (w[i] | w[i + 1] | w[i + 2] | w[i + 3] |
            w[i + 4] | w[i + 5] | w[i + 6] | w[i + 7])
            return false;
    }
    return true;
}

bool page_equal(const void *a, const void *b)
{
    return memcmp(a, b, DE_PAGE_SIZE) == 0;
}

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
    const unsigned char *p = page;

    /* OR-reduce in blocks: branch once per 64 bytes so the common non-zero
     * page exits early and the zero page runs at memory speed. Pages of
     * ELF cores may be unaligned: memcpy loads compile to plain moves. */
    for (size_t i = 0; i < DE_PAGE_SIZE; i += 64) {
        uint64_t w[8];

        memcpy(w, p + i, sizeof w);
        if (w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7])
            return false;
    }
    return true;
}

bool page_equal(const void *a, const void *b)
{
    return memcmp(a, b, DE_PAGE_SIZE) == 0;
}

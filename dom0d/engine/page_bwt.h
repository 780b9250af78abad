/*
 * page_bwt.h - Burrows-Wheeler transform followed by move-to-front, applied
 * to a whole page. An experimental pre-transform (a reviewer's proposal):
 * de-analyze can run fingerprinting, patching and compression on transformed
 * pages to see whether it helps. The transform is a bijection given the
 * primary index, which costs 2 bytes per page and is accounted by callers.
 */
#ifndef DE_PAGE_BWT_H
#define DE_PAGE_BWT_H

#include <stdint.h>

struct page_bwt;

/* Reusable context (suffix array and inverse-transform work space).
 * Returns NULL with errno set. */
struct page_bwt *page_bwt_new(void);
void page_bwt_free(struct page_bwt *b);

/* Transforms `page` into `out` (both DE_PAGE_SIZE bytes; they must not
 * overlap) and stores the BWT primary index. Returns 0 or -errno. */
int page_bwt_forward(struct page_bwt *b, const void *page, void *out,
                     uint16_t *primary);

/* Inverts page_bwt_forward(). Returns 0, or -EINVAL when `primary` is out
 * of range. */
int page_bwt_inverse(struct page_bwt *b, const void *in, uint16_t primary,
                     void *page_out);

#endif

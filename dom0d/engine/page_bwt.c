/*
 * page_bwt.c - per-page Burrows-Wheeler transform + move-to-front.
 *
 * Forward: divbwt() from libdivsufsort (suffix array in the context; the
 * library still mallocs its bucket arrays per call), then MTF in place.
 * Its primary index is the row of the implicit end-of-string sentinel,
 * 1..DE_PAGE_SIZE.
 *
 * Inverse: inverse MTF, then our own LF walk rather than libdivsufsort's
 * inverse_bw_transform(): the transform's input may be any bytes (a
 * corrupt or hostile page), and the library walk reads before its work
 * array when the input is not a valid BWT. Ours checks the walk and
 * reports such input as -EINVAL.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <divsufsort.h>

#include "page.h"
#include "page_bwt.h"

struct page_bwt {
    saidx_t sa[DE_PAGE_SIZE];          /* divbwt() work space */
    uint16_t next[DE_PAGE_SIZE];       /* LF walk: row -> next row (1-based) */
    unsigned char first[DE_PAGE_SIZE]; /* sorted column */
    unsigned char bwt[DE_PAGE_SIZE];   /* un-MTFed input of the inverse */
};

struct page_bwt *page_bwt_new(void)
{
    return malloc(sizeof(struct page_bwt));
}

void page_bwt_free(struct page_bwt *b)
{
    free(b);
}

static void mtf_encode(unsigned char *buf, size_t n)
{
    unsigned char order[256];

    for (int i = 0; i < 256; i++)
        order[i] = (unsigned char)i;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = buf[i];
        unsigned j = 0;

        while (order[j] != c)
            j++;
        memmove(order + 1, order, j);
        order[0] = c;
        buf[i] = (unsigned char)j;
    }
}

static void mtf_decode(const unsigned char *in, unsigned char *out, size_t n)
{
    unsigned char order[256];

    for (int i = 0; i < 256; i++)
        order[i] = (unsigned char)i;
    for (size_t i = 0; i < n; i++) {
        unsigned j = in[i];
        unsigned char c = order[j];

        memmove(order + 1, order, j);
        order[0] = c;
        out[i] = c;
    }
}

int page_bwt_forward(struct page_bwt *b, const void *page, void *out,
                     uint16_t *primary)
{
    saidx_t pidx;

    if (!b || !page || !out || !primary)
        return -EINVAL;
    pidx = divbwt(page, out, b->sa, (saidx_t)DE_PAGE_SIZE);
    if (pidx < 1 || pidx > (saidx_t)DE_PAGE_SIZE)
        return pidx == -2 ? -ENOMEM : -EIO;
    mtf_encode(out, DE_PAGE_SIZE);
    *primary = (uint16_t)pidx;
    return 0;
}

/*
 * The sorted rotations of page+sentinel have n+1 rows; the BWT string L
 * holds the last column of every row but the sentinel's (row `primary`).
 * For L[i] (row i, or i+1 past the primary) with rank r among equal
 * characters, the row that begins with that character occurrence is
 * C[c]+r+1 (row 0 starts with the sentinel). Walking rows from `primary`
 * through next[] spells the page forward; a valid BWT is one walk that
 * visits every row once and returns to the sentinel row 0 last.
 */
int page_bwt_inverse(struct page_bwt *b, const void *in, uint16_t primary,
                     void *page_out)
{
    const size_t n = DE_PAGE_SIZE;
    unsigned cum[256] = {0};
    unsigned char *outp = page_out;
    size_t i, row;

    if (!b || !in || !page_out)
        return -EINVAL;
    if (primary < 1 || primary > n)
        return -EINVAL;
    mtf_decode(in, b->bwt, n);

    for (i = 0; i < n; i++)
        cum[b->bwt[i]]++;
    for (unsigned c = 0, sum = 0; c < 256; c++) {
        unsigned cnt = cum[c];

        memset(b->first + sum, (int)c, cnt);
        cum[c] = sum;
        sum += cnt;
    }
    /* next[r-1] for row r >= 1 (1-based over the n non-sentinel rows of the
     * first column): the row that follows it in the text. */
    for (i = 0; i < n; i++) {
        unsigned char c = b->bwt[i];
        size_t lrow = i < primary ? i : i + 1;

        b->next[cum[c]++] = (uint16_t)lrow;
    }
    row = primary;
    for (i = 0; i < n; i++) {
        if (row == 0)
            return -EINVAL; /* back at the sentinel early: several cycles */
        outp[i] = b->first[row - 1];
        row = b->next[row - 1];
    }
    return row == 0 ? 0 : -EINVAL;
}

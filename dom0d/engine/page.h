/*
 * page.h - the unit everything in the engine works on: one 4 KiB guest page.
 */
#ifndef DE_PAGE_H
#define DE_PAGE_H

#include <stddef.h>
#include <stdint.h>

#define DE_PAGE_SHIFT 12
#define DE_PAGE_SIZE  ((size_t)1 << DE_PAGE_SHIFT)

/* Default size above which a patch or a compressed page is not worth
 * keeping (the paper discards patches over half a page). */
#define DE_DEFAULT_THRESHOLD 2048

#endif

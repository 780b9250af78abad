/*
 * mem_image.h - read-only access to a memory image, page by page.
 *
 * Formats: raw page dumps (page i = bytes 4096*i..), ELF core files whose
 * PT_LOAD segments hold the memory (QEMU dump-guest-memory, xl dump-core,
 * Linux process cores), and either of those compressed with zstd (the
 * corpus format; long windows up to 2^31 are accepted). A file that is
 * none of these, is truncated, or whose raw size is not a whole number of
 * pages is refused with a message naming the file.
 *
 * An ELF core's pages are those of its PT_LOAD segments that have file
 * data, in program-header order, each ceil(p_memsz / 4096) pages with the
 * bytes past p_filesz reading as zero; segments with p_filesz == 0 were
 * not dumped and give no pages. An xl dump-core gives the valid pages of
 * its .xen_pages section. An ELF file that is not a core is raw memory.
 */
#ifndef DE_MEM_IMAGE_H
#define DE_MEM_IMAGE_H

#include <stddef.h>
#include <stdint.h>

enum mem_image_format {
    MEM_IMAGE_RAW = 0,
    MEM_IMAGE_ELF,
};

struct mem_image {
    char *path;
    enum mem_image_format format;
    int compressed;             /* 1 when the file was zstd-compressed */
    size_t npages;
    /* private */
    const uint8_t *data;        /* whole (decompressed) file contents */
    size_t data_len;
    void *map;                  /* mmap of the file, or NULL */
    size_t map_len;
    uint8_t *heap;              /* decompressed copy, or NULL */
    size_t heap_len;            /* length of the heap mapping */
    uint64_t *page_off;         /* ELF: offset in data of each page, or,
                                   with bit 63 set, its slot in pad */
    uint8_t *pad;               /* ELF: pages that are partly or wholly
                                   outside the file (zero filled) */
};

/* Opens `path`. Returns 0, or -1 with a message of the form
 * "PATH: reason" in err[0..errlen). */
int mem_image_open(struct mem_image *img, const char *path, char *err,
                   size_t errlen);

/* Page i (i < npages): DE_PAGE_SIZE readable bytes. Raw images give
 * page-aligned pages; an ELF core's pages are wherever its segments put
 * them in the file (QEMU's follow the notes unaligned), so callers must not
 * assume any alignment. */
const void *mem_image_page(const struct mem_image *img, size_t i);

void mem_image_close(struct mem_image *img);

#endif

/*
 * mem_image.c - a memory image as an array of 4 KiB pages.
 *
 * An image is opened once and then read page by page, millions of times,
 * so all the work is done at open: an uncompressed file is mapped (the page
 * cache is the buffer), a compressed one is decompressed whole into an
 * anonymous mapping, and an ELF core gets a table from page number to
 * offset. mem_image_page() is then a load and an add.
 *
 * What counts as a page of an ELF core:
 *  - each PT_LOAD with file data gives ceil(p_memsz / 4096) pages, in
 *    program-header order; bytes past p_filesz read as zero;
 *  - a PT_LOAD with p_filesz == 0 gives nothing: the dumper did not save
 *    that memory (Linux cores: unreadable or never-touched mappings), and
 *    counting it as zero pages would invent sharing that is not there;
 *  - an xl dump-core file (no program headers; sections .xen_pages plus
 *    .xen_pfn or .xen_p2m) gives the pages of .xen_pages in file order,
 *    less those its pfn table marks invalid (zero padding of live dumps).
 * An ELF file that is not ET_CORE is read as raw: the application images
 * of the corpus begin with the executable's own ELF header page.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* mremap */
#endif

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#include "mem_image.h"
#include "page.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "ELF headers are read in host byte order, which must be little-endian"
#endif

/* Refuse to inflate past this: a bomb or a wrong file, not a guest. */
#define MAX_INFLATED ((uint64_t)64 << 30)
/* An ELF core's page table costs 8 bytes a page; p_memsz is only a claim
 * by the file, so bound what it may make us allocate. */
#define MAX_ELF_PAGES (((uint64_t)1 << 40) / DE_PAGE_SIZE)

#define PAD_FLAG ((uint64_t)1 << 63)
#define XEN_INVALID_PFN UINT64_MAX

struct ctx {
    struct mem_image *img;
    char *err;
    size_t errlen;
};

__attribute__((format(printf, 2, 3)))
static int fail(const struct ctx *c, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (!c->err || !c->errlen)
        return -1;
    n = snprintf(c->err, c->errlen, "%s: ", c->img->path);
    if (n < 0 || (size_t)n >= c->errlen)
        return -1;
    va_start(ap, fmt);
    vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- the file ---------------------------------------------------------- */

static int map_file(const struct ctx *c)
{
    struct mem_image *img = c->img;
    struct stat st;
    void *p;
    int fd, e;

    fd = open(img->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(c, "%s", strerror(errno));
    if (fstat(fd, &st) != 0) {
        e = errno;
        close(fd);
        return fail(c, "%s", strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return fail(c, S_ISDIR(st.st_mode) ? "is a directory"
                                           : "not a regular file");
    }
    if (st.st_size == 0) {
        close(fd);
        return fail(c, "empty file");
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return fail(c, "file too large to map");
    }
    p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    e = errno;
    close(fd);              /* the mapping keeps the file */
    if (p == MAP_FAILED)
        return fail(c, "mmap: %s", strerror(e));
    img->map = p;
    img->map_len = (size_t)st.st_size;
    img->data = p;
    img->data_len = img->map_len;
    return 0;
}

/* ---- zstd -------------------------------------------------------------- */

static int is_zstd(const uint8_t *p, size_t len)
{
    uint32_t magic;

    if (len < 4)
        return 0;
    memcpy(&magic, p, 4);
    /* A frame, or a skippable frame (0x184D2A50..5F) that may lead one. */
    return magic == ZSTD_MAGICNUMBER || (magic & ~0xFu) == 0x184D2A50u;
}

static size_t round_to_page(size_t n)
{
    return (n + DE_PAGE_SIZE - 1) & ~(DE_PAGE_SIZE - 1);
}

/* The first frame's content size when it records one; otherwise a guess
 * (memory images compress 3-10x). The buffer grows if the guess is short,
 * so this only saves mremaps. */
static size_t initial_capacity(const uint8_t *src, size_t len, int *exact)
{
    unsigned long long n = ZSTD_getFrameContentSize(src, len);
    size_t guess;

    *exact = n != ZSTD_CONTENTSIZE_UNKNOWN && n != ZSTD_CONTENTSIZE_ERROR &&
             n > 0 && n <= MAX_INFLATED;
    if (*exact)
        return round_to_page((size_t)n);
    guess = len > MAX_INFLATED / 8 ? (size_t)MAX_INFLATED : len * 8;
    return round_to_page(guess < ((size_t)1 << 20) ? (size_t)1 << 20 : guess);
}

/* An anonymous mapping rather than malloc: it grows by mremap without
 * copying, comes back to the kernel whole on close, and can be made
 * read-only once filled. Faulting it in 4 KiB at a time cost as much as
 * the decompression itself, so ask for huge pages, and when the size is
 * known fault it all in at once (both advisory: failures are ignored). */
static void *alloc_output(size_t size, int exact)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED)
        return NULL;
#ifdef MADV_HUGEPAGE
    (void)madvise(p, size, MADV_HUGEPAGE);
#endif
#ifdef MADV_POPULATE_WRITE
    if (exact)
        (void)madvise(p, size, MADV_POPULATE_WRITE);
#endif
    return p;
}

static int grow(const struct ctx *c, ZSTD_outBuffer *out)
{
    size_t cap = out->size, ncap;
    void *p;

    if (cap >= MAX_INFLATED)
        return fail(c, "decompresses to more than %" PRIu64 " GiB",
                    MAX_INFLATED >> 30);
    ncap = cap > MAX_INFLATED / 2 ? (size_t)MAX_INFLATED : cap * 2;
    p = mremap(out->dst, cap, ncap, MREMAP_MAYMOVE);
    if (p == MAP_FAILED)
        return fail(c, "cannot grow decompression buffer to %zu bytes: %s",
                    ncap, strerror(errno));
    out->dst = p;
    out->size = ncap;
    return 0;
}

static int run_inflate(const struct ctx *c, ZSTD_DCtx *dctx, ZSTD_inBuffer *in,
                       ZSTD_outBuffer *out)
{
    for (;;) {
        size_t in0 = in->pos, out0 = out->pos, ret;

        if (out->pos == out->size && grow(c, out) != 0)
            return -1;
        ret = ZSTD_decompressStream(dctx, out, in);
        if (ZSTD_isError(ret))
            return fail(c, "corrupt zstd data: %s", ZSTD_getErrorName(ret));
        if (ret == 0 && in->pos == in->size)
            return 0;
        /* With room to write and input left, zstd always moves; standing
         * still means it wants bytes the file does not have. */
        if (in->pos == in0 && out->pos == out0)
            return fail(c, "truncated zstd data (the file ends inside a "
                           "frame)");
    }
}

static int inflate_image(const struct ctx *c)
{
    struct mem_image *img = c->img;
    ZSTD_inBuffer in = { img->data, img->data_len, 0 };
    ZSTD_outBuffer out = { NULL, 0, 0 };
    ZSTD_DCtx *dctx;
    size_t ret, len;
    int rc, exact;

    out.size = initial_capacity(img->data, img->data_len, &exact);
    out.dst = alloc_output(out.size, exact);
    if (!out.dst)
        return fail(c, "cannot allocate %zu bytes: %s", out.size,
                    strerror(errno));
    dctx = ZSTD_createDCtx();
    if (!dctx) {
        munmap(out.dst, out.size);
        return fail(c, "out of memory");
    }
    /* The corpus is made with --long=27; allow any window zstd can make. */
    ret = ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, 31);
    rc = ZSTD_isError(ret) ? fail(c, "zstd: %s", ZSTD_getErrorName(ret))
                           : run_inflate(c, dctx, &in, &out);
    ZSTD_freeDCtx(dctx);
    if (rc != 0) {
        munmap(out.dst, out.size);
        return -1;
    }
    /* Shrinking in place cannot fail in practice; if it does, keep the
     * larger mapping rather than fail the open. */
    len = out.pos ? round_to_page(out.pos) : DE_PAGE_SIZE;
    if (len < out.size && mremap(out.dst, out.size, len, 0) != MAP_FAILED)
        out.size = len;
    (void)mprotect(out.dst, out.size, PROT_READ);   /* catch stray writes */

    munmap(img->map, img->map_len);
    img->map = NULL;
    img->map_len = 0;
    img->heap = out.dst;
    img->heap_len = out.size;
    img->data = img->heap;
    img->data_len = out.pos;
    img->compressed = 1;
    return 0;
}

/* ---- ELF headers, either class, as one shape ---------------------------- */

struct ehdr {
    int is64;
    uint16_t type;
    uint64_t phoff, shoff;
    uint16_t phentsize, shentsize;
    uint32_t phnum, shnum, shstrndx;
};

struct phdr {
    uint32_t type;
    uint64_t offset, filesz, memsz;
};

struct shdr {
    uint32_t name, type, link, info;
    uint64_t offset, size, entsize;
};

static void read_ehdr(const uint8_t *p, struct ehdr *h)
{
    if (p[EI_CLASS] == ELFCLASS64) {
        Elf64_Ehdr e;
        memcpy(&e, p, sizeof e);
        *h = (struct ehdr){ 1, e.e_type, e.e_phoff, e.e_shoff, e.e_phentsize,
                            e.e_shentsize, e.e_phnum, e.e_shnum,
                            e.e_shstrndx };
    } else {
        Elf32_Ehdr e;
        memcpy(&e, p, sizeof e);
        *h = (struct ehdr){ 0, e.e_type, e.e_phoff, e.e_shoff, e.e_phentsize,
                            e.e_shentsize, e.e_phnum, e.e_shnum,
                            e.e_shstrndx };
    }
}

/* Callers have checked that the table lies inside the file. */
static void read_phdr(const struct mem_image *img, const struct ehdr *h,
                      uint32_t i, struct phdr *ph)
{
    const uint8_t *p = img->data + h->phoff + (uint64_t)i * h->phentsize;

    if (h->is64) {
        Elf64_Phdr e;
        memcpy(&e, p, sizeof e);
        *ph = (struct phdr){ e.p_type, e.p_offset, e.p_filesz, e.p_memsz };
    } else {
        Elf32_Phdr e;
        memcpy(&e, p, sizeof e);
        *ph = (struct phdr){ e.p_type, e.p_offset, e.p_filesz, e.p_memsz };
    }
}

static void read_shdr(const struct mem_image *img, const struct ehdr *h,
                      uint32_t i, struct shdr *sh)
{
    const uint8_t *p = img->data + h->shoff + (uint64_t)i * h->shentsize;

    if (h->is64) {
        Elf64_Shdr e;
        memcpy(&e, p, sizeof e);
        *sh = (struct shdr){ e.sh_name, e.sh_type, e.sh_link, e.sh_info,
                             e.sh_offset, e.sh_size, e.sh_entsize };
    } else {
        Elf32_Shdr e;
        memcpy(&e, p, sizeof e);
        *sh = (struct shdr){ e.sh_name, e.sh_type, e.sh_link, e.sh_info,
                             e.sh_offset, e.sh_size, e.sh_entsize };
    }
}

static int within(uint64_t off, uint64_t len, uint64_t size)
{
    return off <= size && len <= size - off;
}

static int check_table(const struct ctx *c, const char *what, uint64_t off,
                       uint32_t num, uint16_t entsize, size_t minsize)
{
    uint64_t size = c->img->data_len;

    if (num == 0)
        return 0;
    if (entsize < minsize)
        return fail(c, "bad ELF: %s entries are %u bytes, need %zu", what,
                    entsize, minsize);
    if (!within(off, (uint64_t)num * entsize, size))
        return fail(c, "truncated ELF: %s table (offset %" PRIu64 ", %" PRIu32
                       " entries of %u bytes) is past end of file %" PRIu64,
                    what, off, num, entsize, size);
    return 0;
}

/* Counts past 0xffff live in section header 0 (ELF gABI "extended
 * numbering"); QEMU uses it for guests with many RAM blocks, Linux for
 * processes with many mappings. */
static int resolve_extended(const struct ctx *c, struct ehdr *h)
{
    size_t shsize = h->is64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr);
    struct shdr sh0;

    if (h->phnum != PN_XNUM && !(h->shnum == 0 && h->shoff != 0) &&
        h->shstrndx != SHN_XINDEX)
        return 0;
    if (h->shoff == 0)
        return fail(c, "bad ELF: extended numbering without section "
                       "header 0");
    if (check_table(c, "section header", h->shoff, 1, h->shentsize, shsize))
        return -1;
    read_shdr(c->img, h, 0, &sh0);
    if (h->phnum == PN_XNUM)
        h->phnum = sh0.info;
    if (h->shnum == 0) {
        if (sh0.size > UINT32_MAX)
            return fail(c, "bad ELF: %" PRIu64 " section headers", sh0.size);
        h->shnum = (uint32_t)sh0.size;
    }
    if (h->shstrndx == SHN_XINDEX)
        h->shstrndx = sh0.link;
    return 0;
}

/* Checks what parse_core needs before it trusts the header: returns 1 for
 * a core, 0 for an ELF file that is not one (read as raw), -1. */
static int check_ehdr(const struct ctx *c, struct ehdr *h)
{
    const uint8_t *p = c->img->data;
    size_t len = c->img->data_len, need;

    if (len < EI_NIDENT)
        return fail(c, "truncated ELF header (%zu of %d bytes)", len,
                    EI_NIDENT);
    if (p[EI_CLASS] != ELFCLASS64 && p[EI_CLASS] != ELFCLASS32)
        return fail(c, "bad ELF: unknown class %u", p[EI_CLASS]);
    need = p[EI_CLASS] == ELFCLASS64 ? sizeof(Elf64_Ehdr)
                                     : sizeof(Elf32_Ehdr);
    if (len < need)
        return fail(c, "truncated ELF header (%zu of %zu bytes)", len, need);
    if (p[EI_DATA] != ELFDATA2LSB)
        return fail(c, "big-endian ELF files are not supported");
    read_ehdr(p, h);
    if (h->type != ET_CORE)
        return 0;
    if (resolve_extended(c, h))
        return -1;
    if (check_table(c, "program header", h->phoff, h->phnum, h->phentsize,
                    h->is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr)))
        return -1;
    if (check_table(c, "section header", h->shoff, h->shnum, h->shentsize,
                    h->is64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr)))
        return -1;
    return 1;
}

/* ---- the page table ------------------------------------------------------ */

static uint64_t pages_of(uint64_t bytes)
{
    return bytes / DE_PAGE_SIZE + (bytes % DE_PAGE_SIZE != 0);
}

/* With `pad`, slot 0 of the pad buffer is the shared all-zero page and
 * slots 1..npartial hold the pages cut short by the end of their data. */
static int alloc_table(const struct ctx *c, uint64_t npages, int pad,
                       size_t npartial)
{
    struct mem_image *img = c->img;

    if (npages == 0)
        return fail(c, "ELF core holds no memory (no PT_LOAD with file "
                       "data, no .xen_pages)");
    if (npages > MAX_ELF_PAGES)
        return fail(c, "ELF core claims %" PRIu64 " pages, more than the "
                       "%" PRIu64 " accepted", npages, MAX_ELF_PAGES);
    img->page_off = malloc((size_t)npages * sizeof *img->page_off);
    if (img->page_off && pad)
        img->pad = calloc(npartial + 1, DE_PAGE_SIZE);
    if (!img->page_off || (pad && !img->pad))
        return fail(c, "out of memory for %" PRIu64 " pages", npages);
    img->npages = (size_t)npages;
    return 0;
}

/* ---- PT_LOAD segments ------------------------------------------------------ */

/* Both passes over the program headers must agree on this. */
static int dumped(const struct phdr *ph)
{
    return ph->type == PT_LOAD && ph->filesz != 0;
}

/* Validates the loads and sizes the table: *npages pages, *npartial of
 * them cut by the end of their file data, *zeros set if some lie wholly
 * past it. */
static int scan_loads(const struct ctx *c, const struct ehdr *h,
                      uint64_t *npages, size_t *npartial, int *zeros)
{
    uint64_t size = c->img->data_len;
    struct phdr ph;

    *npages = 0;
    *npartial = 0;
    *zeros = 0;
    for (uint32_t i = 0; i < h->phnum; i++) {
        read_phdr(c->img, h, i, &ph);
        if (!dumped(&ph))
            continue;
        if (!within(ph.offset, ph.filesz, size)) {
            if (ph.offset > UINT64_MAX - ph.filesz)
                return fail(c, "bad ELF: segment %" PRIu32 " (offset %" PRIu64
                               ", size %" PRIu64 ") overflows", i, ph.offset,
                            ph.filesz);
            return fail(c, "truncated ELF: segment %" PRIu32 " ends at %"
                           PRIu64 " past end of file %" PRIu64, i,
                        ph.offset + ph.filesz, size);
        }
        if (ph.memsz < ph.filesz)
            return fail(c, "bad ELF: segment %" PRIu32 " has p_filesz %"
                           PRIu64 " > p_memsz %" PRIu64, i, ph.filesz,
                        ph.memsz);
        *npages += pages_of(ph.memsz);
        if (*npages > MAX_ELF_PAGES)
            break;          /* alloc_table reports it */
        *npartial += ph.filesz % DE_PAGE_SIZE != 0;
        *zeros |= pages_of(ph.memsz) > pages_of(ph.filesz);
    }
    return 0;
}

static void fill_segment(struct mem_image *img, const struct phdr *ph,
                         size_t *next, size_t *slot)
{
    uint64_t n = pages_of(ph->memsz);

    for (uint64_t k = 0; k < n; k++) {
        uint64_t off = k * DE_PAGE_SIZE;
        uint64_t *po = &img->page_off[(*next)++];

        if (off < ph->filesz && ph->filesz - off >= DE_PAGE_SIZE) {
            *po = ph->offset + off;
        } else if (off < ph->filesz) {
            memcpy(img->pad + *slot * DE_PAGE_SIZE,
                   img->data + ph->offset + off, ph->filesz - off);
            *po = PAD_FLAG | *slot;
            (*slot)++;
        } else {
            *po = PAD_FLAG | 0;
        }
    }
}

static int build_from_loads(const struct ctx *c, const struct ehdr *h,
                            uint64_t npages, size_t npartial, int zeros)
{
    size_t next = 0, slot = 1;
    struct phdr ph;

    if (alloc_table(c, npages, npartial || zeros, npartial) != 0)
        return -1;
    for (uint32_t i = 0; i < h->phnum; i++) {
        read_phdr(c->img, h, i, &ph);
        if (dumped(&ph))
            fill_segment(c->img, &ph, &next, &slot);
    }
    return 0;
}

/* ---- xl dump-core ----------------------------------------------------------- */

struct xen_secs {
    int have_pages, have_pfns;
    struct shdr pages, pfns;
};

static int section_name_is(const struct mem_image *img, const struct shdr *strtab,
                           uint32_t name, const char *want)
{
    size_t n = strlen(want) + 1;

    return name < strtab->size && strtab->size - name >= n &&
           memcmp(img->data + strtab->offset + name, want, n) == 0;
}

static int find_xen_sections(const struct ctx *c, const struct ehdr *h,
                             struct xen_secs *x)
{
    struct shdr strtab, sh;

    memset(x, 0, sizeof *x);
    if (h->shnum == 0 || h->shstrndx >= h->shnum)
        return 0;
    read_shdr(c->img, h, h->shstrndx, &strtab);
    if (!within(strtab.offset, strtab.size, c->img->data_len))
        return fail(c, "truncated ELF: section name table past end of file "
                       "%zu", c->img->data_len);
    for (uint32_t i = 1; i < h->shnum; i++) {
        read_shdr(c->img, h, i, &sh);
        if (section_name_is(c->img, &strtab, sh.name, ".xen_pages")) {
            x->pages = sh;
            x->have_pages = 1;
        } else if (section_name_is(c->img, &strtab, sh.name, ".xen_pfn") ||
                   section_name_is(c->img, &strtab, sh.name, ".xen_p2m")) {
            x->pfns = sh;
            x->have_pfns = 1;
        }
    }
    return 0;
}

/* .xen_pfn entries are a uint64_t pfn, .xen_p2m entries a {pfn, gmfn}
 * pair; either way the pfn comes first and sh_entsize gives the stride. */
static int check_xen(const struct ctx *c, const struct xen_secs *x)
{
    uint64_t size = c->img->data_len, n = x->pages.size / DE_PAGE_SIZE;

    if (!within(x->pages.offset, x->pages.size, size))
        return fail(c, "truncated xen dump-core: .xen_pages ends at %" PRIu64
                       " past end of file %" PRIu64,
                    x->pages.offset + x->pages.size, size);
    if (x->pages.size % DE_PAGE_SIZE)
        return fail(c, "bad xen dump-core: .xen_pages size %" PRIu64
                       " is not a whole number of pages", x->pages.size);
    if (!x->have_pfns)
        return 0;
    if (x->pfns.entsize < 8 || x->pfns.size / x->pfns.entsize != n ||
        x->pfns.size % x->pfns.entsize)
        return fail(c, "bad xen dump-core: pfn table (%" PRIu64 " bytes, "
                       "entries of %" PRIu64 ") does not list %" PRIu64
                       " pages", x->pfns.size, x->pfns.entsize, n);
    if (!within(x->pfns.offset, x->pfns.size, size))
        return fail(c, "truncated xen dump-core: pfn table past end of "
                       "file %" PRIu64, size);
    return 0;
}

static uint64_t xen_pfn(const struct mem_image *img, const struct xen_secs *x,
                        uint64_t i)
{
    uint64_t pfn;

    if (!x->have_pfns)
        return 0;
    memcpy(&pfn, img->data + x->pfns.offset + i * x->pfns.entsize, 8);
    return pfn;
}

static int build_from_xen(const struct ctx *c, const struct xen_secs *x)
{
    struct mem_image *img = c->img;
    uint64_t n = x->pages.size / DE_PAGE_SIZE, valid = 0;
    size_t next = 0;

    if (check_xen(c, x) != 0)
        return -1;
    for (uint64_t i = 0; i < n; i++)
        valid += xen_pfn(img, x, i) != XEN_INVALID_PFN;
    if (alloc_table(c, valid, 0, 0) != 0)
        return -1;
    for (uint64_t i = 0; i < n; i++)
        if (xen_pfn(img, x, i) != XEN_INVALID_PFN)
            img->page_off[next++] = x->pages.offset + i * DE_PAGE_SIZE;
    return 0;
}

/* ---- formats -------------------------------------------------------------- */

static int parse_core(const struct ctx *c, const struct ehdr *h)
{
    struct xen_secs x;
    uint64_t npages;
    size_t npartial;
    int zeros;

    c->img->format = MEM_IMAGE_ELF;
    if (scan_loads(c, h, &npages, &npartial, &zeros) != 0)
        return -1;
    if (npages)
        return build_from_loads(c, h, npages, npartial, zeros);
    if (find_xen_sections(c, h, &x) != 0)
        return -1;
    if (x.have_pages)
        return build_from_xen(c, &x);
    return alloc_table(c, 0, 0, 0);
}

static int parse_raw(const struct ctx *c)
{
    struct mem_image *img = c->img;

    if (img->data_len == 0)
        return fail(c, "empty after zstd decompression");
    if (img->data_len % DE_PAGE_SIZE)
        return fail(c, "size %zu is not a whole number of %zu-byte pages",
                    img->data_len, DE_PAGE_SIZE);
    img->format = MEM_IMAGE_RAW;
    img->npages = img->data_len / DE_PAGE_SIZE;
    return 0;
}

static int parse(const struct ctx *c)
{
    const uint8_t *p = c->img->data;
    struct ehdr h = { 0 };
    int rc;

    if (c->img->data_len >= SELFMAG && memcmp(p, ELFMAG, SELFMAG) == 0) {
        rc = check_ehdr(c, &h);
        if (rc < 0)
            return -1;
        if (rc > 0)
            return parse_core(c, &h);
        /* An executable passed by mistake: say so, not "bad size". */
        if (c->img->data_len % DE_PAGE_SIZE)
            return fail(c, "not a memory image: ELF file of type %u is not "
                           "a core dump", h.type);
    }
    return parse_raw(c);
}

int mem_image_open(struct mem_image *img, const char *path, char *err,
                   size_t errlen)
{
    struct ctx c = { img, err, errlen };

    memset(img, 0, sizeof *img);
    if (err && errlen)
        err[0] = '\0';
    img->path = strdup(path);
    if (!img->path) {
        if (err && errlen)
            snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    if (map_file(&c) != 0 ||
        (is_zstd(img->data, img->data_len) && inflate_image(&c) != 0) ||
        parse(&c) != 0) {
        mem_image_close(img);
        return -1;
    }
    return 0;
}

const void *mem_image_page(const struct mem_image *img, size_t i)
{
    uint64_t off;

    if (!img->page_off)
        return img->data + i * DE_PAGE_SIZE;
    off = img->page_off[i];
    if (off & PAD_FLAG)
        return img->pad + (off & ~PAD_FLAG) * DE_PAGE_SIZE;
    return img->data + off;
}

void mem_image_close(struct mem_image *img)
{
    if (img->map)
        munmap(img->map, img->map_len);
    if (img->heap)
        munmap(img->heap, img->heap_len);
    free(img->page_off);
    free(img->pad);
    free(img->path);
    memset(img, 0, sizeof *img);
}

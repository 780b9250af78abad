/*
 * test_mem_image.c - the memory-image readers: raw, ELF cores (built here
 * byte by byte, so every page's expected contents are known), xl
 * dump-core, zstd, real process cores when gdb or the kernel can make one,
 * and every kind of bad input.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <zstd.h>

#include "mem_image.h"
#include "page.h"
#include "tests.h"

#define PS DE_PAGE_SIZE

/* ---- helpers ------------------------------------------------------------ */

static const char *tmp_path(const char *name)
{
    static char path[8][4096];
    static unsigned next;
    char *p = path[next++ % 8];

    snprintf(p, sizeof path[0], "%s/%s", tu_tmpdir(), name);
    return p;
}

static const char *write_tmp(const char *name, const void *buf, size_t len)
{
    const char *path = tmp_path(name);
    FILE *f = fopen(path, "wb");

    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fwrite(buf, 1, len, f), len);
    CU_ASSERT_EQUAL_FATAL(fclose(f), 0);
    return path;
}

static uint8_t *read_whole(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long n;

    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static uint8_t *zstd_compress(const void *src, size_t len, int with_size,
                              size_t *clen)
{
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    size_t cap = ZSTD_compressBound(len), r;
    uint8_t *dst = malloc(cap);

    ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, with_size);
    r = ZSTD_compress2(cc, dst, cap, src, len);
    ZSTD_freeCCtx(cc);
    CU_ASSERT_FATAL(!ZSTD_isError(r));
    *clen = r;
    return dst;
}

/* Opens `path` expecting success; the caller closes. */
static int open_ok(struct mem_image *img, const char *path)
{
    char err[512] = "";
    int rc = mem_image_open(img, path, err, sizeof err);

    if (rc != 0)
        fprintf(stderr, "\nunexpected: %s\n", err);
    CU_ASSERT_EQUAL(rc, 0);
    return rc;
}

/* Every page of `img` equals the matching page of `want`. */
static void assert_pages(const struct mem_image *img, const uint8_t *want,
                         size_t npages)
{
    size_t bad = 0;

    CU_ASSERT_EQUAL_FATAL(img->npages, npages);
    for (size_t i = 0; i < npages; i++)
        if (memcmp(mem_image_page(img, i), want + i * PS, PS) != 0) {
            if (!bad)
                fprintf(stderr, "\npage %zu differs\n", i);
            bad++;
        }
    CU_ASSERT_EQUAL(bad, 0);
}

/* The open fails, names the file, says why, and leaves nothing behind
 * (valgrind checks the last part). */
static void expect_fail(const char *path, const char *reason)
{
    struct mem_image img;
    char err[512] = "";
    size_t plen = strlen(path);
    int rc;

    memset(&img, 0xa5, sizeof img);     /* open must not trust it */
    rc = mem_image_open(&img, path, err, sizeof err);
    CU_ASSERT_EQUAL(rc, -1);
    CU_ASSERT(strncmp(err, path, plen) == 0 && strncmp(err + plen, ": ", 2) == 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, reason));
    if (rc != -1 || !strstr(err, reason))
        fprintf(stderr, "\nwanted \"%s\", got \"%s\"\n", reason, err);
    CU_ASSERT_EQUAL(img.npages, 0);
    CU_ASSERT_PTR_NULL(img.path);
    mem_image_close(&img);              /* harmless after a failed open */
}

/* ---- raw ------------------------------------------------------------------- */

static void test_raw_sample(void)
{
    char path[4096];
    struct mem_image img;
    uint8_t *z, *want;
    size_t zlen;
    unsigned long long n;

    snprintf(path, sizeof path, "%s/vm-web-1.ram.zst", tu_samples_dir());
    z = read_whole(path, &zlen);
    CU_ASSERT_PTR_NOT_NULL_FATAL(z);
    /* Decompressed independently, one shot, for the reference bytes. */
    n = ZSTD_getFrameContentSize(z, zlen);
    CU_ASSERT_EQUAL_FATAL(n, (unsigned long long)2048 * PS);
    want = malloc(n);
    CU_ASSERT_EQUAL_FATAL(ZSTD_decompress(want, n, z, zlen), n);
    if (open_ok(&img, path) == 0) {
        CU_ASSERT_EQUAL(img.format, MEM_IMAGE_RAW);
        CU_ASSERT_EQUAL(img.compressed, 1);
        CU_ASSERT_STRING_EQUAL(img.path, path);
        assert_pages(&img, want, 2048);
        mem_image_close(&img);
        CU_ASSERT_PTR_NULL(img.path);
        mem_image_close(&img);          /* twice is harmless */
    }
    free(want);
    free(z);
}

static void test_raw_file(void)
{
    enum { N = 5 };
    uint8_t *buf = malloc(N * PS);
    struct mem_image img;
    const char *path;

    for (size_t i = 0; i < N; i++)
        tu_random_page(buf + i * PS, 100 + i);
    memset(buf + 2 * PS, 0, PS);
    path = write_tmp("raw5.ram", buf, N * PS);
    if (open_ok(&img, path) == 0) {
        CU_ASSERT_EQUAL(img.format, MEM_IMAGE_RAW);
        CU_ASSERT_EQUAL(img.compressed, 0);
        CU_ASSERT_PTR_NOT_NULL(img.map);
        CU_ASSERT_PTR_NULL(img.heap);
        /* mapped, not copied: pages are consecutive and aligned */
        CU_ASSERT_EQUAL((uintptr_t)mem_image_page(&img, 0) % PS, 0);
        CU_ASSERT_PTR_EQUAL(mem_image_page(&img, 4),
                            (const uint8_t *)mem_image_page(&img, 0) + 4 * PS);
        assert_pages(&img, buf, N);
        mem_image_close(&img);
    }
    unlink(path);
    free(buf);
}

/* The application images begin with the executable's ELF header: an ELF
 * file that is not a core is memory like any other. */
static void test_raw_starting_with_elf(void)
{
    uint8_t *buf = calloc(2, PS);
    Elf64_Ehdr *e = (Elf64_Ehdr *)buf;
    struct mem_image img;
    const char *path;

    memcpy(e->e_ident, ELFMAG, SELFMAG);
    e->e_ident[EI_CLASS] = ELFCLASS64;
    e->e_ident[EI_DATA] = ELFDATA2LSB;
    e->e_type = ET_DYN;
    e->e_phoff = 1u << 30;              /* nonsense, and never read */
    e->e_phnum = 13;
    tu_random_page(buf + PS, 7);
    path = write_tmp("elfdyn.ram", buf, 2 * PS);
    if (open_ok(&img, path) == 0) {
        CU_ASSERT_EQUAL(img.format, MEM_IMAGE_RAW);
        assert_pages(&img, buf, 2);
        mem_image_close(&img);
    }
    unlink(path);
    free(buf);
}

/* More output than the first buffer guess, in two frames that do not
 * record their size: the decompressor must grow and keep going. */
static void test_zstd_unknown_size_multiframe(void)
{
    enum { N = 2048 };                  /* 8 MiB, compresses to little */
    uint8_t *buf = calloc(N, PS), *z1, *z2, *both;
    struct mem_image img;
    const char *path;
    size_t l1, l2, half = N / 2 * PS;

    for (size_t i = 0; i < N; i += 97)
        tu_random_page(buf + i * PS, i);
    z1 = zstd_compress(buf, half, 0, &l1);
    z2 = zstd_compress(buf + half, half, 0, &l2);
    CU_ASSERT_EQUAL(ZSTD_getFrameContentSize(z1, l1), ZSTD_CONTENTSIZE_UNKNOWN);
    both = malloc(l1 + l2);
    memcpy(both, z1, l1);
    memcpy(both + l1, z2, l2);
    path = write_tmp("multi.ram.zst", both, l1 + l2);
    if (open_ok(&img, path) == 0) {
        CU_ASSERT_EQUAL(img.compressed, 1);
        assert_pages(&img, buf, N);
        mem_image_close(&img);
    }
    unlink(path);
    free(both);
    free(z2);
    free(z1);
    free(buf);
}

/* ---- ELF cores --------------------------------------------------------------- */

/*
 * The reference core: a PT_NOTE, then
 *   [1] PT_LOAD at 0x1234 (not page- or even 8-aligned), 3 whole pages;
 *   [2] PT_LOAD with p_filesz 0 and p_memsz 5 pages: not dumped, no pages;
 *   [3] PT_LOAD at 0x5000, 1.5 pages of data, p_memsz 4 pages: a full page,
 *       a half page, two zero pages;
 *   [4] PT_LOAD at 0x7001, 100 bytes of data and memory: one page.
 * Bytes 0x5000+6144 .. 0x8000 are 0xEE filler, so any zero the reader
 * returns past p_filesz must be its own, not the file's.
 */
#define CORE_LEN 0x8000
#define CORE_PAGES 8

static void put_phdr(uint8_t *f, int i, uint32_t type, uint64_t off,
                     uint64_t filesz, uint64_t memsz)
{
    Elf64_Phdr ph = { .p_type = type, .p_flags = PF_R | PF_W,
                      .p_offset = off, .p_vaddr = 0x100000 * (uint64_t)i,
                      .p_paddr = 0x100000 * (uint64_t)i, .p_filesz = filesz,
                      .p_memsz = memsz, .p_align = type == PT_LOAD ? PS : 4 };

    memcpy(f + sizeof(Elf64_Ehdr) + (size_t)i * sizeof ph, &ph, sizeof ph);
}

static void put_ehdr64(uint8_t *f, uint64_t phoff, uint16_t phnum,
                       uint64_t shoff, uint16_t shnum, uint16_t shstrndx)
{
    Elf64_Ehdr e = { .e_type = ET_CORE, .e_machine = EM_X86_64,
                     .e_version = EV_CURRENT, .e_phoff = phoff,
                     .e_shoff = shoff, .e_ehsize = sizeof e,
                     .e_phentsize = sizeof(Elf64_Phdr), .e_phnum = phnum,
                     .e_shentsize = sizeof(Elf64_Shdr), .e_shnum = shnum,
                     .e_shstrndx = shstrndx };

    memcpy(e.e_ident, ELFMAG, SELFMAG);
    e.e_ident[EI_CLASS] = ELFCLASS64;
    e.e_ident[EI_DATA] = ELFDATA2LSB;
    e.e_ident[EI_VERSION] = EV_CURRENT;
    memcpy(f, &e, sizeof e);
}

/* Fills f[CORE_LEN] and want[CORE_PAGES pages]. */
static void build_core(uint8_t *f, uint8_t *want)
{
    static const uint8_t note[] = { 5, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0,
                                    'C', 'O', 'R', 'E', 0, 0, 0, 0,
                                    1, 2, 3, 4, 5, 6, 7, 8 };
    size_t note_off = sizeof(Elf64_Ehdr) + 5 * sizeof(Elf64_Phdr);
    uint8_t pg[PS];

    memset(f, 0, CORE_LEN);
    memset(want, 0, CORE_PAGES * PS);
    put_ehdr64(f, sizeof(Elf64_Ehdr), 5, 0, 0, 0);
    put_phdr(f, 0, PT_NOTE, note_off, sizeof note, 0);
    put_phdr(f, 1, PT_LOAD, 0x1234, 3 * PS, 3 * PS);
    put_phdr(f, 2, PT_LOAD, 0, 0, 5 * PS);
    put_phdr(f, 3, PT_LOAD, 0x5000, PS + PS / 2, 4 * PS);
    put_phdr(f, 4, PT_LOAD, 0x7001, 100, 100);
    memcpy(f + note_off, note, sizeof note);
    for (int i = 0; i < 3; i++) {
        tu_random_page(pg, 1 + (uint64_t)i);
        memcpy(f + 0x1234 + (size_t)i * PS, pg, PS);
        memcpy(want + (size_t)i * PS, pg, PS);
    }
    memset(f + 0x5000 + PS + PS / 2, 0xEE, CORE_LEN - (0x5000 + PS + PS / 2));
    tu_random_page(pg, 4);
    memcpy(f + 0x5000, pg, PS);
    memcpy(want + 3 * PS, pg, PS);
    tu_random_page(pg, 5);
    memcpy(f + 0x5000 + PS, pg, PS / 2);
    memcpy(want + 4 * PS, pg, PS / 2);
    /* want pages 5 and 6: zero; page 7: 100 bytes of filler */
    memset(want + 7 * PS, 0xEE, 100);
}

static void test_elf_core(void)
{
    uint8_t *f = malloc(CORE_LEN), *want = malloc(CORE_PAGES * PS);
    struct mem_image img;
    const char *path;

    build_core(f, want);
    path = write_tmp("core.elf", f, CORE_LEN);
    if (open_ok(&img, path) == 0) {
        CU_ASSERT_EQUAL(img.format, MEM_IMAGE_ELF);
        CU_ASSERT_EQUAL(img.compressed, 0);
        assert_pages(&img, want, CORE_PAGES);
        /* whole pages are read in place, even unaligned */
        CU_ASSERT_PTR_EQUAL(mem_image_page(&img, 1),
                            (const uint8_t *)img.data + 0x1234 + PS);
        /* the two zero pages are one */
        CU_ASSERT_PTR_EQUAL(mem_image_page(&img, 5), mem_image_page(&img, 6));
        mem_image_close(&img);
    }
    unlink(path);
    free(want);
    free(f);
}

static void test_elf_core_zstd(void)
{
    uint8_t *f = malloc(CORE_LEN), *want = malloc(CORE_PAGES * PS), *z;
    struct mem_image img;
    const char *path;
    size_t zlen;

    build_core(f, want);
    z = zstd_compress(f, CORE_LEN, 1, &zlen);
    path = write_tmp("core.elf.zst", z, zlen);
    if (open_ok(&img, path) == 0) {
        CU_ASSERT_EQUAL(img.format, MEM_IMAGE_ELF);
        CU_ASSERT_EQUAL(img.compressed, 1);
        assert_pages(&img, want, CORE_PAGES);
        mem_image_close(&img);
    }
    unlink(path);
    free(z);
    free(want);
    free(f);
}

static void test_elf32_core(void)
{
    uint8_t *f = calloc(3, PS), *want = malloc(2 * PS);
    Elf32_Ehdr e = { .e_type = ET_CORE, .e_machine = EM_386,
                     .e_version = EV_CURRENT, .e_phoff = sizeof e,
                     .e_ehsize = sizeof e, .e_phentsize = sizeof(Elf32_Phdr),
                     .e_phnum = 1 };
    Elf32_Phdr ph = { .p_type = PT_LOAD, .p_offset = PS, .p_filesz = 2 * PS,
                      .p_memsz = 2 * PS };
    struct mem_image img;
    const char *path;

    memcpy(e.e_ident, ELFMAG, SELFMAG);
    e.e_ident[EI_CLASS] = ELFCLASS32;
    e.e_ident[EI_DATA] = ELFDATA2LSB;
    memcpy(f, &e, sizeof e);
    memcpy(f + sizeof e, &ph, sizeof ph);
    tu_random_page(f + PS, 31);
    tu_random_page(f + 2 * PS, 32);
    memcpy(want, f + PS, 2 * PS);
    path = write_tmp("core32.elf", f, 3 * PS);
    if (open_ok(&img, path) == 0) {
        CU_ASSERT_EQUAL(img.format, MEM_IMAGE_ELF);
        assert_pages(&img, want, 2);
        mem_image_close(&img);
    }
    unlink(path);
    free(want);
    free(f);
}

/* e_phnum == PN_XNUM: the count is in section header 0's sh_info, as
 * Linux and QEMU write it when there are 65535 or more segments. */
static void test_elf_extended_phnum(void)
{
    size_t phoff = sizeof(Elf64_Ehdr), shoff = phoff + 2 * sizeof(Elf64_Phdr);
    uint8_t *f = calloc(3, PS), *want = malloc(2 * PS);
    Elf64_Shdr sh0 = { .sh_info = 2 };
    struct mem_image img;
    const char *path;

    put_ehdr64(f, phoff, PN_XNUM, shoff, 1, SHN_UNDEF);
    put_phdr(f, 0, PT_LOAD, PS, PS, PS);
    put_phdr(f, 1, PT_LOAD, 2 * PS, PS, PS);
    memcpy(f + shoff, &sh0, sizeof sh0);
    tu_random_page(f + PS, 41);
    tu_random_page(f + 2 * PS, 42);
    memcpy(want, f + PS, 2 * PS);
    path = write_tmp("xnum.elf", f, 3 * PS);
    if (open_ok(&img, path) == 0) {
        assert_pages(&img, want, 2);
        mem_image_close(&img);
    }
    unlink(path);
    free(want);
    free(f);
}

/* ---- xl dump-core -------------------------------------------------------------- */

/*
 * Laid out as libxc's xc_domain_dumpcore writes it: ELF header, section
 * headers (null, .shstrtab, .note.Xen, .xen_pages, .xen_pfn/.xen_p2m),
 * notes, page-aligned .xen_pages, the pfn table, the name table. Four
 * pages, the last with an invalid pfn as a live dump pads them.
 */
static void build_xen(uint8_t *f, size_t *len, int p2m, uint8_t *want)
{
    static const char names[] = "\0.shstrtab\0.note.Xen\0.xen_pages\0"
                                ".xen_pfn\0.xen_p2m";
    size_t pages_off = PS, tab_off = 5 * PS, ent = p2m ? 16 : 8;
    size_t str_off = tab_off + 4 * ent;
    uint64_t pfns[4] = { 0, 1, 5, UINT64_MAX };
    Elf64_Shdr sh[5] = {
        { 0 },
        { .sh_name = 1, .sh_type = SHT_STRTAB, .sh_offset = str_off,
          .sh_size = sizeof names },
        { .sh_name = 11, .sh_type = SHT_NOTE, .sh_offset = 64 + 5 * 64,
          .sh_size = 0 },
        { .sh_name = 21, .sh_type = SHT_PROGBITS, .sh_offset = pages_off,
          .sh_size = 4 * PS, .sh_addralign = PS, .sh_entsize = PS },
        { .sh_name = p2m ? 41 : 32, .sh_type = SHT_PROGBITS,
          .sh_offset = tab_off, .sh_size = 4 * ent, .sh_addralign = 8,
          .sh_entsize = ent },
    };

    memset(f, 0, 6 * PS);
    put_ehdr64(f, 0, 0, sizeof(Elf64_Ehdr), 5, 1);
    memcpy(f + sizeof(Elf64_Ehdr), sh, sizeof sh);
    for (int i = 0; i < 4; i++) {
        uint64_t gmfn = 0x1000 + (uint64_t)i;

        tu_random_page(f + pages_off + (size_t)i * PS, 50 + (uint64_t)i);
        memcpy(f + tab_off + (size_t)i * ent, &pfns[i], 8);
        if (p2m)
            memcpy(f + tab_off + (size_t)i * ent + 8, &gmfn, 8);
    }
    memcpy(f + str_off, names, sizeof names);
    memcpy(want, f + pages_off, 3 * PS);
    *len = str_off + sizeof names;
}

static void check_xen(int p2m)
{
    uint8_t *f = malloc(6 * PS), *want = malloc(3 * PS);
    struct mem_image img;
    const char *path;
    size_t len;

    build_xen(f, &len, p2m, want);
    path = write_tmp(p2m ? "xen-p2m.core" : "xen-pfn.core", f, len);
    if (open_ok(&img, path) == 0) {
        CU_ASSERT_EQUAL(img.format, MEM_IMAGE_ELF);
        assert_pages(&img, want, 3);
        mem_image_close(&img);
    }
    /* cut before the name table */
    path = write_tmp(p2m ? "xen-p2m.core" : "xen-pfn.core", f, 3 * PS);
    expect_fail(path, "section name table past end of file 12288");
    /* a .xen_pages that claims to run past the end of the file */
    {
        uint64_t big = 100 * PS;
        char msg[128];

        memcpy(f + sizeof(Elf64_Ehdr) + 3 * sizeof(Elf64_Shdr) +
               offsetof(Elf64_Shdr, sh_size), &big, sizeof big);
        path = write_tmp(p2m ? "xen-p2m.core" : "xen-pfn.core", f, len);
        snprintf(msg, sizeof msg, ".xen_pages ends at %zu past end of file "
                 "%zu", PS + 100 * PS, len);
        expect_fail(path, msg);
    }
    unlink(path);
    free(want);
    free(f);
}

static void test_xen_pfn(void)
{
    check_xen(0);
}

static void test_xen_p2m(void)
{
    check_xen(1);
}

/* ---- bad input ------------------------------------------------------------------- */

static void test_bad_files(void)
{
    static const char text[] = "this is not a memory image\n";
    uint8_t *buf = calloc(2, PS);
    const char *path;

    path = write_tmp("empty", "", 0);
    expect_fail(path, "empty file");
    unlink(path);

    path = write_tmp("text.txt", text, sizeof text - 1);
    expect_fail(path, "size 27 is not a whole number of 4096-byte pages");
    unlink(path);

    path = write_tmp("odd.ram", buf, PS + 904);
    expect_fail(path, "size 5000 is not a whole number of 4096-byte pages");
    unlink(path);

    /* an executable, not a core */
    {
        Elf64_Ehdr e = { .e_type = ET_EXEC };

        memcpy(e.e_ident, ELFMAG, SELFMAG);
        e.e_ident[EI_CLASS] = ELFCLASS64;
        e.e_ident[EI_DATA] = ELFDATA2LSB;
        memcpy(buf, &e, sizeof e);
        path = write_tmp("a.out", buf, 5000);
        expect_fail(path, "not a memory image: ELF file of type 2 is not a "
                          "core dump");
        unlink(path);
    }

    expect_fail(tmp_path("does-not-exist"), "No such file or directory");
    expect_fail(tu_tmpdir(), "is a directory");
    expect_fail("/dev/null", "not a regular file");
    free(buf);
}

static void test_bad_elf(void)
{
    uint8_t *f = malloc(CORE_LEN), *want = malloc(CORE_PAGES * PS);
    Elf64_Ehdr e;
    char msg[128];
    const char *path;

    build_core(f, want);
    path = write_tmp("bad.core", f, 40);
    expect_fail(path, "truncated ELF header (40 of 64 bytes)");

    path = write_tmp("bad.core", f, 10);
    expect_fail(path, "truncated ELF header (10 of 16 bytes)");

    /* the last segment runs past the end of a file cut short */
    path = write_tmp("bad.core", f, 0x6000);
    snprintf(msg, sizeof msg, "truncated ELF: segment 3 ends at %zu past end "
             "of file %d", 0x5000 + PS + PS / 2, 0x6000);
    expect_fail(path, msg);

    /* program headers outside the file */
    memcpy(&e, f, sizeof e);
    e.e_phoff = 0x100000;
    memcpy(f, &e, sizeof e);
    path = write_tmp("bad.core", f, CORE_LEN);
    expect_fail(path, "program header table (offset 1048576, 5 entries of 56 "
                      "bytes) is past end of file 32768");

    /* e_phoff + e_phnum * e_phentsize wraps around */
    e.e_phoff = UINT64_MAX - 8;
    memcpy(f, &e, sizeof e);
    path = write_tmp("bad.core", f, CORE_LEN);
    expect_fail(path, "program header table");

    /* a segment whose offset + size overflows */
    build_core(f, want);
    put_phdr(f, 1, PT_LOAD, UINT64_MAX - 10, 3 * PS, 3 * PS);
    path = write_tmp("bad.core", f, CORE_LEN);
    expect_fail(path, "segment 1 (offset 18446744073709551605, size 12288) "
                      "overflows");

    /* more file data than memory */
    build_core(f, want);
    put_phdr(f, 4, PT_LOAD, 0x7001, 100, 50);
    path = write_tmp("bad.core", f, CORE_LEN);
    expect_fail(path, "segment 4 has p_filesz 100 > p_memsz 50");

    /* nothing but a note and a segment with no data */
    build_core(f, want);
    memcpy(&e, f, sizeof e);
    e.e_phnum = 3;
    memcpy(f, &e, sizeof e);
    put_phdr(f, 1, PT_NOTE, 0, 0, 0);
    path = write_tmp("bad.core", f, CORE_LEN);
    expect_fail(path, "ELF core holds no memory");

    /* big-endian */
    build_core(f, want);
    f[EI_DATA] = ELFDATA2MSB;
    path = write_tmp("bad.core", f, CORE_LEN);
    expect_fail(path, "big-endian ELF files are not supported");

    f[EI_DATA] = ELFDATA2LSB;
    f[EI_CLASS] = 7;
    path = write_tmp("bad.core", f, CORE_LEN);
    expect_fail(path, "bad ELF: unknown class 7");

    unlink(path);
    free(want);
    free(f);
}

static void test_bad_zstd(void)
{
    uint8_t junk[300];
    char sample[4096];
    uint8_t *z, *zcore, *f = malloc(CORE_LEN), *want = malloc(CORE_PAGES * PS);
    size_t zlen, zclen;
    const char *path;

    memcpy(junk, "\x28\xb5\x2f\xfd", 4);
    for (size_t i = 4; i < sizeof junk; i++)
        junk[i] = (uint8_t)(i * 37 + 11);
    path = write_tmp("junk.zst", junk, sizeof junk);
    expect_fail(path, "corrupt zstd data");

    snprintf(sample, sizeof sample, "%s/vm-web-1.ram.zst", tu_samples_dir());
    z = read_whole(sample, &zlen);
    CU_ASSERT_PTR_NOT_NULL_FATAL(z);
    path = write_tmp("half.ram.zst", z, zlen / 2);
    expect_fail(path, "truncated zstd data");

    /* the frame header alone */
    path = write_tmp("half.ram.zst", z, 6);
    expect_fail(path, "truncated zstd data");

    /* a compressed core that is itself cut short inside */
    build_core(f, want);
    zcore = zstd_compress(f, 0x6000, 1, &zclen);
    path = write_tmp("short.core.zst", zcore, zclen);
    expect_fail(path, "truncated ELF: segment 3 ends at");

    /* zstd of nothing */
    free(zcore);
    zcore = zstd_compress("", 0, 1, &zclen);
    path = write_tmp("nothing.zst", zcore, zclen);
    expect_fail(path, "empty after zstd decompression");

    unlink(path);
    unlink(tmp_path("junk.zst"));
    unlink(tmp_path("half.ram.zst"));
    unlink(tmp_path("short.core.zst"));
    free(zcore);
    free(z);
    free(want);
    free(f);
}

/* A caller's too-small err buffer is filled, truncated and terminated. */
static void test_short_err_buffer(void)
{
    struct mem_image img;
    char err[8];

    memset(err, 'x', sizeof err);
    CU_ASSERT_EQUAL(mem_image_open(&img, "/nonexistent/file", err, sizeof err),
                    -1);
    CU_ASSERT_EQUAL(strlen(err), sizeof err - 1);
    CU_ASSERT_EQUAL(mem_image_open(&img, "/nonexistent/file", NULL, 0), -1);
}

/* ---- the corpus ------------------------------------------------------------------ */

static void test_corpus_image(void)
{
    const char *dir = tu_corpus_dir();
    struct mem_image img;
    char path[4096];
    uint64_t acc = 0;

    if (!dir) {
        printf("\n  mem_image corpus: skipped: no corpus\n");
        return;
    }
    snprintf(path, sizeof path, "%s/vm-kv-1.ram.zst", dir);
    if (open_ok(&img, path) != 0)
        return;
    CU_ASSERT_EQUAL(img.npages, 32768);
    CU_ASSERT_EQUAL(img.format, MEM_IMAGE_RAW);
    /* touch every page: all of it was decompressed */
    for (size_t i = 0; i < img.npages; i++)
        acc += ((const uint8_t *)mem_image_page(&img, i))[PS - 1];
    CU_ASSERT(acc > 0);
    mem_image_close(&img);
}

/* ---- real process cores ---------------------------------------------------------- */

/* A sanitized child's core holds its shadow memory: gcore writes terabytes
 * (sparse) of it. Those builds skip the real-core tests. */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

/* Real cores of the children here are a few MiB; anything past this is a
 * runaway dump to stop, not a test to run. */
#define CORE_LIMIT ((rlim_t)1 << 30)

#define MARK_PAGES 16

static void fill_marked(uint8_t *p)
{
    for (size_t i = 0; i < MARK_PAGES; i++) {
        tu_random_page(p + i * PS, 0xC0DE0000u + i);
        memcpy(p + i * PS, "DE-MARK", 8);
    }
}

/* Every marked page shows up intact among the core's pages. */
static void check_marked_core(const char *path)
{
    uint8_t *want = mmap(NULL, MARK_PAGES * PS, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned found = 0;
    struct mem_image img;

    CU_ASSERT_FATAL(want != MAP_FAILED);
    fill_marked(want);
    if (open_ok(&img, path) == 0) {
        CU_ASSERT_EQUAL(img.format, MEM_IMAGE_ELF);
        for (size_t i = 0; i < img.npages; i++) {
            const uint8_t *p = mem_image_page(&img, i);

            for (size_t k = 0; k < MARK_PAGES; k++)
                if (memcmp(p, want + k * PS, PS) == 0)
                    found |= 1u << k;
        }
        CU_ASSERT_EQUAL(found, (1u << MARK_PAGES) - 1);
        mem_image_close(&img);
    }
    munmap(want, MARK_PAGES * PS);
}

/* A child with marked pages that waits for its pipe to close. */
static pid_t spawn_marked(int *hold)
{
    int ready[2], wait_fd[2];
    char c;
    pid_t pid;

    if (pipe(ready) != 0 || pipe(wait_fd) != 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        uint8_t *p = mmap(NULL, MARK_PAGES * PS, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        close(ready[0]);
        close(wait_fd[1]);
        if (p == MAP_FAILED)
            _exit(1);
        fill_marked(p);
#ifdef PR_SET_PTRACER
        prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
#endif
        if (write(ready[1], "r", 1) != 1)
            _exit(1);
        while (read(wait_fd[0], &c, 1) > 0)
            ;
        _exit(0);
    }
    close(ready[1]);
    close(wait_fd[0]);
    if (pid < 0 || read(ready[0], &c, 1) != 1) {
        close(ready[0]);
        close(wait_fd[1]);
        if (pid > 0)
            waitpid(pid, NULL, 0);
        return -1;
    }
    close(ready[0]);
    *hold = wait_fd[1];
    return pid;
}

static void test_gcore(void)
{
    char cmd[4096], core[4096];
    struct stat st;
    int hold = -1, rc;
    pid_t pid;

    if (SANITIZED || system("command -v gcore >/dev/null 2>&1") != 0) {
        printf("\n  mem_image gcore: skipped: %s\n",
               SANITIZED ? "sanitizer build" : "no gcore");
        return;
    }
    pid = spawn_marked(&hold);
    CU_ASSERT_FATAL(pid > 0);
    snprintf(core, sizeof core, "%s/gcore.%d", tu_tmpdir(), (int)pid);
    /* ulimit -f counts 512-byte blocks in dash, 1024 in bash: 1-2 GiB */
    snprintf(cmd, sizeof cmd, "ulimit -f %llu && gcore -o %s/gcore %d "
             ">/dev/null 2>&1", (unsigned long long)(CORE_LIMIT / 512),
             tu_tmpdir(), (int)pid);
    rc = system(cmd);
    close(hold);
    waitpid(pid, NULL, 0);
    if (rc != 0 || stat(core, &st) != 0) {
        printf("\n  mem_image gcore: skipped: gcore could not dump a child\n");
        unlink(core);
        return;
    }
    check_marked_core(core);
    unlink(core);
}

static int find_core(char *core, size_t len, const char *dir, pid_t pid)
{
    snprintf(core, len, "%s/core", dir);
    if (access(core, R_OK) == 0)
        return 1;
    snprintf(core, len, "%s/core.%d", dir, (int)pid);
    if (access(core, R_OK) == 0)
        return 1;
    snprintf(core, len, "%s/vgcore.%d", dir, (int)pid);
    return access(core, R_OK) == 0;
}

/* The kernel's own core of a child killed by SIGABRT, where the
 * core_pattern writes a plain file in the child's directory. */
static void test_kernel_core(void)
{
    char dir[4096], core[4096 + 16], pattern[256] = "";
    FILE *f = fopen("/proc/sys/kernel/core_pattern", "r");
    int status = 0;
    pid_t pid;

    if (f) {
        if (!fgets(pattern, sizeof pattern, f))
            pattern[0] = '\0';
        fclose(f);
    }
    if (SANITIZED || strcmp(pattern, "core\n") != 0) {
        printf("\n  mem_image kernel core: skipped: %s\n",
               SANITIZED ? "sanitizer build" : "core_pattern is not \"core\"");
        return;
    }
    snprintf(dir, sizeof dir, "%s/kcore", tu_tmpdir());
    mkdir(dir, 0700);
    pid = fork();
    if (pid == 0) {
        struct rlimit rl = { CORE_LIMIT, CORE_LIMIT };
        uint8_t *p = mmap(NULL, MARK_PAGES * PS, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        if (p == MAP_FAILED || chdir(dir) != 0 ||
            setrlimit(RLIMIT_CORE, &rl) != 0)
            _exit(1);
        fill_marked(p);
        signal(SIGABRT, SIG_DFL);
        raise(SIGABRT);
        _exit(1);
    }
    CU_ASSERT_FATAL(pid > 0);
    waitpid(pid, &status, 0);
    CU_ASSERT(WIFSIGNALED(status));
    /* core_uses_pid adds the pid; under valgrind, valgrind writes its own
     * ELF core instead of the kernel, which is one more writer to read. */
    if (!find_core(core, sizeof core, dir, pid)) {
        printf("\n  mem_image kernel core: skipped: no core written\n");
        rmdir(dir);
        return;
    }
    check_marked_core(core);
    unlink(core);
    rmdir(dir);
}

int register_mem_image_tests(void)
{
    CU_pSuite s = CU_add_suite("mem_image", NULL, NULL);

    if (!s ||
        !CU_add_test(s, "raw sample, zstd", test_raw_sample) ||
        !CU_add_test(s, "raw file, mapped", test_raw_file) ||
        !CU_add_test(s, "raw image starting with an ELF header",
                     test_raw_starting_with_elf) ||
        !CU_add_test(s, "zstd: no content size, two frames",
                     test_zstd_unknown_size_multiframe) ||
        !CU_add_test(s, "ELF core: unaligned, zero tail, filesz 0",
                     test_elf_core) ||
        !CU_add_test(s, "ELF core, zstd", test_elf_core_zstd) ||
        !CU_add_test(s, "ELF32 core", test_elf32_core) ||
        !CU_add_test(s, "ELF extended phnum", test_elf_extended_phnum) ||
        !CU_add_test(s, "xl dump-core, .xen_pfn", test_xen_pfn) ||
        !CU_add_test(s, "xl dump-core, .xen_p2m", test_xen_p2m) ||
        !CU_add_test(s, "bad files", test_bad_files) ||
        !CU_add_test(s, "bad ELF", test_bad_elf) ||
        !CU_add_test(s, "bad zstd", test_bad_zstd) ||
        !CU_add_test(s, "short err buffer", test_short_err_buffer) ||
        !CU_add_test(s, "corpus vm-kv-1", test_corpus_image) ||
        !CU_add_test(s, "gcore of a child", test_gcore) ||
        !CU_add_test(s, "kernel core of a child", test_kernel_core))
        return (int)CU_get_error();
    return CUE_SUCCESS;
}

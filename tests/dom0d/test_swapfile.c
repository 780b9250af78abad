/*
 * test_swapfile.c - round trips, reuse, stale slots, corruption and
 * truncation detection, superblock checks, adoption.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <CUnit/CUnit.h>

#include "swapfile.h"
#include "tests.h"

static void fill(uint8_t *p, size_t len, uint64_t id)
{
    uint64_t s = id * 0x9e3779b97f4a7c15u + 3;

    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(td_rand(&s) >> 56);
}

static struct swapfile *open_new(const char *name, uint64_t max, char *path,
                                 size_t n)
{
    char err[512];
    struct swapfile *sw;

    td_path(path, n, name);
    unlink(path);
    sw = swapfile_open(path, max, err, sizeof err);
    if (!sw)
        fprintf(stderr, "\n  swapfile_open: %s\n", err);
    return sw;
}

static void test_roundtrip(void)
{
    static const size_t sizes[] = { 1, 2, 100, 224, 225, 1000, 2048, 4095,
                                    4096 };
    enum { NS = sizeof sizes / sizeof sizes[0] };
    char path[512];
    struct swapfile *sw = open_new("rt.swap", 1 << 20, path, sizeof path);
    uint64_t slot[NS];
    uint8_t data[4096], buf[4096];
    struct swapfile_stats ss;
    struct stat st;
    size_t len;

    CU_ASSERT_PTR_NOT_NULL_FATAL(sw);
    CU_ASSERT_EQUAL(stat(path, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
    CU_ASSERT_STRING_EQUAL(swapfile_path(sw), path);
    for (unsigned i = 0; i < NS; i++) {
        fill(data, sizes[i], i);
        CU_ASSERT_EQUAL(swapfile_write(sw, data, sizes[i], &slot[i]), 0);
    }
    for (unsigned i = 0; i < NS; i++) {
        fill(data, sizes[i], i);
        memset(buf, 0xee, sizeof buf);
        CU_ASSERT_EQUAL(swapfile_read(sw, slot[i], buf, sizeof buf, &len), 0);
        CU_ASSERT_EQUAL(len, sizes[i]);
        CU_ASSERT(memcmp(buf, data, sizes[i]) == 0);
    }
    /* a record takes header + payload rounded up to 256-byte blocks */
    swapfile_stats(sw, &ss);
    CU_ASSERT_EQUAL(ss.records, NS);
    CU_ASSERT_EQUAL(ss.used_bytes, (uint64_t)256 * (1 + 1 + 1 + 1 + 2 + 5 +
                                                    9 + 17 + 17));
    /* bad arguments */
    CU_ASSERT_EQUAL(swapfile_write(sw, data, 0, &slot[0]), -EINVAL);
    CU_ASSERT_EQUAL(swapfile_write(sw, data, 4097, &slot[0]), -EINVAL);
    CU_ASSERT_EQUAL(swapfile_read(sw, slot[5], buf, 10, &len), -ENOBUFS);
    CU_ASSERT_EQUAL(swapfile_read(sw, SWAP_SLOT_NONE, buf, 10, &len),
                    -EINVAL);
    CU_ASSERT_EQUAL(swapfile_read(sw, 1u << 30, buf, 10, &len), -EINVAL);
    CU_ASSERT_EQUAL(swapfile_read(sw, slot[1] + 1, buf, sizeof buf, &len),
                    -ESTALE);
    CU_ASSERT_EQUAL(swapfile_close(sw), 0);
    CU_ASSERT_EQUAL(swapfile_close(NULL), 0);
}

static void test_free_reuse(void)
{
    char path[512];
    /* room for exactly 16 one-block records */
    struct swapfile *sw = open_new("reuse.swap", SWAP_SUPER_SIZE + 16 * 256,
                                   path, sizeof path);
    uint8_t data[200], big[300], buf[4096];
    uint64_t a, b, s[17];
    size_t len;
    int i;

    CU_ASSERT_PTR_NULL(sw);     /* below SWAP_MIN_BYTES */
    sw = open_new("reuse.swap", SWAP_MIN_BYTES, path, sizeof path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sw);

    fill(data, sizeof data, 1);
    CU_ASSERT_EQUAL(swapfile_write(sw, data, sizeof data, &a), 0);
    CU_ASSERT_EQUAL(swapfile_free(sw, a), 0);
    CU_ASSERT_EQUAL(swapfile_free(sw, a), -ESTALE);
    CU_ASSERT_EQUAL(swapfile_read(sw, a, buf, sizeof buf, &len), -ESTALE);

    /* fill it: 17 blocks of data area, one block per record */
    for (i = 0; i < 17; i++) {
        fill(data, sizeof data, (uint64_t)i + 10);
        if (swapfile_write(sw, data, sizeof data, &s[i]) != 0)
            break;
    }
    CU_ASSERT_EQUAL(i, 17);
    CU_ASSERT_EQUAL(swapfile_write(sw, data, sizeof data, &b), -ENOSPC);
    /* `a` was freed and its block reused: its id stays stale */
    CU_ASSERT_EQUAL(swapfile_read(sw, a, buf, sizeof buf, &len), -ESTALE);

    /* a run of 2 blocks does not fit in two separate free blocks */
    CU_ASSERT_EQUAL(swapfile_free(sw, s[3]), 0);
    CU_ASSERT_EQUAL(swapfile_free(sw, s[5]), 0);
    fill(big, sizeof big, 77);
    CU_ASSERT_EQUAL(swapfile_write(sw, big, sizeof big, &b), -ENOSPC);
    CU_ASSERT_EQUAL(swapfile_free(sw, s[4]), 0);
    CU_ASSERT_EQUAL(swapfile_write(sw, big, sizeof big, &b), 0);
    CU_ASSERT_EQUAL(swapfile_read(sw, b, buf, sizeof buf, &len), 0);
    CU_ASSERT_EQUAL(len, sizeof big);
    CU_ASSERT(memcmp(buf, big, sizeof big) == 0);
    swapfile_close(sw);
}

/* Damage the file behind the swapfile's back. */
static void poke(const char *path, off_t off, uint8_t xor)
{
    int fd = open(path, O_RDWR);
    uint8_t c;

    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(pread(fd, &c, 1, off), 1);
    c ^= xor;
    CU_ASSERT_EQUAL(pwrite(fd, &c, 1, off), 1);
    close(fd);
}

static void test_corruption(void)
{
    char path[512];
    struct swapfile *sw = open_new("bad.swap", 1 << 20, path, sizeof path);
    uint8_t data[1000], buf[4096];
    uint64_t s[4];
    size_t len;

    CU_ASSERT_PTR_NOT_NULL_FATAL(sw);
    for (int i = 0; i < 4; i++) {
        fill(data, sizeof data, (uint64_t)i);
        CU_ASSERT_EQUAL(swapfile_write(sw, data, sizeof data, &s[i]), 0);
    }
    /* records are 1032 B -> 5 blocks: record i at 4096 + i * 1280 */
    poke(path, 4096 + 0 * 1280 + 32 + 500, 0x01);      /* payload bit */
    CU_ASSERT_EQUAL(swapfile_read(sw, s[0], buf, sizeof buf, &len),
                    -EBADMSG);
    poke(path, 4096 + 1 * 1280 + 4, 0x01);             /* length field */
    CU_ASSERT_EQUAL(swapfile_read(sw, s[1], buf, sizeof buf, &len),
                    -EBADMSG);
    poke(path, 4096 + 2 * 1280 + 0, 0xff);             /* magic */
    CU_ASSERT_EQUAL(swapfile_read(sw, s[2], buf, sizeof buf, &len),
                    -EBADMSG);
    CU_ASSERT_STRING_EQUAL(swapfile_strerror(-EBADMSG),
                           "corrupt swap record (bad header or checksum)");
    /* the intact one still reads */
    fill(data, sizeof data, 3);
    CU_ASSERT_EQUAL(swapfile_read(sw, s[3], buf, sizeof buf, &len), 0);
    CU_ASSERT(memcmp(buf, data, sizeof data) == 0);

    /* truncate in the middle of the last record, then before it */
    CU_ASSERT_EQUAL(truncate(path, 4096 + 3 * 1280 + 600), 0);
    CU_ASSERT_EQUAL(swapfile_read(sw, s[3], buf, sizeof buf, &len),
                    -ENODATA);
    CU_ASSERT_EQUAL(truncate(path, 4096 + 3 * 1280 + 10), 0);
    CU_ASSERT_EQUAL(swapfile_read(sw, s[3], buf, sizeof buf, &len),
                    -ENODATA);
    CU_ASSERT_EQUAL(truncate(path, 4096), 0);
    CU_ASSERT_EQUAL(swapfile_read(sw, s[3], buf, sizeof buf, &len),
                    -ENODATA);
    {
        struct swapfile_stats ss;

        swapfile_stats(sw, &ss);
        CU_ASSERT_EQUAL(ss.read_errors, 6);
    }
    swapfile_close(sw);
}

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static void test_superblock(void)
{
    char path[512], err[512];
    struct swapfile *sw, *sw2;
    uint8_t junk[8192], sb[4096];
    struct stat st;
    int fd;

    /* an unrelated file is never taken over */
    td_path(path, sizeof path, "notswap");
    memset(junk, 'x', sizeof junk);
    write_file(path, junk, sizeof junk);
    sw = swapfile_open(path, 1 << 20, err, sizeof err);
    CU_ASSERT_PTR_NULL(sw);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "bad magic"));
    CU_ASSERT_EQUAL(stat(path, &st), 0);
    CU_ASSERT_EQUAL(st.st_size, sizeof junk);
    write_file(path, junk, 100);                /* too short */
    CU_ASSERT_PTR_NULL(swapfile_open(path, 1 << 20, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "bad magic"));

    /* a newer version, with a valid checksum */
    sw = open_new("ver.swap", 1 << 20, path, sizeof path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sw);
    /* the file is locked while open */
    CU_ASSERT_PTR_NULL(swapfile_open(path, 1 << 20, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "in use"));
    swapfile_close(sw);
    fd = open(path, O_RDWR);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(pread(fd, sb, sizeof sb, 0), (ssize_t)sizeof sb);
    sb[8] = 2;
    {
        uint64_t c = XXH3_64bits(sb, 56);

        for (int i = 0; i < 8; i++)
            sb[56 + i] = (uint8_t)(c >> (8 * i));
    }
    CU_ASSERT_EQUAL(pwrite(fd, sb, sizeof sb, 0), (ssize_t)sizeof sb);
    CU_ASSERT_PTR_NULL(swapfile_open(path, 1 << 20, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "version 2"));
    /* a damaged superblock */
    sb[8] = 1;
    CU_ASSERT_EQUAL(pwrite(fd, sb, sizeof sb, 0), (ssize_t)sizeof sb);
    CU_ASSERT_PTR_NULL(swapfile_open(path, 1 << 20, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "corrupt"));
    close(fd);

    /* directories and symlinks are refused */
    CU_ASSERT_PTR_NULL(swapfile_open(td_tmpdir(), 1 << 20, err, sizeof err));
    td_path(path, sizeof path, "link.swap");
    CU_ASSERT_EQUAL(symlink("notswap", path), 0);
    CU_ASSERT_PTR_NULL(swapfile_open(path, 1 << 20, err, sizeof err));

    /* reopening a valid swap file starts it empty, and fixes its mode */
    sw = open_new("reopen.swap", 1 << 20, path, sizeof path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sw);
    CU_ASSERT_EQUAL(swapfile_write(sw, junk, 3000, &(uint64_t){0}), 0);
    swapfile_close(sw);
    CU_ASSERT_EQUAL(chmod(path, 0644), 0);
    sw2 = swapfile_open(path, 1 << 20, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sw2);
    {
        struct swapfile_stats ss;

        swapfile_stats(sw2, &ss);
        CU_ASSERT_EQUAL(ss.records, 0);
    }
    CU_ASSERT_EQUAL(stat(path, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
    CU_ASSERT_EQUAL(st.st_size, 4096);
    swapfile_close(sw2);
}

struct adopted {
    unsigned n;
    uint64_t slot[16];
    uint64_t tag[16];
    size_t len[16];
};

static void on_adopt(void *ctx, uint64_t slot, uint64_t tag, size_t len)
{
    struct adopted *a = ctx;

    if (a->n < 16) {
        a->slot[a->n] = slot;
        a->tag[a->n] = tag;
        a->len[a->n] = len;
    }
    a->n++;
}

static void copy_file(const char *from, const char *to)
{
    static uint8_t buf[1 << 16];
    int in = open(from, O_RDONLY), out;
    ssize_t r;

    CU_ASSERT_FATAL(in >= 0);
    out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CU_ASSERT_FATAL(out >= 0);
    while ((r = read(in, buf, sizeof buf)) > 0)
        CU_ASSERT_EQUAL(write(out, buf, (size_t)r), r);
    close(in);
    close(out);
}

static void test_adopt(void)
{
    char path[512], copy[512], err[512];
    struct swapfile *sw = open_new("adopt.swap", 1 << 20, path, sizeof path);
    uint8_t data[4096], buf[4096];
    uint64_t s[6], again;
    struct adopted a;
    bool clean = true;
    size_t len;

    CU_ASSERT_PTR_NOT_NULL_FATAL(sw);
    for (int i = 0; i < 6; i++) {
        fill(data, 500u * (unsigned)i + 1, (uint64_t)i);
        CU_ASSERT_EQUAL(swapfile_write_tag(sw, 0x1000 + (uint64_t)i, data,
                                           500u * (unsigned)i + 1, &s[i]),
                        0);
    }
    CU_ASSERT_EQUAL(swapfile_free(sw, s[2]), 0);
    /* crash while open: the copy is dirty */
    td_path(copy, sizeof copy, "adopt-crash.swap");
    copy_file(path, copy);
    CU_ASSERT_EQUAL(swapfile_close(sw), 0);

    memset(&a, 0, sizeof a);
    sw = swapfile_adopt(copy, 1 << 20, on_adopt, &a, &clean, err,
                        sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sw);
    CU_ASSERT(!clean);
    CU_ASSERT_EQUAL(a.n, 5);
    swapfile_close(sw);

    memset(&a, 0, sizeof a);
    sw = swapfile_adopt(path, 1 << 20, on_adopt, &a, &clean, err,
                        sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sw);
    CU_ASSERT(clean);
    CU_ASSERT_EQUAL_FATAL(a.n, 5);
    for (unsigned k = 0, i = 0; k < a.n; k++, i++) {
        if (i == 2)
            i++;            /* freed before the restart */
        CU_ASSERT_EQUAL(a.slot[k], s[i]);
        CU_ASSERT_EQUAL(a.tag[k], 0x1000 + i);
        CU_ASSERT_EQUAL(a.len[k], 500u * i + 1);
        fill(data, 500u * i + 1, i);
        CU_ASSERT_EQUAL(swapfile_read(sw, a.slot[k], buf, sizeof buf, &len),
                        0);
        CU_ASSERT(len == 500u * i + 1 && memcmp(buf, data, len) == 0);
    }
    /* adopted blocks are in use; new records get new generations */
    CU_ASSERT_EQUAL(swapfile_write(sw, data, 100, &again), 0);
    for (int i = 0; i < 6; i++)
        CU_ASSERT_NOT_EQUAL(again, s[i]);
    CU_ASSERT_EQUAL(swapfile_read(sw, s[1], buf, sizeof buf, &len), 0);
    swapfile_close(sw);

    /* nothing to adopt from a file that is not there */
    td_path(copy, sizeof copy, "absent.swap");
    CU_ASSERT_PTR_NULL(swapfile_adopt(copy, 1 << 20, NULL, NULL, NULL, err,
                                      sizeof err));
}

int register_swapfile_tests(void)
{
    CU_pSuite s = CU_add_suite("swapfile", NULL, NULL);

    if (!s ||
        !CU_add_test(s, "write/read round trip", test_roundtrip) ||
        !CU_add_test(s, "free, reuse, stale slots, full", test_free_reuse) ||
        !CU_add_test(s, "corruption and truncation detected",
                     test_corruption) ||
        !CU_add_test(s, "superblock checks", test_superblock) ||
        !CU_add_test(s, "adopt after restart", test_adopt))
        return CU_get_error();
    return CUE_SUCCESS;
}

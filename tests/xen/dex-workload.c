/*
 * dex-workload IMAGE [HOT] - the memory workload inside the Xen test
 * guests (tests/xen/check-xen.sh). Built static: the guest is a busybox
 * initramfs.
 *
 * Loads IMAGE (a raw slice of a real VM's memory, page i = bytes 4096*i..)
 * into anonymous memory and keeps a 64-bit checksum of every page. Then,
 * once a second:
 *   - rewrites its HOT pages (the last HOT pages of the buffer; default
 *     64) with copies of other pages of the image, and updates their
 *     checksums: a working set that keeps being written while the rest of
 *     the memory goes cold for de-dom0d to share, patch and compress;
 *   - reads its command from xenstore, dex-test/cmd under its own domain
 *     path (dom0 writes it; the guest has read access), "verify N" or
 *     "exit N": a new N checks every page against its checksum and prints
 *         DEXW VERIFY round=N pages=P bad=B ms=T
 *     (B pages whose contents differ; each read of a reclaimed page is a
 *     fault that dom0's daemon serves), "exit" then prints DEXW EXIT and
 *     returns.
 * Without xenstore access it verifies every 60 s and never exits.
 *
 * The checksums cannot prove a byte-for-byte comparison, but a wrong page
 * colliding with a 64-bit checksum of its right contents is not a
 * practical outcome; the reference contents are not kept (a second copy
 * would be shared by the very daemon under test).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PG 4096u

static uint8_t *mem;
static uint64_t *sums;
static size_t npages, hot;

static uint64_t page_sum(const uint8_t *p)
{
    const uint64_t *w = (const uint64_t *)p;
    uint64_t h = 0x9e3779b97f4a7c15ull;

    for (size_t i = 0; i < PG / 8; i++) {
        h ^= w[i] + i;
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 29;
    }
    return h;
}

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* xenstore wire protocol over /dev/xen/xenbus: one XS_READ of a path
 * relative to the domain's own /local/domain/<id>. */
struct xsd_msg {
    uint32_t type, req_id, tx_id, len;
};
#define XS_READ 2
#define XS_ERROR 16

static int xb_fd = -1;

static int xs_read_key(const char *path, char *out, size_t outlen)
{
    char buf[4096];
    struct xsd_msg *m = (struct xsd_msg *)buf;
    size_t plen = strlen(path) + 1;
    ssize_t n;
    size_t got = 0;
    static uint32_t req;

    if (xb_fd < 0)
        return -1;
    m->type = XS_READ;
    m->req_id = ++req;
    m->tx_id = 0;
    m->len = (uint32_t)plen;
    memcpy(buf + sizeof *m, path, plen);
    if (write(xb_fd, buf, sizeof *m + plen) != (ssize_t)(sizeof *m + plen))
        return -1;
    /* the reply: header, then len bytes (may come in pieces) */
    while (got < sizeof *m || got < sizeof *m + m->len) {
        n = read(xb_fd, buf + got, sizeof buf - 1 - got);
        if (n <= 0)
            return -1;
        got += (size_t)n;
        if (got >= sizeof buf - 1)
            break;
    }
    if (m->type == XS_ERROR)
        return 1;               /* e.g. ENOENT: no command yet */
    if (m->len >= outlen)
        m->len = (uint32_t)outlen - 1;
    memcpy(out, buf + sizeof *m, m->len);
    out[m->len] = '\0';
    return 0;
}

static unsigned long verify(unsigned long round)
{
    double t0 = now_ms();
    unsigned long bad = 0;

    for (size_t i = 0; i < npages; i++)
        if (page_sum(mem + i * PG) != sums[i]) {
            if (bad < 5)
                printf("DEXW BAD page %zu\n", i);
            bad++;
        }
    printf("DEXW VERIFY round=%lu pages=%zu bad=%lu ms=%.0f\n", round,
           npages, bad, now_ms() - t0);
    fflush(stdout);
    return bad;
}

int main(int argc, char **argv)
{
    unsigned long last = 0, tick = 0, zero = 0;
    struct stat st;
    char cmd[128];
    int fd;

    if (argc < 2) {
        fprintf(stderr, "usage: dex-workload IMAGE [HOT]\n");
        return 2;
    }
    hot = argc > 2 ? strtoul(argv[2], NULL, 10) : 64;
    fd = open(argv[1], O_RDONLY);
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_size < (off_t)(2 * PG)) {
        perror(argv[1]);
        return 1;
    }
    npages = (size_t)st.st_size / PG;
    if (hot >= npages / 2)
        hot = npages / 2;
    mem = mmap(NULL, npages * PG, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    sums = calloc(npages, sizeof *sums);
    if (mem == MAP_FAILED || !sums) {
        perror("memory");
        return 1;
    }
    for (size_t off = 0; off < npages * PG;) {
        ssize_t n = read(fd, mem + off, npages * PG - off);

        if (n <= 0) {
            perror("read");
            return 1;
        }
        off += (size_t)n;
    }
    close(fd);
    /* the image's initramfs copy is not needed any more: free it */
    unlink(argv[1]);
    for (size_t i = 0; i < npages; i++) {
        static const uint8_t zpage[PG];

        sums[i] = page_sum(mem + i * PG);
        zero += memcmp(mem + i * PG, zpage, PG) == 0;
    }
    xb_fd = open("/dev/xen/xenbus", O_RDWR);
    if (xb_fd < 0)
        printf("DEXW no xenstore (%s): verifying every 60 s\n",
               strerror(errno));
    printf("DEXW LOADED pages=%zu zero=%lu hot=%zu image=%s\n", npages, zero,
           hot, argv[1]);
    fflush(stdout);

    for (;;) {
        size_t cold = npages - hot;

        sleep(1);
        tick++;
        /* the working set: copies of pages from the start of the image */
        for (size_t i = 0; i < hot; i++) {
            uint8_t *dst = mem + (cold + i) * PG;
            const uint8_t *src = mem + ((i * 7 + tick) % hot) * PG;

            memcpy(dst, src, PG);
            sums[cold + i] = page_sum(dst);
        }
        if (xb_fd < 0) {
            if (tick % 60 == 0)
                verify(tick / 60);
            continue;
        }
        if (xs_read_key("dex-test/cmd", cmd, sizeof cmd) != 0)
            continue;
        {
            unsigned long n = 0;
            char what[16];

            if (sscanf(cmd, "%15s %lu", what, &n) != 2 || n == last)
                continue;
            last = n;
            verify(n);
            if (strcmp(what, "exit") == 0) {
                printf("DEXW EXIT\n");
                fflush(stdout);
                return 0;
            }
        }
    }
}

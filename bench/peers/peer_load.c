/* peer_load.c - helper of bench/peers/run-peers.sh (not installed).
 *
 *   peer_load ksm IMAGE
 *       mmap anonymous private memory the size of IMAGE (MADV_NOHUGEPAGE),
 *       copy the image in, madvise(MADV_MERGEABLE), print "ready" and wait
 *       for SIGTERM/SIGINT: one process per VM image for Linux KSM.
 *
 *   peer_load distinct OUT IMAGE...
 *       ideal sharing across all the images: one copy of each distinct page
 *       content.  Writes the distinct non-zero pages to OUT and prints
 *       "total_pages=N zero_pages=Z distinct_nonzero=D".
 *
 *   peer_load ksmsaved PID:ADDR:PAGES...
 *       what KSM saves on these regions of these processes, whatever else
 *       ksmd merges: every present page's frame from /proc/PID/pagemap;
 *       the regions are private anonymous memory filled by the loaders, so
 *       two pages on one frame are a KSM merge.  Prints "present=N
 *       distinct=D saved_pages=N-D".
 *
 *   peer_load cpu CMD [ARG...]
 *       run CMD, then print "cpu_s=U+S wall_s=W" (user+system CPU of CMD and
 *       its children) on stderr; exit with CMD's status.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096

static volatile sig_atomic_t stop;
static void on_sig(int s) { (void)s; stop = 1; }

static int read_all(int fd, uint8_t *p, size_t n)
{
    while (n) {
        ssize_t r = read(fd, p, n > (1u << 24) ? (1u << 24) : n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static uint8_t *load(const char *path, size_t *len, int anon)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    uint8_t *m;

    if (fd < 0 || fstat(fd, &st)) {
        fprintf(stderr, "peer_load: %s: %s\n", path, strerror(errno));
        exit(2);
    }
    *len = (size_t)st.st_size / PAGE * PAGE;
    m = mmap(NULL, *len ? *len : PAGE, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        perror("peer_load: mmap");
        exit(2);
    }
    if (anon && madvise(m, *len, MADV_NOHUGEPAGE))
        perror("peer_load: MADV_NOHUGEPAGE");
    if (read_all(fd, m, *len)) {
        fprintf(stderr, "peer_load: reading %s failed\n", path);
        exit(2);
    }
    close(fd);
    return m;
}

static int do_ksm(const char *path)
{
    struct sigaction sa = { .sa_handler = on_sig };
    size_t len;
    uint8_t *m;

    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    m = load(path, &len, 1);
    if (madvise(m, len, MADV_MERGEABLE)) {
        perror("peer_load: MADV_MERGEABLE");
        return 2;
    }
    printf("ready pages=%zu addr=%p\n", len / PAGE, (void *)m);
    fflush(stdout);
    while (!stop)
        pause();
    munmap(m, len);
    return 0;
}

/* 64-bit FNV-1a over 64-bit words, then a final mix: only a bucket key,
 * equality is decided by memcmp. */
static uint64_t page_hash(const uint8_t *p)
{
    uint64_t h = 1469598103934665603ull, w;

    for (int i = 0; i < PAGE; i += 8) {
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 1099511628211ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static int is_zero(const uint8_t *p)
{
    static const uint8_t z[PAGE];
    return !memcmp(p, z, PAGE);
}

static int do_distinct(const char *out, int n, char **paths)
{
    uint8_t **img = calloc((size_t)n, sizeof *img);
    size_t *len = calloc((size_t)n, sizeof *len), total = 0, cap, zero = 0, d = 0;
    const uint8_t **tab;
    FILE *f;

    for (int i = 0; i < n; i++) {
        img[i] = load(paths[i], &len[i], 0);
        total += len[i] / PAGE;
    }
    for (cap = 1024; cap < total * 2; cap <<= 1)
        ;
    tab = calloc(cap, sizeof *tab);
    f = fopen(out, "wb");
    if (!tab || !f) {
        fprintf(stderr, "peer_load: %s: %s\n", out, strerror(errno));
        return 2;
    }
    for (int i = 0; i < n; i++)
        for (size_t pg = 0; pg < len[i] / PAGE; pg++) {
            const uint8_t *p = img[i] + pg * PAGE;
            size_t b;

            if (is_zero(p)) {
                zero++;
                continue;
            }
            for (b = page_hash(p) & (cap - 1); tab[b]; b = (b + 1) & (cap - 1))
                if (!memcmp(tab[b], p, PAGE))
                    break;
            if (tab[b])
                continue;
            tab[b] = p;
            d++;
            if (fwrite(p, PAGE, 1, f) != 1) {
                perror("peer_load: write");
                return 2;
            }
        }
    if (fclose(f)) {
        perror("peer_load: close");
        return 2;
    }
    printf("total_pages=%zu zero_pages=%zu distinct_nonzero=%zu\n", total, zero, d);
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int do_ksmsaved(int n, char **specs)
{
    size_t cap = 0, np = 0, distinct = 0;
    uint64_t *pfn = NULL;

    for (int i = 0; i < n; i++) {
        unsigned long pid, addr, pages;
        char path[64];
        uint64_t *pm;
        int fd;

        if (sscanf(specs[i], "%lu:%lx:%lu", &pid, &addr, &pages) != 3) {
            fprintf(stderr, "peer_load: bad region %s\n", specs[i]);
            return 2;
        }
        snprintf(path, sizeof path, "/proc/%lu/pagemap", pid);
        fd = open(path, O_RDONLY);
        pm = malloc(pages * sizeof *pm);
        if (fd < 0 || !pm) {
            fprintf(stderr, "peer_load: %s: %s\n", path, strerror(errno));
            return 2;
        }
        if (pread(fd, pm, pages * sizeof *pm, (off_t)(addr / PAGE * 8)) !=
            (ssize_t)(pages * sizeof *pm)) {
            fprintf(stderr, "peer_load: reading %s failed\n", path);
            return 2;
        }
        close(fd);
        if (np + pages > cap) {
            cap = (np + pages) * 2;
            pfn = realloc(pfn, cap * sizeof *pfn);
            if (!pfn)
                return 2;
        }
        for (size_t k = 0; k < pages; k++)
            if (pm[k] >> 63)                        /* present */
                pfn[np++] = pm[k] & ((1ull << 55) - 1);
        free(pm);
    }
    qsort(pfn, np, sizeof *pfn, cmp_u64);
    for (size_t k = 0; k < np; k++)
        if (k == 0 || pfn[k] != pfn[k - 1])
            distinct++;
    printf("present=%zu distinct=%zu saved_pages=%zu\n", np, distinct, np - distinct);
    free(pfn);
    return 0;
}

static int do_cpu(char **argv)
{
    struct timespec a, b;
    struct rusage ru;
    int status;
    pid_t pid;

    clock_gettime(CLOCK_MONOTONIC, &a);
    pid = fork();
    if (pid == 0) {
        execvp(argv[0], argv);
        perror("peer_load: exec");
        _exit(127);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid) {
        perror("peer_load: fork/wait");
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    getrusage(RUSAGE_CHILDREN, &ru);
    fprintf(stderr, "cpu_s=%.3f wall_s=%.3f\n",
            ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
            ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6,
            (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 2;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "ksm"))
        return do_ksm(argv[2]);
    if (argc >= 4 && !strcmp(argv[1], "distinct"))
        return do_distinct(argv[2], argc - 3, argv + 3);
    if (argc >= 3 && !strcmp(argv[1], "ksmsaved"))
        return do_ksmsaved(argc - 2, argv + 2);
    if (argc >= 3 && !strcmp(argv[1], "cpu"))
        return do_cpu(argv + 2);
    fprintf(stderr, "usage: peer_load ksm IMAGE | distinct OUT IMAGE... | ksmsaved PID:ADDR:PAGES... | cpu CMD...\n");
    return 2;
}

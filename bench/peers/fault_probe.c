/* fault_probe.c - fault latency seen by the faulting thread, one harness
 * for the plain userfaultfd floor and for the Difference Engine (helper of
 * bench/peers/run-peers.sh, not installed).
 *
 *   fault_probe floor PAGES ROUNDS
 *       The floor: a thread of this process serves MISSING faults of an
 *       anonymous region registered with userfaultfd, with UFFDIO_ZEROPAGE
 *       (then, in a second pass, UFFDIO_COPY of a prepared page).
 *
 *   fault_probe de SOCKET NAME IMAGE MAX_SAMPLES
 *       A guest of de-dom0d (dexc_guest_attach, RAM populated, filled from
 *       the raw IMAGE).  Prints "ready", then waits for SIGUSR1 (the caller
 *       sends it once the daemon has reclaimed what it will), then visits
 *       the pages in a random order and times a read of each page that is
 *       not resident (mincore on the memfd mapping: the daemon took its
 *       frame), up to MAX_SAMPLES.  Each page read is then compared with
 *       the image.  Samples are split by content: "zero" (an all-zero page)
 *       and "nonzero"; which technique served them is set by the daemon's
 *       policy (the caller runs one technique at a time).  After each
 *       DE fault the probe also faults one page of its own floor region
 *       (served with UFFDIO_ZEROPAGE by a thread of this process):
 *       "floor_zeropage", the floor under the same load at the same time.
 *
 * Both modes time the same thing the same way: CLOCK_MONOTONIC around a
 * one-byte read of a page that is not mapped, in a loop of one thread.
 * Output: one JSON object on stdout; per class count, p10/p50/p90/p99/max
 * in microseconds and a histogram (4 buckets per power of two, bucket b
 * covers [2^(b/4), 2^((b+1)/4)) us; "hist" lists [lower_us, count] of the
 * non-empty buckets).  With FAULT_PROBE_RAW=DIR, the sorted samples of each
 * class go to DIR/NAME-CLASS.us (one per line) for plotting.
 * Exit: 0, 1 if a page read back wrong, 2 on a set-up error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "dexc.h"

#define PAGE 4096
#define NBUCKET 160

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* The one timed operation of both modes. */
static volatile uint8_t sink;
static uint64_t timed_touch(const uint8_t *p)
{
    uint64_t t0 = now_ns();
    sink += *(const volatile uint8_t *)p;
    return now_ns() - t0;
}

struct samples {
    const char *name;
    uint64_t *v;
    size_t n, cap;
};

static void add(struct samples *s, uint64_t ns)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 4096;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        if (!s->v) {
            fprintf(stderr, "fault_probe: out of memory\n");
            exit(2);
        }
    }
    s->v[s->n++] = ns;
}

static int cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(const struct samples *s, double p)
{
    size_t i;

    if (!s->n)
        return 0;
    i = (size_t)(p / 100.0 * (double)s->n);
    if (i >= s->n)
        i = s->n - 1;
    return (double)s->v[i] / 1e3;
}

static void emit(const struct samples *s, const char *tag, int first)
{
    unsigned long hist[NBUCKET] = { 0 };
    const char *dir = getenv("FAULT_PROBE_RAW");

    qsort(s->v, s->n, sizeof *s->v, cmp);
    for (size_t i = 0; i < s->n; i++) {
        double us = (double)s->v[i] / 1e3;
        int b = us < 1 ? 0 : (int)floor(4 * log2(us));
        hist[b < 0 ? 0 : b >= NBUCKET ? NBUCKET - 1 : b]++;
    }
    printf("%s\"%s\":{\"count\":%zu,\"p10_us\":%.2f,\"p50_us\":%.2f,"
           "\"p90_us\":%.2f,\"p99_us\":%.2f,\"max_us\":%.2f,\"hist\":[",
           first ? "" : ",", s->name, s->n, pct(s, 10), pct(s, 50),
           pct(s, 90), pct(s, 99), s->n ? (double)s->v[s->n - 1] / 1e3 : 0.0);
    for (int b = 0, k = 0; b < NBUCKET; b++)
        if (hist[b])
            printf("%s[%.3f,%lu]", k++ ? "," : "", b ? pow(2, b / 4.0) : 0.0,
                   hist[b]);
    printf("]}");
    if (dir && s->n) {
        char path[4096];
        FILE *f;

        snprintf(path, sizeof path, "%s/%s-%s.us", dir, tag, s->name);
        f = fopen(path, "w");
        if (f) {
            for (size_t i = 0; i < s->n; i++)
                fprintf(f, "%.3f\n", (double)s->v[i] / 1e3);
            fclose(f);
        }
    }
}

/* ---- floor --------------------------------------------------------------- */

static int uffd, use_copy;
static uint8_t *src;

static void *server(void *arg)
{
    (void)arg;
    for (;;) {
        struct uffd_msg msg;
        struct pollfd pfd = { .fd = uffd, .events = POLLIN };
        ssize_t r;

        if (poll(&pfd, 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            perror("fault_probe: poll");
            exit(2);
        }
        r = read(uffd, &msg, sizeof msg);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (r != sizeof msg || msg.event != UFFD_EVENT_PAGEFAULT)
            continue;
        uint64_t a = msg.arg.pagefault.address & ~(uint64_t)(PAGE - 1);
        if (use_copy) {
            struct uffdio_copy c = { .dst = a, .src = (uint64_t)(uintptr_t)src,
                                     .len = PAGE };
            if (ioctl(uffd, UFFDIO_COPY, &c) && errno != EEXIST) {
                perror("fault_probe: UFFDIO_COPY");
                exit(2);
            }
        } else {
            struct uffdio_zeropage z = { .range = { .start = a, .len = PAGE } };
            if (ioctl(uffd, UFFDIO_ZEROPAGE, &z) && errno != EEXIST) {
                perror("fault_probe: UFFDIO_ZEROPAGE");
                exit(2);
            }
        }
    }
    return NULL;
}

/* A region of `len` bytes whose MISSING faults a thread of this process
 * serves (UFFDIO_ZEROPAGE, or UFFDIO_COPY once use_copy is set). */
static uint8_t *floor_region(size_t len)
{
    pthread_t th;
    uint8_t *m;

    uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (uffd < 0) {
        perror("fault_probe: userfaultfd");
        return NULL;
    }
    struct uffdio_api api = { .api = UFFD_API };
    if (ioctl(uffd, UFFDIO_API, &api)) {
        perror("fault_probe: UFFDIO_API");
        return NULL;
    }
    m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    src = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED || src == MAP_FAILED) {
        perror("fault_probe: mmap");
        return NULL;
    }
    memset(src, 0x5a, PAGE);
    madvise(m, len, MADV_NOHUGEPAGE);
    struct uffdio_register reg = {
        .range = { .start = (uint64_t)(uintptr_t)m, .len = len },
        .mode = UFFDIO_REGISTER_MODE_MISSING,
    };
    if (ioctl(uffd, UFFDIO_REGISTER, &reg)) {
        perror("fault_probe: UFFDIO_REGISTER");
        return NULL;
    }
    if (pthread_create(&th, NULL, server, NULL)) {
        fprintf(stderr, "fault_probe: pthread_create failed\n");
        return NULL;
    }
    return m;
}

static int do_floor(size_t pages, int rounds)
{
    size_t len = pages * PAGE;
    struct samples s[2] = { { .name = "zeropage" }, { .name = "copy" } };
    uint8_t *m = floor_region(len);

    if (!m)
        return 2;
    for (use_copy = 0; use_copy < 2; use_copy++)
        for (int r = 0; r < rounds; r++) {
            madvise(m, len, MADV_DONTNEED);
            for (size_t i = 0; i < pages; i++)
                add(&s[use_copy], timed_touch(m + i * PAGE));
        }
    printf("{\"mode\":\"floor\",\"pages\":%zu,\"rounds\":%d,", pages, rounds);
    emit(&s[0], "floor", 1);
    emit(&s[1], "floor", 0);
    printf("}\n");
    return 0;
}

/* ---- Difference Engine guest ---------------------------------------------- */

static int do_de(const char *sock, const char *name, const char *image,
                 size_t max)
{
    struct samples s[3] = { { .name = "zero" }, { .name = "nonzero" },
                            { .name = "floor_zeropage" } };
    static const uint8_t zero[PAGE];
    uint8_t *fl;
    size_t fl_pages = max + 1, fl_next = 0;
    dexc_attachment *att;
    uint8_t *img, *mem;
    size_t len, npages, skipped = 0, wrong = 0, visited = 0;
    struct stat st;
    sigset_t set;
    int fd, r, sig;

    fd = open(image, O_RDONLY);
    if (fd < 0 || fstat(fd, &st)) {
        fprintf(stderr, "fault_probe: %s: %s\n", image, strerror(errno));
        return 2;
    }
    len = (size_t)st.st_size / PAGE * PAGE;
    npages = len / PAGE;
    img = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (img == MAP_FAILED) {
        perror("fault_probe: mmap image");
        return 2;
    }
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    r = dexc_guest_attach(sock, len, name, DEXC_ATTACH_POPULATE, (void **)&mem, &att);
    if (r) {
        fprintf(stderr, "fault_probe: attaching to %s: %s\n", sock, strerror(-r));
        return 2;
    }
    for (size_t i = 0; i < npages; i++)
        memcpy(mem + i * PAGE, img + i * PAGE, PAGE);
    fl = floor_region(fl_pages * PAGE);
    if (!fl)
        return 2;
    printf("ready pages=%zu\n", npages);
    fflush(stdout);
    if (sigwait(&set, &sig))
        return 2;

    /* A random visiting order (xorshift, fixed seed). */
    size_t *order = malloc(npages * sizeof *order);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    if (!order)
        return 2;
    for (size_t i = 0; i < npages; i++)
        order[i] = i;
    for (size_t i = npages - 1; i > 0; i--) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        size_t j = x % (i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (size_t k = 0; k < npages && s[0].n + s[1].n < max; k++) {
        size_t i = order[k];
        uint8_t *p = mem + i * PAGE;
        unsigned char v = 0;

        visited++;
        if (mincore(p, PAGE, &v) == 0 && (v & 1)) {
            skipped++;
            continue;
        }
        uint64_t ns = timed_touch(p);
        add(&s[memcmp(img + i * PAGE, zero, PAGE) ? 1 : 0], ns);
        /* the floor, interleaved: under the same load at the same moment */
        if (fl_next < fl_pages)
            add(&s[2], timed_touch(fl + fl_next++ * PAGE));
        if (memcmp(p, img + i * PAGE, PAGE))
            wrong++;
    }
    printf("{\"mode\":\"de\",\"name\":\"%s\",\"pages\":%zu,\"visited\":%zu,"
           "\"resident_skipped\":%zu,\"wrong_pages\":%zu,", name, npages,
           visited, skipped, wrong);
    emit(&s[0], name, 1);
    emit(&s[1], name, 0);
    emit(&s[2], name, 0);
    printf("}\n");
    fflush(stdout);
    dexc_guest_detach(att);
    return wrong ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "floor"))
        return do_floor(argc > 2 ? strtoul(argv[2], NULL, 0) : 16384,
                        argc > 3 ? atoi(argv[3]) : 5);
    if (argc == 6 && !strcmp(argv[1], "de"))
        return do_de(argv[2], argv[3], argv[4], strtoul(argv[5], NULL, 0));
    fprintf(stderr, "usage: fault_probe floor [PAGES [ROUNDS]]\n"
                    "       fault_probe de SOCKET NAME IMAGE MAX_SAMPLES\n");
    return 2;
}

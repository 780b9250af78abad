/* uffd_floor.c - the floor of a userfaultfd-served page fault on this
 * machine (helper of bench/peers/run-peers.sh, not installed).
 *
 *   uffd_floor [PAGES [ROUNDS]]
 *
 * A thread serves MISSING faults of an anonymous region, registered with
 * userfaultfd, with UFFDIO_ZEROPAGE (then, in a second pass, UFFDIO_COPY of
 * a prepared page); the main thread reads one byte of each page in turn and
 * times each access.  Between rounds the region is emptied with
 * MADV_DONTNEED.  Prints one JSON object: per mode count, p50_us, p99_us.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096

static int uffd, use_copy;
static uint8_t *src;

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

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
            perror("uffd_floor: poll");
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
                perror("uffd_floor: UFFDIO_COPY");
                exit(2);
            }
        } else {
            struct uffdio_zeropage z = { .range = { .start = a, .len = PAGE } };
            if (ioctl(uffd, UFFDIO_ZEROPAGE, &z) && errno != EEXIST) {
                perror("uffd_floor: UFFDIO_ZEROPAGE");
                exit(2);
            }
        }
    }
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    size_t pages = argc > 1 ? strtoul(argv[1], NULL, 0) : 16384;
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    size_t len = pages * PAGE, n = pages * (size_t)rounds;
    uint64_t *lat = malloc(n * sizeof *lat);
    volatile uint8_t sink = 0;
    pthread_t th;
    uint8_t *m;

    uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (uffd < 0) {
        perror("uffd_floor: userfaultfd");
        return 2;
    }
    struct uffdio_api api = { .api = UFFD_API };
    if (ioctl(uffd, UFFDIO_API, &api)) {
        perror("uffd_floor: UFFDIO_API");
        return 2;
    }
    m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    src = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED || src == MAP_FAILED || !lat) {
        perror("uffd_floor: mmap");
        return 2;
    }
    memset(src, 0x5a, PAGE);
    madvise(m, len, MADV_NOHUGEPAGE);
    struct uffdio_register reg = {
        .range = { .start = (uint64_t)(uintptr_t)m, .len = len },
        .mode = UFFDIO_REGISTER_MODE_MISSING,
    };
    if (ioctl(uffd, UFFDIO_REGISTER, &reg)) {
        perror("uffd_floor: UFFDIO_REGISTER");
        return 2;
    }
    if (pthread_create(&th, NULL, server, NULL)) {
        fprintf(stderr, "uffd_floor: pthread_create failed\n");
        return 2;
    }
    printf("{\"pages\":%zu,\"rounds\":%d", pages, rounds);
    for (use_copy = 0; use_copy < 2; use_copy++) {
        size_t k = 0;
        for (int r = 0; r < rounds; r++) {
            madvise(m, len, MADV_DONTNEED);
            for (size_t i = 0; i < pages; i++) {
                uint64_t t0 = now_ns();
                sink += m[i * PAGE];
                lat[k++] = now_ns() - t0;
            }
        }
        qsort(lat, n, sizeof *lat, cmp);
        printf(",\"%s\":{\"count\":%zu,\"p50_us\":%.2f,\"p99_us\":%.2f}",
               use_copy ? "copy" : "zeropage", n, lat[n / 2] / 1e3,
               lat[n * 99 / 100] / 1e3);
    }
    printf("}\n");
    (void)sink;
    return 0;
}

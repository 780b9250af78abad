/*
 * test_dexc.c - libdexc against real userfaultfd guests (no mocks): each
 * test forks guests that attach over a real socket, and the test, acting
 * as the daemon, drives their memory through the primitives and checks
 * what the guest reads and what the kernel holds (memfd holes).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <linux/userfaultfd.h>

#include <CUnit/Basic.h>

#include "harness.h"
#include "proto.h"

static dexc_listener *lsn;
static const char *lsn_path;
static int fds_before;

static int suite_init(void)
{
    lsn = th_listen(&lsn_path);
    return lsn ? 0 : -1;
}

static int suite_clean(void)
{
    th_unlisten(lsn);
    return 0;
}

static struct tguest *spawn(size_t npages, unsigned attach_flags,
                            unsigned open_flags)
{
    struct tguest *t = th_spawn(lsn, lsn_path, npages, attach_flags,
                                open_flags, "test-guest");

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    return t;
}

/* A populated guest with pages [0, n) filled from seed. */
static struct tguest *spawn_filled(size_t npages, uint64_t seed,
                                   unsigned open_flags)
{
    struct tguest *t = spawn(npages, DEXC_ATTACH_POPULATE, open_flags);

    CU_ASSERT_EQUAL_FATAL(th_call(t, C_FILL, 0, npages, seed, 0), 0);
    th_expect_fill(t, 0, npages, seed, false);
    return t;
}

static bool guest_page_ok(struct tguest *t, uint64_t gfn, uint64_t count)
{
    return th_call(t, C_HASH, gfn, count, 0, 0) ==
           (int64_t)th_expect_hash(t, gfn, count);
}

static uint32_t state_of(struct tguest *t, uint64_t gfn, uint64_t *handle)
{
    struct dexc_page p = { .gfn = gfn };

    CU_ASSERT_EQUAL(dexc_query(t->g, &p, 1), 1);
    if (handle)
        *handle = p.handle;
    return p.state;
}

static uint64_t freeze1(struct tguest *t, uint64_t gfn)
{
    struct dexc_page p = { .gfn = gfn };

    CU_ASSERT_EQUAL(dexc_freeze(t->g, &p, 1), 1);
    CU_ASSERT_EQUAL(p.rc, 0);
    return p.handle;
}

static int reclaim1(struct tguest *t, uint64_t gfn, uint64_t handle)
{
    struct dexc_page p = { .gfn = gfn, .handle = handle };

    dexc_reclaim(t->g, &p, 1);
    return p.rc;
}

/* Frozen copy of a page into expect, as a daemon reads before reclaim. */
static void snapshot(struct tguest *t, uint64_t gfn)
{
    const void *ptr;
    int rc;
    dexc_mapping *m;

    CU_ASSERT_EQUAL(dexc_map_ro(t->g, &gfn, 1, &ptr, &rc, &m), 1);
    if (rc == 0)
        memcpy(t->expect + gfn * TPAGE, ptr, TPAGE);
    dexc_unmap(t->g, m);
}

static void begin_fd_check(void)
{
    fds_before = th_count_fds();
}

static void end_fd_check(void)
{
    CU_ASSERT_EQUAL(th_count_fds(), fds_before);
}

/* ------------------------------------------------------------------ */

static void test_attach_and_map_ro(void)
{
    enum { N = 64 };
    struct tguest *t;
    struct dexc_info info;
    uint64_t gfns[N];
    const void *ptrs[N];
    int rc[N];
    dexc_mapping *m;

    begin_fd_check();
    t = spawn_filled(N, 1, 0);
    CU_ASSERT_EQUAL(dexc_get_info(t->g, &info), 0);
    CU_ASSERT_EQUAL(info.nr_pages, N);
    CU_ASSERT_EQUAL(info.pid, t->pid);
    CU_ASSERT_STRING_EQUAL(info.name, "test-guest");
    CU_ASSERT_STRING_EQUAL(info.backend, "uffd");
    CU_ASSERT_EQUAL(info.normal, N);
    CU_ASSERT_EQUAL(info.absent, 0);
    CU_ASSERT_FALSE(info.flags & DEXC_INFO_USER_MODE_ONLY);

    for (int i = 0; i < N; i++)
        gfns[i] = (uint64_t)(N - 1 - i);
    CU_ASSERT_EQUAL(dexc_map_ro(t->g, gfns, N, ptrs, rc, &m), N);
    for (int i = 0; i < N; i++) {
        CU_ASSERT_EQUAL(rc[i], 0);
        CU_ASSERT(memcmp(ptrs[i], t->expect + gfns[i] * TPAGE, TPAGE) == 0);
    }
    dexc_unmap(t->g, m);

    /* Out of range: per entry, nothing else disturbed. */
    gfns[0] = N;
    gfns[1] = 3;
    CU_ASSERT_EQUAL(dexc_map_ro(t->g, gfns, 2, ptrs, rc, &m), 1);
    CU_ASSERT_EQUAL(rc[0], -EINVAL);
    CU_ASSERT_PTR_NULL(ptrs[0]);
    CU_ASSERT_EQUAL(rc[1], 0);
    dexc_unmap(t->g, m);

    CU_ASSERT(guest_page_ok(t, 0, N));
    CU_ASSERT_EQUAL(t->nev, 0);
    th_destroy(t);
    end_fd_check();
}

static void test_freeze_reclaim_fault_restore(void)
{
    enum { N = 64 };
    struct tguest *t = spawn_filled(N, 2, 0);
    struct dexc_page pages[N];
    struct dexc_info info;
    struct stat st0, st1;
    int memfd = th_open_memfd(t);
    const void *ptr;
    int rc;
    dexc_mapping *m;
    uint64_t gfn;

    CU_ASSERT_FATAL(memfd >= 0);
    CU_ASSERT_EQUAL(fstat(memfd, &st0), 0);

    th_pages(pages, 0, N);
    CU_ASSERT_EQUAL(dexc_freeze(t->g, pages, N), N);
    for (int i = 0; i < N; i++) {
        CU_ASSERT_EQUAL(pages[i].rc, 0);
        CU_ASSERT_NOT_EQUAL(pages[i].handle, 0);
        if (i)
            CU_ASSERT_NOT_EQUAL(pages[i].handle, pages[i - 1].handle);
    }
    /* Reclaim a run of ten and a single page, in one batch. */
    {
        struct dexc_page r[11];

        for (int i = 0; i < 10; i++)
            r[i] = (struct dexc_page){ .gfn = 10 + (uint64_t)i,
                                       .handle = pages[10 + i].handle };
        r[10] = (struct dexc_page){ .gfn = 30, .handle = pages[30].handle };
        CU_ASSERT_EQUAL(dexc_reclaim(t->g, r, 11), 11);
        for (int i = 0; i < 11; i++)
            CU_ASSERT_EQUAL(r[i].rc, 0);
    }
    /* The kernel really freed the frames. */
    for (uint64_t g = 0; g < N; g++)
        CU_ASSERT_EQUAL(th_memfd_has_page(memfd, g),
                        !((g >= 10 && g < 20) || g == 30));
    CU_ASSERT_EQUAL(fstat(memfd, &st1), 0);
    CU_ASSERT_EQUAL(st0.st_blocks - st1.st_blocks, 11 * (TPAGE / 512));

    CU_ASSERT_EQUAL(state_of(t, 12, NULL), DEXC_STATE_RECLAIMED);
    CU_ASSERT_EQUAL(state_of(t, 30, NULL), DEXC_STATE_RECLAIMED);
    CU_ASSERT_EQUAL(state_of(t, 31, NULL), DEXC_STATE_FROZEN);
    CU_ASSERT_EQUAL(dexc_get_info(t->g, &info), 0);
    CU_ASSERT_EQUAL(info.reclaimed, 11);
    CU_ASSERT_EQUAL(info.frozen, N - 11);

    /* Reading a reclaimed page would re-create it: refused. */
    gfn = 15;
    CU_ASSERT_EQUAL(dexc_map_ro(t->g, &gfn, 1, &ptr, &rc, &m), 0);
    CU_ASSERT_EQUAL(rc, -ENODATA);
    dexc_unmap(t->g, m);
    /* And freezing or reclaiming it again makes no sense. */
    CU_ASSERT_EQUAL(reclaim1(t, 15, pages[15].handle), -ENODATA);
    {
        struct dexc_page p = { .gfn = 15 };

        CU_ASSERT_EQUAL(dexc_freeze(t->g, &p, 1), 0);
        CU_ASSERT_EQUAL(p.rc, -ENODATA);
    }

    /* The guest reads everything: one read fault per reclaimed page, each
     * restored from the test's copy, and every byte is right. */
    CU_ASSERT(guest_page_ok(t, 0, N));
    CU_ASSERT_EQUAL(t->restore_errors, 0);
    CU_ASSERT_EQUAL(t->nev, 11);
    for (size_t i = 0; i < t->nev; i++) {
        CU_ASSERT_EQUAL(t->evlog[i].type, DEXC_EV_FAULT);
        CU_ASSERT_EQUAL(t->evlog[i].flags, 0);
        CU_ASSERT(t->evlog[i].tid > 0);
    }
    CU_ASSERT_EQUAL(th_count_events(t, DEXC_EV_FAULT, 10), 1);
    CU_ASSERT_EQUAL(th_count_events(t, DEXC_EV_FAULT, 30), 1);
    CU_ASSERT_EQUAL(state_of(t, 15, NULL), DEXC_STATE_NORMAL);
    CU_ASSERT(th_memfd_has_page(memfd, 15));
    CU_ASSERT_EQUAL(dexc_get_info(t->g, &info), 0);
    CU_ASSERT_EQUAL(info.reclaimed, 0);
    CU_ASSERT_EQUAL(info.faults, 11);

    close(memfd);
    th_destroy(t);
}

/* The race the design turns on: the guest writes a frozen page after the
 * daemon froze it, and the daemon reclaims before reading any event. */
static void test_write_frozen_then_reclaim(void)
{
    struct tguest *t = spawn_filled(16, 3, 0);
    uint64_t h = freeze1(t, 5), h2;
    int64_t v;
    int memfd = th_open_memfd(t);

    CU_ASSERT_FATAL(memfd >= 0);
    snapshot(t, 5);
    CU_ASSERT_EQUAL(th_send(t, C_WRITE_BYTE, 5, 0, 0xab, 100), 0);
    /* The write is now blocked in the kernel, its event pending. */
    CU_ASSERT_FATAL(th_wait_event_fd(t, 5000));
    CU_ASSERT_EQUAL(reclaim1(t, 5, h), -EAGAIN);
    CU_ASSERT(th_memfd_has_page(memfd, 5));
    CU_ASSERT_EQUAL(state_of(t, 5, &h2), DEXC_STATE_NORMAL);
    CU_ASSERT_EQUAL(h2, 0);
    /* The writer was woken by reclaim's drain and finishes. */
    CU_ASSERT_EQUAL(th_wait(t, &v, 5000), 0);
    CU_ASSERT_EQUAL(v, 0);
    t->expect[5 * TPAGE + 100] = 0xab;
    CU_ASSERT(guest_page_ok(t, 5, 1));
    {
        const void *ptr;
        int rc;
        uint64_t gfn = 5;
        dexc_mapping *m;

        CU_ASSERT_EQUAL(dexc_map_ro(t->g, &gfn, 1, &ptr, &rc, &m), 1);
        CU_ASSERT(memcmp(ptr, t->expect + 5 * TPAGE, TPAGE) == 0);
        dexc_unmap(t->g, m);
    }
    /* The thaw was reported, once; no fault. */
    th_serve(t);
    CU_ASSERT_EQUAL(th_count_events(t, DEXC_EV_THAWED, 5), 1);
    CU_ASSERT_EQUAL(th_count_events(t, DEXC_EV_FAULT, 5), 0);
    /* The stale handle stays stale even after a new freeze. */
    CU_ASSERT_NOT_EQUAL(freeze1(t, 5), h);
    CU_ASSERT_EQUAL(reclaim1(t, 5, h), -EAGAIN);

    close(memfd);
    th_destroy(t);
}

/* The other order: reclaimed first, then written. The write faults, the
 * restore brings the old contents and the write lands on them. */
static void test_reclaim_then_write(void)
{
    struct tguest *t = spawn_filled(16, 4, 0);
    uint64_t h = freeze1(t, 7);
    uint8_t bits[16];

    snapshot(t, 7);
    CU_ASSERT_EQUAL(reclaim1(t, 7, h), 0);
    CU_ASSERT_EQUAL(th_call(t, C_WRITE_BYTE, 7, 0, 0x5a, 4000), 0);
    CU_ASSERT_EQUAL(th_count_events(t, DEXC_EV_FAULT, 7), 1);
    CU_ASSERT(t->nev >= 1 && (t->evlog[0].flags & DEXC_EVF_WRITE));
    t->expect[7 * TPAGE + 4000] = 0x5a;
    CU_ASSERT(guest_page_ok(t, 0, 16));
    /* Restored writable for the writer, and recorded as written. */
    CU_ASSERT_EQUAL(dexc_harvest(t->g, 7, 1, bits, 0), 0);
    CU_ASSERT_EQUAL(bits[0], DEXC_AD_ACCESSED | DEXC_AD_DIRTY);
    th_destroy(t);
}

static void test_absent_pages_zero_fill(void)
{
    enum { N = 32 };
    struct tguest *t = spawn(N, 0, 0);
    struct dexc_info info;
    const void *ptr;
    int rc;
    uint64_t gfn = 3;
    dexc_mapping *m;
    uint8_t bits[N];
    int memfd = th_open_memfd(t);

    CU_ASSERT_FATAL(memfd >= 0);
    CU_ASSERT_EQUAL(dexc_get_info(t->g, &info), 0);
    CU_ASSERT_EQUAL(info.absent, N);
    CU_ASSERT_EQUAL(state_of(t, 3, NULL), DEXC_STATE_ABSENT);
    /* An absent page reads as zeros, without creating it. */
    CU_ASSERT_EQUAL(dexc_map_ro(t->g, &gfn, 1, &ptr, &rc, &m), 1);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT(ptr && memcmp(ptr, t->expect, TPAGE) == 0);
    dexc_unmap(t->g, m);
    CU_ASSERT_FALSE(th_memfd_has_page(memfd, 3));
    {
        struct dexc_page p = { .gfn = 3 };

        CU_ASSERT_EQUAL(dexc_freeze(t->g, &p, 1), 0);
        CU_ASSERT_EQUAL(p.rc, -ENODATA);
    }
    /* First touches are served by the library: zeros, no event. */
    CU_ASSERT(guest_page_ok(t, 7, 1));
    CU_ASSERT_EQUAL(th_call(t, C_FILL, 8, 1, 9, 0), 0);
    th_expect_fill(t, 8, 1, 9, false);
    CU_ASSERT(guest_page_ok(t, 8, 1));
    CU_ASSERT_EQUAL(t->nev, 0);
    CU_ASSERT_EQUAL(state_of(t, 7, NULL), DEXC_STATE_NORMAL);
    CU_ASSERT_EQUAL(state_of(t, 8, NULL), DEXC_STATE_NORMAL);
    CU_ASSERT(th_memfd_has_page(memfd, 7));
    CU_ASSERT_EQUAL(dexc_get_info(t->g, &info), 0);
    CU_ASSERT_EQUAL(info.zero_fills, 2);
    CU_ASSERT_EQUAL(info.absent, N - 2);
    /* Their faults are access history: 7 read, 8 written. */
    CU_ASSERT_EQUAL(dexc_harvest(t->g, 0, N, bits, 0), 0);
    CU_ASSERT_EQUAL(bits[7], DEXC_AD_ACCESSED);
    CU_ASSERT_EQUAL(bits[8], DEXC_AD_ACCESSED | DEXC_AD_DIRTY);
    CU_ASSERT_EQUAL(bits[9], 0);
    /* Page 7 came in write-protected: its first write is seen too. */
    CU_ASSERT_EQUAL(th_call(t, C_WRITE_BYTE, 7, 0, 1, 0), 0);
    CU_ASSERT_EQUAL(dexc_harvest(t->g, 7, 1, bits, 0), 0);
    CU_ASSERT_EQUAL(bits[0], DEXC_AD_ACCESSED | DEXC_AD_DIRTY);
    close(memfd);
    th_destroy(t);
}

static void test_guest_gone(void)
{
    struct tguest *t;
    struct dexc_page p = { .gfn = 1 };
    struct dexc_event ev;
    struct dexc_info info;
    uint64_t h;

    begin_fd_check();
    t = spawn_filled(16, 5, 0);
    h = freeze1(t, 2);
    CU_ASSERT_EQUAL(reclaim1(t, 2, h), 0);
    CU_ASSERT_EQUAL(th_send(t, C_EXIT, 0, 0, 0, 0), 0);
    CU_ASSERT_FATAL(th_wait_event_fd(t, 5000));
    CU_ASSERT_EQUAL(dexc_next_event(t->g, &ev), 1);
    CU_ASSERT_EQUAL(ev.type, DEXC_EV_GONE);
    CU_ASSERT_EQUAL(dexc_next_event(t->g, &ev), 1);
    CU_ASSERT_EQUAL(ev.type, DEXC_EV_GONE);
    CU_ASSERT_EQUAL(dexc_freeze(t->g, &p, 1), -ESRCH);
    CU_ASSERT_EQUAL(dexc_reclaim(t->g, &p, 1), -ESRCH);
    CU_ASSERT_EQUAL(dexc_get_info(t->g, &info), 0);
    CU_ASSERT(info.flags & DEXC_INFO_GONE);
    CU_ASSERT_EQUAL(dexc_close(t->g), 0);
    t->g = NULL;
    th_destroy(t);
    end_fd_check();
}

/* ------------------------------------------------------------------ */
/* Malformed attach messages                                           */

static int raw_connect(void)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

    strcpy(sa.sun_path, lsn_path);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
        close(fd);
        return -1;
    }
    return fd;
}

static int raw_send(int fd, const void *msg, size_t len, const int *fds,
                    size_t nfds)
{
    union {
        char raw[CMSG_SPACE(8 * sizeof(int))];
        struct cmsghdr align;
    } cbuf;
    struct iovec iov = { .iov_base = (void *)msg, .iov_len = len };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

    if (nfds) {
        struct cmsghdr *c;

        mh.msg_control = cbuf.raw;
        mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
        c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
    }
    return sendmsg(fd, &mh, 0) == (ssize_t)len ? 0 : -1;
}

/* Polls dexc_accept until it returns something other than 0, for at most
 * tries * 50 ms. */
static int accept_result(dexc_guest **g, int tries)
{
    for (int i = 0; i < tries; i++) {
        struct pollfd pf = { .fd = dexc_listener_fd(lsn), .events = POLLIN };
        int r;

        poll(&pf, 1, 50);
        r = dexc_accept(lsn, 0, g);
        if (r)
            return r;
    }
    return 0;
}

static int32_t reply_status(int fd)
{
    struct dexc_reply r;
    struct pollfd pf = { .fd = fd, .events = POLLIN };

    if (poll(&pf, 1, 2000) != 1 || recv(fd, &r, sizeof r, 0) != sizeof r ||
        r.kind != DEXC_REPLY_ACK)
        return 1;
    return r.status;
}

static struct dexc_hello good_hello(uint64_t base, uint64_t len)
{
    struct dexc_hello h = {
        .magic = DEXC_PROTO_MAGIC, .version = DEXC_PROTO_VERSION,
        .size = sizeof h, .base = base, .length = len,
        .features = UFFD_FEATURE_MISSING_SHMEM |
                    UFFD_FEATURE_WP_HUGETLBFS_SHMEM,
        .page_size = TPAGE, .pid = getpid(), .name = "evil",
    };
    return h;
}

/* One malformed hello: refused with `want`, answered, nothing leaked. */
static void refuse(const char *what, const void *msg, size_t len,
                   const int *fds, size_t nfds, int want, bool answered)
{
    dexc_guest *g = NULL;
    int fd = raw_connect(), r;

    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL_FATAL(raw_send(fd, msg, len, fds, nfds), 0);
    r = accept_result(&g, 100);
    if (r != want)
        fprintf(stderr, "\n%s: dexc_accept %d, wanted %d (%s)\n", what, r,
                want, th_last_log);
    CU_ASSERT_EQUAL(r, want);
    CU_ASSERT_PTR_NULL(g);
    if (answered)
        CU_ASSERT_EQUAL(reply_status(fd), want);
    close(fd);
}

static void test_malformed_attach(void)
{
    size_t len = 4 * TPAGE;
    int memfd = memfd_create("evil", MFD_CLOEXEC);
    int pfd[2];
    void *mem;
    int uffd;
    struct uffdio_api api = { .api = UFFD_API,
                              .features = UFFD_FEATURE_MISSING_SHMEM |
                                          UFFD_FEATURE_WP_HUGETLBFS_SHMEM };
    struct dexc_hello h;
    dexc_guest *g = NULL;
    int fds[3];
    char garbage[10] = "garbage!!";

    CU_ASSERT_FATAL(memfd >= 0 && ftruncate(memfd, (off_t)len) == 0);
    CU_ASSERT_FATAL(pipe2(pfd, O_CLOEXEC) == 0);
    mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    CU_ASSERT_FATAL(mem != MAP_FAILED);
    uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    CU_ASSERT_FATAL(uffd >= 0 && ioctl(uffd, UFFDIO_API, &api) == 0);
    begin_fd_check();

    refuse("garbage", garbage, sizeof garbage, NULL, 0, -EPROTO, true);
    h = good_hello((uintptr_t)mem, len);
    h.magic ^= 1;
    fds[0] = uffd;
    fds[1] = memfd;
    refuse("bad magic", &h, sizeof h, fds, 2, -EPROTO, true);
    h = good_hello((uintptr_t)mem, len);
    h.version = 99;
    refuse("version", &h, sizeof h, fds, 2, -EPROTONOSUPPORT, true);
    h = good_hello((uintptr_t)mem, len);
    refuse("no fds", &h, sizeof h, NULL, 0, -EPROTO, true);
    refuse("one fd", &h, sizeof h, fds, 1, -EPROTO, true);
    fds[2] = pfd[0];
    refuse("three fds", &h, sizeof h, fds, 3, -EPROTO, true);
    fds[0] = pfd[0];
    refuse("pipe as uffd", &h, sizeof h, fds, 2, -EINVAL, true);
    fds[0] = uffd;
    h.pid = getpid() + 1;
    refuse("someone else's pid", &h, sizeof h, fds, 2, -EPERM, true);
    h = good_hello((uintptr_t)mem, len);
    h.length = len + 100;
    refuse("ragged length", &h, sizeof h, fds, 2, -EINVAL, true);
    h = good_hello((uintptr_t)mem, len);
    memset(h.name, 'x', sizeof h.name);
    refuse("unterminated name", &h, sizeof h, fds, 2, -EPROTO, true);
    h = good_hello((uintptr_t)mem, len);
    h.features = UFFD_FEATURE_MISSING_SHMEM;
    refuse("no WP feature", &h, sizeof h, fds, 2, -EOPNOTSUPP, true);
    /* Everything in order but the uffd was never registered on the RAM. */
    h = good_hello((uintptr_t)mem, len);
    refuse("unregistered uffd", &h, sizeof h, fds, 2, -EINVAL, true);
    /* The memfd is not what is mapped there. */
    {
        int other = memfd_create("other", MFD_CLOEXEC);

        CU_ASSERT_FATAL(other >= 0 && ftruncate(other, (off_t)len) == 0);
        fds[1] = other;
        refuse("wrong memfd", &h, sizeof h, fds, 2, -EINVAL, true);
        fds[1] = memfd;
        close(other);
    }
    /* A message longer than a hello is truncated, hence refused. */
    {
        char big[sizeof h + 64];

        memset(big, 0, sizeof big);
        memcpy(big, &h, sizeof h);
        refuse("oversized", big, sizeof big, fds, 2, -EPROTO, true);
    }
    /* Connecting and leaving without a word (a probe): dropped quietly. */
    {
        int fd = raw_connect();

        CU_ASSERT_FATAL(fd >= 0);
        close(fd);
        CU_ASSERT_EQUAL(accept_result(&g, 4), 0);
        CU_ASSERT_PTR_NULL(g);
    }
    /* Connecting and saying nothing yet: nothing to report, no block. */
    {
        int fd = raw_connect();

        CU_ASSERT_FATAL(fd >= 0);
        CU_ASSERT_EQUAL(dexc_accept(lsn, 0, &g), 0);
        CU_ASSERT_EQUAL(dexc_accept(lsn, 0, &g), 0);
        CU_ASSERT_EQUAL(th_count_fds(), fds_before + 2);   /* ours, theirs */
        close(fd);
        CU_ASSERT_EQUAL(accept_result(&g, 4), 0);
    }
    end_fd_check();

    /* The listener still works. */
    {
        struct tguest *t = spawn_filled(4, 6, 0);

        CU_ASSERT(guest_page_ok(t, 0, 4));
        th_destroy(t);
    }
    close(uffd);
    munmap(mem, len);
    close(memfd);
    close(pfd[0]);
    close(pfd[1]);
}

static void test_listener_socket_file(void)
{
    dexc_listener *other;
    char path[160];
    int fd;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };

    /* A live daemon's socket is not stolen. */
    CU_ASSERT_EQUAL(dexc_listen(lsn_path, 0, &other), -EADDRINUSE);
    CU_ASSERT_PTR_NULL(other);
    /* A dead one's is replaced. */
    snprintf(path, sizeof path, "%s.stale", lsn_path);
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL_FATAL(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    close(fd);
    CU_ASSERT_EQUAL(dexc_listen(path, 0, &other), 0);
    dexc_listener_close(other);
    CU_ASSERT_EQUAL(access(path, F_OK), -1);
    CU_ASSERT_EQUAL(dexc_listen("", 0, &other), -EINVAL);
}

/* ------------------------------------------------------------------ */
/* The daemon's view of the memfd                                      */

static sigjmp_buf bus_jmp;
static volatile sig_atomic_t bus_seen;

static void on_sigbus(int sig)
{
    (void)sig;
    bus_seen = 1;
    siglongjmp(bus_jmp, 1);
}

/* The kernel hazard the library guards against: reading a punched shmem
 * page through an ordinary shared mapping allocates it again. */
static void test_view_hazard_kernel(void)
{
    int fd = memfd_create("hazard", MFD_CLOEXEC);
    const volatile uint8_t *view;
    struct stat st0, st1;

    CU_ASSERT_FATAL(fd >= 0 && ftruncate(fd, 4 * TPAGE) == 0);
    CU_ASSERT_FATAL(fallocate(fd, 0, 0, 4 * TPAGE) == 0);
    CU_ASSERT_FATAL(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                              TPAGE, TPAGE) == 0);
    CU_ASSERT_FALSE(th_memfd_has_page(fd, 1));
    fstat(fd, &st0);
    view = mmap(NULL, 4 * TPAGE, PROT_READ, MAP_SHARED, fd, 0);
    CU_ASSERT_FATAL(view != MAP_FAILED);
    CU_ASSERT_EQUAL(view[TPAGE + 1], 0);
    fstat(fd, &st1);
    CU_ASSERT(th_memfd_has_page(fd, 1));
    CU_ASSERT_EQUAL(st1.st_blocks - st0.st_blocks, TPAGE / 512);
    munmap((void *)view, 4 * TPAGE);
    close(fd);
}

/* The same through a stale dexc_map_ro pointer, with the view guarded:
 * SIGBUS, the hole stays, and the guest still gets its data back. */
static void test_view_guard(void)
{
    struct tguest *t = spawn_filled(8, 7, DEXC_OPEN_GUARD_VIEW);
    struct dexc_info info;
    const volatile uint8_t *stale;
    const void *ptr;
    int rc, memfd = th_open_memfd(t);
    uint64_t gfn = 4, h;
    dexc_mapping *m;
    struct sigaction sa = { .sa_handler = on_sigbus }, old;

    CU_ASSERT_FATAL(memfd >= 0);
    CU_ASSERT_EQUAL(dexc_get_info(t->g, &info), 0);
    CU_ASSERT(info.flags & DEXC_INFO_GUARD_VIEW);
    h = freeze1(t, 4);
    CU_ASSERT_EQUAL(dexc_map_ro(t->g, &gfn, 1, &ptr, &rc, &m), 1);
    /* Mapped pages cannot lose their frame. */
    CU_ASSERT_EQUAL(reclaim1(t, 4, h), -EBUSY);
    stale = ptr;
    dexc_unmap(t->g, m);
    CU_ASSERT_EQUAL(reclaim1(t, 4, h), 0);

    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &old);
    bus_seen = 0;
    if (!sigsetjmp(bus_jmp, 1))
        (void)stale[10];
    sigaction(SIGBUS, &old, NULL);
    CU_ASSERT_EQUAL(bus_seen, 1);
    CU_ASSERT_FALSE(th_memfd_has_page(memfd, 4));
    CU_ASSERT(guest_page_ok(t, 0, 8));
    CU_ASSERT_EQUAL(th_count_events(t, DEXC_EV_FAULT, 4), 1);
    close(memfd);
    th_destroy(t);
}

/* Without the guard a stale pointer silently undoes the reclaim: the
 * guest reads zeros and no fault ever reaches the daemon. This is why
 * dexc_map_ro refuses pages without frames and reclaim refuses mapped
 * ones. */
static void test_view_unguarded_stale_read(void)
{
    struct tguest *t = spawn_filled(8, 8, 0);
    const volatile uint8_t *stale;
    const void *ptr;
    int rc;
    uint64_t gfn = 2, h = freeze1(t, 2);
    dexc_mapping *m;
    uint8_t zero[TPAGE];

    CU_ASSERT_EQUAL(dexc_map_ro(t->g, &gfn, 1, &ptr, &rc, &m), 1);
    stale = ptr;
    dexc_unmap(t->g, m);
    CU_ASSERT_EQUAL(reclaim1(t, 2, h), 0);
    CU_ASSERT_EQUAL(stale[0], 0);  /* the daemon's bug */
    memset(zero, 0, sizeof zero);
    CU_ASSERT_EQUAL(th_call(t, C_HASH, 2, 1, 0, 0),
                    (int64_t)th_hash(zero, TPAGE));
    CU_ASSERT_EQUAL(th_count_events(t, DEXC_EV_FAULT, 2), 0);
    th_destroy(t);
}

/* ------------------------------------------------------------------ */

static void test_harvest(void)
{
    enum { N = 32 };
    struct tguest *t = spawn_filled(N, 9, 0);
    struct dexc_info info;
    uint8_t bits[N];
    uint64_t h;

    /* Nothing tracked yet: every page counts as used. */
    CU_ASSERT_EQUAL(dexc_harvest(t->g, 0, N, bits, DEXC_HARVEST_CLEAR), 0);
    for (int i = 0; i < N; i++)
        CU_ASSERT_EQUAL(bits[i], DEXC_AD_ACCESSED | DEXC_AD_DIRTY);
    CU_ASSERT_EQUAL(dexc_harvest(t->g, 0, N, bits, 0), 0);
    for (int i = 0; i < N; i++)
        CU_ASSERT_EQUAL(bits[i], 0);

    CU_ASSERT_EQUAL(th_call(t, C_WRITE_BYTE, 3, 0, 1, 0), 0);
    CU_ASSERT_EQUAL(th_call(t, C_WRITE_BYTE, 4, 0, 1, 9), 0);
    CU_ASSERT_EQUAL(th_call(t, C_WRITE_BYTE, 4, 0, 2, 10), 0);
    CU_ASSERT_EQUAL((uint8_t)th_call(t, C_READ_BYTE, 5, 0, 0, 0),
                    t->expect[5 * TPAGE]);
    CU_ASSERT_EQUAL(dexc_harvest(t->g, 0, N, bits, 0), 0);
    CU_ASSERT_EQUAL(bits[3], DEXC_AD_ACCESSED | DEXC_AD_DIRTY);
    CU_ASSERT_EQUAL(bits[4], DEXC_AD_ACCESSED | DEXC_AD_DIRTY);
    CU_ASSERT_EQUAL(bits[5], 0);    /* reads of resident pages: invisible */
    CU_ASSERT_EQUAL(bits[6], 0);
    CU_ASSERT_EQUAL(dexc_get_info(t->g, &info), 0);
    CU_ASSERT_EQUAL(info.wp_faults, 2);     /* one per page per period */
    CU_ASSERT_EQUAL(t->nev, 0);
    t->expect[3 * TPAGE] = 1;
    t->expect[4 * TPAGE + 9] = 1;
    t->expect[4 * TPAGE + 10] = 2;

    /* A refault is an access. */
    h = freeze1(t, 10);
    CU_ASSERT_EQUAL(reclaim1(t, 10, h), 0);
    CU_ASSERT(guest_page_ok(t, 10, 1));
    CU_ASSERT_EQUAL(dexc_harvest(t->g, 10, 1, bits, 0), 0);
    CU_ASSERT_EQUAL(bits[0], DEXC_AD_ACCESSED);
    CU_ASSERT_EQUAL(th_call(t, C_WRITE_BYTE, 10, 0, 3, 0), 0);
    t->expect[10 * TPAGE] = 3;
    CU_ASSERT_EQUAL(dexc_harvest(t->g, 10, 1, bits, DEXC_HARVEST_CLEAR), 0);
    CU_ASSERT_EQUAL(bits[0], DEXC_AD_ACCESSED | DEXC_AD_DIRTY);

    /* A new period starts clean; thawed pages still report writes. */
    CU_ASSERT_EQUAL(dexc_harvest(t->g, 0, N, bits, DEXC_HARVEST_CLEAR), 0);
    h = freeze1(t, 12);
    {
        struct dexc_page p = { .gfn = 12, .handle = h };

        CU_ASSERT_EQUAL(dexc_thaw(t->g, &p, 1), 1);
    }
    CU_ASSERT_EQUAL(th_call(t, C_WRITE_BYTE, 12, 0, 4, 0), 0);
    t->expect[12 * TPAGE] = 4;
    CU_ASSERT_EQUAL(dexc_harvest(t->g, 0, N, bits, 0), 0);
    for (int i = 0; i < N; i++)
        CU_ASSERT_EQUAL(bits[i], i == 12 ? DEXC_AD_ACCESSED | DEXC_AD_DIRTY
                                         : 0);
    CU_ASSERT_EQUAL(th_count_events(t, DEXC_EV_THAWED, 12), 0);
    CU_ASSERT_EQUAL(dexc_harvest(t->g, N - 1, 2, bits, 0), -EINVAL);
    CU_ASSERT(guest_page_ok(t, 0, N));
    th_destroy(t);
}

static void test_thaw_and_query(void)
{
    struct tguest *t = spawn_filled(8, 10, 0);
    struct dexc_page p[4];
    uint64_t h;

    th_pages(p, 0, 4);
    CU_ASSERT_EQUAL(dexc_freeze(t->g, p, 4), 4);
    h = p[1].handle;
    p[1].handle ^= 0x1234;
    CU_ASSERT_EQUAL(dexc_thaw(t->g, p, 2), 1);
    CU_ASSERT_EQUAL(p[0].rc, 0);
    CU_ASSERT_EQUAL(p[1].rc, -EAGAIN);
    CU_ASSERT_EQUAL(dexc_thaw(t->g, p, 1), 0);
    CU_ASSERT_EQUAL(p[0].rc, -EAGAIN);
    CU_ASSERT_EQUAL(state_of(t, 0, NULL), DEXC_STATE_NORMAL);
    CU_ASSERT_EQUAL(state_of(t, 1, NULL), DEXC_STATE_FROZEN);
    /* Freezing a frozen page gives its handle back. */
    CU_ASSERT_EQUAL(freeze1(t, 1), h);
    /* A write to a thawed page is no thaw event. */
    CU_ASSERT_EQUAL(th_call(t, C_WRITE_BYTE, 0, 0, 7, 0), 0);
    t->expect[0] = 7;
    CU_ASSERT_EQUAL(th_count_events(t, DEXC_EV_THAWED, 0), 0);
    {
        struct dexc_page q[3] = { { .gfn = 8 }, { .gfn = 1 },
                                  { .gfn = UINT64_MAX } };

        CU_ASSERT_EQUAL(dexc_query(t->g, q, 3), 1);
        CU_ASSERT_EQUAL(q[0].rc, -EINVAL);
        CU_ASSERT_EQUAL(q[1].state, DEXC_STATE_FROZEN);
        CU_ASSERT_EQUAL(q[1].handle, h);
        CU_ASSERT_EQUAL(q[2].rc, -EINVAL);
        CU_ASSERT_EQUAL(dexc_freeze(t->g, q, 1), 0);
        CU_ASSERT_EQUAL(q[0].rc, -EINVAL);
    }
    CU_ASSERT_EQUAL(dexc_freeze(t->g, NULL, 1), -EINVAL);
    CU_ASSERT_EQUAL(dexc_freeze(t->g, p, 0), 0);
    CU_ASSERT(guest_page_ok(t, 0, 8));
    th_destroy(t);
}

static void test_share(void)
{
    struct tguest *a = spawn_filled(8, 11, 0);
    struct tguest *b = spawn_filled(8, 12, 0);
    uint64_t ha, hb;
    struct dexc_share s;
    struct dexc_info info;
    int memfd = th_open_memfd(b);

    CU_ASSERT_FATAL(memfd >= 0);
    /* A's page 2 and B's page 5 get equal contents. */
    CU_ASSERT_EQUAL(th_call(a, C_FILL_SAME, 2, 1, 99, 0), 0);
    CU_ASSERT_EQUAL(th_call(b, C_FILL_SAME, 5, 1, 99, 0), 0);
    th_expect_fill(a, 2, 1, 99, true);
    th_expect_fill(b, 5, 1, 99, true);
    ha = freeze1(a, 2);
    hb = freeze1(b, 5);
    s = (struct dexc_share){ .gfn = 5, .handle = hb, .src_gfn = 2,
                             .src_handle = ha, .canonical = 77 };
    CU_ASSERT_EQUAL(dexc_share(b->g, a->g, &s, 1, 0), 1);
    CU_ASSERT_EQUAL(s.rc, 0);
    CU_ASSERT_EQUAL(state_of(b, 5, NULL), DEXC_STATE_SHARED);
    CU_ASSERT_EQUAL(state_of(a, 2, NULL), DEXC_STATE_FROZEN);
    CU_ASSERT_FALSE(th_memfd_has_page(memfd, 5));
    CU_ASSERT_EQUAL(dexc_get_info(b->g, &info), 0);
    CU_ASSERT_EQUAL(info.shared, 1);
    /* Its fault names the canonical copy. */
    CU_ASSERT(guest_page_ok(b, 0, 8));
    CU_ASSERT_EQUAL(th_count_events(b, DEXC_EV_FAULT, 5), 1);
    CU_ASSERT_EQUAL(b->evlog[0].flags, DEXC_EVF_SHARED);
    CU_ASSERT_EQUAL(b->evlog[0].canonical, 77);

    /* The source was written since it was frozen: refused. */
    ha = freeze1(a, 3);
    hb = freeze1(b, 6);
    CU_ASSERT_EQUAL(th_call(a, C_WRITE_BYTE, 3, 0, 1, 0), 0);
    a->expect[3 * TPAGE] = 1;
    s = (struct dexc_share){ .gfn = 6, .handle = hb, .src_gfn = 3,
                             .src_handle = ha };
    CU_ASSERT_EQUAL(dexc_share(b->g, a->g, &s, 1, 0), 0);
    CU_ASSERT_EQUAL(s.rc, -EAGAIN);
    CU_ASSERT_EQUAL(state_of(b, 6, NULL), DEXC_STATE_FROZEN);
    /* With the daemon's canonical copy only (src NULL). */
    s = (struct dexc_share){ .gfn = 6, .handle = hb, .canonical = 5 };
    CU_ASSERT_EQUAL(dexc_share(b->g, NULL, &s, 1, 0), 1);
    /* Not with itself. */
    hb = freeze1(b, 7);
    s = (struct dexc_share){ .gfn = 7, .handle = hb, .src_gfn = 7,
                             .src_handle = hb };
    CU_ASSERT_EQUAL(dexc_share(b->g, b->g, &s, 1, 0), 0);
    CU_ASSERT_EQUAL(s.rc, -EINVAL);
    s.pad = 1;
    CU_ASSERT_EQUAL(dexc_share(b->g, b->g, &s, 1, 0), -EINVAL);
    CU_ASSERT(guest_page_ok(b, 0, 8));
    CU_ASSERT(guest_page_ok(a, 0, 8));
    close(memfd);
    th_destroy(a);
    th_destroy(b);
}

static void test_restore_paths(void)
{
    static uint8_t poison[TPAGE];
    struct tguest *t = spawn_filled(8, 13, 0);
    struct dexc_page p = { .gfn = 1 };
    struct dexc_event ev;
    uint64_t h;
    int64_t v;
    int memfd = th_open_memfd(t);

    CU_ASSERT_FATAL(memfd >= 0);
    /* A page with a frame cannot be restored. */
    CU_ASSERT_EQUAL(dexc_restore(t->g, &p, 1, t->expect + TPAGE, 0), 0);
    CU_ASSERT_EQUAL(p.rc, -EEXIST);
    CU_ASSERT_EQUAL(dexc_restore(t->g, &p, 1, NULL, 0), -EINVAL);
    CU_ASSERT_EQUAL(dexc_restore(t->g, &p, 1, t->expect, DEXC_RESTORE_ZERO),
                    -EINVAL);

    /* Restored frozen: a new handle that reclaims again at once. */
    h = freeze1(t, 1);
    CU_ASSERT_EQUAL(reclaim1(t, 1, h), 0);
    p = (struct dexc_page){ .gfn = 1 };
    CU_ASSERT_EQUAL(dexc_restore(t->g, &p, 1, t->expect + TPAGE,
                                 DEXC_RESTORE_FROZEN), 1);
    CU_ASSERT_NOT_EQUAL(p.handle, 0);
    CU_ASSERT_NOT_EQUAL(p.handle, h);
    CU_ASSERT_EQUAL(state_of(t, 1, NULL), DEXC_STATE_FROZEN);
    CU_ASSERT_EQUAL(reclaim1(t, 1, p.handle), 0);
    CU_ASSERT(guest_page_ok(t, 1, 1));

    /* Zeros. */
    h = freeze1(t, 2);
    CU_ASSERT_EQUAL(reclaim1(t, 2, h), 0);
    p = (struct dexc_page){ .gfn = 2 };
    CU_ASSERT_EQUAL(dexc_restore(t->g, &p, 1, NULL, DEXC_RESTORE_ZERO), 1);
    memset(t->expect + 2 * TPAGE, 0, TPAGE);
    CU_ASSERT(guest_page_ok(t, 2, 1));

    /* Unaligned source data goes through the bounce page. */
    {
        uint8_t *buf = malloc(TPAGE + 1);

        h = freeze1(t, 6);
        CU_ASSERT_EQUAL(reclaim1(t, 6, h), 0);
        memcpy(buf + 1, t->expect + 6 * TPAGE, TPAGE);
        p = (struct dexc_page){ .gfn = 6 };
        CU_ASSERT_EQUAL(dexc_restore(t->g, &p, 1, buf + 1, 0), 1);
        free(buf);
        CU_ASSERT(guest_page_ok(t, 6, 1));
    }

    /* A racing fill: the guest waits on page 3, something else fills the
     * hole, then the daemon restores: done, and the guest is woken. */
    h = freeze1(t, 3);
    CU_ASSERT_EQUAL(reclaim1(t, 3, h), 0);
    t->auto_restore = false;
    CU_ASSERT_EQUAL(th_send(t, C_HASH, 3, 1, 0, 0), 0);
    CU_ASSERT_FATAL(th_wait_event_fd(t, 5000));
    CU_ASSERT_EQUAL(dexc_next_event(t->g, &ev), 1);
    CU_ASSERT_EQUAL(ev.type, DEXC_EV_FAULT);
    CU_ASSERT_EQUAL(ev.gfn, 3);
    CU_ASSERT_EQUAL(pwrite(memfd, t->expect + 3 * TPAGE, TPAGE, 3 * TPAGE),
                    TPAGE);
    /* What the daemon offers loses to what is already there. */
    memset(poison, 0xee, sizeof poison);
    p = (struct dexc_page){ .gfn = 3 };
    CU_ASSERT_EQUAL(dexc_restore(t->g, &p, 1, poison, 0), 1);
    CU_ASSERT_EQUAL(p.rc, 0);
    CU_ASSERT_EQUAL(th_wait(t, &v, 5000), 0);
    CU_ASSERT_EQUAL(v, (int64_t)th_expect_hash(t, 3, 1));
    CU_ASSERT_EQUAL(state_of(t, 3, NULL), DEXC_STATE_NORMAL);
    t->auto_restore = true;
    CU_ASSERT(guest_page_ok(t, 0, 8));
    close(memfd);
    th_destroy(t);
}

/* A child of the guest would read a reclaimed page through an inherited,
 * unregistered mapping and fill the hole with zeros: it inherits none. */
static void test_guest_children_get_no_ram(void)
{
    struct tguest *t = spawn_filled(4, 19, 0);
    uint64_t h = freeze1(t, 2);
    int64_t status;
    int memfd = th_open_memfd(t);

    CU_ASSERT_FATAL(memfd >= 0);
    CU_ASSERT_EQUAL(reclaim1(t, 2, h), 0);
    status = th_call(t, C_FORK_READ, 2, 0, 0, 0);
    CU_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV);
    CU_ASSERT_FALSE(th_memfd_has_page(memfd, 2));
    CU_ASSERT(guest_page_ok(t, 0, 4));
    close(memfd);
    th_destroy(t);
}

/* Several threads fault on one page: one event, one restore, all woken. */
static void test_threads_fault_one_page(void)
{
    struct tguest *t = spawn_filled(4, 14, 0);
    uint64_t h = freeze1(t, 1);

    CU_ASSERT_EQUAL(reclaim1(t, 1, h), 0);
    CU_ASSERT_EQUAL(th_call(t, C_THREADS_HASH, 1, 0, 0, 8),
                    (int64_t)th_expect_hash(t, 1, 1));
    CU_ASSERT_EQUAL(th_count_events(t, DEXC_EV_FAULT, 1), 1);
    CU_ASSERT_EQUAL(t->restore_errors, 0);
    th_destroy(t);
}

static void test_close_live_guest(void)
{
    struct tguest *t = spawn(8, 0, 0);
    uint64_t h;

    /* Absent pages and frozen ones, nothing reclaimed: close hands the
     * memory back and the guest runs on alone. */
    CU_ASSERT_EQUAL(th_call(t, C_FILL, 0, 4, 15, 0), 0);
    th_expect_fill(t, 0, 4, 15, false);
    freeze1(t, 1);
    CU_ASSERT_EQUAL(dexc_harvest(t->g, 0, 8, NULL, DEXC_HARVEST_CLEAR), 0);
    CU_ASSERT_EQUAL(th_call(t, C_DAEMON_STATE, 0, 0, 0, 0),
                    DEXC_DAEMON_ATTACHED);
    CU_ASSERT_EQUAL(dexc_close(t->g), 0);
    t->g = NULL;
    CU_ASSERT_EQUAL(th_call(t, C_DAEMON_STATE, 0, 0, 0, 0),
                    DEXC_DAEMON_RELEASED);
    CU_ASSERT_EQUAL(th_call(t, C_WRITE_BYTE, 1, 0, 9, 0), 0);
    CU_ASSERT_EQUAL(th_call(t, C_WRITE_BYTE, 2, 0, 9, 0), 0);
    CU_ASSERT_EQUAL(th_call(t, C_FILL, 6, 1, 16, 0), 0);
    t->expect[TPAGE] = 9;
    t->expect[2 * TPAGE] = 9;
    th_expect_fill(t, 6, 1, 16, false);
    CU_ASSERT(guest_page_ok(t, 0, 8));
    CU_ASSERT_EQUAL(th_call(t, C_DETACH, 0, 0, 0, 0), 0);
    th_destroy(t);

    /* With a page still reclaimed the daemon cannot let go. */
    t = spawn_filled(8, 17, 0);
    h = freeze1(t, 3);
    CU_ASSERT_EQUAL(reclaim1(t, 3, h), 0);
    CU_ASSERT_EQUAL(dexc_close(t->g), -EBUSY);
    t->g = NULL;
    CU_ASSERT_EQUAL(th_call(t, C_DAEMON_STATE, 0, 0, 0, 0),
                    DEXC_DAEMON_LOST);
    CU_ASSERT(guest_page_ok(t, 0, 3));
    th_destroy(t);
}

/* A guest thread rewrites counters in pages while the daemon freezes,
 * copies, reclaims and restores them as fast as it can: no write may be
 * lost, whatever the interleaving. */
static void stress(unsigned threads)
{
    enum { N = 8, MS = 1500 };
    struct tguest *t = spawn(N, DEXC_ATTACH_POPULATE, 0);
    unsigned long reclaimed = 0, stale = 0;
    int64_t lost = -1;
    bool done = false;

    memset(t->expect, 0, N * TPAGE);
    CU_ASSERT_EQUAL_FATAL(th_send(t, C_STRESS, 0, N, threads, MS), 0);
    while (!done) {
        struct pollfd pf = { .fd = t->rep_r, .events = POLLIN };

        for (uint64_t g = 0; g < N; g++) {
            struct dexc_page p = { .gfn = g };

            if (dexc_freeze(t->g, &p, 1) != 1)
                continue;
            snapshot(t, g);
            if (reclaim1(t, g, p.handle) == 0)
                reclaimed++;
            else
                stale++;
            th_serve(t);
        }
        th_serve(t);
        if (poll(&pf, 1, 0) == 1) {
            CU_ASSERT_EQUAL(read(t->rep_r, &lost, sizeof lost),
                            sizeof lost);
            done = true;
        }
    }
    CU_ASSERT_EQUAL(lost, 0);
    CU_ASSERT_EQUAL(t->restore_errors, 0);
    CU_ASSERT(reclaimed > 100);
    if (getenv("DEXC_TEST_VERBOSE"))
        fprintf(stderr, "\nstress: %lu reclaimed, %lu stale\n", reclaimed,
                stale);
    th_destroy(t);
}

static void test_stress_reclaim_vs_writes(void)
{
    stress(1);
}

static void test_stress_reclaim_vs_writers(void)
{
    stress(4);
}

/* Batches larger than one hole punch, and a whole guest reclaimed. */
static void test_large_batches(void)
{
    enum { N = 2048 };
    struct tguest *t = spawn_filled(N, 18, 0);
    struct dexc_page *p = calloc(N, sizeof *p);
    struct dexc_info info;
    struct stat st;
    int memfd = th_open_memfd(t);

    CU_ASSERT_FATAL(p && memfd >= 0);
    th_pages(p, 0, N);
    CU_ASSERT_EQUAL(dexc_freeze(t->g, p, N), N);
    CU_ASSERT_EQUAL(dexc_reclaim(t->g, p, N), N);
    for (size_t i = 0; i < N; i++)
        CU_ASSERT_EQUAL(p[i].rc, 0);
    CU_ASSERT_EQUAL(fstat(memfd, &st), 0);
    CU_ASSERT_EQUAL(st.st_blocks, 0);
    CU_ASSERT_EQUAL(dexc_get_info(t->g, &info), 0);
    CU_ASSERT_EQUAL(info.reclaimed, N);
    CU_ASSERT(guest_page_ok(t, 0, N));
    CU_ASSERT_EQUAL(t->nev, N);
    CU_ASSERT_EQUAL(t->restore_errors, 0);
    CU_ASSERT_EQUAL(fstat(memfd, &st), 0);
    CU_ASSERT_EQUAL(st.st_blocks, N * (TPAGE / 512));
    free(p);
    close(memfd);
    th_destroy(t);
}

static void test_bad_arguments(void)
{
    dexc_listener *l;
    dexc_guest *g;
    void *mem;
    dexc_attachment *a;
    struct dexc_uffd_desc d = { .uffd = -1, .memfd = -1, .conn_fd = -1 };
    struct dexc_event ev;

    CU_ASSERT_EQUAL(dexc_open_uffd(&d, 0, &g), -EINVAL);
    CU_ASSERT_EQUAL(dexc_open_uffd(NULL, 0, &g), -EINVAL);
    CU_ASSERT_EQUAL(dexc_listen(NULL, 0, &l), -EINVAL);
    CU_ASSERT_EQUAL(dexc_accept(NULL, 0, &g), -EINVAL);
    CU_ASSERT_EQUAL(dexc_next_event(NULL, &ev), -EINVAL);
    CU_ASSERT_EQUAL(dexc_close(NULL), 0);
    CU_ASSERT_EQUAL(dexc_guest_attach(lsn_path, 100, "x", 0, &mem, &a),
                    -EINVAL);
    CU_ASSERT_EQUAL(dexc_guest_attach("/nonexistent/sock", TPAGE, "x", 0,
                                      &mem, &a), -ENOENT);
    CU_ASSERT_STRING_EQUAL(dexc_state_name(DEXC_STATE_RECLAIMED),
                           "reclaimed");
    CU_ASSERT_STRING_EQUAL(dexc_state_name(77), "?");
    CU_ASSERT_PTR_NOT_NULL(dexc_version());
}

/* ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {
        { "attach and map_ro", test_attach_and_map_ro },
        { "freeze, reclaim, fault, restore", test_freeze_reclaim_fault_restore },
        { "write to a frozen page, then reclaim: EAGAIN",
          test_write_frozen_then_reclaim },
        { "reclaim, then write: restored then written", test_reclaim_then_write },
        { "absent pages zero-filled by the library",
          test_absent_pages_zero_fill },
        { "guest gone", test_guest_gone },
        { "malformed attach messages refused", test_malformed_attach },
        { "listener socket file", test_listener_socket_file },
        { "kernel: reading a hole through a mapping fills it",
          test_view_hazard_kernel },
        { "guarded view: SIGBUS, hole kept", test_view_guard },
        { "unguarded stale read undoes a reclaim",
          test_view_unguarded_stale_read },
        { "harvest", test_harvest },
        { "thaw and query", test_thaw_and_query },
        { "share", test_share },
        { "restore paths", test_restore_paths },
        { "threads faulting on one page", test_threads_fault_one_page },
        { "guest's children inherit no RAM", test_guest_children_get_no_ram },
        { "close a live guest", test_close_live_guest },
        { "stress: reclaim against writes", test_stress_reclaim_vs_writes },
        { "stress: reclaim against 4 writer threads",
          test_stress_reclaim_vs_writers },
        { "large batches", test_large_batches },
        { "bad arguments", test_bad_arguments },
    };
    CU_pSuite suite;
    unsigned failed;

    if (geteuid() != 0 || access("/proc/self/map_files", R_OK)) {
        fprintf(stderr, "test_dexc needs root (userfaultfd of kernel faults, "
                "/proc/PID/map_files): skipped\n");
        return 77;
    }
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    suite = CU_add_suite("libdexc uffd", suite_init, suite_clean);
    for (size_t i = 0; suite && i < sizeof tests / sizeof tests[0]; i++) {
        const char *only = getenv("DEXC_TEST_ONLY");

        if (only && !strstr(tests[i].name, only))
            continue;
        if (!CU_add_test(suite, tests[i].name, tests[i].fn))
            suite = NULL;
    }
    if (!suite) {
        CU_cleanup_registry();
        return 2;
    }
    CU_basic_set_mode(argc > 1 && strcmp(argv[1], "-v") == 0 ? CU_BRM_VERBOSE
                                                            : CU_BRM_NORMAL);
    CU_basic_run_tests();
    failed = CU_get_number_of_tests_failed() + CU_get_number_of_failures();
    printf("\n%u passed, %u failed\n",
           CU_get_number_of_tests_run() - CU_get_number_of_tests_failed(),
           CU_get_number_of_tests_failed());
    CU_cleanup_registry();
    return failed ? 1 : 0;
}

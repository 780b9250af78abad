/*
 * guest.c - the guest's end of the uffd backend: make RAM the daemon can
 * manage and hand it over (proto.h).
 *
 * The guest keeps its own reference to the userfaultfd for as long as it is
 * attached. That is deliberate: if the daemon dies, the registration stays
 * and a thread touching a page the daemon held blocks (until the guest is
 * killed) instead of the kernel quietly filling the hole with zeros, which
 * is what would happen once the last reference to the userfaultfd closed.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <linux/userfaultfd.h>

#include "private.h"
#include "proto.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

struct dexc_attachment {
    int conn;
    int uffd;
    void *mem;
    size_t bytes;
    uint32_t id;
    int state;              /* enum dexc_daemon_state */
};

static int populate(void *mem, size_t bytes)
{
    if (madvise(mem, bytes, MADV_POPULATE_WRITE) == 0)
        return 0;
    if (errno != EINVAL)
        return -errno;
    /* Kernels before 5.14: touch every page. */
    for (size_t off = 0; off < bytes; off += DEXC_PAGE_SIZE)
        ((volatile char *)mem)[off] = 0;
    return 0;
}

/* A userfaultfd able to trap kernel-mode accesses too when the process may
 * have one, else a user-mode-only one (*user_only set). */
static int make_uffd(unsigned flags, bool *user_only)
{
    int fd = -1;

    *user_only = false;
    if (!(flags & DEXC_ATTACH_USER_MODE_ONLY))
        fd = dxi_new_userfaultfd(O_CLOEXEC | O_NONBLOCK);
    if (fd < 0 && ((flags & DEXC_ATTACH_USER_MODE_ONLY) || errno == EPERM)) {
        fd = (int)syscall(SYS_userfaultfd,
                          O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
        *user_only = fd >= 0;
    }
    return fd < 0 ? -errno : fd;
}

static int send_hello(int conn, const struct dexc_hello *h, int uffd,
                      int memfd)
{
    union {
        char raw[CMSG_SPACE(2 * sizeof(int))];
        struct cmsghdr align;
    } cbuf;
    struct iovec iov = { .iov_base = (void *)h, .iov_len = sizeof *h };
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1,
        .msg_control = cbuf.raw, .msg_controllen = sizeof cbuf.raw,
    };
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    int fds[2] = { uffd, memfd };

    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof fds);
    memcpy(CMSG_DATA(c), fds, sizeof fds);
    errno = 0;
    if (sendmsg(conn, &mh, MSG_NOSIGNAL) != (ssize_t)sizeof *h)
        return errno ? -errno : -EIO;
    return 0;
}

static int wait_ack(int conn, uint32_t *id)
{
    struct pollfd pf = { .fd = conn, .events = POLLIN };
    struct dexc_reply r;
    ssize_t n;
    int p;

    do
        p = poll(&pf, 1, DEXC_ATTACH_TIMEOUT_MS);
    while (p < 0 && errno == EINTR);
    if (p < 0)
        return -errno;
    if (p == 0)
        return -ETIMEDOUT;
    n = recv(conn, &r, sizeof r, 0);
    if (n < 0)
        return -errno;
    if (n == 0)
        return -ECONNRESET;
    if (n != sizeof r || r.magic != DEXC_PROTO_MAGIC ||
        r.kind != DEXC_REPLY_ACK)
        return -EPROTO;
    if (r.status)
        return r.status < 0 ? r.status : -EPROTO;
    *id = r.id;
    return 0;
}

int dexc_guest_attach(const char *socket_path, size_t bytes, const char *name,
                      unsigned flags, void **mem, dexc_attachment **out)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct dexc_hello h = {
        .magic = DEXC_PROTO_MAGIC,
        .version = DEXC_PROTO_VERSION,
        .size = sizeof h,
        .page_size = DEXC_PAGE_SIZE,
    };
    struct uffdio_api api = {
        .api = UFFD_API,
        .features = UFFD_FEATURE_MISSING_SHMEM |
                    UFFD_FEATURE_WP_HUGETLBFS_SHMEM | UFFD_FEATURE_THREAD_ID,
    };
    struct uffdio_register reg = {
        .mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP,
    };
    const uint64_t need_ioctls = (1ull << _UFFDIO_COPY) |
                                 (1ull << _UFFDIO_WAKE) |
                                 (1ull << _UFFDIO_WRITEPROTECT);
    dexc_attachment *a = NULL;
    int memfd = -1, uffd = -1, conn = -1, r;
    void *m = MAP_FAILED;
    bool user_only;
    uint32_t id = 0;

    if (mem)
        *mem = NULL;
    if (out)
        *out = NULL;
    if (!socket_path || !mem || !out || !bytes || bytes % DEXC_PAGE_SIZE ||
        (flags & ~(DEXC_ATTACH_POPULATE | DEXC_ATTACH_USER_MODE_ONLY)))
        return -EINVAL;
    if (strlen(socket_path) >= sizeof sa.sun_path)
        return -ENAMETOOLONG;
    if (sysconf(_SC_PAGESIZE) != DEXC_PAGE_SIZE)
        return -EOPNOTSUPP;
    if (!name)
        name = "guest";
    strcpy(sa.sun_path, socket_path);
    strncpy(h.name, name, sizeof h.name - 1);

    a = calloc(1, sizeof *a);
    if (!a)
        return -ENOMEM;
    memfd = memfd_create(h.name, MFD_CLOEXEC);
    if (memfd < 0 || ftruncate(memfd, (off_t)bytes)) {
        r = -errno;
        goto fail;
    }
    m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    if (m == MAP_FAILED) {
        r = -errno;
        goto fail;
    }
    /* The daemon frees single 4 KiB pages: a huge folio would defeat it.
     * A child would inherit the mapping without the userfaultfd's
     * registration, and its reads of pages the daemon holds would fill
     * the holes with zeros for everyone: children get no RAM at all. */
    if (madvise(m, bytes, MADV_NOHUGEPAGE) || madvise(m, bytes, MADV_DONTFORK)) {
        r = -errno;
        goto fail;
    }
    if (flags & DEXC_ATTACH_POPULATE) {
        r = populate(m, bytes);
        if (r)
            goto fail;
    }

    uffd = make_uffd(flags, &user_only);
    if (uffd < 0) {
        r = uffd;
        uffd = -1;
        goto fail;
    }
    if (ioctl(uffd, UFFDIO_API, &api)) {
        r = errno == EINVAL ? -EOPNOTSUPP : -errno;
        goto fail;
    }
    reg.range.start = (uintptr_t)m;
    reg.range.len = bytes;
    if (ioctl(uffd, UFFDIO_REGISTER, &reg)) {
        r = errno == EINVAL ? -EOPNOTSUPP : -errno;
        goto fail;
    }
    if ((reg.ioctls & need_ioctls) != need_ioctls) {
        r = -EOPNOTSUPP;
        goto fail;
    }

    conn = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (conn < 0 || connect(conn, (struct sockaddr *)&sa, sizeof sa)) {
        r = -errno;
        goto fail;
    }
    h.base = (uintptr_t)m;
    h.length = bytes;
    h.features = api.features;
    h.pid = (int32_t)getpid();
    h.flags = user_only ? DEXC_HELLO_USER_MODE_ONLY : 0;
    r = send_hello(conn, &h, uffd, memfd);
    if (!r)
        r = wait_ack(conn, &id);
    if (r)
        goto fail;

    close(memfd);               /* the mapping and the daemon keep it */
    a->conn = conn;
    a->uffd = uffd;
    a->mem = m;
    a->bytes = bytes;
    a->id = id;
    a->state = DEXC_DAEMON_ATTACHED;
    *mem = m;
    *out = a;
    return 0;

fail:
    if (conn >= 0)
        close(conn);
    if (uffd >= 0)
        close(uffd);
    if (m != MAP_FAILED)
        munmap(m, bytes);
    if (memfd >= 0)
        close(memfd);
    free(a);
    return r;
}

int dexc_guest_daemon_state(dexc_attachment *a)
{
    struct dexc_reply r;
    ssize_t n;

    if (!a)
        return -EINVAL;
    if (a->state != DEXC_DAEMON_ATTACHED)
        return a->state;
    n = recv(a->conn, &r, sizeof r, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return a->state;
    if (n == (ssize_t)sizeof r && r.magic == DEXC_PROTO_MAGIC &&
        r.kind == DEXC_REPLY_BYE && r.status == 0) {
        /* Nothing is registered any more; our reference is useless. */
        close(a->uffd);
        a->uffd = -1;
        a->state = DEXC_DAEMON_RELEASED;
    } else {
        a->state = DEXC_DAEMON_LOST;
    }
    return a->state;
}

int dexc_attachment_fd(const dexc_attachment *a)
{
    return a ? a->conn : -EINVAL;
}

uint32_t dexc_attachment_id(const dexc_attachment *a)
{
    return a ? a->id : 0;
}

int dexc_guest_detach(dexc_attachment *a)
{
    if (!a)
        return -EINVAL;
    munmap(a->mem, a->bytes);
    close(a->conn);
    if (a->uffd >= 0)
        close(a->uffd);
    free(a);
    return 0;
}

/*
 * listen.c - the daemon's end of the uffd attach protocol (proto.h): a
 * listening socket, connections waiting for their hello, and the checks a
 * hello must pass before its descriptors become a dexc_guest.
 *
 * Everything is non-blocking: the daemon polls dexc_listener_fd (an epoll
 * set of the listening socket and the pending connections) from its event
 * loop, and a connection that never speaks costs nothing but a slot until
 * its deadline.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <linux/userfaultfd.h>

#include "private.h"
#include "proto.h"

#define MAX_PENDING 64
#define MAX_FDS 8           /* received at most; a hello carries 2 */

struct pending {
    int fd;
    uint64_t deadline_ms;
};

struct dexc_listener {
    int sock;
    int epfd;
    char *path;
    struct pending pend[MAX_PENDING];
    size_t npend;
    uint32_t next_id;
};

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int dxi_send_reply(int fd, uint32_t kind, int32_t status, uint32_t id)
{
    struct dexc_reply r = {
        .magic = DEXC_PROTO_MAGIC,
        .version = DEXC_PROTO_VERSION,
        .size = sizeof r,
        .kind = kind,
        .status = status,
        .id = id,
    };

    if (send(fd, &r, sizeof r, MSG_NOSIGNAL | MSG_DONTWAIT) != sizeof r)
        return -errno;
    return 0;
}

static int bind_socket(int sock, const struct sockaddr_un *sa)
{
    return bind(sock, (const struct sockaddr *)sa, sizeof *sa) ? -errno : 0;
}

/* A socket file nobody answers on is left over from a dead daemon. */
static bool stale_socket(const struct sockaddr_un *sa)
{
    struct stat st;
    int probe, r;

    if (lstat(sa->sun_path, &st) || !S_ISSOCK(st.st_mode))
        return false;
    probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (probe < 0)
        return false;
    r = connect(probe, (const struct sockaddr *)sa, sizeof *sa);
    close(probe);
    return r && errno == ECONNREFUSED;
}

int dexc_listen(const char *path, unsigned flags, dexc_listener **out)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct epoll_event ev = { .events = EPOLLIN };
    dexc_listener *l;
    int r;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!path || !*path || flags)
        return -EINVAL;
    if (strlen(path) >= sizeof sa.sun_path)
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, path);

    l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    l->epfd = -1;
    l->next_id = 1;
    l->path = strdup(path);
    l->sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC,
                     0);
    if (!l->path || l->sock < 0) {
        r = l->path ? -errno : -ENOMEM;
        goto fail;
    }
    r = bind_socket(l->sock, &sa);
    if (r == -EADDRINUSE && stale_socket(&sa)) {
        unlink(path);
        r = bind_socket(l->sock, &sa);
    }
    if (r) {
        dxi_log(DEXC_LOG_ERROR, "%s: %s", path, strerror(-r));
        goto fail;
    }
    if (listen(l->sock, 128)) {
        r = -errno;
        unlink(path);
        goto fail;
    }
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    ev.data.fd = l->sock;
    if (l->epfd < 0 || epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->sock, &ev)) {
        r = -errno;
        unlink(path);
        goto fail;
    }
    *out = l;
    return 0;

fail:
    if (l->sock >= 0)
        close(l->sock);
    if (l->epfd >= 0)
        close(l->epfd);
    free(l->path);
    free(l);
    return r;
}

int dexc_listener_fd(const dexc_listener *l)
{
    return l ? l->epfd : -EINVAL;
}

static void drop_pending(dexc_listener *l, size_t i, bool close_fd)
{
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, l->pend[i].fd, NULL);
    if (close_fd)
        close(l->pend[i].fd);
    l->pend[i] = l->pend[--l->npend];
}

void dexc_listener_close(dexc_listener *l)
{
    if (!l)
        return;
    while (l->npend)
        drop_pending(l, l->npend - 1, true);
    close(l->epfd);
    close(l->sock);
    unlink(l->path);
    free(l->path);
    free(l);
}

static bool is_userfaultfd(int fd)
{
    char path[64], target[64];
    ssize_t n;

    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    n = readlink(path, target, sizeof target - 1);
    if (n < 0)
        return false;
    target[n] = '\0';
    return strcmp(target, "anon_inode:[userfaultfd]") == 0;
}

/* Why a hello is refused, for the log; 0 if it is acceptable. */
static int check_hello(int conn, struct dexc_hello *h, ssize_t len,
                       int msg_flags, const int *fds, size_t nfds,
                       const char **why)
{
    struct ucred cred;
    socklen_t cl = sizeof cred;
    size_t namelen;

    if (msg_flags & (MSG_TRUNC | MSG_CTRUNC))
        return *why = "message or descriptors truncated", -EPROTO;
    if (len != (ssize_t)sizeof *h)
        return *why = "wrong message size", -EPROTO;
    if (h->magic != DEXC_PROTO_MAGIC || h->size != sizeof *h)
        return *why = "bad magic", -EPROTO;
    if (h->version != DEXC_PROTO_VERSION)
        return *why = "unsupported protocol version", -EPROTONOSUPPORT;
    if (nfds != 2)
        return *why = "not exactly two descriptors", -EPROTO;
    if (h->page_size != DEXC_PAGE_SIZE)
        return *why = "page size is not 4 KiB", -EINVAL;
    if (!h->length || h->length % DEXC_PAGE_SIZE ||
        h->base % DEXC_PAGE_SIZE || h->base + h->length < h->base ||
        h->reserved || (h->flags & ~DEXC_HELLO_USER_MODE_ONLY))
        return *why = "bad range or flags", -EINVAL;
    namelen = strnlen(h->name, sizeof h->name);
    if (namelen == sizeof h->name)
        return *why = "name not terminated", -EPROTO;
    for (size_t i = 0; i < namelen; i++)
        if ((unsigned char)h->name[i] < 0x20 || h->name[i] == 0x7f)
            h->name[i] = '?';
    if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &cl))
        return *why = "no peer credentials", -errno;
    if (cred.pid != h->pid)
        return *why = "pid is not the peer's", -EPERM;
    if (!is_userfaultfd(fds[0]))
        return *why = "first descriptor is not a userfaultfd", -EINVAL;
    return 0;
}

/* Reads a pending connection's hello: 1 with *out, -EAGAIN if it has
 * not arrived, or -errno after refusing and dropping the connection. */
static int try_hello(dexc_listener *l, size_t i, unsigned open_flags,
                     dexc_guest **out)
{
    union {
        struct dexc_hello h;
        char raw[sizeof(struct dexc_hello) + 16];
    } buf;
    union {
        char raw[CMSG_SPACE(MAX_FDS * sizeof(int))];
        struct cmsghdr align;
    } cbuf;
    struct iovec iov = { .iov_base = &buf, .iov_len = sizeof buf };
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1,
        .msg_control = cbuf.raw, .msg_controllen = sizeof cbuf.raw,
    };
    int conn = l->pend[i].fd, fds[MAX_FDS], r;
    size_t nfds = 0;
    const char *why = NULL;
    ssize_t len;
    dexc_guest *g;

    len = recvmsg(conn, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (len < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return -EAGAIN;
    if (len < 0) {
        r = -errno;
        drop_pending(l, i, true);
        return r;
    }
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        size_t k;

        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t j = 0; j < k; j++) {
            int fd;

            memcpy(&fd, CMSG_DATA(c) + j * sizeof(int), sizeof fd);
            if (nfds < MAX_FDS)
                fds[nfds++] = fd;
            else
                close(fd);
        }
    }
    if (len == 0) {
        /* Connected and left without a word: a liveness probe (such as
         * dexc_listen's own stale-socket check), nothing to refuse. */
        for (size_t j = 0; j < nfds; j++)
            close(fds[j]);
        drop_pending(l, i, true);
        return -EAGAIN;
    }
    r = check_hello(conn, &buf.h, len, mh.msg_flags, fds, nfds, &why);
    if (!r) {
        struct dexc_uffd_desc d = {
            .uffd = fds[0], .memfd = fds[1], .conn_fd = conn,
            .pid = buf.h.pid, .base = buf.h.base, .length = buf.h.length,
            .features = buf.h.features,
            .uffd_flags = (buf.h.flags & DEXC_HELLO_USER_MODE_ONLY)
                              ? UFFD_USER_MODE_ONLY : 0,
            .name = buf.h.name, .id = l->next_id,
        };

        r = dexc_open_uffd(&d, open_flags, &g);
        if (r)
            why = "its memory cannot be opened";
    }
    if (r) {
        dxi_log(DEXC_LOG_WARN, "attach refused: %s (%s)", why ? why : "?",
                strerror(-r));
        dxi_send_reply(conn, DEXC_REPLY_ACK, r, 0);
        for (size_t j = 0; j < nfds; j++)
            close(fds[j]);
        drop_pending(l, i, true);
        return r;
    }
    drop_pending(l, i, false);  /* the guest owns conn now */
    l->next_id++;
    r = dxi_send_reply(conn, DEXC_REPLY_ACK, 0, g->id);
    if (r) {
        dxi_log(DEXC_LOG_WARN, "guest %s left before its attach completed",
                g->name);
        dexc_close(g);
        return r;
    }
    dxi_log(DEXC_LOG_INFO, "guest %u (%s, pid %d) attached: %llu pages",
            g->id, g->name, (int)g->pid, (unsigned long long)g->nr_pages);
    *out = g;
    return 1;
}

int dexc_accept(dexc_listener *l, unsigned open_flags, dexc_guest **out)
{
    uint64_t now;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!l)
        return -EINVAL;
    for (;;) {
        struct epoll_event ev = { .events = EPOLLIN };
        int fd = accept4(l->sock, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return -errno;
        }
        if (l->npend == MAX_PENDING) {
            dxi_log(DEXC_LOG_WARN, "too many connections waiting to attach; "
                    "one refused");
            close(fd);
            continue;
        }
        ev.data.fd = fd;
        if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev)) {
            int e = errno;

            close(fd);
            return -e;
        }
        l->pend[l->npend++] = (struct pending){
            .fd = fd, .deadline_ms = now_ms() + DEXC_HELLO_TIMEOUT_MS,
        };
    }
    now = now_ms();
    for (size_t i = 0; i < l->npend;) {
        int fd = l->pend[i].fd;
        int r = try_hello(l, i, open_flags, out);

        if (r == -EAGAIN && (i >= l->npend || l->pend[i].fd != fd))
            continue;       /* dropped quietly; slot i holds another */
        if (r == -EAGAIN) {
            if (now > l->pend[i].deadline_ms) {
                dxi_log(DEXC_LOG_WARN, "a connection sent no hello in time; "
                        "dropped");
                drop_pending(l, i, true);
            } else {
                i++;
            }
            continue;
        }
        return r;
    }
    return 0;
}

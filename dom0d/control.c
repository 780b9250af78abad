/*
 * control.c - the control socket: accept, frame, limit, dispatch.
 *
 * Memory per client is bounded on both sides. Input: the bufferevent's
 * read high-watermark stops reading at CTL_MAX_LINE + 2 bytes, so a
 * client streaming bytes without a newline holds at most that much before
 * it is told "request too long" and disconnected. Output: a client that
 * pipelines requests without reading replies is not read from while more
 * than CTL_OUT_MAX bytes of replies wait for it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* accept4, struct ucred */
#endif
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "control.h"
#include "log.h"

#define CTL_OUT_MAX (1u << 20)
#define CTL_ACCEPT_PAUSE_MS 1000

struct ctl_client {
    struct ctl_server *srv;
    struct bufferevent *bev;
    struct ctl_client *prev, *next;
    bool closing;               /* flush the output, then disconnect */
};

struct ctl_server {
    struct event_base *base;
    struct event *ev_accept;
    struct event *ev_pause;
    int fd;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    dev_t dev;                  /* identity of the socket we created, so */
    ino_t ino;                  /* we never unlink someone else's */
    struct ctl_ops ops;
    void *ctx;
    struct ctl_limits lim;
    struct ctl_client *clients;
    unsigned nclients;
    struct json_buf reply;
};

/* ---- dispatch ---- */

static void error_reply(struct json_buf *out, const char *msg)
{
    json_reset(out);
    json_obj_begin(out);
    json_kv_bool(out, "ok", false);
    json_kv_str(out, "error", msg);
    json_obj_end(out);
    json_newline(out);
}

void ctl_dispatch(const struct ctl_ops *ops, void *ctx, const char *line,
                  size_t len, struct json_buf *out)
{
    struct ctl_req req;
    const struct ctl_cmd_info *ci;
    char err[512] = "";
    int nargs, rc = -2;         /* -2: no callback for the command */
    const char *g;

    if (ctl_parse_line(line, len, &req, err, sizeof err) != 0) {
        error_reply(out, err);
        return;
    }
    ci = ctl_cmd_lookup(req.argv[0]);
    if (!ci) {
        snprintf(err, sizeof err, "unknown command '%.64s'", req.argv[0]);
        error_reply(out, err);
        return;
    }
    nargs = req.argc - 1;
    if (nargs < ci->min_args || nargs > ci->max_args) {
        snprintf(err, sizeof err, "usage: %s%s%s", ci->name,
                 ci->args[0] ? " " : "", ci->args);
        error_reply(out, err);
        return;
    }
    g = nargs > 0 ? req.argv[1] : NULL;

    json_reset(out);
    json_obj_begin(out);
    json_kv_bool(out, "ok", true);
    switch (ci->cmd) {
    case CTL_CMD_STATUS:
        if (ops->status)
            rc = ops->status(ctx, out, err, sizeof err);
        break;
    case CTL_CMD_GUESTS:
        if (ops->guests)
            rc = ops->guests(ctx, out, err, sizeof err);
        break;
    case CTL_CMD_STATS:
        if (ops->stats)
            rc = ops->stats(ctx, g, out, err, sizeof err);
        break;
    case CTL_CMD_SET:
        if (ops->set)
            rc = ops->set(ctx, g, req.argv[2], req.argv[3], out, err,
                          sizeof err);
        break;
    case CTL_CMD_PAUSE:
        if (ops->pause)
            rc = ops->pause(ctx, g, out, err, sizeof err);
        break;
    case CTL_CMD_RESUME:
        if (ops->resume)
            rc = ops->resume(ctx, g, out, err, sizeof err);
        break;
    case CTL_CMD_FLUSH:
        if (ops->flush)
            rc = ops->flush(ctx, g, out, err, sizeof err);
        break;
    case CTL_NCMDS:
        break;
    }
    if (rc != 0 && !err[0])
        snprintf(err, sizeof err, "command '%s' %s", ci->name,
                 rc == -2 ? "not supported" : "failed");
    if (rc != 0) {
        error_reply(out, err);
        return;
    }
    /* A callback that left a scope open or overflowed must not produce a
     * broken line: the client would wait for a reply that never ends. */
    if (!json_ok(out) || out->depth != 1 || out->after_key) {
        error_reply(out, json_ok(out) ? "internal error: malformed reply"
                                      : "reply too large");
        return;
    }
    json_obj_end(out);
    json_newline(out);
}

/* ---- clients ---- */

static void client_free(struct ctl_client *c)
{
    struct ctl_server *srv = c->srv;

    if (c->prev)
        c->prev->next = c->next;
    else
        srv->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->nclients--;
    bufferevent_free(c->bev);
    free(c);
}

static void client_reply(struct ctl_client *c, const char *line, size_t len)
{
    struct ctl_server *srv = c->srv;
    struct evbuffer *out = bufferevent_get_output(c->bev);

    ctl_dispatch(&srv->ops, srv->ctx, line, len, &srv->reply);
    evbuffer_add(out, srv->reply.buf, srv->reply.len);
    if (evbuffer_get_length(out) > CTL_OUT_MAX)
        bufferevent_disable(c->bev, EV_READ);
}

/* Replies with an error and disconnects once it has been sent. */
static void client_reject(struct ctl_client *c, const char *msg)
{
    struct json_buf *j = &c->srv->reply;
    struct evbuffer *in = bufferevent_get_input(c->bev);

    error_reply(j, msg);
    evbuffer_add(bufferevent_get_output(c->bev), j->buf, j->len);
    evbuffer_drain(in, evbuffer_get_length(in));
    bufferevent_disable(c->bev, EV_READ);
    c->closing = true;
}

static void client_read(struct bufferevent *bev, void *arg)
{
    struct ctl_client *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    while (!c->closing) {
        size_t n;
        char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF);

        if (!line) {
            if (evbuffer_get_length(in) > CTL_MAX_LINE + 1) {
                log_warnx("control: request longer than %d bytes, "
                          "disconnecting client", CTL_MAX_LINE);
                client_reject(c, "request too long (max 1024 bytes)");
            }
            return;
        }
        if (n - (n > 0 && line[n - 1] == '\r') > CTL_MAX_LINE) {
            free(line);
            log_warnx("control: request longer than %d bytes, "
                      "disconnecting client", CTL_MAX_LINE);
            client_reject(c, "request too long (max 1024 bytes)");
            return;
        }
        client_reply(c, line, n);
        free(line);
        if (!(bufferevent_get_enabled(bev) & EV_READ))
            return;
    }
}

static void client_write(struct bufferevent *bev, void *arg)
{
    struct ctl_client *c = arg;

    /* the output buffer has drained (write low-watermark 0) */
    if (c->closing) {
        client_free(c);
        return;
    }
    if (!(bufferevent_get_enabled(bev) & EV_READ)) {
        bufferevent_enable(bev, EV_READ);
        client_read(bev, c);    /* lines may be waiting already */
    }
}

static void client_event(struct bufferevent *bev, short what, void *arg)
{
    struct ctl_client *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    if ((what & BEV_EVENT_EOF) && !c->closing) {
        /* A last request without its newline still deserves an answer:
         * `printf status | nc -U` is how people test sockets. */
        size_t n = evbuffer_get_length(in);

        if (n > 0 && n <= CTL_MAX_LINE + 1) {
            char line[CTL_MAX_LINE + 2];

            evbuffer_remove(in, line, n);
            client_reply(c, line, n);
        }
        c->closing = true;
        if (evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
            bufferevent_disable(bev, EV_READ);
            return;     /* client_write frees it once sent */
        }
    }
    if (what & BEV_EVENT_TIMEOUT)
        log_debug("control: idle client disconnected");
    client_free(c);
}

/* ---- accepting ---- */

static void accept_resume(evutil_socket_t fd, short what, void *arg)
{
    struct ctl_server *srv = arg;

    (void)fd;
    (void)what;
    event_add(srv->ev_accept, NULL);
}

/* Best effort, on a socket we are about to close: never blocks. */
static void refuse(int fd, const char *msg)
{
    struct json_buf j;

    json_init(&j);
    error_reply(&j, msg);
    if (json_ok(&j))
        (void)send(fd, j.buf, j.len, MSG_NOSIGNAL | MSG_DONTWAIT);
    json_free(&j);
    close(fd);
}

static bool peer_allowed(int fd)
{
    struct ucred cred;
    socklen_t len = sizeof cred;

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
        return false;
    /* The socket is 0600 already; this also stops a descriptor passed to
     * another user from speaking for it. */
    return cred.uid == 0 || cred.uid == geteuid();
}

static void accept_cb(evutil_socket_t lfd, short what, void *arg)
{
    struct ctl_server *srv = arg;

    (void)what;
    for (;;) {
        struct ctl_client *c;
        struct timeval idle;
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                errno == ENOMEM) {
                struct timeval tv = { CTL_ACCEPT_PAUSE_MS / 1000, 0 };

                log_warn("control: accept");
                event_del(srv->ev_accept);
                evtimer_add(srv->ev_pause, &tv);
            } else if (errno != EAGAIN && errno != EINTR &&
                       errno != ECONNABORTED) {
                log_warn("control: accept");
            }
            return;
        }
        if (!peer_allowed(fd)) {
            log_warnx("control: connection from another user refused");
            refuse(fd, "permission denied");
            continue;
        }
        if (srv->nclients >= srv->lim.max_clients) {
            log_warnx("control: %u clients already, connection refused",
                      srv->nclients);
            refuse(fd, "too many clients");
            continue;
        }
        c = calloc(1, sizeof *c);
        if (!c) {
            refuse(fd, "out of memory");
            continue;
        }
        c->srv = srv;
        c->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
        if (!c->bev) {
            free(c);
            refuse(fd, "out of memory");
            continue;
        }
        bufferevent_setcb(c->bev, client_read, client_write, client_event, c);
        bufferevent_setwatermark(c->bev, EV_READ, 0, CTL_MAX_LINE + 2);
        idle.tv_sec = srv->lim.idle_ms / 1000;
        idle.tv_usec = (srv->lim.idle_ms % 1000) * 1000;
        bufferevent_set_timeouts(c->bev, &idle, &idle);
        bufferevent_enable(c->bev, EV_READ | EV_WRITE);
        c->next = srv->clients;
        if (c->next)
            c->next->prev = c;
        srv->clients = c;
        srv->nclients++;
    }
}

/* ---- the socket ---- */

/* Removes a socket file only if nobody answers on it. */
static int clear_stale(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sun;
    struct stat st;
    int fd, rc;

    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : (ctl_seterr(err, errlen, "%s: %s", path,
                                             strerror(errno)), -1);
    if (!S_ISSOCK(st.st_mode)) {
        ctl_seterr(err, errlen, "%s exists and is not a socket", path);
        return -1;
    }
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    strcpy(sun.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        ctl_seterr(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    rc = connect(fd, (struct sockaddr *)&sun, sizeof sun);
    close(fd);
    if (rc == 0) {
        ctl_seterr(err, errlen, "%s: another de-dom0d is listening there",
               path);
        return -1;
    }
    if (errno != ECONNREFUSED) {
        ctl_seterr(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (unlink(path) != 0 && errno != ENOENT) {
        ctl_seterr(err, errlen, "%s: removing stale socket: %s", path,
               strerror(errno));
        return -1;
    }
    return 0;
}

struct ctl_server *ctl_server_new(struct event_base *base, const char *path,
                                  const struct ctl_ops *ops, void *ctx,
                                  const struct ctl_limits *limits,
                                  char *err, size_t errlen)
{
    struct ctl_server *srv;
    struct sockaddr_un sun;
    struct stat st;
    mode_t old;

    if (strlen(path) >= sizeof sun.sun_path) {
        ctl_seterr(err, errlen, "%s: socket path too long", path);
        return NULL;
    }
    srv = calloc(1, sizeof *srv);
    if (!srv) {
        ctl_seterr(err, errlen, "out of memory");
        return NULL;
    }
    srv->fd = -1;
    srv->base = base;
    srv->ops = *ops;
    srv->ctx = ctx;
    srv->lim.max_clients = limits && limits->max_clients
        ? limits->max_clients : CTL_DEFAULT_MAX_CLIENTS;
    srv->lim.idle_ms = limits && limits->idle_ms
        ? limits->idle_ms : CTL_DEFAULT_IDLE_MS;
    json_init(&srv->reply);
    strcpy(srv->path, path);

    if (clear_stale(path, err, errlen) != 0)
        goto fail;
    srv->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (srv->fd < 0) {
        ctl_seterr(err, errlen, "socket: %s", strerror(errno));
        goto fail;
    }
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    strcpy(sun.sun_path, path);
    /* umask rather than chmod after bind: there is no window in which the
     * socket exists with looser permissions. */
    old = umask(0177);
    if (bind(srv->fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
        umask(old);
        ctl_seterr(err, errlen, "bind %s: %s", path, strerror(errno));
        goto fail;
    }
    umask(old);
    if (chmod(path, 0600) != 0 || stat(path, &st) != 0) {
        ctl_seterr(err, errlen, "chmod %s: %s", path, strerror(errno));
        unlink(path);
        goto fail;
    }
    srv->dev = st.st_dev;
    srv->ino = st.st_ino;
    if (listen(srv->fd, 16) != 0) {
        ctl_seterr(err, errlen, "listen %s: %s", path, strerror(errno));
        unlink(path);
        goto fail;
    }
    srv->ev_accept = event_new(base, srv->fd, EV_READ | EV_PERSIST,
                               accept_cb, srv);
    srv->ev_pause = evtimer_new(base, accept_resume, srv);
    if (!srv->ev_accept || !srv->ev_pause ||
        event_add(srv->ev_accept, NULL) != 0) {
        ctl_seterr(err, errlen, "libevent: cannot add the control socket");
        unlink(path);
        goto fail;
    }
    return srv;
fail:
    if (srv->ev_accept)
        event_free(srv->ev_accept);
    if (srv->ev_pause)
        event_free(srv->ev_pause);
    if (srv->fd >= 0)
        close(srv->fd);
    json_free(&srv->reply);
    free(srv);
    return NULL;
}

void ctl_server_free(struct ctl_server *srv)
{
    struct stat st;

    if (!srv)
        return;
    while (srv->clients)
        client_free(srv->clients);
    event_free(srv->ev_accept);
    event_free(srv->ev_pause);
    close(srv->fd);
    if (stat(srv->path, &st) == 0 && st.st_dev == srv->dev &&
        st.st_ino == srv->ino)
        unlink(srv->path);
    json_free(&srv->reply);
    free(srv);
}

unsigned ctl_server_nclients(const struct ctl_server *srv)
{
    return srv->nclients;
}

/*
 * control.h - the daemon's end of the control socket (de-ctl(8)).
 *
 * control.c owns the socket, the clients, framing and limits; it knows
 * nothing about guests. Each command is dispatched to a callback of
 * struct ctl_ops. The server has already opened the reply object and
 * written "ok":true; a callback appends its own members to `j` and
 * returns 0, or returns -1 with a message in err, in which case whatever
 * it appended is discarded and the reply is {"ok":false,"error":err}.
 * A NULL callback answers "command not supported".
 *
 * Callbacks run on the event loop and must not block for long: a command
 * that takes time (flush) should start the work, reply at once, and let
 * `status` report progress.
 */
#ifndef DE_CONTROL_H
#define DE_CONTROL_H

#include <stddef.h>

#include "control_proto.h"

struct event_base;

#define CTL_DEFAULT_MAX_CLIENTS 16
#define CTL_DEFAULT_IDLE_MS 30000

struct ctl_ops {
    int (*status)(void *ctx, struct json_buf *j, char *err, size_t errlen);
    int (*guests)(void *ctx, struct json_buf *j, char *err, size_t errlen);
    /* guest NULL: every guest plus the global totals */
    int (*stats)(void *ctx, const char *guest, struct json_buf *j,
                 char *err, size_t errlen);
    int (*set)(void *ctx, const char *guest, const char *key,
               const char *value, struct json_buf *j, char *err,
               size_t errlen);
    int (*pause)(void *ctx, const char *guest, struct json_buf *j,
                 char *err, size_t errlen);
    int (*resume)(void *ctx, const char *guest, struct json_buf *j,
                  char *err, size_t errlen);
    int (*flush)(void *ctx, const char *guest, struct json_buf *j,
                 char *err, size_t errlen);
};

struct ctl_limits {
    unsigned max_clients;       /* further connections get an error */
    unsigned idle_ms;           /* a client silent this long is dropped */
};

struct ctl_server;

/* Binds `path` (mode 0600) and starts accepting on `base`. A stale
 * socket file left by a dead daemon is replaced; a live one (something
 * answers) or a non-socket file at `path` is an error. limits may be
 * NULL for the defaults. Returns NULL with a message in err. */
struct ctl_server *ctl_server_new(struct event_base *base, const char *path,
                                  const struct ctl_ops *ops, void *ctx,
                                  const struct ctl_limits *limits,
                                  char *err, size_t errlen);

/* Disconnects every client, closes and unlinks the socket. */
void ctl_server_free(struct ctl_server *srv);

unsigned ctl_server_nclients(const struct ctl_server *srv);

/* Runs one request line through the dispatcher and leaves the reply line
 * (with its "\n") in `out`; what the socket path does for each line,
 * exposed for tests and for a future second transport. */
void ctl_dispatch(const struct ctl_ops *ops, void *ctx, const char *line,
                  size_t len, struct json_buf *out);

#endif

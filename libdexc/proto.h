/*
 * proto.h - the attach protocol between a uffd guest (guest.c) and the
 * daemon (listen.c, uffd.c), on a local SOCK_SEQPACKET socket, so each
 * struct is one message and a short or long one is visibly malformed.
 * Both ends run on the same machine: host byte order.
 *
 *   guest -> daemon  struct dexc_hello + SCM_RIGHTS { uffd, memfd }
 *   daemon -> guest  struct dexc_reply { DEXC_REPLY_ACK, status, id }
 *   ... the guest runs, the daemon serves its faults ...
 *   daemon -> guest  struct dexc_reply { DEXC_REPLY_BYE, status }
 *                    (dexc_close: status 0 = memory handed back)
 *   either side closing the socket means it has gone.
 */
#ifndef DEXC_PROTO_H
#define DEXC_PROTO_H

#include <stdint.h>

#define DEXC_PROTO_MAGIC   0x43584544u  /* "DEXC" */
#define DEXC_PROTO_VERSION 1u
#define DEXC_NAME_MAX      64

#define DEXC_HELLO_USER_MODE_ONLY (1u << 0)

struct dexc_hello {
    uint32_t magic;
    uint16_t version;
    uint16_t size;              /* sizeof(struct dexc_hello) */
    uint64_t base;
    uint64_t length;
    uint64_t features;          /* UFFD_FEATURE_* negotiated */
    uint32_t page_size;
    int32_t pid;                /* must match the socket's peer */
    uint32_t flags;             /* DEXC_HELLO_* */
    uint32_t reserved;          /* 0 */
    char name[DEXC_NAME_MAX];   /* NUL terminated */
};

enum dexc_reply_kind {
    DEXC_REPLY_ACK = 1,
    DEXC_REPLY_BYE = 2,
};

struct dexc_reply {
    uint32_t magic;
    uint16_t version;
    uint16_t size;              /* sizeof(struct dexc_reply) */
    uint32_t kind;              /* enum dexc_reply_kind */
    int32_t status;             /* 0 or -errno */
    uint32_t id;                /* ACK: the guest's id */
    uint32_t reserved;
};

/* How long dexc_guest_attach waits for the daemon's ACK and how long the
 * daemon waits for a connection's hello. */
#define DEXC_ATTACH_TIMEOUT_MS 30000
#define DEXC_HELLO_TIMEOUT_MS  5000

/* Sends a reply on a connected socket, best effort; 0 or -errno. */
int dxi_send_reply(int fd, uint32_t kind, int32_t status, uint32_t id);

#endif

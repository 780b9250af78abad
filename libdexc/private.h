/*
 * private.h - what the backend-neutral core (core.c) and the backends
 * (uffd.c; xen.c later) share. Not installed.
 *
 * The split follows Xen's tools/libs/foreignmemory: core.c checks
 * arguments, owns the event queue and the mapping objects, and calls one
 * backend op per public primitive. The page ops mirror XENMEM_dex_op:
 * one batched call per sub-op with a per-entry result, so the Xen backend
 * can hand the caller's struct dexc_page array (laid out as xen_dex_page)
 * to the hypervisor as it is.
 */
#ifndef DEXC_PRIVATE_H
#define DEXC_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dexc.h"


/* Page sub-ops, numbered as XENMEM_dex_op_* (share = 3 and harvest = 6
 * have their own ops: they take other entry types). */
enum dexc_page_op {
    DEXC_OP_FREEZE = 0,
    DEXC_OP_THAW = 1,
    DEXC_OP_QUERY = 2,
    DEXC_OP_RECLAIM = 4,
    DEXC_OP_RESTORE = 5,
};

struct dexc_ops {
    const char *name;

    /* One batched primitive. Every entry's rc is set; returns the number
     * of entries with rc == 0, or -errno if nothing was done. data and
     * flags only for DEXC_OP_RESTORE (data already checked non-NULL unless
     * DEXC_RESTORE_ZERO). */
    int (*page_op)(dexc_guest *g, enum dexc_page_op op,
                   struct dexc_page *pages, size_t n, const void *data,
                   unsigned flags);
    /* src may be NULL (uffd) or equal to cli; both of the same backend. */
    int (*share)(dexc_guest *cli, dexc_guest *src, struct dexc_share *s,
                 size_t n, unsigned flags);
    int (*harvest)(dexc_guest *g, uint64_t first_gfn, size_t n,
                   uint8_t *bits, unsigned flags);

    /* Fills ptrs/rc for n gfns; returns the count mapped or -errno. The
     * backend may keep a cookie (Xen: the foreign mapping) released by
     * unmap with the gfns that were mapped (rc == 0). */
    int (*map_ro)(dexc_guest *g, const uint64_t *gfns, size_t n,
                  const void **ptrs, int *rc, void **cookie);
    void (*unmap)(dexc_guest *g, void *cookie, const uint64_t *gfns,
                  size_t n);

    /* Moves what the backend has ready into the core's event queue
     * (serving internally what needs no daemon). 0 or -errno; sets
     * g->gone if it finds the guest gone. */
    int (*poll_events)(dexc_guest *g);
    /* Sets g->gone if the guest has gone away (cheap, non-blocking). */
    void (*check_gone)(dexc_guest *g);
    /* An event about to be returned: false if it no longer applies (the
     * page got a frame meanwhile) and must be dropped. May refine its
     * flags. */
    bool (*event_current)(dexc_guest *g, struct dexc_event *ev);

    void (*get_info)(const dexc_guest *g, struct dexc_info *info);
    /* Releases everything but the dexc_guest allocation itself (core frees
     * it). Returns 0 or -EBUSY as dexc_close documents. */
    int (*close)(dexc_guest *g);
};

/* FIFO of events waiting for dexc_next_event. efd is an eventfd that is
 * readable while the queue is not empty at the end of any public call, so
 * the backend can put it in the set behind dexc_event_fd: events the
 * library took out of the kernel (reclaim drains the userfaultfd) stay
 * visible to poll(). Its level is only adjusted at the end of calls, so
 * the usual event, queued and returned by one dexc_next_event, costs no
 * eventfd syscall. */
struct dexc_evq {
    struct dexc_event *ev;
    size_t cap, head, len;
    int efd;
    bool efd_set;
};

struct dexc_counters {
    uint64_t faults, thaws, wp_faults, zero_fills;
};

/* The backend-neutral part of a guest handle; backends embed it first in
 * their own structure and allocate the whole. */
struct dexc_guest {
    const struct dexc_ops *ops;
    uint32_t id;
    int32_t pid;
    uint64_t nr_pages;
    char name[64];
    bool gone;
    unsigned info_flags;
    struct dexc_evq q;
    struct dexc_counters ctr;
    int event_fd;           /* what dexc_event_fd returns (backend's) */
    size_t nr_mappings;     /* dexc_map_ro batches not yet unmapped */
};

/* A dexc_map_ro batch: the gfns that were mapped, for the backend. */
struct dexc_mapping {
    dexc_guest *g;
    void *cookie;
    size_t n;
    uint64_t gfns[];
};

/* core.c services for the backends */
int dxi_guest_init(dexc_guest *g, const struct dexc_ops *ops, uint32_t id,
                    int32_t pid, uint64_t nr_pages, const char *name);
void dxi_guest_fini(dexc_guest *g);
/* Queues an event; -ENOMEM if it could not. */
int dxi_evq_push(dexc_guest *g, const struct dexc_event *ev);
void dxi_evq_clear(dexc_guest *g);

void dxi_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The backend's guest from a core handle. */
#define DEXC_CONTAINER(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* A userfaultfd for this process: the syscall, else /dev/userfaultfd
 * (which root can open when the syscall is restricted). -1 and errno. */
int dxi_new_userfaultfd(int flags);

/* uffd backend pieces used by the listener (listen.c) */
extern const struct dexc_ops dxi_uffd_ops;

/* Xen backend (xen.c, built when configure finds libxen-dev) */
extern const struct dexc_ops dxi_xen_ops;

/* A page of zeros, page aligned (map_ro of ABSENT pages, zero restores). */
extern const uint8_t dxi_zero_page[DEXC_PAGE_SIZE];

#endif

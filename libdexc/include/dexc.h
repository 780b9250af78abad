/*
 * dexc.h - the Difference Engine primitives, for one daemon over many guests.
 *
 * A daemon (de-dom0d) holds one dexc_guest handle per guest and drives its
 * memory through batched primitives:
 *
 *   freeze   make pages read-only to the guest and get a handle per page;
 *            a guest write thaws the page and invalidates its handle;
 *   reclaim  free the frame of a frozen, unchanged page (stale handle:
 *            -EAGAIN), the page becomes "reclaimed";
 *   share    point a frozen page at another page of equal content;
 *   events   a guest touching a reclaimed page is paused and an event
 *            arrives on a pollable fd; restore supplies the contents and
 *            wakes the guest;
 *   harvest  accessed/dirty information for the daemon's NRU clock;
 *   map_ro   read guest pages without changing their state.
 *
 * Two backends implement them. Xen (XENMEM_dex_op, dexc_open_xen)
 * and Linux userfaultfd ("uffd"): a guest is any process that keeps its
 * RAM in a memfd, registers a userfaultfd on its mapping and hands both to
 * the daemon over a Unix socket (dexc_guest_attach). What each primitive
 * costs and means on uffd is said at each function.
 *
 * Conventions. Every function returns 0 (or a count) on success and a
 * negative errno value on failure; errno itself is not part of the
 * interface. Batched calls take arrays of entries, each with its own result
 * code, and return the number of entries that succeeded; a negative return
 * means the call failed as a whole (bad arguments, the guest gone) and the
 * entries' results are not to be used. The library
 * never prints; install a logger with dexc_set_logger to see why something
 * was refused. A dexc_guest may be used by one thread at a time; distinct
 * handles may be used from distinct threads. Pages are 4 KiB and are named
 * by their guest frame number (gfn): page i of the guest's RAM.
 */
#ifndef DEXC_H
#define DEXC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DEXC_PAGE_SHIFT 12
#define DEXC_PAGE_SIZE  (1u << DEXC_PAGE_SHIFT)

typedef struct dexc_guest dexc_guest;           /* daemon side, one per guest */
typedef struct dexc_listener dexc_listener;     /* daemon side, uffd attach socket */
typedef struct dexc_mapping dexc_mapping;       /* a dexc_map_ro batch */
typedef struct dexc_attachment dexc_attachment; /* guest side */

/* ------------------------------------------------------------------ */
/* Page state (same numbers as Xen's XEN_DEX_STATE_*).                 */

enum dexc_state {
    DEXC_STATE_OTHER = 0,     /* not guest RAM (Xen: mmio, grant, ...) */
    DEXC_STATE_NORMAL = 1,    /* ordinary read/write page */
    DEXC_STATE_FROZEN = 2,    /* read-only to the guest, handle valid */
    DEXC_STATE_SHARED = 3,    /* shared; on uffd: reclaimed by dexc_share */
    DEXC_STATE_RECLAIMED = 4, /* no frame; the next access raises an event */
    DEXC_STATE_ABSENT = 5,    /* uffd only: never populated, reads as zeros */
};

/* One entry of a batched page call; the layout is Xen's xen_dex_page. */
struct dexc_page {
    uint64_t gfn;       /* in */
    uint64_t handle;    /* in: thaw, reclaim; out: freeze, query, restore */
    int32_t rc;         /* out: 0 or -errno for this entry */
    uint32_t state;     /* out: query (enum dexc_state) */
};

/* Per-entry result codes used throughout:
 *   -EINVAL   gfn outside the guest's RAM, or a malformed entry
 *   -EAGAIN   the handle is stale: the page was written (or thawed) since
 *             it was frozen, or it is not frozen at all
 *   -ENODATA  the page has no frame (reclaimed, shared on uffd, absent)
 *   -EBUSY    the page is mapped by dexc_map_ro
 *   -EEXIST   restore of a page that has a frame
 *   -EIO      the kernel did not free the frame (see dexc_reclaim)
 * and as a whole-call return:
 *   -ESRCH    the guest has gone away (see DEXC_EV_GONE)
 *   -EINVAL   bad arguments or flags */

/* ------------------------------------------------------------------ */
/* Library                                                             */

enum dexc_log_level {
    DEXC_LOG_ERROR = 0,
    DEXC_LOG_WARN = 1,
    DEXC_LOG_INFO = 2,
    DEXC_LOG_DEBUG = 3,
};

typedef void dexc_log_fn(void *ctx, int level, const char *msg);

/* Installs a logger for the whole library (NULL: silence, the default).
 * Messages explain refusals and anomalies; call it before any other dexc
 * function, it is not synchronised with them. */
void dexc_set_logger(dexc_log_fn *fn, void *ctx);

/* The library's version string, e.g. "0.1.0". */
const char *dexc_version(void);

/* Name of an enum dexc_state value ("frozen", ...), "?" if unknown. */
const char *dexc_state_name(uint32_t state);

/* ------------------------------------------------------------------ */
/* Opening guests (uffd backend)                                       */

/* What a uffd guest hands over. */
struct dexc_uffd_desc {
    int uffd;           /* the guest's userfaultfd, registered MISSING|WP
                           over [base, base + length) of its address space */
    int memfd;          /* the shmem file mapped MAP_SHARED there, offset 0 */
    int conn_fd;        /* connected socket to the guest, or -1; its hang-up
                           means the guest has gone */
    pid_t pid;          /* the guest process, or 0 if unknown */
    uint64_t base;      /* address of the RAM in the guest, page aligned */
    uint64_t length;    /* bytes, a non-zero multiple of DEXC_PAGE_SIZE */
    uint64_t features;  /* UFFD_FEATURE_* the guest negotiated */
    uint32_t uffd_flags; /* UFFD_USER_MODE_ONLY if the uffd was made so */
    const char *name;   /* for logs and dexc_get_info, may be NULL */
    uint32_t id;        /* caller's id for the guest */
};

/* dexc_open_uffd / dexc_accept flags */
#define DEXC_OPEN_GUARD_VIEW (1u << 0)
/* The daemon's read-only view of the guest memfd gets its own userfaultfd
 * in SIGBUS mode, so reading a page with no frame through a stale
 * dexc_map_ro pointer raises SIGBUS instead of silently allocating a zero
 * page in the hole (which would undo a reclaim: the guest would then read
 * zeros without a fault). A debugging aid: a guest that punches holes in
 * its own RAM (MADV_REMOVE) can then crash the daemon, so leave it off in
 * production, where the library's page states already keep dexc_map_ro
 * away from reclaimed pages. */

/* Opens a uffd guest from the descriptors it handed over. On success the
 * handle owns uffd, memfd and conn_fd; on failure the caller still does.
 * Checks that the memfd is a shmem file of at least `length` bytes, that
 * the guest (when pid is given) maps it shared over the range at offset 0
 * (/proc/PID/maps), and that the uffd covers the range in WP mode. Pages
 * already holding data are NORMAL, the others ABSENT. The kernel must
 * provide UFFD_FEATURE_MISSING_SHMEM and WP_HUGETLBFS_SHMEM (-EOPNOTSUPP).
 * Returns 0 and *out, or -errno. */
int dexc_open_uffd(const struct dexc_uffd_desc *desc, unsigned flags,
                   dexc_guest **out);

/* Opens Xen domain `domid` (an HVM or PVH guest with HAP, memory = maxmem,
 * no passthrough) from dom0. flags: 0. Needs the Difference Engine
 * hypervisor (CONFIG_MEM_DEX, see hypervisor/README.md): the primitives
 * are XENMEM_dex_op hypercalls, map_ro is a read-only foreign map, fault
 * events come from the domain's mem_paging vm_event ring (enabled here,
 * torn down by dexc_close), and copy-on-write ENOMEM events from its
 * sharing ring. On a hypervisor with only mem_sharing (no MEM_DEX) the
 * handle falls back to XENMEM_sharing_op: freeze, share, thaw, query (the
 * library's own view) and map_ro work, reclaim and harvest fail with
 * -EOPNOTSUPP. Returns 0 and *out, or -errno: -ENOSYS (no sharing in the
 * hypervisor), -ESRCH (no such domain), -EOPNOTSUPP (a PV guest), -EBUSY
 * and others from enabling the rings (EMLINK passthrough, EXDEV
 * populate-on-demand, ENODEV no HAP). Only built where libxen-dev was
 * found (HAVE_XEN in config.h); available since DEXC_1.1. */
int dexc_open_xen(uint32_t domid, unsigned flags, dexc_guest **out);

/* Creates the Unix socket (SOCK_SEQPACKET) guests attach to. A stale
 * socket file at `path` is replaced; one a live daemon answers on is not
 * (-EADDRINUSE). The file is created under the caller's umask and removed
 * by dexc_listener_close. flags: 0. */
int dexc_listen(const char *path, unsigned flags, dexc_listener **out);

/* Pollable fd (readable when dexc_accept has something to do). */
int dexc_listener_fd(const dexc_listener *l);

/* Non-blocking: accepts pending connections and completes at most one
 * attach. Returns 1 and *out (opened with open_flags) when a guest has
 * attached, 0 when nothing is complete yet, or -errno when a connection
 * was refused (malformed message, wrong descriptors, checks failed: the
 * connection is answered with the error and closed) or accept failed.
 * The listener stays usable after any return; call again until 0.
 * A connection that closes without a word is dropped quietly, one that
 * sends nothing within 5 s is dropped. */
int dexc_accept(dexc_listener *l, unsigned open_flags, dexc_guest **out);

/* Closes the socket, drops pending connections, unlinks the path. */
void dexc_listener_close(dexc_listener *l);

/* Releases the guest. On a live guest it first un-write-protects every
 * page (waking writers) and, when no page is left without a frame, hands
 * the memory back (the guest then runs on its own, with no faults) and
 * returns 0. If pages are still reclaimed or shared it cannot: their
 * contents live only in the daemon, so the guest's threads that touch them
 * will block until the guest is killed; it returns -EBUSY. Restore every
 * page first (a daemon shutting down must). On a gone guest it returns 0.
 * The handle is freed in every case. */
int dexc_close(dexc_guest *g);

/* Snapshot of a guest's identity and counters. */
struct dexc_info {
    uint32_t id;
    int32_t pid;
    uint64_t nr_pages;
    const char *backend;        /* "uffd"; valid while the handle is */
    const char *name;           /* valid while the handle is */
    uint32_t flags;             /* DEXC_INFO_* */
    uint32_t reserved0;
    /* pages in each state now */
    uint64_t normal, frozen, shared, reclaimed, absent;
    /* events since open */
    uint64_t faults;            /* fault events delivered (DEXC_EV_FAULT) */
    uint64_t thaws;             /* frozen pages thawed by a guest write */
    uint64_t wp_faults;         /* write-protect faults served */
    uint64_t zero_fills;        /* absent pages populated with zeros */
    uint64_t reserved[8];
};
#define DEXC_INFO_GONE           (1u << 0) /* the guest has gone away */
#define DEXC_INFO_USER_MODE_ONLY (1u << 1) /* uffd sees user-mode faults only:
                                              guest syscalls touching frozen or
                                              reclaimed pages fail with EFAULT */
#define DEXC_INFO_GUARD_VIEW     (1u << 2) /* DEXC_OPEN_GUARD_VIEW is active */

/* Fills *info. Returns 0 or -EINVAL. */
int dexc_get_info(const dexc_guest *g, struct dexc_info *info);

/* ------------------------------------------------------------------ */
/* Reading guest memory                                                */

/* Maps n pages read-only: ptrs[i] points at page gfns[i], or is NULL with
 * rc[i] < 0. Nothing changes for the guest. A page without a frame is
 * refused (-ENODATA) because reading it would re-create it; an ABSENT page
 * maps to a shared page of zeros, which is what the guest would read.
 * While mapped a page cannot be reclaimed or shared (-EBUSY), as on Xen
 * where a foreign mapping holds a reference to the frame. The contents of
 * a page that is not frozen can change under the reader. Returns the
 * number of pages mapped and *out (release it with dexc_unmap, even when
 * no page was mapped), or -errno with *out = NULL.
 * uffd: the daemon maps the guest memfd once, PROT_READ; this call only
 * checks states and computes addresses. */
int dexc_map_ro(dexc_guest *g, const uint64_t *gfns, size_t n,
                const void **ptrs, int *rc, dexc_mapping **out);

/* Releases a mapping of guest g; its pointers become invalid. NULL is
 * ignored. Release every mapping before dexc_close. */
void dexc_unmap(dexc_guest *g, dexc_mapping *m);

/* ------------------------------------------------------------------ */
/* Primitives                                                          */

/* Write-protects pages and returns a handle per page (pages[i].handle).
 * Freezing a frozen page returns its current handle. A handle is unique
 * within the guest and never 0; it stays valid until the guest writes the
 * page, the daemon thaws it, or the frame is reclaimed or restored.
 * Per entry: 0, -EINVAL, -ENODATA (no frame: nothing to freeze).
 * uffd: UFFDIO_WRITEPROTECT on each run of consecutive gfns. A guest write
 * to a frozen page blocks in the kernel until the daemon's next call that
 * reads events (dexc_next_event, dexc_reclaim, dexc_share, dexc_query,
 * dexc_harvest): the library then marks the page NORMAL, drops its handle,
 * queues a DEXC_EV_THAWED event and un-protects the page, which wakes the
 * writer. A daemon must therefore serve its event fd promptly. */
int dexc_freeze(dexc_guest *g, struct dexc_page *pages, size_t n);

/* Makes frozen pages writable again. pages[i].handle must be the handle
 * from freeze (-EAGAIN if stale). uffd: the page stays write-protected
 * until the guest's next write, which costs one fault and is recorded as
 * dirty for dexc_harvest. Per entry: 0, -EINVAL, -EAGAIN, -ENODATA. */
int dexc_thaw(dexc_guest *g, struct dexc_page *pages, size_t n);

/* Reports each page's state (pages[i].state) and, for a frozen page, its
 * handle (0 otherwise). Guest writes already waiting are taken into
 * account first. Per entry: 0 or -EINVAL. */
int dexc_query(dexc_guest *g, struct dexc_page *pages, size_t n);

/* Frees the frames of frozen, unchanged pages: each becomes RECLAIMED and
 * its next access by the guest raises a DEXC_EV_FAULT. The daemon must
 * already hold the contents (read through dexc_map_ro while frozen).
 * Writes the guest already attempted are taken into account first, so a
 * page written after freeze fails with -EAGAIN and keeps the guest's data.
 * Per entry: 0, -EINVAL, -EAGAIN, -ENODATA, -EBUSY (mapped), -EIO.
 * uffd: fallocate(PUNCH_HOLE | KEEP_SIZE) on the memfd for each run of
 * consecutive gfns, then lseek(SEEK_DATA) proves the frame is gone; -EIO
 * when it is not (a huge folio that could not be split: the guest must
 * keep MADV_NOHUGEPAGE, as dexc_guest_attach does). */
int dexc_reclaim(dexc_guest *g, struct dexc_page *pages, size_t n);

/* dexc_restore flags */
#define DEXC_RESTORE_ZERO   (1u << 0) /* data is NULL: restore zeros */
#define DEXC_RESTORE_FROZEN (1u << 1) /* restore write-protected: the page
                                         comes back FROZEN with a new handle
                                         in pages[i].handle */

/* Gives reclaimed (or shared, or absent) pages their contents and wakes
 * the guest threads waiting for them. data holds n * DEXC_PAGE_SIZE bytes,
 * page i at data + i * DEXC_PAGE_SIZE (NULL with DEXC_RESTORE_ZERO). The
 * page becomes NORMAL (or FROZEN). Per entry: 0, -EINVAL, -EEXIST (the page
 * has a frame), other -errno from the kernel.
 * uffd: UFFDIO_COPY, which fills the memfd's page and wakes the waiters.
 * When the kernel reports the page already present (a racing fill) the
 * entry counts as done, the waiters are woken (UFFDIO_WAKE) and the page's
 * contents are whatever filled it. A page restored after a read fault is
 * restored write-protected, so a later write is still seen by harvest. */
int dexc_restore(dexc_guest *g, struct dexc_page *pages, size_t n,
                 const void *data, unsigned flags);

/* One entry of dexc_share; layout fixed for the Xen backend. */
struct dexc_share {
    uint64_t gfn;           /* in: client page, frozen */
    uint64_t handle;        /* in: its handle */
    uint64_t src_gfn;       /* in: source page in the source guest, frozen */
    uint64_t src_handle;    /* in: its handle */
    uint64_t canonical;     /* in: the daemon's id for the shared contents,
                               returned in the fault event (uffd) */
    int32_t rc;             /* out */
    uint32_t pad;           /* must be 0 */
};

/* Shares client pages (in cli) with source pages of equal content (in
 * src, which may be cli). The daemon compares contents while both pages
 * are frozen; the handles prove neither changed since. Per entry: 0,
 * -EINVAL, -EAGAIN (a handle is stale), -ENODATA, -EBUSY, -EIO.
 * Xen: the client's gfn is pointed at the source frame (copy on write).
 * uffd: processes cannot alias frames, so this is honestly a reclaim: the
 * client page loses its frame and becomes SHARED, and its next access
 * raises DEXC_EV_FAULT with DEXC_EVF_SHARED and `canonical`; the daemon
 * restores it from its own copy of the contents (a guest write to the
 * source page does not change what the client must get back). src may be
 * NULL: the client then shares only with the daemon's canonical copy (the
 * usual case for zero pages); on Xen that is a reclaim of the client page
 * (it becomes RECLAIMED and its next access raises DEXC_EV_FAULT, without
 * DEXC_EVF_SHARED: the daemon's record says what to restore). The source
 * stays frozen. */
int dexc_share(dexc_guest *cli, dexc_guest *src, struct dexc_share *shares,
               size_t n, unsigned flags);

/* dexc_harvest bits (same as XEN_DEX_AD_*) and flags */
#define DEXC_AD_ACCESSED    (1u << 0)
#define DEXC_AD_DIRTY       (1u << 1)
#define DEXC_HARVEST_CLEAR  (1u << 0) /* start a new period after reading */

/* Accessed/dirty bits for gfns [first_gfn, first_gfn + n), one byte per
 * page in bits (which may be NULL when only clearing), for the NRU clock.
 * With DEXC_HARVEST_CLEAR the bits are reset and a new period starts.
 * Xen: the EPT A/D bits. uffd reports exactly this:
 *   DIRTY     the page was written since the last clearing harvest. The
 *             clear write-protects the resident pages of the range (one
 *             UFFDIO_WRITEPROTECT per run); the first write afterwards
 *             costs the guest one fault through the daemon. A write to a
 *             page without frame (fault event) counts too.
 *   ACCESSED  DIRTY, or the page was faulted in since the last clear (a
 *             refault of a reclaimed page, or first touch of an absent
 *             one). Reads of resident pages are invisible to userfaultfd
 *             and are not reported.
 *   A page whose writes were not tracked (never cleared since open, or
 *   made writable without a fault) reports ACCESSED|DIRTY: unknown counts
 *   as used. Returns 0 or -errno. */
int dexc_harvest(dexc_guest *g, uint64_t first_gfn, size_t n, uint8_t *bits,
                 unsigned flags);

/* ------------------------------------------------------------------ */
/* Events                                                              */

enum dexc_event_type {
    DEXC_EV_FAULT = 1,  /* the guest touched a page without frame: call
                           dexc_restore for gfn; the guest waits until then */
    DEXC_EV_THAWED = 2, /* a guest write thawed a frozen page: its handle
                           is stale (informational, nothing to do) */
    DEXC_EV_GONE = 3,   /* the guest has exited or detached: close it */
};

#define DEXC_EVF_WRITE  (1u << 0) /* the fault is a write */
#define DEXC_EVF_SHARED (1u << 1) /* the page was shared: see canonical */

struct dexc_event {
    uint32_t type;          /* enum dexc_event_type */
    uint32_t flags;         /* DEXC_EVF_* */
    uint64_t gfn;
    uint64_t canonical;     /* DEXC_EVF_SHARED: the id given to dexc_share */
    uint32_t tid;           /* faulting thread, 0 if unknown */
    uint32_t pad;
};

/* A pollable fd, readable while dexc_next_event has an event to return.
 * Owned by the handle. */
int dexc_event_fd(const dexc_guest *g);

/* Non-blocking: the next event. Returns 1 and *ev, 0 when there is none,
 * or -errno. Write faults on frozen pages and first touches of absent
 * pages (restored as zeros) are served inside this call and not returned
 * as faults. Several threads faulting on one page make one event, and an
 * event whose page got a frame meanwhile is dropped. Once the guest has
 * gone, every call returns DEXC_EV_GONE and every primitive -ESRCH.
 * uffd: gone = its socket hung up or its process exited (pidfd). If the
 * daemon itself dies, guest threads touching pages without frames (or
 * writing frozen ones) block until the guest is killed: only the daemon
 * held their contents. */
int dexc_next_event(dexc_guest *g, struct dexc_event *ev);

/* ------------------------------------------------------------------ */
/* Guest side (uffd)                                                   */

/* dexc_guest_attach flags */
#define DEXC_ATTACH_POPULATE       (1u << 0) /* allocate every page (zeros)
                                                before handing over, as a VM's
                                                RAM is; else untouched pages
                                                are ABSENT and each first
                                                touch costs a fault */
#define DEXC_ATTACH_USER_MODE_ONLY (1u << 1) /* force UFFD_USER_MODE_ONLY */

/* Creates `bytes` of RAM (a multiple of DEXC_PAGE_SIZE) for the calling
 * process and hands it to the daemon listening on socket_path: a memfd
 * (MFD_CLOEXEC) mapped MAP_SHARED read/write with MADV_NOHUGEPAGE, a
 * userfaultfd registered on it in MISSING|WP modes, sent with the base,
 * length, pid and name over the socket (SCM_RIGHTS); waits up to 30 s for
 * the daemon's answer. Returns 0 with *mem and *out, or -errno (the
 * daemon's refusal, -ETIMEDOUT, -EOPNOTSUPP without the kernel features).
 * The userfaultfd is a full one when the process may create it (root,
 * CAP_SYS_PTRACE, /dev/userfaultfd, vm.unprivileged_userfaultfd=1), else
 * a user-mode-only one: then the guest's own syscalls that touch frozen or
 * reclaimed pages fail with EFAULT instead of waiting.
 * The process then uses *mem as ordinary memory from any thread; accesses
 * the daemon must serve simply take longer. Its child processes do not
 * inherit the mapping (MADV_DONTFORK). It must not munmap, mremap or
 * mprotect it, nor write the memfd other than through *mem, nor let a
 * device write it through a long-term pin (vfio, RDMA, io_uring fixed
 * buffers): such writes bypass write protection, so the daemon could
 * reclaim a page under them. */
int dexc_guest_attach(const char *socket_path, size_t bytes, const char *name,
                      unsigned flags, void **mem, dexc_attachment **out);

/* Where the daemon stands, as far as the guest can tell. */
enum dexc_daemon_state {
    DEXC_DAEMON_ATTACHED = 0,  /* serving faults */
    DEXC_DAEMON_RELEASED = 1,  /* closed cleanly: every page is back in the
                                  guest and nothing traps any more */
    DEXC_DAEMON_LOST = 2,      /* went away holding pages: touching them
                                  blocks forever */
};

/* Non-blocking check of the daemon's state (enum dexc_daemon_state). */
int dexc_guest_daemon_state(dexc_attachment *a);

/* Pollable fd: readable (or hung up) when the daemon state may have
 * changed. Owned by the attachment. */
int dexc_attachment_fd(const dexc_attachment *a);

/* The id the daemon gave this guest. */
uint32_t dexc_attachment_id(const dexc_attachment *a);

/* Unmaps the RAM and leaves the daemon (which sees DEXC_EV_GONE). */
int dexc_guest_detach(dexc_attachment *a);

#ifdef __cplusplus
}
#endif

#endif /* DEXC_H */

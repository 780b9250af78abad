/*
 * uffd.c - the Linux userfaultfd backend.
 *
 * A guest's RAM is a memfd it maps MAP_SHARED and has registered on a
 * userfaultfd in MISSING|WP modes; the daemon holds both descriptors. The
 * kernel tracks frames (the memfd's pages) and write protection (the
 * guest's PTEs); the library keeps everything else per page: the state the
 * daemon sees, the handle of a frozen page, the accessed/dirty bits, and
 * how many dexc_map_ro mappings refer to it.
 *
 * The library's page state must be exact because one mistake is silent
 * data loss: a hole punched in the memfd that nobody restores reads as
 * zeros as soon as anything but the guest's registered mapping touches it
 * (the daemon's view included), or if the range is unregistered.
 *
 * Invariants that keep it so:
 *  - a frozen page's frame changes only through the library: the guest's
 *    write blocks in the kernel (WP fault) until the library has turned
 *    the page NORMAL and dropped its handle, and only then un-protects it;
 *    a write still blocked when the frame is punched retries as a MISSING
 *    fault and sees the restored contents before writing;
 *  - reclaim reads every pending event first, so a write the guest has
 *    already attempted makes it fail with -EAGAIN;
 *  - a MISSING fault on a page the library believes present is either
 *    stale (UFFDIO_COPY says EEXIST: just wake) or a hole the guest made
 *    itself (MADV_REMOVE: zeros are its contents), never a reclaimed page;
 *  - a NORMAL page that is not write-protected is DIRTY or UNTRACKED, so
 *    harvest never under-reports a write.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <linux/userfaultfd.h>

#include "private.h"
#include "proto.h"

#define PAGE DEXC_PAGE_SIZE

/* Per-page flags */
enum {
    PF_WP = 1 << 0,         /* write-protected in the guest's page table */
    PF_DIRTY = 1 << 1,      /* a write was seen since the last clear */
    PF_ACCESSED = 1 << 2,   /* a fault was seen since the last clear */
    PF_UNTRACKED = 1 << 3,  /* writes since the last clear may be unseen */
    PF_QUEUED = 1 << 4,     /* a FAULT event for it is in the queue */
    PF_WFAULT = 1 << 5,     /* a write fault waits for it: restore writable */
};

struct upage {
    uint8_t state;          /* enum dexc_state */
    uint8_t flags;          /* PF_* */
    uint8_t maps;           /* dexc_map_ro references */
    uint8_t pad;
};

#define NSTATES (DEXC_STATE_ABSENT + 1)
#define MAX_RUN 512             /* pages per hole punch */

struct uguest {
    dexc_guest g;           /* first: the core's part */
    int uffd;
    int memfd;
    int conn;
    int pidfd;
    int epfd;
    int view_uffd;
    uint64_t base;
    uint64_t length;
    const uint8_t *view;    /* the memfd, PROT_READ, MAP_SHARED */
    struct upage *pg;
    uint64_t *word;         /* FROZEN: handle; SHARED: canonical id */
    uint64_t next_handle;
    uint64_t nstate[NSTATES];
    uint8_t *bounce;        /* page-aligned copy source for UFFDIO_COPY */
};

static struct uguest *UG(dexc_guest *g)
{
    return DEXC_CONTAINER(g, struct uguest, g);
}

static const struct uguest *CUG(const dexc_guest *g)
{
    return DEXC_CONTAINER(g, struct uguest, g);
}

static void set_state(struct uguest *u, uint64_t gfn, uint8_t st)
{
    u->nstate[u->pg[gfn].state]--;
    u->pg[gfn].state = st;
    u->nstate[st]++;
}

static bool has_frame(uint8_t st)
{
    return st == DEXC_STATE_NORMAL || st == DEXC_STATE_FROZEN;
}

static bool lost_frame(uint8_t st)
{
    return st == DEXC_STATE_RECLAIMED || st == DEXC_STATE_SHARED;
}

/* An ioctl on the guest's userfaultfd failed: ESRCH means its mm is gone,
 * ENOENT that the registered range is (unmapped, or the process is exiting);
 * both end the guest as far as we are concerned. */
static int uffd_error(struct uguest *u, const char *what, uint64_t gfn)
{
    int e = errno;

    if (e == ESRCH || e == ENOENT) {
        if (!u->g.gone)
            dxi_log(DEXC_LOG_INFO, "guest %u (%s): %s at gfn %" PRIu64
                    ": %s; treating it as gone", u->g.id, u->g.name, what,
                    gfn, strerror(e));
        u->g.gone = true;
        return -ESRCH;
    }
    dxi_log(DEXC_LOG_ERROR, "guest %u (%s): %s at gfn %" PRIu64 ": %s",
            u->g.id, u->g.name, what, gfn, strerror(e));
    return -e;
}

static int uf_protect(struct uguest *u, uint64_t gfn, uint64_t count,
                      bool protect)
{
    struct uffdio_writeprotect wp = {
        .range = { .start = u->base + gfn * PAGE, .len = count * PAGE },
        .mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
    };

    for (int tries = 0; ioctl(u->uffd, UFFDIO_WRITEPROTECT, &wp); tries++)
        if (errno != EAGAIN || tries > 1000)
            return uffd_error(u, protect ? "write-protect" : "un-protect",
                              gfn);
    return 0;
}

static int uf_wake(struct uguest *u, uint64_t gfn)
{
    struct uffdio_range r = { .start = u->base + gfn * PAGE, .len = PAGE };

    if (ioctl(u->uffd, UFFDIO_WAKE, &r))
        return uffd_error(u, "wake", gfn);
    return 0;
}

/* Fills a missing page and wakes its waiters. Returns 0, -EEXIST when the
 * page is already present, or -errno. */
static int uf_copy(struct uguest *u, uint64_t gfn, const void *src, bool wp)
{
    struct uffdio_copy c = {
        .dst = u->base + gfn * PAGE,
        .len = PAGE,
        .mode = wp ? UFFDIO_COPY_MODE_WP : 0,
    };

    /* The kernel wants a page-aligned source. */
    if ((uintptr_t)src % PAGE) {
        memcpy(u->bounce, src, PAGE);
        src = u->bounce;
    }
    c.src = (uintptr_t)src;
    for (int tries = 0;; tries++) {
        c.copy = 0;
        if (ioctl(u->uffd, UFFDIO_COPY, &c) == 0)
            return 0;
        if (errno == EEXIST)
            return -EEXIST;
        /* EAGAIN: the guest's mm is changing (fork, remap); retry. */
        if (errno != EAGAIN || tries > 1000)
            return uffd_error(u, "copy", gfn);
    }
}

/* Whether the memfd holds data at page gfn (the kernel's view). */
static bool memfd_has_page(struct uguest *u, uint64_t gfn)
{
    off_t off = (off_t)(gfn * PAGE);

    return lseek(u->memfd, off, SEEK_DATA) == off;
}

/* ------------------------------------------------------------------ */
/* Fault service                                                       */

static void queue_thawed(struct uguest *u, uint64_t gfn, uint32_t tid)
{
    struct dexc_event ev = { .type = DEXC_EV_THAWED, .gfn = gfn, .tid = tid };

    u->g.ctr.thaws++;
    if (dxi_evq_push(&u->g, &ev))
        dxi_log(DEXC_LOG_WARN, "guest %u: out of memory, THAWED event for "
                "gfn %" PRIu64 " dropped", u->g.id, gfn);
}

static void wp_fault(struct uguest *u, uint64_t gfn, uint32_t tid)
{
    struct upage *p = &u->pg[gfn];

    if (lost_frame(p->state) && !memfd_has_page(u, gfn)) {
        /* The write blocked before the frame was reclaimed and has not
         * happened; woken, it retries as a MISSING fault. */
        dxi_log(DEXC_LOG_DEBUG, "guest %u: write to gfn %" PRIu64 " waited "
                "across its reclaim", u->g.id, gfn);
        uf_wake(u, gfn);
        return;
    }
    if (!has_frame(p->state)) {
        /* A frame we did not know about (an ABSENT page the guest filled
         * by other means, or a racing fill of a reclaimed one): whatever
         * is there is the page now. */
        dxi_log(DEXC_LOG_WARN, "guest %u: write fault on %s gfn %" PRIu64
                " that has a frame", u->g.id, dexc_state_name(p->state),
                gfn);
        set_state(u, gfn, DEXC_STATE_NORMAL);
        p->flags &= (uint8_t)~(PF_QUEUED | PF_WFAULT);
    }
    if (p->state == DEXC_STATE_FROZEN) {
        set_state(u, gfn, DEXC_STATE_NORMAL);
        u->word[gfn] = 0;
        queue_thawed(u, gfn, tid);
    }
    p->flags = (uint8_t)((p->flags | PF_DIRTY | PF_ACCESSED) & ~PF_WP);
    u->g.ctr.wp_faults++;
    uf_protect(u, gfn, 1, false);   /* also wakes the writer */
}

static void missing_fault(struct uguest *u, uint64_t gfn, bool write,
                          uint32_t tid)
{
    struct upage *p = &u->pg[gfn];
    int r;

    p->flags |= PF_ACCESSED | (write ? PF_DIRTY : 0);
    if (lost_frame(p->state)) {
        struct dexc_event ev = {
            .type = DEXC_EV_FAULT,
            .flags = (write ? DEXC_EVF_WRITE : 0u) |
                     (p->state == DEXC_STATE_SHARED ? DEXC_EVF_SHARED : 0u),
            .gfn = gfn,
            .canonical = p->state == DEXC_STATE_SHARED ? u->word[gfn] : 0,
            .tid = tid,
        };

        if (write)
            p->flags |= PF_WFAULT;
        if (p->flags & PF_QUEUED)
            return;             /* one event per page: restore wakes all */
        if (dxi_evq_push(&u->g, &ev)) {
            /* Cannot queue it: wake the thread, it faults again later. */
            dxi_log(DEXC_LOG_WARN, "guest %u: out of memory queueing the "
                    "fault on gfn %" PRIu64, u->g.id, gfn);
            uf_wake(u, gfn);
            return;
        }
        p->flags |= PF_QUEUED;
        return;
    }

    /* Never populated, or a hole the guest made itself (MADV_REMOVE), or
     * a stale event for a page that has been restored since: the contents
     * are zeros, and UFFDIO_COPY tells the last case apart (EEXIST). A
     * read leaves the page write-protected so its first write is seen. */
    r = uf_copy(u, gfn, dxi_zero_page, !write);
    if (r == -EEXIST) {
        if (p->state == DEXC_STATE_ABSENT) {
            set_state(u, gfn, DEXC_STATE_NORMAL);
            p->flags |= PF_UNTRACKED;
            p->flags &= (uint8_t)~PF_WP;
        }
        uf_wake(u, gfn);
        return;
    }
    if (r) {
        uf_wake(u, gfn);
        return;
    }
    u->g.ctr.zero_fills++;
    if (p->state == DEXC_STATE_FROZEN) {
        /* The guest removed a frozen page's frame itself: its handle no
         * longer proves anything. */
        u->word[gfn] = 0;
        queue_thawed(u, gfn, tid);
    }
    if (p->state != DEXC_STATE_ABSENT) {
        dxi_log(DEXC_LOG_DEBUG, "guest %u: gfn %" PRIu64 " lost its frame "
                "without the daemon (MADV_REMOVE?): refilled with zeros",
                u->g.id, gfn);
        p->flags |= PF_DIRTY;
    }
    set_state(u, gfn, DEXC_STATE_NORMAL);
    if (write)
        p->flags &= (uint8_t)~PF_WP;
    else
        p->flags |= PF_WP;
}

/* Reads and serves every event the kernel has for this guest. */
static int drain(struct uguest *u)
{
    struct uffd_msg msg[64];

    if (u->g.gone)
        return 0;
    for (;;) {
        ssize_t r = read(u->uffd, msg, sizeof msg);
        size_t k;

        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return 0;
            return -errno;
        }
        k = (size_t)r / sizeof msg[0];
        for (size_t i = 0; i < k && !u->g.gone; i++) {
            const struct uffd_msg *m = &msg[i];
            uint64_t addr, gfn;

            if (m->event != UFFD_EVENT_PAGEFAULT) {
                dxi_log(DEXC_LOG_WARN, "guest %u: unexpected userfaultfd "
                        "event %u ignored", u->g.id, m->event);
                continue;
            }
            addr = m->arg.pagefault.address;
            if (addr < u->base || addr - u->base >= u->length) {
                dxi_log(DEXC_LOG_WARN, "guest %u: fault at 0x%" PRIx64
                        " outside its RAM ignored", u->g.id, addr);
                continue;
            }
            gfn = (addr - u->base) / PAGE;
            if (m->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP)
                wp_fault(u, gfn, m->arg.pagefault.feat.ptid);
            else
                missing_fault(u, gfn, m->arg.pagefault.flags &
                              UFFD_PAGEFAULT_FLAG_WRITE,
                              m->arg.pagefault.feat.ptid);
        }
        if (k < sizeof msg / sizeof msg[0])
            return 0;
    }
}

/* The guest is gone when its socket hangs up or its process exits. */
static void check_gone(struct uguest *u)
{
    struct pollfd pf[2];
    nfds_t n = 0;

    if (u->g.gone)
        return;
    if (u->conn >= 0)
        pf[n++] = (struct pollfd){ .fd = u->conn, .events = POLLIN | POLLRDHUP };
    if (u->pidfd >= 0)
        pf[n++] = (struct pollfd){ .fd = u->pidfd, .events = POLLIN };
    if (!n || poll(pf, n, 0) <= 0)
        return;
    for (nfds_t i = 0; i < n; i++)
        if (pf[i].revents) {
            /* Once attached a guest sends nothing: data, hang-up and
             * process exit all mean it has left. */
            dxi_log(DEXC_LOG_INFO, "guest %u (%s) has gone (%s)", u->g.id,
                    u->g.name, pf[i].fd == u->conn ? "socket closed"
                                                   : "process exited");
            u->g.gone = true;
            return;
        }
}

static int u_poll_events(dexc_guest *g)
{
    struct uguest *u = UG(g);
    int r = drain(u);

    return u->g.gone ? 0 : r;
}

static void u_check_gone(dexc_guest *g)
{
    check_gone(UG(g));
}

static bool u_event_current(dexc_guest *g, struct dexc_event *ev)
{
    struct uguest *u = UG(g);
    struct upage *p;

    if (ev->type != DEXC_EV_FAULT)
        return true;
    p = &u->pg[ev->gfn];
    p->flags &= (uint8_t)~PF_QUEUED;
    if (!lost_frame(p->state))
        return false;
    /* A write by another thread since the event was queued. */
    if (p->flags & PF_WFAULT)
        ev->flags |= DEXC_EVF_WRITE;
    return true;
}

/* ------------------------------------------------------------------ */
/* Primitives                                                          */

static bool gfn_ok(const struct uguest *u, uint64_t gfn)
{
    return gfn < u->g.nr_pages;
}

static int u_freeze(struct uguest *u, struct dexc_page *pages, size_t n)
{
    int ok = 0;

    for (size_t i = 0; i < n;) {
        uint64_t gfn = pages[i].gfn;
        size_t j;
        bool all_wp;
        int r;

        pages[i].state = 0;
        if (!gfn_ok(u, gfn)) {
            pages[i++].rc = -EINVAL;
            continue;
        }
        if (u->pg[gfn].state == DEXC_STATE_FROZEN) {
            pages[i].handle = u->word[gfn];
            pages[i++].rc = 0;
            ok++;
            continue;
        }
        if (u->pg[gfn].state != DEXC_STATE_NORMAL) {
            pages[i].handle = 0;
            pages[i++].rc = -ENODATA;
            continue;
        }
        /* One ioctl for each run of consecutive NORMAL gfns. */
        all_wp = u->pg[gfn].flags & PF_WP;
        for (j = i + 1; j < n; j++) {
            uint64_t next = pages[j].gfn;

            if (next != pages[j - 1].gfn + 1 || !gfn_ok(u, next) ||
                u->pg[next].state != DEXC_STATE_NORMAL)
                break;
            all_wp = all_wp && (u->pg[next].flags & PF_WP);
        }
        /* Pages a harvest already protected need no ioctl. */
        r = all_wp ? 0 : uf_protect(u, gfn, j - i, true);
        for (; i < j; i++) {
            pages[i].state = 0;
            pages[i].rc = r;
            pages[i].handle = 0;
            if (r)
                continue;
            gfn = pages[i].gfn;
            set_state(u, gfn, DEXC_STATE_FROZEN);
            u->pg[gfn].flags |= PF_WP;
            u->word[gfn] = pages[i].handle = ++u->next_handle;
            ok++;
        }
        if (r == -ESRCH)
            return -ESRCH;
    }
    return ok;
}

static int u_thaw(struct uguest *u, struct dexc_page *pages, size_t n)
{
    int ok = 0;

    for (size_t i = 0; i < n; i++) {
        uint64_t gfn = pages[i].gfn;

        pages[i].state = 0;
        if (!gfn_ok(u, gfn))
            pages[i].rc = -EINVAL;
        else if (!has_frame(u->pg[gfn].state))
            pages[i].rc = -ENODATA;
        else if (u->pg[gfn].state != DEXC_STATE_FROZEN ||
                 u->word[gfn] != pages[i].handle)
            pages[i].rc = -EAGAIN;
        else {
            /* Left write-protected: the next write is one fault, and
             * harvest sees it. */
            set_state(u, gfn, DEXC_STATE_NORMAL);
            u->word[gfn] = 0;
            pages[i].rc = 0;
            ok++;
        }
    }
    return ok;
}

static int u_query(struct uguest *u, struct dexc_page *pages, size_t n)
{
    int ok = 0;

    for (size_t i = 0; i < n; i++) {
        uint64_t gfn = pages[i].gfn;

        if (!gfn_ok(u, gfn)) {
            pages[i].rc = -EINVAL;
            pages[i].state = DEXC_STATE_OTHER;
            pages[i].handle = 0;
            continue;
        }
        pages[i].state = u->pg[gfn].state;
        pages[i].handle = pages[i].state == DEXC_STATE_FROZEN ? u->word[gfn]
                                                              : 0;
        pages[i].rc = 0;
        ok++;
    }
    return ok;
}

/* Frees the frames of gfns [gfn, gfn + count) and proves it. Sets rc[k]
 * per page: 0, or -EIO for a page still holding data, or -errno. */
static void punch(struct uguest *u, uint64_t gfn, uint64_t count,
                  int32_t *rc)
{
    off_t off = (off_t)(gfn * PAGE), len = (off_t)(count * PAGE);
    off_t data;

    if (fallocate(u->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                  off, len)) {
        int e = errno;

        dxi_log(DEXC_LOG_ERROR, "guest %u: punching gfns %" PRIu64 "+%"
                PRIu64 ": %s", u->g.id, gfn, count, strerror(e));
        for (uint64_t k = 0; k < count; k++)
            rc[k] = -e;
        return;
    }
    data = lseek(u->memfd, off, SEEK_DATA);
    for (uint64_t k = 0; k < count; k++)
        rc[k] = 0;
    if (data < 0 || data >= off + len)
        return;
    /* Some frame survived (a huge folio that could not be split): find
     * which; those pages are not reclaimed. */
    for (uint64_t k = 0; k < count; k++)
        if (memfd_has_page(u, gfn + k)) {
            dxi_log(DEXC_LOG_ERROR, "guest %u: gfn %" PRIu64 " still has a "
                    "frame after the hole punch (huge page?)", u->g.id,
                    gfn + k);
            rc[k] = -EIO;
        }
}

/* The frame of a frozen page went away: now `st`, with `word`. */
static void after_punch(struct uguest *u, uint64_t gfn, int32_t rc,
                        uint8_t st, uint64_t word)
{
    struct upage *p = &u->pg[gfn];

    if (rc == -EIO) {
        /* Punched but not freed: the range may have been zeroed. Nothing
         * certain can be said of it but that the handle is dead. */
        set_state(u, gfn, DEXC_STATE_NORMAL);
        u->word[gfn] = 0;
        p->flags |= PF_UNTRACKED;
        return;
    }
    if (rc)
        return;
    set_state(u, gfn, st);
    u->word[gfn] = word;
    p->flags &= (uint8_t)~(PF_WP | PF_QUEUED | PF_WFAULT);
}

static int32_t reclaim_check(struct uguest *u, uint64_t gfn, uint64_t handle)
{
    if (!gfn_ok(u, gfn))
        return -EINVAL;
    if (!has_frame(u->pg[gfn].state))
        return -ENODATA;
    if (u->pg[gfn].state != DEXC_STATE_FROZEN || u->word[gfn] != handle)
        return -EAGAIN;
    if (u->pg[gfn].maps)
        return -EBUSY;
    return 0;
}

static int u_reclaim(struct uguest *u, struct dexc_page *pages, size_t n)
{
    int ok = 0, r;

    /* Writes already attempted must thaw their pages before we decide. */
    r = drain(u);
    if (u->g.gone)
        return -ESRCH;
    if (r)
        return r;
    for (size_t i = 0; i < n;) {
        size_t j;

        pages[i].state = 0;
        pages[i].rc = reclaim_check(u, pages[i].gfn, pages[i].handle);
        if (pages[i].rc) {
            i++;
            continue;
        }
        for (j = i + 1; j < n && j - i < MAX_RUN; j++) {
            if (pages[j].gfn != pages[j - 1].gfn + 1)
                break;
            pages[j].state = 0;
            pages[j].rc = reclaim_check(u, pages[j].gfn, pages[j].handle);
            if (pages[j].rc)
                break;
        }
        {
            int32_t rcs[MAX_RUN];

            punch(u, pages[i].gfn, j - i, rcs);
            for (size_t k = i; k < j; k++) {
                pages[k].rc = rcs[k - i];
                after_punch(u, pages[k].gfn, pages[k].rc,
                            DEXC_STATE_RECLAIMED, 0);
                if (!pages[k].rc) {
                    pages[k].handle = 0;
                    ok++;
                }
            }
        }
        i = j;
    }
    return ok;
}

static int u_restore(struct uguest *u, struct dexc_page *pages, size_t n,
                     const uint8_t *data, unsigned flags)
{
    bool frozen = flags & DEXC_RESTORE_FROZEN;
    int ok = 0;

    for (size_t i = 0; i < n; i++) {
        uint64_t gfn = pages[i].gfn;
        struct upage *p;
        bool wp;
        int r;

        pages[i].state = 0;
        if (!gfn_ok(u, gfn)) {
            pages[i].rc = -EINVAL;
            continue;
        }
        p = &u->pg[gfn];
        if (has_frame(p->state)) {
            pages[i].rc = -EEXIST;
            continue;
        }
        /* A thread waiting to write gets a writable page; otherwise the
         * page stays protected so that its first write is seen. */
        wp = frozen || !(p->flags & PF_WFAULT);
        r = uf_copy(u, gfn, data ? data + i * PAGE : dxi_zero_page, wp);
        if (r == -EEXIST) {
            /* Someone filled it first; take it as restored. */
            dxi_log(DEXC_LOG_WARN, "guest %u: restore of gfn %" PRIu64
                    ": page already present, keeping it", u->g.id, gfn);
            r = uf_wake(u, gfn);
            p->flags = (uint8_t)((p->flags | PF_UNTRACKED) & ~PF_WP);
            wp = false;
            if (!r && frozen) {
                r = uf_protect(u, gfn, 1, true);
                wp = !r;
            }
            if (r) {
                set_state(u, gfn, DEXC_STATE_NORMAL);
                u->word[gfn] = 0;
            }
        }
        if (r) {
            pages[i].rc = r;
            if (r == -ESRCH)
                return -ESRCH;
            continue;
        }
        if (wp)
            p->flags |= PF_WP;
        else
            p->flags &= (uint8_t)~PF_WP;
        p->flags &= (uint8_t)~(PF_QUEUED | PF_WFAULT);
        if (frozen) {
            set_state(u, gfn, DEXC_STATE_FROZEN);
            u->word[gfn] = pages[i].handle = ++u->next_handle;
        } else {
            set_state(u, gfn, DEXC_STATE_NORMAL);
            u->word[gfn] = pages[i].handle = 0;
        }
        pages[i].rc = 0;
        ok++;
    }
    return ok;
}

static int u_page_op(dexc_guest *g, enum dexc_page_op op,
                     struct dexc_page *pages, size_t n, const void *data,
                     unsigned flags)
{
    struct uguest *u = UG(g);
    int r;

    switch (op) {
    case DEXC_OP_FREEZE:
        return u_freeze(u, pages, n);
    case DEXC_OP_THAW:
        return u_thaw(u, pages, n);
    case DEXC_OP_QUERY:
        r = drain(u);
        if (u->g.gone)
            return -ESRCH;
        return r ? r : u_query(u, pages, n);
    case DEXC_OP_RECLAIM:
        return u_reclaim(u, pages, n);
    case DEXC_OP_RESTORE:
        return u_restore(u, pages, n, data, flags);
    }
    return -EOPNOTSUPP;
}

static int32_t share_check(struct uguest *c, struct uguest *s,
                           const struct dexc_share *e)
{
    int32_t rc = reclaim_check(c, e->gfn, e->handle);

    if (rc)
        return rc;
    if (!s)
        return 0;
    if (!gfn_ok(s, e->src_gfn))
        return -EINVAL;
    if (s == c && e->src_gfn == e->gfn)
        return -EINVAL;
    if (!has_frame(s->pg[e->src_gfn].state))
        return -ENODATA;
    if (s->pg[e->src_gfn].state != DEXC_STATE_FROZEN ||
        s->word[e->src_gfn] != e->src_handle)
        return -EAGAIN;
    return 0;
}

static int u_share(dexc_guest *cli, dexc_guest *src, struct dexc_share *sh,
                   size_t n, unsigned flags)
{
    struct uguest *c = UG(cli), *s = src ? UG(src) : NULL;
    int ok = 0, r;

    (void)flags;
    r = drain(c);
    if (!r && s && s != c)
        r = drain(s);
    if (c->g.gone || (s && s->g.gone))
        return -ESRCH;
    if (r)
        return r;
    for (size_t i = 0; i < n;) {
        size_t j;

        sh[i].rc = share_check(c, s, &sh[i]);
        if (sh[i].rc) {
            i++;
            continue;
        }
        for (j = i + 1; j < n && j - i < MAX_RUN; j++) {
            if (sh[j].gfn != sh[j - 1].gfn + 1)
                break;
            sh[j].rc = share_check(c, s, &sh[j]);
            if (sh[j].rc)
                break;
        }
        {
            int32_t rcs[MAX_RUN];

            punch(c, sh[i].gfn, j - i, rcs);
            for (size_t k = i; k < j; k++) {
                sh[k].rc = rcs[k - i];
                after_punch(c, sh[k].gfn, sh[k].rc, DEXC_STATE_SHARED,
                            sh[k].canonical);
                if (!sh[k].rc)
                    ok++;
            }
        }
        i = j;
    }
    return ok;
}

static int u_harvest(dexc_guest *g, uint64_t first, size_t n, uint8_t *bits,
                     unsigned flags)
{
    struct uguest *u = UG(g);
    int r = drain(u);

    if (u->g.gone)
        return -ESRCH;
    if (r)
        return r;
    if (bits)
        for (size_t i = 0; i < n; i++) {
            uint8_t f = u->pg[first + i].flags, b = 0;

            if (f & (PF_DIRTY | PF_UNTRACKED))
                b = DEXC_AD_ACCESSED | DEXC_AD_DIRTY;
            else if (f & PF_ACCESSED)
                b = DEXC_AD_ACCESSED;
            bits[i] = b;
        }
    if (!(flags & DEXC_HARVEST_CLEAR))
        return 0;
    for (size_t i = 0; i < n; i++)
        u->pg[first + i].flags &=
            (uint8_t)~(PF_DIRTY | PF_ACCESSED | PF_UNTRACKED);
    /* Protect each run of resident, unprotected pages: their next write
     * faults once and is recorded. Frozen pages already are. */
    for (size_t i = 0; i < n;) {
        uint64_t gfn = first + i;
        size_t j;

        if (u->pg[gfn].state != DEXC_STATE_NORMAL ||
            (u->pg[gfn].flags & PF_WP)) {
            i++;
            continue;
        }
        for (j = i + 1; j < n; j++) {
            const struct upage *p = &u->pg[first + j];

            if (p->state != DEXC_STATE_NORMAL || (p->flags & PF_WP))
                break;
        }
        r = uf_protect(u, gfn, j - i, true);
        for (size_t k = i; k < j; k++)
            u->pg[first + k].flags |= r ? PF_UNTRACKED : PF_WP;
        if (r)
            return r;
        i = j;
    }
    return 0;
}

static int u_map_ro(dexc_guest *g, const uint64_t *gfns, size_t n,
                    const void **ptrs, int *rc, void **cookie)
{
    struct uguest *u = UG(g);
    int ok = 0;

    *cookie = NULL;
    for (size_t i = 0; i < n; i++) {
        uint64_t gfn = gfns[i];
        struct upage *p;

        ptrs[i] = NULL;
        if (!gfn_ok(u, gfn)) {
            rc[i] = -EINVAL;
            continue;
        }
        p = &u->pg[gfn];
        if (lost_frame(p->state)) {
            /* Reading it through the view would allocate a zero page in
             * the hole and the guest would read zeros: never. */
            rc[i] = -ENODATA;
            continue;
        }
        if (p->maps == UINT8_MAX) {
            rc[i] = -EBUSY;
            continue;
        }
        p->maps++;
        ptrs[i] = p->state == DEXC_STATE_ABSENT ? dxi_zero_page
                                                : u->view + gfn * PAGE;
        rc[i] = 0;
        ok++;
    }
    return ok;
}

static void u_unmap(dexc_guest *g, void *cookie, const uint64_t *gfns,
                    size_t n)
{
    struct uguest *u = UG(g);

    (void)cookie;
    for (size_t i = 0; i < n; i++)
        if (gfn_ok(u, gfns[i]) && u->pg[gfns[i]].maps)
            u->pg[gfns[i]].maps--;
}

static void u_get_info(const dexc_guest *g, struct dexc_info *info)
{
    const struct uguest *u = CUG(g);

    info->normal = u->nstate[DEXC_STATE_NORMAL];
    info->frozen = u->nstate[DEXC_STATE_FROZEN];
    info->shared = u->nstate[DEXC_STATE_SHARED];
    info->reclaimed = u->nstate[DEXC_STATE_RECLAIMED];
    info->absent = u->nstate[DEXC_STATE_ABSENT];
}

static void release(struct uguest *u)
{
    if (u->view && u->view != MAP_FAILED)
        munmap((void *)u->view, u->length);
    u->view = NULL;
    /* After the view: closing its userfaultfd first would leave it
     * unguarded for a moment. */
    if (u->view_uffd >= 0)
        close(u->view_uffd);
    if (u->epfd >= 0)
        close(u->epfd);
    if (u->pidfd >= 0)
        close(u->pidfd);
    if (u->conn >= 0)
        close(u->conn);
    if (u->uffd >= 0)
        close(u->uffd);
    if (u->memfd >= 0)
        close(u->memfd);
    u->view_uffd = u->epfd = u->pidfd = u->conn = u->uffd = u->memfd = -1;
    free(u->pg);
    free(u->word);
    free(u->bounce);
    u->pg = NULL;
    u->word = NULL;
    u->bounce = NULL;
}

static int u_close(dexc_guest *g)
{
    struct uguest *u = UG(g);
    uint64_t held;
    int rc = 0;

    if (!u->g.gone) {
        drain(u);
        check_gone(u);
    }
    if (!u->g.gone) {
        /* No write may wait for a daemon that is leaving. */
        uf_protect(u, 0, u->g.nr_pages, false);
        held = u->nstate[DEXC_STATE_RECLAIMED] + u->nstate[DEXC_STATE_SHARED];
        if (!held) {
            struct uffdio_range r = { .start = u->base, .len = u->length };

            /* Hand the memory back: the kernel wakes whoever still waits
             * and from now on the guest's faults are ordinary ones. */
            if (ioctl(u->uffd, UFFDIO_UNREGISTER, &r))
                rc = uffd_error(u, "unregister", 0);
        } else {
            /* Unregistering now would turn the holes into zero pages
             * under the guest; keep them trapping. */
            dxi_log(DEXC_LOG_WARN, "guest %u (%s) closed with %" PRIu64
                    " pages still held by the daemon: its threads that touch "
                    "them will wait until it is killed", u->g.id, u->g.name,
                    held);
            rc = -EBUSY;
        }
        if (u->conn >= 0)
            dxi_send_reply(u->conn, DEXC_REPLY_BYE, rc == -EBUSY ? -EBUSY : rc,
                           u->g.id);
        if (rc == -ESRCH)
            rc = 0;
    }
    release(u);
    return rc;
}

const struct dexc_ops dxi_uffd_ops = {
    .name = "uffd",
    .page_op = u_page_op,
    .share = u_share,
    .harvest = u_harvest,
    .map_ro = u_map_ro,
    .unmap = u_unmap,
    .poll_events = u_poll_events,
    .check_gone = u_check_gone,
    .event_current = u_event_current,
    .get_info = u_get_info,
    .close = u_close,
};

/* ------------------------------------------------------------------ */
/* Opening                                                             */

int dxi_new_userfaultfd(int flags)
{
    int fd = (int)syscall(SYS_userfaultfd, flags);

#ifdef USERFAULTFD_IOC_NEW
    if (fd < 0 && errno == EPERM) {
        int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);

        if (dev >= 0) {
            fd = ioctl(dev, USERFAULTFD_IOC_NEW, flags);
            close(dev);
        }
        if (fd < 0)
            errno = EPERM;
    }
#endif
    return fd;
}

/* The daemon's view of a guest whose page holes must never be filled by
 * our own reads: a SIGBUS-mode userfaultfd on it. */
static int guard_view(struct uguest *u)
{
    struct uffdio_api api = {
        .api = UFFD_API,
        .features = UFFD_FEATURE_SIGBUS | UFFD_FEATURE_MISSING_SHMEM,
    };
    struct uffdio_register reg = {
        .range = { .start = (uintptr_t)u->view, .len = u->length },
        .mode = UFFDIO_REGISTER_MODE_MISSING,
    };

    u->view_uffd = dxi_new_userfaultfd(O_CLOEXEC | O_NONBLOCK);
    if (u->view_uffd < 0)
        return -errno;
    if (ioctl(u->view_uffd, UFFDIO_API, &api) ||
        ioctl(u->view_uffd, UFFDIO_REGISTER, &reg))
        return -errno;
    return 0;
}

/* The guest's /proc/PID/maps must show [base, base + length) as a shared
 * mapping of exactly this memfd, at the matching offsets: otherwise the
 * daemon would punch holes in memory the guest does not use as its RAM. */
static int check_guest_mapping(pid_t pid, uint64_t base, uint64_t length,
                               const struct stat *st)
{
    char path[64], line[512];
    uint64_t covered = base, end = base + length;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    f = fopen(path, "re");
    if (!f)
        return errno == ENOENT ? -ESRCH : -errno;
    while (covered < end && fgets(line, sizeof line, f)) {
        unsigned long long lo, hi, off, ino;
        unsigned maj, mnr;
        char perms[8];

        if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu", &lo, &hi, perms,
                   &off, &maj, &mnr, &ino) != 7)
            continue;
        if (hi <= covered || lo >= end)
            continue;
        if (lo > covered || perms[3] != 's' || ino != st->st_ino ||
            makedev(maj, mnr) != st->st_dev || off != lo - base) {
            dxi_log(DEXC_LOG_ERROR, "pid %d: 0x%llx-0x%llx is not its memfd "
                    "RAM mapped shared at offset 0x%llx", (int)pid, lo, hi,
                    lo - base);
            fclose(f);
            return -EINVAL;
        }
        covered = hi;
    }
    fclose(f);
    if (covered < end) {
        dxi_log(DEXC_LOG_ERROR, "pid %d: its RAM 0x%" PRIx64 "+0x%" PRIx64
                " is not mapped", (int)pid, base, length);
        return -EINVAL;
    }
    return 0;
}

/* Pages holding data are NORMAL (their earlier writes unseen), holes are
 * ABSENT (any access faults, so nothing about them is unseen). */
static int scan_holes(struct uguest *u)
{
    off_t end = (off_t)u->length, pos = 0;

    for (uint64_t i = 0; i < u->g.nr_pages; i++)
        u->pg[i] = (struct upage){ .state = DEXC_STATE_ABSENT };
    u->nstate[DEXC_STATE_ABSENT] = u->g.nr_pages;
    while (pos < end) {
        off_t data = lseek(u->memfd, pos, SEEK_DATA), hole;

        if (data < 0) {
            if (errno == ENXIO)
                break;
            return -errno;
        }
        if (data >= end)
            break;
        hole = lseek(u->memfd, data, SEEK_HOLE);
        if (hole < 0)
            return -errno;
        if (hole > end)
            hole = end;
        for (uint64_t g = (uint64_t)data / PAGE;
             g < ((uint64_t)hole + PAGE - 1) / PAGE; g++) {
            set_state(u, g, DEXC_STATE_NORMAL);
            u->pg[g].flags = PF_UNTRACKED;
        }
        pos = hole;
    }
    return 0;
}

static int add_ep(int epfd, int fd, uint32_t events)
{
    struct epoll_event ev = { .events = events, .data.fd = fd };

    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

int dexc_open_uffd(const struct dexc_uffd_desc *d, unsigned flags,
                   dexc_guest **out)
{
    const uint64_t need = UFFD_FEATURE_MISSING_SHMEM |
                          UFFD_FEATURE_WP_HUGETLBFS_SHMEM;
    struct uguest *u;
    struct stat st;
    struct statfs sfs;
    int r;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!d || d->uffd < 0 || d->memfd < 0 || !d->length ||
        d->length % PAGE || d->base % PAGE || d->base + d->length < d->base ||
        (flags & ~DEXC_OPEN_GUARD_VIEW))
        return -EINVAL;
    if ((d->features & need) != need) {
        dxi_log(DEXC_LOG_ERROR, "guest %s: userfaultfd lacks MISSING_SHMEM "
                "or WP_HUGETLBFS_SHMEM", d->name ? d->name : "?");
        return -EOPNOTSUPP;
    }
    if (fstat(d->memfd, &st) || fstatfs(d->memfd, &sfs))
        return -errno;
    /* shmem only: hugetlbfs pages cannot be reclaimed one 4 KiB page at a
     * time. */
    if (!S_ISREG(st.st_mode) || sfs.f_type != TMPFS_MAGIC) {
        dxi_log(DEXC_LOG_ERROR, "guest %s: its RAM is not a shmem memfd",
                d->name ? d->name : "?");
        return -EINVAL;
    }
    if ((uint64_t)st.st_size < d->length) {
        dxi_log(DEXC_LOG_ERROR, "guest %s: memfd of %lld bytes, RAM of %"
                PRIu64, d->name ? d->name : "?", (long long)st.st_size,
                d->length);
        return -EINVAL;
    }
    if (d->pid > 0) {
        r = check_guest_mapping(d->pid, d->base, d->length, &st);
        if (r)
            return r;
    }

    u = calloc(1, sizeof *u);
    if (!u)
        return -ENOMEM;
    u->uffd = u->memfd = u->conn = u->pidfd = u->epfd = u->view_uffd = -1;
    r = dxi_guest_init(&u->g, &dxi_uffd_ops, d->id, d->pid,
                       d->length / PAGE, d->name);
    if (r) {
        free(u);
        return r;
    }
    u->base = d->base;
    u->length = d->length;
    u->g.info_flags = (d->uffd_flags & UFFD_USER_MODE_ONLY)
                          ? DEXC_INFO_USER_MODE_ONLY : 0;
    u->pg = calloc(u->g.nr_pages, sizeof *u->pg);
    u->word = calloc(u->g.nr_pages, sizeof *u->word);
    u->bounce = aligned_alloc(PAGE, PAGE);
    if (!u->pg || !u->word || !u->bounce) {
        r = -ENOMEM;
        goto fail;
    }
    /* The caller's descriptors stay the caller's until we succeed. */
    u->uffd = d->uffd;
    u->memfd = d->memfd;

    {
        /* Proves the uffd covers the whole range in WP mode (ENOENT
         * otherwise); nothing is protected yet, so it changes nothing. */
        struct uffdio_writeprotect wp = {
            .range = { .start = u->base, .len = u->length }, .mode = 0,
        };

        if (ioctl(u->uffd, UFFDIO_WRITEPROTECT, &wp)) {
            r = -errno;
            dxi_log(DEXC_LOG_ERROR, "guest %s: its userfaultfd does not cover "
                    "its RAM in write-protect mode: %s",
                    d->name ? d->name : "?", strerror(-r));
            if (r == -ENOENT)
                r = -EINVAL;
            goto fail;
        }
    }
    r = scan_holes(u);
    if (r)
        goto fail;
    u->view = mmap(NULL, u->length, PROT_READ, MAP_SHARED, u->memfd, 0);
    if (u->view == MAP_FAILED) {
        r = -errno;
        goto fail;
    }
    /* 4 KiB frames only (a huge folio cannot lose one page), and no child
     * of the daemon inherits a view its guard would not cover. */
    madvise((void *)u->view, u->length, MADV_NOHUGEPAGE);
    madvise((void *)u->view, u->length, MADV_DONTFORK);
    if (flags & DEXC_OPEN_GUARD_VIEW) {
        r = guard_view(u);
        if (r) {
            dxi_log(DEXC_LOG_ERROR, "guest %s: cannot guard the view: %s",
                    d->name ? d->name : "?", strerror(-r));
            goto fail;
        }
        u->g.info_flags |= DEXC_INFO_GUARD_VIEW;
    }

    if (fcntl(u->uffd, F_SETFL, fcntl(u->uffd, F_GETFL) | O_NONBLOCK)) {
        r = -errno;
        goto fail;
    }
    u->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (u->epfd < 0) {
        r = -errno;
        goto fail;
    }
    if (d->pid > 0) {
        u->pidfd = (int)syscall(SYS_pidfd_open, d->pid, 0);
        if (u->pidfd < 0 && errno == ESRCH)
            u->g.gone = true;
    }
    r = add_ep(u->epfd, u->uffd, EPOLLIN);
    if (!r)
        r = add_ep(u->epfd, u->g.q.efd, EPOLLIN);
    if (!r && d->conn_fd >= 0)
        r = add_ep(u->epfd, d->conn_fd, EPOLLIN | EPOLLRDHUP);
    if (!r && u->pidfd >= 0)
        r = add_ep(u->epfd, u->pidfd, EPOLLIN);
    if (r)
        goto fail;
    u->conn = d->conn_fd;
    u->g.event_fd = u->epfd;
    *out = &u->g;
    return 0;

fail:
    u->uffd = u->memfd = -1;    /* still the caller's */
    release(u);
    dxi_guest_fini(&u->g);
    free(u);
    return r;
}

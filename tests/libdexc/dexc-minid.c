/*
 * dexc-minid - the smallest daemon that exercises everything libdexc
 * offers, for end-to-end tests of de-guest and the uffd backend without
 * de-dom0d: it accepts guests, and on every tick takes the next batch of
 * each guest's pages, skips those written since its last visit (harvest),
 * freezes the rest, copies them, shares the zero pages with one canonical
 * zero page and reclaims the others; it restores faulted pages from its
 * copies. On SIGTERM it restores everything and releases every guest.
 *
 *   dexc-minid --socket PATH [--interval MS] [--batch N] [--guard]
 *              [--stats FILE] [-v]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dexc.h"

#define MAX_GUESTS 16
#define PAGE DEXC_PAGE_SIZE
#define ZERO_ID 0               /* canonical id of the zero page */

struct mguest {
    dexc_guest *g;
    uint64_t npages;
    uint64_t cursor;
    uint8_t *copy;              /* the daemon's copy of every page it took */
};

static struct {
    uint64_t reclaimed, shared_zero, stale, faults, restores,
             restore_errors, guests, refused, released, close_errors;
} stats;

static struct mguest guests[MAX_GUESTS];
static int nguests;
static int sig_pipe[2];
static bool verbose;

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void logger(void *ctx, int level, const char *msg)
{
    (void)ctx;
    if (verbose || level <= DEXC_LOG_WARN)
        fprintf(stderr, "dexc-minid: %s\n", msg);
}

static void on_signal(int sig)
{
    char c = (char)sig;

    if (write(sig_pipe[1], &c, 1) != 1)
        _exit(1);
}

static void drop_guest(int i)
{
    if (dexc_close(guests[i].g))
        stats.close_errors++;
    free(guests[i].copy);
    guests[i] = guests[--nguests];
}

static void serve(struct mguest *m, int idx, bool *gone)
{
    struct dexc_event ev;

    *gone = false;
    while (dexc_next_event(m->g, &ev) == 1) {
        struct dexc_page p = { .gfn = ev.gfn };
        int r;

        if (ev.type == DEXC_EV_GONE) {
            if (verbose)
                fprintf(stderr, "dexc-minid: guest %d gone\n", idx);
            *gone = true;
            return;
        }
        if (ev.type != DEXC_EV_FAULT)
            continue;
        stats.faults++;
        if ((ev.flags & DEXC_EVF_SHARED) && ev.canonical == ZERO_ID)
            r = dexc_restore(m->g, &p, 1, NULL, DEXC_RESTORE_ZERO);
        else
            r = dexc_restore(m->g, &p, 1, m->copy + ev.gfn * PAGE, 0);
        if (r == 1)
            stats.restores++;
        else
            stats.restore_errors++;
    }
}

static bool is_zero(const uint8_t *p)
{
    static const uint8_t zero[PAGE];

    return memcmp(p, zero, PAGE) == 0;
}

/* One batch of one guest: NRU in miniature. */
static void step(struct mguest *m, uint64_t batch)
{
    uint64_t first = m->cursor, n = batch;
    uint8_t bits[1024];
    struct dexc_page pages[1024];
    struct dexc_page rec[1024];
    struct dexc_share sh[1024];
    uint64_t gfns[1024];
    const void *ptrs[1024];
    int rc[1024];
    size_t nc = 0, nrec = 0, nsh = 0;
    dexc_mapping *map;

    if (n > 1024)
        n = 1024;
    if (first + n > m->npages)
        n = m->npages - first;
    m->cursor = first + n == m->npages ? 0 : first + n;
    if (dexc_harvest(m->g, first, n, bits, DEXC_HARVEST_CLEAR))
        return;
    for (uint64_t i = 0; i < n; i++)
        if (!bits[i])
            pages[nc++] = (struct dexc_page){ .gfn = first + i };
    if (!nc || dexc_freeze(m->g, pages, nc) <= 0)
        return;
    for (size_t i = 0; i < nc; i++)
        gfns[i] = pages[i].gfn;
    if (dexc_map_ro(m->g, gfns, nc, ptrs, rc, &map) < 0)
        return;
    for (size_t i = 0; i < nc; i++) {
        if (pages[i].rc || rc[i])
            continue;
        memcpy(m->copy + gfns[i] * PAGE, ptrs[i], PAGE);
        if (is_zero(ptrs[i]))
            sh[nsh++] = (struct dexc_share){ .gfn = gfns[i],
                                             .handle = pages[i].handle,
                                             .canonical = ZERO_ID };
        else
            rec[nrec++] = (struct dexc_page){ .gfn = gfns[i],
                                              .handle = pages[i].handle };
    }
    dexc_unmap(m->g, map);
    if (nrec && dexc_reclaim(m->g, rec, nrec) >= 0)
        for (size_t i = 0; i < nrec; i++) {
            if (!rec[i].rc)
                stats.reclaimed++;
            else if (rec[i].rc == -EAGAIN)
                stats.stale++;
        }
    if (nsh && dexc_share(m->g, NULL, sh, nsh, 0) >= 0)
        for (size_t i = 0; i < nsh; i++) {
            if (!sh[i].rc)
                stats.shared_zero++;
            else if (sh[i].rc == -EAGAIN)
                stats.stale++;
        }
}

/* Gives the guest back every page and lets it go. */
static void release(struct mguest *m)
{
    for (uint64_t first = 0; first < m->npages; first += 1024) {
        uint64_t n = m->npages - first < 1024 ? m->npages - first : 1024;
        struct dexc_page q[1024];

        for (uint64_t i = 0; i < n; i++)
            q[i] = (struct dexc_page){ .gfn = first + i };
        if (dexc_query(m->g, q, n) < 0)
            break;
        for (uint64_t i = 0; i < n; i++) {
            struct dexc_page p = { .gfn = q[i].gfn };

            if (q[i].state == DEXC_STATE_SHARED)
                dexc_restore(m->g, &p, 1, NULL, DEXC_RESTORE_ZERO);
            else if (q[i].state == DEXC_STATE_RECLAIMED)
                dexc_restore(m->g, &p, 1, m->copy + p.gfn * PAGE, 0);
        }
    }
    if (dexc_close(m->g) == 0)
        stats.released++;
    else
        stats.close_errors++;
    free(m->copy);
    m->g = NULL;
}

static void write_stats(const char *path)
{
    FILE *f = path ? fopen(path, "w") : stderr;

    if (!f)
        return;
    fprintf(f, "guests=%" PRIu64 " refused=%" PRIu64 " reclaimed=%" PRIu64
            " shared_zero=%" PRIu64 " stale=%" PRIu64 " faults=%" PRIu64
            " restores=%" PRIu64 " restore_errors=%" PRIu64
            " released=%" PRIu64 " close_errors=%" PRIu64 "\n",
            stats.guests, stats.refused, stats.reclaimed, stats.shared_zero,
            stats.stale, stats.faults, stats.restores, stats.restore_errors,
            stats.released, stats.close_errors);
    if (path)
        fclose(f);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "socket", required_argument, NULL, 's' },
        { "interval", required_argument, NULL, 'i' },
        { "batch", required_argument, NULL, 'b' },
        { "guard", no_argument, NULL, 'g' },
        { "stats", required_argument, NULL, 'S' },
        { NULL, 0, NULL, 0 },
    };
    const char *path = NULL, *stats_path = NULL;
    unsigned open_flags = 0;
    int interval = 10, c;
    uint64_t batch = 64;
    dexc_listener *l;
    struct sigaction sa = { .sa_handler = on_signal };
    bool running = true;
    uint64_t next_tick = 0;

    while ((c = getopt_long(argc, argv, "v", longopts, NULL)) != -1) {
        switch (c) {
        case 's': path = optarg; break;
        case 'i': interval = atoi(optarg); break;
        case 'b': batch = strtoull(optarg, NULL, 0); break;
        case 'g': open_flags |= DEXC_OPEN_GUARD_VIEW; break;
        case 'S': stats_path = optarg; break;
        case 'v': verbose = true; break;
        default: return 2;
        }
    }
    if (!path || interval <= 0 || !batch)
        return 2;
    dexc_set_logger(logger, NULL);
    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK))
        return 1;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (dexc_listen(path, 0, &l)) {
        fprintf(stderr, "dexc-minid: cannot listen on %s\n", path);
        return 1;
    }
    if (verbose)
        fprintf(stderr, "dexc-minid: listening on %s\n", path);

    while (running) {
        struct pollfd pf[2 + MAX_GUESTS];
        int n = 0, wait_ms = (int)(next_tick - now_ms());

        pf[n++] = (struct pollfd){ .fd = sig_pipe[0], .events = POLLIN };
        pf[n++] = (struct pollfd){ .fd = dexc_listener_fd(l), .events = POLLIN };
        for (int i = 0; i < nguests; i++)
            pf[n++] = (struct pollfd){ .fd = dexc_event_fd(guests[i].g),
                                       .events = POLLIN };
        if (poll(pf, (nfds_t)n, wait_ms < 0 ? 0 : wait_ms) < 0 &&
            errno != EINTR)
            break;
        if (pf[0].revents) {
            running = false;
            break;
        }
        /* Faults first: the guests are waiting. */
        for (int i = 0; i < nguests; i++) {
            bool gone;

            serve(&guests[i], i, &gone);
            if (gone)
                drop_guest(i--);
        }
        /* Accept when asked, and on ticks (idle connections time out). */
        for (bool tick = now_ms() >= next_tick; pf[1].revents || tick;) {
            dexc_guest *g;
            struct dexc_info info;
            int r = dexc_accept(l, open_flags, &g);

            if (r == 0)
                break;
            if (r < 0) {
                stats.refused++;
                continue;
            }
            dexc_get_info(g, &info);
            if (nguests == MAX_GUESTS) {
                dexc_close(g);
                stats.refused++;
                continue;
            }
            guests[nguests] = (struct mguest){
                .g = g, .npages = info.nr_pages,
                .copy = calloc(info.nr_pages, PAGE),
            };
            if (!guests[nguests].copy) {
                dexc_close(g);
                continue;
            }
            nguests++;
            stats.guests++;
        }
        /* Policy work only on ticks, so faults never wait behind it. */
        if (now_ms() < next_tick)
            continue;
        next_tick = now_ms() + (uint64_t)interval;
        for (int i = 0; i < nguests; i++) {
            bool gone;

            step(&guests[i], batch);
            serve(&guests[i], i, &gone);
            if (gone)
                drop_guest(i--);
        }
    }

    for (int i = 0; i < nguests; i++)
        release(&guests[i]);
    dexc_listener_close(l);
    write_stats(stats_path);
    return stats.close_errors || stats.restore_errors ? 1 : 0;
}

/*
 * dexc-xen-test DOMID SECONDS - exercises libdexc's Xen backend on a live
 * PVH guest from dom0 (run by tests/xen/check-xen.sh inside QEMU):
 * open, query, harvest, freeze + share of zero pages, freeze + copy +
 * reclaim of non-zero pages, then serve fault events (restore from the
 * copies) for SECONDS, then restore everything left and close. Prints
 * "RESULT <name>: PASS|FAIL ..." lines. The guest checks its own data.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dexc.h"

#define BATCH 512
#define MAX_RECLAIM 16384       /* 64 MiB */

static uint8_t *store;          /* copies, MAX_RECLAIM pages */
static int32_t *slot;           /* gfn -> index in store, or -1 */
static size_t nslots;
#define have(gfn) (slot[gfn] >= 0)

static void logger(void *ctx, int level, const char *msg)
{
    fprintf(stderr, "libdexc[%d]: %s\n", level, msg);
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int is_zero(const void *p)
{
    const uint64_t *q = p;

    for (size_t i = 0; i < DEXC_PAGE_SIZE / 8; i++)
        if (q[i])
            return 0;
    return 1;
}

static int restore_one(dexc_guest *g, uint64_t gfn)
{
    struct dexc_page p = { .gfn = gfn };
    int rc;

    if (!have(gfn))
        return -ENOENT;
    rc = dexc_restore(g, &p, 1, store + (size_t)slot[gfn] * DEXC_PAGE_SIZE, 0);
    if (rc < 0)
        return rc;
    return p.rc;
}

/* DEXT_STEPS (e.g. "harvest,share") names the steps to run; unset: all.
 * Without harvest nothing is reclaimed (no page is known to be idle). */
static int want(const char *step)
{
    const char *s = getenv("DEXT_STEPS");

    return !s || strstr(s, step) != NULL;
}

int main(int argc, char **argv)
{
    uint32_t domid;
    int secs, rc, fails = 0;
    dexc_guest *g;
    struct dexc_info info;
    uint64_t n, nzero = 0, nshared = 0, nreclaimed = 0, faults = 0, restored = 0;
    uint64_t st[6] = { 0 };
    uint8_t *bits;
    uint64_t *zero = NULL, *cand = NULL;
    size_t nz = 0, nc = 0;

    if (argc != 3) {
        fprintf(stderr, "usage: %s DOMID SECONDS\n", argv[0]);
        return 2;
    }
    domid = strtoul(argv[1], NULL, 0);
    secs = atoi(argv[2]);
    dexc_set_logger(logger, NULL);

    rc = dexc_open_xen(domid, 0, &g);
    if (rc) {
        printf("RESULT open: FAIL (dexc_open_xen(%u): %s)\n", domid, strerror(-rc));
        return 1;
    }
    dexc_get_info(g, &info);
    n = info.nr_pages;
    printf("RESULT open: PASS (d%u, %llu gfns, backend %s)\n", domid,
           (unsigned long long)n, info.backend);
    /* Sparse store: only reclaimed pages are kept (indexed by gfn). */
    store = malloc((size_t)MAX_RECLAIM * DEXC_PAGE_SIZE);
    slot = malloc(n * sizeof *slot);
    if (slot)
        memset(slot, 0xff, n * sizeof *slot);
    bits = calloc(n, 1);
    zero = calloc(n, sizeof *zero);
    cand = calloc(n, sizeof *cand);
    if (!store || !slot || !bits || !zero || !cand) {
        printf("RESULT setup: FAIL (out of memory)\n");
        return 1;
    }

    /* query */
    for (uint64_t b = 0; b < n; b += BATCH) {
        struct dexc_page p[BATCH];
        size_t k = n - b < BATCH ? n - b : BATCH;

        for (size_t i = 0; i < k; i++)
            p[i] = (struct dexc_page){ .gfn = b + i };
        rc = dexc_query(g, p, k);
        if (rc < 0) {
            printf("RESULT query: FAIL (%s)\n", strerror(-rc));
            return 1;
        }
        for (size_t i = 0; i < k; i++)
            if (!p[i].rc && p[i].state < 6)
                st[p[i].state]++;
    }
    printf("RESULT query: PASS (other %llu normal %llu frozen %llu shared %llu reclaimed %llu)\n",
           (unsigned long long)st[0], (unsigned long long)st[1],
           (unsigned long long)st[2], (unsigned long long)st[3],
           (unsigned long long)st[4]);

    /* harvest */
    rc = want("harvest") ? dexc_harvest(g, 0, n, bits, DEXC_HARVEST_CLEAR)
                         : -ECANCELED;
    if (rc == 0) {
        uint64_t a1 = 0, a2 = 0, d2 = 0;

        for (uint64_t i = 0; i < n; i++)
            a1 += !!(bits[i] & DEXC_AD_ACCESSED);
        {
            struct timespec ts = { 3, 0 };
            nanosleep(&ts, NULL);
        }
        rc = dexc_harvest(g, 0, n, bits, 0);
        for (uint64_t i = 0; !rc && i < n; i++) {
            a2 += !!(bits[i] & DEXC_AD_ACCESSED);
            d2 += !!(bits[i] & DEXC_AD_DIRTY);
        }
        printf("RESULT harvest: %s (first pass accessed %llu; 3 s after clearing: accessed %llu dirty %llu)\n",
               rc == 0 && a2 < a1 ? "PASS" : "FAIL", (unsigned long long)a1,
               (unsigned long long)a2, (unsigned long long)d2);
        fails += !(rc == 0 && a2 < a1);
    } else {
        printf("RESULT harvest: FAIL (%s)\n", strerror(-rc));
        fails++;
    }
    /* Reclaim only pages the guest did not touch in those 3 s (NRU, as
     * the daemon does): a page Xen reads for a guest hypercall (its stack)
     * must not be reclaimed, or the hypercall fails with -EFAULT. Without
     * harvest, bits stays all ones and nothing is reclaimed. */
    if (rc != 0)
        memset(bits, DEXC_AD_ACCESSED, n);

    /* classify NORMAL pages: zero or not */
    for (uint64_t b = 0; b < n; b += BATCH) {
        uint64_t gf[BATCH];
        const void *ptr[BATCH];
        int r[BATCH];
        dexc_mapping *m;
        size_t k = 0;

        for (uint64_t i = b; i < n && i < b + BATCH; i++)
            gf[k++] = i;
        rc = dexc_map_ro(g, gf, k, ptr, r, &m);
        if (rc < 0)
            continue;
        for (size_t i = 0; i < k; i++) {
            if (r[i])
                continue;
            if (is_zero(ptr[i]))
                zero[nz++] = gf[i];
            else if (nc < MAX_RECLAIM && !(bits[gf[i]] & DEXC_AD_ACCESSED))
                cand[nc++] = gf[i];
        }
        dexc_unmap(g, m);
    }
    printf("scan: %zu zero pages, %zu reclaim candidates (non-zero, not accessed for 3 s)\n", nz, nc);

    /* share zero pages with the first one */
    if (nz > 1 && want("share")) {
        struct dexc_page src = { .gfn = zero[0] };
        size_t i = 1;

        if (dexc_freeze(g, &src, 1) == 1) {
            while (i < nz) {
                struct dexc_page p[BATCH];
                struct dexc_share s[BATCH];
                size_t k = 0, j;

                for (; i < nz && k < BATCH; i++)
                    p[k++] = (struct dexc_page){ .gfn = zero[i] };
                dexc_freeze(g, p, k);
                {   /* still zero while frozen? */
                    uint64_t gf[BATCH];
                    const void *ptr[BATCH];
                    int r[BATCH];
                    dexc_mapping *m;

                    for (j = 0; j < k; j++)
                        gf[j] = p[j].gfn;
                    if (dexc_map_ro(g, gf, k, ptr, r, &m) >= 0) {
                        for (j = 0; j < k; j++)
                            if (r[j] || !is_zero(ptr[j]))
                                p[j].rc = -1;
                        dexc_unmap(g, m);
                    }
                }
                for (j = 0; j < k; j++) {
                    s[j] = (struct dexc_share){ .gfn = p[j].gfn, .handle = p[j].handle,
                        .src_gfn = src.gfn, .src_handle = src.handle };
                    if (p[j].rc)
                        s[j].handle = 0;        /* will fail: skip */
                }
                rc = dexc_share(g, g, s, k, 0);
                if (rc > 0)
                    nshared += rc;
                nzero += k;
            }
        }
        printf("RESULT share: %s (%llu of %llu zero pages shared)\n",
               nshared ? "PASS" : "FAIL", (unsigned long long)nshared,
               (unsigned long long)nzero);
        fails += !nshared;
    }

    /* freeze, copy, reclaim */
    for (size_t i = 0; i < nc;) {
        struct dexc_page p[BATCH];
        uint64_t gf[BATCH];
        const void *ptr[BATCH];
        int r[BATCH];
        dexc_mapping *m;
        size_t k = 0;

        for (; i < nc && k < BATCH; i++)
            p[k++] = (struct dexc_page){ .gfn = cand[i] };
        dexc_freeze(g, p, k);
        for (size_t j = 0; j < k; j++)
            gf[j] = p[j].gfn;
        if (dexc_map_ro(g, gf, k, ptr, r, &m) < 0)
            continue;
        for (size_t j = 0; j < k; j++)
            if (!p[j].rc && !r[j] && nslots < MAX_RECLAIM) {
                slot[gf[j]] = (int32_t)nslots;
                memcpy(store + nslots++ * DEXC_PAGE_SIZE, ptr[j], DEXC_PAGE_SIZE);
            } else {
                p[j].handle = 0;
            }
        dexc_unmap(g, m);
        rc = dexc_reclaim(g, p, k);
        if (rc > 0)
            nreclaimed += rc;
        for (size_t j = 0; j < k; j++)
            if (p[j].rc)
                slot[p[j].gfn] = -1;
    }
    printf("RESULT reclaim: %s (%llu pages reclaimed)\n",
           nreclaimed ? "PASS" : "FAIL", (unsigned long long)nreclaimed);
    fails += !nreclaimed;
    fflush(stdout);

    /* serve faults */
    {
        double end = now() + secs;
        struct pollfd pfd = { .fd = dexc_event_fd(g), .events = POLLIN };
        int gone = 0;

        while (!gone && now() < end) {
            struct dexc_event ev;

            poll(&pfd, 1, 200);
            while ((rc = dexc_next_event(g, &ev)) == 1) {
                if (ev.type == DEXC_EV_GONE) {
                    gone = 1;
                    break;
                }
                if (ev.type != DEXC_EV_FAULT)
                    continue;
                faults++;
                rc = restore_one(g, ev.gfn);
                if (rc) {
                    printf("restore of faulting gfn %#llx: %s\n",
                           (unsigned long long)ev.gfn, strerror(-rc));
                    fails++;
                } else {
                    slot[ev.gfn] = -1;
                    restored++;
                }
            }
        }
        printf("RESULT faults: %s (%llu fault events served, %llu restored%s)\n",
               faults ? "PASS" : "FAIL", (unsigned long long)faults,
               (unsigned long long)restored, gone ? ", guest gone" : "");
        fails += !faults;
        if (gone) {
            dexc_close(g);
            return fails ? 1 : 0;
        }
    }

    /* restore the rest, close */
    {
        uint64_t left = 0, bad = 0;

        for (uint64_t gfn = 0; gfn < n; gfn++)
            if (have(gfn)) {
                left++;
                if (restore_one(g, gfn))
                    bad++;
            }
        rc = dexc_close(g);
        printf("RESULT restore-all: %s (%llu pages restored, %llu failed; close: %s)\n",
               !bad && !rc ? "PASS" : "FAIL", (unsigned long long)left,
               (unsigned long long)bad, rc ? strerror(-rc) : "ok");
        fails += bad || rc;
    }
    return fails ? 1 : 0;
}

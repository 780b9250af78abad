/*
 * harness.h - a real uffd guest for the libdexc tests.
 *
 * The test process is the daemon. Each guest is a forked child that
 * attaches with dexc_guest_attach over a real socket and then obeys
 * commands sent down a pipe (fill pages, hash them, write a byte, ...),
 * answering on another pipe. While the test waits for an answer it serves
 * the guest's events, by default restoring faulted pages from `expect`:
 * what the test knows each page must hold.
 */
#ifndef TEST_DEXC_HARNESS_H
#define TEST_DEXC_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "dexc.h"

#define TPAGE DEXC_PAGE_SIZE
#define MAX_EVLOG 4096

enum tcmd_op {
    C_FILL = 1,     /* pages [gfn, gfn+count) := pattern(seed, page) */
    C_FILL_SAME,    /* pages [gfn, gfn+count) := pattern(seed, 0) */
    C_HASH,         /* reply: hash of pages [gfn, gfn+count) */
    C_WRITE_BYTE,   /* page gfn byte arg := seed */
    C_READ_BYTE,    /* reply: page gfn byte arg */
    C_THREADS_HASH, /* arg threads hash page gfn at once; reply: hash, or
                       -1 if they disagree */
    C_STRESS,       /* count pages from gfn: rounds of counter writes for
                       arg ms by seed threads (pages split between them);
                       reply: number of lost writes seen */
    C_BASE,         /* reply: address of the RAM */
    C_FORK_READ,    /* a child reads page gfn; reply: its wait status */
    C_DAEMON_STATE, /* reply: dexc_guest_daemon_state */
    C_DETACH,       /* dexc_guest_detach; reply 0 */
    C_EXIT,         /* _exit(arg) without a reply */
};

struct tcmd {
    uint32_t op;
    uint32_t arg;
    uint64_t gfn;
    uint64_t count;
    uint64_t seed;
};

struct tguest {
    pid_t pid;
    int cmd_w;              /* commands to the guest */
    int rep_r;              /* its answers */
    dexc_guest *g;
    size_t npages;
    uint8_t *expect;        /* what each page must hold */
    uint64_t base;
    bool auto_restore;      /* answer FAULT events from expect */
    int restore_errors;
    bool gone_seen;
    struct dexc_event evlog[MAX_EVLOG];
    size_t nev;
};

/* A listening socket in a fresh directory; NULL on failure. */
dexc_listener *th_listen(const char **path_out);
void th_unlisten(dexc_listener *l);

/* Forks a guest of npages that attaches with attach_flags, and accepts it
 * with open_flags. Returns NULL (and reaps the child) on failure. */
struct tguest *th_spawn(dexc_listener *l, const char *path, size_t npages,
                        unsigned attach_flags, unsigned open_flags,
                        const char *name);
/* Kills and reaps the child if still there, closes the handle if open. */
void th_destroy(struct tguest *t);

/* Sends a command; 0 or -1. */
int th_send(struct tguest *t, uint32_t op, uint64_t gfn, uint64_t count,
            uint64_t seed, uint32_t arg);
/* Waits up to timeout_ms for the answer while serving events; returns 0
 * and *val, or -1 on timeout or a dead guest. */
int th_wait(struct tguest *t, int64_t *val, int timeout_ms);
/* th_send + th_wait with 10 s; returns the value, or INT64_MIN. */
int64_t th_call(struct tguest *t, uint32_t op, uint64_t gfn, uint64_t count,
                uint64_t seed, uint32_t arg);
/* Serves whatever events are ready; returns how many were handled. */
int th_serve(struct tguest *t);
/* Waits until the guest's event fd is readable; true if it became so. */
bool th_wait_event_fd(struct tguest *t, int timeout_ms);

/* Test-side mirror of what C_FILL writes, and the hash C_HASH answers. */
void th_pattern(uint64_t seed, uint64_t page, uint8_t *out);
uint64_t th_hash(const uint8_t *p, size_t len);
/* Hash of expect for [gfn, gfn+count). */
uint64_t th_expect_hash(const struct tguest *t, uint64_t gfn, uint64_t count);
/* Fills expect for [gfn, gfn+count) as C_FILL / C_FILL_SAME do. */
void th_expect_fill(struct tguest *t, uint64_t gfn, uint64_t count,
                    uint64_t seed, bool same);

/* The guest's memfd, through /proc/PID/map_files (root): -1 on failure. */
int th_open_memfd(struct tguest *t);
/* Whether the memfd holds data at page gfn (SEEK_DATA). */
bool th_memfd_has_page(int memfd, uint64_t gfn);

/* Number of open descriptors of this process. */
int th_count_fds(void);
/* How many FAULT events for gfn are in the log. */
size_t th_count_events(const struct tguest *t, uint32_t type, uint64_t gfn);

/* Batch helpers: fills pages[] for gfns [gfn, gfn+n). */
void th_pages(struct dexc_page *pages, uint64_t gfn, size_t n);

/* Messages the library logged (for asserting a refusal was explained). */
extern char th_last_log[512];

#endif

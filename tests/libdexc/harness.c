/*
 * harness.c - forked uffd guests driven over pipes (see harness.h).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "harness.h"

char th_last_log[512];

static char sockdir[64];
static char sockpath[128];

/* ------------------------------------------------------------------ */
/* Contents                                                            */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void th_pattern(uint64_t seed, uint64_t page, uint8_t *out)
{
    uint64_t s = seed * 0x100000001b3ull ^ (page + 1) * 0x9e3779b97f4a7c15ull;

    for (size_t i = 0; i < TPAGE; i += 8) {
        uint64_t v = splitmix(&s);

        memcpy(out + i, &v, 8);
    }
}

uint64_t th_hash(const uint8_t *p, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;

    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

uint64_t th_expect_hash(const struct tguest *t, uint64_t gfn, uint64_t count)
{
    return th_hash(t->expect + gfn * TPAGE, count * TPAGE);
}

void th_expect_fill(struct tguest *t, uint64_t gfn, uint64_t count,
                    uint64_t seed, bool same)
{
    for (uint64_t i = 0; i < count; i++)
        th_pattern(seed, same ? 0 : gfn + i, t->expect + (gfn + i) * TPAGE);
}

void th_pages(struct dexc_page *pages, uint64_t gfn, size_t n)
{
    for (size_t i = 0; i < n; i++)
        pages[i] = (struct dexc_page){ .gfn = gfn + i };
}

/* ------------------------------------------------------------------ */
/* The guest (child side)                                              */

struct hash_job {
    const uint8_t *page;
    uint64_t h;
};

static void *hash_thread(void *arg)
{
    struct hash_job *j = arg;

    j->h = th_hash(j->page, TPAGE);
    return NULL;
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* One writer of C_STRESS: pages first + offset + k * stride. Every page
 * holds the round it was last written in (and its complement); anything
 * else is a write the daemon lost. */
struct stress_job {
    uint8_t *mem;
    uint64_t first, count, stride, offset, end_ms;
    int64_t lost;
    uint64_t rounds;
};

static void *stress_thread(void *arg)
{
    struct stress_job *j = arg;
    uint64_t round;

    for (uint64_t k = j->offset; k < j->count; k += j->stride) {
        volatile uint64_t *w =
            (volatile uint64_t *)(j->mem + (j->first + k) * TPAGE);

        w[0] = 0;
        w[1] = ~(uint64_t)0;
    }
    for (round = 1; now_ms() < j->end_ms; round++)
        for (uint64_t k = j->offset; k < j->count; k += j->stride) {
            volatile uint64_t *w =
                (volatile uint64_t *)(j->mem + (j->first + k) * TPAGE);

            if (w[0] != round - 1 || w[1] != ~(round - 1)) {
                if (!j->lost && getenv("DEXC_TEST_VERBOSE"))
                    fprintf(stderr, "guest: page %llu round %llu holds "
                            "%llu/%llx\n",
                            (unsigned long long)(j->first + k),
                            (unsigned long long)round,
                            (unsigned long long)w[0],
                            (unsigned long long)w[1]);
                j->lost++;
            }
            w[0] = round;
            w[1] = ~round;
        }
    j->rounds = round - 1;
    return NULL;
}

static void reply(int fd, int64_t v)
{
    if (write(fd, &v, sizeof v) != sizeof v)
        _exit(100);
}

static void guest_main(const char *path, size_t npages, unsigned flags,
                       const char *name, int cmd_r, int rep_w)
{
    dexc_attachment *a;
    uint8_t *mem;
    struct tcmd c;
    int r;

    r = dexc_guest_attach(path, npages * TPAGE, name, flags, (void **)&mem,
                          &a);
    reply(rep_w, r);
    if (r)
        _exit(1);
    /* A test that goes wrong must not leave a guest blocked forever. */
    alarm(60);
    while (read(cmd_r, &c, sizeof c) == sizeof c) {
        switch (c.op) {
        case C_FILL:
        case C_FILL_SAME:
            for (uint64_t i = 0; i < c.count; i++)
                th_pattern(c.seed, c.op == C_FILL_SAME ? 0 : c.gfn + i,
                           mem + (c.gfn + i) * TPAGE);
            reply(rep_w, 0);
            break;
        case C_HASH:
            reply(rep_w, (int64_t)th_hash(mem + c.gfn * TPAGE,
                                          c.count * TPAGE));
            break;
        case C_WRITE_BYTE:
            mem[c.gfn * TPAGE + c.arg] = (uint8_t)c.seed;
            reply(rep_w, 0);
            break;
        case C_READ_BYTE:
            reply(rep_w, ((volatile uint8_t *)mem)[c.gfn * TPAGE + c.arg]);
            break;
        case C_THREADS_HASH: {
            pthread_t th[16];
            struct hash_job jobs[16];
            unsigned n = c.arg > 16 ? 16 : c.arg;
            int64_t h;

            for (unsigned i = 0; i < n; i++) {
                jobs[i].page = mem + c.gfn * TPAGE;
                pthread_create(&th[i], NULL, hash_thread, &jobs[i]);
            }
            for (unsigned i = 0; i < n; i++)
                pthread_join(th[i], NULL);
            h = (int64_t)jobs[0].h;
            for (unsigned i = 1; i < n; i++)
                if (jobs[i].h != jobs[0].h)
                    h = -1;
            reply(rep_w, h);
            break;
        }
        case C_STRESS: {
            pthread_t th[16];
            struct stress_job jobs[16];
            unsigned n = c.seed < 1 ? 1 : c.seed > 16 ? 16 : (unsigned)c.seed;
            int64_t lost = 0;
            uint64_t rounds = 0;

            for (unsigned i = 0; i < n; i++) {
                jobs[i] = (struct stress_job){
                    .mem = mem, .first = c.gfn, .count = c.count,
                    .stride = n, .offset = i, .end_ms = now_ms() + c.arg,
                };
                pthread_create(&th[i], NULL, stress_thread, &jobs[i]);
            }
            for (unsigned i = 0; i < n; i++) {
                pthread_join(th[i], NULL);
                lost += jobs[i].lost;
                rounds += jobs[i].rounds;
            }
            if (getenv("DEXC_TEST_VERBOSE"))
                fprintf(stderr, "guest: %u threads, %llu rounds\n", n,
                        (unsigned long long)rounds);
            reply(rep_w, lost);
            break;
        }
        case C_BASE:
            reply(rep_w, (int64_t)(uintptr_t)mem);
            break;
        case C_FORK_READ: {
            pid_t child = fork();
            int status = -1;

            if (child == 0) {
                signal(SIGSEGV, SIG_DFL);
                _exit(((volatile uint8_t *)mem)[c.gfn * TPAGE] == 0 ? 10 : 11);
            }
            if (child > 0)
                waitpid(child, &status, 0);
            reply(rep_w, status);
            break;
        }
        case C_DAEMON_STATE:
            reply(rep_w, dexc_guest_daemon_state(a));
            break;
        case C_DETACH:
            reply(rep_w, dexc_guest_detach(a));
            break;
        case C_EXIT:
            _exit((int)c.arg);
        default:
            reply(rep_w, -EINVAL);
        }
    }
    _exit(0);
}

/* ------------------------------------------------------------------ */
/* The daemon (test) side                                              */

static void test_logger(void *ctx, int level, const char *msg)
{
    (void)ctx;
    snprintf(th_last_log, sizeof th_last_log, "%s", msg);
    if (getenv("DEXC_TEST_VERBOSE"))
        fprintf(stderr, "[dexc %d] %s\n", level, msg);
}

dexc_listener *th_listen(const char **path_out)
{
    dexc_listener *l;

    dexc_set_logger(test_logger, NULL);
    snprintf(sockdir, sizeof sockdir, "/tmp/test_dexc.XXXXXX");
    if (!mkdtemp(sockdir))
        return NULL;
    snprintf(sockpath, sizeof sockpath, "%s/dexc.sock", sockdir);
    if (dexc_listen(sockpath, 0, &l)) {
        rmdir(sockdir);
        return NULL;
    }
    if (path_out)
        *path_out = sockpath;
    return l;
}

void th_unlisten(dexc_listener *l)
{
    dexc_listener_close(l);
    rmdir(sockdir);
}

static int read_reply(struct tguest *t, int64_t *val)
{
    return read(t->rep_r, val, sizeof *val) == sizeof *val ? 0 : -1;
}

struct tguest *th_spawn(dexc_listener *l, const char *path, size_t npages,
                        unsigned attach_flags, unsigned open_flags,
                        const char *name)
{
    struct tguest *t = calloc(1, sizeof *t);
    int cmd[2], rep[2];
    uint64_t deadline;
    int64_t v;

    if (!t)
        return NULL;
    t->npages = npages;
    t->auto_restore = true;
    t->expect = calloc(npages, TPAGE);
    if (!t->expect || pipe2(cmd, O_CLOEXEC) || pipe2(rep, O_CLOEXEC)) {
        free(t->expect);
        free(t);
        return NULL;
    }
    fflush(NULL);
    t->pid = fork();
    if (t->pid == 0) {
        close(cmd[1]);
        close(rep[0]);
        guest_main(path, npages, attach_flags, name, cmd[0], rep[1]);
    }
    close(cmd[0]);
    close(rep[1]);
    t->cmd_w = cmd[1];
    t->rep_r = rep[0];
    if (t->pid < 0)
        goto fail;

    /* Accept it: the guest waits for our answer before replying. */
    deadline = now_ms() + 10000;
    while (!t->g && now_ms() < deadline) {
        struct pollfd pf = { .fd = dexc_listener_fd(l), .events = POLLIN };
        struct dexc_info info;

        poll(&pf, 1, 100);
        /* Refusals of other connections are not this guest's business. */
        if (dexc_accept(l, open_flags, &t->g) == 1 &&
            (dexc_get_info(t->g, &info) || info.pid != t->pid)) {
            dexc_close(t->g);
            t->g = NULL;
        }
    }
    if (!t->g || read_reply(t, &v) || v != 0)
        goto fail;
    if (th_send(t, C_BASE, 0, 0, 0, 0) || th_wait(t, &v, 5000))
        goto fail;
    t->base = (uint64_t)v;
    return t;

fail:
    th_destroy(t);
    return NULL;
}

void th_destroy(struct tguest *t)
{
    if (!t)
        return;
    if (t->pid > 0) {
        kill(t->pid, SIGKILL);
        waitpid(t->pid, NULL, 0);
    }
    if (t->g)
        dexc_close(t->g);
    close(t->cmd_w);
    close(t->rep_r);
    free(t->expect);
    free(t);
}

int th_send(struct tguest *t, uint32_t op, uint64_t gfn, uint64_t count,
            uint64_t seed, uint32_t arg)
{
    struct tcmd c = { .op = op, .arg = arg, .gfn = gfn, .count = count,
                      .seed = seed };

    return write(t->cmd_w, &c, sizeof c) == sizeof c ? 0 : -1;
}

int th_serve(struct tguest *t)
{
    struct dexc_event ev;
    int n = 0;

    while (t->g && dexc_next_event(t->g, &ev) == 1) {
        if (t->nev < MAX_EVLOG)
            t->evlog[t->nev++] = ev;
        n++;
        if (ev.type == DEXC_EV_GONE) {
            t->gone_seen = true;
            break;
        }
        if (ev.type == DEXC_EV_FAULT && t->auto_restore) {
            struct dexc_page p = { .gfn = ev.gfn };

            if (dexc_restore(t->g, &p, 1, t->expect + ev.gfn * TPAGE, 0) != 1)
                t->restore_errors++;
        }
    }
    return n;
}

int th_wait(struct tguest *t, int64_t *val, int timeout_ms)
{
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;

    for (;;) {
        struct pollfd pf[2] = {
            { .fd = t->rep_r, .events = POLLIN },
            { .fd = t->g ? dexc_event_fd(t->g) : -1, .events = POLLIN },
        };
        uint64_t now = now_ms();

        if (now >= deadline)
            return -1;
        if (poll(pf, 2, (int)(deadline - now)) < 0 && errno != EINTR)
            return -1;
        th_serve(t);
        if (pf[0].revents & POLLIN)
            return read_reply(t, val);
        if (pf[0].revents & (POLLHUP | POLLERR))
            return -1;
    }
}

int64_t th_call(struct tguest *t, uint32_t op, uint64_t gfn, uint64_t count,
                uint64_t seed, uint32_t arg)
{
    int64_t v;

    if (th_send(t, op, gfn, count, seed, arg) || th_wait(t, &v, 10000))
        return INT64_MIN;
    return v;
}

bool th_wait_event_fd(struct tguest *t, int timeout_ms)
{
    struct pollfd pf = { .fd = dexc_event_fd(t->g), .events = POLLIN };

    return poll(&pf, 1, timeout_ms) == 1 && (pf.revents & POLLIN);
}

int th_open_memfd(struct tguest *t)
{
    char path[128];

    snprintf(path, sizeof path, "/proc/%d/map_files/%llx-%llx", (int)t->pid,
             (unsigned long long)t->base,
             (unsigned long long)(t->base + t->npages * TPAGE));
    return open(path, O_RDWR | O_CLOEXEC);
}

bool th_memfd_has_page(int memfd, uint64_t gfn)
{
    off_t off = (off_t)(gfn * TPAGE);

    return lseek(memfd, off, SEEK_DATA) == off;
}

int th_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    if (!d)
        return -1;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;   /* the directory's own descriptor */
}

size_t th_count_events(const struct tguest *t, uint32_t type, uint64_t gfn)
{
    size_t n = 0;

    for (size_t i = 0; i < t->nev; i++)
        if (t->evlog[i].type == type && t->evlog[i].gfn == gfn)
            n++;
    return n;
}

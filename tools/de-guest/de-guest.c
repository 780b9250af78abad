/*
 * de-guest - a test guest for the userfaultfd backend.
 *
 * It attaches RAM to a running de-dom0d (dexc_guest_attach), fills it from
 * a memory image or with generated content that has the redundancy real
 * guests have, then reads and writes it at a given rate with a hot/cold
 * skew while the daemon shares, patches, compresses and restores its pages
 * underneath. Every page's XXH3 checksum is kept outside the guest RAM, so
 * every read is checked and, at the end, every page is: the exit status is
 * 0 only if every byte is what the guest last wrote.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "dexc.h"
#include "mem_image.h"

#define PAGE DEXC_PAGE_SIZE
#define LAT_BUCKETS 48          /* log2 of nanoseconds */

enum { EXIT_WRONG = 1, EXIT_USAGE = 2, EXIT_DAEMON_LOST = 3 };

enum pattern { PAT_RANDOM, PAT_SEQ };

struct options {
    const char *socket;
    const char *image;
    size_t image_first;
    uint64_t mem_mib;
    enum pattern pattern;
    double rate;                /* ops/s, 0 = as fast as possible */
    unsigned hot, hot_weight;   /* percent of pages, percent of accesses */
    unsigned write_ratio;       /* percent of ops that write */
    double duration;            /* s, 0 = until SIGTERM/SIGINT */
    uint64_t seed;
    const char *name;
    const char *report;
    bool lazy;
};

struct stats {
    _Atomic uint64_t ops, reads, writes, wrong_reads;
    uint64_t wrong_pages;
    uint64_t lat[LAT_BUCKETS];  /* op latency histogram */
    uint64_t lat_max_ns;
    double fill_s, run_s, verify_s;
    bool verified;
};

static volatile sig_atomic_t stop_requested;

static struct options opt;
static struct stats st;
static dexc_attachment *att;
static uint64_t npages;

/* ------------------------------------------------------------------ */

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_s(double s)
{
    struct timespec ts;

    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    nanosleep(&ts, NULL);
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t mix2(uint64_t a, uint64_t b)
{
    uint64_t s = a * 0x100000001b3ull ^ b;

    return splitmix(&s);
}

/* ------------------------------------------------------------------ */
/* Generated contents: the kinds of pages the Difference Engine meets   */

#define TEMPLATES 64

static const char *const words[] = {
    "the ", "of ", "and ", "kernel ", "memory ", "page ", "struct ",
    "return ", "int ", "void ", "static ", "const ", "char ", "error ",
    "config ", "value ", "/usr/lib/", "x86_64-linux-gnu/", ".so.6", "\n",
    "GLIBC_2.34", "main", "0x00000000", "    ", "{", "}", ";\n", "=",
};

static void text_page(uint64_t s, uint8_t *p)
{
    size_t off = 0;

    while (off < PAGE) {
        const char *w = words[splitmix(&s) % (sizeof words / sizeof *words)];
        size_t n = strlen(w);

        if (n > PAGE - off)
            n = PAGE - off;
        memcpy(p + off, w, n);
        off += n;
    }
}

static void random_page(uint64_t s, uint8_t *p)
{
    for (size_t i = 0; i < PAGE; i += 8) {
        uint64_t v = splitmix(&s);

        memcpy(p + i, &v, 8);
    }
}

/* A template: half structured (pointers, small integers), half text. */
static void template_page(uint64_t seed, unsigned t, uint8_t *p)
{
    uint64_t s = mix2(seed, 0x7e3a11u + t);

    text_page(s, p);
    for (size_t i = 0; i < PAGE / 2; i += 16) {
        uint64_t ptr = 0xffff888000000000ull + (splitmix(&s) & 0xffffff0ull);
        uint64_t small = splitmix(&s) & 0xff;

        memcpy(p + i, &ptr, 8);
        memcpy(p + i + 8, &small, 8);
    }
}

/* Page i of generated RAM: 25% zero, 15% copies of a template, 20%
 * templates with a few small changes, 25% text, 15% random. */
static void generated_page(uint64_t seed, uint64_t i, uint8_t *p)
{
    uint64_t h = mix2(seed, i), kind = h % 100, s = h;

    if (kind < 25) {
        memset(p, 0, PAGE);
    } else if (kind < 40) {
        template_page(seed, (unsigned)(h >> 32) % TEMPLATES, p);
    } else if (kind < 60) {
        unsigned edits = 1 + (unsigned)(splitmix(&s) % 8);

        template_page(seed, (unsigned)(h >> 32) % TEMPLATES, p);
        for (unsigned e = 0; e < edits; e++) {
            size_t off = splitmix(&s) % (PAGE - 32);
            uint64_t v[4] = { splitmix(&s), splitmix(&s), splitmix(&s),
                              splitmix(&s) };

            memcpy(p + off, v, 1 + splitmix(&s) % 32);
        }
    } else if (kind < 85) {
        text_page(s, p);
    } else {
        random_page(s, p);
    }
}

/* A write as programs do them: a few bytes to a few hundred at one spot,
 * mostly values like the ones already there. */
static void write_into(uint8_t *p, uint64_t *rng)
{
    static const size_t lens[] = { 8, 8, 16, 16, 32, 64, 256 };
    size_t len = lens[splitmix(rng) % (sizeof lens / sizeof *lens)];
    size_t off = (splitmix(rng) % (PAGE / len)) * len;
    size_t from = (splitmix(rng) % (PAGE / len)) * len;
    uint8_t buf[256];

    memcpy(buf, p + from, len);
    for (size_t i = 0; i < len; i += 8) {
        uint64_t v;

        memcpy(&v, buf + i, 8);
        v += splitmix(rng) & 0xffff;    /* counters, small deltas */
        memcpy(buf + i, &v, 8);
    }
    memcpy(p + off, buf, len);
}

/* ------------------------------------------------------------------ */

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static const char *daemon_state_name(int s)
{
    switch (s) {
    case DEXC_DAEMON_ATTACHED: return "attached";
    case DEXC_DAEMON_RELEASED: return "released";
    case DEXC_DAEMON_LOST: return "lost";
    }
    return "?";
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static double lat_percentile_us(double q)
{
    uint64_t total = 0, seen = 0;

    for (int b = 0; b < LAT_BUCKETS; b++)
        total += st.lat[b];
    if (!total)
        return 0;
    for (int b = 0; b < LAT_BUCKETS; b++) {
        seen += st.lat[b];
        if ((double)seen >= q * (double)total)
            return (double)(1ull << b) / 1000.0;    /* bucket's upper bound */
    }
    return (double)st.lat_max_ns / 1000.0;
}

static void write_report(const char *path, int daemon_state, int status)
{
    FILE *f = fopen(path, "w");
    double ops_s = st.run_s > 0 ? (double)st.ops / st.run_s : 0;

    if (!f) {
        fprintf(stderr, "de-guest: %s: %s\n", path, strerror(errno));
        return;
    }
    fprintf(f, "{\n  \"name\": ");
    json_string(f, opt.name);
    fprintf(f, ",\n  \"guest_id\": %u,\n", dexc_attachment_id(att));
    fprintf(f, "  \"pages\": %" PRIu64 ",\n  \"mem_mib\": %" PRIu64 ",\n",
            npages, opt.mem_mib);
    fprintf(f, "  \"image\": ");
    if (opt.image)
        json_string(f, opt.image);
    else
        fprintf(f, "null");
    fprintf(f, ",\n  \"pattern\": \"%s\",\n  \"seed\": %" PRIu64 ",\n",
            opt.pattern == PAT_SEQ ? "seq" : "random", opt.seed);
    fprintf(f, "  \"rate_target\": %.1f,\n  \"ops_per_s\": %.1f,\n",
            opt.rate, ops_s);
    fprintf(f, "  \"ops\": %" PRIu64 ",\n  \"reads\": %" PRIu64 ",\n"
            "  \"writes\": %" PRIu64 ",\n", (uint64_t)st.ops,
            (uint64_t)st.reads, (uint64_t)st.writes);
    fprintf(f, "  \"wrong_reads\": %" PRIu64 ",\n", (uint64_t)st.wrong_reads);
    if (st.verified)
        fprintf(f, "  \"wrong_pages\": %" PRIu64 ",\n", st.wrong_pages);
    else
        fprintf(f, "  \"wrong_pages\": null,\n");
    fprintf(f, "  \"duration_s\": %.3f,\n  \"fill_s\": %.3f,\n"
            "  \"verify_s\": %.3f,\n", st.run_s, st.fill_s, st.verify_s);
    fprintf(f, "  \"op_latency_us\": { \"p50\": %.2f, \"p99\": %.2f, "
            "\"p999\": %.2f, \"max\": %.2f },\n", lat_percentile_us(0.5),
            lat_percentile_us(0.99), lat_percentile_us(0.999),
            (double)st.lat_max_ns / 1000.0);
    fprintf(f, "  \"daemon\": \"%s\",\n  \"exit_status\": %d\n}\n",
            daemon_state_name(daemon_state), status);
    if (fclose(f))
        fprintf(stderr, "de-guest: %s: %s\n", path, strerror(errno));
}

/* Watches the daemon. If it goes away holding pages, whatever thread
 * touches them next waits forever: say so and leave rather than hang. */
static int watch_stop_fd[2] = { -1, -1 };

static void *watcher(void *arg)
{
    (void)arg;
    for (;;) {
        struct pollfd pf[2] = {
            { .fd = dexc_attachment_fd(att), .events = POLLIN | POLLRDHUP },
            { .fd = watch_stop_fd[0], .events = POLLIN },
        };
        int s;

        if (poll(pf, 2, -1) < 0)
            continue;
        if (pf[1].revents)
            return NULL;
        s = dexc_guest_daemon_state(att);
        if (s == DEXC_DAEMON_RELEASED) {
            fprintf(stderr, "de-guest %s: the daemon released the memory; "
                    "running on alone\n", opt.name);
            return NULL;
        }
        if (s == DEXC_DAEMON_LOST) {
            fprintf(stderr, "de-guest %s: the daemon went away holding pages "
                    "of this guest; they cannot be read any more\n", opt.name);
            if (opt.report)
                write_report(opt.report, s, EXIT_DAEMON_LOST);
            _exit(EXIT_DAEMON_LOST);
        }
    }
}

/* ------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f,
        "usage: de-guest --socket PATH --mem MiB [--image FILE[:FIRST_PAGE]]\n"
        "                [--pattern random|seq] [--rate OPS/s]\n"
        "                [--hot PERCENT --hot-weight PERCENT]\n"
        "                [--write-ratio PERCENT] [--duration SECONDS]\n"
        "                [--seed N] [--name NAME] [--report FILE] [--lazy]\n");
}

static bool parse_u64(const char *s, uint64_t *v)
{
    char *end;

    errno = 0;
    *v = strtoull(s, &end, 0);
    return !errno && end != s && !*end && s[0] != '-';
}

static bool parse_double(const char *s, double *v)
{
    char *end;

    errno = 0;
    *v = strtod(s, &end);
    return !errno && end != s && !*end && *v >= 0 && isfinite(*v);
}

static bool parse_percent(const char *s, unsigned *v)
{
    uint64_t x;

    if (!parse_u64(s, &x) || x > 100)
        return false;
    *v = (unsigned)x;
    return true;
}

static int parse_args(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "socket", required_argument, NULL, 's' },
        { "mem", required_argument, NULL, 'm' },
        { "image", required_argument, NULL, 'i' },
        { "pattern", required_argument, NULL, 'p' },
        { "rate", required_argument, NULL, 'r' },
        { "hot", required_argument, NULL, 'H' },
        { "hot-weight", required_argument, NULL, 'W' },
        { "write-ratio", required_argument, NULL, 'w' },
        { "duration", required_argument, NULL, 'd' },
        { "seed", required_argument, NULL, 'S' },
        { "name", required_argument, NULL, 'n' },
        { "report", required_argument, NULL, 'R' },
        { "lazy", no_argument, NULL, 'L' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    static char image_path[4096];
    int c;

    opt.pattern = PAT_RANDOM;
    opt.hot = 20;
    opt.hot_weight = 80;
    opt.write_ratio = 20;
    opt.seed = 1;
    opt.name = "de-guest";
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        bool ok = true;

        switch (c) {
        case 's': opt.socket = optarg; break;
        case 'm': ok = parse_u64(optarg, &opt.mem_mib) && opt.mem_mib > 0 &&
                       opt.mem_mib <= (1ull << 24); break;
        case 'i': {
            char *colon = strrchr(optarg, ':');
            uint64_t first = 0;

            if (strlen(optarg) >= sizeof image_path) {
                ok = false;
                break;
            }
            strcpy(image_path, optarg);
            if (colon && parse_u64(colon + 1, &first)) {
                image_path[colon - optarg] = '\0';
                opt.image_first = (size_t)first;
            }
            opt.image = image_path;
            break;
        }
        case 'p':
            if (!strcmp(optarg, "random"))
                opt.pattern = PAT_RANDOM;
            else if (!strcmp(optarg, "seq"))
                opt.pattern = PAT_SEQ;
            else
                ok = false;
            break;
        case 'r': ok = parse_double(optarg, &opt.rate); break;
        case 'H': ok = parse_percent(optarg, &opt.hot); break;
        case 'W': ok = parse_percent(optarg, &opt.hot_weight); break;
        case 'w': ok = parse_percent(optarg, &opt.write_ratio); break;
        case 'd': ok = parse_double(optarg, &opt.duration); break;
        case 'S': ok = parse_u64(optarg, &opt.seed); break;
        case 'n': opt.name = optarg; break;
        case 'R': opt.report = optarg; break;
        case 'L': opt.lazy = true; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
        if (!ok) {
            const char *name = "?";

            for (const struct option *o = longopts; o->name; o++)
                if (o->val == c)
                    name = o->name;
            fprintf(stderr, "de-guest: bad value for --%s: %s\n", name,
                    optarg);
            return -1;
        }
    }
    if (optind != argc || !opt.socket || !opt.mem_mib) {
        usage(stderr);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */

static int fill(uint8_t *mem, uint64_t *cks)
{
    struct mem_image img;
    char err[512];

    if (opt.image) {
        if (mem_image_open(&img, opt.image, err, sizeof err)) {
            fprintf(stderr, "de-guest: %s\n", err);
            return -1;
        }
        if (!img.npages) {
            fprintf(stderr, "de-guest: %s: no pages\n", opt.image);
            mem_image_close(&img);
            return -1;
        }
        for (uint64_t i = 0; i < npages && !stop_requested; i++) {
            memcpy(mem + i * PAGE,
                   mem_image_page(&img, (opt.image_first + i) % img.npages),
                   PAGE);
            cks[i] = XXH3_64bits(mem + i * PAGE, PAGE);
        }
        mem_image_close(&img);
    } else {
        for (uint64_t i = 0; i < npages && !stop_requested; i++) {
            generated_page(opt.seed, i, mem + i * PAGE);
            cks[i] = XXH3_64bits(mem + i * PAGE, PAGE);
        }
    }
    return 0;
}

/* Pages split by hash into a hot set (opt.hot percent of them) and the
 * rest; each access goes to the hot set with probability hot_weight. */
struct skew {
    uint64_t *hot, *cold;
    uint64_t nhot, ncold;
};

static int make_skew(struct skew *k)
{
    k->hot = malloc(npages * sizeof *k->hot);
    k->cold = malloc(npages * sizeof *k->cold);
    k->nhot = k->ncold = 0;
    if (!k->hot || !k->cold)
        return -1;
    for (uint64_t i = 0; i < npages; i++) {
        if (mix2(opt.seed ^ 0x40711ull, i) % 100 < opt.hot)
            k->hot[k->nhot++] = i;
        else
            k->cold[k->ncold++] = i;
    }
    return 0;
}

static uint64_t pick_page(const struct skew *k, uint64_t *rng, uint64_t op)
{
    bool hot;

    if (opt.pattern == PAT_SEQ)
        return op % npages;
    hot = splitmix(rng) % 100 < opt.hot_weight;
    if ((hot && k->nhot) || !k->ncold)
        return k->hot[splitmix(rng) % k->nhot];
    return k->cold[splitmix(rng) % k->ncold];
}

static void record_latency(uint64_t ns)
{
    int b = 0;

    while (b < LAT_BUCKETS - 1 && (1ull << b) < ns)
        b++;
    st.lat[b]++;
    if (ns > st.lat_max_ns)
        st.lat_max_ns = ns;
}

static void run(uint8_t *mem, uint64_t *cks)
{
    struct skew k;
    uint64_t rng = mix2(opt.seed, 0xacce55ull);
    double start = now_s(), end = opt.duration > 0 ? start + opt.duration : 0;

    if (make_skew(&k)) {
        fprintf(stderr, "de-guest: out of memory\n");
        stop_requested = 1;
    }
    for (uint64_t op = 0; !stop_requested; op++) {
        uint64_t i, t0;
        uint8_t *p;

        if ((op & 63) == 0 || opt.rate > 0) {
            double now = now_s();

            if (end && now >= end)
                break;
            if (opt.rate > 0) {
                /* Op n is due at start + n / rate. */
                double due = start + (double)op / opt.rate;

                if (due > now) {
                    sleep_s(due - now);
                    if (stop_requested)
                        break;
                }
            }
        }
        i = pick_page(&k, &rng, op);
        p = mem + i * PAGE;
        t0 = now_ns();
        if (splitmix(&rng) % 100 < opt.write_ratio) {
            write_into(p, &rng);
            cks[i] = XXH3_64bits(p, PAGE);
            st.writes++;
        } else {
            if (XXH3_64bits(p, PAGE) != cks[i]) {
                if (!st.wrong_reads)
                    fprintf(stderr, "de-guest %s: page %" PRIu64 " read wrong\n",
                            opt.name, i);
                st.wrong_reads++;
            }
            st.reads++;
        }
        record_latency(now_ns() - t0);
        st.ops++;
    }
    st.run_s = now_s() - start;
    free(k.hot);
    free(k.cold);
}

static void verify(const uint8_t *mem, const uint64_t *cks)
{
    double t0 = now_s();

    st.wrong_pages = 0;
    for (uint64_t i = 0; i < npages; i++)
        if (XXH3_64bits(mem + i * PAGE, PAGE) != cks[i]) {
            if (st.wrong_pages < 10)
                fprintf(stderr, "de-guest %s: page %" PRIu64 " is wrong\n",
                        opt.name, i);
            st.wrong_pages++;
        }
    st.verify_s = now_s() - t0;
    st.verified = true;
}

int main(int argc, char **argv)
{
    struct sigaction sa = { .sa_handler = on_signal };
    pthread_t watch;
    uint64_t *cks;
    uint8_t *mem;
    int r, status, dstate;
    double t0;

    if (parse_args(argc, argv))
        return EXIT_USAGE;
    setvbuf(stdout, NULL, _IOLBF, 0);
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    npages = opt.mem_mib * (1024 * 1024 / PAGE);
    cks = calloc(npages, sizeof *cks);
    if (!cks) {
        fprintf(stderr, "de-guest: out of memory\n");
        return EXIT_USAGE;
    }
    r = dexc_guest_attach(opt.socket, npages * PAGE, opt.name,
                          opt.lazy ? 0 : DEXC_ATTACH_POPULATE, (void **)&mem,
                          &att);
    if (r) {
        fprintf(stderr, "de-guest: attaching to %s: %s\n", opt.socket,
                strerror(-r));
        free(cks);
        return EXIT_USAGE;
    }
    if (pipe(watch_stop_fd) ||
        pthread_create(&watch, NULL, watcher, NULL)) {
        fprintf(stderr, "de-guest: cannot start the daemon watcher\n");
        return EXIT_USAGE;
    }

    t0 = now_s();
    if (fill(mem, cks)) {
        if (write(watch_stop_fd[1], "x", 1) != 1)
            _exit(EXIT_USAGE);
        pthread_join(watch, NULL);
        dexc_guest_detach(att);
        free(cks);
        return EXIT_USAGE;
    }
    st.fill_s = now_s() - t0;
    if (!stop_requested)
        run(mem, cks);
    verify(mem, cks);

    status = st.wrong_pages || st.wrong_reads ? EXIT_WRONG : 0;
    if (write(watch_stop_fd[1], "x", 1) != 1)
        _exit(EXIT_USAGE);
    pthread_join(watch, NULL);
    dstate = dexc_guest_daemon_state(att);
    printf("de-guest %s: pages=%" PRIu64 " ops=%" PRIu64 " reads=%" PRIu64
           " writes=%" PRIu64 " wrong_reads=%" PRIu64 " wrong_pages=%" PRIu64
           " ops/s=%.0f duration=%.2fs\n", opt.name, npages,
           (uint64_t)st.ops, (uint64_t)st.reads, (uint64_t)st.writes,
           (uint64_t)st.wrong_reads, st.wrong_pages,
           st.run_s > 0 ? (double)st.ops / st.run_s : 0.0, st.run_s);
    if (opt.report)
        write_report(opt.report, dstate, status);
    dexc_guest_detach(att);
    close(watch_stop_fd[0]);
    close(watch_stop_fd[1]);
    free(cks);
    return status;
}

/*
 * test_control.c - the control server on a real socket in a test
 * event_base, with fake daemon callbacks; and de-ctl against it.
 *
 * Clients run in a helper thread (blocking sockets, or de-ctl spawned)
 * while the test thread runs the event loop; the thread only records
 * what it saw, every assertion is made on the test thread afterwards
 * (CUnit is not thread-safe).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include <CUnit/CUnit.h>

#include "control.h"
#include "stats.h"
#include "tests.h"

extern char **environ;

/* ---- fake daemon ---- */

struct fake {
    int calls[CTL_NCMDS];
    char guest[128];
    char key[64];
    char value[64];
};

static bool known_guest(const char *g)
{
    return strcmp(g, "web-1") == 0 || strcmp(g, "db") == 0 ||
           strcmp(g, "my guest") == 0;
}

static int f_status(void *ctx, struct json_buf *j, char *err, size_t n)
{
    struct fake *f = ctx;

    (void)err;
    (void)n;
    f->calls[CTL_CMD_STATUS]++;
    json_kv_str(j, "version", "test");
    json_kv_u64(j, "uptime_s", 42);
    json_key(j, "store");
    json_obj_begin(j);
    json_kv_u64(j, "footprint", 1u << 20);
    json_obj_end(j);
    return 0;
}

static int f_guests(void *ctx, struct json_buf *j, char *err, size_t n)
{
    struct fake *f = ctx;

    (void)err;
    (void)n;
    f->calls[CTL_CMD_GUESTS]++;
    json_key(j, "guests");
    json_arr_begin(j);
    json_obj_begin(j);
    json_kv_str(j, "name", "web-1");
    json_kv_u64(j, "id", 1);
    json_kv_str(j, "state", "running");
    json_obj_end(j);
    json_obj_begin(j);
    json_kv_str(j, "name", "db");
    json_kv_u64(j, "id", 2);
    json_kv_str(j, "state", "paused");
    json_obj_end(j);
    json_arr_end(j);
    return 0;
}

static void fake_stats(struct de_stats *s, unsigned k)
{
    stats_init(s);
    s->pages_shared = 1000 * k;
    s->pages_patched = 200 * k;
    s->pages_compressed = 30 * k;
    s->pages_swapped = 4 * k;
    s->store_bytes = (uint64_t)k << 20;
    s->saved_bytes = (uint64_t)k * 5 << 20;
    for (int i = 0; i < 100; i++)
        stats_fault(s, KIND_PATCHED, 10000u * k + (uint64_t)i * 100);
}

static int f_stats(void *ctx, const char *guest, struct json_buf *j,
                   char *err, size_t n)
{
    struct fake *f = ctx;
    struct de_stats g, s[2];
    const char *names[2] = { "web-1", "db" };

    f->calls[CTL_CMD_STATS]++;
    snprintf(f->guest, sizeof f->guest, "%s", guest ? guest : "(all)");
    if (guest && !known_guest(guest)) {
        snprintf(err, n, "no such guest '%s'", guest);
        return -1;
    }
    stats_init(&g);
    for (unsigned i = 0; i < 2; i++) {
        fake_stats(&s[i], i + 1);
        stats_merge(&g, &s[i]);
    }
    json_key(j, "global");
    json_obj_begin(j);
    stats_to_json(j, &g);
    json_obj_end(j);
    json_key(j, "guests");
    json_arr_begin(j);
    for (unsigned i = 0; i < 2; i++) {
        if (guest && strcmp(guest, names[i]) != 0)
            continue;
        json_obj_begin(j);
        json_kv_str(j, "name", names[i]);
        json_kv_u64(j, "id", i + 1);
        stats_to_json(j, &s[i]);
        json_obj_end(j);
    }
    json_arr_end(j);
    return 0;
}

static int f_set(void *ctx, const char *guest, const char *key,
                 const char *value, struct json_buf *j, char *err, size_t n)
{
    struct fake *f = ctx;

    f->calls[CTL_CMD_SET]++;
    snprintf(f->guest, sizeof f->guest, "%s", guest);
    snprintf(f->key, sizeof f->key, "%s", key);
    snprintf(f->value, sizeof f->value, "%s", value);
    if (strcmp(key, "bad") == 0) {
        snprintf(err, n, "unknown key '%s'", key);
        return -1;
    }
    json_kv_str(j, "guest", guest);
    return 0;
}

static int guest_cmd(struct fake *f, enum ctl_cmd cmd, const char *guest,
                     struct json_buf *j, char *err, size_t n)
{
    f->calls[cmd]++;
    snprintf(f->guest, sizeof f->guest, "%s", guest);
    if (!known_guest(guest)) {
        snprintf(err, n, "no such guest '%s'", guest);
        return -1;
    }
    json_kv_str(j, "guest", guest);
    return 0;
}

static int f_pause(void *ctx, const char *g, struct json_buf *j, char *e,
                   size_t n)
{
    return guest_cmd(ctx, CTL_CMD_PAUSE, g, j, e, n);
}

static int f_resume(void *ctx, const char *g, struct json_buf *j, char *e,
                    size_t n)
{
    return guest_cmd(ctx, CTL_CMD_RESUME, g, j, e, n);
}

static int f_flush(void *ctx, const char *g, struct json_buf *j, char *e,
                   size_t n)
{
    return guest_cmd(ctx, CTL_CMD_FLUSH, g, j, e, n);
}

static const struct ctl_ops fake_ops = {
    f_status, f_guests, f_stats, f_set, f_pause, f_resume, f_flush,
};

/* ---- harness ---- */

struct harness {
    struct event_base *base;
    struct ctl_server *srv;
    char path[108];
    struct fake fake;
};

static int h_start(struct harness *h, const char *name,
                   const struct ctl_limits *lim)
{
    char err[512];

    memset(h, 0, sizeof *h);
    td_path(h->path, sizeof h->path, name);
    h->base = event_base_new();
    if (!h->base)
        return -1;
    h->srv = ctl_server_new(h->base, h->path, &fake_ops, &h->fake, lim,
                            err, sizeof err);
    if (!h->srv) {
        fprintf(stderr, "\n  ctl_server_new: %s\n", err);
        event_base_free(h->base);
        return -1;
    }
    return 0;
}

static void h_stop(struct harness *h)
{
    ctl_server_free(h->srv);
    event_base_free(h->base);
}

struct runner {
    void *(*fn)(void *);
    void *arg;
    int pipe[2];
};

static void *runner_main(void *arg)
{
    struct runner *r = arg;

    r->fn(r->arg);
    (void)!write(r->pipe[1], "x", 1);
    return NULL;
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

/* Runs fn(arg) on a thread while the loop serves it. Returns 0, or -1 if
 * it took more than 20 s. */
static int run_client(struct harness *h, void *(*fn)(void *), void *arg)
{
    struct runner r = { fn, arg, { -1, -1 } };
    struct event *ev, *tmo;
    struct timeval tv = { 20, 0 };
    pthread_t t;
    char c;
    int rc = 0;

    if (pipe(r.pipe) != 0)
        return -1;
    ev = event_new(h->base, r.pipe[0], EV_READ, on_done, h->base);
    tmo = evtimer_new(h->base, on_done, h->base);
    event_add(ev, NULL);
    evtimer_add(tmo, &tv);
    pthread_create(&t, NULL, runner_main, &r);
    event_base_dispatch(h->base);
    if (read(r.pipe[0], &c, 1) != 1)
        rc = -1;        /* timed out: the thread is still stuck */
    pthread_join(t, NULL);
    event_free(ev);
    event_free(tmo);
    close(r.pipe[0]);
    close(r.pipe[1]);
    return rc;
}

/* ---- a raw client ---- */

struct job {
    const char *path;
    const char *send;
    size_t send_len;
    int want_lines;             /* stop after this many "\n" */
    unsigned pause_ms;          /* before reading */
    char out[1 << 16];
    size_t out_len;
    bool eof;                   /* connection closed by the server */
    int err;                    /* connect errno */
};

static int raw_connect(const char *path)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    strcpy(sun.sun_path, path);
    if (connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads until `lines` newlines, EOF or 5 s of silence. */
static void read_lines(int fd, struct job *j, int lines)
{
    int seen = 0;

    for (size_t i = 0; i < j->out_len; i++)
        seen += j->out[i] == '\n';
    while (seen < lines && j->out_len < sizeof j->out - 1) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ssize_t r;

        if (poll(&p, 1, 5000) <= 0)
            break;
        r = recv(fd, j->out + j->out_len, sizeof j->out - 1 - j->out_len,
                 0);
        if (r <= 0) {
            j->eof = true;      /* EOF, or ECONNRESET after the reply */
            break;
        }
        for (ssize_t i = 0; i < r; i++)
            seen += j->out[j->out_len + (size_t)i] == '\n';
        j->out_len += (size_t)r;
    }
    j->out[j->out_len] = '\0';
}

static void *job_run(void *arg)
{
    struct job *j = arg;
    int fd = raw_connect(j->path);

    if (fd < 0) {
        j->err = errno;
        return NULL;
    }
    (void)send(fd, j->send, j->send_len, MSG_NOSIGNAL);
    /* a request without its newline is complete only at end of stream */
    if (j->send_len > 0 && j->send_len < 1024 &&
        j->send[j->send_len - 1] != '\n')
        shutdown(fd, SHUT_WR);
    if (j->pause_ms)
        usleep(j->pause_ms * 1000);
    read_lines(fd, j, j->want_lines);
    if (!j->eof && j->want_lines < 1000) {
        /* see whether the server hangs up on its own within 50 ms */
        struct pollfd p = { .fd = fd, .events = POLLIN };
        char c;

        if (poll(&p, 1, 50) == 1 && recv(fd, &c, 1, MSG_DONTWAIT) <= 0)
            j->eof = true;
    }
    close(fd);
    return NULL;
}

static struct job *request(struct harness *h, const char *text, size_t len,
                           int lines)
{
    struct job *j = calloc(1, sizeof *j);

    j->path = h->path;
    j->send = text;
    j->send_len = len;
    j->want_lines = lines;
    CU_ASSERT_EQUAL(run_client(h, job_run, j), 0);
    return j;
}

/* One request line, its one reply parsed. */
static struct jv *ask(struct harness *h, const char *line)
{
    char err[256];
    struct job *j = request(h, line, strlen(line), 1);
    struct jv *v;
    size_t n = j->out_len;

    CU_ASSERT(n > 0 && j->out[n - 1] == '\n');
    v = jv_parse(j->out, n, err, sizeof err);
    if (!v)
        fprintf(stderr, "\n  bad reply to %s: %s (%s)\n", line, j->out, err);
    CU_ASSERT_PTR_NOT_NULL(v);
    free(j);
    return v;
}

static const char *error_of(const struct jv *v)
{
    return jv_string(jv_get(v, "error"), "");
}

/* ---- tests ---- */

static void test_socket(void)
{
    struct harness h, h2;
    struct stat st;
    char err[256];
    int fd;

    CU_ASSERT_EQUAL_FATAL(h_start(&h, "ctl.sock", NULL), 0);
    CU_ASSERT_EQUAL(stat(h.path, &st), 0);
    CU_ASSERT(S_ISSOCK(st.st_mode));
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
    /* a second daemon on the same path is refused */
    CU_ASSERT_PTR_NULL(ctl_server_new(h.base, h.path, &fake_ops, NULL, NULL,
                                      err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "another de-dom0d"));
    h_stop(&h);
    CU_ASSERT_EQUAL(stat(h.path, &st), -1);     /* unlinked */

    /* a stale socket (bound, nobody listening) is replaced */
    {
        struct sockaddr_un sun = { .sun_family = AF_UNIX };

        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        strcpy(sun.sun_path, h.path);
        CU_ASSERT_EQUAL(bind(fd, (struct sockaddr *)&sun, sizeof sun), 0);
        close(fd);
    }
    CU_ASSERT_EQUAL_FATAL(h_start(&h2, "ctl.sock", NULL), 0);
    h_stop(&h2);

    /* a regular file is not ours to remove */
    fd = open(h.path, O_WRONLY | O_CREAT, 0600);
    close(fd);
    {
        struct event_base *b = event_base_new();

        CU_ASSERT_PTR_NULL(ctl_server_new(b, h.path, &fake_ops, NULL, NULL,
                                          err, sizeof err));
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a socket"));
        CU_ASSERT_EQUAL(stat(h.path, &st), 0);
        event_base_free(b);
    }
    unlink(h.path);
}

static void test_commands(void)
{
    struct harness h;
    struct jv *v;
    const struct jv *a;

    CU_ASSERT_EQUAL_FATAL(h_start(&h, "cmd.sock", NULL), 0);

    v = ask(&h, "status\n");
    CU_ASSERT(jv_boolean(jv_get(v, "ok"), false));
    CU_ASSERT_STRING_EQUAL(jv_string(jv_get(v, "version"), ""), "test");
    CU_ASSERT_EQUAL(jv_uint(jv_get(jv_get(v, "store"), "footprint"), 0),
                    1u << 20);
    jv_free(v);

    v = ask(&h, "guests\r\n");
    a = jv_get(v, "guests");
    CU_ASSERT(a && a->type == JV_ARR && a->n == 2);
    jv_free(v);

    v = ask(&h, "stats\n");
    CU_ASSERT(jv_boolean(jv_get(v, "ok"), false));
    CU_ASSERT_EQUAL(jv_uint(jv_get(jv_get(v, "global"), "pages_shared"), 0),
                    3000);
    CU_ASSERT_EQUAL(jv_get(v, "guests")->n, 2);
    CU_ASSERT_STRING_EQUAL(h.fake.guest, "(all)");
    jv_free(v);

    v = ask(&h, "stats db\n");
    CU_ASSERT_EQUAL(jv_get(v, "guests")->n, 1);
    CU_ASSERT_STRING_EQUAL(h.fake.guest, "db");
    jv_free(v);

    v = ask(&h, "stats nosuch\n");
    CU_ASSERT(!jv_boolean(jv_get(v, "ok"), true));
    CU_ASSERT_STRING_EQUAL(error_of(v), "no such guest 'nosuch'");
    jv_free(v);

    v = ask(&h, "set \"my guest\" patch_threshold 1024\n");
    CU_ASSERT(jv_boolean(jv_get(v, "ok"), false));
    CU_ASSERT_STRING_EQUAL(h.fake.guest, "my guest");
    CU_ASSERT_STRING_EQUAL(h.fake.key, "patch_threshold");
    CU_ASSERT_STRING_EQUAL(h.fake.value, "1024");
    CU_ASSERT_STRING_EQUAL(jv_string(jv_get(v, "guest"), ""), "my guest");
    jv_free(v);

    v = ask(&h, "set web-1 bad 1\n");
    CU_ASSERT_STRING_EQUAL(error_of(v), "unknown key 'bad'");
    CU_ASSERT_PTR_NULL(jv_get(v, "guest"));     /* partial output dropped */
    jv_free(v);

    v = ask(&h, "set web-1 patch\n");
    CU_ASSERT_STRING_EQUAL(error_of(v), "usage: set GUEST KEY VALUE");
    jv_free(v);
    v = ask(&h, "status extra\n");
    CU_ASSERT_STRING_EQUAL(error_of(v), "usage: status");
    jv_free(v);

    v = ask(&h, "pause web-1\n");
    CU_ASSERT(jv_boolean(jv_get(v, "ok"), false));
    jv_free(v);
    v = ask(&h, "resume db\n");
    CU_ASSERT(jv_boolean(jv_get(v, "ok"), false));
    jv_free(v);
    v = ask(&h, "flush web-1\n");
    CU_ASSERT(jv_boolean(jv_get(v, "ok"), false));
    jv_free(v);
    v = ask(&h, "flush zz\n");
    CU_ASSERT_STRING_EQUAL(error_of(v), "no such guest 'zz'");
    jv_free(v);
    CU_ASSERT_EQUAL(h.fake.calls[CTL_CMD_PAUSE], 1);
    CU_ASSERT_EQUAL(h.fake.calls[CTL_CMD_RESUME], 1);
    CU_ASSERT_EQUAL(h.fake.calls[CTL_CMD_FLUSH], 2);

    v = ask(&h, "foo bar\n");
    CU_ASSERT(!jv_boolean(jv_get(v, "ok"), true));
    CU_ASSERT_STRING_EQUAL(error_of(v), "unknown command 'foo'");
    jv_free(v);

    /* a last line without its newline is still answered */
    v = ask(&h, "status");
    CU_ASSERT(jv_boolean(jv_get(v, "ok"), false));
    jv_free(v);
    CU_ASSERT_EQUAL(ctl_server_nclients(h.srv), 0);
    h_stop(&h);
}

static void test_garbage(void)
{
    static const struct {
        const char *req;
        size_t len;
        const char *err;
    } cases[] = {
        { "sta\0tus\n", 8, "request contains a NUL byte" },
        { "\xff\xfe\xfd\n", 4, "request is not valid UTF-8" },
        { "stats \xc3\n", 8, "request is not valid UTF-8" },
        { "\x1b[2Jstatus\n", 11, "request contains control character 0x1b" },
        { "\n", 1, "empty request" },
        { "pause \"x\n", 9, "unterminated quote" },
        { "st\xc3\xa4tus\n", 8, "unknown command 'st\xc3\xa4tus'" },
    };
    struct harness h;
    char err[256];

    CU_ASSERT_EQUAL_FATAL(h_start(&h, "garbage.sock", NULL), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct job *j = request(&h, cases[i].req, cases[i].len, 1);
        struct jv *v = jv_parse(j->out, j->out_len, err, sizeof err);

        if (!v)
            fprintf(stderr, "\n  case %zu: no JSON in %zu bytes \"%s\" "
                    "(eof %d, err %d)\n", i, j->out_len, j->out, j->eof,
                    j->err);
        CU_ASSERT_PTR_NOT_NULL(v);      /* always valid JSON */
        if (v && strcmp(error_of(v), cases[i].err) != 0)
            fprintf(stderr, "\n  case %zu: %s\n", i, j->out);
        CU_ASSERT(v && strcmp(error_of(v), cases[i].err) == 0);
        CU_ASSERT(!j->eof || j->out_len > 0);
        jv_free(v);
        free(j);
    }
    /* pipelined requests get their replies in order on one connection */
    {
        const char *reqs = "status\nfoo\nguests\n";
        struct job *j = request(&h, reqs, strlen(reqs), 3);
        char *l2 = strchr(j->out, '\n'), *l3;

        CU_ASSERT_PTR_NOT_NULL_FATAL(l2);
        l3 = strchr(l2 + 1, '\n');
        CU_ASSERT_PTR_NOT_NULL_FATAL(l3);
        CU_ASSERT(strncmp(j->out, "{\"ok\":true,\"version\"", 20) == 0);
        CU_ASSERT(strncmp(l2 + 1, "{\"ok\":false", 11) == 0);
        CU_ASSERT(strncmp(l3 + 1, "{\"ok\":true,\"guests\"", 19) == 0);
        free(j);
    }
    h_stop(&h);
}

static void test_oversized(void)
{
    struct harness h;
    size_t big = 100 * 1024;
    char *junk = malloc(big);
    struct job *j;
    struct jv *v;
    char err[256];

    CU_ASSERT_EQUAL_FATAL(h_start(&h, "big.sock", NULL), 0);
    memset(junk, 'a', big);
    j = request(&h, junk, big, 1000);   /* read until the server hangs up */
    v = jv_parse(j->out, j->out_len, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL(v);
    CU_ASSERT_STRING_EQUAL(error_of(v), "request too long (max 1024 bytes)");
    CU_ASSERT(j->eof);
    jv_free(v);
    free(j);

    /* exactly 1024 bytes plus "\n" is fine (an unknown command, but
     * answered and the connection stays) */
    memset(junk, 'b', 1024);
    junk[1024] = '\n';
    j = request(&h, junk, 1025, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(j->out, "unknown command 'bbbb"));
    CU_ASSERT(!j->eof);
    free(j);
    /* 1025 bytes before the newline is too long */
    memset(junk, 'c', 1025);
    junk[1025] = '\n';
    j = request(&h, junk, 1026, 1000);
    CU_ASSERT_PTR_NOT_NULL(strstr(j->out, "request too long"));
    CU_ASSERT(j->eof);
    free(j);

    /* and the server serves the next client */
    v = ask(&h, "status\n");
    CU_ASSERT(jv_boolean(jv_get(v, "ok"), false));
    jv_free(v);
    free(junk);
    h_stop(&h);
}

struct many {
    const char *path;
    char r1[256], r2[256], r3[256], r4[256];
};

static void *many_run(void *arg)
{
    struct many *m = arg;
    char err[256], *reply;
    int a = ctl_connect(m->path, err, sizeof err);
    int b = ctl_connect(m->path, err, sizeof err);
    int c, d;
    struct job j;

    if (ctl_roundtrip(a, "status", 5000, &reply, err, sizeof err) == 0) {
        snprintf(m->r1, sizeof m->r1, "%s", reply);
        free(reply);
    }
    if (ctl_roundtrip(b, "status", 5000, &reply, err, sizeof err) == 0) {
        snprintf(m->r2, sizeof m->r2, "%s", reply);
        free(reply);
    }
    /* the third is told why and hung up on */
    c = raw_connect(m->path);
    memset(&j, 0, sizeof j);
    read_lines(c, &j, 1);
    snprintf(m->r3, sizeof m->r3, "%.200s", j.out);
    close(c);
    close(a);
    close(b);
    usleep(100 * 1000);
    d = ctl_connect(m->path, err, sizeof err);
    if (ctl_roundtrip(d, "status", 5000, &reply, err, sizeof err) == 0) {
        snprintf(m->r4, sizeof m->r4, "%s", reply);
        free(reply);
    }
    close(d);
    return NULL;
}

static void test_max_clients(void)
{
    struct ctl_limits lim = { 2, 0 };
    struct harness h;
    struct many m;

    CU_ASSERT_EQUAL_FATAL(h_start(&h, "max.sock", &lim), 0);
    memset(&m, 0, sizeof m);
    m.path = h.path;
    CU_ASSERT_EQUAL(run_client(&h, many_run, &m), 0);
    CU_ASSERT(strncmp(m.r1, "{\"ok\":true", 10) == 0);
    CU_ASSERT(strncmp(m.r2, "{\"ok\":true", 10) == 0);
    CU_ASSERT_STRING_EQUAL(m.r3, "{\"ok\":false,\"error\":\"too many "
                                 "clients\"}\n");
    CU_ASSERT(strncmp(m.r4, "{\"ok\":true", 10) == 0);
    h_stop(&h);
}

static void test_idle(void)
{
    struct ctl_limits lim = { 0, 200 };
    struct harness h;
    struct job *j;

    CU_ASSERT_EQUAL_FATAL(h_start(&h, "idle.sock", &lim), 0);
    j = calloc(1, sizeof *j);
    j->path = h.path;
    j->send = "";
    j->pause_ms = 600;
    j->want_lines = 1;
    CU_ASSERT_EQUAL(run_client(&h, job_run, j), 0);
    CU_ASSERT(j->eof);
    CU_ASSERT_EQUAL(j->out_len, 0);
    CU_ASSERT_EQUAL(ctl_server_nclients(h.srv), 0);
    free(j);
    h_stop(&h);
}

/* Callbacks that misbehave or are missing, without a socket. */
static int f_broken(void *ctx, struct json_buf *j, char *err, size_t n)
{
    (void)ctx;
    (void)err;
    (void)n;
    json_key(j, "half");
    json_obj_begin(j);          /* never closed */
    return 0;
}

static int f_silent_fail(void *ctx, struct json_buf *j, char *err, size_t n)
{
    (void)ctx;
    (void)j;
    (void)err;
    (void)n;
    return -1;
}

static void test_dispatch(void)
{
    struct ctl_ops ops = { 0 };
    struct json_buf j;

    json_init(&j);
    ctl_dispatch(&ops, NULL, "flush x", 7, &j);
    CU_ASSERT_STRING_EQUAL(json_cstr(&j), "{\"ok\":false,\"error\":\"command "
                                          "'flush' not supported\"}\n");
    ops.status = f_broken;
    ctl_dispatch(&ops, NULL, "status", 6, &j);
    CU_ASSERT_STRING_EQUAL(json_cstr(&j), "{\"ok\":false,\"error\":\"internal "
                                          "error: malformed reply\"}\n");
    ops.guests = f_silent_fail;
    ctl_dispatch(&ops, NULL, "guests", 6, &j);
    CU_ASSERT_STRING_EQUAL(json_cstr(&j), "{\"ok\":false,\"error\":\"command "
                                          "'guests' failed\"}\n");
    json_free(&j);
}

/* ---- de-ctl ---- */

struct ctl_run {
    char *argv[12];
    char out[1 << 14];
    char err[1 << 12];
    int status;
};

static const char *ctl_bin(void)
{
    const char *b = getenv("DE_CTL_BIN");

    return b && *b ? b : DE_CTL_BIN;
}

static void slurp(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    ssize_t r;

    while (n < cap - 1 && (r = read(fd, buf + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
}

static void *ctl_run_main(void *arg)
{
    struct ctl_run *c = arg;
    posix_spawn_file_actions_t fa;
    int out[2], err[2];
    pid_t pid;

    if (pipe(out) != 0 || pipe(err) != 0)
        return NULL;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    posix_spawn_file_actions_addclose(&fa, err[0]);
    c->status = -1;
    if (posix_spawn(&pid, c->argv[0], &fa, NULL, c->argv, environ) == 0) {
        close(out[1]);
        close(err[1]);
        slurp(out[0], c->out, sizeof c->out);
        slurp(err[0], c->err, sizeof c->err);
        waitpid(pid, &c->status, 0);
    } else {
        close(out[1]);
        close(err[1]);
    }
    close(out[0]);
    close(err[0]);
    posix_spawn_file_actions_destroy(&fa);
    return NULL;
}

static struct ctl_run *de_ctl(struct harness *h, const char *a1,
                              const char *a2, const char *a3, const char *a4)
{
    struct ctl_run *c = calloc(1, sizeof *c);
    const char *args[] = { a1, a2, a3, a4 };
    int n = 0;

    c->argv[n++] = (char *)ctl_bin();
    c->argv[n++] = "-s";
    c->argv[n++] = h->path;
    for (int i = 0; i < 4 && args[i]; i++)
        c->argv[n++] = (char *)args[i];
    c->argv[n] = NULL;
    CU_ASSERT_EQUAL(run_client(h, ctl_run_main, c), 0);
    return c;
}

static bool exited(const struct ctl_run *c, int code)
{
    return WIFEXITED(c->status) && WEXITSTATUS(c->status) == code;
}

static void test_de_ctl(void)
{
    struct harness h;
    struct ctl_run *c;

    if (access(ctl_bin(), X_OK) != 0) {
        fprintf(stderr, "\n  skipped: %s not built\n", ctl_bin());
        return;
    }
    CU_ASSERT_EQUAL_FATAL(h_start(&h, "dectl.sock", NULL), 0);

    c = de_ctl(&h, "stats", NULL, NULL, NULL);
    CU_ASSERT(exited(c, 0));
    CU_ASSERT_PTR_NOT_NULL(strstr(c->out, "GUEST"));
    CU_ASSERT_PTR_NOT_NULL(strstr(c->out, "P99_us"));
    CU_ASSERT_PTR_NOT_NULL(strstr(c->out, "web-1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(c->out, "total"));
    CU_ASSERT_PTR_NOT_NULL(strstr(c->out, "3000"));     /* shared total */
    CU_ASSERT_PTR_NOT_NULL(strstr(c->out, "15.0"));     /* saved MiB */
    if (getenv("TEST_VERBOSE"))
        printf("\n%s", c->out);
    free(c);

    c = de_ctl(&h, "stats", "db", "--json", NULL);
    CU_ASSERT(exited(c, 0));
    CU_ASSERT(strncmp(c->out, "{\"ok\":true,\"global\":{", 21) == 0);
    CU_ASSERT_STRING_EQUAL(h.fake.guest, "db");
    free(c);

    c = de_ctl(&h, "guests", NULL, NULL, NULL);
    CU_ASSERT(exited(c, 0));
    CU_ASSERT_PTR_NOT_NULL(strstr(c->out, "paused"));
    free(c);

    c = de_ctl(&h, "status", NULL, NULL, NULL);
    CU_ASSERT(exited(c, 0));
    CU_ASSERT_PTR_NOT_NULL(strstr(c->out, "version: test"));
    CU_ASSERT_PTR_NOT_NULL(strstr(c->out, "  footprint: 1048576"));
    free(c);

    c = de_ctl(&h, "set", "my guest", "patch", "no");
    CU_ASSERT(exited(c, 0));
    CU_ASSERT_STRING_EQUAL(h.fake.guest, "my guest");
    CU_ASSERT_STRING_EQUAL(h.fake.value, "no");
    free(c);

    c = de_ctl(&h, "pause", "nosuch", NULL, NULL);
    CU_ASSERT(exited(c, 1));
    CU_ASSERT_STRING_EQUAL(c->err, "de-ctl: no such guest 'nosuch'\n");
    free(c);

    c = de_ctl(&h, "frobnicate", NULL, NULL, NULL);
    CU_ASSERT(exited(c, 1));
    CU_ASSERT_PTR_NOT_NULL(strstr(c->err, "unknown command"));
    free(c);

    c = de_ctl(&h, "set", "web-1", NULL, NULL);
    CU_ASSERT(exited(c, 1));
    CU_ASSERT_PTR_NOT_NULL(strstr(c->err, "usage: de-ctl set GUEST KEY"));
    free(c);
    h_stop(&h);

    /* no daemon */
    c = calloc(1, sizeof *c);
    c->argv[0] = (char *)ctl_bin();
    c->argv[1] = "-s";
    c->argv[2] = "/nonexistent/de-dom0d.sock";
    c->argv[3] = "status";
    ctl_run_main(c);
    CU_ASSERT(exited(c, 1));
    CU_ASSERT_STRING_EQUAL(c->err, "de-ctl: cannot connect to "
                           "/nonexistent/de-dom0d.sock: No such file or "
                           "directory (is de-dom0d running?)\n");
    free(c);
}

int register_control_tests(void)
{
    CU_pSuite s = CU_add_suite("control", NULL, NULL);

    if (!s ||
        !CU_add_test(s, "socket: mode 0600, stale, live, not a socket",
                     test_socket) ||
        !CU_add_test(s, "every command with fake callbacks",
                     test_commands) ||
        !CU_add_test(s, "garbage bytes, pipelining", test_garbage) ||
        !CU_add_test(s, "oversized request, then next client",
                     test_oversized) ||
        !CU_add_test(s, "client limit", test_max_clients) ||
        !CU_add_test(s, "idle timeout", test_idle) ||
        !CU_add_test(s, "dispatch of broken callbacks", test_dispatch) ||
        !CU_add_test(s, "de-ctl against the server", test_de_ctl))
        return CU_get_error();
    return CUE_SUCCESS;
}

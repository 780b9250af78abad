/*
 * de-ctl - control de-dom0d over its Unix socket.
 *
 * Sends one request line, reads the one-line JSON reply, and prints it
 * as is (--json) or as text: a table for `stats` and `guests`, "key:
 * value" lines otherwise. The exit status is 0 only for an "ok":true
 * reply, so scripts can chain commands with &&.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control_proto.h"

#define DEFAULT_TIMEOUT_S 60

static const char *progname = "de-ctl";

static void usage(FILE *f)
{
    const struct ctl_cmd_info *t = ctl_cmd_table();

    fprintf(f, "usage: %s [-j] [-s socket] [-t seconds] command [args]\n"
            "commands:\n", progname);
    for (int i = 0; i < CTL_NCMDS; i++)
        fprintf(f, "\t%s%s%s\n", t[i].name, t[i].args[0] ? " " : "",
                t[i].args);
    fprintf(f, "(--json may also follow the command)\n");
}

/* ---- value formatting ---- */

static void fmt_bytes(uint64_t v, char *buf, size_t n)
{
    static const char unit[] = "KMGTP";
    double d = (double)v;
    int u = -1;

    if (v < 1024) {
        snprintf(buf, n, "%llu", (unsigned long long)v);
        return;
    }
    while (d >= 1024 && u < 4) {
        d /= 1024;
        u++;
    }
    snprintf(buf, n, d < 10 ? "%.2f%c" : d < 100 ? "%.1f%c" : "%.0f%c", d,
             unit[u]);
}

/* Scalars as text; objects and arrays as "-" (tables only show scalars). */
static void fmt_scalar(const struct jv *v, char *buf, size_t n)
{
    if (!v) {
        snprintf(buf, n, "-");
        return;
    }
    switch (v->type) {
    case JV_NULL: snprintf(buf, n, "-"); break;
    case JV_BOOL: snprintf(buf, n, "%s", v->b ? "yes" : "no"); break;
    case JV_STR: snprintf(buf, n, "%s", v->str); break;
    case JV_NUM:
        if (v->is_uint)
            snprintf(buf, n, "%llu", (unsigned long long)v->u);
        else
            snprintf(buf, n, "%.6g", v->num);
        break;
    default: snprintf(buf, n, "-"); break;
    }
}

static bool is_scalar(const struct jv *v)
{
    return v->type != JV_OBJ && v->type != JV_ARR;
}

/* ---- generic printing ---- */

static void print_table(const struct jv *arr, int indent);

static void print_members(const struct jv *obj, int indent)
{
    char buf[256];

    for (size_t i = 0; i < obj->n; i++) {
        const struct jv *m = &obj->items[i];

        if (indent == 0 && strcmp(m->key, "ok") == 0)
            continue;
        if (is_scalar(m)) {
            fmt_scalar(m, buf, sizeof buf);
            printf("%*s%s: %s\n", indent, "", m->key, buf);
        } else if (m->type == JV_OBJ) {
            printf("%*s%s:\n", indent, "", m->key);
            print_members(m, indent + 2);
        } else if (m->n > 0 && m->items[0].type == JV_OBJ) {
            printf("%*s%s:\n", indent, "", m->key);
            print_table(m, indent + 2);
        } else {
            printf("%*s%s:", indent, "", m->key);
            for (size_t k = 0; k < m->n; k++) {
                fmt_scalar(&m->items[k], buf, sizeof buf);
                printf("%s %s", k ? "," : "", buf);
            }
            printf("\n");
        }
    }
}

/* An array of objects as a table whose columns are the scalar members,
 * in the order they first appear. */
static void print_table(const struct jv *arr, int indent)
{
    const char *col[32];
    size_t width[32], ncol = 0;
    char buf[256];

    for (size_t r = 0; r < arr->n; r++) {
        const struct jv *row = &arr->items[r];

        if (row->type != JV_OBJ)
            continue;
        for (size_t i = 0; i < row->n && ncol < 32; i++) {
            size_t c;

            if (!is_scalar(&row->items[i]))
                continue;
            for (c = 0; c < ncol; c++)
                if (strcmp(col[c], row->items[i].key) == 0)
                    break;
            if (c == ncol) {
                col[ncol] = row->items[i].key;
                width[ncol++] = strlen(row->items[i].key);
            }
        }
    }
    for (size_t r = 0; r < arr->n; r++)
        for (size_t c = 0; c < ncol; c++) {
            fmt_scalar(jv_get(&arr->items[r], col[c]), buf, sizeof buf);
            if (strlen(buf) > width[c])
                width[c] = strlen(buf);
        }
    printf("%*s", indent, "");
    for (size_t c = 0; c < ncol; c++)
        printf("%s%-*s", c ? "  " : "", (int)width[c], col[c]);
    printf("\n");
    for (size_t r = 0; r < arr->n; r++) {
        printf("%*s", indent, "");
        for (size_t c = 0; c < ncol; c++) {
            fmt_scalar(jv_get(&arr->items[r], col[c]), buf, sizeof buf);
            printf("%s%-*s", c ? "  " : "", (int)width[c], buf);
        }
        printf("\n");
    }
}

/* ---- stats ---- */

struct stat_col {
    const char *head;
    const char *key;
    enum { C_COUNT, C_BYTES, C_MIB, C_US } fmt;
};

static const struct stat_col stat_cols[] = {
    { "SHARED", "pages_shared", C_COUNT },
    { "PATCHED", "pages_patched", C_COUNT },
    { "COMPRESSED", "pages_compressed", C_COUNT },
    { "SWAPPED", "pages_swapped", C_COUNT },
    { "STORE", "store_bytes", C_BYTES },
    { "SAVED_MiB", "saved_bytes", C_MIB },
    { "FAULTS", "faults", C_COUNT },
    { "P50_us", "fault_p50_us", C_US },
    { "P99_us", "fault_p99_us", C_US },
};
#define NSTAT (sizeof stat_cols / sizeof stat_cols[0])

static void stat_cell(const struct jv *row, const struct stat_col *c,
                      char *buf, size_t n)
{
    const struct jv *v = jv_get(row, c->key);

    if (!v || v->type != JV_NUM) {
        snprintf(buf, n, "-");
        return;
    }
    switch (c->fmt) {
    case C_COUNT:
        snprintf(buf, n, "%llu", (unsigned long long)jv_uint(v, 0));
        break;
    case C_BYTES:
        fmt_bytes(jv_uint(v, 0), buf, n);
        break;
    case C_MIB:
        snprintf(buf, n, "%.1f", jv_number(v, 0) / 1048576.0);
        break;
    case C_US:
        snprintf(buf, n, "%.1f", jv_number(v, 0));
        break;
    }
}

static void print_stats(const struct jv *reply)
{
    const struct jv *guests = jv_get(reply, "guests");
    const struct jv *global = jv_get(reply, "global");
    const struct jv *rows[1024];
    const char *names[1024];
    size_t nrows = 0, wname = 5, wid = 2, w[NSTAT];
    char buf[64], ids[1024][24];

    if (guests && guests->type == JV_ARR)
        for (size_t i = 0; i < guests->n && nrows < 1023; i++) {
            const struct jv *g = &guests->items[i];

            rows[nrows] = g;
            names[nrows] = jv_string(jv_get(g, "name"), "?");
            fmt_scalar(jv_get(g, "id"), ids[nrows], sizeof ids[nrows]);
            nrows++;
        }
    if (global && global->type == JV_OBJ) {
        rows[nrows] = global;
        names[nrows] = "total";
        snprintf(ids[nrows], sizeof ids[nrows], "%s", "");
        nrows++;
    }
    for (size_t c = 0; c < NSTAT; c++)
        w[c] = strlen(stat_cols[c].head);
    for (size_t r = 0; r < nrows; r++) {
        if (strlen(names[r]) > wname)
            wname = strlen(names[r]);
        if (strlen(ids[r]) > wid)
            wid = strlen(ids[r]);
        for (size_t c = 0; c < NSTAT; c++) {
            stat_cell(rows[r], &stat_cols[c], buf, sizeof buf);
            if (strlen(buf) > w[c])
                w[c] = strlen(buf);
        }
    }
    printf("%-*s  %*s", (int)wname, "GUEST", (int)wid, "ID");
    for (size_t c = 0; c < NSTAT; c++)
        printf("  %*s", (int)w[c], stat_cols[c].head);
    printf("\n");
    for (size_t r = 0; r < nrows; r++) {
        printf("%-*s  %*s", (int)wname, names[r], (int)wid, ids[r]);
        for (size_t c = 0; c < NSTAT; c++) {
            stat_cell(rows[r], &stat_cols[c], buf, sizeof buf);
            printf("  %*s", (int)w[c], buf);
        }
        printf("\n");
    }
}

/* ---- main ---- */

int main(int argc, char **argv)
{
    const char *sock = getenv("DE_CTL_SOCKET");
    bool json = false;
    int timeout_s = DEFAULT_TIMEOUT_S, ch, fd, nargs;
    const struct ctl_cmd_info *ci;
    char line[CTL_MAX_LINE + 1], err[512], *reply, *end;
    struct jv *v;
    bool ok;

    if (!sock || !*sock)
        sock = CTL_DEFAULT_SOCKET;
    /* --json is accepted anywhere (`de-ctl stats web-1 --json`); take it
     * out before getopt so it never reaches the request. */
    for (int i = 1, n = 1; i <= argc; i++) {
        if (i < argc && strcmp(argv[i], "--json") == 0)
            json = true;
        else
            argv[n++] = argv[i];        /* argv[argc] (NULL) included */
        if (i == argc)
            argc = n - 1;
    }
    while ((ch = getopt(argc, argv, "+hjs:t:")) != -1) {
        switch (ch) {
        case 'j':
            json = true;
            break;
        case 's':
            sock = optarg;
            break;
        case 't':
            errno = 0;
            timeout_s = (int)strtol(optarg, &end, 10);
            if (errno || *end || timeout_s < 0 || timeout_s > 86400) {
                fprintf(stderr, "%s: bad timeout '%s'\n", progname, optarg);
                return 1;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 1;
        }
    }
    argc -= optind;
    argv += optind;
    if (argc < 1) {
        usage(stderr);
        return 1;
    }
    ci = ctl_cmd_lookup(argv[0]);
    if (!ci) {
        fprintf(stderr, "%s: unknown command '%s'\n", progname, argv[0]);
        usage(stderr);
        return 1;
    }
    nargs = argc - 1;
    if (nargs < ci->min_args || nargs > ci->max_args) {
        fprintf(stderr, "usage: %s %s%s%s\n", progname, ci->name,
                ci->args[0] ? " " : "", ci->args);
        return 1;
    }
    if (ctl_build_line(argc, argv, line, sizeof line) < 0) {
        fprintf(stderr, "%s: request longer than %d bytes\n", progname,
                CTL_MAX_LINE);
        return 1;
    }

    fd = ctl_connect(sock, err, sizeof err);
    if (fd < 0) {
        fprintf(stderr, "%s: %s\n", progname, err);
        return 1;
    }
    if (ctl_roundtrip(fd, line, timeout_s ? timeout_s * 1000 : -1, &reply,
                      err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s: %s\n", progname, sock, err);
        close(fd);
        return 1;
    }
    close(fd);

    v = jv_parse(reply, strlen(reply), err, sizeof err);
    if (!v || v->type != JV_OBJ) {
        fprintf(stderr, "%s: invalid reply from de-dom0d: %s\n", progname,
                v ? "not an object" : err);
        if (json)
            printf("%s\n", reply);
        jv_free(v);
        free(reply);
        return 1;
    }
    ok = jv_boolean(jv_get(v, "ok"), false);
    if (json) {
        printf("%s\n", reply);
    } else if (!ok) {
        fprintf(stderr, "%s: %s\n", progname,
                jv_string(jv_get(v, "error"), "request failed"));
    } else if (ci->cmd == CTL_CMD_STATS) {
        print_stats(v);
    } else if (ci->cmd == CTL_CMD_GUESTS &&
               jv_get(v, "guests") && jv_get(v, "guests")->type == JV_ARR) {
        if (jv_get(v, "guests")->n == 0)
            printf("no guests\n");
        else
            print_table(jv_get(v, "guests"), 0);
    } else {
        print_members(v, 0);
    }
    jv_free(v);
    free(reply);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "%s: writing output: %s\n", progname,
                strerror(errno));
        return 1;
    }
    return ok ? 0 : 1;
}

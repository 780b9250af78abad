/*
 * control_proto.c - command table, request tokenizer, JSON writer and
 * reader, client round trip.
 *
 * Everything here treats its input as hostile: the daemon runs it on
 * bytes from any local root process, de-ctl on whatever answers on the
 * socket. Sizes are bounded up front and every string that goes back
 * out is re-validated as UTF-8.
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "control_proto.h"

void ctl_seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- commands ---- */

static const struct ctl_cmd_info cmd_table[CTL_NCMDS] = {
    { CTL_CMD_STATUS, "status", 0, 0, "" },
    { CTL_CMD_GUESTS, "guests", 0, 0, "" },
    { CTL_CMD_STATS, "stats", 0, 1, "[GUEST]" },
    { CTL_CMD_SET, "set", 3, 3, "GUEST KEY VALUE" },
    { CTL_CMD_PAUSE, "pause", 1, 1, "GUEST" },
    { CTL_CMD_RESUME, "resume", 1, 1, "GUEST" },
    { CTL_CMD_FLUSH, "flush", 1, 1, "GUEST" },
};

const struct ctl_cmd_info *ctl_cmd_lookup(const char *name)
{
    for (size_t i = 0; i < CTL_NCMDS; i++)
        if (strcmp(cmd_table[i].name, name) == 0)
            return &cmd_table[i];
    return NULL;
}

const struct ctl_cmd_info *ctl_cmd_table(void)
{
    return cmd_table;
}

/* ---- UTF-8 ---- */

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if it is not one
 * (overlong forms, surrogates and code points past U+10FFFF included). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    uint32_t cp, min;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2; cp = c & 0x1f; min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3; cp = c & 0x0f; min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4; cp = c & 0x07; min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* ---- requests ---- */

int ctl_parse_line(const char *line, size_t len, struct ctl_req *req,
                   char *err, size_t errlen)
{
    const unsigned char *s = (const unsigned char *)line;
    char *out = req->buf;
    bool in_word = false, quoted = false;

    req->argc = 0;
    if (len > 0 && s[len - 1] == '\r')
        len--;
    if (len > CTL_MAX_LINE) {
        ctl_seterr(err, errlen, "request longer than %d bytes", CTL_MAX_LINE);
        return -1;
    }
    for (size_t i = 0; i < len;) {
        unsigned c = s[i];
        size_t n;

        if (c == 0) {
            ctl_seterr(err, errlen, "request contains a NUL byte");
            return -1;
        }
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            ctl_seterr(err, errlen, "request contains control character 0x%02x",
                   c);
            return -1;
        }
        n = utf8_seq(s + i, len - i);
        if (n == 0) {
            ctl_seterr(err, errlen, "request is not valid UTF-8");
            return -1;
        }
        if (!quoted && (c == ' ' || c == '\t')) {
            if (in_word) {
                *out++ = '\0';
                in_word = false;
            }
            i++;
            continue;
        }
        if (!in_word) {
            if (req->argc == CTL_MAX_ARGS) {
                ctl_seterr(err, errlen, "too many words (at most %d)",
                       CTL_MAX_ARGS);
                return -1;
            }
            req->argv[req->argc++] = out;
            in_word = true;
        }
        if (c == '"') {
            quoted = !quoted;
            i++;
            continue;
        }
        if (c == '\\') {
            if (i + 1 >= len) {
                ctl_seterr(err, errlen, "backslash at end of request");
                return -1;
            }
            i++;
            n = utf8_seq(s + i, len - i);
            if (n == 0 || s[i] < 0x20 || s[i] == 0x7f) {
                ctl_seterr(err, errlen, "bad character after backslash");
                return -1;
            }
        }
        /* buf holds len bytes plus one NUL per word: it cannot overflow */
        memcpy(out, s + i, n);
        out += n;
        i += n;
    }
    if (quoted) {
        ctl_seterr(err, errlen, "unterminated quote");
        return -1;
    }
    if (in_word)
        *out = '\0';
    if (req->argc == 0) {
        ctl_seterr(err, errlen, "empty request");
        return -1;
    }
    return 0;
}

static bool needs_quotes(const char *a)
{
    if (*a == '\0')
        return true;
    for (; *a; a++)
        if (*a == ' ' || *a == '\t' || *a == '"' || *a == '\\')
            return true;
    return false;
}

int ctl_build_line(int argc, char *const argv[], char *out, size_t cap)
{
    size_t len = 0, max = cap - 1 < CTL_MAX_LINE ? cap - 1 : CTL_MAX_LINE;

    if (cap == 0)
        return -1;
#define PUT(ch) do { if (len >= max) return -1; out[len++] = (ch); } while (0)
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool q = needs_quotes(a);

        if (i > 0)
            PUT(' ');
        if (q)
            PUT('"');
        for (; *a; a++) {
            if (q && (*a == '"' || *a == '\\'))
                PUT('\\');
            PUT(*a);
        }
        if (q)
            PUT('"');
    }
#undef PUT
    out[len] = '\0';
    return (int)len;
}

/* ---- JSON writer ---- */

void json_init(struct json_buf *j)
{
    memset(j, 0, sizeof *j);
}

void json_reset(struct json_buf *j)
{
    j->len = 0;
    if (j->buf)
        j->buf[0] = '\0';
    j->failed = false;
    j->after_key = false;
    j->depth = 0;
    j->need_comma[0] = false;
}

void json_free(struct json_buf *j)
{
    free(j->buf);
    json_init(j);
}

bool json_ok(const struct json_buf *j)
{
    return !j->failed;
}

const char *json_cstr(const struct json_buf *j)
{
    return j->buf ? j->buf : "";
}

static bool reserve(struct json_buf *j, size_t more)
{
    size_t limit = j->limit ? j->limit : CTL_MAX_REPLY;
    size_t need, cap;
    char *nb;

    if (j->failed)
        return false;
    need = j->len + more + 1;
    if (need <= j->cap)
        return true;
    if (need > limit) {
        j->failed = true;
        return false;
    }
    cap = j->cap ? j->cap : 256;
    while (cap < need)
        cap *= 2;
    if (cap > limit)
        cap = limit;
    nb = realloc(j->buf, cap);
    if (!nb) {
        j->failed = true;
        return false;
    }
    j->buf = nb;
    j->cap = cap;
    return true;
}

static void put(struct json_buf *j, const char *s, size_t n)
{
    if (!reserve(j, n))
        return;
    memcpy(j->buf + j->len, s, n);
    j->len += n;
    j->buf[j->len] = '\0';
}

/* Emits the separator a new value needs at this point. */
static void value_start(struct json_buf *j)
{
    if (j->after_key) {
        j->after_key = false;
        return;
    }
    if (j->need_comma[j->depth])
        put(j, ",", 1);
    j->need_comma[j->depth] = true;
}

static void open_scope(struct json_buf *j, char c)
{
    value_start(j);
    if (j->depth >= JSON_MAX_DEPTH) {
        j->failed = true;
        return;
    }
    put(j, &c, 1);
    j->need_comma[++j->depth] = false;
}

static void close_scope(struct json_buf *j, char c)
{
    if (j->depth == 0 || j->after_key) {
        j->failed = true;
        return;
    }
    j->depth--;
    put(j, &c, 1);
}

void json_obj_begin(struct json_buf *j) { open_scope(j, '{'); }
void json_obj_end(struct json_buf *j) { close_scope(j, '}'); }
void json_arr_begin(struct json_buf *j) { open_scope(j, '['); }
void json_arr_end(struct json_buf *j) { close_scope(j, ']'); }

static void put_escaped(struct json_buf *j, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;

    put(j, "\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        size_t run = 0;
        char esc[8];

        /* copy plain runs in one go: names and numbers are mostly that */
        while (i + run < n && u[i + run] >= 0x20 && u[i + run] < 0x7f &&
               u[i + run] != '"' && u[i + run] != '\\')
            run++;
        if (run) {
            put(j, s + i, run);
            i += run;
            continue;
        }
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(j, esc, 2);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            switch (c) {
            case '\n': put(j, "\\n", 2); break;
            case '\t': put(j, "\\t", 2); break;
            case '\r': put(j, "\\r", 2); break;
            default:
                snprintf(esc, sizeof esc, "\\u%04x", c);
                put(j, esc, 6);
            }
            i++;
        } else {
            size_t k = utf8_seq(u + i, n - i);

            if (k == 0) {
                put(j, "\\ufffd", 6);
                i++;
            } else {
                put(j, s + i, k);
                i += k;
            }
        }
    }
    put(j, "\"", 1);
}

void json_key(struct json_buf *j, const char *key)
{
    if (j->depth == 0 || j->after_key) {
        j->failed = true;
        return;
    }
    value_start(j);
    put_escaped(j, key, strlen(key));
    put(j, ":", 1);
    j->after_key = true;
}

void json_strn(struct json_buf *j, const char *s, size_t n)
{
    value_start(j);
    put_escaped(j, s, n);
}

void json_str(struct json_buf *j, const char *s)
{
    if (!s) {
        json_null(j);
        return;
    }
    json_strn(j, s, strlen(s));
}

void json_u64(struct json_buf *j, uint64_t v)
{
    char b[24];
    int n = snprintf(b, sizeof b, "%llu", (unsigned long long)v);

    value_start(j);
    put(j, b, (size_t)n);
}

void json_i64(struct json_buf *j, int64_t v)
{
    char b[24];
    int n = snprintf(b, sizeof b, "%lld", (long long)v);

    value_start(j);
    put(j, b, (size_t)n);
}

void json_double(struct json_buf *j, double v)
{
    char b[40];
    int n;

    if (!isfinite(v)) {
        json_null(j);
        return;
    }
    /* 15 significant digits round-trip every value a human reads and
     * never print binary noise like 0.30000000000000004. */
    n = snprintf(b, sizeof b, "%.15g", v);
    value_start(j);
    put(j, b, (size_t)n);
}

void json_bool(struct json_buf *j, bool v)
{
    value_start(j);
    put(j, v ? "true" : "false", v ? 4 : 5);
}

void json_null(struct json_buf *j)
{
    value_start(j);
    put(j, "null", 4);
}

void json_newline(struct json_buf *j)
{
    if (j->depth != 0 || j->after_key) {
        j->failed = true;
        return;
    }
    put(j, "\n", 1);
    j->need_comma[0] = false;
}

void json_kv_str(struct json_buf *j, const char *key, const char *v)
{
    json_key(j, key);
    json_str(j, v);
}

void json_kv_u64(struct json_buf *j, const char *key, uint64_t v)
{
    json_key(j, key);
    json_u64(j, v);
}

void json_kv_i64(struct json_buf *j, const char *key, int64_t v)
{
    json_key(j, key);
    json_i64(j, v);
}

void json_kv_double(struct json_buf *j, const char *key, double v)
{
    json_key(j, key);
    json_double(j, v);
}

void json_kv_bool(struct json_buf *j, const char *key, bool v)
{
    json_key(j, key);
    json_bool(j, v);
}

/* ---- JSON reader ---- */

struct jparser {
    const char *s;
    size_t len;
    size_t pos;
    char *err;
    size_t errlen;
    bool failed;
};

static void jfail(struct jparser *p, const char *what)
{
    if (!p->failed)
        ctl_seterr(p->err, p->errlen, "bad JSON at byte %zu: %s", p->pos, what);
    p->failed = true;
}

static void jskip_ws(struct jparser *p)
{
    while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
                               p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
}

static bool jliteral(struct jparser *p, const char *word)
{
    size_t n = strlen(word);

    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
        return false;
    p->pos += n;
    return true;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool jhex4(struct jparser *p, uint32_t *out)
{
    uint32_t v = 0;

    if (p->len - p->pos < 4)
        return false;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p->s[p->pos + (size_t)i]);

        if (h < 0)
            return false;
        v = (v << 4) | (uint32_t)h;
    }
    p->pos += 4;
    *out = v;
    return true;
}

static size_t utf8_put(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Parses a string at p->pos (on its opening quote) into a malloc'd
 * NUL-terminated buffer. The decoded text is never longer than the
 * source, so one allocation of the remaining length bounds it. */
static char *jstring(struct jparser *p)
{
    size_t start = ++p->pos, cap = 1;
    char *out, *o;

    /* find the closing quote first to size the buffer exactly */
    for (size_t i = start; i < p->len && p->s[i] != '"'; i++, cap++)
        if (p->s[i] == '\\')
            i++, cap++;
    out = malloc(cap);
    if (!out) {
        jfail(p, "out of memory");
        return NULL;
    }
    o = out;
    while (p->pos < p->len) {
        unsigned char c = (unsigned char)p->s[p->pos];

        if (c == '"') {
            p->pos++;
            *o = '\0';
            return out;
        }
        if (c < 0x20) {
            jfail(p, "control character in string");
            break;
        }
        if (c != '\\') {
            size_t k = utf8_seq((const unsigned char *)p->s + p->pos,
                                p->len - p->pos);

            if (k == 0) {
                jfail(p, "invalid UTF-8 in string");
                break;
            }
            memcpy(o, p->s + p->pos, k);
            o += k;
            p->pos += k;
            continue;
        }
        if (++p->pos >= p->len)
            break;
        c = (unsigned char)p->s[p->pos++];
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            uint32_t cp, lo;

            if (!jhex4(p, &cp)) {
                jfail(p, "bad \\u escape");
                goto bad;
            }
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (!jliteral(p, "\\u") || !jhex4(p, &lo) ||
                    lo < 0xdc00 || lo > 0xdfff) {
                    jfail(p, "unpaired surrogate");
                    goto bad;
                }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else if ((cp >= 0xdc00 && cp <= 0xdfff) || cp == 0) {
                /* a NUL would silently truncate the C string */
                jfail(p, "unsupported \\u escape");
                goto bad;
            }
            /* 6 (or 12) source bytes always cover the <= 4 written */
            o += utf8_put(o, cp);
            break;
        }
        default:
            jfail(p, "bad escape");
            goto bad;
        }
    }
    jfail(p, "unterminated string");
bad:
    free(out);
    return NULL;
}

static bool jnumber(struct jparser *p, struct jv *v)
{
    size_t start = p->pos;
    bool integer = true, neg = false;
    char buf[64];
    char *end;

    if (p->pos < p->len && p->s[p->pos] == '-') {
        neg = true;
        p->pos++;
    }
    if (p->pos >= p->len || p->s[p->pos] < '0' || p->s[p->pos] > '9')
        return false;
    if (p->s[p->pos] == '0')
        p->pos++;
    else
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
            p->pos++;
    if (p->pos < p->len && p->s[p->pos] == '.') {
        integer = false;
        if (++p->pos >= p->len || p->s[p->pos] < '0' || p->s[p->pos] > '9')
            return false;
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
            p->pos++;
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        integer = false;
        p->pos++;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
            p->pos++;
        if (p->pos >= p->len || p->s[p->pos] < '0' || p->s[p->pos] > '9')
            return false;
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
            p->pos++;
    }
    if (p->pos - start >= sizeof buf)
        return false;
    memcpy(buf, p->s + start, p->pos - start);
    buf[p->pos - start] = '\0';
    v->type = JV_NUM;
    v->num = strtod(buf, NULL);
    if (integer && !neg) {
        errno = 0;
        v->u = strtoull(buf, &end, 10);
        v->is_uint = errno == 0 && *end == '\0';
    }
    return true;
}

static bool jvalue(struct jparser *p, struct jv *v, unsigned depth);

static bool jitems(struct jparser *p, struct jv *v, unsigned depth, bool obj)
{
    size_t cap = 0;
    char close = obj ? '}' : ']';

    p->pos++;
    jskip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        return true;
    }
    for (;;) {
        char *key = NULL;

        jskip_ws(p);
        if (obj) {
            if (p->pos >= p->len || p->s[p->pos] != '"') {
                jfail(p, "expected a member name");
                return false;
            }
            key = jstring(p);
            if (!key)
                return false;
            jskip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':') {
                free(key);
                jfail(p, "expected ':'");
                return false;
            }
            p->pos++;
        }
        if (v->n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            struct jv *ni = realloc(v->items, ncap * sizeof *ni);

            if (!ni) {
                free(key);
                jfail(p, "out of memory");
                return false;
            }
            v->items = ni;
            cap = ncap;
        }
        memset(&v->items[v->n], 0, sizeof v->items[v->n]);
        v->items[v->n].key = key;
        v->n++;
        if (!jvalue(p, &v->items[v->n - 1], depth + 1))
            return false;
        jskip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == close) {
            p->pos++;
            return true;
        }
        jfail(p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
        return false;
    }
}

static bool jvalue(struct jparser *p, struct jv *v, unsigned depth)
{
    jskip_ws(p);
    if (depth > JSON_MAX_DEPTH) {
        jfail(p, "nested too deep");
        return false;
    }
    if (p->pos >= p->len) {
        jfail(p, "unexpected end");
        return false;
    }
    switch (p->s[p->pos]) {
    case '{':
        v->type = JV_OBJ;
        return jitems(p, v, depth, true);
    case '[':
        v->type = JV_ARR;
        return jitems(p, v, depth, false);
    case '"':
        v->type = JV_STR;
        v->str = jstring(p);
        return v->str != NULL;
    case 't':
    case 'f':
    case 'n':
        if (jliteral(p, "true")) {
            v->type = JV_BOOL;
            v->b = true;
            return true;
        }
        if (jliteral(p, "false")) {
            v->type = JV_BOOL;
            return true;
        }
        if (jliteral(p, "null")) {
            v->type = JV_NULL;
            return true;
        }
        break;
    default:
        if (jnumber(p, v))
            return true;
    }
    jfail(p, "unexpected character");
    return false;
}

static void jv_release(struct jv *v)
{
    for (size_t i = 0; i < v->n; i++)
        jv_release(&v->items[i]);
    free(v->items);
    free(v->str);
    free(v->key);
}

void jv_free(struct jv *v)
{
    if (!v)
        return;
    jv_release(v);
    free(v);
}

struct jv *jv_parse(const char *text, size_t len, char *err, size_t errlen)
{
    struct jparser p = { text, len, 0, err, errlen, false };
    struct jv *v = calloc(1, sizeof *v);

    if (!v) {
        ctl_seterr(err, errlen, "out of memory");
        return NULL;
    }
    if (jvalue(&p, v, 0)) {
        jskip_ws(&p);
        if (p.pos == p.len)
            return v;
        jfail(&p, "trailing characters");
    }
    jv_free(v);
    return NULL;
}

const struct jv *jv_get(const struct jv *v, const char *key)
{
    if (!v || v->type != JV_OBJ)
        return NULL;
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(v->items[i].key, key) == 0)
            return &v->items[i];
    return NULL;
}

const char *jv_string(const struct jv *v, const char *dflt)
{
    return v && v->type == JV_STR ? v->str : dflt;
}

double jv_number(const struct jv *v, double dflt)
{
    return v && v->type == JV_NUM ? v->num : dflt;
}

uint64_t jv_uint(const struct jv *v, uint64_t dflt)
{
    if (!v || v->type != JV_NUM)
        return dflt;
    if (v->is_uint)
        return v->u;
    if (v->num >= 0 && v->num < 18446744073709551616.0)
        return (uint64_t)v->num;
    return dflt;
}

bool jv_boolean(const struct jv *v, bool dflt)
{
    return v && v->type == JV_BOOL ? v->b : dflt;
}

/* ---- client ---- */

int ctl_connect(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sun;
    int fd, saved;

    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sun.sun_path) {
        ctl_seterr(err, errlen, "socket path too long: %s", path);
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(sun.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        saved = errno;
        ctl_seterr(err, errlen, "socket: %s", strerror(saved));
        errno = saved;
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
        saved = errno;
        ctl_seterr(err, errlen, "cannot connect to %s: %s%s", path,
               strerror(saved),
               saved == ENOENT || saved == ECONNREFUSED
                   ? " (is de-dom0d running?)" : "");
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for `events` on fd until the deadline; 0, or -1 with errno. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    struct pollfd pfd = { .fd = fd, .events = events };

    for (;;) {
        int tmo = -1, r;

        if (deadline >= 0) {
            int64_t left = deadline - now_ms();

            if (left <= 0) {
                errno = ETIMEDOUT;
                return -1;
            }
            tmo = left > 1000000 ? 1000000 : (int)left;
        }
        r = poll(&pfd, 1, tmo);
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

int ctl_roundtrip(int fd, const char *line, int timeout_ms, char **reply,
                  char *err, size_t errlen)
{
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    size_t len = strlen(line), off = 0, cap = 4096, got = 0;
    char *req, *buf;

    *reply = NULL;
    req = malloc(len + 1);
    if (!req) {
        ctl_seterr(err, errlen, "out of memory");
        return -1;
    }
    memcpy(req, line, len);
    req[len++] = '\n';
    while (off < len) {
        ssize_t w;

        if (wait_fd(fd, POLLOUT, deadline) != 0) {
            ctl_seterr(err, errlen, "sending request: %s", strerror(errno));
            free(req);
            return -1;
        }
        w = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            ctl_seterr(err, errlen, "sending request: %s", strerror(errno));
            free(req);
            return -1;
        }
        off += (size_t)w;
    }
    free(req);

    buf = malloc(cap);
    if (!buf) {
        ctl_seterr(err, errlen, "out of memory");
        return -1;
    }
    for (;;) {
        ssize_t r;
        char *nl;

        if (got + 1 == cap) {
            char *nb;

            if (cap >= CTL_MAX_REPLY) {
                ctl_seterr(err, errlen, "reply longer than %u bytes",
                       CTL_MAX_REPLY);
                break;
            }
            nb = realloc(buf, cap * 2);
            if (!nb) {
                ctl_seterr(err, errlen, "out of memory");
                break;
            }
            buf = nb;
            cap *= 2;
        }
        if (wait_fd(fd, POLLIN, deadline) != 0) {
            ctl_seterr(err, errlen, "waiting for the reply: %s",
                   errno == ETIMEDOUT ? "timed out" : strerror(errno));
            break;
        }
        r = recv(fd, buf + got, cap - 1 - got, 0);
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            ctl_seterr(err, errlen, "reading the reply: %s", strerror(errno));
            break;
        }
        if (r == 0) {
            ctl_seterr(err, errlen, "connection closed before a reply");
            break;
        }
        nl = memchr(buf + got, '\n', (size_t)r);
        got += (size_t)r;
        if (nl) {
            *nl = '\0';
            *reply = buf;
            return 0;
        }
    }
    free(buf);
    return -1;
}

/*
 * config.c - de-dom0d.conf(5): tokenizer, parser, key table, validation.
 *
 * Every key is described once in `keys[]` (type, range, where it lives,
 * whether a guest block may set it); the parser, config_set() and
 * config_print() are all driven by that table, so a key can never be
 * accepted by one path and rejected or forgotten by another.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compressor.h"
#include "patch_codec.h"
#include "simdetect.h"

#include "config.h"
#include "control_proto.h"

enum ktype {
    K_BOOL,
    K_U32,          /* plain number in [min, max] */
    K_INT,
    K_SIZE,         /* number with K/M/G/T suffix, uint64 */
    K_CODEC,
    K_COMPRESSOR,
    K_SIMDETECT,
    K_LOGLEVEL,
    K_SOCKPATH,     /* absolute, fits sun_path */
    K_PATH,         /* absolute, or "" for none */
    K_NAME,         /* [A-Za-z0-9._-]*, for groups */
    K_BACKEND,      /* uffd or xen */
};

struct key {
    const char *name;
    enum ktype type;
    bool per_guest;     /* lives in struct de_policy */
    bool startup;       /* only read at start: config_set refuses it */
    size_t off;         /* into de_policy (per_guest) or de_config */
    size_t size;        /* of the field, for strings */
    uint64_t min, max;
};

#define P(f) true, false, offsetof(struct de_policy, f), \
    sizeof(((struct de_policy *)0)->f)
#define G(f) false, false, offsetof(struct de_config, f), \
    sizeof(((struct de_config *)0)->f)
#define GS(f) false, true, offsetof(struct de_config, f), \
    sizeof(((struct de_config *)0)->f)

static const struct key keys[] = {
    { "socket", K_SOCKPATH, GS(socket), 0, 0 },
    { "guest_socket", K_SOCKPATH, GS(guest_socket), 0, 0 },
    { "enable", K_BOOL, P(enable), 0, 1 },
    { "share", K_BOOL, P(share), 0, 1 },
    { "patch", K_BOOL, P(patch), 0, 1 },
    { "compress", K_BOOL, P(compress), 0, 1 },
    { "swap", K_BOOL, P(swap), 0, 1 },
    { "patch_codec", K_CODEC, P(patch_codec), 0, 0 },
    { "compressor", K_COMPRESSOR, P(compressor), 0, 0 },
    { "zstd_level", K_INT, P(zstd_level), 1, 19 },
    { "patch_threshold", K_U32, P(patch_threshold), 64, 4096 },
    { "compress_threshold", K_U32, P(compress_threshold), 64, 4096 },
    { "simdetect", K_SIMDETECT, P(sim_k), 0, 0 },
    { "scan_batch", K_U32, P(scan_batch), 1, 1u << 20 },
    { "nru_patch_age", K_U32, P(nru_patch_age), 1, 255 },
    { "nru_compress_age", K_U32, P(nru_compress_age), 1, 255 },
    { "share_group", K_NAME, P(share_group), 0, 0 },
    { "scan_interval", K_U32, G(scan_interval_ms), 10, 60000 },
    { "store_budget", K_SIZE, G(store_budget), UINT64_C(1) << 20,
      UINT64_C(1) << 44 },
    { "swap_file", K_PATH, GS(swap_file), 0, 0 },
    { "swap_max", K_SIZE, GS(swap_max), UINT64_C(1) << 20,
      UINT64_C(1) << 40 },
    { "log_level", K_LOGLEVEL, G(log_level), 0, 0 },
    { "stats_interval", K_U32, G(stats_interval_s), 0, 86400 },
    { "compress_objects", K_BOOL, G(compress_objects), 0, 1 },
    { "backend", K_BACKEND, GS(backend), 0, 0 },
};

#define NKEYS (sizeof keys / sizeof keys[0])
_Static_assert(NKEYS <= 32, "key bitmasks are 32 bits");

static int key_index(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* ---- defaults ---- */

static void policy_default(struct de_policy *p)
{
    memset(p, 0, sizeof *p);
    p->enable = true;
    p->share = true;
    p->patch = true;
    p->compress = true;
    p->swap = false;            /* needs a swap_file */
    p->patch_codec = patch_codec_lookup(DEFAULT_PATCH_CODEC);
    p->compressor = compressor_lookup(DEFAULT_COMPRESSOR);
    p->zstd_level = DEFAULT_ZSTD_LEVEL;
    p->patch_threshold = DEFAULT_PATCH_THRESHOLD;
    p->compress_threshold = DEFAULT_COMPRESS_THRESHOLD;
    p->sim_k = DEFAULT_SIM_K;
    p->sim_s = DEFAULT_SIM_S;
    p->sim_c = DEFAULT_SIM_C;
    p->scan_batch = DEFAULT_SCAN_BATCH;
    p->nru_patch_age = DEFAULT_NRU_PATCH_AGE;
    p->nru_compress_age = DEFAULT_NRU_COMPRESS_AGE;
}

struct de_config *config_default(void)
{
    struct de_config *cfg = calloc(1, sizeof *cfg);

    if (!cfg)
        return NULL;
    strcpy(cfg->socket, DEFAULT_SOCKET);
    strcpy(cfg->guest_socket, DEFAULT_GUEST_SOCKET);
    policy_default(&cfg->policy);
    cfg->scan_interval_ms = DEFAULT_SCAN_INTERVAL_MS;
    cfg->store_budget = DEFAULT_STORE_BUDGET;
    cfg->swap_max = DEFAULT_SWAP_MAX;
    cfg->log_level = DEFAULT_LOG_LEVEL;
    cfg->stats_interval_s = DEFAULT_STATS_INTERVAL;
    cfg->compress_objects = true;
    return cfg;
}

void config_free(struct de_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->guests);
    free(cfg);
}

const char *config_patch_codec_name(int id)
{
    const char *n = patch_codec_name((enum patch_codec_id)id);

    return n ? n : "?";
}

const char *config_compressor_name(int id)
{
    const char *n = compressor_name((enum compressor_id)id);

    return n ? n : "?";
}

/* ---- values ---- */

static int parse_u64(const char *s, uint64_t *out, const char **end)
{
    uint64_t v = 0;

    if (*s < '0' || *s > '9')
        return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    *end = s;
    return 0;
}

int config_parse_size(const char *s, uint64_t *out)
{
    const char *end;
    uint64_t v;
    unsigned shift = 0;

    if (parse_u64(s, &v, &end) != 0)
        return -1;
    switch (*end) {
    case '\0': break;
    case 'k': case 'K': shift = 10; break;
    case 'm': case 'M': shift = 20; break;
    case 'g': case 'G': shift = 30; break;
    case 't': case 'T': shift = 40; break;
    default: return -1;
    }
    if (*end && end[1] != '\0')
        return -1;
    if (shift && v > (UINT64_MAX >> shift))
        return -1;
    *out = v << shift;
    return 0;
}

static void size_str(uint64_t v, char *buf, size_t n)
{
    static const char sfx[] = "TGMK";
    unsigned shift = 40;

    for (int i = 0; i < 4; i++, shift -= 10)
        if (v >= (UINT64_C(1) << shift) &&
            (v & ((UINT64_C(1) << shift) - 1)) == 0) {
            snprintf(buf, n, "%llu%c", (unsigned long long)(v >> shift),
                     sfx[i]);
            return;
        }
    snprintf(buf, n, "%llu", (unsigned long long)v);
}

static bool valid_name(const char *s, bool guest)
{
    size_t n = strlen(s);

    if (n == 0 || n >= CONFIG_NAME_MAX)
        return guest ? false : n == 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (guest) {
            /* any printable text: names come from Xen or from guests */
            if (*p < 0x20 || *p == 0x7f)
                return false;
        } else if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                     (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' ||
                     *p == '-')) {
            return false;
        }
    }
    return true;
}

/* Parses `val` for key k and stores it at `dst` (the field). Returns 0 or
 * -1 with a message (without the key or location) in err. */
static int parse_value(const struct key *k, const char *val, void *dst,
                       char *err, size_t errlen)
{
    uint64_t v;
    const char *end;
    char a[32], b[32];

    switch (k->type) {
    case K_BOOL:
        if (strcmp(val, "yes") == 0)
            *(bool *)dst = true;
        else if (strcmp(val, "no") == 0)
            *(bool *)dst = false;
        else {
            ctl_seterr(err, errlen, "expected yes or no, not '%s'", val);
            return -1;
        }
        return 0;
    case K_U32:
    case K_INT:
        if (parse_u64(val, &v, &end) != 0 || *end != '\0') {
            ctl_seterr(err, errlen, "'%s' is not a number", val);
            return -1;
        }
        if (v < k->min || v > k->max) {
            ctl_seterr(err, errlen, "%s is out of range (%llu..%llu)", val,
                   (unsigned long long)k->min, (unsigned long long)k->max);
            return -1;
        }
        if (k->type == K_U32)
            *(uint32_t *)dst = (uint32_t)v;
        else
            *(int *)dst = (int)v;
        return 0;
    case K_SIZE:
        if (config_parse_size(val, &v) != 0) {
            ctl_seterr(err, errlen, "'%s' is not a size (a number with an "
                   "optional K, M, G or T suffix)", val);
            return -1;
        }
        if (v < k->min || v > k->max) {
            size_str(k->min, a, sizeof a);
            size_str(k->max, b, sizeof b);
            ctl_seterr(err, errlen, "%s is out of range (%s..%s)", val, a, b);
            return -1;
        }
        *(uint64_t *)dst = v;
        return 0;
    case K_CODEC: {
        int id = patch_codec_lookup(val);

        if (id < 0 || id >= PATCH_NCODECS) {
            ctl_seterr(err, errlen, "unknown patch codec '%s' (xdelta3, zstd "
                   "or bsdiff)", val);
            return -1;
        }
        *(int *)dst = id;
        return 0;
    }
    case K_COMPRESSOR: {
        int id = compressor_lookup(val);

        if (id < 0 || id >= COMP_NCOMPRESSORS) {
            ctl_seterr(err, errlen, "unknown compressor '%s' (lzo, lz4 or "
                   "zstd)", val);
            return -1;
        }
        *(int *)dst = id;
        return 0;
    }
    case K_SIMDETECT: {
        uint64_t ksc[3];
        const unsigned max[3] = { SIMDETECT_MAX_K, SIMDETECT_MAX_S,
                                  SIMDETECT_MAX_C };
        const char *p = val;
        unsigned *u = dst;      /* sim_k, sim_s, sim_c are consecutive */

        for (int i = 0; i < 3; i++) {
            if (parse_u64(p, &ksc[i], &end) != 0 ||
                *end != (i < 2 ? ',' : '\0')) {
                ctl_seterr(err, errlen, "'%s' is not k,s,c (e.g. 2,1,1)", val);
                return -1;
            }
            if (ksc[i] < 1 || ksc[i] > max[i]) {
                ctl_seterr(err, errlen, "%c=%llu is out of range (1..%u)",
                       "ksc"[i], (unsigned long long)ksc[i], max[i]);
                return -1;
            }
            p = end + 1;
        }
        for (int i = 0; i < 3; i++)
            u[i] = (unsigned)ksc[i];
        return 0;
    }
    case K_LOGLEVEL:
        if (log_level_parse(val, (enum log_level *)dst) != 0) {
            ctl_seterr(err, errlen, "unknown log level '%s' (debug, info, "
                   "warn or error)", val);
            return -1;
        }
        return 0;
    case K_SOCKPATH:
    case K_PATH:
        if (k->type == K_PATH && val[0] == '\0') {
            *(char *)dst = '\0';
            return 0;
        }
        if (val[0] != '/') {
            ctl_seterr(err, errlen, "'%s' is not an absolute path", val);
            return -1;
        }
        if (strlen(val) >= k->size) {
            ctl_seterr(err, errlen, "path longer than %zu bytes", k->size - 1);
            return -1;
        }
        strcpy(dst, val);
        return 0;
    case K_NAME:
        if (!valid_name(val, false)) {
            ctl_seterr(err, errlen, "'%s' is not a valid name (up to %d of "
                   "A-Z a-z 0-9 . _ -)", val, CONFIG_NAME_MAX - 1);
            return -1;
        }
        strcpy(dst, val);
        return 0;
    case K_BACKEND:
        if (strcmp(val, "uffd") == 0)
            *(int *)dst = DE_BACKEND_UFFD;
        else if (strcmp(val, "xen") == 0)
            *(int *)dst = DE_BACKEND_XEN;
        else {
            ctl_seterr(err, errlen, "unknown backend '%s' (uffd or xen)", val);
            return -1;
        }
        return 0;
    }
    return -1;
}

/* Which of a policy's bytes key k owns (simdetect owns three fields). */
static size_t field_size(const struct key *k)
{
    return k->type == K_SIMDETECT ? 3 * sizeof(unsigned) : k->size;
}

/* ---- guests ---- */

static struct de_guest_conf *guest_find(const struct de_config *cfg,
                                        const char *name)
{
    for (size_t i = 0; i < cfg->nguests; i++)
        if (strcmp(cfg->guests[i].name, name) == 0)
            return &cfg->guests[i];
    return NULL;
}

static struct de_guest_conf *guest_add(struct de_config *cfg,
                                       const char *name, unsigned line)
{
    struct de_guest_conf *ng, *g;

    ng = realloc(cfg->guests, (cfg->nguests + 1) * sizeof *ng);
    if (!ng)
        return NULL;
    cfg->guests = ng;
    g = &ng[cfg->nguests++];
    memset(g, 0, sizeof *g);
    strcpy(g->name, name);
    g->line = line;
    policy_default(&g->policy);
    return g;
}

bool config_for_guest(const struct de_config *cfg, const char *name,
                      struct de_policy *out)
{
    const struct de_guest_conf *g = guest_find(cfg, name);

    *out = cfg->policy;
    if (!g)
        return false;
    for (size_t i = 0; i < NKEYS; i++)
        if (g->set & (1u << i))
            memcpy((char *)out + keys[i].off,
                   (const char *)&g->policy + keys[i].off,
                   field_size(&keys[i]));
    return true;
}

/* ---- tokenizer ---- */

enum tok { T_EOF, T_NL, T_WORD, T_STRING, T_LBRACE, T_RBRACE, T_ERR };

struct lexer {
    const char *name;
    const char *s;
    size_t len;
    size_t pos;
    unsigned line;
    unsigned tok_line;          /* line of the last token returned */
    char text[CONFIG_PATH_MAX];
    char *err;
    size_t errlen;
};

static int lex_error(struct lexer *lx, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int lex_error(struct lexer *lx, unsigned line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ctl_seterr(lx->err, lx->errlen, "%s:%u: %s", lx->name, line, msg);
    return -1;
}

static bool word_char(char c)
{
    return c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '#' &&
           c != '"' && c != '{' && c != '}' && c != '\0';
}

static enum tok lex(struct lexer *lx)
{
    size_t n = 0;

    for (;;) {
        while (lx->pos < lx->len &&
               (lx->s[lx->pos] == ' ' || lx->s[lx->pos] == '\t' ||
                lx->s[lx->pos] == '\r'))
            lx->pos++;
        if (lx->pos < lx->len && lx->s[lx->pos] == '#') {
            while (lx->pos < lx->len && lx->s[lx->pos] != '\n')
                lx->pos++;
            continue;
        }
        break;
    }
    lx->tok_line = lx->line;
    if (lx->pos >= lx->len) {
        /* report the end of the file on its last line, not past it */
        if (lx->len > 0 && lx->s[lx->len - 1] == '\n' && lx->line > 1)
            lx->tok_line = lx->line - 1;
        return T_EOF;
    }
    switch (lx->s[lx->pos]) {
    case '\n':
        lx->pos++;
        lx->line++;
        return T_NL;
    case '{':
        lx->pos++;
        return T_LBRACE;
    case '}':
        lx->pos++;
        return T_RBRACE;
    case '"':
        lx->pos++;
        for (;;) {
            char c;

            if (lx->pos >= lx->len || lx->s[lx->pos] == '\n') {
                lex_error(lx, lx->tok_line, "unterminated string");
                return T_ERR;
            }
            c = lx->s[lx->pos++];
            if (c == '"')
                break;
            if (c == '\\' && lx->pos < lx->len &&
                (lx->s[lx->pos] == '"' || lx->s[lx->pos] == '\\'))
                c = lx->s[lx->pos++];
            if ((unsigned char)c < 0x20 && c != '\t') {
                lex_error(lx, lx->tok_line, "control character in string");
                return T_ERR;
            }
            if (n + 1 >= sizeof lx->text) {
                lex_error(lx, lx->tok_line, "string too long");
                return T_ERR;
            }
            lx->text[n++] = c;
        }
        lx->text[n] = '\0';
        return T_STRING;
    default:
        if ((unsigned char)lx->s[lx->pos] < 0x20) {
            lex_error(lx, lx->tok_line, "unexpected control character "
                      "0x%02x", (unsigned char)lx->s[lx->pos]);
            return T_ERR;
        }
        while (lx->pos < lx->len && word_char(lx->s[lx->pos]) &&
               (unsigned char)lx->s[lx->pos] >= 0x20) {
            if (n + 1 >= sizeof lx->text) {
                lex_error(lx, lx->tok_line, "word too long");
                return T_ERR;
            }
            lx->text[n++] = lx->s[lx->pos++];
        }
        lx->text[n] = '\0';
        return T_WORD;
    }
}

static const char *tok_desc(enum tok t, const struct lexer *lx)
{
    switch (t) {
    case T_EOF: return "end of file";
    case T_NL: return "end of line";
    case T_LBRACE: return "'{'";
    case T_RBRACE: return "'}'";
    default: return lx->text;
    }
}

/* ---- parser ---- */

/* Applies `key value` at line `line`, to the guest g or globally. */
static int apply(struct lexer *lx, struct de_config *cfg,
                 struct de_guest_conf *g, const char *key, const char *val,
                 unsigned line)
{
    char msg[512];
    int ki = key_index(key);
    const struct key *k;
    void *dst;

    if (ki < 0)
        return lex_error(lx, line, "unknown key '%s'", key);
    k = &keys[ki];
    if (g && !k->per_guest)
        return lex_error(lx, line, "'%s' is global and cannot be set in "
                         "a guest block", key);
    if (g)
        dst = (char *)&g->policy + k->off;
    else if (k->per_guest)
        dst = (char *)&cfg->policy + k->off;
    else
        dst = (char *)cfg + k->off;
    if (parse_value(k, val, dst, msg, sizeof msg) != 0)
        return lex_error(lx, line, "%s: %s", key, msg);
    if (g) {
        g->set |= 1u << ki;
        g->key_line[ki] = line;
    } else {
        cfg->key_line[ki] = line;
    }
    return 0;
}

/* Expects the end of a statement; a '}' is handed back through *brace. */
static int end_of_statement(struct lexer *lx, bool in_block, bool *brace)
{
    enum tok t = lex(lx);

    *brace = false;
    if (t == T_NL || t == T_EOF)
        return 0;
    if (t == T_RBRACE && in_block) {
        *brace = true;
        return 0;
    }
    if (t == T_ERR)
        return -1;
    return lex_error(lx, lx->tok_line, "unexpected %s after the value",
                     tok_desc(t, lx));
}

static int parse_statement(struct lexer *lx, struct de_config *cfg,
                           struct de_guest_conf *g, bool *brace)
{
    char key[64];
    unsigned line = lx->tok_line;
    enum tok t;

    if (strlen(lx->text) >= sizeof key)
        return lex_error(lx, line, "unknown key '%.40s...'", lx->text);
    strcpy(key, lx->text);
    t = lex(lx);
    if (t == T_ERR)
        return -1;
    if (t != T_WORD && t != T_STRING)
        return lex_error(lx, line, "missing value for '%s'", key);
    if (apply(lx, cfg, g, key, lx->text, line) != 0)
        return -1;
    return end_of_statement(lx, g != NULL, brace);
}

static int parse_guest(struct lexer *lx, struct de_config *cfg)
{
    unsigned line = lx->tok_line;
    struct de_guest_conf *g;
    enum tok t = lex(lx);

    if (t == T_ERR)
        return -1;
    if (t != T_WORD && t != T_STRING)
        return lex_error(lx, line, "expected a guest name after 'guest'");
    if (!valid_name(lx->text, true))
        return lex_error(lx, line, "invalid guest name '%s' (1..%d "
                         "printable bytes)", lx->text, CONFIG_NAME_MAX - 1);
    if ((g = guest_find(cfg, lx->text)))
        return lex_error(lx, line, "guest '%s' already defined at line %u",
                         lx->text, g->line);
    if (!(g = guest_add(cfg, lx->text, line)))
        return lex_error(lx, line, "out of memory");
    t = lex(lx);
    if (t == T_ERR)
        return -1;
    if (t != T_LBRACE)
        return lex_error(lx, lx->tok_line, "expected '{' after guest name, "
                         "not %s", tok_desc(t, lx));
    for (;;) {
        bool brace;

        t = lex(lx);
        switch (t) {
        case T_NL:
            continue;
        case T_RBRACE:
            return end_of_statement(lx, false, &brace);
        case T_EOF:
            return lex_error(lx, lx->tok_line, "unterminated guest block "
                             "(opened at line %u)", line);
        case T_WORD:
            /* a guest pointer is stable only until the next guest_add */
            g = &cfg->guests[cfg->nguests - 1];
            if (parse_statement(lx, cfg, g, &brace) != 0)
                return -1;
            if (brace)
                return end_of_statement(lx, false, &brace);
            continue;
        case T_ERR:
            return -1;
        default:
            return lex_error(lx, lx->tok_line, "unexpected %s in guest "
                             "block", tok_desc(t, lx));
        }
    }
}

/* Checks that need the whole file. */
static int validate(struct lexer *lx, struct de_config *cfg)
{
    int swap_key = key_index("swap");

    if (cfg->swap_file[0] == '\0') {
        if (cfg->policy.swap)
            return lex_error(lx, cfg->key_line[swap_key] ? cfg->key_line[
                             swap_key] : 1, "swap is enabled but no "
                             "swap_file is set");
        for (size_t i = 0; i < cfg->nguests; i++) {
            const struct de_guest_conf *g = &cfg->guests[i];

            if ((g->set & (1u << swap_key)) && g->policy.swap)
                return lex_error(lx, g->key_line[swap_key], "swap is "
                                 "enabled for guest '%s' but no swap_file "
                                 "is set", g->name);
        }
    }
    return 0;
}

int config_parse(const char *name, const char *text, size_t len,
                 struct de_config **out, char *err, size_t errlen)
{
    struct de_config *cfg = config_default();
    struct lexer *lx;
    int rc = -1;

    lx = calloc(1, sizeof *lx);
    if (!cfg || !lx) {
        ctl_seterr(err, errlen, "%s: out of memory", name);
        goto done;
    }
    lx->name = name;
    lx->s = text;
    lx->len = len;
    lx->line = 1;
    lx->err = err;
    lx->errlen = errlen;
    if (memchr(text, '\0', len)) {
        lex_error(lx, 1, "file contains NUL bytes (not a text file?)");
        goto done;
    }
    snprintf(cfg->source, sizeof cfg->source, "%s", name);
    for (;;) {
        enum tok t = lex(lx);
        bool brace;

        if (t == T_EOF)
            break;
        if (t == T_NL)
            continue;
        if (t == T_ERR)
            goto done;
        if (t != T_WORD) {
            lex_error(lx, lx->tok_line, "unexpected %s", tok_desc(t, lx));
            goto done;
        }
        if (strcmp(lx->text, "guest") == 0) {
            if (parse_guest(lx, cfg) != 0)
                goto done;
        } else if (parse_statement(lx, cfg, NULL, &brace) != 0) {
            goto done;
        }
    }
    if (validate(lx, cfg) != 0)
        goto done;
    *out = cfg;
    cfg = NULL;
    rc = 0;
done:
    config_free(cfg);
    free(lx);
    return rc;
}

int config_load(const char *path, struct de_config **out, char *err,
                size_t errlen)
{
    struct stat st;
    char *buf;
    size_t got = 0;
    int fd, rc;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        ctl_seterr(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    /* character devices: `-f /dev/null` means "defaults only" */
    if (fstat(fd, &st) != 0 || !(S_ISREG(st.st_mode) || S_ISCHR(st.st_mode))) {
        ctl_seterr(err, errlen, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    if (st.st_size > (off_t)CONFIG_FILE_MAX) {
        ctl_seterr(err, errlen, "%s: larger than %u bytes", path,
               CONFIG_FILE_MAX);
        close(fd);
        return -1;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        ctl_seterr(err, errlen, "%s: out of memory", path);
        close(fd);
        return -1;
    }
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            ctl_seterr(err, errlen, "%s: %s", path,
                   r < 0 ? strerror(errno) : "file shrank while reading");
            free(buf);
            close(fd);
            return -1;
        }
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    rc = config_parse(path, buf, got, out, err, errlen);
    free(buf);
    return rc;
}

/* ---- run-time changes ---- */

int config_set(struct de_config *cfg, const char *guest, const char *key,
               const char *value, char *err, size_t errlen)
{
    union {
        bool b;
        uint32_t u32;
        int i;
        uint64_t u64;
        enum log_level lv;
        unsigned sim[3];
        char s[CONFIG_PATH_MAX];
    } tmp;
    char msg[512];
    int ki = key_index(key);
    const struct key *k;
    struct de_guest_conf *g = NULL;
    bool global = guest == NULL || strcmp(guest, "*") == 0;
    void *dst;

    if (ki < 0) {
        ctl_seterr(err, errlen, "unknown key '%s'", key);
        return -1;
    }
    k = &keys[ki];
    if (k->startup) {
        ctl_seterr(err, errlen, "%s: only read at start-up (edit the config "
               "file and restart de-dom0d)", key);
        return -1;
    }
    if (!global && !k->per_guest) {
        ctl_seterr(err, errlen, "%s: a global setting, not per guest (use "
               "'*' as the guest)", key);
        return -1;
    }
    if (!global && !valid_name(guest, true)) {
        ctl_seterr(err, errlen, "invalid guest name");
        return -1;
    }
    memset(&tmp, 0, sizeof tmp);
    if (parse_value(k, value, &tmp, msg, sizeof msg) != 0) {
        ctl_seterr(err, errlen, "%s: %s", key, msg);
        return -1;
    }
    if (k->type == K_BOOL && tmp.b && strcmp(key, "swap") == 0 &&
        cfg->swap_file[0] == '\0') {
        ctl_seterr(err, errlen, "swap: no swap_file is configured");
        return -1;
    }
    if (global) {
        dst = k->per_guest ? (char *)&cfg->policy + k->off
                           : (char *)cfg + k->off;
    } else {
        g = guest_find(cfg, guest);
        if (!g && !(g = guest_add(cfg, guest, 0))) {
            ctl_seterr(err, errlen, "out of memory");
            return -1;
        }
        dst = (char *)&g->policy + k->off;
        g->set |= 1u << ki;
        g->key_line[ki] = 0;
    }
    memcpy(dst, &tmp, field_size(k));
    return 0;
}

/* ---- printing ---- */

static void print_quoted(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void print_value(FILE *f, const struct key *k, const void *src)
{
    char buf[32];

    switch (k->type) {
    case K_BOOL:
        fputs(*(const bool *)src ? "yes" : "no", f);
        break;
    case K_U32:
        fprintf(f, "%u", *(const uint32_t *)src);
        break;
    case K_INT:
        fprintf(f, "%d", *(const int *)src);
        break;
    case K_SIZE:
        size_str(*(const uint64_t *)src, buf, sizeof buf);
        fputs(buf, f);
        break;
    case K_CODEC:
        fputs(config_patch_codec_name(*(const int *)src), f);
        break;
    case K_COMPRESSOR:
        fputs(config_compressor_name(*(const int *)src), f);
        break;
    case K_SIMDETECT: {
        const unsigned *u = src;

        fprintf(f, "%u,%u,%u", u[0], u[1], u[2]);
        break;
    }
    case K_LOGLEVEL:
        fputs(log_level_name(*(const enum log_level *)src), f);
        break;
    case K_SOCKPATH:
    case K_PATH:
    case K_NAME:
        print_quoted(f, src);
        break;
    case K_BACKEND:
        fputs(*(const int *)src == DE_BACKEND_XEN ? "xen" : "uffd", f);
        break;
    }
}

void config_print(const struct de_config *cfg, FILE *f)
{
    for (size_t i = 0; i < NKEYS; i++) {
        const struct key *k = &keys[i];
        const void *src = k->per_guest
            ? (const char *)&cfg->policy + k->off
            : (const char *)cfg + k->off;

        fprintf(f, "%s ", k->name);
        print_value(f, k, src);
        fputc('\n', f);
    }
    for (size_t gi = 0; gi < cfg->nguests; gi++) {
        const struct de_guest_conf *g = &cfg->guests[gi];

        fputs("\nguest ", f);
        print_quoted(f, g->name);
        fputs(" {\n", f);
        for (size_t i = 0; i < NKEYS; i++) {
            if (!(g->set & (1u << i)))
                continue;
            fprintf(f, "\t%s ", keys[i].name);
            print_value(f, &keys[i], (const char *)&g->policy + keys[i].off);
            fputc('\n', f);
        }
        fputs("}\n", f);
    }
}

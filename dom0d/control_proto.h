/*
 * control_proto.h - the control protocol shared by de-dom0d and de-ctl.
 *
 * A client sends one request per line: a command word and its arguments,
 * separated by blanks, at most CTL_MAX_LINE bytes before the "\n".
 * Arguments containing blanks, quotes or backslashes are written in
 * double quotes with \" and \\ escapes. Requests must be valid UTF-8
 * without control characters. Each request gets exactly one reply: a JSON
 * object on one line, {"ok":true,...} or {"ok":false,"error":"..."}.
 *
 * This file holds what both ends need and nothing that needs libevent: the
 * command table, the request tokenizer and quoting, a JSON writer (the
 * daemon's replies), a small JSON reader (de-ctl's tables) and a blocking
 * client round trip.
 */
#ifndef DE_CONTROL_PROTO_H
#define DE_CONTROL_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CTL_DEFAULT_SOCKET "/run/de-dom0d.sock"
#define CTL_MAX_LINE 1024               /* request bytes, "\n" excluded */
#define CTL_MAX_ARGS 8                  /* words, command included */
#define CTL_MAX_REPLY (16u << 20)       /* a client gives up beyond this */

/* ---- commands ---- */

enum ctl_cmd {
    CTL_CMD_STATUS = 0,
    CTL_CMD_GUESTS,
    CTL_CMD_STATS,
    CTL_CMD_SET,
    CTL_CMD_PAUSE,
    CTL_CMD_RESUME,
    CTL_CMD_FLUSH,
    CTL_NCMDS
};

struct ctl_cmd_info {
    enum ctl_cmd cmd;
    const char *name;
    int min_args;               /* arguments after the command word */
    int max_args;
    const char *args;           /* "GUEST KEY VALUE", for usage lines */
};

/* The command named `name`, or NULL. */
const struct ctl_cmd_info *ctl_cmd_lookup(const char *name);
/* The whole table (CTL_NCMDS entries), in usage order. */
const struct ctl_cmd_info *ctl_cmd_table(void);

/* ---- requests ---- */

struct ctl_req {
    int argc;
    char *argv[CTL_MAX_ARGS];   /* point into buf */
    char buf[CTL_MAX_LINE + CTL_MAX_ARGS];
};

/* Splits one request line (without its "\n"; a trailing "\r" is
 * dropped) into words. Returns 0, or -1 with a message in err for an
 * oversized line, invalid UTF-8, a control character, an unterminated
 * quote, too many words or an empty line. */
int ctl_parse_line(const char *line, size_t len, struct ctl_req *req,
                   char *err, size_t errlen);

/* Joins words into a request line (no "\n"), quoting where needed.
 * Returns its length, or -1 when it would exceed CTL_MAX_LINE or cap. */
int ctl_build_line(int argc, char *const argv[], char *out, size_t cap);

/* Formats an error message into err (errlen bytes); err may be NULL.
 * Shared by the daemon's modules that return errors as text. */
void ctl_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- JSON writer ---- */

#define JSON_MAX_DEPTH 32

/*
 * An append-only JSON text in a growing buffer. Commas between members
 * and elements are inserted automatically. Any failure (out of memory,
 * nesting too deep, more than `limit` bytes) latches `failed` and turns
 * later calls into no-ops, so writers check once at the end.
 */
struct json_buf {
    char *buf;                  /* always NUL-terminated when cap > 0 */
    size_t len;
    size_t cap;
    size_t limit;               /* 0 = CTL_MAX_REPLY */
    bool failed;
    bool after_key;
    unsigned depth;
    bool need_comma[JSON_MAX_DEPTH + 1];
};

void json_init(struct json_buf *j);
void json_reset(struct json_buf *j);    /* empties, keeps the memory */
void json_free(struct json_buf *j);
bool json_ok(const struct json_buf *j);
const char *json_cstr(const struct json_buf *j);  /* "" when empty */

void json_obj_begin(struct json_buf *j);
void json_obj_end(struct json_buf *j);
void json_arr_begin(struct json_buf *j);
void json_arr_end(struct json_buf *j);
void json_key(struct json_buf *j, const char *key);
/* Strings are escaped; bytes that are not valid UTF-8 become U+FFFD, so
 * the output is valid JSON whatever a client sent. */
void json_str(struct json_buf *j, const char *s);
void json_strn(struct json_buf *j, const char *s, size_t n);
void json_u64(struct json_buf *j, uint64_t v);
void json_i64(struct json_buf *j, int64_t v);
void json_double(struct json_buf *j, double v);  /* NaN, inf -> null */
void json_bool(struct json_buf *j, bool v);
void json_null(struct json_buf *j);
/* Appends a newline outside any value (ends a reply line). */
void json_newline(struct json_buf *j);

void json_kv_str(struct json_buf *j, const char *key, const char *v);
void json_kv_u64(struct json_buf *j, const char *key, uint64_t v);
void json_kv_i64(struct json_buf *j, const char *key, int64_t v);
void json_kv_double(struct json_buf *j, const char *key, double v);
void json_kv_bool(struct json_buf *j, const char *key, bool v);

/* ---- JSON reader ---- */

enum jv_type { JV_NULL, JV_BOOL, JV_NUM, JV_STR, JV_ARR, JV_OBJ };

struct jv {
    enum jv_type type;
    bool b;
    bool is_uint;               /* a non-negative integer literal < 2^64 */
    uint64_t u;
    double num;
    char *str;                  /* JV_STR: NUL-terminated UTF-8 */
    char *key;                  /* set when this is an object member */
    size_t n;                   /* JV_ARR, JV_OBJ: number of items */
    struct jv *items;
};

/* Parses exactly one JSON value (surrounding blanks allowed). Returns a
 * tree to release with jv_free(), or NULL with a message in err. Nesting
 * is limited to JSON_MAX_DEPTH. */
struct jv *jv_parse(const char *text, size_t len, char *err, size_t errlen);
void jv_free(struct jv *v);

/* Member `key` of an object, or NULL (also when v is not an object). */
const struct jv *jv_get(const struct jv *v, const char *key);
/* Typed reads with a fallback when v is NULL or of another type. */
const char *jv_string(const struct jv *v, const char *dflt);
double jv_number(const struct jv *v, double dflt);
uint64_t jv_uint(const struct jv *v, uint64_t dflt);
bool jv_boolean(const struct jv *v, bool dflt);

/* ---- client ---- */

/* Connects to the control socket. Returns an fd, or -1 with errno set and
 * a message in err ("cannot connect to PATH: ..."). */
int ctl_connect(const char *path, char *err, size_t errlen);

/* Sends `line` (no "\n") and waits up to timeout_ms (< 0: forever) for
 * the reply line. Returns 0 with *reply a malloc'd NUL-terminated line
 * (its "\n" removed), or -1 with a message in err. */
int ctl_roundtrip(int fd, const char *line, int timeout_ms, char **reply,
                  char *err, size_t errlen);

#endif

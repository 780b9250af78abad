/*
 * log.h - de-dom0d's logging, in the manner of OpenBSD daemons' log.c.
 *
 * Messages go to stderr while the daemon runs in the foreground and to
 * syslog (facility daemon) once it has detached. log_warn() and fatal()
 * append strerror(errno), the x variants do not.
 */
#ifndef DE_LOG_H
#define DE_LOG_H

#include <stdarg.h>
#include <stdbool.h>

/* Named DE_LOG_* so they cannot clash with <syslog.h>'s LOG_INFO etc. */
enum log_level {
    DE_LOG_DEBUG = 0,
    DE_LOG_INFO,
    DE_LOG_WARN,
    DE_LOG_ERROR,
};

#define LOG_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* Messages below `level` are dropped. to_stderr selects stderr rather
 * than syslog; syslog is opened with the program name `ident` (may be
 * NULL for the default). Can be called again, e.g. after daemonizing. */
void log_init(enum log_level level, bool to_stderr, const char *ident);
void log_setlevel(enum log_level level);
enum log_level log_getlevel(void);

/* "debug", "info", "warn", "error" <-> levels. Parse returns 0 or -1. */
int log_level_parse(const char *name, enum log_level *out);
const char *log_level_name(enum log_level level);

void log_debug(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_info(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warn(const char *fmt, ...) LOG_PRINTF(1, 2);   /* + strerror(errno) */
void log_warnx(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_error(const char *fmt, ...) LOG_PRINTF(1, 2);  /* an error we survive */
_Noreturn void fatal(const char *fmt, ...) LOG_PRINTF(1, 2); /* + strerror */
_Noreturn void fatalx(const char *fmt, ...) LOG_PRINTF(1, 2);
void vlog(enum log_level level, const char *fmt, va_list ap)
    LOG_PRINTF(2, 0);

/* Routes libevent's own diagnostics through this log. */
void log_hook_libevent(void);

#endif

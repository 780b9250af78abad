/*
 * log.c - leveled logging to stderr or syslog.
 *
 * Each message is formatted into one buffer and emitted with one call, so
 * lines from concurrent threads (compression workers, later) never
 * interleave mid-line. errno is preserved across every call: a caller can
 * log and then still report the error it was handling.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include <event2/event.h>

#include "log.h"

#define LOG_LINE_MAX 1024

static enum log_level log_threshold = DE_LOG_INFO;
static bool log_to_stderr = true;

static const char *const level_names[] = {
    [DE_LOG_DEBUG] = "debug",
    [DE_LOG_INFO] = "info",
    [DE_LOG_WARN] = "warn",
    [DE_LOG_ERROR] = "error",
};

static const int level_prio[] = {
    [DE_LOG_DEBUG] = LOG_DEBUG,
    [DE_LOG_INFO] = LOG_INFO,
    [DE_LOG_WARN] = LOG_WARNING,
    [DE_LOG_ERROR] = LOG_ERR,
};

void log_init(enum log_level level, bool to_stderr, const char *ident)
{
    log_threshold = level;
    log_to_stderr = to_stderr;
    if (!to_stderr) {
        /* LOG_NDELAY: connect now, before a chroot or privilege drop
         * could make /dev/log unreachable. */
        openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
    }
    tzset();
}

void log_setlevel(enum log_level level)
{
    log_threshold = level;
}

enum log_level log_getlevel(void)
{
    return log_threshold;
}

int log_level_parse(const char *name, enum log_level *out)
{
    for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++)
        if (strcmp(name, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    return -1;
}

const char *log_level_name(enum log_level level)
{
    if ((unsigned)level >= sizeof level_names / sizeof level_names[0])
        return "?";
    return level_names[level];
}

static void emit(enum log_level level, const char *msg)
{
    if (log_to_stderr) {
        char line[LOG_LINE_MAX + 64];
        struct timespec ts;
        struct tm tm;

        /* Timestamps matter when reading fault-latency complaints from a
         * foreground run; syslog adds its own. */
        clock_gettime(CLOCK_REALTIME, &ts);
        localtime_r(&ts.tv_sec, &tm);
        snprintf(line, sizeof line, "%02d:%02d:%02d.%03ld %s%s%s\n",
                 tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                 level == DE_LOG_INFO ? "" : level_names[level],
                 level == DE_LOG_INFO ? "" : ": ", msg);
        fputs(line, stderr);
    } else {
        syslog(level_prio[level], "%s", msg);
    }
}

void vlog(enum log_level level, const char *fmt, va_list ap)
{
    char msg[LOG_LINE_MAX];
    int saved = errno;

    if (level < log_threshold) {
        errno = saved;
        return;
    }
    vsnprintf(msg, sizeof msg, fmt, ap);
    emit(level, msg);
    errno = saved;
}

/* The errno-appending variants: "<message>: <strerror>". */
static void vlog_errno(enum log_level level, const char *fmt, va_list ap)
{
    char msg[LOG_LINE_MAX];
    char full[LOG_LINE_MAX + 128];
    int saved = errno;

    if (level < log_threshold) {
        errno = saved;
        return;
    }
    vsnprintf(msg, sizeof msg, fmt, ap);
    snprintf(full, sizeof full, "%s: %s", msg, strerror(saved));
    emit(level, full);
    errno = saved;
}

void log_debug(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(DE_LOG_DEBUG, fmt, ap);
    va_end(ap);
}

void log_info(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(DE_LOG_INFO, fmt, ap);
    va_end(ap);
}

void log_warn(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog_errno(DE_LOG_WARN, fmt, ap);
    va_end(ap);
}

void log_warnx(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(DE_LOG_WARN, fmt, ap);
    va_end(ap);
}

void log_error(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(DE_LOG_ERROR, fmt, ap);
    va_end(ap);
}

void fatal(const char *fmt, ...)
{
    va_list ap;

    /* Fatal messages are never filtered: they explain why we died. */
    log_threshold = DE_LOG_DEBUG;
    va_start(ap, fmt);
    vlog_errno(DE_LOG_ERROR, fmt, ap);
    va_end(ap);
    exit(1);
}

void fatalx(const char *fmt, ...)
{
    va_list ap;

    log_threshold = DE_LOG_DEBUG;
    va_start(ap, fmt);
    vlog(DE_LOG_ERROR, fmt, ap);
    va_end(ap);
    exit(1);
}

static void libevent_log_cb(int severity, const char *msg)
{
    enum log_level level;

    switch (severity) {
    case EVENT_LOG_DEBUG: level = DE_LOG_DEBUG; break;
    case EVENT_LOG_MSG: level = DE_LOG_INFO; break;
    case EVENT_LOG_WARN: level = DE_LOG_WARN; break;
    default: level = DE_LOG_ERROR; break;
    }
    if (level >= log_threshold) {
        char line[LOG_LINE_MAX];

        snprintf(line, sizeof line, "libevent: %s", msg);
        emit(level, line);
    }
}

void log_hook_libevent(void)
{
    event_set_log_callback(libevent_log_cb);
}

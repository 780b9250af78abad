/*
 * de-dom0d - the Difference Engine daemon.
 *
 * One process, one libevent loop: the guests' event fds (faults), the
 * attach socket (uffd backend) or xenstore's watches (xen backend: -x or
 * `backend xen`, see xendoms.c), a timer for the clock, the control
 * socket and signals.
 * SIGTERM/SIGINT stop scanning, give every reclaimed page back to its
 * guest, then exit; SIGHUP reloads the configuration (a bad file keeps the
 * running one). See de-dom0d(8) and de-dom0d.conf(5).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "control.h"
#include "dom0d.h"
#include "log.h"
#include "swapfile.h"

static void usage(void)
{
    fprintf(stderr,
"usage: de-dom0d [-dnx] [-f config] [-s control-socket] [-g guest-socket]\n"
"  -f FILE  configuration (default " CONFIG_DEFAULT_PATH "; built-in defaults\n"
"           when the default file does not exist)\n"
"  -d       debug logging\n"
"  -n       check the configuration, print it and exit\n"
"  -s PATH  control socket (overrides `socket`)\n"
"  -g PATH  socket guests attach to (overrides `guest_socket`)\n"
"  -x       Xen: manage the domains enabled in xenstore (`backend xen`)\n");
    exit(2);
}

static void dexc_logger(void *ctx, int level, const char *msg)
{
    (void)ctx;
    if (level <= DEXC_LOG_WARN)
        log_warnx("dexc: %s", msg);
    else if (level == DEXC_LOG_INFO)
        log_info("dexc: %s", msg);
    else
        log_debug("dexc: %s", msg);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    scan_tick(arg);
}

static void accept_cb(evutil_socket_t fd, short what, void *arg)
{
    struct daemon *d = arg;
    dexc_guest *dx;
    int rc;

    (void)fd;
    (void)what;
    for (int i = 0; i < 16; i++) {
        rc = dexc_accept(d->lis, 0, &dx);
        if (rc == 0)
            return;
        if (rc < 0) {
            log_warnx("guest attach refused: %s", strerror(-rc));
            continue;
        }
        if (d->stopping) {
            dexc_close(dx);
            continue;
        }
        rc = guest_adopt(d, dx, NULL, NULL);
        if (rc != 0) {
            log_warnx("cannot adopt guest: %s", strerror(-rc));
            dexc_close(dx);
        }
    }
}

static void shutdown_all(struct daemon *d)
{
    int lost = 0;

    d->stopping = true;
    if (d->tick_ev)
        event_del(d->tick_ev);
    for (uint32_t i = 0; i < d->nguests_cap; i++) {
        struct guest *g = d->guests[i];
        int failed;

        if (!g)
            continue;
        failed = guest_flush(g);
        if (failed) {
            lost += failed;
            log_warnx("guest %s: %d pages could not be given back", g->name,
                      failed);
        } else {
            log_info("guest %s: every page given back", g->name);
        }
        guest_gone(g);
    }
    if (lost)
        log_warnx("%d pages were not restored", lost);
    event_base_loopbreak(d->base);
}

static int reload(struct daemon *d)
{
    struct de_config *n;
    char err[1024];

    if (config_load(d->cfg_path, &n, err, sizeof err) != 0) {
        log_warnx("reload: %s; keeping the running configuration", err);
        return -1;
    }
    /* Sockets are not re-bound on reload. */
    snprintf(n->socket, sizeof n->socket, "%s", d->cfg->socket);
    snprintf(n->guest_socket, sizeof n->guest_socket, "%s", d->cfg->guest_socket);
    n->backend = d->cfg->backend;           /* fixed at start-up (-x) */
    config_free(d->cfg);
    d->cfg = n;
    log_setlevel(n->log_level);
    if (d->xen) {
#ifdef DE_WITH_XEN
        /* Xen domains: their xenstore keys over the new defaults */
        xendoms_reload(d);
#endif
        log_info("configuration reloaded from %s", d->cfg_path);
        return 0;
    }
    for (uint32_t i = 0; i < d->nguests_cap; i++) {
        struct guest *g = d->guests[i];
        char grp[CONFIG_NAME_MAX];

        if (!g)
            continue;
        snprintf(grp, sizeof grp, "%s", g->pol.share_group);
        config_for_guest(n, g->name, &g->pol);
        /* a running guest keeps its sharing group */
        snprintf(g->pol.share_group, sizeof g->pol.share_group, "%s", grp);
        guest_apply_policy(g);
    }
    log_info("configuration reloaded from %s", d->cfg_path);
    return 0;
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct daemon *d = arg;

    (void)what;
    switch (sig) {
    case SIGHUP:
        reload(d);
        break;
    default:
        log_info("signal %d: giving every page back and stopping", (int)sig);
        shutdown_all(d);
        break;
    }
}

int main(int argc, char **argv)
{
    static struct daemon dd;
    struct daemon *d = &dd;
    const char *cfg_path = CONFIG_DEFAULT_PATH, *sock = NULL, *gsock = NULL;
    bool debug = false, check = false, explicit_cfg = false, xen = false;
    char err[1024];
    struct timeval tv;
    struct stat st;
    int ch, rc;
    static const int sigs[] = { SIGTERM, SIGINT, SIGHUP };

    while ((ch = getopt(argc, argv, "df:g:hns:x")) != -1) {
        switch (ch) {
        case 'd': debug = true; break;
        case 'f': cfg_path = optarg; explicit_cfg = true; break;
        case 'g': gsock = optarg; break;
        case 'n': check = true; break;
        case 's': sock = optarg; break;
        case 'x': xen = true; break;
        default: usage();
        }
    }
    if (optind != argc)
        usage();
    log_init(DE_LOG_INFO, true, "de-dom0d");
    if (explicit_cfg || stat(cfg_path, &st) == 0) {
        if (config_load(cfg_path, &d->cfg, err, sizeof err) != 0) {
            fprintf(stderr, "de-dom0d: %s\n", err);
            return 1;
        }
    } else {
        d->cfg = config_default();
        if (!d->cfg)
            fatal("config");
    }
    snprintf(d->cfg_path, sizeof d->cfg_path, "%s", cfg_path);
    if (sock)
        snprintf(d->cfg->socket, sizeof d->cfg->socket, "%s", sock);
    if (gsock)
        snprintf(d->cfg->guest_socket, sizeof d->cfg->guest_socket, "%s", gsock);
    if (xen)
        d->cfg->backend = DE_BACKEND_XEN;
    if (check) {
        config_print(d->cfg, stdout);
        return 0;
    }
    log_setlevel(debug ? DE_LOG_DEBUG : d->cfg->log_level);
    log_hook_libevent();
    dexc_set_logger(dexc_logger, NULL);
    signal(SIGPIPE, SIG_IGN);

    d->start_ns = stats_now_ns();
    d->obj_free = OBJ_NONE;
    d->base = event_base_new();
    d->store = store_new();
    if (!d->base || !d->store)
        fatalx("out of memory");
    if (d->cfg->swap_file[0]) {
        d->swap = swapfile_open(d->cfg->swap_file, d->cfg->swap_max, err,
                                sizeof err);
        if (!d->swap)
            fatalx("swap file: %s", err);
    }
    d->ctl = ctl_server_new(d->base, d->cfg->socket, &dom0d_ctl_ops, d, NULL,
                            err, sizeof err);
    if (!d->ctl)
        fatalx("control socket: %s", err);
    if (d->cfg->backend == DE_BACKEND_XEN) {
#ifdef DE_WITH_XEN
        if (xendoms_start(d) != 0)
            fatalx("xen backend: cannot start (see above)");
#else
        fatalx("backend xen: de-dom0d was built without the Xen libraries "
               "(libxen-dev)");
#endif
    } else {
        rc = dexc_listen(d->cfg->guest_socket, 0, &d->lis);
        if (rc != 0)
            fatalx("guest socket %s: %s", d->cfg->guest_socket,
                   strerror(-rc));
        chmod(d->cfg->guest_socket, 0600);
        d->lis_ev = event_new(d->base, dexc_listener_fd(d->lis),
                              EV_READ | EV_PERSIST, accept_cb, d);
        if (!d->lis_ev || event_add(d->lis_ev, NULL) != 0)
            fatalx("event setup");
    }
    d->tick_ev = event_new(d->base, -1, EV_PERSIST, tick_cb, d);
    if (!d->tick_ev)
        fatalx("event setup");
    tv.tv_sec = d->cfg->scan_interval_ms / 1000;
    tv.tv_usec = (d->cfg->scan_interval_ms % 1000) * 1000;
    event_add(d->tick_ev, &tv);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        d->sig_ev[i] = evsignal_new(d->base, sigs[i], signal_cb, d);
        if (!d->sig_ev[i] || event_add(d->sig_ev[i], NULL) != 0)
            fatalx("signal setup");
    }
    if (d->xen)
        log_info("de-dom0d %s: control %s, Xen domains from xenstore, scan "
                 "every %u ms", DE_VERSION, d->cfg->socket,
                 d->cfg->scan_interval_ms);
    else
        log_info("de-dom0d %s: control %s, guests attach at %s, scan every "
                 "%u ms", DE_VERSION, d->cfg->socket, d->cfg->guest_socket,
                 d->cfg->scan_interval_ms);

    event_base_dispatch(d->base);

    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        if (d->sig_ev[i])
            event_free(d->sig_ev[i]);
    event_free(d->tick_ev);
#ifdef DE_WITH_XEN
    xendoms_stop(d);
#endif
    if (d->lis_ev)
        event_free(d->lis_ev);
    if (d->lis)
        dexc_listener_close(d->lis);
    ctl_server_free(d->ctl);
    if (d->swap)
        swapfile_close(d->swap);
    store_destroy(d->store);
    free(d->guests);
    free(d->obj);
    for (int i = 0; i < PATCH_NCODECS; i++)
        patch_codec_free(d->dec_pc[i]);
    for (int i = 0; i < COMP_NCOMPRESSORS; i++)
        compressor_free(d->dec_cc[i]);
    compressor_free(d->obj_cc);
    free(d->groups);
    config_free(d->cfg);
    event_base_free(d->base);
    log_info("stopped");
    return 0;
}

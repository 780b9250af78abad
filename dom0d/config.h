/*
 * config.h - de-dom0d's configuration: global settings, default policy
 * and per-guest overrides, from de-dom0d.conf(5) and `de-ctl set`.
 *
 * A configuration is a value: config_load() builds a new one and touches
 * nothing on failure, so a reload (SIGHUP) loads into a new struct and
 * swaps it in only when the whole file is valid; the running daemon keeps
 * its old configuration after any error.
 */
#ifndef DE_CONFIG_H
#define DE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "control_proto.h"
#include "log.h"

#define CONFIG_DEFAULT_PATH "/etc/de-dom0d.conf"

#define DEFAULT_SOCKET CTL_DEFAULT_SOCKET
#define DEFAULT_GUEST_SOCKET "/run/de-dom0d-guests.sock"
#define DEFAULT_PATCH_CODEC "zstd"
#define DEFAULT_COMPRESSOR "lzo"
#define DEFAULT_ZSTD_LEVEL 3
#define DEFAULT_PATCH_THRESHOLD 2048
#define DEFAULT_COMPRESS_THRESHOLD 2048
#define DEFAULT_SIM_K 2
#define DEFAULT_SIM_S 1
#define DEFAULT_SIM_C 1
#define DEFAULT_SCAN_INTERVAL_MS 1000
#define DEFAULT_SCAN_BATCH 4096
#define DEFAULT_NRU_PATCH_AGE 2
#define DEFAULT_NRU_COMPRESS_AGE 4
#define DEFAULT_STORE_BUDGET (UINT64_C(256) << 20)
#define DEFAULT_SWAP_MAX (UINT64_C(1) << 30)
#define DEFAULT_STATS_INTERVAL 60
#define DEFAULT_LOG_LEVEL DE_LOG_INFO

#define CONFIG_NAME_MAX 64              /* guest and group names, NUL incl. */
#define CONFIG_SOCK_MAX 108             /* sizeof(sun_path) */
#define CONFIG_PATH_MAX 4096
#define CONFIG_FILE_MAX (1u << 20)

/* backend: uffd guests attach at guest_socket; xen domains are adopted
 * from xenstore (de-dom0d built with the Xen libraries). */
#define DE_BACKEND_UFFD 0
#define DE_BACKEND_XEN 1

/* What may differ per guest. */
struct de_policy {
    bool enable;                /* manage this guest at all */
    bool share;
    bool patch;
    bool compress;
    bool swap;
    int patch_codec;            /* enum patch_codec_id */
    int compressor;             /* enum compressor_id */
    int zstd_level;
    uint32_t patch_threshold;
    uint32_t compress_threshold;
    unsigned sim_k, sim_s, sim_c;
    uint32_t scan_batch;        /* pages per clock tick */
    uint32_t nru_patch_age;     /* ticks unused before patching */
    uint32_t nru_compress_age;  /* ticks unused before compressing */
    char share_group[CONFIG_NAME_MAX];  /* "" = shares with no one else */
};

struct de_guest_conf {
    char name[CONFIG_NAME_MAX];
    unsigned line;              /* where its block starts; 0 = de-ctl */
    uint32_t set;               /* bit i: key i of the table is set */
    unsigned key_line[32];
    struct de_policy policy;    /* only the `set` fields mean anything */
};

struct de_config {
    char source[CONFIG_PATH_MAX];       /* file it came from, "" if none */
    char socket[CONFIG_SOCK_MAX];
    char guest_socket[CONFIG_SOCK_MAX];
    struct de_policy policy;            /* defaults for every guest */
    uint32_t scan_interval_ms;
    uint64_t store_budget;
    char swap_file[CONFIG_PATH_MAX];    /* "" = no swap file */
    uint64_t swap_max;
    enum log_level log_level;
    uint32_t stats_interval_s;          /* 0 = no periodic stats log */
    bool compress_objects;              /* hold canonical copies compressed */
    int backend;                        /* DE_BACKEND_*: where guests come
                                           from (start-up only) */
    unsigned key_line[32];
    struct de_guest_conf *guests;
    size_t nguests;
};

/* A configuration with every default, or NULL when out of memory. */
struct de_config *config_default(void);

/* Parses `path` into a new configuration. Returns 0 with *out set, or -1
 * with "path:line: message" in err and *out untouched. */
int config_load(const char *path, struct de_config **out, char *err,
                size_t errlen);
/* The same from a string (`name` stands for the path in messages). */
int config_parse(const char *name, const char *text, size_t len,
                 struct de_config **out, char *err, size_t errlen);

void config_free(struct de_config *cfg);

/* The effective policy of guest `name`: the defaults with its block's
 * overrides applied. Returns true when a block for it exists. */
bool config_for_guest(const struct de_config *cfg, const char *name,
                      struct de_policy *out);

/* Validates and applies one setting at run time (`de-ctl set`). guest
 * NULL or "*" changes the global value, anything else that guest's
 * override (creating its entry). Keys fixed at start-up (socket,
 * guest_socket, swap_file, swap_max) are refused. On error nothing
 * changes and err holds "key: message". Returns 0 or -1. */
int config_set(struct de_config *cfg, const char *guest, const char *key,
               const char *value, char *err, size_t errlen);

/* Writes the configuration in de-dom0d.conf(5) syntax, every key
 * explicit; config_parse() of the output gives the same values. */
void config_print(const struct de_config *cfg, FILE *f);

/* Parses "64M"-style sizes (K, M, G, T; powers of 1024). Returns 0 or -1. */
int config_parse_size(const char *s, uint64_t *out);

/* Names of a codec / compressor id, for logs and config_print. */
const char *config_patch_codec_name(int id);
const char *config_compressor_name(int id);

#endif

/*
 * test_config.c - de-dom0d.conf parsing, errors with file:line, guest
 * overrides, config_set, print/parse round trip.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "compressor.h"
#include "config.h"
#include "patch_codec.h"
#include "tests.h"

static void test_defaults(void)
{
    struct de_config *c = config_default();
    struct de_policy p;

    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_STRING_EQUAL(c->socket, "/run/de-dom0d.sock");
    CU_ASSERT_STRING_EQUAL(c->guest_socket, "/run/de-dom0d-guests.sock");
    CU_ASSERT(c->policy.enable && c->policy.share && c->policy.patch &&
              c->policy.compress && !c->policy.swap);
    CU_ASSERT_STRING_EQUAL(config_patch_codec_name(c->policy.patch_codec),
                           DEFAULT_PATCH_CODEC);
    CU_ASSERT_STRING_EQUAL(config_compressor_name(c->policy.compressor),
                           "lzo");
    CU_ASSERT_EQUAL(c->policy.patch_threshold, 2048);
    CU_ASSERT_EQUAL(c->policy.compress_threshold, 2048);
    CU_ASSERT(c->policy.sim_k == 2 && c->policy.sim_s == 1 &&
              c->policy.sim_c == 1);
    CU_ASSERT_EQUAL(c->scan_interval_ms, 1000);
    CU_ASSERT_EQUAL(c->policy.scan_batch, 4096);
    CU_ASSERT_EQUAL(c->policy.nru_patch_age, 2);
    CU_ASSERT_EQUAL(c->policy.nru_compress_age, 4);
    CU_ASSERT_EQUAL(c->store_budget, 256u << 20);
    CU_ASSERT_EQUAL(c->log_level, DE_LOG_INFO);
    CU_ASSERT_STRING_EQUAL(c->swap_file, "");
    CU_ASSERT(!config_for_guest(c, "any", &p));
    CU_ASSERT(memcmp(&p, &c->policy, sizeof p) == 0);
    config_free(c);
    config_free(NULL);
}

static const char full_conf[] =
    "# de-dom0d test configuration\n"
    "socket /tmp/ctl.sock\n"
    "guest_socket \"/tmp/guests dir/g.sock\"   # quoted: has a blank\n"
    "\n"
    "share yes\n"
    "patch yes\n"
    "compress no\n"
    "swap yes\n"
    "patch_codec xdelta3\n"
    "compressor lz4\n"
    "zstd_level 7\n"
    "patch_threshold 1024\n"
    "compress_threshold 3000\n"
    "simdetect 4,2,3\n"
    "scan_interval 250\n"
    "scan_batch 512\n"
    "nru_patch_age 3\n"
    "nru_compress_age 9\n"
    "store_budget 1G\n"
    "swap_file /var/tmp/de.swap\n"
    "swap_max 64M\n"
    "log_level debug\n"
    "stats_interval 10\n"
    "\n"
    "guest \"web 1\" {\n"
    "\tpatch no\n"
    "\tpatch_codec bsdiff   # per guest\n"
    "\tshare_group web\n"
    "}\n"
    "guest db { compress yes\n"
    "  scan_batch 64 }\n"
    "guest empty {\n"
    "}\n"
    "zstd_level 9   # after the blocks: still the default for them\n";

static void test_full_file(void)
{
    char err[512], path[512];
    struct de_config *c = NULL;
    struct de_policy p;
    int fd;

    td_path(path, sizeof path, "full.conf");
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(write(fd, full_conf, sizeof full_conf - 1),
                    (ssize_t)sizeof full_conf - 1);
    close(fd);

    if (config_load(path, &c, err, sizeof err) != 0)
        fprintf(stderr, "\n  %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_STRING_EQUAL(c->source, path);
    CU_ASSERT_STRING_EQUAL(c->socket, "/tmp/ctl.sock");
    CU_ASSERT_STRING_EQUAL(c->guest_socket, "/tmp/guests dir/g.sock");
    CU_ASSERT(c->policy.share && c->policy.patch && !c->policy.compress &&
              c->policy.swap);
    CU_ASSERT_EQUAL(c->policy.patch_codec, PATCH_XDELTA3);
    CU_ASSERT_EQUAL(c->policy.compressor, COMP_LZ4);
    CU_ASSERT_EQUAL(c->policy.zstd_level, 9);
    CU_ASSERT_EQUAL(c->policy.patch_threshold, 1024);
    CU_ASSERT_EQUAL(c->policy.compress_threshold, 3000);
    CU_ASSERT(c->policy.sim_k == 4 && c->policy.sim_s == 2 &&
              c->policy.sim_c == 3);
    CU_ASSERT_EQUAL(c->scan_interval_ms, 250);
    CU_ASSERT_EQUAL(c->policy.scan_batch, 512);
    CU_ASSERT_EQUAL(c->policy.nru_patch_age, 3);
    CU_ASSERT_EQUAL(c->policy.nru_compress_age, 9);
    CU_ASSERT_EQUAL(c->store_budget, UINT64_C(1) << 30);
    CU_ASSERT_STRING_EQUAL(c->swap_file, "/var/tmp/de.swap");
    CU_ASSERT_EQUAL(c->swap_max, UINT64_C(64) << 20);
    CU_ASSERT_EQUAL(c->log_level, DE_LOG_DEBUG);
    CU_ASSERT_EQUAL(c->stats_interval_s, 10);
    CU_ASSERT_EQUAL_FATAL(c->nguests, 3);
    CU_ASSERT_EQUAL(c->guests[0].line, 25);
    CU_ASSERT_EQUAL(c->guests[1].line, 30);

    CU_ASSERT(config_for_guest(c, "web 1", &p));
    CU_ASSERT(!p.patch && p.share && !p.compress);
    CU_ASSERT_EQUAL(p.patch_codec, PATCH_BSDIFF);
    CU_ASSERT_STRING_EQUAL(p.share_group, "web");
    CU_ASSERT_EQUAL(p.zstd_level, 9);           /* inherited */
    CU_ASSERT_EQUAL(p.scan_batch, 512);
    CU_ASSERT(config_for_guest(c, "db", &p));
    CU_ASSERT(p.compress && p.patch);
    CU_ASSERT_EQUAL(p.scan_batch, 64);
    CU_ASSERT_STRING_EQUAL(p.share_group, "");
    CU_ASSERT(config_for_guest(c, "empty", &p));
    CU_ASSERT(memcmp(&p, &c->policy, sizeof p) == 0);
    CU_ASSERT(!config_for_guest(c, "web", &p));
    config_free(c);
}

/* Each bad file is refused with "name:line: ..." naming the problem, and
 * *out is left alone. */
static void test_errors(void)
{
    static const struct {
        const char *text;
        const char *want;       /* substring of the message */
    } bad[] = {
        { "share yes\npach no\n", "t.conf:2: unknown key 'pach'" },
        { "patch_threshold 10\n", "t.conf:1: patch_threshold: 10 is out of "
                                  "range (64..4096)" },
        { "patch_threshold 5000\n", ":1: patch_threshold: 5000 is out" },
        { "\n\nstore_budget 12X\n", "t.conf:3: store_budget: '12X' is not "
                                    "a size" },
        { "store_budget 12MB\n", ":1: store_budget: '12MB' is not a size" },
        { "store_budget 1K\n", ":1: store_budget: 1K is out of range (1M.." },
        { "store_budget 99999999999999999999\n", ":1: store_budget:" },
        { "guest a {\n  patch no\n", "t.conf:2: unterminated guest block "
                                     "(opened at line 1)" },
        { "guest a {\n", "unterminated guest block (opened at line 1)" },
        { "guest a\n{\n}\n", "t.conf:1: expected '{' after guest name" },
        { "guest {\n}\n", "t.conf:1: expected a guest name" },
        { "guest a {\n}\nguest a {\n}\n", "t.conf:3: guest 'a' already "
                                          "defined at line 1" },
        { "guest a {\n socket /x\n}\n", "t.conf:2: 'socket' is global" },
        { "guest a {\n patch no no\n}\n", "t.conf:2: unexpected no after" },
        { "share maybe\n", "t.conf:1: share: expected yes or no, not "
                           "'maybe'" },
        { "share\n", "t.conf:1: missing value for 'share'" },
        { "share yes yes\n", "t.conf:1: unexpected yes after the value" },
        { "share yes }\n", "t.conf:1: unexpected '}' after the value" },
        { "}\n", "t.conf:1: unexpected '}'" },
        { "simdetect 2,1\n", "t.conf:1: simdetect: '2,1' is not k,s,c" },
        { "simdetect 9,1,1\n", "t.conf:1: simdetect: k=9 is out of range" },
        { "simdetect 2,1,1,\n", "simdetect: '2,1,1,' is not k,s,c" },
        { "patch_codec lzma\n", "t.conf:1: patch_codec: unknown patch "
                                "codec 'lzma'" },
        { "compressor zlib\n", ":1: compressor: unknown compressor 'zlib'" },
        { "log_level loud\n", ":1: log_level: unknown log level 'loud'" },
        { "socket relative.sock\n", ":1: socket: 'relative.sock' is not an "
                                    "absolute path" },
        { "socket /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
          ":1: socket: path longer than 107 bytes" },
        { "zstd_level 0\n", ":1: zstd_level: 0 is out of range (1..19)" },
        { "zstd_level -3\n", ":1: zstd_level: '-3' is not a number" },
        { "scan_batch 0x10\n", ":1: scan_batch: '0x10' is not a number" },
        { "scan_interval 5\n", ":1: scan_interval: 5 is out of range" },
        { "share_group \"a b\"\n", ":1: share_group: 'a b' is not a "
                                   "valid name" },
        { "swap_file \"/x\n", "t.conf:1: unterminated string" },
        { "\n\nswap yes\n", "t.conf:3: swap is enabled but no swap_file" },
        { "guest g {\n\n swap yes\n}\n", "t.conf:3: swap is enabled for "
                                         "guest 'g' but no swap_file" },
        { "share yes\x01\n", "t.conf:1: unexpected control character" },
    };
    char err[512];

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct de_config *c = (struct de_config *)0x1;

        err[0] = '\0';
        CU_ASSERT_EQUAL(config_parse("t.conf", bad[i].text,
                                     strlen(bad[i].text), &c, err,
                                     sizeof err), -1);
        CU_ASSERT_PTR_EQUAL(c, (struct de_config *)0x1);
        if (!strstr(err, bad[i].want))
            fprintf(stderr, "\n  case %zu: got \"%s\"\n  want \"%s\"\n", i,
                    err, bad[i].want);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].want));
    }
    CU_ASSERT_EQUAL(config_parse("t.conf", "a\0b", 3,
                                 &(struct de_config *){NULL}, err,
                                 sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "NUL"));
    CU_ASSERT_EQUAL(config_load("/nonexistent/de.conf",
                                &(struct de_config *){NULL}, err,
                                sizeof err), -1);
    CU_ASSERT_STRING_EQUAL(err, "/nonexistent/de.conf: No such file or "
                                "directory");
}

static void test_edge_syntax(void)
{
    /* comments anywhere, CRLF line ends, blank-only file, suffixes */
    const char *ok = "# only a comment\r\n\r\n  store_budget 2g  # x\r\n"
                     "swap_max 1t\nswap_file \"\"\n"
                     "guest \"q\\\"uote\" {   # comment after brace\n"
                     "  share no # c\n} # end\n";
    char err[512];
    struct de_config *c = NULL;
    struct de_policy p;

    if (config_parse("e.conf", ok, strlen(ok), &c, err, sizeof err) != 0)
        fprintf(stderr, "\n  %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(c->store_budget, UINT64_C(2) << 30);
    CU_ASSERT_EQUAL(c->swap_max, UINT64_C(1) << 40);
    CU_ASSERT(config_for_guest(c, "q\"uote", &p));
    CU_ASSERT(!p.share);
    config_free(c);
    c = NULL;
    CU_ASSERT_EQUAL(config_parse("e.conf", "", 0, &c, err, sizeof err), 0);
    CU_ASSERT_PTR_NOT_NULL(c);
    config_free(c);

    {
        uint64_t v;

        CU_ASSERT(config_parse_size("0", &v) == 0 && v == 0);
        CU_ASSERT(config_parse_size("16k", &v) == 0 && v == 16384);
        CU_ASSERT(config_parse_size("3M", &v) == 0 && v == 3u << 20);
        CU_ASSERT(config_parse_size("", &v) == -1);
        CU_ASSERT(config_parse_size("M", &v) == -1);
        CU_ASSERT(config_parse_size("1 M", &v) == -1);
        CU_ASSERT(config_parse_size("1.5G", &v) == -1);
        CU_ASSERT(config_parse_size("16777216T", &v) == -1);
        CU_ASSERT(config_parse_size("18446744073709551615", &v) == 0 &&
                  v == UINT64_MAX);
        CU_ASSERT(config_parse_size("18446744073709551616", &v) == -1);
    }
}

static void test_set(void)
{
    struct de_config *c = config_default();
    struct de_policy p;
    char err[512];

    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    /* global */
    CU_ASSERT_EQUAL(config_set(c, NULL, "patch_threshold", "512", err,
                               sizeof err), 0);
    CU_ASSERT_EQUAL(c->policy.patch_threshold, 512);
    CU_ASSERT_EQUAL(config_set(c, "*", "store_budget", "300M", err,
                               sizeof err), 0);
    CU_ASSERT_EQUAL(c->store_budget, UINT64_C(300) << 20);
    CU_ASSERT_EQUAL(config_set(c, "*", "log_level", "warn", err,
                               sizeof err), 0);
    CU_ASSERT_EQUAL(c->log_level, DE_LOG_WARN);
    /* per guest: creates the override, leaves the others alone */
    CU_ASSERT_EQUAL(config_set(c, "web-1", "compress", "no", err,
                               sizeof err), 0);
    CU_ASSERT_EQUAL(config_set(c, "web-1", "simdetect", "3,2,1", err,
                               sizeof err), 0);
    CU_ASSERT_EQUAL(c->nguests, 1);
    CU_ASSERT(config_for_guest(c, "web-1", &p));
    CU_ASSERT(!p.compress && p.sim_k == 3 && p.sim_s == 2 && p.sim_c == 1);
    CU_ASSERT_EQUAL(p.patch_threshold, 512);
    CU_ASSERT(c->policy.compress);
    CU_ASSERT(!config_for_guest(c, "web-2", &p));
    CU_ASSERT(p.compress);

    /* errors change nothing */
    CU_ASSERT_EQUAL(config_set(c, NULL, "patch_threshold", "4097", err,
                               sizeof err), -1);
    CU_ASSERT_STRING_EQUAL(err, "patch_threshold: 4097 is out of range "
                                "(64..4096)");
    CU_ASSERT_EQUAL(c->policy.patch_threshold, 512);
    CU_ASSERT_EQUAL(config_set(c, "web-1", "simdetect", "3,2", err,
                               sizeof err), -1);
    CU_ASSERT(config_for_guest(c, "web-1", &p) && p.sim_k == 3);
    CU_ASSERT_EQUAL(config_set(c, NULL, "nope", "1", err, sizeof err), -1);
    CU_ASSERT_STRING_EQUAL(err, "unknown key 'nope'");
    CU_ASSERT_EQUAL(config_set(c, NULL, "socket", "/x", err, sizeof err),
                    -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "start-up"));
    CU_ASSERT_EQUAL(config_set(c, "web-1", "store_budget", "1G", err,
                               sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "global"));
    CU_ASSERT_EQUAL(config_set(c, "web-1", "swap", "yes", err, sizeof err),
                    -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "swap_file"));
    CU_ASSERT_EQUAL(config_set(c, "bad\x01name", "patch", "no", err,
                               sizeof err), -1);
    CU_ASSERT_EQUAL(c->nguests, 1);
    config_free(c);
}

/* config_print writes what config_parse reads back identically. */
static void test_print_roundtrip(void)
{
    struct de_config *a = NULL, *b = NULL;
    char err[512], *text = NULL;
    size_t len = 0;
    FILE *f;

    CU_ASSERT_EQUAL_FATAL(config_parse("f.conf", full_conf,
                                       sizeof full_conf - 1, &a, err,
                                       sizeof err), 0);
    f = open_memstream(&text, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    config_print(a, f);
    fclose(f);
    if (config_parse("printed", text, len, &b, err, sizeof err) != 0)
        fprintf(stderr, "\n  %s\n%s\n", err, text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_STRING_EQUAL(a->socket, b->socket);
    CU_ASSERT_STRING_EQUAL(a->guest_socket, b->guest_socket);
    CU_ASSERT(memcmp(&a->policy, &b->policy, sizeof a->policy) == 0);
    CU_ASSERT_EQUAL(a->scan_interval_ms, b->scan_interval_ms);
    CU_ASSERT_EQUAL(a->store_budget, b->store_budget);
    CU_ASSERT_STRING_EQUAL(a->swap_file, b->swap_file);
    CU_ASSERT_EQUAL(a->swap_max, b->swap_max);
    CU_ASSERT_EQUAL(a->log_level, b->log_level);
    CU_ASSERT_EQUAL(a->stats_interval_s, b->stats_interval_s);
    CU_ASSERT_EQUAL_FATAL(a->nguests, b->nguests);
    for (size_t i = 0; i < a->nguests; i++) {
        struct de_policy pa, pb;

        CU_ASSERT_STRING_EQUAL(a->guests[i].name, b->guests[i].name);
        CU_ASSERT_EQUAL(a->guests[i].set, b->guests[i].set);
        config_for_guest(a, a->guests[i].name, &pa);
        config_for_guest(b, b->guests[i].name, &pb);
        CU_ASSERT(memcmp(&pa, &pb, sizeof pa) == 0);
    }
    free(text);
    config_free(a);
    config_free(b);
}

int register_config_tests(void)
{
    CU_pSuite s = CU_add_suite("config", NULL, NULL);

    if (!s ||
        !CU_add_test(s, "defaults", test_defaults) ||
        !CU_add_test(s, "full file parses to exact values", test_full_file) ||
        !CU_add_test(s, "errors name file:line", test_errors) ||
        !CU_add_test(s, "comments, CRLF, quoting, sizes", test_edge_syntax) ||
        !CU_add_test(s, "config_set", test_set) ||
        !CU_add_test(s, "print/parse round trip", test_print_roundtrip))
        return CU_get_error();
    return CUE_SUCCESS;
}

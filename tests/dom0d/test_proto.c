/*
 * test_proto.c - request tokenizer and quoting, JSON writer and reader,
 * the stats JSON contract.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "control_proto.h"
#include "stats.h"
#include "tests.h"

static int parse(const char *s, struct ctl_req *r, char *err, size_t n)
{
    return ctl_parse_line(s, strlen(s), r, err, n);
}

static void test_tokenizer(void)
{
    struct ctl_req r;
    char err[256];

    CU_ASSERT_EQUAL(parse("status", &r, err, sizeof err), 0);
    CU_ASSERT_EQUAL(r.argc, 1);
    CU_ASSERT_STRING_EQUAL(r.argv[0], "status");

    CU_ASSERT_EQUAL(parse("  set\tweb-1  patch no \r", &r, err,
                          sizeof err), 0);
    CU_ASSERT_EQUAL(r.argc, 4);
    CU_ASSERT_STRING_EQUAL(r.argv[1], "web-1");
    CU_ASSERT_STRING_EQUAL(r.argv[3], "no");

    CU_ASSERT_EQUAL(parse("pause \"my guest\" \"\" a\"b c\"d \"q\\\"\\\\\"",
                          &r, err, sizeof err), 0);
    CU_ASSERT_EQUAL(r.argc, 5);
    CU_ASSERT_STRING_EQUAL(r.argv[1], "my guest");
    CU_ASSERT_STRING_EQUAL(r.argv[2], "");
    CU_ASSERT_STRING_EQUAL(r.argv[3], "ab cd");
    CU_ASSERT_STRING_EQUAL(r.argv[4], "q\"\\");

    CU_ASSERT_EQUAL(parse("stats h\xc3\xa9t\xc3\xa9ro", &r, err, sizeof err),
                    0);
    CU_ASSERT_STRING_EQUAL(r.argv[1], "h\xc3\xa9t\xc3\xa9ro");

    /* errors */
    CU_ASSERT_EQUAL(parse("", &r, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "empty"));
    CU_ASSERT_EQUAL(parse("   \t ", &r, err, sizeof err), -1);
    CU_ASSERT_EQUAL(parse("pause \"open", &r, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "unterminated"));
    CU_ASSERT_EQUAL(parse("a b c d e f g h i", &r, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "too many"));
    CU_ASSERT_EQUAL(parse("a b c d e f g h", &r, err, sizeof err), 0);
    CU_ASSERT_EQUAL(parse("stat\x01s", &r, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "control character"));
    CU_ASSERT_EQUAL(ctl_parse_line("sta\0tus", 7, &r, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "NUL"));
    CU_ASSERT_EQUAL(parse("stats \xff\xfe", &r, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "UTF-8"));
    CU_ASSERT_EQUAL(parse("stats \xc0\x80", &r, err, sizeof err), -1);
    CU_ASSERT_EQUAL(parse("stats \xed\xa0\x80", &r, err, sizeof err), -1);
    CU_ASSERT_EQUAL(parse("stats \xe2\x82", &r, err, sizeof err), -1);
    CU_ASSERT_EQUAL(parse("stats x\\", &r, err, sizeof err), -1);

    /* the length limit is exact */
    {
        char line[CTL_MAX_LINE + 2];

        memset(line, 'a', sizeof line);
        CU_ASSERT_EQUAL(ctl_parse_line(line, CTL_MAX_LINE, &r, err,
                                       sizeof err), 0);
        CU_ASSERT_EQUAL(strlen(r.argv[0]), CTL_MAX_LINE);
        CU_ASSERT_EQUAL(ctl_parse_line(line, CTL_MAX_LINE + 1, &r, err,
                                       sizeof err), -1);
        line[CTL_MAX_LINE] = '\r';
        CU_ASSERT_EQUAL(ctl_parse_line(line, CTL_MAX_LINE + 1, &r, err,
                                       sizeof err), 0);
    }
}

static void test_build_line(void)
{
    char *args[] = { "set", "my \"odd\" guest\\", "", "x\ty",
                     "caf\xc3\xa9" };
    char line[CTL_MAX_LINE + 1], big[2000];
    struct ctl_req r;
    char err[128];
    int n = ctl_build_line(5, args, line, sizeof line);

    CU_ASSERT(n > 0);
    CU_ASSERT_EQUAL(ctl_parse_line(line, (size_t)n, &r, err, sizeof err), 0);
    CU_ASSERT_EQUAL(r.argc, 5);
    for (int i = 0; i < 5 && i < r.argc; i++)
        CU_ASSERT_STRING_EQUAL(r.argv[i], args[i]);

    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    args[1] = big;
    CU_ASSERT_EQUAL(ctl_build_line(2, args, line, sizeof line), -1);
    CU_ASSERT_EQUAL(ctl_build_line(1, args, line, 3), -1);
    CU_ASSERT_EQUAL(ctl_build_line(1, args, line, 4), 3);
}

static void test_cmd_table(void)
{
    const struct ctl_cmd_info *ci = ctl_cmd_lookup("set");

    CU_ASSERT_PTR_NOT_NULL_FATAL(ci);
    CU_ASSERT_EQUAL(ci->cmd, CTL_CMD_SET);
    CU_ASSERT_EQUAL(ci->min_args, 3);
    CU_ASSERT_PTR_NULL(ctl_cmd_lookup("sett"));
    CU_ASSERT_PTR_NULL(ctl_cmd_lookup(""));
    for (int i = 0; i < CTL_NCMDS; i++)
        CU_ASSERT_EQUAL(ctl_cmd_table()[i].cmd, i);
}

static void test_json_writer(void)
{
    struct json_buf j;

    json_init(&j);
    CU_ASSERT_STRING_EQUAL(json_cstr(&j), "");
    json_obj_begin(&j);
    json_kv_bool(&j, "ok", true);
    json_kv_u64(&j, "n", UINT64_MAX);
    json_kv_i64(&j, "neg", -5);
    json_kv_double(&j, "d", 0.25);
    json_kv_double(&j, "nan", NAN);
    json_key(&j, "a");
    json_arr_begin(&j);
    json_u64(&j, 1);
    json_str(&j, "two");
    json_obj_begin(&j);
    json_obj_end(&j);
    json_arr_begin(&j);
    json_arr_end(&j);
    json_null(&j);
    json_arr_end(&j);
    json_kv_str(&j, "esc", "q\"b\\n\n\x01\x7f");
    json_kv_str(&j, "bad", "a\xff" "b\xc3");
    json_kv_str(&j, "utf8", "\xe2\x82\xac");
    json_obj_end(&j);
    json_newline(&j);
    CU_ASSERT(json_ok(&j));
    if (getenv("TEST_VERBOSE"))
        printf("\n%s", json_cstr(&j));
    CU_ASSERT_STRING_EQUAL(json_cstr(&j),
        "{\"ok\":true,\"n\":18446744073709551615,\"neg\":-5,\"d\":0.25,"
        "\"nan\":null,\"a\":[1,\"two\",{},[],null],"
        "\"esc\":\"q\\\"b\\\\n\\n\\u0001\\u007f\","
        "\"bad\":\"a\\ufffdb\\ufffd\",\"utf8\":\"\xe2\x82\xac\"}\n");

    /* misuse latches the failure */
    json_reset(&j);
    json_key(&j, "top");
    CU_ASSERT(!json_ok(&j));
    json_reset(&j);
    json_obj_begin(&j);
    json_key(&j, "k");
    json_obj_end(&j);
    CU_ASSERT(!json_ok(&j));
    json_reset(&j);
    for (int i = 0; i <= JSON_MAX_DEPTH; i++)
        json_arr_begin(&j);
    CU_ASSERT(!json_ok(&j));

    /* size limit */
    json_reset(&j);
    j.limit = 100;
    json_arr_begin(&j);
    for (int i = 0; i < 100; i++)
        json_u64(&j, 123456789);
    CU_ASSERT(!json_ok(&j));
    json_free(&j);
}

static void test_json_reader(void)
{
    const char *doc = " {\"ok\":true,\"n\":18446744073709551615,\"f\":-1.5e3,"
        "\"z\":0,\"s\":\"a\\u00e9\\ud83d\\ude00\\n\\\"\",\"arr\":[1,[2,{}],"
        "null,false],\"o\":{\"k\":\"v\"}} ";
    char err[256];
    struct jv *v = jv_parse(doc, strlen(doc), err, sizeof err);
    const struct jv *a;

    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL(v->type, JV_OBJ);
    CU_ASSERT(jv_boolean(jv_get(v, "ok"), false));
    CU_ASSERT_EQUAL(jv_uint(jv_get(v, "n"), 0), UINT64_MAX);
    CU_ASSERT_DOUBLE_EQUAL(jv_number(jv_get(v, "f"), 0), -1500, 1e-9);
    CU_ASSERT_EQUAL(jv_uint(jv_get(v, "f"), 7), 7);
    CU_ASSERT_EQUAL(jv_uint(jv_get(v, "z"), 7), 0);
    CU_ASSERT_STRING_EQUAL(jv_string(jv_get(v, "s"), ""),
                           "a\xc3\xa9\xf0\x9f\x98\x80\n\"");
    a = jv_get(v, "arr");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(a->n, 4);
    CU_ASSERT_EQUAL(a->items[1].type, JV_ARR);
    CU_ASSERT_EQUAL(a->items[2].type, JV_NULL);
    CU_ASSERT_STRING_EQUAL(jv_string(jv_get(jv_get(v, "o"), "k"), ""), "v");
    CU_ASSERT_PTR_NULL(jv_get(v, "missing"));
    CU_ASSERT_PTR_NULL(jv_get(a, "k"));
    CU_ASSERT_STRING_EQUAL(jv_string(jv_get(v, "n"), "dflt"), "dflt");
    jv_free(v);

    {
        static const char *bad[] = {
            "", "{", "{\"a\":1,}", "[1,]", "{\"a\" 1}", "{a:1}", "01",
            "1.", "-", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"",
            "\"\\u0000\"", "\"a\x01\"", "\"\xff\"", "tru", "nul",
            "{} x", "[1 2]", "+1", ".5", "1e",
        };

        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            v = jv_parse(bad[i], strlen(bad[i]), err, sizeof err);
            if (v)
                fprintf(stderr, "\n  accepted bad JSON: %s\n", bad[i]);
            CU_ASSERT_PTR_NULL(v);
            jv_free(v);
        }
    }
    {
        char deep[200];

        memset(deep, '[', 100);
        memset(deep + 100, ']', 100);
        CU_ASSERT_PTR_NULL(jv_parse(deep, 200, err, sizeof err));
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "deep"));
        v = jv_parse(deep + 100 - 30, 60, err, sizeof err);
        CU_ASSERT_PTR_NOT_NULL(v);
        jv_free(v);
    }
}

/* What the writer writes, the reader reads back, whatever the bytes. */
static void test_json_roundtrip(void)
{
    uint64_t seed = 7;
    char err[256];

    for (int it = 0; it < 200; it++) {
        struct json_buf j;
        char s[64];
        struct jv *v;
        size_t n = td_rand(&seed) % sizeof s;

        for (size_t i = 0; i < n; i++)
            s[i] = (char)(td_rand(&seed) % 255 + 1);
        json_init(&j);
        json_obj_begin(&j);
        json_key(&j, "s");
        json_strn(&j, s, n);
        json_kv_u64(&j, "u", td_rand(&seed));
        json_obj_end(&j);
        v = jv_parse(j.buf, j.len, err, sizeof err);
        CU_ASSERT_PTR_NOT_NULL(v);
        if (v)
            CU_ASSERT_EQUAL(jv_get(v, "s")->type, JV_STR);
        jv_free(v);
        json_free(&j);
    }
}

/* The stats contract of de-ctl(8): every key present, numbers right. */
static void test_stats_json(void)
{
    static const char *keys[] = {
        "pages_shared", "pages_patched", "pages_compressed", "pages_swapped",
        "store_bytes", "saved_bytes", "faults", "fault_p50_us",
        "fault_p99_us", "scan_cpu_s", "pages_zero", "swap_bytes",
        "fault_latency",
    };
    struct de_stats st;
    struct json_buf j;
    struct jv *v;
    char err[256];

    stats_init(&st);
    st.pages_patched = 12;
    st.saved_bytes = UINT64_C(5) << 30;
    st.scan_cpu_ns = 2500000000u;
    for (int i = 0; i < 100; i++)
        stats_fault(&st, KIND_PATCHED, 10000 + (uint64_t)i * 100);
    json_init(&j);
    json_obj_begin(&j);
    json_kv_str(&j, "name", "web-1");
    stats_to_json(&j, &st);
    json_obj_end(&j);
    CU_ASSERT_FATAL(json_ok(&j));
    v = jv_parse(j.buf, j.len, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if (!jv_get(v, keys[i]))
            fprintf(stderr, "\n  missing %s\n", keys[i]);
        CU_ASSERT_PTR_NOT_NULL(jv_get(v, keys[i]));
    }
    CU_ASSERT_EQUAL(jv_uint(jv_get(v, "pages_patched"), 0), 12);
    CU_ASSERT_EQUAL(jv_uint(jv_get(v, "saved_bytes"), 0), UINT64_C(5) << 30);
    CU_ASSERT_DOUBLE_EQUAL(jv_number(jv_get(v, "scan_cpu_s"), 0), 2.5, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(jv_number(jv_get(v, "fault_p50_us"), 0), 15.0,
                           15.0 / HIST_SUB);
    CU_ASSERT_EQUAL(jv_uint(jv_get(jv_get(jv_get(v, "fault_latency"),
                                          "patched"), "count"), 0), 100);
    jv_free(v);
    json_free(&j);
}

int register_proto_tests(void)
{
    CU_pSuite s = CU_add_suite("control_proto", NULL, NULL);

    if (!s ||
        !CU_add_test(s, "request tokenizer", test_tokenizer) ||
        !CU_add_test(s, "request quoting round trip", test_build_line) ||
        !CU_add_test(s, "command table", test_cmd_table) ||
        !CU_add_test(s, "JSON writer", test_json_writer) ||
        !CU_add_test(s, "JSON reader", test_json_reader) ||
        !CU_add_test(s, "JSON writer/reader round trip",
                     test_json_roundtrip) ||
        !CU_add_test(s, "stats JSON contract", test_stats_json))
        return CU_get_error();
    return CUE_SUCCESS;
}

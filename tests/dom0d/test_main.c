/*
 * test_main.c - runs every CUnit suite of the daemon's modules. The exit
 * status is non-zero when any test failed.
 */
#define _XOPEN_SOURCE 700      /* nftw */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "log.h"
#include "tests.h"

static char tmpdir[256];

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void cleanup(void)
{
    if (tmpdir[0])
        nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

const char *td_tmpdir(void)
{
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/test_dom0d.XXXXXX");
        if (!mkdtemp(tmpdir)) {
            perror("mkdtemp");
            exit(2);
        }
        atexit(cleanup);
    }
    return tmpdir;
}

void td_path(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", td_tmpdir(), name);
}

uint64_t td_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

int main(int argc, char **argv)
{
    int (*reg[])(void) = {
        register_stats_tests,
        register_proto_tests,
        register_store_tests,
        register_objects_tests,
        register_xs_policy_tests,
        register_swapfile_tests,
        register_config_tests,
        register_control_tests,
    };
    unsigned failed;

    /* the control tests provoke warnings on purpose */
    log_init(getenv("TEST_VERBOSE") ? DE_LOG_DEBUG : DE_LOG_ERROR, true,
             NULL);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    for (size_t i = 0; i < sizeof reg / sizeof reg[0]; i++)
        if (reg[i]() != CUE_SUCCESS) {
            fprintf(stderr, "test registration failed: %s\n",
                    CU_get_error_msg());
            CU_cleanup_registry();
            return 2;
        }
    CU_basic_set_mode(argc > 1 && strcmp(argv[1], "-v") == 0
                      ? CU_BRM_VERBOSE : CU_BRM_NORMAL);
    CU_basic_run_tests();
    failed = CU_get_number_of_tests_failed() + CU_get_number_of_failures();
    printf("\n%u passed, %u failed\n",
           CU_get_number_of_tests_run() - CU_get_number_of_tests_failed(),
           CU_get_number_of_tests_failed());
    CU_cleanup_registry();
    return failed ? 1 : 0;
}

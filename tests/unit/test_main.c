/*
 * test_main.c - runs every CUnit suite of the unit tests and prints CUnit's
 * run summary. The exit status is non-zero when any test failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "tests.h"

int main(int argc, char **argv)
{
    int (*reg[])(void) = {
        register_page_hash_tests,
        register_share_index_tests,
        register_simdetect_tests,
        register_codec_tests,
        register_mem_image_tests,
        register_analyze_tests,
    };
    unsigned failed;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    for (size_t i = 0; i < sizeof reg / sizeof reg[0]; i++)
        if (reg[i]() != CUE_SUCCESS) {
            fprintf(stderr, "test registration failed: %s\n", CU_get_error_msg());
            CU_cleanup_registry();
            return 2;
        }
    CU_basic_set_mode(argc > 1 && strcmp(argv[1], "-v") == 0 ? CU_BRM_VERBOSE
                                                            : CU_BRM_NORMAL);
    CU_basic_run_tests();
    failed = CU_get_number_of_tests_failed() + CU_get_number_of_failures();
    printf("\n%u passed, %u failed\n",
           CU_get_number_of_tests_run() - CU_get_number_of_tests_failed(),
           CU_get_number_of_tests_failed());
    CU_cleanup_registry();
    return failed ? 1 : 0;
}

#include <CUnit/CUnit.h>
#include "tests.h"
int register_page_hash_tests(void) { return CUE_SUCCESS; }

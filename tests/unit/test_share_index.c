#include <CUnit/CUnit.h>
#include "tests.h"
int register_share_index_tests(void) { return CUE_SUCCESS; }

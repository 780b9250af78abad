#include <CUnit/CUnit.h>
#include "tests.h"
int register_analyze_tests(void) { return CUE_SUCCESS; }

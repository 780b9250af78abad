#include <CUnit/CUnit.h>
#include "tests.h"
int register_simdetect_tests(void) { return CUE_SUCCESS; }

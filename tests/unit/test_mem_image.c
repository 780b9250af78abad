#include <CUnit/CUnit.h>
#include "tests.h"
int register_mem_image_tests(void) { return CUE_SUCCESS; }

#include <CUnit/CUnit.h>
#include "tests.h"
int register_codec_tests(void) { return CUE_SUCCESS; }

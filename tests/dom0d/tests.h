/*
 * tests.h - suites of the de-dom0d unit test runner and shared helpers.
 */
#ifndef DE_DOM0D_TESTS_H
#define DE_DOM0D_TESTS_H

#include <stddef.h>
#include <stdint.h>

int register_store_tests(void);
int register_swapfile_tests(void);
int register_config_tests(void);
int register_control_tests(void);
int register_proto_tests(void);
int register_stats_tests(void);
int register_objects_tests(void);
int register_xs_policy_tests(void);

/* A scratch directory for this run (removed at exit). */
const char *td_tmpdir(void);
/* td_tmpdir()/name into buf. */
void td_path(char *buf, size_t n, const char *name);

/* xorshift64*: deterministic pseudo-random numbers for the tests. */
uint64_t td_rand(uint64_t *state);

#endif

/*
 * report.h - de-analyze's output: a readable table, or the JSON contract
 * documented in docs/de-analyze-json.md.
 */
#ifndef DE_REPORT_H
#define DE_REPORT_H

#include <stdio.h>

#include "analyze.h"

void report_table(FILE *f, const struct analyze_result *r,
                  const struct analyze_opts *o, char *const *names);
void report_json(FILE *f, const struct analyze_result *r,
                 const struct analyze_opts *o, char *const *names,
                 int verify);

#endif

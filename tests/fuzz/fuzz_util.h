/*
 * fuzz_util.h — helpers every fuzz target shares.
 */
#ifndef DBPOOLD_FUZZ_UTIL_H
#define DBPOOLD_FUZZ_UTIL_H

/* Aborts the process with a message: a finding, which libFuzzer reports
 * like a crash and saves the input for. */
void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif

/*
 * json_check.h — a strict JSON syntax checker for the fuzz targets' oracles
 * (fuzz_status checks that every JSON body the status socket sends parses).
 * RFC 8259 grammar; strings must be valid UTF-8 without raw control
 * characters. No allocation; nesting is bounded.
 */
#ifndef DBPOOLD_FUZZ_JSON_CHECK_H
#define DBPOOLD_FUZZ_JSON_CHECK_H

#include <stdbool.h>
#include <stddef.h>

/* True when p[0..n) is one JSON value, optionally surrounded by whitespace. */
bool json_check(const char *p, size_t n);

#endif

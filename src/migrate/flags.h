/*
 * flags.h — command-line flags parsed the way Go's flag package parses
 * them (golang-migrate's command line is Go's): "-name", "--name",
 * "-name=value", "-name value"; a boolean takes no separate value; parsing
 * stops at the first argument that is not a flag, or after "--". A lone
 * negative number ("-1") is an argument, not a flag.
 */
#ifndef DBPOOL_MIGRATE_FLAGS_H
#define DBPOOL_MIGRATE_FLAGS_H

#include <stdbool.h>

enum flag_kind { FLAG_BOOL, FLAG_STRING, FLAG_UINT, FLAG_INT };

struct flag_def {
    const char *name;
    enum flag_kind kind;
    void *target;           /* bool *, const char **, long * */
};

/* Parses argv[*i..argc) against defs (n of them), advancing *i past the
 * flags. Returns 0, or -1 after printing Go's message to stderr
 * ("flag provided but not defined: -x", "invalid value ..."). A flag named
 * "help" or "h" that is not defined also ends parsing with -2 (show usage). */
int flags_parse(int argc, char **argv, int *i, const struct flag_def *defs, int n);

#endif

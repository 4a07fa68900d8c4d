/*
 * json.h — a small JSON reader for dbpoolctl: parses the status socket's
 * answers into a tree (json.c). Numbers are doubles (the daemon's figures
 * fit), strings are decoded to UTF-8. One allocation per node; json_free
 * releases the tree.
 */
#ifndef DBPOOLCTL_JSON_H
#define DBPOOLCTL_JSON_H

#include <stdbool.h>
#include <stddef.h>

enum json_type { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct json {
    enum json_type type;
    bool b;
    double num;
    char *str;                  /* J_STR: the value; a member: its key too (key) */
    char *key;                  /* the member's name inside an object, else NULL */
    struct json *child;         /* J_ARR / J_OBJ: the first element */
    struct json *next;          /* the next sibling */
};

/* Parse text (NUL-terminated); NULL with a message in err on bad input. */
struct json *json_parse(const char *text, char *err, size_t errlen);
void json_free(struct json *j);

/* The member key of object o, or NULL (also when o is not an object). */
const struct json *json_get(const struct json *o, const char *key);
/* json_get along a path of keys ("servers", "idle", NULL). */
const struct json *json_path(const struct json *o, const char *const *keys);
#define JSON_AT(o, ...) json_path((o), (const char *const[]){ __VA_ARGS__, NULL })
/* A number / string at o, or the fallback when o is missing or of another type. */
double json_num(const struct json *o, double fallback);
const char *json_str(const struct json *o, const char *fallback);

#endif

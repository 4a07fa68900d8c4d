/*
 * config_internal.h — what the files of the configuration loader share
 * (src/daemon/config/; the contract is daemon/configuration.h). Not for
 * use outside this folder.
 *
 * Loading runs in phases, so that all problems are found in one run:
 *   1. libconfig reads the file (load.c; syntax errors stop here: nothing
 *      else can be trusted);
 *   2. the tree is walked (walk.c); for each known key (keys.c, and for a
 *      pool the key table of its type, put together in types.c from the
 *      driver's spec) the setting that gives its value is remembered in a
 *      "slot", unknown keys are reported;
 *   3. environ is scanned (env.c): DBPOOLD_DAEMON_<KEY> and
 *      DBPOOLD_POOL_<NAME>_<KEY> replace the slot's source;
 *   4. each slot is converted into its struct field with type and range
 *      checks (values.c); then the checks that span keys run (checks.c:
 *      required keys, maxIdleConns <= maxOpenConns, the driver's check,
 *      password vs passwordFile, ...), and a passwordFile is read into
 *      password.
 * Defaults (keys.c; a driver's options from its spec, types.c) are written
 * into the structs before phase 4, so a key without a slot keeps its
 * default. A driver key (F_OPTS) is stored into the pool's driver options
 * (section.opts), every other key into the section's base struct.
 *
 * Messages (diag.c, with suggestions from suggest.c) go to the caller's
 * struct config_diag, each prefixed with "file:line: context: key: " or
 * "environment VAR: ". The value of a secret key (password) is never
 * copied into a message.
 *
 * Names shared between these files start with cf_.
 */
#ifndef DBPOOLD_CONFIG_INTERNAL_H
#define DBPOOLD_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>

#include <libconfig.h>

#include "daemon/config_spec.h"
#include "daemon/configuration.h"

#define ENV_DAEMON_PREFIX "DBPOOLD_DAEMON_"
#define ENV_POOL_PREFIX "DBPOOLD_POOL_"

#define MAX_KEYS 32                 /* keys per section (checked in types.c) */
#define MAX_TYPES 8                 /* pool types (drivers the factory lists) */
#define KEY_NAME_MAX 48             /* longest key name, camelCase or env form */
#define POOL_NAME_MAX 63
#define SUN_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)
#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF_LIKE(f, a)
#endif

/* ---- keys (keys.c) ---- */

/* A pool type as the loader sees it (types.c): the driver's spec and the
 * whole key table of its group, the common keys first, then the server
 * keys (if it is a server), then the driver's own (F_OPTS). */
struct type_info {
    const char *name;               /* value of "type" and name of the group */
    enum backend_type type;
    const struct driver_config_spec *spec;
    struct key_spec keys[MAX_KEYS];
    size_t nkeys;
};

extern const struct key_spec cf_daemon_keys[];
extern const size_t cf_ndaemon_keys;
extern const struct key_spec cf_common_pool_keys[], cf_server_pool_keys[];
extern const size_t cf_ncommon_pool_keys, cf_nserver_pool_keys;
extern const char *const cf_root_keys[];           /* top-level names */
extern const struct key_spec cf_name_spec, cf_type_spec;   /* for type errors */

/* ---- load state ---- */

/* Where a key's value comes from: a file setting, or an environment
 * variable (which wins). Pointers into the libconfig tree and environ. */
struct slot {
    const config_setting_t *setting;
    const char *env;                /* "NAME=value"; env_len is NAME's length */
    size_t env_len;
    const char *env_val;
};

/* The daemon group or one pool: its keys and their slots. */
struct section {
    const struct key_spec *keys;
    size_t nkeys;
    void *base;                     /* struct daemon_config or pool_config */
    void *opts;                     /* the driver's options (F_OPTS keys), or NULL */
    const char *ctx;                /* NULL or "pools[0] \"app\"" */
    const char *group;              /* "daemon", "sqlite", ... */
    const config_setting_t *anchor; /* group (or entry) for missing-key messages */
    char env_prefix[96];            /* "DBPOOLD_POOL_APP_"; "" if the pool has no valid name */
    bool skip_required;             /* group missing: already reported */
    struct slot slots[MAX_KEYS];
    bool failed[MAX_KEYS];          /* conversion failed: field kept its default */
};

struct pool_work {
    struct section sec;
    char ctx[96];
    char env_name[POOL_NAME_MAX + 1];   /* <NAME> in DBPOOLD_POOL_<NAME>_<KEY> */
    const config_setting_t *entry;
    const struct type_info *type;       /* NULL: missing or unknown type */
    bool named;                         /* has a valid name */
};

struct loader {
    const char *path;
    struct config_diag *diag;
    unsigned *order[2];             /* sort key (line) of each error / warning */
    bool oom;
    bool pools_bad;                 /* "pools" present but not a list */
    struct config *cfg;
    struct section daemon;
    struct pool_work *pools;        /* cfg->npools entries */
    struct type_info types[MAX_TYPES];  /* types.c: one per driver */
    size_t ntypes;
    const char *type_names[MAX_TYPES + 1];      /* NULL-terminated */
    const char *entry_keys[MAX_TYPES + 3];      /* a pool entry's own names */
};

/* The location a message is about. */
struct where {
    const char *file;               /* NULL when about an environment variable */
    unsigned line;
    const char *ctx;
    const char *group;
    const char *key;
    const char *env;
    size_t env_len;
};

/* keys.c: lookups and defaults */
int cf_find_key(const struct key_spec *keys, size_t nkeys, const char *name);
int cf_find_env_key(const struct key_spec *keys, size_t nkeys, const char *key, size_t len);
void cf_daemon_defaults(struct loader *ld, struct daemon_config *d);
void cf_common_defaults(struct pool_config *p);

/* types.c: the pool types the factory's drivers declare */
void cf_init_types(struct loader *ld);
const struct type_info *cf_find_type(const struct loader *ld, const char *name);
void *cf_pool_defaults(struct loader *ld, struct pool_config *p, const struct type_info *t);
void cf_free_driver_opts(struct pool_config *p);
const struct driver_config_spec *cf_spec_of(enum backend_type type);

/* diag.c: messages and their locations */
void cf_appendf(char *buf, size_t size, size_t *pos, const char *fmt, ...) PRINTF_LIKE(4, 5);
void cf_report(struct loader *ld, const struct where *w, const char *fmt, ...) PRINTF_LIKE(3, 4);
void cf_warn(struct loader *ld, const struct where *w, const char *fmt, ...) PRINTF_LIKE(3, 4);
void cf_sort_by_line(char **msgs, unsigned *lines, size_t n);
const char *cf_quoted(const char *s, char *buf, size_t size);
struct where cf_where_setting(const struct loader *ld, const struct section *sec,
                              const config_setting_t *s, const char *key);
struct where cf_where_env(const char *env, size_t env_len);
struct where cf_where_slot(const struct loader *ld, const struct section *sec,
                           const struct key_spec *k, const struct slot *sl);

/* suggest.c: names and suggestions */
const char *cf_closest(const char *name, const char *const *cands, size_t n);
size_t cf_strv_len(const char *const *v);
size_t cf_key_names(const struct key_spec *keys, size_t nkeys, const char **out);
void cf_env_key(const char *name, char *buf, size_t size);
void cf_env_pool_name(const char *name, char *buf, size_t size);
const char *cf_join(const char *const *v, char *buf, size_t size);

/* values.c: one slot into its field */
void cf_set_str(struct loader *ld, char **dst, const char *s);
const char *cf_type_noun(int type);
void cf_type_error(struct loader *ld, const struct where *w, const struct key_spec *k,
                   const config_setting_t *s);
bool cf_apply_slot(struct loader *ld, const struct section *sec, const struct key_spec *k,
                   const struct slot *sl);
/* ids.c: the slot of an allowUsers / allowGroups key (K_USERS, K_GROUPS)
 * into its struct id_set, names resolved now */
bool cf_apply_ids(struct loader *ld, const struct section *sec, const struct key_spec *k,
                  const struct slot *sl);

/* the phases */
void cf_walk_root(struct loader *ld, const config_setting_t *root);      /* walk.c */
struct where cf_where_entry(const struct loader *ld, const struct pool_work *pw,
                            const config_setting_t *s, const char *key);
void cf_apply_env(struct loader *ld);                                    /* env.c */
void cf_finish(struct loader *ld);                                       /* checks.c */

#endif

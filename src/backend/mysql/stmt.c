/*
 * stmt.c — the MySQL driver's exec-side state and its cache of server-side
 * prepared statements (stmt.h explains the cache and its rules), plus the
 * driver hooks that act on them: schema_changed, a dropped server session,
 * freeing with the connection.
 *
 * Nothing here talks to the server: handles to close go on the garbage
 * list, which exec.c drains inside the next operation.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <mysql.h>

#include "backend/mysql/mysql_internal.h"
#include "backend/mysql/stmt.h"

/* FNV-1a over the SQL text. */
static uint64_t sql_hash(const char *sql, size_t len)
{
    uint64_t h = 1469598103934665603ull;

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)sql[i];
        h *= 1099511628211ull;
    }
    return h;
}

static bool garbage_reserve(struct my_stmt_cache *sc, size_t want)
{
    MYSQL_STMT **g;
    size_t cap = sc->garbage_cap ? sc->garbage_cap : 8;

    if (want <= sc->garbage_cap)
        return true;
    while (cap < want)
        cap *= 2;
    g = realloc(sc->garbage, cap * sizeof(*g));
    if (!g)
        return false;
    sc->garbage = g;
    sc->garbage_cap = cap;
    return true;
}

struct my_exec *my_ex_get(struct mysql_conn *c, event_callback_fn on_step)
{
    struct my_settings s;
    struct my_exec *ex;

    if (c->ex)
        return c->ex;
    ex = calloc(1, sizeof(*ex));
    if (!ex)
        return NULL;
    my_settings(c->cfg, &s);
    ex->sc.cap = s.statement_cache_size;
    ex->ev_step = event_new(c->base, -1, 0, on_step, c);
    if (ex->sc.cap)
        ex->sc.e = calloc(ex->sc.cap, sizeof(*ex->sc.e));
    if (!ex->ev_step || (ex->sc.cap && !ex->sc.e) || !garbage_reserve(&ex->sc, ex->sc.cap + 8)) {
        if (ex->ev_step)
            event_free(ex->ev_step);
        free(ex->sc.e);
        free(ex);
        return NULL;
    }
    c->ex = ex;
    return ex;
}

/* ---------------------------------------------------------------- cache */

static struct my_stmt_entry *find(struct my_stmt_cache *sc, const char *sql, size_t len)
{
    uint64_t h = sql_hash(sql, len);

    for (unsigned i = 0; i < sc->n; i++) {
        struct my_stmt_entry *e = &sc->e[i];
        if (e->hash == h && e->len == len && memcmp(e->sql, sql, len) == 0)
            return e;
    }
    return NULL;
}

MYSQL_STMT *my_stmt_get(struct my_stmt_cache *sc, const char *sql, size_t len)
{
    struct my_stmt_entry *e = sc->n ? find(sc, sql, len) : NULL;

    if (!e)
        return NULL;
    e->used = ++sc->clock;
    return e->st;
}

bool my_stmt_discard(struct my_stmt_cache *sc, MYSQL_STMT *st)
{
    if (!garbage_reserve(sc, sc->ngarbage + 1))
        return false;
    sc->garbage[sc->ngarbage++] = st;
    return true;
}

/* Remove entry i (its handle to the garbage). */
static void drop_entry(struct my_stmt_cache *sc, unsigned i)
{
    struct my_stmt_entry *e = &sc->e[i];

    (void)my_stmt_discard(sc, e->st);
    free(e->sql);
    sc->e[i] = sc->e[--sc->n];
}

bool my_stmt_put(struct my_stmt_cache *sc, const char *sql, size_t len, MYSQL_STMT *st)
{
    struct my_stmt_entry *e;
    unsigned lru = 0;
    char *copy;

    if (sc->cap == 0 || !garbage_reserve(sc, sc->ngarbage + 2))
        return false;
    copy = malloc(len ? len : 1);
    if (!copy)
        return false;
    if (len)
        memcpy(copy, sql, len);
    if (sc->n == sc->cap) {
        for (unsigned i = 1; i < sc->n; i++)
            if (sc->e[i].used < sc->e[lru].used)
                lru = i;
        drop_entry(sc, lru);
    }
    e = &sc->e[sc->n++];
    e->hash = sql_hash(sql, len);
    e->sql = copy;
    e->len = len;
    e->st = st;
    e->used = ++sc->clock;
    return true;
}

void my_stmt_forget(struct my_stmt_cache *sc, MYSQL_STMT *st)
{
    for (unsigned i = 0; i < sc->n; i++) {
        if (sc->e[i].st == st) {
            drop_entry(sc, i);
            return;
        }
    }
}

static void forget_all(struct my_stmt_cache *sc)
{
    while (sc->n > 0)
        drop_entry(sc, sc->n - 1);
}

MYSQL_STMT *my_stmt_garbage_pop(struct my_stmt_cache *sc)
{
    return sc->ngarbage ? sc->garbage[--sc->ngarbage] : NULL;
}

unsigned my_stmt_count(const struct my_stmt_cache *sc)
{
    return sc->n;
}

/* ------------------------------------------------------- driver hooks */

void my_schema_changed(struct mysql_conn *c)
{
    if (c->ex)
        forget_all(&c->ex->sc);
}

void my_stmt_dropped(struct mysql_conn *c)
{
    /* The server forgot them; closing the handles sends a COM_STMT_CLOSE
     * it ignores, and frees the library's memory. */
    if (c->ex)
        forget_all(&c->ex->sc);
}

static void free_buffers(struct my_exec *ex)
{
    for (size_t i = 0; i < ex->cap; i++)
        free(ex->cells[i].var);
    free(ex->cols);
    free(ex->dcols);
    free(ex->vals);
    free(ex->cells);
    free(ex->rbind);
    free(ex->pbind);
}

/* After mysql_close(): the handles are detached from the connection, so
 * mysql_stmt_close only frees memory. */
void my_exec_free(struct mysql_conn *c)
{
    struct my_exec *ex = c->ex;
    MYSQL_STMT *st;

    if (!ex)
        return;
    c->ex = NULL;
    forget_all(&ex->sc);
    if (ex->st && !ex->st_cached)
        (void)my_stmt_discard(&ex->sc, ex->st);
    if (ex->closing)
        (void)my_stmt_discard(&ex->sc, ex->closing);
    while ((st = my_stmt_garbage_pop(&ex->sc)))
        (void)mysql_stmt_close(st);
    free(ex->sc.garbage);
    free(ex->sc.e);
    free_buffers(ex);
    event_free(ex->ev_step);
    free(ex);
}

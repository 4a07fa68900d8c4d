/*
 * gen-seeds.c — writes the binary seed inputs of the fuzz corpus
 * (tests/fuzz/corpus/proto and tests/fuzz/corpus/session) with the real
 * encoders of src/common/proto.c, so the seeds are valid frames by construction
 * plus a few deliberate edge cases. The text corpora (config, status,
 * sqlsplit) are written by hand.
 *
 *   make tests/fuzz/gen-seeds && tests/fuzz/gen-seeds ../tests/fuzz/corpus
 *
 * Run it only to change the seeds; the output is committed. Session seeds
 * start with the fuzz_session control byte (see fuzz_session.c): 8 closes
 * abruptly, 16 sends chunks eagerly, the low bits count chunk sizes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/proto.h"

static const char *outdir;

static void save(const char *target, const char *name, const struct pbuf *b)
{
    char path[1024];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s/%s", outdir, target, name);
    f = fopen(path, "wb");
    if (!f || b->oom || fwrite(b->data, 1, b->len, f) != b->len || fclose(f) != 0) {
        fprintf(stderr, "gen-seeds: cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

static void query(struct pbuf *b, const char *sql)
{
    proto_put_query(b, sql, strlen(sql), NULL, 0);
}

/* ------------------------------------------------------------ proto */

static void proto_seeds(void)
{
    struct pbuf b;
    dbpool_value vals[] = {
        dbpool_null(), dbpool_int(-42), dbpool_float(2.5), dbpool_textn("héllo", 6),
        dbpool_blob("\0\1\2", 3), dbpool_bool(1),
    };
    dbpool_stmt stmts[] = {
        { "INSERT INTO t VALUES (?, ?)", vals, 2 },
        { "SELECT ?", vals + 3, 1 },
        { "", NULL, 0 },
    };
    dbpool_column cols[] = { { "id", "integer" }, { "name", "text" }, { "", "" } };

    pbuf_init(&b);
    proto_put_hello(&b, PROTO_VERSION, "app", "fuzz-seed");
    save("proto", "hello", &b);
    pbuf_reset(&b);
    proto_put_query(&b, "SELECT ?, ?, ?, ?, ?, ?", 23, vals, 6);
    save("proto", "query-all-types", &b);
    pbuf_reset(&b);
    proto_put_batch(&b, PB_ATOMIC, stmts, 3);
    save("proto", "batch-atomic", &b);
    pbuf_reset(&b);
    proto_put_begin(&b, PB_READ_ONLY);
    proto_put_empty(&b, PT_COMMIT);
    proto_put_empty(&b, PT_ROLLBACK);
    proto_put_empty(&b, PT_PING);
    proto_put_empty(&b, PT_CANCEL);
    proto_put_empty(&b, PT_TERMINATE);
    save("proto", "small-requests", &b);
    pbuf_reset(&b);
    proto_put_empty(&b, PT_PIN);
    proto_put_empty(&b, PT_UNPIN);
    save("proto", "pin-unpin", &b);
    pbuf_reset(&b);
    proto_put_hello_ok(&b, "sqlite", "dbpoold 0.1.0", 16777216, 1024, 1000);
    proto_put_columns(&b, 3, cols);
    proto_put_row(&b, 3, vals);
    proto_put_row(&b, 3, vals + 3);
    proto_put_stmt_done(&b, 2, -1);
    proto_put_ready(&b, 'T');
    save("proto", "daemon-answers", &b);
    pbuf_reset(&b);
    proto_put_error(&b, DBPOOL_E_SQL, "42P01", "no such table: t", 'E', 3, 1);
    proto_put_error(&b, DBPOOL_E_LIMIT, "", "", 'I', -1, 0);
    save("proto", "errors", &b);
    pbuf_free(&b);
}

/* ------------------------------------------------------------ session */

/* control byte (+ chunk sizes), then the stream in b */
static void session(const char *name, unsigned char control, const char *sizes, size_t nsizes,
                    const struct pbuf *stream)
{
    struct pbuf b;

    pbuf_init(&b);
    pbuf_put_u8(&b, (uint8_t)(control | nsizes));
    pbuf_put_bytes(&b, sizes, nsizes);
    pbuf_put_bytes(&b, stream->data, stream->len);
    save("session", name, &b);
    pbuf_free(&b);
}

static void hello(struct pbuf *b)
{
    proto_put_hello(b, PROTO_VERSION, "app", "fuzz");
}

static void session_seeds(void)
{
    struct pbuf s;
    dbpool_value p[] = { dbpool_int(7), dbpool_textn("x", 1), dbpool_blob("\xff", 1),
                         dbpool_float(-0.5), dbpool_null(), dbpool_bool(0) };
    dbpool_stmt batch[] = {
        { "CREATE TABLE IF NOT EXISTS f (a, b)", NULL, 0 },
        { "INSERT INTO f VALUES (?, ?)", p, 2 },
        { "SELECT a, b, typeof(b) FROM f LIMIT 3", NULL, 0 },
    };

    pbuf_init(&s);
    hello(&s);
    query(&s, "SELECT 1 AS one, 'two' AS two, x'00ff' AS three, 4.5, NULL");
    session("select", 0, NULL, 0, &s);
    session("select-chunked", 0, "\0\1\2\6", 4, &s);

    pbuf_reset(&s);
    hello(&s);
    proto_put_query(&s, "SELECT ?, ?, ?, ?, ?, ?", 23, p, 6);
    proto_put_empty(&s, PT_PING);
    session("params-ping", 0, NULL, 0, &s);

    pbuf_reset(&s);
    hello(&s);
    proto_put_begin(&s, 0);
    query(&s, "CREATE TABLE IF NOT EXISTS f (a, b)");
    query(&s, "INSERT INTO f VALUES (1, 'one')");
    proto_put_begin(&s, 0);   /* nested: a savepoint */
    query(&s, "DELETE FROM f");
    proto_put_empty(&s, PT_ROLLBACK);
    proto_put_empty(&s, PT_COMMIT);
    session("transaction-savepoint", 0, NULL, 0, &s);

    pbuf_reset(&s);
    hello(&s);
    proto_put_batch(&s, PB_ATOMIC, batch, 3);
    proto_put_batch(&s, 0, batch + 2, 1);
    session("batches", 0, NULL, 0, &s);

    pbuf_reset(&s);
    hello(&s);
    proto_put_begin(&s, PB_READ_ONLY);
    query(&s, "SELECT count(*) FROM sqlite_master");
    query(&s, "INSERT INTO f VALUES (2, 2)");   /* refused: read-only */
    proto_put_empty(&s, PT_COMMIT);
    proto_put_empty(&s, PT_COMMIT);              /* without a transaction */
    session("read-only-tx", 0, NULL, 0, &s);

    pbuf_reset(&s);
    hello(&s);
    query(&s, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
              "SELECT count(*) FROM c");         /* ends by statementTimeout */
    proto_put_empty(&s, PT_CANCEL);
    query(&s, "SELECT 2");
    session("cancel-long-query", 0, NULL, 0, &s);
    session("vanish-mid-query", 8, NULL, 0, &s);  /* close without waiting */
    {   /* eager: the CANCEL arrives in its own read while the query runs */
        size_t first = s.len - 5 - (PROTO_HEADER_SIZE + 4 + 8 + 2);   /* HELLO + QUERY */
        char size = (char)(first - 1);
        session("cancel-in-flight", 16, &size, 1, &s);
    }

    pbuf_reset(&s);
    hello(&s);
    proto_put_begin(&s, 0);
    query(&s, "INSERT INTO f VALUES (3, zeroblob(3000))");
    query(&s, "SELECT * FROM f");
    session("vanish-in-tx", 8, "\x10\x20", 2, &s);

    /* pinned sessions: state across transactions, UNPIN refused inside
     * one, a second PIN, a vanish while pinned in a transaction */
    pbuf_reset(&s);
    hello(&s);
    proto_put_empty(&s, PT_PIN);
    query(&s, "CREATE TEMP TABLE IF NOT EXISTS pt (a)");
    proto_put_begin(&s, 0);
    query(&s, "INSERT INTO pt VALUES (1)");
    proto_put_empty(&s, PT_UNPIN);               /* refused: inside a transaction */
    proto_put_empty(&s, PT_COMMIT);
    proto_put_empty(&s, PT_PIN);                 /* already pinned: nothing */
    query(&s, "SELECT count(*) FROM pt");
    proto_put_empty(&s, PT_UNPIN);
    proto_put_empty(&s, PT_UNPIN);               /* not pinned: nothing */
    query(&s, "SELECT count(*) FROM pt");        /* gone with the pin */
    session("pin-unpin", 0, NULL, 0, &s);
    session("pin-vanish", 8, "\x08\x10", 2, &s);
    pbuf_reset(&s);
    hello(&s);
    proto_put_begin(&s, 0);
    proto_put_empty(&s, PT_PIN);                 /* refused: inside a transaction */
    proto_put_empty(&s, PT_ROLLBACK);
    pbuf_put_bytes(&s, "\0\0\0\2N\0", 6);        /* PIN with a payload */
    session("pin-protocol-errors", 0, NULL, 0, &s);

    pbuf_reset(&s);
    proto_put_hello(&s, PROTO_VERSION, "nosuchpool", "fuzz");
    session("unknown-pool", 0, NULL, 0, &s);
    pbuf_reset(&s);
    proto_put_hello(&s, 99, "app", "fuzz");
    session("bad-version", 0, NULL, 0, &s);
    pbuf_reset(&s);
    query(&s, "SELECT 1");
    session("no-hello", 0, NULL, 0, &s);

    pbuf_reset(&s);
    hello(&s);
    pbuf_put_bytes(&s, "\0\0\0\0Q", 5);
    session("length-zero", 0, NULL, 0, &s);
    pbuf_reset(&s);
    hello(&s);
    pbuf_put_bytes(&s, "\0\1\0\0Q", 5);
    session("too-large", 0, NULL, 0, &s);
    pbuf_reset(&s);
    hello(&s);
    pbuf_put_bytes(&s, "\0\0\0\1?", 5);
    session("unknown-type", 0, NULL, 0, &s);
    pbuf_reset(&s);
    hello(&s);
    proto_put_empty(&s, PT_TERMINATE);
    query(&s, "SELECT 'after terminate'");
    session("terminate", 0, NULL, 0, &s);
    pbuf_free(&s);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen-seeds CORPUS_DIR (tests/fuzz/corpus)\n");
        return 2;
    }
    outdir = argv[1];
    proto_seeds();
    session_seeds();
    return 0;
}

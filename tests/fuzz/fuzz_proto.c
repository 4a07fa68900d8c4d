/*
 * fuzz_proto.c — libFuzzer target: the wire format (src/common/proto.c), the one
 * frame codec shared by the daemon and libdbpool.
 *
 * The input is a stream of frames, cut with proto_peek_header() the way
 * both sides cut their input. Every complete payload goes through every
 * decoder: those the daemon runs on client input (HELLO, QUERY, BATCH,
 * BEGIN — with the default limits and with tiny ones) and those libdbpool
 * runs on daemon output (HELLO_OK, COLUMNS, ROW, STMT_DONE, READY, ERROR).
 *
 * Oracle, beyond ASan/UBSan/LSan: whatever a decoder accepts must encode
 * back to exactly the same bytes with the matching proto_put_* encoder (the
 * wire format has one spelling per message), and decoded strings must
 * point inside the payload. Encoders that take C strings are checked when
 * the decoded strings hold no NUL.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "common/proto.h"

#define STREAM_MAX_FRAME (1u << 24)

struct payload {
    const uint8_t *p;
    size_t n;
};

/* The encoder's payload (after the 5-byte header) must equal pl. */
static void same(const struct pbuf *b, const struct payload *pl, const char *what)
{
    if (b->oom || b->len != PROTO_HEADER_SIZE + pl->n ||
        memcmp(b->data + PROTO_HEADER_SIZE, pl->p, pl->n) != 0)
        fuzz_fail("%s: decoding then encoding changed the bytes (%zu -> %zu)", what, pl->n,
                  b->len >= PROTO_HEADER_SIZE ? b->len - PROTO_HEADER_SIZE : 0);
    uint32_t flen = (uint32_t)b->data[0] << 24 | (uint32_t)b->data[1] << 16 |
                    (uint32_t)b->data[2] << 8 | b->data[3];
    if (flen != pl->n + 1)
        fuzz_fail("%s: encoded frame length %u for a %zu-byte payload", what, flen, pl->n);
}

static void inside(const struct payload *pl, const struct proto_str *s, const char *what)
{
    if (s->len && (s->p < (const char *)pl->p || s->p + s->len > (const char *)pl->p + pl->n))
        fuzz_fail("%s: a decoded string points outside the payload", what);
}

/* NUL-terminated copy, or NULL when s holds a NUL (no C-string encoding). */
static char *cstr(const struct proto_str *s)
{
    if (s->len && memchr(s->p, 0, s->len))
        return NULL;
    char *c = malloc(s->len + 1);
    if (!c)
        abort();
    if (s->len)
        memcpy(c, s->p, s->len);
    c[s->len] = '\0';
    return c;
}

/* ------------------------------------------------ client -> daemon */

static void hello(const struct payload *pl, struct pbuf *b)
{
    struct proto_hello h;

    if (!proto_get_hello(pl->p, pl->n, &h))
        return;
    inside(pl, &h.pool, "HELLO");
    inside(pl, &h.client_name, "HELLO");
    char *pool = cstr(&h.pool), *name = cstr(&h.client_name);
    if (pool && name) {
        proto_put_hello(b, h.version, pool, name);
        same(b, pl, "HELLO");
    }
    free(pool);
    free(name);
}

static void check_values(const struct payload *pl, const dbpool_value *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (v[i].type == DBPOOL_TEXT || v[i].type == DBPOOL_BLOB) {
            struct proto_str s = { v[i].u.s.ptr, v[i].u.s.len };
            inside(pl, &s, "value");
        } else if (v[i].type > DBPOOL_BOOL || (v[i].type == DBPOOL_BOOL && v[i].u.b > 1)) {
            fuzz_fail("a decoder accepted value type %d", (int)v[i].type);
        }
    }
}

static void query(const struct payload *pl, struct pbuf *b, uint32_t max_params)
{
    struct proto_stmt st;

    if (!proto_get_query(pl->p, pl->n, max_params, &st))
        return;
    if (st.nparams > max_params)
        fuzz_fail("QUERY: %u parameters accepted, limit %u", st.nparams, max_params);
    inside(pl, &st.sql, "QUERY");
    check_values(pl, st.params, st.nparams);
    proto_put_query(b, st.sql.p, st.sql.len, st.params, st.nparams);
    same(b, pl, "QUERY");
    free(st.params);
}

static void batch(const struct payload *pl, struct pbuf *b, uint32_t max_params, uint32_t max_stmts)
{
    struct proto_stmt *st;
    size_t n;
    uint8_t flags;

    if (!proto_get_batch(pl->p, pl->n, max_params, max_stmts, &flags, &st, &n))
        return;
    if (n == 0 || n > max_stmts)
        fuzz_fail("BATCH: %zu statements accepted, limit %u", n, max_stmts);
    dbpool_stmt *ds = calloc(n, sizeof(*ds));
    bool encodable = ds != NULL;
    for (size_t i = 0; i < n && ds; i++) {
        inside(pl, &st[i].sql, "BATCH");
        check_values(pl, st[i].params, st[i].nparams);
        ds[i].sql = cstr(&st[i].sql);
        ds[i].params = st[i].params;
        ds[i].nparams = st[i].nparams;
        encodable = encodable && ds[i].sql;
    }
    if (encodable) {
        proto_put_batch(b, flags, ds, n);
        same(b, pl, "BATCH");
    }
    for (size_t i = 0; i < n && ds; i++)
        free((char *)ds[i].sql);
    free(ds);
    proto_stmts_free(st, n);
}

static void begin(const struct payload *pl, struct pbuf *b)
{
    uint8_t flags;

    if (!proto_get_begin(pl->p, pl->n, &flags))
        return;
    proto_put_begin(b, flags);
    same(b, pl, "BEGIN");
}

/* ------------------------------------------------ daemon -> client */

static void hello_ok(const struct payload *pl, struct pbuf *b)
{
    struct proto_hello_ok h;

    if (!proto_get_hello_ok(pl->p, pl->n, &h))
        return;
    inside(pl, &h.backend, "HELLO_OK");
    inside(pl, &h.server, "HELLO_OK");
    char *be = cstr(&h.backend), *sv = cstr(&h.server);
    if (be && sv && h.version == PROTO_VERSION) {
        /* The decoder skips appended fields and reads a frame that ends
         * before max_batch_statements as 0: compare the common prefix. */
        proto_put_hello_ok(b, be, sv, h.max_frame, h.max_params, h.max_batch_statements);
        size_t enc = b->oom ? 0 : b->len - PROTO_HEADER_SIZE;
        bool shorter = enc == pl->n + 2 && h.max_batch_statements == 0;
        if (b->oom || (enc > pl->n && !shorter) ||
            memcmp(b->data + PROTO_HEADER_SIZE, pl->p, enc < pl->n ? enc : pl->n) != 0)
            fuzz_fail("HELLO_OK: decoding then encoding changed the known fields");
    }
    free(be);
    free(sv);
}

static void columns(const struct payload *pl, struct pbuf *b)
{
    struct proto_column *c;
    size_t n;

    if (!proto_get_columns(pl->p, pl->n, &c, &n))
        return;
    dbpool_column *dc = calloc(n + 1, sizeof(*dc));
    bool encodable = dc != NULL;
    for (size_t i = 0; i < n && dc; i++) {
        inside(pl, &c[i].name, "COLUMNS");
        inside(pl, &c[i].decl_type, "COLUMNS");
        dc[i].name = cstr(&c[i].name);
        dc[i].decl_type = cstr(&c[i].decl_type);
        encodable = encodable && dc[i].name && dc[i].decl_type;
    }
    if (encodable) {
        proto_put_columns(b, n, dc);
        same(b, pl, "COLUMNS");
    }
    for (size_t i = 0; i < n && dc; i++) {
        free((char *)dc[i].name);
        free((char *)dc[i].decl_type);
    }
    free(dc);
    free(c);
}

/* The ncols libdbpool passes comes from COLUMNS; here from the payload's own
 * count (the matching case) and from that count + 1 (a mismatch). Every
 * value takes at least its tag byte, so the decoder can fill at most n - 1
 * slots before it runs out of payload: the array is capped there (a 64k
 * array per input would cost more than the decoding; ASan flags a decoder
 * that writes past it). */
static void row(const struct payload *pl, struct pbuf *b)
{
    if (pl->n < 2)
        return;
    size_t ncols = (size_t)pl->p[0] << 8 | pl->p[1];
    size_t room = ncols + 1 < pl->n ? ncols + 1 : pl->n;
    dbpool_value *v = malloc(room * sizeof(*v));

    if (!v)
        abort();
    if (proto_get_row(pl->p, pl->n, ncols + 1, v))
        fuzz_fail("ROW: accepted with the wrong column count");
    if (proto_get_row(pl->p, pl->n, ncols, v)) {
        check_values(pl, v, ncols);
        proto_put_row(b, ncols, v);
        same(b, pl, "ROW");
    }
    free(v);
}

/* Like HELLO_OK, the decoder skips appended fields and reads a frame that
 * ends before vendor_code as 0: compare the common prefix. */
static void error_frame(const struct payload *pl, struct pbuf *b, const struct proto_error *e)
{
    inside(pl, &e->sqlstate, "ERROR");
    inside(pl, &e->message, "ERROR");
    char *ss = cstr(&e->sqlstate), *msg = cstr(&e->message);
    if (ss && msg) {
        proto_put_error(b, e->code, ss, msg, e->txstate, e->stmt_index, e->vendor_code);
        size_t enc = b->oom ? 0 : b->len - PROTO_HEADER_SIZE;
        bool shorter = enc == pl->n + 4 && e->vendor_code == 0;
        if (b->oom || (enc > pl->n && !shorter) ||
            memcmp(b->data + PROTO_HEADER_SIZE, pl->p, enc < pl->n ? enc : pl->n) != 0)
            fuzz_fail("ERROR: decoding then encoding changed the known fields");
    }
    free(ss);
    free(msg);
}

static void small_frames(const struct payload *pl, struct pbuf *b)
{
    int64_t a, l;
    char tx;
    struct proto_error e;

    if (proto_get_stmt_done(pl->p, pl->n, &a, &l)) {
        proto_put_stmt_done(b, a, l);
        same(b, pl, "STMT_DONE");
        pbuf_reset(b);
    }
    if (proto_get_ready(pl->p, pl->n, &tx)) {
        proto_put_ready(b, tx);
        same(b, pl, "READY");
        pbuf_reset(b);
    }
    if (proto_get_error(pl->p, pl->n, &e))
        error_frame(pl, b, &e);
}

static void all_decoders(const struct payload *pl, struct pbuf *b)
{
    void (*one[])(const struct payload *, struct pbuf *) = {
        hello, begin, hello_ok, columns, row, small_frames,
    };

    for (size_t i = 0; i < sizeof(one) / sizeof(one[0]); i++) {
        pbuf_reset(b);
        one[i](pl, b);
    }
    pbuf_reset(b);
    query(pl, b, PROTO_DEFAULT_MAX_PARAMS);
    pbuf_reset(b);
    query(pl, b, 1);
    pbuf_reset(b);
    batch(pl, b, PROTO_DEFAULT_MAX_PARAMS, 1000);
    pbuf_reset(b);
    batch(pl, b, 1, 2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pbuf b;
    size_t off = 0;

    pbuf_init(&b);
    for (;;) {
        uint8_t type;
        uint32_t plen;
        int h = proto_peek_header(data + off, size - off, STREAM_MAX_FRAME, &type, &plen);
        if (h <= 0 || size - off - PROTO_HEADER_SIZE < plen)
            break;
        if (plen >= STREAM_MAX_FRAME)
            fuzz_fail("proto_peek_header accepted a frame above the limit");
        struct payload pl = { data + off + PROTO_HEADER_SIZE, plen };
        all_decoders(&pl, &b);
        off += PROTO_HEADER_SIZE + (size_t)plen;
    }
    pbuf_free(&b);
    return 0;
}

/*
 * test_proto.c — criterion unit tests for the wire format (src/common/proto.c):
 * value and frame round trips (encode -> proto_peek_header -> decode), exact
 * byte layouts, rejection of malformed payloads (truncation at every cut,
 * trailing bytes, bad tags, counts above limits, hostile counts) and pbuf
 * growth and overflow behaviour.
 *
 * Payloads under test are copied into exactly-sized heap buffers so that the
 * address sanitizer / valgrind catch any read past the end.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/proto.h"

/* ---- helpers ---- */

/* Checks that b holds exactly one frame starting at start, of the given type,
 * and returns its payload (pointing into b) and length. */
static const uint8_t *one_frame(const struct pbuf *b, size_t start, uint8_t type,
                                uint32_t *plen)
{
    uint8_t t = 0;
    cr_assert(!b->oom);
    cr_assert_eq(proto_peek_header(b->data + start, b->len - start,
                                   PROTO_DEFAULT_MAX_FRAME, &t, plen), 1);
    cr_assert_eq(t, type, "type %c, expected %c", t, type);
    cr_assert_eq(start + PROTO_HEADER_SIZE + *plen, b->len);
    return b->data + start + PROTO_HEADER_SIZE;
}

/* A heap copy of exactly n bytes (ASan / valgrind catch over-reads). */
static uint8_t *dup_n(const void *p, size_t n)
{
    uint8_t *q = malloc(n ? n : 1);
    cr_assert_not_null(q);
    if (n)
        memcpy(q, p, n);
    return q;
}

static bool str_eq(struct proto_str s, const char *want)
{
    return s.len == strlen(want) && memcmp(s.p, want, s.len) == 0;
}

static bool value_eq(const dbpool_value *a, const dbpool_value *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case DBPOOL_NULL: return true;
    case DBPOOL_INT64: return a->u.i == b->u.i;
    case DBPOOL_FLOAT64: return memcmp(&a->u.f, &b->u.f, sizeof a->u.f) == 0;
    case DBPOOL_BOOL: return a->u.b == b->u.b;
    case DBPOOL_TEXT:
    case DBPOOL_BLOB:
        return a->u.s.len == b->u.s.len &&
               (a->u.s.len == 0 || memcmp(a->u.s.ptr, b->u.s.ptr, a->u.s.len) == 0);
    }
    return false;
}

/* Encodes v alone, decodes it back into *out and checks the reader is done. */
static void value_round_trip(const dbpool_value *v, dbpool_value *out)
{
    struct pbuf b;
    pbuf_init(&b);
    pbuf_put_value(&b, v);
    cr_assert(!b.oom);
    uint8_t *copy = dup_n(b.data, b.len);
    struct preader r;
    preader_init(&r, copy, b.len);
    cr_assert(preader_value(&r, out));
    cr_assert(preader_done(&r));
    cr_assert(value_eq(v, out));
    /* TEXT/BLOB are zero copy: the pointer refers into the buffer. */
    if ((v->type == DBPOOL_TEXT || v->type == DBPOOL_BLOB) && v->u.s.len)
        cr_assert_eq((const uint8_t *)out->u.s.ptr, copy + 5);
    free(copy);
    pbuf_free(&b);
}

static void check_round_trip(dbpool_value v)
{
    dbpool_value out;
    value_round_trip(&v, &out);
}

/* Decode a payload copied into exactly len bytes; on failure the outputs
 * must be left empty (params NULL / stmts NULL, counts 0). */
static bool query_ok(const void *p, size_t len, uint32_t max_params)
{
    uint8_t *copy = dup_n(p, len);
    struct proto_stmt st;
    bool ok = proto_get_query(copy, len, max_params, &st);
    if (ok)
        free(st.params);
    else
        cr_assert(st.params == NULL && st.nparams == 0);
    free(copy);
    return ok;
}

static bool batch_ok(const void *p, size_t len, uint32_t max_params, uint32_t max_stmts)
{
    uint8_t *copy = dup_n(p, len);
    struct proto_stmt *st = (struct proto_stmt *)1;
    size_t n = 99;
    uint8_t flags;
    bool ok = proto_get_batch(copy, len, max_params, max_stmts, &flags, &st, &n);
    if (ok)
        proto_stmts_free(st, n);
    else
        cr_assert(st == NULL && n == 0);
    free(copy);
    return ok;
}

static const char blob_bytes[] = { 'a', 0, 'b', 0, 0, (char)0xff };

static void sample_params(dbpool_value p[8])
{
    p[0] = dbpool_null();
    p[1] = dbpool_int(INT64_MIN);
    p[2] = dbpool_float(-2.5);
    p[3] = dbpool_textn("héllo", strlen("héllo"));
    p[4] = dbpool_blob(blob_bytes, sizeof blob_bytes);
    p[5] = dbpool_bool(1);
    p[6] = dbpool_textn("", 0);
    p[7] = dbpool_int(INT64_MAX);
}

/* A valid QUERY payload with every value type, in b (payload at *payload). */
static const uint8_t *sample_query(struct pbuf *b, uint32_t *plen)
{
    dbpool_value p[8];
    sample_params(p);
    pbuf_init(b);
    proto_put_query(b, "select $1", 9, p, 8);
    return one_frame(b, 0, PT_QUERY, plen);
}

static const uint8_t *sample_batch(struct pbuf *b, uint32_t *plen)
{
    dbpool_value p[8];
    sample_params(p);
    dbpool_stmt s[3] = {
        { "insert 1", p, 8 },
        { "select 2", NULL, 0 },
        { "update 3", p + 3, 2 },
    };
    pbuf_init(b);
    proto_put_batch(b, PB_ATOMIC, s, 3);
    return one_frame(b, 0, PT_BATCH, plen);
}

/* ---- values ---- */

Test(value, null) { check_round_trip(dbpool_null()); }

Test(value, int64_extremes)
{
    check_round_trip(dbpool_int(0));
    check_round_trip(dbpool_int(-1));
    check_round_trip(dbpool_int(INT64_MIN));
    check_round_trip(dbpool_int(INT64_MAX));
}

Test(value, float64_specials)
{
    dbpool_value out;
    dbpool_value v = dbpool_float(NAN);
    value_round_trip(&v, &out);
    cr_assert(isnan(out.u.f));
    v = dbpool_float(INFINITY);
    value_round_trip(&v, &out);
    cr_assert(isinf(out.u.f) && out.u.f > 0);
    v = dbpool_float(-INFINITY);
    value_round_trip(&v, &out);
    cr_assert(isinf(out.u.f) && out.u.f < 0);
    v = dbpool_float(-0.0);
    value_round_trip(&v, &out);
    cr_assert(out.u.f == 0.0 && signbit(out.u.f));
    check_round_trip(dbpool_float(3.141592653589793));
    check_round_trip(dbpool_float(4.9e-324));
}

Test(value, text_and_blob)
{
    check_round_trip(dbpool_textn("", 0));
    check_round_trip(dbpool_textn(NULL, 0));
    check_round_trip(dbpool_textn("hello, world", 12));
    check_round_trip(dbpool_blob(blob_bytes, sizeof blob_bytes));
    check_round_trip(dbpool_blob(NULL, 0));
}

Test(value, empty_text_decodes_non_null_or_empty)
{
    dbpool_value v = dbpool_textn("", 0), out;
    value_round_trip(&v, &out);
    cr_assert_eq(out.type, DBPOOL_TEXT);
    cr_assert_eq(out.u.s.len, 0);
}

Test(value, bool)
{
    check_round_trip(dbpool_bool(0));
    check_round_trip(dbpool_bool(1));
    /* Any non-zero int encodes as 1. */
    dbpool_value v = { .type = DBPOOL_BOOL, .u.b = 42 }, out;
    struct pbuf b;
    pbuf_init(&b);
    pbuf_put_value(&b, &v);
    cr_assert_eq(b.len, 2);
    cr_assert_eq(b.data[1], 1);
    struct preader r;
    preader_init(&r, b.data, b.len);
    cr_assert(preader_value(&r, &out));
    cr_assert_eq(out.u.b, 1);
    pbuf_free(&b);
}

Test(value, exact_bytes)
{
    struct pbuf b;
    pbuf_init(&b);
    dbpool_value v = dbpool_int(0x0102030405060708);
    pbuf_put_value(&b, &v);
    v = dbpool_float(1.0);  /* 0x3ff0000000000000 */
    pbuf_put_value(&b, &v);
    v = dbpool_textn("ab", 2);
    pbuf_put_value(&b, &v);
    v = dbpool_null();
    pbuf_put_value(&b, &v);
    const uint8_t want[] = {
        1, 1, 2, 3, 4, 5, 6, 7, 8,
        2, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0,
        3, 0, 0, 0, 2, 'a', 'b',
        0,
    };
    cr_assert_eq(b.len, sizeof want);
    cr_assert(memcmp(b.data, want, sizeof want) == 0);
    pbuf_free(&b);
}

Test(value, unknown_tag_rejected)
{
    const uint8_t tags[] = { 6, 7, 0x80, 0xff };
    for (size_t i = 0; i < sizeof tags; i++) {
        uint8_t buf[9] = { tags[i], 0, 0, 0, 0, 0, 0, 0, 0 };
        struct preader r;
        dbpool_value v;
        preader_init(&r, buf, sizeof buf);
        cr_assert(!preader_value(&r, &v));
        cr_assert(r.err);
        cr_assert(!preader_done(&r));
    }
}

Test(value, bad_bool_byte_rejected)
{
    for (unsigned x = 2; x < 256; x++) {
        uint8_t buf[2] = { DBPOOL_BOOL, (uint8_t)x };
        struct preader r;
        dbpool_value v;
        preader_init(&r, buf, sizeof buf);
        cr_assert(!preader_value(&r, &v));
        cr_assert(r.err);
    }
}

Test(value, truncated_bodies_rejected)
{
    const uint8_t full[][9] = {
        { DBPOOL_INT64, 1, 2, 3, 4, 5, 6, 7, 8 },
        { DBPOOL_FLOAT64, 1, 2, 3, 4, 5, 6, 7, 8 },
        { DBPOOL_TEXT, 0, 0, 0, 4, 'a', 'b', 'c', 'd' },
        { DBPOOL_BLOB, 0, 0, 0, 4, 'a', 'b', 'c', 'd' },
    };
    for (size_t k = 0; k < sizeof full / sizeof full[0]; k++) {
        for (size_t cut = 0; cut < 9; cut++) {
            uint8_t *copy = dup_n(full[k], cut);
            struct preader r;
            dbpool_value v;
            preader_init(&r, copy, cut);
            cr_assert(!preader_value(&r, &v), "type %zu cut %zu", k, cut);
            free(copy);
        }
    }
}

Test(value, unencodable_type_sets_oom)
{
    struct pbuf b;
    pbuf_init(&b);
    dbpool_value v = dbpool_null();
    v.type = (dbpool_type)9;
    pbuf_put_value(&b, &v);
    cr_assert(b.oom);
    pbuf_free(&b);
}

/* ---- preader ---- */

Test(preader, big_endian_integers)
{
    const uint8_t buf[] = { 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0xff, 0xff, 0xff, 0xfe,
                            0x80, 0, 0, 0, 0, 0, 0, 1 };
    struct preader r;
    preader_init(&r, buf, sizeof buf);
    cr_assert_eq(preader_u16(&r), 0x1234);
    cr_assert_eq(preader_u32(&r), 0xdeadbeefu);
    cr_assert_eq(preader_i32(&r), -2);
    cr_assert_eq(preader_i64(&r), INT64_MIN + 1);
    cr_assert(preader_done(&r));
}

Test(preader, error_is_sticky)
{
    const uint8_t buf[] = { 1, 2, 3 };
    struct preader r;
    size_t len = 7;
    preader_init(&r, buf, sizeof buf);
    cr_assert_eq(preader_u32(&r), 0);
    cr_assert(r.err);
    /* Bytes remain, but every read after an error returns 0 / NULL. */
    cr_assert_eq(preader_u8(&r), 0);
    cr_assert_eq(preader_u16(&r), 0);
    cr_assert_eq(preader_i64(&r), 0);
    cr_assert_eq(preader_f64(&r), 0.0);
    cr_assert_null(preader_str(&r, &len));
    cr_assert_eq(len, 0);
    cr_assert(!preader_done(&r));
}

Test(preader, str_longer_than_payload)
{
    const uint8_t buf[] = { 0xff, 0xff, 0xff, 0xff, 'a' };
    struct preader r;
    size_t len = 7;
    preader_init(&r, buf, sizeof buf);
    cr_assert_null(preader_str(&r, &len));
    cr_assert_eq(len, 0);
    cr_assert(r.err);
}

Test(preader, empty_payload)
{
    struct preader r;
    preader_init(&r, NULL, 0);
    cr_assert(preader_done(&r));
    cr_assert_eq(preader_u8(&r), 0);
    cr_assert(!preader_done(&r));
}

/* ---- frame header ---- */

Test(header, needs_five_bytes)
{
    const uint8_t buf[5] = { 0, 0, 0, 1, 'P' };
    uint8_t t;
    uint32_t n;
    for (size_t avail = 0; avail < 5; avail++)
        cr_assert_eq(proto_peek_header(buf, avail, 100, &t, &n), 0);
    cr_assert_eq(proto_peek_header(buf, 5, 100, &t, &n), 1);
    cr_assert_eq(t, 'P');
    cr_assert_eq(n, 0);
}

Test(header, zero_length_rejected)
{
    const uint8_t buf[5] = { 0, 0, 0, 0, 'P' };
    uint8_t t;
    uint32_t n;
    cr_assert_eq(proto_peek_header(buf, 5, 100, &t, &n), -1);
}

Test(header, above_max_frame_rejected)
{
    const uint8_t at[5] = { 0, 0, 0, 100, 'Q' };
    const uint8_t above[5] = { 0, 0, 0, 101, 'Q' };
    const uint8_t huge[5] = { 0xff, 0xff, 0xff, 0xff, 'Q' };
    uint8_t t;
    uint32_t n;
    cr_assert_eq(proto_peek_header(at, 5, 100, &t, &n), 1);
    cr_assert_eq(n, 99);
    cr_assert_eq(proto_peek_header(above, 5, 100, &t, &n), -1);
    cr_assert_eq(proto_peek_header(huge, 5, PROTO_DEFAULT_MAX_FRAME, &t, &n), -1);
}

/* A bad length is refused as soon as its 4 bytes are there: a client that
 * sends only them must get its error, not wait for a fifth byte. */
Test(header, bad_length_refused_on_four_bytes)
{
    const uint8_t zero[4] = { 0, 0, 0, 0 };
    const uint8_t above[4] = { 0, 0, 0, 101 };
    const uint8_t ok[4] = { 0, 0, 0, 100 };
    uint8_t t;
    uint32_t n;
    cr_assert_eq(proto_peek_header(zero, 3, 100, &t, &n), 0);
    cr_assert_eq(proto_peek_header(zero, 4, 100, &t, &n), -1);
    cr_assert_eq(proto_peek_header(above, 4, 100, &t, &n), -1);
    cr_assert_eq(proto_peek_header(ok, 4, 100, &t, &n), 0, "a valid length needs the type byte");
}

Test(header, does_not_need_payload)
{
    const uint8_t buf[6] = { 0, 0, 0, 10, 'Q', 0 };
    uint8_t t;
    uint32_t n;
    cr_assert_eq(proto_peek_header(buf, 6, 100, &t, &n), 1);
    cr_assert_eq(t, 'Q');
    cr_assert_eq(n, 9);
}

Test(header, frame_begin_end_layout)
{
    struct pbuf b;
    pbuf_init(&b);
    pbuf_put_u8(&b, 0xaa);                   /* frames need not start at 0 */
    size_t f = proto_frame_begin(&b, PT_PING);
    cr_assert_eq(f, 1);
    pbuf_put_u16(&b, 0x0102);
    proto_frame_end(&b, f);
    const uint8_t want[] = { 0xaa, 0, 0, 0, 3, 'P', 1, 2 };
    cr_assert_eq(b.len, sizeof want);
    cr_assert(memcmp(b.data, want, sizeof want) == 0);
    pbuf_free(&b);
}

/* ---- every frame type: encode -> peek -> decode ---- */

Test(frame, hello)
{
    struct pbuf b;
    uint32_t n;
    struct proto_hello h;
    pbuf_init(&b);
    proto_put_hello(&b, PROTO_VERSION, "main", "test client");
    const uint8_t *p = one_frame(&b, 0, PT_HELLO, &n);
    cr_assert(proto_get_hello(p, n, &h));
    cr_assert_eq(h.version, PROTO_VERSION);
    cr_assert(str_eq(h.pool, "main"));
    cr_assert(str_eq(h.client_name, "test client"));
    pbuf_free(&b);
}

Test(frame, hello_null_client_name)
{
    struct pbuf b;
    uint32_t n;
    struct proto_hello h;
    pbuf_init(&b);
    proto_put_hello(&b, 7, "p", NULL);
    const uint8_t *p = one_frame(&b, 0, PT_HELLO, &n);
    cr_assert(proto_get_hello(p, n, &h));
    cr_assert_eq(h.version, 7);
    cr_assert_eq(h.client_name.len, 0);
    pbuf_free(&b);
}

Test(frame, query_all_value_types)
{
    struct pbuf b;
    uint32_t n;
    struct proto_stmt st;
    dbpool_value want[8];
    sample_params(want);
    const uint8_t *p = sample_query(&b, &n);
    cr_assert(proto_get_query(p, n, PROTO_DEFAULT_MAX_PARAMS, &st));
    cr_assert(str_eq(st.sql, "select $1"));
    cr_assert_eq(st.nparams, 8);
    for (size_t i = 0; i < 8; i++)
        cr_assert(value_eq(&st.params[i], &want[i]), "param %zu", i);
    free(st.params);
    pbuf_free(&b);
}

Test(frame, query_no_params)
{
    struct pbuf b;
    uint32_t n;
    struct proto_stmt st;
    pbuf_init(&b);
    proto_put_query(&b, "select 1", 8, NULL, 0);
    const uint8_t *p = one_frame(&b, 0, PT_QUERY, &n);
    cr_assert(proto_get_query(p, n, 0, &st));
    cr_assert(str_eq(st.sql, "select 1"));
    cr_assert_eq(st.nparams, 0);
    cr_assert_null(st.params);
    pbuf_free(&b);
}

Test(frame, query_sql_with_explicit_length)
{
    struct pbuf b;
    uint32_t n;
    struct proto_stmt st;
    pbuf_init(&b);
    proto_put_query(&b, "select 1; garbage", 8, NULL, 0);
    const uint8_t *p = one_frame(&b, 0, PT_QUERY, &n);
    cr_assert(proto_get_query(p, n, 0, &st));
    cr_assert(str_eq(st.sql, "select 1"));
    pbuf_free(&b);
}

Test(frame, batch)
{
    struct pbuf b;
    uint32_t n;
    struct proto_stmt *st;
    size_t count;
    uint8_t flags;
    dbpool_value want[8];
    sample_params(want);
    const uint8_t *p = sample_batch(&b, &n);
    cr_assert(proto_get_batch(p, n, PROTO_DEFAULT_MAX_PARAMS, 16, &flags, &st, &count));
    cr_assert_eq(flags, PB_ATOMIC);
    cr_assert_eq(count, 3);
    cr_assert(str_eq(st[0].sql, "insert 1"));
    cr_assert(str_eq(st[1].sql, "select 2"));
    cr_assert(str_eq(st[2].sql, "update 3"));
    cr_assert_eq(st[0].nparams, 8);
    cr_assert_eq(st[1].nparams, 0);
    cr_assert_null(st[1].params);
    cr_assert_eq(st[2].nparams, 2);
    for (size_t i = 0; i < 8; i++)
        cr_assert(value_eq(&st[0].params[i], &want[i]));
    cr_assert(value_eq(&st[2].params[0], &want[3]));
    cr_assert(value_eq(&st[2].params[1], &want[4]));
    proto_stmts_free(st, count);
    pbuf_free(&b);
}

Test(frame, batch_exactly_max_stmts)
{
    struct pbuf b;
    uint32_t n;
    struct proto_stmt *st;
    size_t count;
    uint8_t flags;
    const uint8_t *p = sample_batch(&b, &n);
    cr_assert(proto_get_batch(p, n, 8, 3, &flags, &st, &count));
    proto_stmts_free(st, count);
    pbuf_free(&b);
}

Test(frame, begin)
{
    struct pbuf b;
    uint32_t n;
    uint8_t flags = 0;
    pbuf_init(&b);
    proto_put_begin(&b, PB_READ_ONLY);
    const uint8_t *p = one_frame(&b, 0, PT_BEGIN, &n);
    cr_assert_eq(n, 1);
    cr_assert(proto_get_begin(p, n, &flags));
    cr_assert_eq(flags, PB_READ_ONLY);
    cr_assert(!proto_get_begin(p, 0, &flags));
    pbuf_free(&b);
}

Test(frame, empty_frames)
{
    const uint8_t types[] = { PT_COMMIT, PT_ROLLBACK, PT_PING, PT_TERMINATE };
    for (size_t i = 0; i < sizeof types; i++) {
        struct pbuf b;
        uint32_t n;
        pbuf_init(&b);
        proto_put_empty(&b, types[i]);
        one_frame(&b, 0, types[i], &n);
        cr_assert_eq(n, 0);
        cr_assert_eq(b.len, PROTO_HEADER_SIZE);
        pbuf_free(&b);
    }
}

Test(frame, hello_ok)
{
    struct pbuf b;
    uint32_t n;
    struct preader r;
    size_t len;
    pbuf_init(&b);
    proto_put_hello_ok(&b, "sqlite", "dbpoold 0.1", 12345678, 999, 4321);
    const uint8_t *p = one_frame(&b, 0, PT_HELLO_OK, &n);
    preader_init(&r, p, n);
    cr_assert_eq(preader_u16(&r), PROTO_VERSION);
    const char *s = preader_str(&r, &len);
    cr_assert(len == 6 && memcmp(s, "sqlite", 6) == 0);
    s = preader_str(&r, &len);
    cr_assert(len == 11 && memcmp(s, "dbpoold 0.1", 11) == 0);
    cr_assert_eq(preader_u32(&r), 12345678);
    cr_assert_eq(preader_u16(&r), 999);
    cr_assert_eq(preader_u16(&r), 4321, "max_batch_statements follows max_params");
    cr_assert(preader_done(&r));
    pbuf_free(&b);
}

/* The HELLO_OK payload of an older daemon: it ends after max_params. */
static const uint8_t old_hello_ok[] = {
    0, 1,                       /* version */
    0, 0, 0, 2, 'p', 'g',       /* backend */
    0, 0, 0, 1, 'd',            /* server */
    0, 1, 0, 0,                 /* max_frame 65536 */
    0, 8,                       /* max_params */
};

/* Encode a HELLO_OK, append tail (what a later revision might add) and
 * decode it from an exactly-sized heap copy, returned for the caller to
 * free (h points into it). */
static uint8_t *decode_hello_ok_with(const char *tail, uint16_t max_batch, struct proto_hello_ok *h)
{
    struct pbuf b;
    uint32_t n;
    size_t extra = strlen(tail);
    pbuf_init(&b);
    proto_put_hello_ok(&b, "postgres", "dbpoold 1", 65536, 8, max_batch);
    const uint8_t *p = one_frame(&b, 0, PT_HELLO_OK, &n);
    uint8_t *c = malloc(n + extra);
    cr_assert_not_null(c);
    memcpy(c, p, n);
    memcpy(c + n, tail, extra);
    pbuf_free(&b);
    cr_assert(proto_get_hello_ok(c, n + extra, h), "HELLO_OK with %zu appended bytes refused", extra);
    return c;
}

Test(frame, hello_ok_round_trip)
{
    struct proto_hello_ok h;
    uint8_t *c = decode_hello_ok_with("", 3, &h);
    cr_assert_eq(h.version, PROTO_VERSION);
    cr_assert(h.backend.len == 8 && memcmp(h.backend.p, "postgres", 8) == 0);
    cr_assert(h.server.len == 9 && memcmp(h.server.p, "dbpoold 1", 9) == 0);
    cr_assert_eq(h.max_frame, 65536);
    cr_assert_eq(h.max_params, 8);
    cr_assert_eq(h.max_batch_statements, 3);
    free(c);
}

Test(frame, hello_ok_from_an_older_daemon_has_no_batch_limit)
{
    struct proto_hello_ok h;
    uint8_t *c = dup_n(old_hello_ok, sizeof old_hello_ok);
    cr_assert(proto_get_hello_ok(c, sizeof old_hello_ok, &h));
    cr_assert_eq(h.max_params, 8);
    cr_assert_eq(h.max_batch_statements, 0, "0: not announced");
    free(c);
}

/* Fields a later revision appends are skipped, so HELLO_OK can grow. */
Test(frame, hello_ok_appended_fields_skipped)
{
    struct proto_hello_ok h;
    uint8_t *c = decode_hello_ok_with("later", 7, &h);
    cr_assert_eq(h.max_params, 8);
    cr_assert_eq(h.max_batch_statements, 7);
    free(c);
}

Test(reject, hello_ok_truncated_at_every_cut)
{
    struct pbuf b;
    uint32_t n;
    struct proto_hello_ok h;
    pbuf_init(&b);
    proto_put_hello_ok(&b, "sqlite", "dbpoold", 4096, 16, 7);
    const uint8_t *p = one_frame(&b, 0, PT_HELLO_OK, &n);
    /* Every cut before the end of max_params fails, and so does one that
     * ends inside max_batch_statements. */
    for (size_t cut = 0; cut < n; cut++) {
        if (cut == n - 2)
            continue;   /* the older daemon's form: accepted (test above) */
        uint8_t *c = dup_n(p, cut);
        cr_assert(!proto_get_hello_ok(c, cut, &h), "HELLO_OK cut at %zu of %u", cut, n);
        free(c);
    }
    pbuf_free(&b);
}

Test(frame, columns)
{
    struct pbuf b;
    uint32_t n;
    struct preader r;
    size_t len;
    const dbpool_column cols[3] = {
        { "id", "integer" }, { "name", "" }, { "t", NULL },
    };
    pbuf_init(&b);
    proto_put_columns(&b, 3, cols);
    const uint8_t *p = one_frame(&b, 0, PT_COLUMNS, &n);
    preader_init(&r, p, n);
    cr_assert_eq(preader_u16(&r), 3);
    for (size_t i = 0; i < 3; i++) {
        const char *s = preader_str(&r, &len);
        cr_assert(len == strlen(cols[i].name) && memcmp(s, cols[i].name, len) == 0);
        const char *want = cols[i].decl_type ? cols[i].decl_type : "";
        s = preader_str(&r, &len);
        cr_assert(len == strlen(want) && (len == 0 || memcmp(s, want, len) == 0));
    }
    cr_assert(preader_done(&r));
    pbuf_free(&b);
}

Test(frame, row)
{
    struct pbuf b;
    uint32_t n;
    struct preader r;
    dbpool_value vals[8], got;
    sample_params(vals);
    pbuf_init(&b);
    proto_put_row(&b, 8, vals);
    const uint8_t *p = one_frame(&b, 0, PT_ROW, &n);
    preader_init(&r, p, n);
    cr_assert_eq(preader_u16(&r), 8);
    for (size_t i = 0; i < 8; i++) {
        cr_assert(preader_value(&r, &got));
        cr_assert(value_eq(&got, &vals[i]));
    }
    cr_assert(preader_done(&r));
    pbuf_free(&b);
}

Test(frame, stmt_done)
{
    struct pbuf b;
    uint32_t n;
    struct preader r;
    pbuf_init(&b);
    proto_put_stmt_done(&b, -1, INT64_MAX);
    const uint8_t *p = one_frame(&b, 0, PT_STMT_DONE, &n);
    cr_assert_eq(n, 16);
    preader_init(&r, p, n);
    cr_assert_eq(preader_i64(&r), -1);
    cr_assert_eq(preader_i64(&r), INT64_MAX);
    cr_assert(preader_done(&r));
    pbuf_free(&b);
}

Test(frame, ready)
{
    struct pbuf b;
    uint32_t n;
    pbuf_init(&b);
    proto_put_ready(&b, DBPOOL_TX_ACTIVE);
    const uint8_t *p = one_frame(&b, 0, PT_READY, &n);
    cr_assert_eq(n, 1);
    cr_assert_eq(p[0], 'T');
    pbuf_free(&b);
}

Test(frame, error)
{
    struct pbuf b;
    uint32_t n;
    struct proto_error e;
    pbuf_init(&b);
    proto_put_error(&b, DBPOOL_E_SQL, "42P01", "relation \"x\" does not exist",
                    DBPOOL_TX_FAILED, 2, 0);
    const uint8_t *p = one_frame(&b, 0, PT_ERROR, &n);
    cr_assert(proto_get_error(p, n, &e));
    cr_assert_eq(e.code, DBPOOL_E_SQL);
    cr_assert(str_eq(e.sqlstate, "42P01"));
    cr_assert(str_eq(e.message, "relation \"x\" does not exist"));
    cr_assert_eq(e.txstate, 'E');
    cr_assert_eq(e.stmt_index, 2);
    cr_assert_eq(e.vendor_code, 0);
    pbuf_free(&b);
}

/* The vendor code travels as a signed 32-bit number at the end of the frame. */
Test(frame, error_vendor_code_round_trip)
{
    const int32_t codes[] = { 1062, 2067, 1, -1, INT32_MAX, INT32_MIN };
    struct pbuf b;
    uint32_t n;
    struct proto_error e;

    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        pbuf_init(&b);
        proto_put_error(&b, DBPOOL_E_SQL, "23000", "Duplicate entry '1' for key 'PRIMARY'",
                        DBPOOL_TX_ACTIVE, 4, codes[i]);
        const uint8_t *p = one_frame(&b, 0, PT_ERROR, &n);
        cr_assert(proto_get_error(p, n, &e), "vendor %d", codes[i]);
        cr_assert_eq(e.vendor_code, codes[i]);
        cr_assert_eq(e.stmt_index, 4);
        cr_assert_eq(e.txstate, 'T');
        cr_assert(str_eq(e.sqlstate, "23000"));
        const uint8_t tail[4] = { (uint8_t)((uint32_t)codes[i] >> 24),
                                  (uint8_t)((uint32_t)codes[i] >> 16),
                                  (uint8_t)((uint32_t)codes[i] >> 8), (uint8_t)codes[i] };
        cr_assert(memcmp(p + n - 4, tail, 4) == 0, "vendor_code is the last field, big-endian");
        pbuf_free(&b);
    }
}

/* An older daemon's ERROR ends after stmt_index (vendor code 0); a newer
 * one may append fields, which are skipped. A partial vendor code is
 * malformed. */
Test(frame, error_without_or_beyond_vendor_code)
{
    const uint8_t old[] = { 0, 5, 0, 0, 0, 0, 0, 0, 0, 1, 'm', 'I', 0, 0, 0, 7 };
    const uint8_t longer[] = { 0, 5, 0, 0, 0, 0, 0, 0, 0, 1, 'm', 'I', 0, 0, 0, 7,
                               0, 0, 4, 0x26, 9, 9, 9 };
    struct proto_error e;

    cr_assert(proto_get_error(old, sizeof old, &e));
    cr_assert_eq(e.stmt_index, 7);
    cr_assert_eq(e.vendor_code, 0);
    cr_assert(proto_get_error(longer, sizeof longer, &e));
    cr_assert_eq(e.stmt_index, 7);
    cr_assert_eq(e.vendor_code, 1062);
    for (size_t cut = sizeof old + 1; cut < sizeof old + 4; cut++)
        cr_assert(!proto_get_error(longer, cut, &e), "partial vendor code, %zu bytes", cut);
}

Test(frame, error_no_sqlstate_no_index)
{
    struct pbuf b;
    uint32_t n;
    struct proto_error e;
    pbuf_init(&b);
    proto_put_error(&b, DBPOOL_E_POOL_TIMEOUT, NULL, "timeout", DBPOOL_TX_IDLE, -1, 0);
    const uint8_t *p = one_frame(&b, 0, PT_ERROR, &n);
    cr_assert(proto_get_error(p, n, &e));
    cr_assert_eq(e.sqlstate.len, 0);
    cr_assert_eq(e.txstate, 'I');
    cr_assert_eq(e.stmt_index, -1);
    pbuf_free(&b);
}

Test(frame, error_bad_txstate_rejected)
{
    struct pbuf b;
    uint32_t n;
    struct proto_error e;
    pbuf_init(&b);
    proto_put_error(&b, 1, "", "m", 'X', -1, 0);
    const uint8_t *p = one_frame(&b, 0, PT_ERROR, &n);
    cr_assert(!proto_get_error(p, n, &e));
    pbuf_free(&b);
}

Test(frame, several_frames_in_one_buffer)
{
    struct pbuf b;
    uint8_t t;
    uint32_t n;
    const uint8_t types[] = { PT_HELLO, PT_PING, PT_QUERY, PT_COMMIT };
    pbuf_init(&b);
    proto_put_hello(&b, 1, "a", "b");
    proto_put_empty(&b, PT_PING);
    proto_put_query(&b, "x", 1, NULL, 0);
    proto_put_empty(&b, PT_COMMIT);
    size_t off = 0;
    for (size_t i = 0; i < sizeof types; i++) {
        cr_assert_eq(proto_peek_header(b.data + off, b.len - off, 1000, &t, &n), 1);
        cr_assert_eq(t, types[i]);
        off += PROTO_HEADER_SIZE + n;
    }
    cr_assert_eq(off, b.len);
    pbuf_free(&b);
}

Test(frame, type_names)
{
    cr_assert_str_eq(proto_type_name(PT_HELLO), "HELLO");
    cr_assert_str_eq(proto_type_name(PT_QUERY), "QUERY");
    cr_assert_str_eq(proto_type_name(PT_BATCH), "BATCH");
    cr_assert_str_eq(proto_type_name(PT_BEGIN), "BEGIN");
    cr_assert_str_eq(proto_type_name(PT_COMMIT), "COMMIT");
    cr_assert_str_eq(proto_type_name(PT_ROLLBACK), "ROLLBACK");
    cr_assert_str_eq(proto_type_name(PT_PING), "PING");
    cr_assert_str_eq(proto_type_name(PT_TERMINATE), "TERMINATE");
    cr_assert_str_eq(proto_type_name(PT_HELLO_OK), "HELLO_OK");
    cr_assert_str_eq(proto_type_name(PT_COLUMNS), "COLUMNS");
    cr_assert_str_eq(proto_type_name(PT_ROW), "ROW");
    cr_assert_str_eq(proto_type_name(PT_STMT_DONE), "STMT_DONE");
    cr_assert_str_eq(proto_type_name(PT_READY), "READY");
    cr_assert_str_eq(proto_type_name(PT_ERROR), "ERROR");
    cr_assert_str_eq(proto_type_name('?'), "unknown");
    cr_assert_str_eq(proto_type_name(0), "unknown");
}

/* ---- rejection of malformed payloads ---- */

Test(reject, query_truncated_at_every_cut)
{
    struct pbuf b;
    uint32_t n;
    const uint8_t *p = sample_query(&b, &n);
    cr_assert(query_ok(p, n, PROTO_DEFAULT_MAX_PARAMS));
    for (size_t cut = 0; cut < n; cut++)
        cr_assert(!query_ok(p, cut, PROTO_DEFAULT_MAX_PARAMS), "cut at %zu of %u", cut, n);
    pbuf_free(&b);
}

Test(reject, batch_truncated_at_every_cut)
{
    struct pbuf b;
    uint32_t n;
    const uint8_t *p = sample_batch(&b, &n);
    cr_assert(batch_ok(p, n, 100, 100));
    for (size_t cut = 0; cut < n; cut++)
        cr_assert(!batch_ok(p, cut, 100, 100), "cut at %zu of %u", cut, n);
    pbuf_free(&b);
}

Test(reject, hello_and_error_truncated_at_every_cut)
{
    struct pbuf b;
    uint32_t n;
    struct proto_hello h;
    struct proto_error e;
    pbuf_init(&b);
    proto_put_hello(&b, 1, "pool", "client");
    const uint8_t *p = one_frame(&b, 0, PT_HELLO, &n);
    for (size_t cut = 0; cut < n; cut++) {
        uint8_t *c = dup_n(p, cut);
        cr_assert(!proto_get_hello(c, cut, &h), "hello cut %zu", cut);
        free(c);
    }
    pbuf_reset(&b);
    proto_put_error(&b, 5, "23505", "duplicate", 'T', 0, 2067);
    p = one_frame(&b, 0, PT_ERROR, &n);
    for (size_t cut = 0; cut < n; cut++) {
        uint8_t *c = dup_n(p, cut);
        /* n - 4 is a whole frame of a daemon before vendor_code */
        cr_assert(proto_get_error(c, cut, &e) == (cut == n - 4), "error cut %zu", cut);
        free(c);
    }
    pbuf_free(&b);
}

Test(reject, trailing_garbage_byte)
{
    struct pbuf b;
    uint32_t n;
    uint8_t flags;
    struct proto_hello h;
    struct proto_error e;

    const uint8_t *p = sample_query(&b, &n);
    uint8_t *c = malloc(n + 1);
    memcpy(c, p, n);
    c[n] = 0;
    cr_assert(!query_ok(c, n + 1, PROTO_DEFAULT_MAX_PARAMS));
    free(c);
    pbuf_free(&b);

    p = sample_batch(&b, &n);
    c = malloc(n + 1);
    memcpy(c, p, n);
    c[n] = 0;
    cr_assert(!batch_ok(c, n + 1, 100, 100));
    free(c);
    pbuf_free(&b);

    const uint8_t hello[] = { 0, 1, 0, 0, 0, 1, 'p', 0, 0, 0, 0, 'x' };
    cr_assert(proto_get_hello(hello, sizeof hello - 1, &h));
    cr_assert(!proto_get_hello(hello, sizeof hello, &h));

    const uint8_t begin[] = { 1, 0 };
    cr_assert(!proto_get_begin(begin, sizeof begin, &flags));

    const uint8_t err[] = { 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 'I', 0xff, 0xff, 0xff, 0xff, 0 };
    cr_assert(proto_get_error(err, sizeof err - 1, &e));
    cr_assert_eq(e.stmt_index, -1);
    cr_assert(!proto_get_error(err, sizeof err, &e));
}

Test(reject, unknown_value_tag_in_query)
{
    /* str "x", nparams 1, tag 9 */
    const uint8_t q[] = { 0, 0, 0, 1, 'x', 0, 1, 9 };
    cr_assert(!query_ok(q, sizeof q, 10));
}

Test(reject, bool_byte_two_in_query)
{
    const uint8_t good[] = { 0, 0, 0, 1, 'x', 0, 1, DBPOOL_BOOL, 1 };
    const uint8_t bad[] = { 0, 0, 0, 1, 'x', 0, 1, DBPOOL_BOOL, 2 };
    cr_assert(query_ok(good, sizeof good, 10));
    cr_assert(!query_ok(bad, sizeof bad, 10));
}

Test(reject, bad_value_in_second_param_frees)
{
    /* First param decodes (and is allocated), second is bad. */
    const uint8_t q[] = { 0, 0, 0, 1, 'x', 0, 2, DBPOOL_NULL, 0x42 };
    cr_assert(!query_ok(q, sizeof q, 10));
}

Test(reject, nparams_above_max_params)
{
    struct pbuf b;
    uint32_t n;
    const uint8_t *p = sample_query(&b, &n);   /* 8 params */
    cr_assert(query_ok(p, n, 8));
    cr_assert(!query_ok(p, n, 7));
    cr_assert(!query_ok(p, n, 0));
    pbuf_free(&b);
}

Test(reject, huge_nparams_tiny_payload)
{
    /* 65535 params announced, 2 bytes of values: must fail before allocating. */
    const uint8_t q[] = { 0, 0, 0, 1, 'x', 0xff, 0xff, 0, 0 };
    cr_assert(!query_ok(q, sizeof q, UINT32_MAX));
    const uint8_t bq[] = { 0, 0, 1, 0, 0, 0, 0, 0xff, 0xff, 0 };
    cr_assert(!batch_ok(bq, sizeof bq, UINT32_MAX, UINT32_MAX));
}

Test(reject, batch_zero_statements)
{
    const uint8_t q[] = { 0, 0, 0 };
    cr_assert(!batch_ok(q, sizeof q, 10, 10));
}

Test(reject, batch_above_max_stmts)
{
    struct pbuf b;
    uint32_t n;
    const uint8_t *p = sample_batch(&b, &n);   /* 3 statements */
    cr_assert(batch_ok(p, n, 100, 3));
    cr_assert(!batch_ok(p, n, 100, 2));
    cr_assert(!batch_ok(p, n, 100, 0));
    pbuf_free(&b);
}

Test(reject, batch_statement_above_max_params)
{
    struct pbuf b;
    uint32_t n;
    const uint8_t *p = sample_batch(&b, &n);   /* first statement has 8 params */
    cr_assert(!batch_ok(p, n, 7, 100));
    pbuf_free(&b);
}

Test(reject, batch_huge_nstmts_tiny_payload)
{
    const uint8_t q[] = { 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0 };
    cr_assert(!batch_ok(q, sizeof q, 10, UINT32_MAX));
}

/* ---- pbuf ---- */

Test(pbuf, growth_across_many_puts)
{
    enum { N = 100000 };
    struct pbuf b;
    struct preader r;
    dbpool_value v;
    pbuf_init(&b);
    for (int64_t i = 0; i < N; i++) {
        v = (i % 3) ? dbpool_int(i) : dbpool_textn("abcdefg", (size_t)(i % 8));
        pbuf_put_value(&b, &v);
    }
    cr_assert(!b.oom);
    cr_assert_geq(b.cap, b.len);
    preader_init(&r, b.data, b.len);
    for (int64_t i = 0; i < N; i++) {
        cr_assert(preader_value(&r, &v));
        if (i % 3)
            cr_assert(v.type == DBPOOL_INT64 && v.u.i == i);
        else
            cr_assert(v.type == DBPOOL_TEXT && v.u.s.len == (size_t)(i % 8));
    }
    cr_assert(preader_done(&r));
    pbuf_free(&b);
    cr_assert_null(b.data);
    cr_assert_eq(b.len, 0);
}

Test(pbuf, large_row_frame)
{
    enum { N = 30000 };
    struct pbuf b;
    uint32_t n;
    struct preader r;
    dbpool_value *vals = calloc(N, sizeof *vals), v;
    for (size_t i = 0; i < N; i++)
        vals[i] = dbpool_float((double)i / 7);
    pbuf_init(&b);
    proto_put_row(&b, N, vals);
    const uint8_t *p = one_frame(&b, 0, PT_ROW, &n);
    cr_assert_eq(n, 2 + (uint32_t)N * 9);
    preader_init(&r, p, n);
    cr_assert_eq(preader_u16(&r), N);
    for (size_t i = 0; i < N; i++) {
        cr_assert(preader_value(&r, &v));
        cr_assert(value_eq(&v, &vals[i]));
    }
    cr_assert(preader_done(&r));
    free(vals);
    pbuf_free(&b);
}

Test(pbuf, row_frame_len_matches_encoding)
{
    dbpool_value vals[6] = { dbpool_null(), dbpool_int(-5), dbpool_float(2.5),
                             dbpool_text("h\xc3\xa9llo"), dbpool_blob("\0\1\2", 3),
                             dbpool_bool(true) };
    struct pbuf b;
    for (size_t n = 0; n <= 6; n++) {
        pbuf_init(&b);
        proto_put_row(&b, n, vals);
        cr_assert(!b.oom);
        cr_assert_eq(proto_row_frame_len(n, vals), b.len - 4, "%zu columns", n);
        pbuf_free(&b);
    }
}

/* ---- UTF-8 ---- */

struct utf8_case {
    const char *s;
    size_t len;
    size_t bad_at;      /* VALID: the whole string is valid */
};
#define VALID SIZE_MAX
#define U8(lit, at) { lit, sizeof(lit) - 1, (at) }

static const struct utf8_case utf8_cases[] = {
    U8("", VALID),
    U8("SELECT 1", VALID),
    U8("exactly8", VALID),
    U8("sixteen bytes!!!", VALID),
    U8("\x7f", VALID),
    U8("\xc2\x80", VALID),                     /* U+0080, smallest 2-byte */
    U8("\xdf\xbf", VALID),                     /* U+07FF */
    U8("\xe0\xa0\x80", VALID),                 /* U+0800, smallest 3-byte */
    U8("\xed\x9f\xbf", VALID),                 /* U+D7FF, below the surrogates */
    U8("\xee\x80\x80", VALID),                 /* U+E000, above them */
    U8("\xef\xbf\xbf", VALID),                 /* U+FFFF */
    U8("\xf0\x90\x80\x80", VALID),             /* U+10000, smallest 4-byte */
    U8("\xf4\x8f\xbf\xbf", VALID),             /* U+10FFFF, the largest */
    U8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 long ascii tail after it", VALID),
    U8("\x80", 0),                          /* lone continuation */
    U8("abcdefgh\xbf", 8),                  /* ... after an 8-byte ASCII block */
    U8("\xc0\x80", 0),                      /* overlong NUL */
    U8("\xc1\xbf", 0),                      /* overlong */
    U8("\xe0\x9f\xbf", 0),                  /* overlong 3-byte */
    U8("\xf0\x8f\xbf\xbf", 0),              /* overlong 4-byte */
    U8("\xed\xa0\x80", 0),                  /* surrogate U+D800 */
    U8("\xed\xbf\xbf", 0),                  /* surrogate U+DFFF */
    U8("\xf4\x90\x80\x80", 0),              /* U+110000 */
    U8("\xf5\x80\x80\x80", 0),
    U8("\xf8\x88\x80\x80\x80", 0),          /* 5-byte form */
    U8("\xfe", 0),
    U8("\xff", 0),
    U8("ab\xc3", 2),                        /* truncated at the end */
    U8("ab\xe2\x82", 2),
    U8("ab\xf0\x9f\x98", 2),
    U8("\xc3(", 0),                         /* bad continuation */
    U8("\xe2\x28\xa1", 0),
    U8("\xe2\x82\x28", 0),
    U8("\xf0\x9f\x98\x28", 0),
    U8("0123456789abcdef\xc3\xa9 tail \xff", 24),
};

Test(utf8, valid_and_invalid_sequences)
{
    for (size_t i = 0; i < sizeof(utf8_cases) / sizeof(utf8_cases[0]); i++) {
        const struct utf8_case *c = &utf8_cases[i];
        size_t want = c->bad_at == VALID ? c->len : c->bad_at;
        uint8_t *p = dup_n(c->s, c->len);
        cr_assert_eq(proto_utf8_check(p, c->len), want, "case %zu: got %zu, expected %zu",
                     i, proto_utf8_check(p, c->len), want);
        cr_assert_eq(proto_utf8_valid(p, c->len), c->bad_at == VALID, "case %zu", i);
        free(p);
    }
}

/* Every position of the 8-byte fast path: one bad byte anywhere in a long
 * ASCII string is found at its exact offset. */
Test(utf8, bad_byte_found_at_every_offset)
{
    char buf[40];
    for (size_t at = 0; at < sizeof(buf); at++) {
        memset(buf, 'a', sizeof(buf));
        buf[at] = (char)0xff;
        uint8_t *p = dup_n(buf, sizeof(buf));
        cr_assert_eq(proto_utf8_check(p, sizeof(buf)), at);
        free(p);
    }
}

/* Every code point round-trips through a simple encoder and is accepted,
 * except the surrogates. */
Test(utf8, every_code_point)
{
    for (uint32_t cp = 0; cp <= 0x10ffff; cp++) {
        uint8_t b[4];
        size_t n;
        if (cp < 0x80) {
            b[0] = (uint8_t)cp; n = 1;
        } else if (cp < 0x800) {
            b[0] = (uint8_t)(0xc0 | cp >> 6); b[1] = (uint8_t)(0x80 | (cp & 0x3f)); n = 2;
        } else if (cp < 0x10000) {
            b[0] = (uint8_t)(0xe0 | cp >> 12); b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
            b[2] = (uint8_t)(0x80 | (cp & 0x3f)); n = 3;
        } else {
            b[0] = (uint8_t)(0xf0 | cp >> 18); b[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
            b[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f)); b[3] = (uint8_t)(0x80 | (cp & 0x3f)); n = 4;
        }
        bool surrogate = cp >= 0xd800 && cp <= 0xdfff;
        if (proto_utf8_valid(b, n) == surrogate)
            cr_assert_fail("U+%04X %s", cp, surrogate ? "accepted" : "refused");
    }
}

Test(utf8, statement_names_sql_or_parameter)
{
    struct proto_utf8_error where;
    dbpool_value params[3] = { dbpool_text("ok \xc3\xa9"), dbpool_blob("\xff", 1),
                               dbpool_text("x\xffy") };
    struct proto_stmt st = { { "SELECT ?, ?, ?", 14 }, 3, params };
    cr_assert_not(proto_stmt_utf8_valid(&st, &where));
    cr_assert_eq(where.param, 2, "the BLOB is not text; the third parameter is the bad one");
    cr_assert_eq(where.offset, 1);
    cr_assert_eq(where.byte, 0xff);
    st.nparams = 2;
    cr_assert(proto_stmt_utf8_valid(&st, &where));
    st.sql = (struct proto_str){ "SELECT '\xe2\x82'", 11 };
    cr_assert_not(proto_stmt_utf8_valid(&st, &where));
    cr_assert_eq(where.param, -1);
    cr_assert_eq(where.offset, 8);
    cr_assert_eq(where.byte, 0xe2);
}

Test(pbuf, reset_keeps_memory)
{
    struct pbuf b;
    pbuf_init(&b);
    pbuf_put_u32(&b, 1);
    uint8_t *data = b.data;
    size_t cap = b.cap;
    pbuf_reset(&b);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(b.data, data);
    cr_assert_eq(b.cap, cap);
    pbuf_free(&b);
}

Test(pbuf, reserve_overflow_sets_oom_and_sticks)
{
    struct pbuf b;
    pbuf_init(&b);
    pbuf_put_u8(&b, 1);
    cr_assert(!pbuf_reserve(&b, SIZE_MAX));
    cr_assert(b.oom);
    size_t len = b.len;
    pbuf_put_u32(&b, 7);
    pbuf_put_cstr(&b, "more");
    cr_assert_eq(b.len, len, "puts after oom are no-ops");
    cr_assert(!pbuf_reserve(&b, 1));
    pbuf_free(&b);
}

Test(pbuf, too_many_params_sets_oom)
{
    size_t n = (size_t)UINT16_MAX + 1;
    dbpool_value *vals = calloc(n, sizeof *vals);
    struct pbuf b;
    pbuf_init(&b);
    proto_put_query(&b, "x", 1, vals, n - 1);
    cr_assert(!b.oom, "65535 params are encodable");
    pbuf_free(&b);
    pbuf_init(&b);
    proto_put_query(&b, "x", 1, vals, n);
    cr_assert(b.oom);
    pbuf_free(&b);
    pbuf_init(&b);
    proto_put_row(&b, n, vals);
    cr_assert(b.oom);
    pbuf_free(&b);
    free(vals);
}

Test(pbuf, too_many_batch_statements_sets_oom)
{
    size_t n = (size_t)UINT16_MAX + 1;
    dbpool_stmt *st = calloc(n, sizeof *st);
    struct pbuf b;
    pbuf_init(&b);
    proto_put_batch(&b, 0, st, n);
    cr_assert(b.oom);
    pbuf_free(&b);
    free(st);
}

Test(pbuf, too_long_string_sets_oom)
{
    if (SIZE_MAX <= UINT32_MAX)
        cr_skip_test("size_t is 32 bits");
    size_t huge = (size_t)UINT32_MAX + 1;
    struct pbuf b;
    /* Lengths are checked before any byte is read, so a small buffer is fine. */
    pbuf_init(&b);
    pbuf_put_str(&b, "x", huge);
    cr_assert(b.oom);
    pbuf_free(&b);
    pbuf_init(&b);
    dbpool_value v = dbpool_blob("x", huge);
    pbuf_put_value(&b, &v);
    cr_assert(b.oom);
    pbuf_free(&b);
    pbuf_init(&b);
    proto_put_query(&b, "x", huge, NULL, 0);
    cr_assert(b.oom);
    pbuf_free(&b);
}

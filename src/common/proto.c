/*
 * proto.c — the dbpoold wire format (protocol v1): the ONE encoder/decoder
 * shared by the daemon (src/daemon/client.c and friends) and libdbpool (src/lib/).
 * proto.h declares the API and documents the frame layouts; doc/protocol.md
 * is the specification.
 *
 * Encoding appends big-endian fields to a growable struct pbuf. Any failure
 * to encode (allocation failure, or a length/count too large for its wire
 * field) sets the sticky pbuf.oom flag; further puts are then no-ops and the
 * caller must treat the buffer as unusable.
 *
 * Decoding walks a complete frame payload with a struct preader whose reads
 * are all bounds-checked; the first problem sets the sticky preader.err flag
 * and every later read returns 0/NULL. Decoded strings and TEXT/BLOB values
 * point into the payload (zero copy). Counts read from the wire are checked
 * against the bytes actually remaining before anything is allocated, so a
 * garbage count cannot make us allocate large amounts of memory.
 */
#include "common/proto.h"

#include <stdlib.h>
#include <string.h>

/* Smallest encodings: a value is at least its tag byte; a statement is at
 * least an empty str (u32) plus its u16 parameter count. */
#define MIN_VALUE_SIZE 1u
#define MIN_STMT_SIZE 6u

/* ------------------------------------------------------------------ pbuf */

void pbuf_init(struct pbuf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->oom = false;
}

void pbuf_free(struct pbuf *b)
{
    free(b->data);
    pbuf_init(b);
}

void pbuf_reset(struct pbuf *b)
{
    b->len = 0;
    b->oom = false;
}

bool pbuf_reserve(struct pbuf *b, size_t extra)
{
    if (b->oom)
        return false;
    if (extra > SIZE_MAX - b->len) {
        b->oom = true;
        return false;
    }
    size_t need = b->len + extra;
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void pbuf_put_bytes(struct pbuf *b, const void *p, size_t n)
{
    if (!pbuf_reserve(b, n))
        return;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
}

void pbuf_put_u8(struct pbuf *b, uint8_t v)
{
    pbuf_put_bytes(b, &v, 1);
}

void pbuf_put_u16(struct pbuf *b, uint16_t v)
{
    uint8_t x[2] = { (uint8_t)(v >> 8), (uint8_t)v };
    pbuf_put_bytes(b, x, sizeof x);
}

void pbuf_put_u32(struct pbuf *b, uint32_t v)
{
    uint8_t x[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16),
                     (uint8_t)(v >> 8), (uint8_t)v };
    pbuf_put_bytes(b, x, sizeof x);
}

static void pbuf_put_u64(struct pbuf *b, uint64_t v)
{
    pbuf_put_u32(b, (uint32_t)(v >> 32));
    pbuf_put_u32(b, (uint32_t)v);
}

void pbuf_put_i32(struct pbuf *b, int32_t v)
{
    pbuf_put_u32(b, (uint32_t)v);
}

void pbuf_put_i64(struct pbuf *b, int64_t v)
{
    pbuf_put_u64(b, (uint64_t)v);
}

void pbuf_put_f64(struct pbuf *b, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    pbuf_put_u64(b, bits);
}

/* A str longer than UINT32_MAX cannot be encoded: oom is set. */
void pbuf_put_str(struct pbuf *b, const char *p, size_t n)
{
    if (n > UINT32_MAX) {
        b->oom = true;
        return;
    }
    pbuf_put_u32(b, (uint32_t)n);
    pbuf_put_bytes(b, p, n);
}

void pbuf_put_cstr(struct pbuf *b, const char *s)
{
    if (!s)
        s = "";
    pbuf_put_str(b, s, strlen(s));
}

/* An unknown type cannot be encoded either: oom is set. */
void pbuf_put_value(struct pbuf *b, const dbpool_value *v)
{
    switch (v->type) {
    case DBPOOL_NULL:
        pbuf_put_u8(b, DBPOOL_NULL);
        return;
    case DBPOOL_INT64:
        pbuf_put_u8(b, DBPOOL_INT64);
        pbuf_put_i64(b, v->u.i);
        return;
    case DBPOOL_FLOAT64:
        pbuf_put_u8(b, DBPOOL_FLOAT64);
        pbuf_put_f64(b, v->u.f);
        return;
    case DBPOOL_TEXT:
    case DBPOOL_BLOB:
        pbuf_put_u8(b, (uint8_t)v->type);
        pbuf_put_str(b, v->u.s.ptr, v->u.s.len);
        return;
    case DBPOOL_BOOL:
        pbuf_put_u8(b, DBPOOL_BOOL);
        pbuf_put_u8(b, v->u.b ? 1 : 0);
        return;
    }
    b->oom = true;
}

/* Counts on the wire are u16; a larger count cannot be encoded: oom is set.
 * Returns false in that case. */
static bool put_count16(struct pbuf *b, size_t n)
{
    if (n > UINT16_MAX) {
        b->oom = true;
        return false;
    }
    pbuf_put_u16(b, (uint16_t)n);
    return true;
}

static void put_values(struct pbuf *b, const dbpool_value *vals, size_t n)
{
    if (!put_count16(b, n))
        return;
    for (size_t i = 0; i < n && !b->oom; i++)
        pbuf_put_value(b, &vals[i]);
}

/* ---------------------------------------------------------------- frames */

size_t proto_frame_begin(struct pbuf *b, uint8_t type)
{
    size_t start = b->len;
    pbuf_put_u32(b, 0);
    pbuf_put_u8(b, type);
    return start;
}

/* A frame longer than UINT32_MAX cannot be encoded: oom is set. */
void proto_frame_end(struct pbuf *b, size_t start)
{
    if (b->oom || start > b->len || b->len - start < PROTO_HEADER_SIZE)
        return;
    size_t flen = b->len - start - 4;
    if (flen > UINT32_MAX) {
        b->oom = true;
        return;
    }
    uint8_t *p = b->data + start;
    p[0] = (uint8_t)(flen >> 24);
    p[1] = (uint8_t)(flen >> 16);
    p[2] = (uint8_t)(flen >> 8);
    p[3] = (uint8_t)flen;
}

void proto_put_hello(struct pbuf *b, uint16_t version, const char *pool,
                     const char *client_name)
{
    size_t f = proto_frame_begin(b, PT_HELLO);
    pbuf_put_u16(b, version);
    pbuf_put_cstr(b, pool);
    pbuf_put_cstr(b, client_name);
    proto_frame_end(b, f);
}

/* The statement body shared by QUERY and BATCH: str sql, u16 n, values.
 * More than 65535 parameters cannot be encoded: oom is set. */
static void put_stmt(struct pbuf *b, const char *sql, size_t sql_len,
                     const dbpool_value *params, size_t nparams)
{
    pbuf_put_str(b, sql ? sql : "", sql ? sql_len : 0);
    put_values(b, params, nparams);
}

void proto_put_query(struct pbuf *b, const char *sql, size_t sql_len,
                     const dbpool_value *params, size_t nparams)
{
    size_t f = proto_frame_begin(b, PT_QUERY);
    put_stmt(b, sql, sql_len, params, nparams);
    proto_frame_end(b, f);
}

/* More than 65535 statements cannot be encoded: oom is set. */
void proto_put_batch(struct pbuf *b, uint8_t flags, const dbpool_stmt *stmts, size_t n)
{
    size_t f = proto_frame_begin(b, PT_BATCH);
    pbuf_put_u8(b, flags);
    if (put_count16(b, n)) {
        for (size_t i = 0; i < n && !b->oom; i++) {
            const char *sql = stmts[i].sql;
            put_stmt(b, sql, sql ? strlen(sql) : 0, stmts[i].params, stmts[i].nparams);
        }
    }
    proto_frame_end(b, f);
}

void proto_put_begin(struct pbuf *b, uint8_t flags)
{
    size_t f = proto_frame_begin(b, PT_BEGIN);
    pbuf_put_u8(b, flags);
    proto_frame_end(b, f);
}

void proto_put_empty(struct pbuf *b, uint8_t type)
{
    size_t f = proto_frame_begin(b, type);
    proto_frame_end(b, f);
}

void proto_put_hello_ok(struct pbuf *b, const char *backend, const char *server,
                        uint32_t max_frame, uint16_t max_params, uint16_t max_batch_statements)
{
    size_t f = proto_frame_begin(b, PT_HELLO_OK);
    pbuf_put_u16(b, PROTO_VERSION);
    pbuf_put_cstr(b, backend);
    pbuf_put_cstr(b, server);
    pbuf_put_u32(b, max_frame);
    pbuf_put_u16(b, max_params);
    pbuf_put_u16(b, max_batch_statements);
    proto_frame_end(b, f);
}

/* More than 65535 columns cannot be encoded: oom is set. */
void proto_put_columns(struct pbuf *b, size_t ncols, const dbpool_column *cols)
{
    size_t f = proto_frame_begin(b, PT_COLUMNS);
    if (put_count16(b, ncols)) {
        for (size_t i = 0; i < ncols && !b->oom; i++) {
            pbuf_put_cstr(b, cols[i].name);
            pbuf_put_cstr(b, cols[i].decl_type);
        }
    }
    proto_frame_end(b, f);
}

/* More than 65535 values cannot be encoded: oom is set. */
void proto_put_row(struct pbuf *b, size_t ncols, const dbpool_value *vals)
{
    size_t f = proto_frame_begin(b, PT_ROW);
    put_values(b, vals, ncols);
    proto_frame_end(b, f);
}

/* Encoded size of one value: tag + body. */
static uint64_t value_size(const dbpool_value *v)
{
    switch (v->type) {
    case DBPOOL_INT64:
    case DBPOOL_FLOAT64:
        return 1 + 8;
    case DBPOOL_TEXT:
    case DBPOOL_BLOB:
        return 1 + 4 + (uint64_t)v->u.s.len;
    case DBPOOL_BOOL:
        return 1 + 1;
    default:
        return 1;
    }
}

uint64_t proto_row_frame_len(size_t ncols, const dbpool_value *vals)
{
    uint64_t n = 1 + 2;   /* type byte, u16 ncols */
    for (size_t i = 0; i < ncols; i++)
        n += value_size(&vals[i]);
    return n;
}

void proto_put_stmt_done(struct pbuf *b, int64_t affected, int64_t last_id)
{
    size_t f = proto_frame_begin(b, PT_STMT_DONE);
    pbuf_put_i64(b, affected);
    pbuf_put_i64(b, last_id);
    proto_frame_end(b, f);
}

void proto_put_ready(struct pbuf *b, char txstate)
{
    size_t f = proto_frame_begin(b, PT_READY);
    pbuf_put_u8(b, (uint8_t)txstate);
    proto_frame_end(b, f);
}

void proto_put_error(struct pbuf *b, uint16_t code, const char *sqlstate,
                     const char *message, char txstate, int32_t stmt_index,
                     int32_t vendor_code)
{
    size_t f = proto_frame_begin(b, PT_ERROR);
    pbuf_put_u16(b, code);
    pbuf_put_cstr(b, sqlstate);
    pbuf_put_cstr(b, message);
    pbuf_put_u8(b, (uint8_t)txstate);
    pbuf_put_i32(b, stmt_index);
    pbuf_put_i32(b, vendor_code);
    proto_frame_end(b, f);
}

/* ---------------------------------------------------------------- header */

int proto_peek_header(const uint8_t *p, size_t avail, uint32_t max_frame,
                      uint8_t *type, uint32_t *payload_len)
{
    if (avail < 4)
        return 0;
    uint32_t flen = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
                    (uint32_t)p[2] << 8 | (uint32_t)p[3];
    if (flen == 0 || flen > max_frame)
        return -1;
    if (avail < PROTO_HEADER_SIZE)
        return 0;
    *type = p[4];
    *payload_len = flen - 1;
    return 1;
}

/* --------------------------------------------------------------- preader */

void preader_init(struct preader *r, const void *p, size_t len)
{
    r->p = p;
    r->len = len;
    r->off = 0;
    r->err = false;
}

static size_t preader_left(const struct preader *r)
{
    return r->err ? 0 : r->len - r->off;
}

/* Returns a pointer to the next n bytes and consumes them, or NULL (and sets
 * err) when fewer remain. */
static const uint8_t *preader_take(struct preader *r, size_t n)
{
    if (r->err || n > r->len - r->off) {
        r->err = true;
        return NULL;
    }
    const uint8_t *q = r->p + r->off;
    r->off += n;
    return q;
}

uint8_t preader_u8(struct preader *r)
{
    const uint8_t *q = preader_take(r, 1);
    return q ? q[0] : 0;
}

uint16_t preader_u16(struct preader *r)
{
    const uint8_t *q = preader_take(r, 2);
    return q ? (uint16_t)(q[0] << 8 | q[1]) : 0;
}

uint32_t preader_u32(struct preader *r)
{
    const uint8_t *q = preader_take(r, 4);
    if (!q)
        return 0;
    return (uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 |
           (uint32_t)q[2] << 8 | (uint32_t)q[3];
}

static uint64_t preader_u64(struct preader *r)
{
    uint64_t hi = preader_u32(r);
    uint64_t lo = preader_u32(r);
    return r->err ? 0 : hi << 32 | lo;
}

int32_t preader_i32(struct preader *r)
{
    return (int32_t)preader_u32(r);
}

int64_t preader_i64(struct preader *r)
{
    return (int64_t)preader_u64(r);
}

double preader_f64(struct preader *r)
{
    uint64_t bits = preader_u64(r);
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

const char *preader_str(struct preader *r, size_t *len)
{
    uint32_t n = preader_u32(r);
    const uint8_t *q = preader_take(r, n);
    *len = q ? n : 0;
    return (const char *)q;
}

static bool read_value_body(struct preader *r, uint8_t tag, dbpool_value *v)
{
    uint8_t bv;
    switch (tag) {
    case DBPOOL_NULL:
        return true;
    case DBPOOL_INT64:
        v->u.i = preader_i64(r);
        return !r->err;
    case DBPOOL_FLOAT64:
        v->u.f = preader_f64(r);
        return !r->err;
    case DBPOOL_TEXT:
    case DBPOOL_BLOB:
        v->u.s.ptr = preader_str(r, &v->u.s.len);
        return !r->err;
    case DBPOOL_BOOL:
        bv = preader_u8(r);
        v->u.b = bv;
        return !r->err && bv <= 1;
    default:
        return false;
    }
}

bool preader_value(struct preader *r, dbpool_value *v)
{
    uint8_t tag = preader_u8(r);
    v->type = DBPOOL_NULL;
    v->u.i = 0;
    if (r->err)
        return false;
    if (!read_value_body(r, tag, v)) {
        r->err = true;
        v->type = DBPOOL_NULL;
        v->u.i = 0;
        return false;
    }
    v->type = (dbpool_type)tag;
    return true;
}

bool preader_done(const struct preader *r)
{
    return !r->err && r->off == r->len;
}

/* -------------------------------------------------------------- decoders */

static struct proto_str read_pstr(struct preader *r)
{
    struct proto_str s;
    s.p = preader_str(r, &s.len);
    return s;
}

/* Reads one statement (str sql, u16 nparams, values) into *st. On failure
 * sets r->err and leaves st->params NULL, st->nparams 0. */
static bool read_stmt(struct preader *r, uint32_t max_params, struct proto_stmt *st)
{
    st->sql = read_pstr(r);
    st->nparams = 0;
    st->params = NULL;
    uint16_t n = preader_u16(r);
    if (r->err || n > max_params || (size_t)n * MIN_VALUE_SIZE > preader_left(r)) {
        r->err = true;
        return false;
    }
    if (n == 0)
        return true;
    dbpool_value *vals = malloc((size_t)n * sizeof *vals);
    if (!vals) {
        r->err = true;
        return false;
    }
    for (uint16_t i = 0; i < n; i++) {
        if (!preader_value(r, &vals[i])) {
            free(vals);
            return false;
        }
    }
    st->params = vals;
    st->nparams = n;
    return true;
}

static void clear_stmt(struct proto_stmt *st)
{
    free(st->params);
    memset(st, 0, sizeof *st);
}

bool proto_get_hello(const void *payload, size_t len, struct proto_hello *out)
{
    struct preader r;
    preader_init(&r, payload, len);
    out->version = preader_u16(&r);
    out->pool = read_pstr(&r);
    out->client_name = read_pstr(&r);
    return preader_done(&r);
}

bool proto_get_query(const void *payload, size_t len, uint32_t max_params,
                     struct proto_stmt *out)
{
    struct preader r;
    preader_init(&r, payload, len);
    if (read_stmt(&r, max_params, out) && preader_done(&r))
        return true;
    clear_stmt(out);
    return false;
}

void proto_stmts_free(struct proto_stmt *stmts, size_t n)
{
    if (!stmts)
        return;
    for (size_t i = 0; i < n; i++)
        free(stmts[i].params);
    free(stmts);
}

/* Reads the u16 statement count of a batch and allocates the array, after
 * checking it against max_stmts and the bytes remaining. */
static struct proto_stmt *alloc_stmts(struct preader *r, uint32_t max_stmts, size_t *count)
{
    uint16_t n = preader_u16(r);
    if (r->err || n == 0 || n > max_stmts ||
        (size_t)n * MIN_STMT_SIZE > preader_left(r)) {
        r->err = true;
        return NULL;
    }
    struct proto_stmt *st = calloc(n, sizeof *st);
    if (!st)
        r->err = true;
    *count = n;
    return st;
}

bool proto_get_batch(const void *payload, size_t len, uint32_t max_params,
                     uint32_t max_stmts, uint8_t *flags,
                     struct proto_stmt **stmts, size_t *n)
{
    struct preader r;
    size_t count = 0;
    preader_init(&r, payload, len);
    *stmts = NULL;
    *n = 0;
    *flags = preader_u8(&r);
    struct proto_stmt *st = alloc_stmts(&r, max_stmts, &count);
    if (!st)
        return false;
    for (size_t i = 0; i < count; i++) {
        if (!read_stmt(&r, max_params, &st[i]))
            break;
    }
    if (!preader_done(&r)) {
        proto_stmts_free(st, count);
        return false;
    }
    *stmts = st;
    *n = count;
    return true;
}

bool proto_get_begin(const void *payload, size_t len, uint8_t *flags)
{
    struct preader r;
    preader_init(&r, payload, len);
    *flags = preader_u8(&r);
    return preader_done(&r);
}

static bool valid_txstate(uint8_t c)
{
    return c == DBPOOL_TX_IDLE || c == DBPOOL_TX_ACTIVE || c == DBPOOL_TX_FAILED;
}

bool proto_get_error(const void *payload, size_t len, struct proto_error *out)
{
    struct preader r;
    preader_init(&r, payload, len);
    out->code = preader_u16(&r);
    out->sqlstate = read_pstr(&r);
    out->message = read_pstr(&r);
    uint8_t tx = preader_u8(&r);
    out->txstate = (char)tx;
    out->stmt_index = preader_i32(&r);
    out->vendor_code = preader_left(&r) > 0 ? preader_i32(&r) : 0;
    return !r.err && valid_txstate(tx);   /* what a later revision appends is skipped */
}

/* ------------------------------------------------------------------ UTF-8 */

#define ASCII_MASK8 0x8080808080808080ull

/* Length of the well-formed multi-byte sequence at s (left bytes remain), or
 * 0 when it is not one. The second byte's range depends on the lead byte
 * (this excludes overlong forms, surrogates and code points > U+10FFFF). */
static size_t utf8_seq_len(const uint8_t *s, size_t left)
{
    uint8_t c = s[0], lo = 0x80, hi = 0xbf;
    size_t n;

    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80;
        hi = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 0;
    }
    if (left < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

/* Number of leading ASCII bytes of s[0..n), 8 at a time. */
static size_t ascii_run(const uint8_t *s, size_t n)
{
    size_t i = 0;

    for (; n - i >= 8; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        w &= ASCII_MASK8;
        if (w) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            return i + (size_t)__builtin_ctzll(w) / 8;   /* the first high bit's byte */
#else
            break;
#endif
        }
    }
    while (i < n && s[i] < 0x80)
        i++;
    return i;
}

size_t proto_utf8_check(const void *p, size_t n)
{
    const uint8_t *s = p;
    size_t i = 0;

    for (;;) {
        i += ascii_run(s + i, n - i);
        while (i < n && s[i] >= 0x80) {   /* a run of multi-byte characters */
            size_t k = utf8_seq_len(s + i, n - i);
            if (k == 0)
                return i;
            i += k;
        }
        if (i == n)
            return n;
    }
}

static bool utf8_where(const void *p, size_t n, int param, struct proto_utf8_error *where)
{
    size_t off = proto_utf8_check(p, n);

    if (off == n)
        return true;
    where->param = param;
    where->offset = off;
    where->byte = ((const uint8_t *)p)[off];
    return false;
}

bool proto_stmt_utf8_valid(const struct proto_stmt *st, struct proto_utf8_error *where)
{
    if (!utf8_where(st->sql.p, st->sql.len, -1, where))
        return false;
    for (uint16_t i = 0; i < st->nparams; i++) {
        const dbpool_value *v = &st->params[i];
        if (v->type == DBPOOL_TEXT && !utf8_where(v->u.s.ptr, v->u.s.len, i, where))
            return false;
    }
    return true;
}

/* ------------------------------------------------------------------ names */

const char *proto_type_name(uint8_t type)
{
    switch (type) {
    case PT_HELLO: return "HELLO";
    case PT_QUERY: return "QUERY";
    case PT_BATCH: return "BATCH";
    case PT_BEGIN: return "BEGIN";
    case PT_COMMIT: return "COMMIT";
    case PT_ROLLBACK: return "ROLLBACK";
    case PT_PING: return "PING";
    case PT_TERMINATE: return "TERMINATE";
    case PT_CANCEL: return "CANCEL";
    case PT_PIN: return "PIN";
    case PT_UNPIN: return "UNPIN";
    case PT_HELLO_OK: return "HELLO_OK";
    case PT_COLUMNS: return "COLUMNS";
    case PT_ROW: return "ROW";
    case PT_STMT_DONE: return "STMT_DONE";
    case PT_READY: return "READY";
    case PT_ERROR: return "ERROR";
    default: return "unknown";
    }
}

/* ---- daemon -> client frames ---- */

bool proto_get_hello_ok(const void *payload, size_t len, struct proto_hello_ok *out)
{
    struct preader r;
    preader_init(&r, payload, len);
    out->version = preader_u16(&r);
    out->backend = read_pstr(&r);
    out->server = read_pstr(&r);
    out->max_frame = preader_u32(&r);
    out->max_params = preader_u16(&r);
    out->max_batch_statements = preader_left(&r) > 0 ? preader_u16(&r) : 0;
    return !r.err;   /* what a later revision appends is skipped */
}

bool proto_get_columns(const void *payload, size_t len, struct proto_column **cols, size_t *n)
{
    struct preader r;
    preader_init(&r, payload, len);
    uint16_t count = preader_u16(&r);
    *cols = NULL;
    *n = 0;
    /* each column needs at least two 4-byte string lengths */
    if (r.err || (size_t)count * 8 > preader_left(&r))
        return false;
    struct proto_column *c = count ? calloc(count, sizeof(*c)) : NULL;
    if (count && !c)
        return false;
    for (size_t i = 0; i < count; i++) {
        c[i].name = read_pstr(&r);
        c[i].decl_type = read_pstr(&r);
    }
    if (!preader_done(&r)) {
        free(c);
        return false;
    }
    *cols = c;
    *n = count;
    return true;
}

bool proto_get_row(const void *payload, size_t len, size_t ncols, dbpool_value *vals)
{
    struct preader r;
    preader_init(&r, payload, len);
    if (preader_u16(&r) != ncols)
        return false;
    for (size_t i = 0; i < ncols; i++)
        if (!preader_value(&r, &vals[i]))
            return false;
    return preader_done(&r);
}

bool proto_get_stmt_done(const void *payload, size_t len, int64_t *affected, int64_t *last_id)
{
    struct preader r;
    preader_init(&r, payload, len);
    *affected = preader_i64(&r);
    *last_id = preader_i64(&r);
    return preader_done(&r);
}

bool proto_get_ready(const void *payload, size_t len, char *txstate)
{
    struct preader r;
    preader_init(&r, payload, len);
    uint8_t tx = preader_u8(&r);
    *txstate = (char)tx;
    return preader_done(&r) && valid_txstate(tx);
}

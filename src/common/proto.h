/*
 * proto.h — the dbpoold wire format (protocol v1), the ONE implementation
 * shared by the daemon and libdbpool. doc/protocol.md is the specification;
 * this file and proto.c must match it.
 *
 * A frame is: u32 length (big-endian; counts the type byte and the payload),
 * u8 type, payload. Integers are big-endian. A "str" is u32 length + bytes
 * (no NUL on the wire). A value is u8 tag (dbpool_type) + body.
 *
 * Encoding appends to a growable struct pbuf (the caller owns and frees it).
 * Decoding reads a complete frame payload with bounds checks; decoded strings
 * and TEXT/BLOB values point INTO the frame buffer (zero copy), so the frame
 * must outlive the decoded message.
 */
#ifndef DBPOOLD_PROTO_H
#define DBPOOLD_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dbpool.h"

#define PROTO_VERSION DBPOOL_PROTOCOL_VERSION
#define PROTO_HEADER_SIZE 5            /* u32 length + u8 type */
#define PROTO_DEFAULT_MAX_FRAME (16u * 1024 * 1024)
#define PROTO_DEFAULT_MAX_PARAMS 1024u

/* Frame types. Client -> daemon are upper case, daemon -> client lower. */
enum proto_type {
    PT_HELLO = 'H',      /* u16 version, str pool, str client_name */
    PT_QUERY = 'Q',      /* str sql, u16 nparams, value * nparams */
    PT_BATCH = 'B',      /* u8 flags (PB_ATOMIC), u16 nstmts, (str sql, u16 nparams, values) * n */
    PT_BEGIN = 'T',      /* u8 flags (PB_READ_ONLY) */
    PT_COMMIT = 'C',     /* empty */
    PT_ROLLBACK = 'R',   /* empty */
    PT_PING = 'P',       /* empty */
    PT_TERMINATE = 'X',  /* empty: polite goodbye */
    PT_CANCEL = 'K',     /* empty: cancel the running request (out of band, no reply) */
    PT_PIN = 'N',        /* empty: keep one server connection for this session (until UNPIN) */
    PT_UNPIN = 'U',      /* empty: give the pinned server connection back (it is reset) */

    PT_HELLO_OK = 'h',   /* u16 version, str backend type, str server name, u32 max_frame, u16 max_params,
                            u16 max_batch_statements (later fields may follow: ignored) */
    PT_COLUMNS = 'd',    /* u16 ncols, (str name, str decltype) * ncols */
    PT_ROW = 'r',        /* u16 ncols, value * ncols */
    PT_STMT_DONE = 's',  /* i64 rows_affected, i64 last_insert_id */
    PT_READY = 'z',      /* u8 txstate: the request succeeded */
    PT_ERROR = 'e',      /* u16 code, str sqlstate, str message, u8 txstate, i32 stmt_index (-1 if n/a),
                            i32 vendor_code (0 if none) */
};

#define PB_ATOMIC 0x01
#define PB_READ_ONLY 0x01

/* ---- growable output buffer ---- */
struct pbuf {
    uint8_t *data;
    size_t len;
    size_t cap;
    bool oom;           /* sticky: an allocation failed; the content is incomplete */
};

void pbuf_init(struct pbuf *b);
void pbuf_free(struct pbuf *b);
void pbuf_reset(struct pbuf *b);        /* len = 0, keeps memory */
bool pbuf_reserve(struct pbuf *b, size_t extra);
void pbuf_put_u8(struct pbuf *b, uint8_t v);
void pbuf_put_u16(struct pbuf *b, uint16_t v);
void pbuf_put_u32(struct pbuf *b, uint32_t v);
void pbuf_put_i32(struct pbuf *b, int32_t v);
void pbuf_put_i64(struct pbuf *b, int64_t v);
void pbuf_put_f64(struct pbuf *b, double v);
void pbuf_put_bytes(struct pbuf *b, const void *p, size_t n);
void pbuf_put_str(struct pbuf *b, const char *p, size_t n);
void pbuf_put_cstr(struct pbuf *b, const char *s);   /* NULL -> "" */
void pbuf_put_value(struct pbuf *b, const dbpool_value *v);

/* Frame building: begin writes a placeholder header, end patches the length.
 * Returns the frame's start offset for proto_frame_end. */
size_t proto_frame_begin(struct pbuf *b, uint8_t type);
void proto_frame_end(struct pbuf *b, size_t start);

/* Whole-frame encoders (append one frame to b). */
void proto_put_hello(struct pbuf *b, uint16_t version, const char *pool, const char *client_name);
void proto_put_query(struct pbuf *b, const char *sql, size_t sql_len,
                     const dbpool_value *params, size_t nparams);
void proto_put_batch(struct pbuf *b, uint8_t flags, const dbpool_stmt *stmts, size_t n);
void proto_put_begin(struct pbuf *b, uint8_t flags);
void proto_put_empty(struct pbuf *b, uint8_t type);   /* COMMIT, ROLLBACK, PING, TERMINATE, PIN, UNPIN */
void proto_put_hello_ok(struct pbuf *b, const char *backend, const char *server,
                        uint32_t max_frame, uint16_t max_params, uint16_t max_batch_statements);
void proto_put_columns(struct pbuf *b, size_t ncols, const dbpool_column *cols);
void proto_put_row(struct pbuf *b, size_t ncols, const dbpool_value *vals);
void proto_put_stmt_done(struct pbuf *b, int64_t affected, int64_t last_id);
void proto_put_ready(struct pbuf *b, char txstate);
void proto_put_error(struct pbuf *b, uint16_t code, const char *sqlstate,
                     const char *message, char txstate, int32_t stmt_index,
                     int32_t vendor_code);

/* Frame length (type byte + payload, the value of the length field) of the
 * ROW frame proto_put_row would encode, without encoding it: lets the daemon
 * refuse a row above maxFrameSize before copying a huge value. */
uint64_t proto_row_frame_len(size_t ncols, const dbpool_value *vals);

/* ---- frame header ----
 * Looks at the first bytes of a stream. Returns 1 with *type and *payload_len
 * set when a complete header is present (it does not check that the payload
 * has arrived), 0 when more bytes are needed, -1 when the length is invalid
 * (0, or larger than max_frame): a protocol violation. The length alone
 * decides: -1 comes as soon as its 4 bytes are there, before the type byte. */
int proto_peek_header(const uint8_t *p, size_t avail, uint32_t max_frame,
                      uint8_t *type, uint32_t *payload_len);

/* ---- decoding a payload ---- */
struct preader {
    const uint8_t *p;
    size_t len;
    size_t off;
    bool err;           /* sticky: read past the end or a malformed field */
};

void preader_init(struct preader *r, const void *p, size_t len);
uint8_t preader_u8(struct preader *r);
uint16_t preader_u16(struct preader *r);
uint32_t preader_u32(struct preader *r);
int32_t preader_i32(struct preader *r);
int64_t preader_i64(struct preader *r);
double preader_f64(struct preader *r);
/* Returns a pointer into the payload and its length; NOT NUL-terminated. */
const char *preader_str(struct preader *r, size_t *len);
bool preader_value(struct preader *r, dbpool_value *v);
/* True when the whole payload was consumed without error. */
bool preader_done(const struct preader *r);

/* Decoded messages. Pointers refer into the frame payload. */
struct proto_str { const char *p; size_t len; };

struct proto_hello {
    uint16_t version;
    struct proto_str pool;
    struct proto_str client_name;
};

struct proto_stmt {
    struct proto_str sql;
    uint16_t nparams;
    dbpool_value *params;      /* array owned by the caller (see decoders) */
};

struct proto_error {
    uint16_t code;
    struct proto_str sqlstate;
    struct proto_str message;
    char txstate;
    int32_t stmt_index;
    int32_t vendor_code;       /* 0 when the frame ends before it (an older daemon) */
};

/* Decoders return true on success. They fail on truncation, trailing bytes,
 * bad tags or counts above max_params. For statements the params array is
 * malloc'ed (caller frees with free(); NULL when nparams == 0). */
bool proto_get_hello(const void *payload, size_t len, struct proto_hello *out);
bool proto_get_query(const void *payload, size_t len, uint32_t max_params,
                     struct proto_stmt *out);
/* Batch: *stmts is malloc'ed with *n entries, each with its own params array;
 * free with proto_stmts_free. */
bool proto_get_batch(const void *payload, size_t len, uint32_t max_params,
                     uint32_t max_stmts, uint8_t *flags,
                     struct proto_stmt **stmts, size_t *n);
void proto_stmts_free(struct proto_stmt *stmts, size_t n);
bool proto_get_begin(const void *payload, size_t len, uint8_t *flags);
/* ERROR, like HELLO_OK, grows by appending: fields after vendor_code are
 * skipped, a frame that ends after stmt_index has vendor_code 0. */
bool proto_get_error(const void *payload, size_t len, struct proto_error *out);

/* Daemon -> client frames (used by libdbpool). */
struct proto_hello_ok {
    uint16_t version;
    struct proto_str backend;
    struct proto_str server;
    uint32_t max_frame;
    uint16_t max_params;
    uint16_t max_batch_statements;   /* 0: not announced (a daemon older than the field) */
};
struct proto_column {
    struct proto_str name;
    struct proto_str decl_type;
};
/* HELLO_OK may grow: fields appended after the ones known here are skipped,
 * and a frame ending after max_params (an older daemon) is accepted with
 * max_batch_statements 0. */
bool proto_get_hello_ok(const void *payload, size_t len, struct proto_hello_ok *out);
/* *cols is malloc'ed (NULL when ncols == 0); caller frees with free(). */
bool proto_get_columns(const void *payload, size_t len, struct proto_column **cols, size_t *n);
/* The row must have exactly ncols values; vals has room for ncols. */
bool proto_get_row(const void *payload, size_t len, size_t ncols, dbpool_value *vals);
bool proto_get_stmt_done(const void *payload, size_t len, int64_t *affected, int64_t *last_id);
bool proto_get_ready(const void *payload, size_t len, char *txstate);

/* ---- UTF-8 ----
 * SQL text, TEXT values and HELLO names are UTF-8 (doc/protocol.md): the
 * well-formed sequences of RFC 3629 (no overlong forms, no surrogates,
 * nothing above U+10FFFF). proto_utf8_check returns n when p[0..n) is valid,
 * else the offset of the first byte of the first invalid sequence. ASCII
 * runs are checked 8 bytes at a time (this runs on every statement). */
size_t proto_utf8_check(const void *p, size_t n);
static inline bool proto_utf8_valid(const void *p, size_t n)
{
    return proto_utf8_check(p, n) == n;
}

/* Where a statement breaks the UTF-8 rule: param is -1 for its SQL text,
 * else the index of the TEXT parameter; offset is the first invalid byte's. */
struct proto_utf8_error {
    int param;
    size_t offset;
    uint8_t byte;       /* the byte at offset */
};
/* True when the statement's SQL and TEXT parameters are valid UTF-8; else
 * false with *where filled in. BLOB parameters are bytes: not checked. */
bool proto_stmt_utf8_valid(const struct proto_stmt *st, struct proto_utf8_error *where);

const char *proto_type_name(uint8_t type);

#endif

/*
 * status_write.c — writing the status socket's responses (contract:
 * status_write.h): JSON values (strings escaped, invalid UTF-8 replaced)
 * and HTTP replies (a body, a JSON error). Shared by status.c and
 * status_reload.c.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "daemon/status_write.h"

/* ------------------------------------------------------------------------
 * JSON writing
 * ---------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence starting at s (1..4), or 0 if invalid. */
size_t utf8_seq_len(const unsigned char *s)
{
    size_t n;
    uint32_t cp;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        n = 2, cp = s[0] & 0x1f;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        n = 3, cp = s[0] & 0x0f;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        n = 4, cp = s[0] & 0x07;
    else
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;                    /* also stops at the NUL */
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;                        /* overlong, out of range, surrogate */
    return n;
}

/* Append s as a JSON string literal. Quotes, backslashes and control
 * characters are escaped; invalid UTF-8 bytes become U+FFFD. */
void json_str(struct evbuffer *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    evbuffer_add(b, "\"", 1);
    while (*p) {
        size_t n = utf8_seq_len(p);
        if (n == 0) {
            evbuffer_add(b, "\\ufffd", 6);
            p++;
        } else if (*p == '"' || *p == '\\') {
            evbuffer_add_printf(b, "\\%c", *p++);
        } else if (*p < 0x20 || *p == 0x7f) {
            evbuffer_add_printf(b, "\\u%04x", (unsigned)*p++);
        } else {
            evbuffer_add(b, p, n);
            p += n;
        }
    }
    evbuffer_add(b, "\"", 1);
}

/* A string, or null when s is NULL or empty. */
void json_str_or_null(struct evbuffer *b, const char *s)
{
    if (s && *s)
        json_str(b, s);
    else
        evbuffer_add(b, "null", 4);
}

const char *json_bool(bool v)
{
    return v ? "true" : "false";
}

/* Microseconds as milliseconds with exactly three decimals (no float). */
void json_us_as_ms(struct evbuffer *b, uint64_t us)
{
    evbuffer_add_printf(b, "%" PRIu64 ".%03" PRIu64, us / 1000, us % 1000);
}

/* ------------------------------------------------------------------------
 * Prometheus text
 * ---------------------------------------------------------------------- */

/* Append s as a label value: \ " and newline escaped, per the format;
 * invalid UTF-8 bytes become U+FFFD (the format requires UTF-8). */
void prom_label_value(struct evbuffer *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");

    evbuffer_add(b, "\"", 1);
    while (*p) {
        size_t n = utf8_seq_len(p);
        if (n == 0) {
            evbuffer_add(b, "\xef\xbf\xbd", 3);
            p++;
        } else if (*p == '\\' || *p == '"') {
            evbuffer_add_printf(b, "\\%c", *p++);
        } else if (*p == '\n') {
            evbuffer_add(b, "\\n", 2);
            p++;
        } else {
            evbuffer_add(b, p, n);
            p += n;
        }
    }
    evbuffer_add(b, "\"", 1);
}

/* ------------------------------------------------------------------------
 * Replies
 * ---------------------------------------------------------------------- */

void send_body(struct evhttp_request *req, int code, const char *reason,
                      const char *ctype, struct evbuffer *body)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);

    evhttp_add_header(h, "Content-Type", ctype);
    evhttp_add_header(h, "Cache-Control", "no-store");
    if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
        /* evhttp drops the body of a HEAD reply but would not announce its size. */
        char len[32];
        snprintf(len, sizeof(len), "%zu", evbuffer_get_length(body));
        evhttp_add_header(h, "Content-Length", len);
        evbuffer_drain(body, evbuffer_get_length(body));
    }
    evhttp_send_reply(req, code, reason, body);
}

/* A JSON error reply: {"error": msg}. */
void send_json_error(struct evhttp_request *req, int code, const char *reason,
                            const char *msg)
{
    struct evbuffer *b = evbuffer_new();

    if (!b) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    evbuffer_add(b, "{\"error\": ", 10);
    json_str(b, msg);
    evbuffer_add(b, "}\n", 2);
    send_body(req, code, reason, CT_JSON, b);
    evbuffer_free(b);
}

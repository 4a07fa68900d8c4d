/*
 * status_write.h — writing the status socket's responses: JSON values and
 * HTTP replies (status_write.c), for the endpoint files (status*.c).
 */
#ifndef DBPOOLD_STATUS_WRITE_H
#define DBPOOLD_STATUS_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct evhttp_request;

#define CT_JSON "application/json"

/* Length of the valid UTF-8 sequence starting at s (1..4), or 0 if invalid. */
size_t utf8_seq_len(const unsigned char *s);
/* Append s as a JSON string literal. Quotes, backslashes and control
 * characters are escaped; invalid UTF-8 bytes become U+FFFD. */
void json_str(struct evbuffer *b, const char *s);
/* A string, or null when s is NULL or empty. */
void json_str_or_null(struct evbuffer *b, const char *s);
const char *json_bool(bool v);
/* Microseconds as milliseconds with exactly three decimals (no float). */
void json_us_as_ms(struct evbuffer *b, uint64_t us);

/* Append s as a Prometheus label value, quoted: \ " and newline escaped;
 * invalid UTF-8 bytes become U+FFFD (the format requires UTF-8). */
void prom_label_value(struct evbuffer *b, const char *s);

/* Reply with body (of type ctype); a HEAD request gets the headers only. */
void send_body(struct evhttp_request *req, int code, const char *reason, const char *ctype,
               struct evbuffer *body);
/* A JSON error reply: {"error": msg}. */
void send_json_error(struct evhttp_request *req, int code, const char *reason, const char *msg);

#endif

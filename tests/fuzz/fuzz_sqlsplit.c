/*
 * fuzz_sqlsplit.c — libFuzzer target: the dbpool CLI's SQL splitter
 * (src/common/sqlsplit.c), in all four dialect combinations.
 *
 * Input: byte 0 selects the dialect flags (its low two bits:
 * SQLSPLIT_MYSQL, SQLSPLIT_POSTGRES); the rest is the script.
 *
 * Oracle, beyond ASan/UBSan: every statement lies inside the buffer, in
 * order and without overlap, is non-empty and trimmed of whitespace, and
 * carries the right line number; only the last one can be unclosed; a blank
 * buffer (sqlsplit_is_blank) yields no statement. And the interactive mode
 * agrees with the whole-script mode: cutting the script at
 * sqlsplit_complete_len() and splitting both parts separately gives the
 * same statements as splitting it whole, those of the first part all
 * terminated by ';' (the CLI runs the complete prefix and keeps the rest).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/sqlsplit.h"
#include "fuzz_util.h"

#define MAX_STMTS 4096

struct split {
    struct sqlsplit_stmt st[MAX_STMTS];
    size_t n;
};

static bool space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static unsigned line_at(const char *buf, size_t off)
{
    unsigned line = 1;

    for (size_t i = 0; i < off; i++)
        line += buf[i] == '\n';
    return line;
}

static void split(const char *buf, size_t len, unsigned flags, struct split *out)
{
    struct sqlsplit it;
    struct sqlsplit_stmt st;
    size_t prev_end = 0;

    out->n = 0;
    sqlsplit_init(&it, buf, len, flags);
    while (sqlsplit_next(&it, &st)) {
        if (out->n == MAX_STMTS || out->n > len)
            fuzz_fail("more statements than the input can hold");
        if (st.text != buf + st.offset || st.offset < prev_end || st.len == 0 ||
            st.offset + st.len > len)
            fuzz_fail("statement %zu at offset %zu (len %zu) is out of place", out->n, st.offset,
                      st.len);
        if (space(st.text[0]) || space(st.text[st.len - 1]))
            fuzz_fail("statement %zu is not trimmed", out->n);
        if (st.line != line_at(buf, st.offset))
            fuzz_fail("statement %zu says line %u, it starts on line %u", out->n, st.line,
                      line_at(buf, st.offset));
        if (out->n > 0 && out->st[out->n - 1].unclosed)
            fuzz_fail("an unclosed statement is followed by another");
        prev_end = st.offset + st.len;
        out->st[out->n++] = st;
    }
}

static void same_stmt(const struct sqlsplit_stmt *whole, const struct sqlsplit_stmt *part,
                      size_t shift, unsigned line_shift, size_t i)
{
    if (whole->offset != part->offset + shift || whole->len != part->len ||
        whole->line != part->line + line_shift || whole->terminated != part->terminated ||
        whole->unclosed != part->unclosed)
        fuzz_fail("statement %zu differs when the script is cut at its complete prefix "
                  "(offset %zu/%zu len %zu/%zu terminated %d/%d unclosed %d/%d)", i,
                  whole->offset, part->offset + shift, whole->len, part->len,
                  whole->terminated, part->terminated, whole->unclosed, part->unclosed);
}

static void check(const char *buf, size_t len, unsigned flags)
{
    static struct split whole, head, tail;
    size_t cut = sqlsplit_complete_len(buf, len, flags);

    split(buf, len, flags, &whole);
    if (sqlsplit_is_blank(buf, len, flags) && whole.n != 0)
        fuzz_fail("a blank buffer yields %zu statements", whole.n);
    if (cut > len || (cut > 0 && buf[cut - 1] != ';'))
        fuzz_fail("complete prefix length %zu does not end at a ';'", cut);
    split(buf, cut, flags, &head);
    split(buf + cut, len - cut, flags, &tail);
    if (head.n + tail.n != whole.n)
        fuzz_fail("%zu statements whole, %zu + %zu when cut at %zu", whole.n, head.n, tail.n, cut);
    for (size_t i = 0; i < head.n; i++) {
        if (!head.st[i].terminated || head.st[i].unclosed)
            fuzz_fail("statement %zu of the complete prefix is not terminated", i);
        same_stmt(&whole.st[i], &head.st[i], 0, 0, i);
    }
    unsigned lines = line_at(buf, cut) - 1;
    for (size_t i = 0; i < tail.n; i++)
        same_stmt(&whole.st[head.n + i], &tail.st[i], cut, lines, head.n + i);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    check((const char *)data + 1, size - 1, data[0] & (SQLSPLIT_MYSQL | SQLSPLIT_POSTGRES));
    return 0;
}

/*
 * sqlsplit.c — split a SQL script into statements (see sqlsplit.h).
 *
 * One scanner walks a statement character by character. Quotes, comments
 * and dollar quotes are skipped as whole tokens, so a ';' inside them never
 * ends a statement. Bare words feed a tiny keyword machine that recognises
 * the statements whose body is a BEGIN ... END block (CREATE TRIGGER and
 * friends) and tracks the block depth; a ';' ends the statement only at
 * depth 0. The scanner also records the span from the first to the last
 * token, which is the trimmed statement text.
 *
 * Everything here is pure computation over the caller's buffer: no
 * allocation, no global state.
 */
#include "common/sqlsplit.h"

#include <string.h>
#include <strings.h>

/* Where the current statement stands with respect to BEGIN ... END bodies. */
enum block_mode {
    BLOCK_UNDECIDED,    /* started with CREATE; waiting for the object kind */
    BLOCK_BEGIN_CHECK,  /* started with BEGIN; NOT (ATOMIC) makes it a block */
    BLOCK_NO,           /* ordinary statement: every ';' at top level ends it */
    BLOCK_YES,          /* body statement: ';' ends it only at depth 0 */
};

/* Scanner state for one statement. */
struct scanner {
    const char *p;
    size_t len;
    size_t i;               /* current position */
    unsigned flags;

    unsigned nwords;        /* bare words seen so far */
    enum block_mode block;
    int depth;              /* open BEGIN / CASE levels (BLOCK_YES only) */
    bool after_end;         /* previous token was an END that closed a level */
    char prev_sig;          /* last significant character before this token */

    bool have_token;
    size_t tok_start;       /* first token of the statement */
    size_t tok_end;         /* end of its last token */
    bool unclosed;          /* the input ended inside a token or a body */
    bool terminated;        /* stopped at a ';' */
    size_t semi;            /* position of that ';' (or len) */
};

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_ident_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static bool is_ident_char(unsigned char c)
{
    return is_ident_start(c) || (c >= '0' && c <= '9') || c == '$';
}

static unsigned char at(const struct scanner *s, size_t i)
{
    return i < s->len ? (unsigned char)s->p[i] : 0;
}

static bool word_is(const char *w, size_t n, const char *kw)
{
    return strlen(kw) == n && strncasecmp(w, kw, n) == 0;
}

static bool word_in(const char *w, size_t n, const char *const *list)
{
    for (; *list != NULL; list++)
        if (word_is(w, n, *list))
            return true;
    return false;
}

/* Remember that [start, end) is statement text. */
static void note_token(struct scanner *s, size_t start, size_t end)
{
    if (!s->have_token) {
        s->have_token = true;
        s->tok_start = start;
    }
    s->tok_end = end;
}

/* ---- skipping quotes and comments; each returns the position after it ---- */

static size_t skip_line_comment(const struct scanner *s, size_t i)
{
    while (i < s->len && s->p[i] != '\n')
        i++;
    return i < s->len ? i + 1 : i;
}

/* i is at the slash of slash-star. */
static size_t skip_block_comment(struct scanner *s, size_t i)
{
    bool nest = (s->flags & SQLSPLIT_POSTGRES) != 0;
    int level = 1;

    i += 2;
    while (i < s->len) {
        if (s->p[i] == '*' && at(s, i + 1) == '/') {
            i += 2;
            if (--level == 0)
                return i;
        } else if (nest && s->p[i] == '/' && at(s, i + 1) == '*') {
            level++;
            i += 2;
        } else {
            i++;
        }
    }
    s->unclosed = true;
    return i;
}

/* i is at the opening quote q; the quote doubled is an escape, and so is a
 * backslash when backslash is set. */
static size_t skip_quoted(struct scanner *s, size_t i, char q, bool backslash)
{
    i++;
    while (i < s->len) {
        char c = s->p[i];
        if (backslash && c == '\\') {
            i += 2;
        } else if (c == q) {
            if (at(s, i + 1) != (unsigned char)q)
                return i + 1;
            i += 2;
        } else {
            i++;
        }
    }
    s->unclosed = true;
    return s->len;
}

/* Length of a dollar-quote delimiter ($$ or $tag$) starting at i, or 0. */
static size_t dollar_tag_len(const struct scanner *s, size_t i)
{
    size_t j = i + 1;

    if (i > 0 && is_ident_char((unsigned char)s->p[i - 1]))
        return 0;                       /* part of an identifier like a$b */
    if (j < s->len && is_ident_start((unsigned char)s->p[j])) {
        while (j < s->len && is_ident_char((unsigned char)s->p[j]) && s->p[j] != '$')
            j++;
    }
    if (j < s->len && s->p[j] == '$')
        return j + 1 - i;
    return 0;                           /* $1 parameter or a lone $ */
}

static size_t skip_dollar_quoted(struct scanner *s, size_t i, size_t taglen)
{
    const char *tag = s->p + i;
    size_t j;

    for (j = i + taglen; j + taglen <= s->len; j++)
        if (s->p[j] == '$' && memcmp(s->p + j, tag, taglen) == 0)
            return j + taglen;
    s->unclosed = true;
    return s->len;
}

/* Does "--" at i start a comment? MySQL wants whitespace after it. */
static bool is_dash_comment(const struct scanner *s, size_t i)
{
    if (s->p[i] != '-' || at(s, i + 1) != '-')
        return false;
    if (!(s->flags & SQLSPLIT_MYSQL))
        return true;
    return i + 2 >= s->len || is_space((unsigned char)s->p[i + 2]);
}

/* Is the quote at i the start of a PostgreSQL E'...' string? */
static bool is_escape_string(const struct scanner *s, size_t i)
{
    if (i == 0 || (s->p[i - 1] != 'E' && s->p[i - 1] != 'e'))
        return false;
    return i == 1 || !is_ident_char((unsigned char)s->p[i - 2]);
}

/* ---- the keyword machine for BEGIN ... END bodies ---- */

static const char *const create_kinds[] = {
    "TRIGGER", "FUNCTION", "PROCEDURE", "EVENT", NULL
};
static const char *const create_modifiers[] = {
    "OR", "REPLACE", "TEMP", "TEMPORARY", "CONSTRAINT", "DEFINER",
    "CURRENT_USER", "AGGREGATE", NULL
};
/* END followed by one of these closes a construct that opened no level. */
static const char *const end_unleveled[] = {
    "IF", "LOOP", "WHILE", "REPEAT", "FOR", NULL
};

static void body_word(struct scanner *s, const char *w, size_t n)
{
    if (s->after_end) {
        s->after_end = false;
        if (word_in(w, n, end_unleveled)) {
            s->depth++;                 /* END IF: undo the END's decrement */
            return;
        }
        if (word_is(w, n, "CASE"))
            return;                     /* END CASE closes the CASE level */
    }
    if (word_is(w, n, "BEGIN") || word_is(w, n, "CASE")) {
        s->depth++;
    } else if (word_is(w, n, "END") && s->depth > 0) {
        s->depth--;
        s->after_end = true;
    }
}

static void on_word(struct scanner *s, const char *w, size_t n)
{
    unsigned idx = s->nwords++;

    if (idx == 0) {
        if (word_is(w, n, "CREATE"))
            s->block = BLOCK_UNDECIDED;
        else if (word_is(w, n, "BEGIN"))
            s->block = BLOCK_BEGIN_CHECK;
        else
            s->block = BLOCK_NO;
        return;
    }
    switch (s->block) {
    case BLOCK_UNDECIDED:
        if (word_in(w, n, create_kinds))
            s->block = BLOCK_YES;
        else if (!word_in(w, n, create_modifiers) && s->prev_sig != '='
                 && s->prev_sig != '@')
            s->block = BLOCK_NO;        /* DEFINER=user@host words are skipped */
        break;
    case BLOCK_BEGIN_CHECK:
        if (word_is(w, n, "NOT")) {     /* MariaDB BEGIN NOT ATOMIC ... END */
            s->block = BLOCK_YES;
            s->depth = 1;
        } else {
            s->block = BLOCK_NO;
        }
        break;
    case BLOCK_YES:
        body_word(s, w, n);
        break;
    case BLOCK_NO:
        break;
    }
}

/* ---- the statement scanner ---- */

/* A token that is not a bare word: record it and forget a pending END. */
static void other_token(struct scanner *s, size_t start, size_t end)
{
    note_token(s, start, end);
    s->after_end = false;
    s->prev_sig = s->p[start];
}

/* Handles the quote, comment or dollar quote at s->i, if there is one.
 * Returns true when it consumed something. */
static bool scan_skippable(struct scanner *s)
{
    size_t i = s->i, end, taglen;
    unsigned char c = (unsigned char)s->p[i];

    if (is_dash_comment(s, i) || (c == '#' && (s->flags & SQLSPLIT_MYSQL))) {
        s->i = skip_line_comment(s, i);
        return true;
    }
    if (c == '/' && at(s, i + 1) == '*') {
        unsigned char k = at(s, i + 2);
        s->i = skip_block_comment(s, i);
        if (k == '!' || k == '+')       /* MySQL executable comment / hint */
            other_token(s, i, s->i);
        return true;
    }
    if (c == '\'' || c == '"' || c == '`') {
        bool bs = c != '`' && ((s->flags & SQLSPLIT_MYSQL) || (c == '\'' && is_escape_string(s, i)));
        end = skip_quoted(s, i, (char)c, bs);
        other_token(s, i, end);
        s->i = end;
        return true;
    }
    if (c == '$' && (taglen = dollar_tag_len(s, i)) > 0) {
        end = skip_dollar_quoted(s, i, taglen);
        other_token(s, i, end);
        s->i = end;
        return true;
    }
    return false;
}

/* Scans from s->i to the end of the statement (a top-level ';' or the end
 * of the input). Afterwards s->i is just past the ';'. */
static void scan_statement(struct scanner *s)
{
    while (s->i < s->len) {
        unsigned char c = (unsigned char)s->p[s->i];

        if (is_space(c)) {
            s->i++;
        } else if (scan_skippable(s)) {
            continue;
        } else if (c == ';' && !(s->block == BLOCK_YES && s->depth > 0)) {
            s->terminated = true;
            s->semi = s->i++;
            return;
        } else if (is_ident_char(c) && c != '$') {
            size_t j = s->i;
            while (j < s->len && is_ident_char((unsigned char)s->p[j]))
                j++;
            if (is_ident_start(c))
                on_word(s, s->p + s->i, j - s->i);
            else
                s->after_end = false;   /* a number */
            note_token(s, s->i, j);
            s->prev_sig = 'a';
            s->i = j;
        } else {
            other_token(s, s->i, s->i + 1);
            s->i++;
        }
    }
    s->semi = s->len;
    if (s->block == BLOCK_YES && s->depth > 0)
        s->unclosed = true;
}

static void scanner_init(struct scanner *s, const char *buf, size_t len,
                         size_t pos, unsigned flags)
{
    memset(s, 0, sizeof *s);
    s->p = buf;
    s->len = len;
    s->i = pos;
    s->flags = flags;
    s->block = BLOCK_NO;
}

static unsigned count_lines(const char *p, size_t from, size_t to)
{
    unsigned n = 0;
    for (size_t i = from; i < to; i++)
        if (p[i] == '\n')
            n++;
    return n;
}

/* ---- public API ---- */

void sqlsplit_init(struct sqlsplit *it, const char *buf, size_t len, unsigned flags)
{
    it->buf = buf;
    it->len = buf != NULL ? len : 0;
    it->pos = 0;
    it->line = 1;
    it->flags = flags;
}

bool sqlsplit_next(struct sqlsplit *it, struct sqlsplit_stmt *out)
{
    while (it->pos < it->len) {
        struct scanner s;
        size_t start = it->pos, end;

        scanner_init(&s, it->buf, it->len, start, it->flags);
        scan_statement(&s);
        it->pos = s.i;
        if (!s.have_token) {
            it->line += count_lines(it->buf, start, s.i);
            continue;
        }
        end = s.tok_end;
        while (end > s.tok_start && is_space((unsigned char)it->buf[end - 1]))
            end--;                      /* unclosed tokens run to the end */
        out->text = it->buf + s.tok_start;
        out->len = end - s.tok_start;
        out->offset = s.tok_start;
        out->line = it->line + count_lines(it->buf, start, s.tok_start);
        out->terminated = s.terminated;
        out->unclosed = s.unclosed;
        it->line += count_lines(it->buf, start, s.i);
        return true;
    }
    return false;
}

size_t sqlsplit_complete_len(const char *buf, size_t len, unsigned flags)
{
    size_t pos = 0, complete = 0;

    while (buf != NULL && pos < len) {
        struct scanner s;
        scanner_init(&s, buf, len, pos, flags);
        scan_statement(&s);
        if (!s.terminated)
            break;
        pos = complete = s.i;
    }
    return complete;
}

bool sqlsplit_is_blank(const char *buf, size_t len, unsigned flags)
{
    size_t pos = 0;

    while (buf != NULL && pos < len) {
        struct scanner s;
        scanner_init(&s, buf, len, pos, flags);
        scan_statement(&s);
        if (s.have_token || s.unclosed)
            return false;
        pos = s.i;
    }
    return true;
}

unsigned sqlsplit_flags_for_backend(const char *backend)
{
    if (backend == NULL)
        return 0;
    if (strcmp(backend, "mysql") == 0 || strcmp(backend, "mariadb") == 0)
        return SQLSPLIT_MYSQL;
    if (strcmp(backend, "postgres") == 0 || strcmp(backend, "postgresql") == 0)
        return SQLSPLIT_POSTGRES;
    return 0;
}

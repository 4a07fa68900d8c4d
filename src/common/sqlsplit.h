/*
 * sqlsplit.h — split a SQL script into statements (shared by the dbpool CLI and dbpool-migrate).
 *
 * The daemon's QUERY frame carries exactly one statement, so a script read
 * from a file, from -c or typed interactively has to be cut at every ';'
 * that really ends a statement. The splitter is a small lexer, not a parser;
 * it knows just enough to find those semicolons:
 *
 *   - '...' strings with the '' escape; E'...' strings (PostgreSQL) also take
 *     backslash escapes; "..." and `...` quoted identifiers ("" and ``
 *     escapes);
 *   - -- line comments and block comments (nested under SQLSPLIT_POSTGRES);
 *     MySQL's executable comments (slash-star-bang, slash-star-plus) count as
 *     statement text, not as comments;
 *   - PostgreSQL dollar quoting: $$...$$ and $tag$...$tag$;
 *   - bodies of CREATE TRIGGER / FUNCTION / PROCEDURE / EVENT written as
 *     BEGIN ... END (SQLite and MySQL triggers, MySQL routines, PostgreSQL
 *     BEGIN ATOMIC ... END) and MariaDB's BEGIN NOT ATOMIC ... END blocks:
 *     semicolons inside the body do not end the statement. Inside such a body
 *     CASE ... END nests, and END IF / END LOOP / END WHILE / END REPEAT /
 *     END FOR close constructs that did not open a level.
 *
 * A statement is returned trimmed of surrounding whitespace and comments and
 * without its terminating ';'. Statements that hold nothing but whitespace
 * and comments are skipped. The last statement of a script needs no ';'. An
 * unterminated quote, comment or body makes the rest of the input one
 * statement (reported with unclosed = true; the database will reject it with
 * a proper message).
 *
 * No allocation: the splitter only points into the caller's buffer, which
 * must outlive the iterator and the statements it returns. There is no
 * global state; everything lives in struct sqlsplit.
 *
 * Typical use:
 *
 *     struct sqlsplit it;
 *     struct sqlsplit_stmt st;
 *     sqlsplit_init(&it, buf, len, sqlsplit_flags_for_backend("sqlite"));
 *     while (sqlsplit_next(&it, &st))
 *         run(st.text, st.len);
 *
 * Interactive use: append each input line to a buffer; when
 * sqlsplit_complete_len() is non-zero, run the statements in that prefix and
 * keep the rest; sqlsplit_is_blank() tells whether the rest still holds
 * anything (continuation prompt) or can be dropped.
 */
#ifndef DBPOOL_COMMON_SQLSPLIT_H
#define DBPOOL_COMMON_SQLSPLIT_H

#include <stdbool.h>
#include <stddef.h>

/* Dialect flags (combine with |; 0 is the common subset, fine for SQLite). */
#define SQLSPLIT_MYSQL    0x01u  /* backslash escapes in '...' and "...", # line
                                    comments, "--" needs a following space */
#define SQLSPLIT_POSTGRES 0x02u  /* block comments nest */

/* One statement. text points into the input buffer and is NOT NUL-terminated. */
struct sqlsplit_stmt {
    const char *text;
    size_t len;
    size_t offset;      /* text - start of the input buffer */
    unsigned line;      /* 1-based line of the statement's first character */
    bool terminated;    /* ended by ';' */
    bool unclosed;      /* input ended inside a quote, comment or BEGIN...END body */
};

/* Iterator state. Treat as opaque; initialise with sqlsplit_init. */
struct sqlsplit {
    const char *buf;
    size_t len;
    size_t pos;
    unsigned line;
    unsigned flags;
};

void sqlsplit_init(struct sqlsplit *it, const char *buf, size_t len, unsigned flags);

/* Stores the next non-empty statement in *out and returns true; returns
 * false at the end of the input. */
bool sqlsplit_next(struct sqlsplit *it, struct sqlsplit_stmt *out);

/* Length of the longest prefix of buf that consists of complete statements,
 * i.e. the offset just past the last statement-ending ';' (0 if none). */
size_t sqlsplit_complete_len(const char *buf, size_t len, unsigned flags);

/* True when buf holds no statement text (only whitespace, comments and
 * empty statements) and does not end inside an open comment or quote. */
bool sqlsplit_is_blank(const char *buf, size_t len, unsigned flags);

/* Dialect flags for a backend name as reported by dbpool_backend():
 * "mysql" -> SQLSPLIT_MYSQL, "postgres" -> SQLSPLIT_POSTGRES, else 0. */
unsigned sqlsplit_flags_for_backend(const char *backend);

#endif

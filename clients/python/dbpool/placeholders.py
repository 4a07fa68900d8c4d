"""placeholders.py — qmark (`?`) placeholders for PostgreSQL pools.

The module's paramstyle is "qmark" on every backend. SQLite and MySQL take
`?` as it is; PostgreSQL wants `$1`, `$2`, ... so on a postgres pool a
statement sent WITH parameters has its `?` rewritten, outside string
constants ('...', E'...' with backslash escapes), quoted names ("..."),
comments (-- and nested /* */) and dollar quotes ($$...$$, $tag$...$tag$).
`??` stands for a literal `?` (PostgreSQL's jsonb `?` operators). A
statement sent without parameters is never rewritten. Results are cached:
applications run the same few statements over and over.
"""

_CACHE_MAX = 512


def _skip_quoted(sql, i, quote, backslash):
    """Index after the quote that closes the one at sql[i]."""
    n = len(sql)
    i += 1
    while i < n:
        c = sql[i]
        if backslash and c == "\\":
            i += 2
            continue
        if c == quote:
            if i + 1 < n and sql[i + 1] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    return n


def _skip_block_comment(sql, i):
    n, depth = len(sql), 0
    while i < n:
        if sql.startswith("/*", i):
            depth += 1
            i += 2
        elif sql.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    return n


def _is_ident_char(c):
    return c.isalnum() or c == "_" or c == "$"


def _dollar_tag(sql, i):
    """The dollar-quote tag starting at sql[i] ('$$', '$x$'), or None."""
    if i > 0 and _is_ident_char(sql[i - 1]):
        return None                      # part of a name like a$b
    j = i + 1
    n = len(sql)
    if j < n and (sql[j].isalpha() or sql[j] == "_"):
        while j < n and (sql[j].isalnum() or sql[j] == "_"):
            j += 1
    if j < n and sql[j] == "$":
        return sql[i:j + 1]
    return None


def _skip_dollar(sql, i, tag):
    end = sql.find(tag, i + len(tag))
    return len(sql) if end < 0 else end + len(tag)


def _skip(sql, i):
    """If a quoted or commented region starts at sql[i], the index after it."""
    c = sql[i]
    if c == "'":
        backslash = i > 0 and sql[i - 1] in "eE" and (i < 2 or not _is_ident_char(sql[i - 2]))
        return _skip_quoted(sql, i, "'", backslash)
    if c == '"':
        return _skip_quoted(sql, i, '"', False)
    if c == "-" and sql.startswith("--", i):
        end = sql.find("\n", i)
        return len(sql) if end < 0 else end + 1
    if c == "/" and sql.startswith("/*", i):
        return _skip_block_comment(sql, i)
    if c == "$":
        tag = _dollar_tag(sql, i)
        if tag is not None:
            return _skip_dollar(sql, i, tag)
    return None


def to_numbered(sql):
    """Rewrites `?` as $1, $2, ...; returns (sql, placeholder count)."""
    out, n, i, start, count = [], len(sql), 0, 0, 0
    while i < n:
        c = sql[i]
        if c == "?":
            out.append(sql[start:i])
            if i + 1 < n and sql[i + 1] == "?":
                out.append("?")
                i += 2
            else:
                count += 1
                out.append("$%d" % count)
                i += 1
            start = i
            continue
        if c in "'\"-/$":
            after = _skip(sql, i)
            if after is not None:
                i = after
                continue
        i += 1
    out.append(sql[start:])
    return "".join(out), count


class Translator:
    """A bounded cache of to_numbered() results."""

    def __init__(self):
        self._cache = {}

    def __call__(self, sql):
        hit = self._cache.get(sql)
        if hit is None:
            hit = to_numbered(sql)[0]
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[sql] = hit
        return hit

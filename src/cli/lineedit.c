/*
 * lineedit.c — line editing, history and tab completion for the interactive
 * dbpool, through libedit's readline interface (lineedit.h). libedit keeps
 * its state in globals and calls the completer without a user pointer, so
 * the completion words live in this file's one table list.
 */
#include "cli/lineedit.h"
#include "cli/sbuf.h"

#include <editline/readline.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const meta_words[] = {
    "\\?", "\\d", "\\dt", "\\h", "\\i", "\\q", "\\timing", "\\x", NULL,
};

/* Table names for completion: replaced by le_set_tables. */
static struct {
    char **names;
    size_t n;
} tables;

static char history_path[4096];

static void find_history_path(void)
{
    const char *env = getenv("DBPOOL_HISTORY");
    const char *home = getenv("HOME");

    history_path[0] = '\0';
    if (env != NULL && env[0] != '\0')
        snprintf(history_path, sizeof history_path, "%s", env);
    else if (home != NULL && home[0] != '\0')
        snprintf(history_path, sizeof history_path, "%s/.dbpool_history", home);
}

/* rl_completion_matches' generator: the next word starting with text. */
static char *complete_word(const char *text, int state)
{
    static size_t i;
    size_t len = strlen(text);
    size_t nmeta = sizeof meta_words / sizeof meta_words[0] - 1;

    if (state == 0)
        i = 0;
    for (; i < nmeta + tables.n; i++) {
        const char *w = i < nmeta ? meta_words[i] : tables.names[i - nmeta];
        if ((text[0] == '\\') == (i < nmeta) && strncmp(w, text, len) == 0) {
            i++;
            return strdup(w);
        }
    }
    return NULL;
}

static char **complete(const char *text, int start, int end)
{
    (void)start;
    (void)end;
    rl_attempted_completion_over = 1;       /* never fall back to file names */
    return rl_completion_matches(text, complete_word);
}

void le_open(void)
{
    static char breaks[] = " \t\n\"'`@$><=;|&{(,";

    rl_readline_name = "dbpool";
    rl_basic_word_break_characters = breaks;
    rl_completer_word_break_characters = breaks;
    rl_attempted_completion_function = complete;
    rl_initialize();
    using_history();
    stifle_history(LE_HISTORY_MAX);
    find_history_path();
    if (history_path[0] != '\0')
        read_history(history_path);
}

char *le_read(const char *prompt)
{
    char *line = readline(prompt);

    if (line != NULL && line[strspn(line, " \t")] != '\0')
        add_history(line);
    return line;
}

/* Creates the history file readable by its owner only (statements may
 * hold secrets); an existing file keeps its mode. */
static void create_private(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

    if (fd >= 0)
        close(fd);
}

void le_close(void)
{
    if (history_path[0] != '\0')
        create_private(history_path);
    if (history_path[0] != '\0' && write_history(history_path) != 0)
        fprintf(stderr, "dbpool: warning: cannot save the history to %s "
                "(set DBPOOL_HISTORY to a writable file)\n", history_path);
    le_set_tables(NULL, 0);
}

void le_set_tables(char **names, size_t n)
{
    for (size_t i = 0; i < tables.n; i++)
        free(tables.names[i]);
    free(tables.names);
    tables.names = n > 0 ? xrealloc(NULL, n * sizeof *names) : NULL;
    for (size_t i = 0; i < n; i++)
        tables.names[i] = strdup(names[i]);
    tables.n = n;
}

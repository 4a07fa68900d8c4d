/*
 * lineedit.h — the terminal side of the interactive dbpool: line editing,
 * persistent history (~/.dbpool_history, $DBPOOL_HISTORY) and tab completion
 * of backslash commands and table names, through libedit. Used only when
 * stdin is a terminal; scripts and pipes never go through it.
 */
#ifndef DBPOOL_CLI_LINEEDIT_H
#define DBPOOL_CLI_LINEEDIT_H

#include <stddef.h>

/* Most lines kept in the history file. */
#define LE_HISTORY_MAX 1000

/* Sets up libedit and loads the history file. */
void le_open(void);
/* Reads one line with the prompt; malloc'd, without the newline; NULL at
 * end of input. Non-blank lines go into the history. */
char *le_read(const char *prompt);
/* Saves the history file (bounded to LE_HISTORY_MAX lines). */
void le_close(void);
/* Replaces the table names offered by tab completion (copied). */
void le_set_tables(char **names, size_t n);

#endif

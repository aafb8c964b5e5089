/* "Did you mean ...?": the closest known name to a misspelt one. */
#ifndef FL_SUGGEST_H
#define FL_SUGGEST_H

#include <stddef.h>

/* Levenshtein distance between a and b (names longer than 40 bytes count as far apart). */
size_t fl_edit_distance(const char *a, const char *b);
/* The closest of names (NULL-terminated) to s within edit distance 2, or NULL. */
const char *fl_suggest(const char *s, const char *const *names);

#endif

/* NULL-terminated string vectors (argv, envp): length, copy, free. */
#ifndef FL_STRV_H
#define FL_STRV_H

#include <stddef.h>

size_t fl_strv_len(char *const *v);
/* Deep copy of v with room for extra more entries (left NULL); NULL on FL_ENOMEM. */
char **fl_strv_dup(char *const *v, size_t extra);
void fl_strv_free(char **v);

#endif

/* String vectors (strv.h). */
#include "lib/strv.h"

#include <stdlib.h>
#include <string.h>

size_t fl_strv_len(char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

char **fl_strv_dup(char *const *v, size_t extra)
{
    size_t n = fl_strv_len(v);
    char **out = calloc(n + extra + 1, sizeof *out);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        out[i] = strdup(v[i]);
        if (!out[i]) {
            fl_strv_free(out);
            return NULL;
        }
    }
    return out;
}

void fl_strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

/* Messages for the FL_E* error table (err.h). */
#include "lib/err.h"

#include <string.h>
#include <uv.h>

static const char *const messages[] = {
#define FL_ERR_MSG(name, msg) msg,
    FL_ERRORS(FL_ERR_MSG)
#undef FL_ERR_MSG
};

const char *fl_strerror(int code)
{
    if (code == 0)
        return "success";
    if (code > FL_ERR_FIRST_ && code < FL_ERR_LAST_)
        return messages[code - FL_ERR_FIRST_ - 1];
    if (code < 0 && code > -4096)
        return uv_strerror(code); /* libuv codes are negated errno values */
    return "unknown error";
}

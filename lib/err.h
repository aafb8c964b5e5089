/* The one error table of faultline. Every function that can fail returns 0 or a negative
 * FL_E* code from this table; fl_strerror() gives its message. Codes are stable within a
 * build only: compare against the names, never against numbers. */
#ifndef FL_ERR_H
#define FL_ERR_H

#define FL_ERRORS(X)                                                                               \
    X(NOMEM, "out of memory")                                                                      \
    X(INVAL, "invalid argument")                                                                   \
    X(RANGE, "value out of range")                                                                 \
    X(AGAIN, "need more input")                                                                    \
    X(MALFORMED, "malformed input")                                                                \
    X(TOOBIG, "input too large")                                                                   \
    X(NOTFOUND, "not found")                                                                       \
    X(EXISTS, "already exists")                                                                    \
    X(STATE, "not allowed in the current state")                                                   \
    X(IO, "input/output error")                                                                    \
    X(ADDRINUSE, "no free address or port")                                                        \
    X(SPAWN, "cannot start process")                                                               \
    X(TIMEOUT, "timed out")                                                                        \
    X(CLOSED, "closed")                                                                            \
    X(SYNTAX, "syntax error")

enum {
    FL_OK = 0,
#define FL_ERR_ENUM(name, msg) FL_E##name,
    FL_ERR_FIRST_ = -10000,
    FL_ERRORS(FL_ERR_ENUM) FL_ERR_LAST_
#undef FL_ERR_ENUM
};

/* Message for an FL_E* code (or for a negative libuv/errno code, as a fallback). */
const char *fl_strerror(int code);

#endif

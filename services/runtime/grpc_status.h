/* gRPC status codes (doc/statuscodes.md), how HTTP/2 answers that are not gRPC map onto them
 * (doc/http-grpc-status-mapping.md, PROTOCOL-HTTP2.md "Errors"), and the percent-encoding of
 * grpc-message. Pure functions. */
#ifndef FL_GRPC_STATUS_H
#define FL_GRPC_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

#define FL_GRPC_CODES(X)                                                                           \
    X(OK, 0)                                                                                       \
    X(CANCELLED, 1)                                                                                \
    X(UNKNOWN, 2)                                                                                  \
    X(INVALID_ARGUMENT, 3)                                                                         \
    X(DEADLINE_EXCEEDED, 4)                                                                        \
    X(NOT_FOUND, 5)                                                                                \
    X(ALREADY_EXISTS, 6)                                                                           \
    X(PERMISSION_DENIED, 7)                                                                        \
    X(RESOURCE_EXHAUSTED, 8)                                                                       \
    X(FAILED_PRECONDITION, 9)                                                                      \
    X(ABORTED, 10)                                                                                 \
    X(OUT_OF_RANGE, 11)                                                                            \
    X(UNIMPLEMENTED, 12)                                                                           \
    X(INTERNAL, 13)                                                                                \
    X(UNAVAILABLE, 14)                                                                             \
    X(DATA_LOSS, 15)                                                                               \
    X(UNAUTHENTICATED, 16)

typedef enum {
#define FL_GRPC_CODE_ENUM(name, n) FL_GRPC_##name = n,
    FL_GRPC_CODES(FL_GRPC_CODE_ENUM)
#undef FL_GRPC_CODE_ENUM
} fl_grpc_code_t;

/* "UNAVAILABLE" for 14; "CODE_<n>" style is not used: codes outside 0..16 give "UNKNOWN". */
const char *fl_grpc_code_name(int code);
/* The code named name ("DEADLINE_EXCEEDED", case-sensitive) or its decimal number; -1 if
 * it is neither. */
int fl_grpc_code_parse_name(const char *name);

/* The code a client reports for a grpc-status header value: the number for "0".."16";
 * UNKNOWN for another number (a code this library does not know); INTERNAL for a value
 * that is not a decimal number at all (a broken peer). */
int fl_grpc_status_parse(const char *s, size_t len);

/* The code a client reports when an answer has HTTP status `http` and no grpc-status:
 * 400 INTERNAL, 401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 UNIMPLEMENTED, 429, 502,
 * 503 and 504 UNAVAILABLE, anything else UNKNOWN. */
int fl_grpc_code_from_http(int http);

/* The code a client reports for a stream reset with HTTP/2 error code h2 (RST_STREAM, or a
 * GOAWAY that covers the stream): REFUSED_STREAM UNAVAILABLE, CANCEL CANCELLED,
 * ENHANCE_YOUR_CALM RESOURCE_EXHAUSTED, INADEQUATE_SECURITY PERMISSION_DENIED, the others
 * INTERNAL. */
int fl_grpc_code_from_h2(uint32_t h2);

/* Appends msg to b percent-encoded as grpc-message wants: bytes outside ' '..'~', and '%'
 * itself, become "%XX" (upper-case hex); UTF-8 thus travels byte by byte. 0 or FL_ENOMEM. */
int fl_grpc_message_encode(fl_buf_t *b, const char *msg, size_t len);

/* Decodes a grpc-message into out (outlen bytes, NUL-terminated, truncated to fit): "%XX"
 * becomes the byte; a '%' not followed by two hex digits is kept as it is, as the spec asks
 * of receivers. Returns the decoded length (before truncation). */
size_t fl_grpc_message_decode(const char *s, size_t len, char *out, size_t outlen);

#endif

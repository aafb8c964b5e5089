/* gRPC message framing (PROTOCOL-HTTP2.md, "Length-Prefixed-Message"): every message on a
 * stream is a 1-byte Compressed-Flag, a 4-byte big-endian length and that many bytes. The
 * parser is a pure function over bytes (no I/O, no allocation), as lib/http's is, so it can be
 * tested and fuzzed alone. */
#ifndef FL_GRPC_FRAME_H
#define FL_GRPC_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FL_GRPC_FRAME_HEADER 5
#define FL_GRPC_DEFAULT_MAX_MESSAGE (4u * 1024 * 1024) /* gRPC's default receive limit */

typedef struct {
    int compressed;     /* the Compressed-Flag: 0 or 1 */
    uint32_t len;       /* the message's length, as the prefix says */
    const uint8_t *msg; /* the message itself, inside the parsed bytes */
} fl_grpc_frame_t;

/* Parses the header of the message at the start of p[0..len): fills f->compressed and
 * f->len (f->msg stays NULL). Returns 0; FL_EAGAIN (fewer than 5 bytes); FL_EMALFORMED (a
 * flag byte other than 0 or 1); FL_ETOOBIG (a length above max, f->len says how long). */
int fl_grpc_frame_parse_header(const uint8_t *p, size_t len, size_t max, fl_grpc_frame_t *f);

/* Parses the whole message at the start of p[0..len). Returns the bytes it takes
 * (5 + f->len, with f->msg pointing at the message), or what fl_grpc_frame_parse_header
 * returns, or FL_EAGAIN when the message is not all there yet. */
long fl_grpc_frame_parse(const uint8_t *p, size_t len, size_t max, fl_grpc_frame_t *f);

/* Writes the 5-byte prefix of a message of len bytes. */
void fl_grpc_frame_header(uint8_t out[FL_GRPC_FRAME_HEADER], int compressed, uint32_t len);

#endif

/* AMQP 0-9-1 wire format, as pure functions over bytes: frames, method arguments, field
 * tables (with RabbitMQ's type codes) and basic content properties. Nothing here does I/O or
 * allocates; decoders return pointers into the bytes they were given, so a fuzzer can drive
 * every one of them directly (tests/fuzz/fuzz_amqp_*). Encoders append to an fl_buf_t.
 *
 * A decoder that fails says why in the AMQP reply code a broker must answer with:
 * FL_AMQP_FRAME_ERROR (501) for a frame that breaks framing, FL_AMQP_SYNTAX_ERROR (502) for a
 * method or header whose fields do not parse, FL_AMQP_COMMAND_INVALID (503) for a method the
 * spec does not have. */
#ifndef FL_AMQP_CODEC_H
#define FL_AMQP_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

/* Reply codes (AMQP 0-9-1 spec, "constants"). */
enum {
    FL_AMQP_REPLY_SUCCESS = 200,
    FL_AMQP_CONTENT_TOO_LARGE = 311,
    FL_AMQP_NO_ROUTE = 312,
    FL_AMQP_NO_CONSUMERS = 313,
    FL_AMQP_CONNECTION_FORCED = 320,
    FL_AMQP_INVALID_PATH = 402,
    FL_AMQP_ACCESS_REFUSED = 403,
    FL_AMQP_NOT_FOUND = 404,
    FL_AMQP_RESOURCE_LOCKED = 405,
    FL_AMQP_PRECONDITION_FAILED = 406,
    FL_AMQP_FRAME_ERROR = 501,
    FL_AMQP_SYNTAX_ERROR = 502,
    FL_AMQP_COMMAND_INVALID = 503,
    FL_AMQP_CHANNEL_ERROR = 504,
    FL_AMQP_UNEXPECTED_FRAME = 505,
    FL_AMQP_RESOURCE_ERROR = 506,
    FL_AMQP_NOT_ALLOWED = 530,
    FL_AMQP_NOT_IMPLEMENTED = 540,
    FL_AMQP_INTERNAL_ERROR = 541,
};

/* "NOT_FOUND" for 404 and so on; "" for a code that is not a reply code. */
const char *fl_amqp_reply_name(int code);
/* Whether a reply code closes the whole connection (hard error) rather than a channel. */
int fl_amqp_reply_is_hard(int code);

enum {
    FL_AMQP_FRAME_METHOD = 1,
    FL_AMQP_FRAME_HEADER = 2,
    FL_AMQP_FRAME_BODY = 3,
    FL_AMQP_FRAME_HEARTBEAT = 8
};
#define FL_AMQP_FRAME_END 0xCE
#define FL_AMQP_FRAME_MIN 4096 /* frame_max may not be negotiated lower */

/* The protocol header "AMQP\0\0\x09\x01"; what a server answers to any other. */
extern const uint8_t fl_amqp_protocol_header[8];
/* Checks the first bytes a client sends. Returns 8 (a good header), FL_EAGAIN (fewer than 8
 * bytes, all matching so far) or FL_EMALFORMED (anything else: answer with the header and
 * close). */
int fl_amqp_header_check(const uint8_t *p, size_t len);

/* The headers of AMQP 0-9 ("AMQP\1\1\0\9") and 0-8 ("AMQP\1\1\8\0"), which RabbitMQ still
 * greets with connection.start (versions 0-9 and 8-0). Returns 1 (0-9), 2 (0-8), 0 (neither)
 * or FL_EAGAIN (fewer than 8 bytes, matching one so far). */
int fl_amqp_header_legacy(const uint8_t *p, size_t len);

typedef struct {
    uint8_t type;
    uint16_t channel;
    const uint8_t *payload;
    uint32_t size;
} fl_amqp_frame_t;

/* Parses one frame from p. frame_max bounds the whole frame (0: no bound but the format's).
 * Returns the bytes the frame took (> 0) and fills *f; FL_EAGAIN when more bytes are needed
 * (never because of a huge announced size: a size above frame_max fails at once, before its
 * payload arrives); or -FL_AMQP_FRAME_ERROR (as the negative reply code) for an unknown frame
 * type, an oversize frame or a missing frame-end octet. */
long fl_amqp_frame_parse(const uint8_t *p, size_t len, uint32_t frame_max, fl_amqp_frame_t *f);

/* Method arguments are described by a signature, one letter per field:
 *   o octet, s short, l long, L long-long (and timestamp), S short string, X long string,
 *   b bit (consecutive bits share octets), T field table.
 * A decoded argument is a number or a byte range inside the frame. */
typedef struct {
    uint64_t u;
    const uint8_t *p; /* S, X, T: the bytes (for T, the table's contents) */
    uint32_t len;
} fl_amqp_arg_t;

#define FL_AMQP_MAX_ARGS 12

typedef struct {
    uint16_t class_id, method_id;
    const char *name; /* "basic.publish" */
    const char *sig;
    int has_content; /* followed by a content header and bodies */
} fl_amqp_method_spec_t;

/* The spec of (class, method), or NULL for one AMQP 0-9-1 (with RabbitMQ's extensions) does
 * not define. */
const fl_amqp_method_spec_t *fl_amqp_method_find(uint16_t class_id, uint16_t method_id);

typedef struct {
    const fl_amqp_method_spec_t *spec;
    uint16_t class_id, method_id;
    int nargs;
    fl_amqp_arg_t args[FL_AMQP_MAX_ARGS];
} fl_amqp_method_t;

/* Decodes a method frame's payload. Returns 0; -FL_AMQP_COMMAND_INVALID for an unknown method
 * (class_id and method_id are still filled); -FL_AMQP_SYNTAX_ERROR for fields that run past
 * the payload, a table that does not parse, or bytes left over. */
int fl_amqp_method_decode(const uint8_t *p, size_t len, fl_amqp_method_t *m);

/* Appends one method frame on channel: the arguments as the method's signature says, passed
 * as varargs: o/s/b → int, l → uint32_t, L → uint64_t, S → const char *, X and T → a pointer
 * and a size_t length (T: a table's contents as fl_amqp_table_* builds them). Returns 0,
 * FL_EINVAL (unknown method, a short string over 255 bytes) or FL_ENOMEM. */
int fl_amqp_method_frame(fl_buf_t *out, uint16_t channel, uint16_t class_id, unsigned method_id,
                         ...);
/* A heartbeat frame. */
int fl_amqp_heartbeat_frame(fl_buf_t *out);
/* A content header frame for class 60 with body_size, and props (encoded property flags and
 * list, as a header frame carries them after the size). */
int fl_amqp_header_frame(fl_buf_t *out, uint16_t channel, uint64_t body_size, const uint8_t *props,
                         size_t props_len);
/* Body frames for body, each at most frame_max bytes long in all. */
int fl_amqp_body_frames(fl_buf_t *out, uint16_t channel, const uint8_t *body, size_t len,
                        uint32_t frame_max);

/* basic.deliver, its content header and its body frames, exactly as fl_amqp_method_frame,
 * fl_amqp_header_frame and fl_amqp_body_frames would append them, in one pass with one
 * reservation: what every delivery to a consumer costs. Returns 0, FL_EINVAL (a short string
 * over 255 bytes) or FL_ENOMEM; on failure out is unchanged. */
int fl_amqp_deliver_frames(fl_buf_t *out, uint16_t channel, const char *ctag, uint64_t tag,
                           int redelivered, const char *exchange, const char *rkey,
                           const uint8_t *props, size_t props_len, const uint8_t *body,
                           size_t body_len, uint32_t frame_max);

/* Field tables. A table is a sequence of (short string name, type octet, value). */
typedef struct {
    char type;        /* RabbitMQ's code: t b B s u I i l f d D S x A T F V */
    int64_t i;        /* t b B s u I i l T, and D's value */
    uint8_t scale;    /* D */
    double d;         /* f d */
    const uint8_t *p; /* S x: bytes; A: array contents; F: table contents */
    uint32_t len;
} fl_amqp_value_t;

/* Validates a table's contents (the bytes after its length): every field well formed, nested
 * tables and arrays too (to a bounded depth). Returns 0 or FL_EMALFORMED. */
int fl_amqp_table_check(const uint8_t *p, size_t len);
/* Walks a validated table: *off starts at 0; fills name/value and returns 1, or 0 at the end,
 * or FL_EMALFORMED. */
int fl_amqp_table_next(const uint8_t *p, size_t len, size_t *off, const uint8_t **name,
                       uint8_t *name_len, fl_amqp_value_t *v);
/* Walks an array's contents the same way (values without names). */
int fl_amqp_array_next(const uint8_t *p, size_t len, size_t *off, fl_amqp_value_t *v);
/* Finds field name in a validated table. Returns 1 and fills *v, or 0. */
int fl_amqp_table_get(const uint8_t *p, size_t len, const char *name, fl_amqp_value_t *v);
/* Whether two values are equal, in type and content (tables and arrays bytewise). */
int fl_amqp_value_equal(const fl_amqp_value_t *a, const fl_amqp_value_t *b);
/* Whether v is an integer type (b B s u I i l L T); sets *out. */
int fl_amqp_value_int(const fl_amqp_value_t *v, int64_t *out);

/* Building tables: begin returns the offset of the length word; fields append; end patches
 * the length. Each returns 0 or FL_ENOMEM. */
size_t fl_amqp_table_begin(fl_buf_t *b);
int fl_amqp_table_end(fl_buf_t *b, size_t start);
int fl_amqp_put_shortstr(fl_buf_t *b, const char *s, size_t len);
int fl_amqp_put_longstr(fl_buf_t *b, const void *s, size_t len);
int fl_amqp_put_u8(fl_buf_t *b, uint8_t v);
int fl_amqp_put_u16(fl_buf_t *b, uint16_t v);
int fl_amqp_put_u32(fl_buf_t *b, uint32_t v);
int fl_amqp_put_u64(fl_buf_t *b, uint64_t v);
/* A field: name, then 'S' + long string / 't' + bool / 'l' + int64 / 'F' + table bytes. */
int fl_amqp_field_str(fl_buf_t *b, const char *name, const char *value);
int fl_amqp_field_bool(fl_buf_t *b, const char *name, int value);
int fl_amqp_field_long(fl_buf_t *b, const char *name, int64_t value);
int fl_amqp_field_raw(fl_buf_t *b, const char *name, char type, const void *p, size_t len);

/* Basic content properties, in the order of their flag bits (bit 15 first). */
enum {
    FL_AMQP_P_CONTENT_TYPE,
    FL_AMQP_P_CONTENT_ENCODING,
    FL_AMQP_P_HEADERS,
    FL_AMQP_P_DELIVERY_MODE,
    FL_AMQP_P_PRIORITY,
    FL_AMQP_P_CORRELATION_ID,
    FL_AMQP_P_REPLY_TO,
    FL_AMQP_P_EXPIRATION,
    FL_AMQP_P_MESSAGE_ID,
    FL_AMQP_P_TIMESTAMP,
    FL_AMQP_P_TYPE,
    FL_AMQP_P_USER_ID,
    FL_AMQP_P_APP_ID,
    FL_AMQP_P_CLUSTER_ID,
    FL_AMQP_P_COUNT
};

typedef struct {
    uint16_t flags; /* as on the wire: bit 15 - i set when property i is present */
    fl_amqp_arg_t v[FL_AMQP_P_COUNT];
} fl_amqp_props_t;

#define FL_AMQP_HAS(pr, i) (((pr)->flags >> (15 - (i))) & 1)

/* A content header frame's payload: class, weight, body size, then properties (their bytes
 * start at *props_off). Returns 0, -FL_AMQP_SYNTAX_ERROR (short, bad table, property flag
 * continuation, which no AMQP 0-9-1 class uses) or -FL_AMQP_FRAME_ERROR (weight not 0). */
int fl_amqp_header_decode(const uint8_t *p, size_t len, uint16_t *class_id, uint64_t *body_size,
                          fl_amqp_props_t *props, size_t *props_off);
/* Properties alone (flags then values), as fl_amqp_header_decode finds them at *props_off.
 * Returns 0 or -FL_AMQP_SYNTAX_ERROR. */
int fl_amqp_props_decode(const uint8_t *p, size_t len, fl_amqp_props_t *props);
/* Appends properties as a header frame carries them (flags then values). */
int fl_amqp_props_encode(fl_buf_t *out, const fl_amqp_props_t *props);

#endif

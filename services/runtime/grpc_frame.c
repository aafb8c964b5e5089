/* gRPC length-prefixed message framing (grpc_frame.h). */
#include "services/runtime/grpc_frame.h"

#include "lib/err.h"

int fl_grpc_frame_parse_header(const uint8_t *p, size_t len, size_t max, fl_grpc_frame_t *f)
{
    f->compressed = 0;
    f->len = 0;
    f->msg = NULL;
    if (len < 1)
        return FL_EAGAIN;
    if (p[0] > 1) /* the flag is 0 or 1; every other value is reserved */
        return FL_EMALFORMED;
    if (len < FL_GRPC_FRAME_HEADER)
        return FL_EAGAIN;
    f->compressed = p[0];
    f->len = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
    if (f->len > max)
        return FL_ETOOBIG;
    return 0;
}

long fl_grpc_frame_parse(const uint8_t *p, size_t len, size_t max, fl_grpc_frame_t *f)
{
    int rc = fl_grpc_frame_parse_header(p, len, max, f);
    if (rc)
        return rc;
    if (len - FL_GRPC_FRAME_HEADER < f->len)
        return FL_EAGAIN;
    f->msg = p + FL_GRPC_FRAME_HEADER;
    return (long)(FL_GRPC_FRAME_HEADER + (size_t)f->len);
}

void fl_grpc_frame_header(uint8_t out[FL_GRPC_FRAME_HEADER], int compressed, uint32_t len)
{
    out[0] = compressed ? 1 : 0;
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
}

/* Fuzzes the pure parts of services/runtime's gRPC wire handling, which read bytes straight
 * from the network: the length-prefix parser (grpc_frame), grpc-timeout (grpc_timeout),
 * grpc-status and grpc-message (grpc_status). The first input byte picks the parser, the
 * rest is its input. Checked properties: a frame parse never claims more bytes than given,
 * and agrees with the header parse; a parsed timeout formats to a value that parses back no
 * shorter; a grpc-message decodes to at most its own length, and encoding the decoded bytes
 * then decoding again gives them back unchanged. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "services/runtime/grpc_frame.h"
#include "services/runtime/grpc_status.h"
#include "services/runtime/grpc_timeout.h"

static void frame(const uint8_t *p, size_t n)
{
    fl_grpc_frame_t f, h;
    size_t max = n ? p[0] * 7u : 0; /* limits around the lengths small inputs carry */
    long rc = fl_grpc_frame_parse(p, n, max, &f);
    int hrc = fl_grpc_frame_parse_header(p, n, max, &h);
    if (rc > 0) {
        if ((size_t)rc > n || (size_t)rc != FL_GRPC_FRAME_HEADER + f.len || hrc != 0 ||
            f.msg != p + FL_GRPC_FRAME_HEADER || f.len > max)
            abort();
    } else if (rc != FL_EAGAIN && rc != FL_EMALFORMED && rc != FL_ETOOBIG) {
        abort();
    } else if (rc != FL_EAGAIN && rc != hrc) {
        abort();
    }
}

static void timeout(const uint8_t *p, size_t n)
{
    uint64_t ns, back;
    if (fl_grpc_timeout_parse((const char *)p, n, &ns))
        return;
    char out[FL_GRPC_TIMEOUT_MAX];
    size_t len = fl_grpc_timeout_format(ns, out);
    if (len >= FL_GRPC_TIMEOUT_MAX || fl_grpc_timeout_parse(out, len, &back) || back < ns)
        abort();
}

static void message(const uint8_t *p, size_t n)
{
    char *once = malloc(n + 1), *twice = malloc(n + 1);
    if (!once || !twice)
        goto done;
    size_t len = fl_grpc_message_decode((const char *)p, n, once, n + 1);
    if (len > n)
        abort();
    fl_buf_t enc = FL_BUF_INIT;
    if (fl_grpc_message_encode(&enc, once, len))
        goto done;
    size_t len2 = fl_grpc_message_decode(enc.data ? enc.data : "", enc.len, twice, n + 1);
    if (len2 != len || memcmp(once, twice, len) != 0)
        abort();
    for (size_t i = 0; i < enc.len; i++) /* the wire form is printable ASCII only */
        if (enc.data[i] < ' ' || enc.data[i] > '~')
            abort();
    fl_buf_free(&enc);
    int code = fl_grpc_status_parse((const char *)p, n);
    if (code < 0 || code > 16)
        abort();
done:
    free(once);
    free(twice);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    switch (data[0] % 3) {
    case 0:
        frame(data + 1, size - 1);
        break;
    case 1:
        timeout(data + 1, size - 1);
        break;
    default:
        message(data + 1, size - 1);
        break;
    }
    return 0;
}

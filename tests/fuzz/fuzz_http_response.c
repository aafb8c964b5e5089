/* Fuzzes the HTTP/1.1 response parser and the chunked decoder (lib/http.c): the head is
 * parsed, and whatever follows is run through the chunked decoder in pieces whose sizes
 * come from the input, so every split point is tried. Exact-size copies let ASan see
 * over-reads. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)data[0] % 17 + 1; /* piece size for the decoder */
    data++;
    size--;
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    fl_http_response_t res;
    int n = fl_http_parse_response(buf, size, 16384, &res);
    if (n > 0 && (size_t)n > size)
        abort();
    size_t body = n > 0 ? (size_t)n : 0;
    fl_http_chunked_t st;
    fl_http_chunked_init(&st, 1 << 20);
    size_t out = body; /* decoded bytes are moved down to here */
    for (size_t at = body; at < size;) {
        size_t piece = size - at < step ? size - at : step;
        char *p = malloc(piece);
        if (!p)
            break;
        memcpy(p, buf + at, piece);
        size_t len = piece;
        int rc = fl_http_chunked_decode(&st, p, &len);
        if (len > piece || (rc >= 0 && len + (size_t)rc > piece))
            abort();
        memcpy(buf + out, p, len);
        out += len;
        free(p);
        at += piece;
        if (rc != FL_EAGAIN)
            break;
    }
    free(buf);
    return 0;
}

/* Fuzzes the HTTP/1.1 request parser (lib/http.c) with every byte string: it must never
 * read outside the buffer, and what it accepts must be self-consistent. The input is copied
 * into a buffer of its exact size so that ASan sees any over-read. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    fl_http_request_t req;
    int n = fl_http_parse_request(buf, size, 16384, &req);
    if (n > 0) {
        if ((size_t)n > size || req.nheaders > FL_HTTP_MAX_HEADERS || !req.method_len ||
            !req.target_len || (req.chunked && req.content_length >= 0))
            abort();
        for (size_t i = 0; i < req.nheaders; i++) {
            const fl_http_header_t *h = &req.headers[i];
            if (h->name < buf || h->name + h->name_len > buf + n || h->value < buf ||
                h->value + h->value_len > buf + n)
                abort();
        }
        /* a prefix of an accepted head is never accepted with more bytes */
        fl_http_request_t again;
        if (fl_http_parse_request(buf, (size_t)n - 1, 16384, &again) > 0)
            abort();
    } else if (n != FL_EAGAIN && n != FL_EMALFORMED && n != FL_ETOOBIG) {
        abort();
    }
    free(buf);
    return 0;
}

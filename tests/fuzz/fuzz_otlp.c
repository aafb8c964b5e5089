/* Fuzzes the OTLP trace decoders (harness/otlp_decode.c) with every byte string: protobuf and
 * JSON (chosen by the first byte). They must never read outside the buffer nor past their
 * bounds, and what they return must be self-consistent. The input is copied into a buffer of
 * its exact size so that ASan sees any over-read. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness/otlp_decode.h"
#include "lib/err.h"

#define MAXSPANS 8
#define MAXATTRS 16

static int inside(fl_otlp_str_t s, const char *buf, size_t size)
{
    return s.n == 0 || (s.p >= buf && s.p + s.n <= buf + size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    int json = data[0] & 1;
    data++, size--;
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    fl_otlp_span_t spans[MAXSPANS];
    fl_otlp_attr_t attrs[MAXATTRS];
    fl_otlp_out_t out = {
        .spans = spans, .maxspans = MAXSPANS, .attrs = attrs, .maxattrs = MAXATTRS};
    void *keep = NULL;
    int rc =
        json ? fl_otlp_decode_json(buf, size, &out, &keep) : fl_otlp_decode_pb(buf, size, &out);
    if (rc != 0 && rc != FL_EMALFORMED && rc != FL_ENOMEM)
        abort();
    if (rc == FL_EMALFORMED && !out.reason)
        abort();
    if (rc == 0) {
        if (out.nspans > MAXSPANS || out.nattrs > MAXATTRS || (out.rejected && !out.reason))
            abort();
        for (size_t i = 0; i < out.nspans; i++) {
            const fl_otlp_span_t *s = &out.spans[i];
            if (s->attr0 + s->nattrs > out.nattrs || s->kind > FL_SPAN_CONSUMER ||
                s->status > FL_STATUS_ERROR)
                abort();
            if (!json && (!inside(s->name, buf, size) || !inside(s->service, buf, size) ||
                          !inside(s->status_message, buf, size)))
                abort();
            for (size_t a = s->attr0; a < s->attr0 + s->nattrs; a++)
                if (!json &&
                    (!inside(attrs[a].key, buf, size) ||
                     (attrs[a].type == FL_OTLP_V_STRING && !inside(attrs[a].s, buf, size))))
                    abort();
        }
    }
    fl_otlp_json_free(keep);
    free(buf);
    return 0;
}

/* Fuzzes the fake Consul's port of Go's time.ParseDuration and Duration.String
 * (fakes/consul/gojson.c), which read check intervals, timeouts, TTLs and ?wait. The input is
 * the duration text (up to its first NUL). A parse either fails with Go's "time: ..." message
 * or succeeds silently, and whatever it gives survives the round trip exactly:
 * ParseDuration(String(d)) == d, as in Go. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakes/consul/internal.h" /* go_parse_duration is the fake's own */
#include "lib/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    fl_buf_t err = FL_BUF_INIT;
    long long ns = 0x5a5a5a5a;
    int rc = go_parse_duration(s, &ns, &err);
    if (rc == 0 && err.len)
        abort();
    if (rc != 0 &&
        (rc != -1 || !err.data || strncmp(err.data, "time: ", 6) != 0 || ns != 0x5a5a5a5a))
        abort();
    if (rc == 0) {
        char text[40];
        long long again = 0;
        go_duration_string(ns, text);
        if (strlen(text) >= sizeof text || go_parse_duration(text, &again, NULL) != 0 ||
            again != ns) {
            fprintf(stderr, "round trip: \"%s\" -> %lld -> \"%s\" -> %lld\n", s, ns, text, again);
            abort();
        }
    }
    fl_buf_free(&err);
    free(s);
    return 0;
}

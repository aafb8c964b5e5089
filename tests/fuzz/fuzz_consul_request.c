/* Fuzzes the fake Consul's whole request path (fakes/consul): method, target and body in;
 * routing, query parameters, path decoding, JSON decoding, the handlers, the catalog and the
 * renderers; the answer out. Requests go through fl_consul_serve, the agent's own entry point
 * without a socket. An input is up to 8 requests separated by NUL bytes, each
 * "METHOD TARGET\nBODY", run in order against a fresh catalog with two agents (node-1, and
 * node-2 whose answers are rewritten), so that writes are followed by the reads that render
 * what they stored. Every answer must be well formed (consulfz.h). The body is copied into a
 * buffer of its exact size so that ASan sees any over-read. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/consulfz.h"

#define MAX_REQUESTS 8

static fz_t fz;

/* Splits one record into method, target and body (in place: rec is a writable copy). */
static void run_record(char *rec, size_t len)
{
    char *nl = memchr(rec, '\n', len);
    size_t head = nl ? (size_t)(nl - rec) : len;
    rec[head] = '\0';
    char *sp = strchr(rec, ' ');
    const char *method = "GET", *target = rec;
    if (sp) {
        *sp = '\0';
        method = rec;
        target = sp + 1;
    }
    size_t blen = nl ? len - head - 1 : 0;
    char *body = malloc(blen ? blen : 1);
    if (!body)
        return;
    memcpy(body, rec + head + (nl ? 1 : 0), blen);
    /* node-1 asks, except for targets starting with "//", which node-2 asks (as "/...") */
    int other = strncmp(target, "//", 2) == 0;
    fz_request(&fz, other ? FZ_OTHER : FZ_NODE, method, target + other, body, blen);
    free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size + 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    fz_open(&fz);
    char *p = copy, *end = copy + size;
    for (int n = 0; n < MAX_REQUESTS && p <= end; n++) {
        char *nul = memchr(p, '\0', (size_t)(end - p) + 1); /* copy[size] is one */
        run_record(p, (size_t)(nul - p));
        p = nul + 1;
    }
    fz_close(&fz);
    free(copy);
    return 0;
}

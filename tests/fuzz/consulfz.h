/* What the fake Consul's fuzz targets share: a fresh catalog per input on one loop, requests
 * served with fl_consul_serve (no sockets: the agents are added while the catalog is down, so
 * they never listen), and the checks every answer must pass. A failed check aborts, which
 * libFuzzer reports as a crash with the input that caused it. */
#ifndef FL_FUZZ_CONSULFZ_H
#define FL_FUZZ_CONSULFZ_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "fakes/consul/consul.h"

#define FZ_NODE "node-1"
#define FZ_OTHER "node-2"

typedef struct {
    uv_loop_t loop;
    fl_consul_t *c;
    int closed;
} fz_t;

/* node-2 is told every instance at 10.0.0.2, one port up: its answers go through the rewrite. */
static inline int fz_rewrite(void *arg, const char *node, const char *addr, int port,
                             char *out_addr, size_t out_len, int *out_port)
{
    (void)arg;
    (void)addr;
    if (strcmp(node, FZ_OTHER) != 0)
        return 0;
    snprintf(out_addr, out_len, "10.0.0.2");
    *out_port = port + 1;
    return 1;
}

static inline void fz_fail(const char *what, const char *method, const char *target,
                           const fl_consul_answer_t *a)
{
    fprintf(stderr, "consul fuzz: %s: %s %s -> %d\n%s\n%.*s\n", what, method, target, a->status,
            a->headers, (int)(a->body_len > 2000 ? 2000 : a->body_len), a->body);
    abort();
}

/* An answer is well formed: a status the fake gives, Consul's index header (never 0), a body
 * that is JSON when it says so, and no handler that forgot to answer or ran out of memory. */
static inline void fz_check_answer(const char *method, const char *target,
                                   const fl_consul_answer_t *a)
{
    static const int statuses[] = {200, 301, 400, 404, 405, 413, 500};
    size_t i;
    for (i = 0; i < sizeof statuses / sizeof statuses[0] && statuses[i] != a->status; i++)
        ;
    if (i == sizeof statuses / sizeof statuses[0])
        fz_fail("unexpected status", method, target, a);
    const char *idx = strstr(a->headers, "X-Consul-Index: ");
    if (!idx || idx[16] < '1' || idx[16] > '9')
        fz_fail("no X-Consul-Index, or 0", method, target, a);
    if (a->body[a->body_len] != '\0')
        fz_fail("body not NUL-terminated", method, target, a);
    if (a->status == 500 &&
        (strcmp(a->body, "no answer") == 0 || strcmp(a->body, "out of memory") == 0))
        fz_fail("internal failure", method, target, a);
    if (a->content_type && strcmp(a->content_type, "application/json") == 0) {
        json_error_t err;
        json_t *j = json_loadb(a->body, a->body_len, JSON_DECODE_ANY, &err);
        if (!j)
            fz_fail(err.text, method, target, a);
        json_decref(j);
    }
}

/* Serves one request and checks its answer. */
static inline void fz_request(fz_t *fz, const char *node, const char *method, const char *target,
                              const void *body, size_t len)
{
    fl_consul_answer_t a;
    int rc = fl_consul_serve(fz->c, node, method, target, body, len, &a);
    if (rc) {
        fprintf(stderr, "consul fuzz: fl_consul_serve: %d\n", rc);
        abort();
    }
    fz_check_answer(method, target, &a);
    fl_consul_answer_free(&a);
}

static inline void fz_closed(void *arg)
{
    ((fz_t *)arg)->closed = 1;
}

/* A fresh catalog with agents node-1 and node-2, on fz's loop (initialised on first use). */
static inline void fz_open(fz_t *fz)
{
    static int loop_ready;
    if (!loop_ready && uv_loop_init(&fz->loop) != 0)
        abort();
    loop_ready = 1;
    fl_consul_config_t cfg = {.seed = 1, .rewrite = fz_rewrite};
    fz->closed = 0;
    if (fl_consul_new(&fz->loop, &cfg, &fz->c) || fl_consul_set_down(fz->c, 1) ||
        fl_consul_add_agent(fz->c, FZ_NODE, "127.0.0.1", 0, NULL) ||
        fl_consul_add_agent(fz->c, FZ_OTHER, "127.0.0.2", 0, NULL))
        abort();
}

/* Closes the catalog and runs the loop until every handle it had is gone. */
static inline void fz_close(fz_t *fz)
{
    fl_consul_close(fz->c, fz_closed, fz);
    uv_run(&fz->loop, UV_RUN_DEFAULT);
    if (!fz->closed)
        abort();
}

#endif

/* Fuzzes the fake Consul's decoding of JSON request bodies (fakes/consul/gojson.c and the
 * handlers that read them): service and check registrations, check updates, catalog
 * register/deregister, and KV values. The first byte picks the endpoint, the rest is the body,
 * served with fl_consul_serve on a fresh catalog where node-1 already has service "web" with
 * TTL check "ttl-1" (so that check updates and service-bound checks find something). Whatever
 * a write stored is then read back through every endpoint that renders it. Every answer must
 * be well formed (consulfz.h); a body that is not JSON at all must get Consul's 400. The
 * body is copied into a buffer of its exact size so that ASan sees any over-read. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/consulfz.h"

static fz_t fz;

static const struct {
    const char *method, *target;
} writes[] = {
    {"PUT", "/v1/agent/service/register"},
    {"PUT", "/v1/agent/service/register?replace-existing-checks"},
    {"PUT", "/v1/agent/check/register"},
    {"PUT", "/v1/agent/check/update/ttl-1"},
    {"PUT", "/v1/catalog/register"},
    {"PUT", "/v1/catalog/deregister"},
    {"PUT", "/v1/kv/fuzz/key?flags=7"},
};

static const char *const reads[] = {
    "/v1/agent/services",       "/v1/agent/checks",          "/v1/agent/service/web",
    "/v1/health/service/web",   "/v1/health/checks/web",     "/v1/health/state/any",
    "/v1/health/node/" FZ_NODE, "/v1/catalog/services",      "/v1/catalog/service/web",
    "/v1/catalog/nodes",        "/v1/catalog/node/" FZ_NODE, "/v1/kv/?recurse",
    "/v1/kv/fuzz/key?raw",
};

static const char web[] = "{\"Name\":\"web\",\"ID\":\"web\",\"Port\":8080,\"Tags\":[\"a\"],"
                          "\"Check\":{\"CheckID\":\"ttl-1\",\"TTL\":\"30s\"}}";

/* The names every service of the catalog is known by, read back through health/service. */
static void read_services(void)
{
    fl_consul_answer_t a;
    if (fl_consul_serve(fz.c, FZ_NODE, "GET", "/v1/catalog/services", NULL, 0, &a))
        abort();
    json_t *names = json_loadb(a.body, a.body_len, 0, NULL);
    const char *name;
    json_t *tags;
    json_object_foreach(names, name, tags)
    {
        char target[256];
        /* names are written raw: the ones a path cannot carry as such are skipped */
        if (strlen(name) > 200 || strpbrk(name, "?%#") || !*name)
            continue;
        snprintf(target, sizeof target, "/v1/health/service/%s", name);
        fz_request(&fz, FZ_OTHER, "GET", target, NULL, 0);
        snprintf(target, sizeof target, "/v1/catalog/service/%s?pretty", name);
        fz_request(&fz, FZ_NODE, "GET", target, NULL, 0);
    }
    json_decref(names);
    fl_consul_answer_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t which = data[0] % (sizeof writes / sizeof writes[0]);
    data++;
    size--;
    char *body = malloc(size ? size : 1);
    if (!body)
        return 0;
    memcpy(body, data, size);
    fz_open(&fz);
    fz_request(&fz, FZ_NODE, "PUT", "/v1/agent/service/register", web, strlen(web));

    fl_consul_answer_t a;
    if (fl_consul_serve(fz.c, FZ_NODE, writes[which].method, writes[which].target, body, size, &a))
        abort();
    fz_check_answer(writes[which].method, writes[which].target, &a);
    json_t *j =
        json_loadb(body, size, JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK | JSON_ALLOW_NUL, NULL);
    int is_kv = strncmp(writes[which].target, "/v1/kv/", 7) == 0;
    if (!is_kv && !j && a.status != 400)
        fz_fail("a body that is not JSON was not refused", writes[which].method,
                writes[which].target, &a);
    json_decref(j);
    fl_consul_answer_free(&a);

    for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++)
        fz_request(&fz, i % 2 ? FZ_OTHER : FZ_NODE, "GET", reads[i], NULL, 0);
    read_services();
    fz_close(&fz);
    free(body);
    return 0;
}

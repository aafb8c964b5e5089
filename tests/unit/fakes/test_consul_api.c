/* Unit tests for the fake Consul's HTTP API (fakes/consul): real agents on 127.0.0.1, real
 * requests through lib/httpc (and a raw socket for malformed HTTP), answers compared with what
 * Consul 1.x says: bodies, status codes, error texts and headers. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "consulfx.h"

#define KV_BIG (512 * 1024 + 1)

/* GET target on agent, 200, parsed JSON. */
static json_t *get_json(fx_t *fx, int agent, const char *target)
{
    resp_t r = {0};
    fx_req(fx, agent, "GET", target, NULL, &r);
    ck_assert_msg(r.status == 200, "GET %s: %d %s", target, r.status, r.body.data);
    json_t *j = resp_json(&r);
    resp_free(&r);
    return j;
}

static void register_service(fx_t *fx, int agent, const char *json)
{
    fx_expect(fx, agent, "PUT", "/v1/agent/service/register", json, 200);
}

/* The answer's body must be exactly text. */
static void expect_text(fx_t *fx, int agent, const char *method, const char *target,
                        const char *body, int status, const char *text)
{
    resp_t r = {0};
    fx_req(fx, agent, method, target, body, &r);
    ck_assert_msg(r.status == status, "%s %s: %d, wanted %d (%s)", method, target, r.status, status,
                  r.body.data);
    ck_assert_str_eq(r.body.data, text);
    resp_free(&r);
}

START_TEST(headers_and_index)
{
    fx_t fx;
    fx_init(&fx, 1);
    resp_t r = {0};
    char buf[128];
    fx_req(&fx, 0, "GET", "/v1/catalog/services", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body.data, "{}");
    ck_assert_str_eq(resp_header(&r, "Content-Type", buf, sizeof buf), "application/json");
    ck_assert_str_eq(resp_header(&r, "X-Consul-KnownLeader", buf, sizeof buf), "true");
    ck_assert_str_eq(resp_header(&r, "X-Consul-LastContact", buf, sizeof buf), "0");
    unsigned long long first = resp_index(&r);
    ck_assert_uint_gt(first, 0);
    register_service(&fx, 0, "{\"Name\":\"web\",\"Port\":80}");
    fx_req(&fx, 0, "GET", "/v1/catalog/services", NULL, &r);
    ck_assert_uint_gt(resp_index(&r), first);
    /* a 404 carries the index too: Go's client needs it */
    fx_req(&fx, 0, "GET", "/v1/kv/missing", NULL, &r);
    ck_assert_int_eq(r.status, 404);
    ck_assert_uint_gt(resp_index(&r), 0);
    ck_assert_ptr_nonnull(resp_header(&r, "X-Consul-KnownLeader", buf, sizeof buf));
    ck_assert_ptr_nonnull(resp_header(&r, "X-Consul-LastContact", buf, sizeof buf));
    /* the index never goes back and is never 0, whatever is asked */
    unsigned long long last = 0;
    const char *targets[] = {"/v1/agent/self",       "/v1/health/service/web", "/v1/catalog/nodes",
                             "/v1/health/state/any", "/v1/status/leader",      "/v1/kv/x?recurse"};
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        fx_req(&fx, 0, "GET", targets[i], NULL, &r);
        ck_assert_uint_gt(resp_index(&r), 0);
    }
    for (int i = 0; i < 5; i++) {
        char body[64];
        snprintf(body, sizeof body, "v%d", i);
        fx_expect(&fx, 0, "PUT", "/v1/kv/k", body, 200);
        fx_req(&fx, 0, "GET", "/v1/kv/k", NULL, &r);
        ck_assert_uint_gt(resp_index(&r), last);
        last = resp_index(&r);
    }
    ck_assert_uint_ge(fl_consul_index(fx.c), last);
    resp_free(&r);
    fx_close(&fx);
}
END_TEST

START_TEST(register_list_deregister)
{
    fx_t fx;
    fx_init(&fx, 2);
    resp_t r = {0};
    fx_req(&fx, 0, "PUT", "/v1/agent/service/register",
           "{\"Name\":\"web\",\"ID\":\"web-1\",\"Port\":8080,\"Tags\":[\"b\",\"a\"],"
           "\"Meta\":{\"v\":\"1\"},\"Address\":\"10.0.0.1\"}",
           &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body.data, "");
    json_t *j = get_json(&fx, 0, "/v1/agent/services");
    json_t *s = json_object_get(j, "web-1");
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(json_string_value(json_object_get(s, "ID")), "web-1");
    ck_assert_str_eq(json_string_value(json_object_get(s, "Service")), "web");
    ck_assert_int_eq(json_integer_value(json_object_get(s, "Port")), 8080);
    ck_assert_str_eq(json_string_value(json_object_get(s, "Address")), "10.0.0.1");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(s, "Meta"), "v")), "1");
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(s, "Tags"), 0)), "b");
    ck_assert_str_eq(json_string_value(json_object_get(s, "Datacenter")), "dc1");
    json_decref(j);
    /* the other agent's node does not have it */
    j = get_json(&fx, 1, "/v1/agent/services");
    ck_assert_int_eq(json_object_size(j), 0);
    json_decref(j);
    /* but the catalog is shared */
    j = get_json(&fx, 1, "/v1/catalog/services");
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "web"), 0)), "a");
    json_decref(j);
    j = get_json(&fx, 1, "/v1/catalog/service/web");
    ck_assert_int_eq(json_array_size(j), 1);
    json_t *e = json_array_get(j, 0);
    ck_assert_str_eq(json_string_value(json_object_get(e, "Node")), "node-1");
    ck_assert_str_eq(json_string_value(json_object_get(e, "Address")), "127.0.0.1");
    ck_assert_str_eq(json_string_value(json_object_get(e, "ServiceID")), "web-1");
    ck_assert_int_eq(json_integer_value(json_object_get(e, "ServicePort")), 8080);
    json_decref(j);
    /* ID defaults to Name; field names are case-insensitive, as Go decodes them */
    register_service(&fx, 1, "{\"name\":\"api\",\"port\":9}");
    j = get_json(&fx, 1, "/v1/agent/services");
    ck_assert_ptr_nonnull(json_object_get(j, "api"));
    json_decref(j);
    /* deregistering at the wrong agent: Consul's 404 */
    expect_text(&fx, 1, "PUT", "/v1/agent/service/deregister/web-1", NULL, 404,
                "Unknown service ID \"web-1\". Ensure that the service ID is passed, not the "
                "service name.");
    fx_expect(&fx, 0, "PUT", "/v1/agent/service/deregister/web-1", NULL, 200);
    j = get_json(&fx, 0, "/v1/agent/services");
    ck_assert_int_eq(json_object_size(j), 0);
    json_decref(j);
    /* an unknown service is an empty list, not an error */
    expect_text(&fx, 0, "GET", "/v1/health/service/web", NULL, 200, "[]");
    expect_text(&fx, 0, "GET", "/v1/catalog/service/nope", NULL, 200, "[]");
    ck_assert_ptr_nonnull(strstr(fx.events.data, "node-1|registered service web-1 (web)"));
    ck_assert_ptr_nonnull(strstr(fx.events.data, "node-1|deregistered service web-1"));
    resp_free(&r);
    fx_close(&fx);
}
END_TEST

START_TEST(registration_errors)
{
    fx_t fx;
    fx_init(&fx, 1);
    const char *reg = "/v1/agent/service/register";
    expect_text(&fx, 0, "PUT", reg, "{\"ID\":\"x\"}", 400, "Missing service name");
    expect_text(&fx, 0, "PUT", reg, "", 400, "Request decode failed: EOF");
    expect_text(&fx, 0, "PUT", reg, "{\"Name\":", 400, "Request decode failed: unexpected EOF");
    expect_text(&fx, 0, "PUT", reg, "{x", 400,
                "Request decode failed: invalid character 'x' looking for beginning of object "
                "key string");
    expect_text(&fx, 0, "PUT", reg, "{\"Name\" 1}", 400,
                "Request decode failed: invalid character '1' after object key");
    expect_text(&fx, 0, "PUT", reg, "{\"Name\":\"a\",}", 400,
                "Request decode failed: invalid character '}' looking for beginning of object "
                "key string");
    expect_text(&fx, 0, "PUT", reg, "{\"Name\":tru}", 400,
                "Request decode failed: invalid character '}' in literal true (expecting 'e')");
    expect_text(&fx, 0, "PUT", reg, "{\"Name\":5}", 400,
                "Request decode failed: json: cannot unmarshal number into Go struct field "
                ".Name of type string");
    expect_text(&fx, 0, "PUT", reg, "{\"Name\":\"a\",\"Port\":\"80\"}", 400,
                "Request decode failed: json: cannot unmarshal string into Go struct field "
                ".Port of type int");
    expect_text(&fx, 0, "PUT", reg, "[1]", 400,
                "Request decode failed: json: cannot unmarshal array into Go value of type "
                "structs.ServiceDefinition");
    expect_text(&fx, 0, "PUT", reg, "{\"Name\":\"a\",\"Check\":{\"TTL\":\"abc\"}}", 400,
                "Request decode failed: time: invalid duration \"abc\"");
    expect_text(&fx, 0, "PUT", reg, "{\"Name\":\"a\",\"Check\":{\"TTL\":\"10\"}}", 400,
                "Request decode failed: time: missing unit in duration \"10\"");
    expect_text(&fx, 0, "PUT", reg, "{\"Name\":\"a\",\"Check\":{\"HTTP\":\"http://x/\"}}", 400,
                "Invalid check: Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or GRPC "
                "checks");
    expect_text(&fx, 0, "PUT", reg, "{\"Name\":\"a\",\"Check\":{\"Name\":\"c\"}}", 400,
                "Invalid check: TTL must be > 0 for TTL checks");
    expect_text(&fx, 0, "PUT", reg,
                "{\"Name\":\"a\",\"Check\":{\"TTL\":\"5s\",\"Interval\":\"5s\"}}", 400,
                "Invalid check: Interval and TTL cannot both be specified");
    expect_text(&fx, 0, "PUT", reg, "{\"Name\":\"a\",\"Check\":{\"TTL\":\"5s\",\"Status\":\"ok\"}}",
                400, "Status for checks must 'passing', 'warning', 'critical'");
    expect_text(&fx, 0, "PUT", reg, "{\"Name\":\"a\",\"Address\":\"0.0.0.0\"}", 400,
                "Invalid service address");
    expect_text(&fx, 0, "PUT", reg, "{\"Name\":\"a\",\"Meta\":{\"consul-x\":\"y\"}}", 400,
                "Invalid Service Meta: Couldn't load metadata pair ('consul-x', 'y'): Key prefix "
                "'consul-' is reserved for internal use");
    expect_text(&fx, 0, "PUT", reg,
                "{\"Name\":\"a\",\"Check\":{\"Args\":[\"true\"],\"Interval\":\"1s\"}}", 500,
                "Scripts are disabled on this agent from remote calls; to enable, configure "
                "'enable_script_checks' to true");
    /* a body followed by junk: Go's Decoder reads the first value only */
    fx_expect(&fx, 0, "PUT", reg, "{\"Name\":\"ok\"} trailing", 200);
    /* nothing registered by the bad ones */
    json_t *j = get_json(&fx, 0, "/v1/agent/services");
    ck_assert_int_eq(json_object_size(j), 1);
    json_decref(j);
    fx_close(&fx);
}
END_TEST

/* Registers web-<i> on agent i with a TTL check (and one with status passing on agent 0). */
static void three_instances(fx_t *fx)
{
    for (int i = 0; i < 3; i++) {
        char body[256];
        snprintf(body, sizeof body,
                 "{\"Name\":\"web\",\"ID\":\"web-%d\",\"Port\":%d,\"Tags\":[\"t%d\"],"
                 "\"Check\":{\"TTL\":\"30s\"}}",
                 i + 1, 8000 + i, i % 2);
        register_service(fx, i, body);
    }
}

static size_t count_entries(fx_t *fx, int agent, const char *target)
{
    json_t *j = get_json(fx, agent, target);
    size_t n = json_array_size(j);
    json_decref(j);
    return n;
}

START_TEST(health_passing_filter)
{
    fx_t fx;
    fx_init(&fx, 3);
    three_instances(&fx);
    /* new checks start critical */
    ck_assert_uint_eq(count_entries(&fx, 0, "/v1/health/service/web"), 3);
    ck_assert_uint_eq(count_entries(&fx, 0, "/v1/health/service/web?passing"), 0);
    fx_expect(&fx, 0, "PUT", "/v1/agent/check/pass/service:web-1", NULL, 200);
    fx_expect(&fx, 1, "PUT", "/v1/agent/check/warn/service:web-2", NULL, 200);
    json_t *j = get_json(&fx, 2, "/v1/health/service/web?passing=1");
    ck_assert_int_eq(json_array_size(j), 1); /* warning is not passing */
    json_t *e = json_array_get(j, 0);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(e, "Service"), "ID")),
                     "web-1");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(e, "Node"), "Node")),
                     "node-1");
    json_t *checks = json_object_get(e, "Checks");
    ck_assert_int_eq(json_array_size(checks), 2); /* the node's serfHealth, and its own */
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(checks, 0), "CheckID")),
                     "serfHealth");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(checks, 1), "CheckID")),
                     "service:web-1");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(checks, 1), "Status")),
                     "passing");
    json_decref(j);
    ck_assert_uint_eq(count_entries(&fx, 0, "/v1/health/service/web?passing=false"), 3);
    ck_assert_uint_eq(count_entries(&fx, 0, "/v1/health/service/web?tag=t0"), 2);
    ck_assert_uint_eq(count_entries(&fx, 0, "/v1/health/service/web?tag=T1"), 1);
    ck_assert_uint_eq(count_entries(&fx, 0, "/v1/health/service/web?tag=t1&tag=t0"), 0);
    ck_assert_uint_eq(count_entries(&fx, 0, "/v1/health/service/web?near=_agent"), 3);
    expect_text(&fx, 0, "GET", "/v1/health/service/web?passing=maybe", NULL, 400,
                "Invalid value for ?passing");
    ck_assert_uint_eq(count_entries(&fx, 0, "/v1/health/checks/web"), 3);
    ck_assert_uint_eq(count_entries(&fx, 0, "/v1/health/state/passing"), 4); /* 3 serf + 1 */
    ck_assert_uint_eq(count_entries(&fx, 0, "/v1/health/state/warning"), 1);
    ck_assert_uint_eq(count_entries(&fx, 0, "/v1/health/state/critical"), 1);
    ck_assert_uint_eq(count_entries(&fx, 0, "/v1/health/state/any"), 6);
    ck_assert_uint_eq(count_entries(&fx, 0, "/v1/health/node/node-2"), 2);
    const char *ids[4];
    ck_assert_uint_eq(fl_consul_passing(fx.c, "web", ids, 4), 1);
    ck_assert_str_eq(ids[0], "web-1");
    ck_assert_uint_eq(fl_consul_passing_nodes(fx.c, "web", ids, 4), 1);
    ck_assert_str_eq(ids[0], "node-1");
    fx_close(&fx);
}
END_TEST

START_TEST(check_ids_and_status)
{
    fx_t fx;
    fx_init(&fx, 1);
    register_service(&fx, 0,
                     "{\"Name\":\"db\",\"Checks\":[{\"TTL\":\"10s\"},{\"TTL\":\"10s\","
                     "\"Status\":\"passing\",\"Name\":\"second\"},{\"CheckID\":\"mine\","
                     "\"TTL\":\"10s\",\"Notes\":\"n\"}]}");
    json_t *j = get_json(&fx, 0, "/v1/agent/checks");
    ck_assert_int_eq(json_object_size(j), 3);
    json_t *c1 = json_object_get(j, "service:db:1"), *c2 = json_object_get(j, "service:db:2");
    ck_assert_ptr_nonnull(c1);
    ck_assert_ptr_nonnull(c2);
    ck_assert_ptr_nonnull(json_object_get(j, "mine"));
    ck_assert_str_eq(json_string_value(json_object_get(c1, "Status")), "critical");
    ck_assert_str_eq(json_string_value(json_object_get(c1, "Name")), "Service 'db' check");
    ck_assert_str_eq(json_string_value(json_object_get(c2, "Status")), "passing");
    ck_assert_str_eq(json_string_value(json_object_get(c2, "Name")), "second");
    ck_assert_str_eq(json_string_value(json_object_get(c2, "ServiceID")), "db");
    ck_assert_str_eq(json_string_value(json_object_get(c2, "Type")), "ttl");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "mine"), "Notes")), "n");
    json_decref(j);
    /* one check: service:<id> */
    register_service(&fx, 0, "{\"Name\":\"one\",\"Check\":{\"TTL\":\"10s\"}}");
    j = get_json(&fx, 0, "/v1/agent/checks");
    ck_assert_ptr_nonnull(json_object_get(j, "service:one"));
    json_decref(j);
    /* re-registering keeps a check's status, as Consul does */
    fx_expect(&fx, 0, "PUT", "/v1/agent/check/pass/service:one", NULL, 200);
    register_service(&fx, 0, "{\"Name\":\"one\",\"Port\":2,\"Check\":{\"TTL\":\"10s\"}}");
    j = get_json(&fx, 0, "/v1/agent/checks");
    ck_assert_str_eq(
        json_string_value(json_object_get(json_object_get(j, "service:one"), "Status")), "passing");
    json_decref(j);
    /* agent/check/register and deregister */
    expect_text(&fx, 0, "PUT", "/v1/agent/check/register", "{\"TTL\":\"5s\"}", 400,
                "Missing check name");
    expect_text(&fx, 0, "PUT", "/v1/agent/check/register",
                "{\"Name\":\"x\",\"TTL\":\"5s\",\"ServiceID\":\"nope\"}", 404,
                "ServiceID \"nope\" does not exist");
    expect_text(&fx, 0, "PUT", "/v1/agent/check/register",
                "{\"Name\":\"x\",\"TTL\":\"5s\",\"Status\":\"bad\"}", 400, "Bad check status");
    fx_expect(&fx, 0, "PUT", "/v1/agent/check/register",
              "{\"Name\":\"disk\",\"TTL\":\"5s\",\"Status\":\"warning\"}", 200);
    fx_expect(&fx, 0, "PUT", "/v1/agent/check/register",
              "{\"Name\":\"svc-check\",\"ID\":\"sc\",\"TTL\":\"5s\",\"ServiceID\":\"db\"}", 200);
    j = get_json(&fx, 0, "/v1/agent/checks");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "disk"), "Status")),
                     "warning");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "sc"), "ServiceName")),
                     "db");
    json_decref(j);
    /* a node-level check that is not passing takes every service of the node out */
    fx_expect(&fx, 0, "PUT", "/v1/agent/check/pass/service:one", NULL, 200);
    ck_assert_uint_eq(count_entries(&fx, 0, "/v1/health/service/one?passing"), 0);
    fx_expect(&fx, 0, "PUT", "/v1/agent/check/deregister/disk", NULL, 200);
    ck_assert_uint_eq(count_entries(&fx, 0, "/v1/health/service/one?passing"), 1);
    expect_text(&fx, 0, "PUT", "/v1/agent/check/deregister/disk", NULL, 404,
                "Unknown check ID \"disk\". Ensure that the check ID is passed, not the check "
                "name.");
    fx_close(&fx);
}
END_TEST

static const char *check_field(fx_t *fx, const char *id, const char *field, char *buf, size_t n)
{
    json_t *j = get_json(fx, 0, "/v1/agent/checks");
    snprintf(buf, n, "%s", json_string_value(json_object_get(json_object_get(j, id), field)));
    json_decref(j);
    return buf;
}

START_TEST(check_pass_warn_fail_update)
{
    fx_t fx;
    fx_init(&fx, 1);
    char buf[256];
    register_service(&fx, 0, "{\"Name\":\"w\",\"Check\":{\"TTL\":\"30s\"}}");
    fx_expect(&fx, 0, "PUT", "/v1/agent/check/pass/service:w?note=all%20good", NULL, 200);
    ck_assert_str_eq(check_field(&fx, "service:w", "Status", buf, sizeof buf), "passing");
    ck_assert_str_eq(check_field(&fx, "service:w", "Output", buf, sizeof buf), "all good");
    fx_expect(&fx, 0, "PUT", "/v1/agent/check/warn/service:w", NULL, 200);
    ck_assert_str_eq(check_field(&fx, "service:w", "Status", buf, sizeof buf), "warning");
    fx_expect(&fx, 0, "PUT", "/v1/agent/check/fail/service:w?note=down", NULL, 200);
    ck_assert_str_eq(check_field(&fx, "service:w", "Status", buf, sizeof buf), "critical");
    ck_assert_str_eq(check_field(&fx, "service:w", "Output", buf, sizeof buf), "down");
    fx_expect(&fx, 0, "PUT", "/v1/agent/check/update/service:w",
              "{\"Status\":\"passing\",\"Output\":\"fine\"}", 200);
    ck_assert_str_eq(check_field(&fx, "service:w", "Status", buf, sizeof buf), "passing");
    ck_assert_str_eq(check_field(&fx, "service:w", "Output", buf, sizeof buf), "fine");
    expect_text(&fx, 0, "PUT", "/v1/agent/check/update/service:w", "{\"Status\":\"meh\"}", 400,
                "Invalid check status: 'meh'");
    expect_text(&fx, 0, "PUT", "/v1/agent/check/update/service:w", "{\"Status\":1}", 400,
                "Request decode failed: json: cannot unmarshal number into Go struct field "
                "checkUpdate.Status of type string");
    expect_text(&fx, 0, "PUT", "/v1/agent/check/pass/nope", NULL, 404,
                "Unknown check ID \"nope\". Ensure that the check ID is passed, not the check "
                "name.");
    /* a check that is not a TTL check cannot be set */
    register_service(&fx, 0,
                     "{\"Name\":\"h\",\"Check\":{\"HTTP\":\"http://127.0.0.1:1/\",\"Interval\":"
                     "\"10s\"}}");
    expect_text(&fx, 0, "PUT", "/v1/agent/check/pass/service:h", NULL, 500,
                "CheckID \"service:h\" does not have associated TTL");
    ck_assert_ptr_nonnull(strstr(fx.events.data, "check service:w critical -> passing"));
    fx_close(&fx);
}
END_TEST

START_TEST(methods)
{
    fx_t fx;
    fx_init(&fx, 1);
    resp_t r = {0};
    char buf[64];
    register_service(&fx, 0, "{\"Name\":\"w\",\"Check\":{\"TTL\":\"30s\"}}");
    /* what python-consul 0.7.1 sends: Consul >= 1.0 says 405, and nothing happens */
    fx_req(&fx, 0, "GET", "/v1/agent/service/deregister/w", NULL, &r);
    ck_assert_int_eq(r.status, 405);
    ck_assert_str_eq(r.body.data, "method GET not allowed");
    ck_assert_str_eq(resp_header(&r, "Allow", buf, sizeof buf), "OPTIONS,PUT");
    expect_text(&fx, 0, "GET", "/v1/agent/check/pass/service:w", NULL, 405,
                "method GET not allowed");
    json_t *j = get_json(&fx, 0, "/v1/agent/services");
    ck_assert_int_eq(json_object_size(j), 1);
    json_decref(j);
    expect_text(&fx, 0, "POST", "/v1/agent/service/register", "{}", 405, "method POST not allowed");
    expect_text(&fx, 0, "PUT", "/v1/agent/services", NULL, 405, "method PUT not allowed");
    expect_text(&fx, 0, "DELETE", "/v1/health/service/w", NULL, 405, "method DELETE not allowed");
    fx_req(&fx, 0, "OPTIONS", "/v1/kv/x", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(resp_header(&r, "Allow", buf, sizeof buf), "OPTIONS,GET,PUT,DELETE");
    /* paths no route takes */
    expect_text(&fx, 0, "GET", "/v1/nothing", NULL, 404, "");
    expect_text(&fx, 0, "GET", "/", NULL, 200, "Consul Agent");
    fx_req(&fx, 0, "GET", "/v1/kv", NULL, &r);
    ck_assert_int_eq(r.status, 301);
    ck_assert_str_eq(resp_header(&r, "Location", buf, sizeof buf), "/v1/kv/");
    /* another datacenter */
    expect_text(&fx, 0, "GET", "/v1/health/service/w?dc=dc9", NULL, 500, "No path to datacenter");
    fx_expect(&fx, 0, "GET", "/v1/health/service/w?dc=dc1", NULL, 200);
    resp_free(&r);
    fx_close(&fx);
}
END_TEST

START_TEST(kv_store)
{
    fx_t fx;
    fx_init(&fx, 1);
    resp_t r = {0};
    expect_text(&fx, 0, "PUT", "/v1/kv/a/b", "hello", 200, "true");
    json_t *j = get_json(&fx, 0, "/v1/kv/a/b");
    json_t *e = json_array_get(j, 0);
    ck_assert_str_eq(json_string_value(json_object_get(e, "Key")), "a/b");
    ck_assert_str_eq(json_string_value(json_object_get(e, "Value")), "aGVsbG8=");
    ck_assert_int_eq(json_integer_value(json_object_get(e, "Flags")), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(e, "LockIndex")), 0);
    long long created = json_integer_value(json_object_get(e, "CreateIndex"));
    long long modified = json_integer_value(json_object_get(e, "ModifyIndex"));
    ck_assert_int_eq(created, modified);
    json_decref(j);
    fx_req(&fx, 0, "GET", "/v1/kv/a/b", NULL, &r);
    ck_assert_uint_eq(resp_index(&r), (unsigned long long)modified);
    expect_text(&fx, 0, "GET", "/v1/kv/a/b?raw", NULL, 200, "hello");
    /* cas: 0 creates only; the ModifyIndex replaces; anything else fails */
    expect_text(&fx, 0, "PUT", "/v1/kv/a/b?cas=0", "x", 200, "false");
    expect_text(&fx, 0, "PUT", "/v1/kv/a/b?cas=1", "x", 200, "false");
    char target[64];
    snprintf(target, sizeof target, "/v1/kv/a/b?cas=%lld&flags=42", modified);
    expect_text(&fx, 0, "PUT", target, "bye", 200, "true");
    j = get_json(&fx, 0, "/v1/kv/a/b");
    e = json_array_get(j, 0);
    ck_assert_str_eq(json_string_value(json_object_get(e, "Value")), "Ynll");
    ck_assert_int_eq(json_integer_value(json_object_get(e, "Flags")), 42);
    ck_assert_int_eq(json_integer_value(json_object_get(e, "CreateIndex")), created);
    ck_assert_int_gt(json_integer_value(json_object_get(e, "ModifyIndex")), modified);
    json_decref(j);
    expect_text(&fx, 0, "PUT", "/v1/kv/a/c?cas=0", "", 200, "true");
    expect_text(&fx, 0, "PUT", "/v1/kv/a/d/e", "deep", 200, "true");
    expect_text(&fx, 0, "PUT", "/v1/kv/b", "other", 200, "true");
    /* an empty value is null */
    j = get_json(&fx, 0, "/v1/kv/a/c");
    ck_assert(json_is_null(json_object_get(json_array_get(j, 0), "Value")));
    json_decref(j);
    expect_text(&fx, 0, "GET", "/v1/kv/a/?keys", NULL, 200, "[\"a/b\",\"a/c\",\"a/d/e\"]");
    expect_text(&fx, 0, "GET", "/v1/kv/a/?keys&separator=/", NULL, 200,
                "[\"a/b\",\"a/c\",\"a/d/\"]");
    expect_text(&fx, 0, "GET", "/v1/kv/?keys&separator=/", NULL, 200, "[\"a/\",\"b\"]");
    ck_assert_uint_eq(count_entries(&fx, 0, "/v1/kv/a?recurse"), 3);
    expect_text(&fx, 0, "GET", "/v1/kv/zz?keys", NULL, 404, "");
    /* delete, cas delete, recursive delete */
    expect_text(&fx, 0, "DELETE", "/v1/kv/a/b?cas=1", NULL, 200, "false");
    expect_text(&fx, 0, "DELETE", "/v1/kv/a/b", NULL, 200, "true");
    fx_req(&fx, 0, "GET", "/v1/kv/a/b", NULL, &r);
    ck_assert_int_eq(r.status, 404);
    ck_assert_str_eq(r.body.data, "");
    ck_assert_uint_gt(resp_index(&r), 0);
    expect_text(&fx, 0, "DELETE", "/v1/kv/a?recurse", NULL, 200, "true");
    expect_text(&fx, 0, "GET", "/v1/kv/a?recurse", NULL, 404, "");
    ck_assert_uint_eq(count_entries(&fx, 0, "/v1/kv/?recurse"), 1);
    /* bad requests */
    expect_text(&fx, 0, "GET", "/v1/kv/", NULL, 400, "Missing key name");
    expect_text(&fx, 0, "PUT", "/v1/kv/", "x", 400, "Missing key name");
    expect_text(&fx, 0, "PUT", "/v1/kv/f?flags=x", "x", 500,
                "strconv.ParseUint: parsing \"x\": invalid syntax");
    expect_text(&fx, 0, "PUT", "/v1/kv/f?cas=1&acquire=s", "x", 400,
                "Conflicting flags: acquire=s&cas=1");
    expect_text(&fx, 0, "DELETE", "/v1/kv/f?recurse&cas=1", NULL, 400,
                "Conflicting flags: cas=1&recurse=");
    char *big = malloc(KV_BIG + 1);
    memset(big, 'v', KV_BIG);
    big[KV_BIG] = '\0';
    expect_text(&fx, 0, "PUT", "/v1/kv/big", big, 413,
                "Request body(524289 bytes) too large, max size: 524288 bytes. See "
                "https://www.consul.io/docs/agent/config/config-files#kv_max_value_size.");
    big[KV_BIG - 1] = '\0';
    expect_text(&fx, 0, "PUT", "/v1/kv/big", big, 200, "true");
    free(big);
    resp_free(&r);
    fx_close(&fx);
}
END_TEST

START_TEST(status_self_members)
{
    fx_t fx;
    fx_init(&fx, 2);
    expect_text(&fx, 1, "GET", "/v1/status/leader", NULL, 200, "\"127.0.0.1:8300\"");
    expect_text(&fx, 1, "GET", "/v1/status/peers", NULL, 200, "[\"127.0.0.1:8300\"]");
    json_t *j = get_json(&fx, 1, "/v1/agent/self");
    json_t *cfg = json_object_get(j, "Config"), *m = json_object_get(j, "Member");
    ck_assert_str_eq(json_string_value(json_object_get(cfg, "NodeName")), "node-2");
    ck_assert_str_eq(json_string_value(json_object_get(cfg, "Datacenter")), "dc1");
    ck_assert_str_eq(json_string_value(json_object_get(m, "Name")), "node-2");
    ck_assert_str_eq(json_string_value(json_object_get(m, "Addr")), "127.0.0.1");
    ck_assert_int_eq(json_integer_value(json_object_get(m, "Port")), 8301);
    ck_assert_int_eq(strlen(json_string_value(json_object_get(cfg, "NodeID"))), 36);
    json_decref(j);
    j = get_json(&fx, 0, "/v1/agent/members");
    ck_assert_int_eq(json_array_size(j), 2);
    json_decref(j);
    j = get_json(&fx, 0, "/v1/catalog/nodes");
    ck_assert_int_eq(json_array_size(j), 2);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(j, 1), "Node")), "node-2");
    json_decref(j);
    j = get_json(&fx, 0, "/v1/catalog/node/node-1");
    ck_assert_ptr_nonnull(json_object_get(j, "Services"));
    json_decref(j);
    expect_text(&fx, 0, "GET", "/v1/catalog/node/nope", NULL, 200, "null");
    expect_text(&fx, 0, "GET", "/v1/catalog/datacenters", NULL, 200, "[\"dc1\"]");
    fx_close(&fx);
}
END_TEST

START_TEST(rewrite_and_view)
{
    fx_t fx;
    fx_init(&fx, 2);
    register_service(&fx, 0,
                     "{\"Name\":\"users\",\"ID\":\"users-1\",\"Port\":5000,\"Check\":{\"TTL\":"
                     "\"30s\",\"Status\":\"passing\"}}");
    fx.rw_addr = "127.9.9.9";
    fx.rw_port = 7777;
    json_t *j = get_json(&fx, 1, "/v1/health/service/users?passing");
    json_t *s = json_object_get(json_array_get(j, 0), "Service");
    ck_assert_str_eq(json_string_value(json_object_get(s, "Address")), "127.9.9.9");
    ck_assert_int_eq(json_integer_value(json_object_get(s, "Port")), 7777);
    json_decref(j);
    j = get_json(&fx, 1, "/v1/catalog/service/users");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(j, 0), "ServiceAddress")),
                     "127.9.9.9");
    json_decref(j);
    char *view = fl_consul_view(fx.c, "node-2", "users");
    ck_assert_ptr_nonnull(view);
    ck_assert_ptr_nonnull(strstr(view, "\"Address\":\"127.9.9.9\""));
    ck_assert_ptr_nonnull(strstr(view, "\"Port\":7777"));
    free(view);
    fx.rw_addr = NULL;
    /* the same question again: a changed rewrite is a changed answer, even with no write */
    j = get_json(&fx, 1, "/v1/health/service/users?passing");
    s = json_object_get(json_array_get(j, 0), "Service");
    ck_assert_str_eq(json_string_value(json_object_get(s, "Address")), "");
    ck_assert_int_eq(json_integer_value(json_object_get(s, "Port")), 5000);
    json_decref(j);
    view = fl_consul_view(fx.c, "node-2", "users");
    ck_assert_ptr_nonnull(strstr(view, "\"Port\":5000"));
    free(view);
    view = fl_consul_view(fx.c, "node-2", "nobody");
    ck_assert_str_eq(view, "[]");
    free(view);
    fx_close(&fx);
}
END_TEST

START_TEST(catalog_register)
{
    fx_t fx;
    fx_init(&fx, 1);
    expect_text(&fx, 0, "PUT", "/v1/catalog/register",
                "{\"Node\":\"ext\",\"Address\":\"10.1.1.1\",\"Service\":{\"Service\":\"db\","
                "\"Port\":5432},\"Check\":{\"Name\":\"db alive\",\"Status\":\"passing\","
                "\"ServiceID\":\"db\"}}",
                200, "true");
    json_t *j = get_json(&fx, 0, "/v1/health/service/db?passing");
    ck_assert_int_eq(json_array_size(j), 1);
    json_t *e = json_array_get(j, 0);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(e, "Node"), "Address")),
                     "10.1.1.1");
    ck_assert_int_eq(json_array_size(json_object_get(e, "Checks")), 1);
    json_decref(j);
    ck_assert_uint_eq(count_entries(&fx, 0, "/v1/catalog/nodes"), 2);
    expect_text(&fx, 0, "PUT", "/v1/catalog/register", "{\"Address\":\"x\"}", 500,
                "Must provide node");
    expect_text(&fx, 0, "PUT", "/v1/catalog/register", "{\"Node\":\"n\"}", 500,
                "Must provide address if SkipNodeUpdate is not set");
    expect_text(&fx, 0, "PUT", "/v1/catalog/deregister", "{\"Node\":\"ext\",\"ServiceID\":\"db\"}",
                200, "true");
    expect_text(&fx, 0, "GET", "/v1/catalog/service/db", NULL, 200, "[]");
    expect_text(&fx, 0, "PUT", "/v1/catalog/deregister", "{\"Node\":\"ext\"}", 200, "true");
    ck_assert_uint_eq(count_entries(&fx, 0, "/v1/catalog/nodes"), 1);
    expect_text(&fx, 0, "PUT", "/v1/catalog/deregister", "{}", 500, "Must provide node");
    fx_close(&fx);
}
END_TEST

/* ---- raw HTTP for what a client library would refuse to send ---- */

static void raw_exchange(fx_t *fx, const char *bytes, size_t len, fl_buf_t *out)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)fl_consul_agent_port(fx->a[0]))};
    a.sin_addr.s_addr = htonl(0x7f000001);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(send(fd, bytes, len, 0), (ssize_t)len);
    uint64_t end = uv_hrtime() + 3000 * MS;
    while (uv_hrtime() < end) {
        fx_run_for(fx, 2);
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0)
            fl_buf_append(out, buf, (size_t)n);
        else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
            break;
    }
    close(fd);
}

START_TEST(bad_http_input)
{
    fx_t fx;
    fx_init(&fx, 1);
    fl_buf_t out = FL_BUF_INIT;
    raw_exchange(&fx, "GARBAGE\r\n\r\n", 11, &out);
    ck_assert_ptr_nonnull(strstr(out.data, "400"));
    fl_buf_reset(&out);
    const char *huge_head = "PUT /v1/kv/x HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n";
    raw_exchange(&fx, huge_head, strlen(huge_head), &out);
    ck_assert_ptr_nonnull(strstr(out.data, "413"));
    fl_buf_reset(&out);
    const char *bad_escape = "GET /v1/kv/%zz HTTP/1.1\r\nConnection: close\r\n\r\n";
    raw_exchange(&fx, bad_escape, strlen(bad_escape), &out);
    ck_assert_ptr_nonnull(strstr(out.data, "HTTP/1.1 400"));
    fl_buf_free(&out);
    /* still serving */
    fx_expect(&fx, 0, "GET", "/v1/agent/self", NULL, 200);
    fx_close(&fx);
}
END_TEST

/* ---- bytes that are not UTF-8, from paths, queries and outputs ---- */

START_TEST(not_utf8)
{
    fx_t fx;
    fx_init(&fx, 1);
    char buf[256];
    /* a KV key is any bytes; answers write it as Go does, with U+FFFD for a bad byte */
    expect_text(&fx, 0, "PUT", "/v1/kv/k%FFz", "v", 200, "true");
    json_t *j = get_json(&fx, 0, "/v1/kv/?recurse");
    ck_assert_uint_eq(json_array_size(j), 1);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(j, 0), "Key")),
                     "k\xef\xbf\xbdz");
    json_decref(j);
    expect_text(&fx, 0, "GET", "/v1/kv/?keys", NULL, 200, "[\"k\xef\xbf\xbdz\"]");
    expect_text(&fx, 0, "GET", "/v1/kv/k%FFz?raw", NULL, 200, "v");
    /* so is a check's output, here a ?note cut inside a character */
    register_service(&fx, 0, "{\"Name\":\"w\",\"Check\":{\"TTL\":\"30s\"}}");
    fx_expect(&fx, 0, "PUT", "/v1/agent/check/pass/service:w?note=ok%C3", NULL, 200);
    ck_assert_str_eq(check_field(&fx, "service:w", "Output", buf, sizeof buf), "ok\xef\xbf\xbd");
    ck_assert_uint_eq(count_entries(&fx, 0, "/v1/health/service/w"), 1);
    /* a tag filter is compared as sent: it matches nothing */
    expect_text(&fx, 0, "GET", "/v1/health/service/w?tag=%CF", NULL, 200, "[]");
    expect_text(&fx, 0, "GET", "/v1/catalog/service/w?tag=%CF", NULL, 200, "[]");
    fx_close(&fx);
}
END_TEST

/* ---- fl_consul_serve: the same answers without a socket ---- */

/* Both answers to method target: over HTTP, and through fl_consul_serve. */
static void same_answer(fx_t *fx, const char *method, const char *target, const char *body,
                        int status)
{
    resp_t r = {0};
    fl_consul_answer_t a;
    fx_req(fx, 0, method, target, body, &r);
    ck_assert_int_eq(
        fl_consul_serve(fx->c, "node-1", method, target, body, body ? strlen(body) : 0, &a), 0);
    ck_assert_msg(a.status == status && r.status == status, "%s %s: %d and %d, wanted %d", method,
                  target, a.status, r.status, status);
    ck_assert_uint_eq(a.body_len, r.body.len);
    ck_assert_mem_eq(a.body, r.body.data, a.body_len);
    ck_assert_int_eq(a.body[a.body_len], '\0');
    char want[64];
    snprintf(want, sizeof want, "X-Consul-Index: %llu\r\n", resp_index(&r));
    ck_assert_ptr_nonnull(strstr(a.headers, want));
    fl_consul_answer_free(&a);
    resp_free(&r);
}

START_TEST(serve_without_socket)
{
    fx_t fx;
    fx_init(&fx, 2);
    fl_consul_answer_t a;
    const char *web = "{\"Name\":\"web\",\"Port\":80}";
    ck_assert_int_eq(
        fl_consul_serve(fx.c, "node-1", "PUT", "/v1/agent/service/register", web, strlen(web), &a),
        0);
    ck_assert_int_eq(a.status, 200);
    ck_assert_ptr_null(a.content_type);
    ck_assert_uint_eq(a.body_len, 0);
    fl_consul_answer_free(&a);
    same_answer(&fx, "GET", "/v1/health/service/web?pretty", NULL, 200);
    same_answer(&fx, "GET", "/v1/agent/services", NULL, 200);
    same_answer(&fx, "GET", "/v1/kv/nope", NULL, 404);
    same_answer(&fx, "PUT", "/v1/agent/service/register", "{\"Name\":1}", 400);
    same_answer(&fx, "DELETE", "/v1/agent/services", NULL, 405);
    same_answer(&fx, "GET", "/v1/kv/%zz", NULL, 400);
    /* a blocking query answers at once, as at the end of its wait */
    char target[128];
    snprintf(target, sizeof target, "/v1/health/service/web?index=%llu&wait=10m",
             (unsigned long long)fl_consul_index(fx.c));
    ck_assert_int_eq(fl_consul_serve(fx.c, "node-2", "GET", target, NULL, 0, &a), 0);
    ck_assert_int_eq(a.status, 200);
    ck_assert_str_eq(a.content_type, "application/json");
    ck_assert_ptr_nonnull(strstr(a.body, "\"Service\":\"web\""));
    fl_consul_answer_free(&a);
    /* bad arguments */
    ck_assert_int_eq(fl_consul_serve(fx.c, "node-9", "GET", "/", NULL, 0, &a), FL_EINVAL);
    ck_assert_int_eq(fl_consul_serve(fx.c, "node-1", "GET", "/", NULL, 3, &a), FL_EINVAL);
    ck_assert_int_eq(fl_consul_serve(fx.c, "node-1", NULL, "/", NULL, 0, &a), FL_EINVAL);
    fl_consul_answer_free(&a); /* cleared by the failed calls: freeing it is harmless */
    fx_close(&fx);
}
END_TEST

Suite *consul_api_suite(void)
{
    Suite *s = suite_create("consul_api");
    TCase *tc = tcase_create("api");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, headers_and_index);
    tcase_add_test(tc, register_list_deregister);
    tcase_add_test(tc, registration_errors);
    tcase_add_test(tc, health_passing_filter);
    tcase_add_test(tc, check_ids_and_status);
    tcase_add_test(tc, check_pass_warn_fail_update);
    tcase_add_test(tc, methods);
    tcase_add_test(tc, kv_store);
    tcase_add_test(tc, status_self_members);
    tcase_add_test(tc, rewrite_and_view);
    tcase_add_test(tc, catalog_register);
    tcase_add_test(tc, bad_http_input);
    tcase_add_test(tc, not_utf8);
    tcase_add_test(tc, serve_without_socket);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(consul_api_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

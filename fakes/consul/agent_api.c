/* The /v1/agent endpoints: what an agent knows of its own node. Services and checks registered
 * here belong to the agent's node; their checks are run by the fake (checks.c). Requests are
 * decoded as Consul decodes them (Go's JSON rules, case-insensitive field names, the snake_case
 * aliases Consul accepts, durations as strings or nanoseconds) and validated in Consul's order
 * with Consul's words: "Missing service name", "Invalid check: ...", "Unknown check ID ...". */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakes/consul/internal.h"
#include "lib/err.h"

#define MAX_CHECK_OUTPUT 4096 /* Consul's default output_max_size */

/* ------------------------------------------------------------ decoding checks ---- */

typedef struct {
    const char *id, *name, *notes, *status, *service_id;
    checkdef_t *def;
    const char *alias_node, *alias_service, *h2ping, *docker, *os_service;
    int has_script, nonempty;
} checkspec_t;

static void spec_free(checkspec_t *k)
{
    rec_unref(k->def);
}

/* A field under its Go name, else under the snake_case alias Consul also accepts. */
static const char *alias_of(const json_t *o, const char *field, const char *snake)
{
    return snake && !go_field(o, field) && json_object_get(o, snake) ? snake : field;
}

static void str_field(godec_t *d, const json_t *o, const char *f, const char *snake,
                      const char **out, int *nonempty)
{
    go_string(d, o, alias_of(o, f, snake), out);
    if (*out && **out)
        *nonempty = 1;
}

static int dup_field(godec_t *d, const json_t *o, const char *f, const char *snake, char **out,
                     int *nonempty)
{
    const char *v = NULL;
    str_field(d, o, f, snake, &v, nonempty);
    if (v && !(*out = strdup(v)))
        return FL_ENOMEM;
    return 0;
}

static int dur_field(godec_t *d, const json_t *o, const char *f, const char *snake, uint64_t *ns,
                     int *nonempty)
{
    long long v = 0;
    if (go_duration_field(d, o, alias_of(o, f, snake), &v) < 0)
        return -1;
    *ns = v > 0 ? (uint64_t)v : 0;
    if (v)
        *nonempty = 1;
    return 0;
}

/* Reads a CheckType (or the check part of a CheckDefinition) from o. Returns 0, or FL_ENOMEM;
 * decoding errors are left in d. */
static int parse_check(godec_t *d, const json_t *o, checkspec_t *k)
{
    int *ne = &k->nonempty;
    checkdef_t *def = k->def = checkdef_new();
    if (!def)
        return FL_ENOMEM;
    str_field(d, o, "CheckID", NULL, &k->id, ne);
    str_field(d, o, "Name", NULL, &k->name, ne);
    str_field(d, o, "Notes", NULL, &k->notes, ne);
    str_field(d, o, "Status", NULL, &k->status, ne);
    str_field(d, o, "ServiceID", "service_id", &k->service_id, ne);
    str_field(d, o, "AliasNode", "alias_node", &k->alias_node, ne);
    str_field(d, o, "AliasService", "alias_service", &k->alias_service, ne);
    str_field(d, o, "H2PING", NULL, &k->h2ping, ne);
    str_field(d, o, "DockerContainerID", "docker_container_id", &k->docker, ne);
    str_field(d, o, "OSService", "os_service", &k->os_service, ne);
    if (dup_field(d, o, "HTTP", NULL, &def->http, ne) ||
        dup_field(d, o, "Method", NULL, &def->method, ne) ||
        dup_field(d, o, "Body", NULL, &def->body, ne) ||
        dup_field(d, o, "TCP", NULL, &def->tcp, ne) ||
        dup_field(d, o, "UDP", NULL, &def->udp, ne) ||
        dup_field(d, o, "GRPC", NULL, &def->grpc, ne) ||
        dup_field(d, o, "TLSServerName", "tls_server_name", &def->tls_server_name, ne))
        return FL_ENOMEM;
    go_strsmap(d, o, "Header", &def->header);
    go_bool(d, o, alias_of(o, "TLSSkipVerify", "tls_skip_verify"), &def->tls_skip_verify);
    go_bool(d, o, alias_of(o, "GRPCUseTLS", "grpc_use_tls"), &def->grpc_use_tls);
    json_t *args = NULL;
    go_strings(d, o, alias_of(o, "ScriptArgs", "script_args"), &args);
    if (!args)
        go_strings(d, o, "Args", &args);
    k->has_script = args && json_array_size(args) > 0;
    json_decref(args);
    *ne |= def->header || def->tls_skip_verify || def->grpc_use_tls || k->has_script;
    /* a duration that is not positive counts as none, which validation then refuses */
    if (dur_field(d, o, "Interval", NULL, &def->interval, ne) < 0 ||
        dur_field(d, o, "Timeout", NULL, &def->timeout, ne) < 0 ||
        dur_field(d, o, "TTL", NULL, &def->ttl, ne) < 0)
        return 0;
    dur_field(d, o, "DeregisterCriticalServiceAfter", "deregister_critical_service_after",
              &def->dereg_after, ne);
    return 0;
}

static int nonblank(const char *s)
{
    return s && *s;
}

/* CheckType.Type() */
static const char *check_type(const checkspec_t *k)
{
    const checkdef_t *d = k->def;
    int interval = d->interval > 0;
    if (nonblank(d->grpc) && interval)
        return "grpc";
    if (nonblank(d->http) && interval)
        return "http";
    if (d->ttl > 0)
        return "ttl";
    if (nonblank(d->tcp) && interval)
        return "tcp";
    if (nonblank(d->udp) && interval)
        return "udp";
    if (nonblank(k->alias_service))
        return "alias";
    if (nonblank(k->docker) && interval)
        return "docker";
    if (k->has_script && interval)
        return "script";
    if (nonblank(k->h2ping) && interval)
        return "h2ping";
    if (nonblank(k->os_service) && interval)
        return "os_service";
    return "";
}

/* CheckType.Validate(): NULL when valid, else Consul's reason. */
static const char *check_invalid(const checkspec_t *k)
{
    const checkdef_t *d = k->def;
    int interval_check = k->has_script || nonblank(d->http) || nonblank(d->tcp) ||
                         nonblank(d->udp) || nonblank(d->grpc) || nonblank(k->h2ping) ||
                         nonblank(k->os_service);
    int alias = nonblank(k->alias_service);
    if (d->interval > 0 && d->ttl > 0)
        return "Interval and TTL cannot both be specified";
    if (interval_check && d->interval == 0)
        return "Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or GRPC checks";
    if (interval_check && alias)
        return "Interval cannot be set for Alias checks";
    if (alias && d->ttl > 0)
        return "TTL must be not be set for Alias checks";
    if (!interval_check && !alias && d->ttl == 0)
        return "TTL must be > 0 for TTL checks";
    return NULL;
}

static int finish_def(checkspec_t *k)
{
    return (k->def->type = strdup(check_type(k))) ? 0 : FL_ENOMEM;
}

/* ------------------------------------------------------------ registering ---- */

static int scripts_refused(ctx_t *x, const checkspec_t *k)
{
    if (!k->has_script || nonblank(k->docker))
        return 0;
    reply_text(x, 500,
               "Scripts are disabled on this agent from remote calls; to enable, "
               "configure 'enable_script_checks' to true");
    return 1;
}

static check_t *make_check(const char *node, const checkspec_t *k, const char *id, const char *name,
                           const char *service_id, const char *service_name)
{
    check_t *c = check_new();
    if (!c)
        return NULL;
    c->node = strdup(node);
    c->id = strdup(id);
    c->name = strdup(name);
    c->notes = strdup(k->notes ? k->notes : "");
    c->output = strdup("");
    c->service_id = strdup(service_id);
    c->service_name = strdup(service_name);
    c->status = nonblank(k->status) ? status_parse(k->status) : ST_CRITICAL;
    c->local = 1;
    c->def = rec_ref(k->def);
    if (!c->node || !c->id || !c->name || !c->notes || !c->output || !c->service_id ||
        !c->service_name) {
        rec_unref(c);
        return NULL;
    }
    return c;
}

/* Puts check c in the catalog; an existing check of that ID keeps its status and output, as
 * Consul does to avoid flapping on re-registration. Takes c. */
static int put_check_keeping_status(fl_consul_t *x, uint64_t idx, check_t *c)
{
    long i = find_check(x->live, c->node, c->id);
    if (i >= 0) {
        const check_t *old = x->live->checks.v[i];
        char *out = strdup(old->output);
        if (!out) {
            rec_unref(c);
            return FL_ENOMEM;
        }
        free(c->output);
        c->output = out;
        c->status = old->status;
    }
    return cat_put_check(x, idx, c);
}

typedef struct {
    const char *id, *name, *address, *kind;
    json_t *tags, *meta;
    long long port;
    int eto;
    long long wpass, wwarn;
    int has_weights;
    checkspec_t checks[64];
    size_t nchecks;
} svcspec_t;

static void svcspec_free(svcspec_t *s)
{
    json_decref(s->tags);
    json_decref(s->meta);
    for (size_t i = 0; i < s->nchecks; i++)
        spec_free(&s->checks[i]);
}

static int add_check_spec(godec_t *d, svcspec_t *s, const json_t *o)
{
    if (s->nchecks == sizeof s->checks / sizeof s->checks[0]) {
        if (!d->err.len)
            fl_buf_puts(&d->err, "too many checks");
        return 0;
    }
    checkspec_t *k = &s->checks[s->nchecks++];
    memset(k, 0, sizeof *k);
    int rc = parse_check(d, o, k);
    if (!rc && !k->nonempty) { /* CheckType.Empty(): no check at all */
        spec_free(k);
        s->nchecks--;
    }
    return rc;
}

static int parse_service(godec_t *d, const json_t *o, svcspec_t *s)
{
    const json_t *check = NULL, *weights = NULL;
    go_string(d, o, "ID", &s->id);
    go_string(d, o, "Name", &s->name);
    go_string(d, o, "Address", &s->address);
    go_string(d, o, "Kind", &s->kind);
    go_strings(d, o, "Tags", &s->tags);
    go_strmap(d, o, "Meta", &s->meta);
    go_int(d, o, "Port", &s->port);
    go_bool(d, o, alias_of(o, "EnableTagOverride", "enable_tag_override"), &s->eto);
    go_object(d, o, "Weights", "structs.Weights", &weights);
    if (weights) {
        s->has_weights = 1;
        s->wpass = 0;
        go_int(d, weights, "Passing", &s->wpass);
        go_int(d, weights, "Warning", &s->wwarn);
    }
    go_object(d, o, "Check", "structs.CheckType", &check);
    if (check && add_check_spec(d, s, check))
        return FL_ENOMEM;
    const json_t *checks = go_field(o, "Checks");
    if (checks && json_is_array(checks)) {
        size_t i;
        json_t *e;
        json_array_foreach(checks, i, e)
        {
            if (json_is_object(e) && add_check_spec(d, s, e))
                return FL_ENOMEM;
            if (!json_is_object(e) && !json_is_null(e) && !d->err.len)
                fl_buf_printf(&d->err,
                              "json: cannot unmarshal %s into Go struct field .Checks of type "
                              "structs.CheckType",
                              json_is_array(e)     ? "array"
                              : json_is_string(e)  ? "string"
                              : json_is_boolean(e) ? "bool"
                                                   : "number");
        }
    } else if (checks && !json_is_null(checks) && !d->err.len) {
        fl_buf_printf(&d->err,
                      "json: cannot unmarshal %s into Go struct field .Checks of type "
                      "structs.CheckTypes",
                      json_is_object(checks)   ? "object"
                      : json_is_string(checks) ? "string"
                                               : "number");
    }
    return 0;
}

static int is_any_address(const char *a)
{
    return a && (strcmp(a, "0.0.0.0") == 0 || strcmp(a, "::") == 0 || strcmp(a, "[::]") == 0);
}

static int meta_key_ok(const char *k)
{
    for (; *k; k++)
        if (!(isalnum((unsigned char)*k) || *k == '_' || *k == '-'))
            return 0;
    return 1;
}

/* structs.ValidateServiceMetadata: NULL or the reason. */
static const char *meta_invalid(const json_t *meta, char *buf, size_t n)
{
    if (!meta)
        return NULL;
    if (json_object_size(meta) > 64)
        return "Node metadata cannot contain more than 64 key/value pairs";
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)meta, k, v)
    {
        const char *val = json_is_string(v) ? json_string_value(v) : "";
        const char *why = NULL;
        if (!*k)
            why = "Key cannot be blank";
        else if (!meta_key_ok(k))
            why = "Key contains invalid characters";
        else if (strlen(k) > 128)
            why = "Key is too long (limit: 128 characters)";
        else if (strncmp(k, "consul-", 7) == 0)
            why = "Key prefix 'consul-' is reserved for internal use";
        else if (strlen(val) > 512)
            why = "Value is too long (limit: 512 characters)";
        if (why) {
            snprintf(buf, n, "Couldn't load metadata pair ('%s', '%s'): %s", k, val, why);
            return buf;
        }
    }
    return NULL;
}

/* Validates in AgentRegisterService's order; answers and returns -1 when invalid. */
static int validate_service(ctx_t *x, svcspec_t *s)
{
    char buf[1024];
    const char *why;
    if (!nonblank(s->name)) {
        reply_text(x, 400, "Missing service name");
        return -1;
    }
    if (is_any_address(s->address)) {
        reply_text(x, 400, "Invalid service address");
        return -1;
    }
    if (s->has_weights && s->wpass < 1) {
        reply_text(x, 400, "Invalid Weights: Passing must be greater than 0");
        return -1;
    }
    if (s->has_weights && s->wwarn < 0) {
        reply_text(x, 400, "Invalid Weights: Warning must be greater or equal than 0");
        return -1;
    }
    if ((why = meta_invalid(s->meta, buf, sizeof buf))) {
        reply_text(x, 400, "Invalid Service Meta: %s", why);
        return -1;
    }
    if (s->port < 0 || s->port > 65535) {
        reply_text(x, 400, "Validation failed: invalid port %lld", s->port);
        return -1;
    }
    for (size_t i = 0; i < s->nchecks; i++) {
        if ((why = check_invalid(&s->checks[i]))) {
            reply_text(x, 400, "Invalid check: %s", why);
            return -1;
        }
    }
    for (size_t i = 0; i < s->nchecks; i++) {
        if (nonblank(s->checks[i].status) && status_parse(s->checks[i].status) < 0) {
            reply_text(x, 400, "Status for checks must 'passing', 'warning', 'critical'");
            return -1;
        }
    }
    for (size_t i = 0; i < s->nchecks; i++)
        if (scripts_refused(x, &s->checks[i]))
            return -1;
    return 0;
}

static svc_t *make_service(const char *node, const svcspec_t *s)
{
    svc_t *v = svc_new();
    if (!v)
        return NULL;
    v->node = strdup(node);
    v->id = strdup(nonblank(s->id) ? s->id : s->name);
    v->name = strdup(s->name);
    v->address = strdup(s->address ? s->address : "");
    v->kind = strdup(s->kind ? s->kind : "");
    v->port = (int)s->port;
    v->enable_tag_override = s->eto;
    v->local = 1;
    if (s->has_weights) {
        v->weight_passing = (int)s->wpass;
        v->weight_warning = (int)s->wwarn;
    }
    v->meta = s->meta && json_object_size(s->meta) ? json_incref(s->meta) : NULL;
    size_t n = s->tags ? json_array_size(s->tags) : 0;
    v->tags = calloc(n ? n : 1, sizeof *v->tags);
    int bad = !v->node || !v->id || !v->name || !v->address || !v->kind || !v->tags;
    for (size_t i = 0; !bad && i < n; i++) {
        const char *t = json_string_value(json_array_get(s->tags, i));
        if (!(v->tags[v->ntags++] = strdup(t ? t : "")))
            bad = 1;
    }
    if (bad) {
        rec_unref(v);
        return NULL;
    }
    return v;
}

/* The check IDs the service's checks get: CheckID, or service:<id>[:<n>]. */
static void service_check_id(const svcspec_t *s, const char *sid, size_t i, char *out, size_t n)
{
    if (nonblank(s->checks[i].id))
        snprintf(out, n, "%s", s->checks[i].id);
    else if (s->nchecks > 1)
        snprintf(out, n, "service:%s:%zu", sid, i + 1);
    else
        snprintf(out, n, "service:%s", sid);
}

/* Drops the service's checks that the new registration does not name. */
static void drop_other_checks(fl_consul_t *c, uint64_t idx, const char *node, const char *sid,
                              char (*ids)[512], size_t nids)
{
    for (size_t i = c->live->checks.n; i-- > 0;) {
        const check_t *k = c->live->checks.v[i];
        if (strcmp(k->node, node) != 0 || strcmp(k->service_id, sid) != 0)
            continue;
        size_t j;
        for (j = 0; j < nids && strcmp(ids[j], k->id) != 0; j++)
            ;
        if (j < nids)
            continue;
        char *id = strdup(k->id);
        cat_del_check(c, idx, node, id ? id : "");
        if (id)
            runner_stop(c, node, id);
        free(id);
    }
}

static int register_service(ctx_t *x, svcspec_t *s)
{
    fl_consul_t *c = x->c;
    const char *node = x->a->node;
    svc_t *v = make_service(node, s);
    if (!v)
        return FL_ENOMEM;
    char(*ids)[512] = calloc(s->nchecks + 1, sizeof *ids);
    if (!ids) {
        rec_unref(v);
        return FL_ENOMEM;
    }
    int existed = find_svc(c->live, node, v->id) >= 0, rc = 0;
    char *sid = strdup(v->id), *name = strdup(v->name);
    char where[300];
    snprintf(where, sizeof where, "%s:%d", *v->address ? v->address : x->a->host, v->port);
    uint64_t idx = cat_begin(c);
    rc = sid && name ? cat_put_svc(c, idx, v) : (rec_unref(v), FL_ENOMEM);
    for (size_t i = 0; !rc && i < s->nchecks; i++) {
        char cname[600];
        service_check_id(s, sid, i, ids[i], sizeof ids[i]);
        snprintf(cname, sizeof cname, "Service '%s' check", name);
        if ((rc = finish_def(&s->checks[i])))
            break;
        check_t *k = make_check(node, &s->checks[i], ids[i],
                                nonblank(s->checks[i].name) ? s->checks[i].name : cname, sid, name);
        rc = k ? put_check_keeping_status(c, idx, k) : FL_ENOMEM;
    }
    if (!rc && q_has(x, "replace-existing-checks")) {
        char val[8] = "";
        q_get(x, "replace-existing-checks", val, sizeof val);
        if (!*val || strcmp(val, "true") == 0)
            drop_other_checks(c, idx, node, sid, ids, s->nchecks);
    }
    cat_end(c);
    for (size_t i = 0; !rc && i < s->nchecks; i++) {
        long k = find_check(c->live, node, ids[i]);
        if (k >= 0)
            rc = runner_start(c, c->live->checks.v[k]);
    }
    if (!rc)
        consul_event(c, node, "%s service %s (%s) at %s, %zu check%s",
                     existed ? "updated" : "registered", sid, name, where, s->nchecks,
                     s->nchecks == 1 ? "" : "s");
    free(sid);
    free(name);
    free(ids);
    return rc;
}

void agent_service_register(ctx_t *x)
{
    json_t *body = decode_body(x, "structs.ServiceDefinition");
    if (!body)
        return;
    svcspec_t s;
    memset(&s, 0, sizeof s);
    godec_t d = {FL_BUF_INIT, ""};
    int rc = parse_service(&d, body, &s);
    if (rc)
        reply_text(x, 500, "out of memory");
    else if (d.err.len)
        reply_text(x, 400, "Request decode failed: %s", d.err.data);
    else if (validate_service(x, &s) == 0)
        rc = register_service(x, &s);
    if (rc)
        reply_text(x, 500, "%s", fl_strerror(rc));
    else if (!x->answered)
        reply_empty(x);
    fl_buf_free(&d.err);
    svcspec_free(&s);
    json_decref(body);
}

void agent_remove_service(fl_consul_t *c, const char *node, const char *id, const char *why)
{
    char *sid = strdup(id), *n = strdup(node); /* id and node may live in what goes away */
    if (!sid || !n) {
        free(sid);
        free(n);
        return;
    }
    uint64_t idx = cat_begin(c);
    cat_del_svc(c, idx, n, sid);
    cat_end(c);
    runners_stop_service(c, n, sid);
    consul_event(c, n, "deregistered service %s%s", sid, why ? why : "");
    free(sid);
    free(n);
}

void agent_service_deregister(ctx_t *x)
{
    if (find_svc(x->c->live, x->a->node, x->arg) < 0) {
        reply_text(x, 404,
                   "Unknown service ID \"%s\". Ensure that the service ID is passed, not the "
                   "service name.",
                   x->arg);
        return;
    }
    agent_remove_service(x->c, x->a->node, x->arg, NULL);
    reply_empty(x);
}

/* ------------------------------------------------------------ checks ---- */

void agent_check_register(ctx_t *x)
{
    fl_consul_t *c = x->c;
    json_t *body = decode_body(x, "structs.CheckDefinition");
    if (!body)
        return;
    checkspec_t k;
    memset(&k, 0, sizeof k);
    godec_t d = {FL_BUF_INIT, "CheckDefinition"};
    const char *id = NULL;
    go_string(&d, body, "ID", &id);
    int rc = parse_check(&d, body, &k);
    if (!id)
        id = k.id;
    const char *why;
    long svc = -1;
    if (rc) {
        reply_text(x, 500, "out of memory");
    } else if (d.err.len) {
        reply_text(x, 400, "Request decode failed: %s", d.err.data);
    } else if (!nonblank(k.name)) {
        reply_text(x, 400, "Missing check name");
    } else if (nonblank(k.status) && status_parse(k.status) < 0) {
        reply_text(x, 400, "Bad check status");
    } else if ((why = check_invalid(&k))) {
        reply_text(x, 400, "Invalid check: %s", why);
    } else if (nonblank(k.service_id) && ((svc = find_svc(c->live, x->a->node, k.service_id)) < 0 ||
                                          !((svc_t *)c->live->svcs.v[svc])->local)) {
        reply_text(x, 404, "ServiceID \"%s\" does not exist", k.service_id);
    } else if (!scripts_refused(x, &k) && !(rc = finish_def(&k))) {
        const char *sname = svc >= 0 ? ((svc_t *)c->live->svcs.v[svc])->name : "";
        char *cid = strdup(nonblank(id) ? id : k.name);
        check_t *ck =
            cid ? make_check(x->a->node, &k, cid, k.name, k.service_id ? k.service_id : "", sname)
                : NULL;
        uint64_t idx = cat_begin(c);
        rc = ck ? put_check_keeping_status(c, idx, ck) : FL_ENOMEM;
        cat_end(c);
        long i = cid ? find_check(c->live, x->a->node, cid) : -1;
        if (!rc && i >= 0)
            rc = runner_start(c, c->live->checks.v[i]);
        if (!rc) {
            consul_event(c, x->a->node, "registered check %s", cid);
            reply_empty(x);
        }
        free(cid);
    }
    if (rc)
        reply_text(x, 500, "%s", fl_strerror(rc));
    fl_buf_free(&d.err);
    spec_free(&k);
    json_decref(body);
}

/* vetCheckUpdate: 404 for a check this agent does not have. */
static int unknown_check(ctx_t *x)
{
    if (find_check(x->c->live, x->a->node, x->arg) >= 0)
        return 0;
    reply_text(x, 404,
               "Unknown check ID \"%s\". Ensure that the check ID is passed, not the check name.",
               x->arg);
    return 1;
}

void agent_check_deregister(ctx_t *x)
{
    if (unknown_check(x))
        return;
    uint64_t idx = cat_begin(x->c);
    cat_del_check(x->c, idx, x->a->node, x->arg);
    cat_end(x->c);
    runner_stop(x->c, x->a->node, x->arg);
    consul_event(x->c, x->a->node, "deregistered check %s", x->arg);
    reply_empty(x);
}

static void ttl_update(ctx_t *x, int status, const char *output)
{
    if (unknown_check(x))
        return;
    if (!runner_is_ttl(x->c, x->a->node, x->arg)) {
        reply_text(x, 500, "CheckID \"%s\" does not have associated TTL", x->arg);
        return;
    }
    char *out = strdup_max(output, MAX_CHECK_OUTPUT);
    runner_ttl_update(x->c, x->a->node, x->arg, status, out ? out : "");
    free(out);
    reply_empty(x);
}

static void check_note(ctx_t *x, int status)
{
    char note[MAX_CHECK_OUTPUT + 1];
    if (q_get(x, "note", note, sizeof note) != 0)
        note[0] = '\0';
    ttl_update(x, status, note);
}

void agent_check_pass(ctx_t *x)
{
    check_note(x, ST_PASSING);
}

void agent_check_warn(ctx_t *x)
{
    check_note(x, ST_WARNING);
}

void agent_check_fail(ctx_t *x)
{
    check_note(x, ST_CRITICAL);
}

void agent_check_update(ctx_t *x)
{
    json_t *body = decode_body(x, "agent.checkUpdate");
    if (!body)
        return;
    godec_t d = {FL_BUF_INIT, "checkUpdate"};
    const char *status = "", *output = "";
    go_string(&d, body, "Status", &status);
    go_string(&d, body, "Output", &output);
    if (d.err.len)
        reply_text(x, 400, "Request decode failed: %s", d.err.data);
    else if (status_parse(status) < 0)
        reply_text(x, 400, "Invalid check status: '%s'", status);
    else
        ttl_update(x, status_parse(status), output);
    fl_buf_free(&d.err);
    json_decref(body);
}

/* ------------------------------------------------------------ reads ---- */

static int cmp_svc_id(const void *a, const void *b)
{
    return strcmp((*(const svc_t *const *)a)->id, (*(const svc_t *const *)b)->id);
}

static int cmp_check_id(const void *a, const void *b)
{
    return strcmp((*(const check_t *const *)a)->id, (*(const check_t *const *)b)->id);
}

void agent_services(ctx_t *x)
{
    const state_t *st = x->c->live;
    const svc_t **v = malloc((st->svcs.n + 1) * sizeof *v);
    json_t *out = json_object();
    size_t n = 0;
    for (size_t i = 0; v && i < st->svcs.n; i++) {
        const svc_t *s = st->svcs.v[i];
        if (s->local && strcmp(s->node, x->a->node) == 0)
            v[n++] = s;
    }
    if (v)
        qsort(v, n, sizeof *v, cmp_svc_id);
    for (size_t i = 0; v && out && i < n; i++)
        json_object_set_new(out, v[i]->id, r_agent_service(x->c, v[i]));
    reply_json(x, 200, v ? out : (json_decref(out), NULL));
    free(v);
}

/* FNV-1a, for the ContentHash of agent/service/:id */
static uint64_t fnv64(const char *s, size_t n)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

void agent_service(ctx_t *x)
{
    long i = find_svc(x->c->live, x->a->node, x->arg);
    if (i < 0 || !((svc_t *)x->c->live->svcs.v[i])->local) {
        reply_text(x, 404, "unknown service ID: %s", x->arg);
        return;
    }
    json_t *j = r_agent_service(x->c, x->c->live->svcs.v[i]);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    char hash[17] = "0";
    if (text)
        snprintf(hash, sizeof hash, "%016llx", (unsigned long long)fnv64(text, strlen(text)));
    free(text);
    if (j)
        json_object_set_new(j, "ContentHash", json_string(hash));
    fl_buf_printf(&x->headers, "X-Consul-Contenthash: %s\r\n", hash);
    reply_json(x, 200, j);
}

void agent_checks(ctx_t *x)
{
    const state_t *st = x->c->live;
    const check_t **v = malloc((st->checks.n + 1) * sizeof *v);
    json_t *out = json_object();
    size_t n = 0;
    for (size_t i = 0; v && i < st->checks.n; i++) {
        const check_t *k = st->checks.v[i];
        if (k->local && strcmp(k->node, x->a->node) == 0)
            v[n++] = k;
    }
    if (v)
        qsort(v, n, sizeof *v, cmp_check_id);
    for (size_t i = 0; v && out && i < n; i++)
        json_object_set_new(out, v[i]->id, r_check(st, v[i]));
    reply_json(x, 200, v ? out : (json_decref(out), NULL));
    free(v);
}

void agent_self(ctx_t *x)
{
    fl_consul_t *c = x->c;
    long i = find_node(c->live, x->a->node);
    const char *id = i >= 0 ? ((node_t *)c->live->nodes.v[i])->id : "";
    json_t *config = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:s, s:s}", "Datacenter", c->dc,
                               "PrimaryDatacenter", c->dc, "NodeName", x->a->node, "NodeID", id,
                               "Revision", "faultline", "Server", 1, "Version", CONSUL_VERSION,
                               "BuildDate", "2023-06-26T00:00:00Z");
    json_t *debug = json_pack("{s:s, s:s, s:s, s:b}", "Datacenter", c->dc, "NodeName", x->a->node,
                              "ClientAddrs", x->a->host, "ServerMode", 1);
    json_t *coord = json_pack("{s:[f,f,f,f,f,f,f,f], s:f, s:f, s:f}", "Vec", 0.0, 0.0, 0.0, 0.0,
                              0.0, 0.0, 0.0, 0.0, "Error", 1.5, "Adjustment", 0.0, "Height", 1e-05);
    json_t *meta =
        json_pack("{s:s, s:s}", "consul-network-segment", "", "consul-version", CONSUL_VERSION);
    reply_json(x, 200,
               json_pack("{s:o, s:o, s:o, s:o, s:{}, s:o}", "Config", config, "DebugConfig", debug,
                         "Coord", coord, "Member", r_member(c, x->a), "Stats", "Meta", meta));
}

void agent_members(ctx_t *x)
{
    json_t *out = json_array();
    for (fl_consul_agent_t *a = x->c->agents; out && a; a = a->next)
        json_array_append_new(out, r_member(x->c, a));
    reply_json(x, 200, out);
}

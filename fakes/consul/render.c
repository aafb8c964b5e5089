/* Consul's JSON shapes, field for field and in Go's order: structs.Node, structs.NodeService
 * (health answers), api.AgentService (agent/services), structs.HealthCheck, structs.ServiceNode
 * (catalog/service) and serf.Member. Go writes map keys sorted and struct fields in declaration
 * order, leaves out `omitempty` fields when empty, and writes nil maps and slices as null,
 * except where Consul's handlers replace them by empty ones (tags, agent service meta). */
#include <stdlib.h>
#include <string.h>

#include "fakes/consul/internal.h"

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A copy of obj with its keys in sorted order, as Go marshals a map; NULL gives null. */
static json_t *sorted(const json_t *obj)
{
    if (!obj)
        return json_null();
    size_t n = json_object_size(obj), i = 0;
    const char **keys = malloc((n ? n : 1) * sizeof *keys);
    json_t *out = json_object();
    if (!keys || !out) {
        free(keys);
        json_decref(out);
        return NULL;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v)
    {
        keys[i++] = k;
    }
    qsort(keys, n, sizeof *keys, cmp_str);
    for (i = 0; i < n; i++)
        json_object_set(out, keys[i], json_object_get(obj, keys[i]));
    free(keys);
    return out;
}

json_t *r_strings(char **v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static json_t *tagged_addresses(const node_t *n)
{
    if (!n->agent)
        return json_null();
    return json_pack("{s:s, s:s, s:s, s:s}", "lan", n->address, "lan_ipv4", n->address, "wan",
                     n->address, "wan_ipv4", n->address);
}

static json_t *node_meta(const node_t *n)
{
    if (!n->agent)
        return json_null();
    return json_pack("{s:s, s:s}", "consul-network-segment", "", "consul-version", CONSUL_VERSION);
}

json_t *r_node(const fl_consul_t *c, const node_t *n)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:I, s:I}", "ID", n->id ? n->id : "", "Node",
                     n->name, "Address", n->address, "Datacenter", c->dc, "TaggedAddresses",
                     tagged_addresses(n), "Meta", node_meta(n), "CreateIndex",
                     (json_int_t)n->create_index, "ModifyIndex", (json_int_t)n->modify_index);
}

static json_t *weights(const svc_t *s)
{
    return json_pack("{s:i, s:i}", "Passing", s->weight_passing, "Warning", s->weight_warning);
}

static json_t *proxy(void)
{
    return json_pack("{s:s, s:{}, s:{}}", "Mode", "", "MeshGateway", "Expose");
}

json_t *r_node_service(const svc_t *s, const char *addr, int port)
{
    json_t *j = json_object();
    if (!j)
        return NULL;
    if (s->kind && *s->kind)
        json_object_set_new(j, "Kind", json_string(s->kind));
    json_object_set_new(j, "ID", json_string(s->id));
    json_object_set_new(j, "Service", json_string(s->name));
    json_object_set_new(j, "Tags", r_strings(s->tags, s->ntags));
    json_object_set_new(j, "Address", json_string(addr));
    json_object_set_new(j, "Meta", sorted(s->meta));
    if (port)
        json_object_set_new(j, "Port", json_integer(port));
    json_object_set_new(j, "Weights", weights(s));
    json_object_set_new(j, "EnableTagOverride", json_boolean(s->enable_tag_override));
    json_object_set_new(j, "Proxy", proxy());
    json_object_set_new(j, "Connect", json_object());
    json_object_set_new(j, "CreateIndex", json_integer((json_int_t)s->create_index));
    json_object_set_new(j, "ModifyIndex", json_integer((json_int_t)s->modify_index));
    return j;
}

json_t *r_agent_service(const fl_consul_t *c, const svc_t *s)
{
    json_t *j = json_object();
    if (!j)
        return NULL;
    if (s->kind && *s->kind)
        json_object_set_new(j, "Kind", json_string(s->kind));
    json_object_set_new(j, "ID", json_string(s->id));
    json_object_set_new(j, "Service", json_string(s->name));
    json_object_set_new(j, "Tags", r_strings(s->tags, s->ntags));
    json_object_set_new(j, "Meta", s->meta ? sorted(s->meta) : json_object());
    json_object_set_new(j, "Port", json_integer(s->port));
    json_object_set_new(j, "Address", json_string(s->address));
    json_object_set_new(j, "Weights", weights(s));
    json_object_set_new(j, "EnableTagOverride", json_boolean(s->enable_tag_override));
    json_object_set_new(j, "Datacenter", json_string(c->dc));
    return j;
}

static void set_dur(json_t *j, const char *key, uint64_t ns)
{
    char buf[40];
    if (!ns)
        return;
    go_duration_string((long long)ns, buf);
    json_object_set_new(j, key, json_string(buf));
}

/* structs.HealthCheckDefinition as its MarshalJSON writes it (every field omitempty). */
static json_t *definition(const checkdef_t *d)
{
    json_t *j = json_object();
    if (!j)
        return NULL;
    set_dur(j, "Interval", d->interval);
    set_dur(j, "Timeout", d->timeout);
    set_dur(j, "DeregisterCriticalServiceAfter", d->dereg_after);
    if (d->http && *d->http)
        json_object_set_new(j, "HTTP", json_string(d->http));
    if (d->tls_server_name && *d->tls_server_name)
        json_object_set_new(j, "TLSServerName", json_string(d->tls_server_name));
    if (d->tls_skip_verify)
        json_object_set_new(j, "TLSSkipVerify", json_true());
    if (d->header && json_object_size(d->header))
        json_object_set_new(j, "Header", sorted(d->header));
    if (d->method && *d->method)
        json_object_set_new(j, "Method", json_string(d->method));
    if (d->body && *d->body)
        json_object_set_new(j, "Body", json_string(d->body));
    if (d->tcp && *d->tcp)
        json_object_set_new(j, "TCP", json_string(d->tcp));
    if (d->udp && *d->udp)
        json_object_set_new(j, "UDP", json_string(d->udp));
    if (d->grpc && *d->grpc)
        json_object_set_new(j, "GRPC", json_string(d->grpc));
    if (d->grpc_use_tls)
        json_object_set_new(j, "GRPCUseTLS", json_true());
    return j;
}

static json_t *service_tags(const state_t *st, const check_t *k)
{
    if (!*k->service_id)
        return json_array();
    long i = find_svc(st, k->node, k->service_id);
    if (i < 0)
        return json_array();
    const svc_t *s = st->svcs.v[i];
    return r_strings(s->tags, s->ntags);
}

json_t *r_check(const state_t *st, const check_t *k)
{
    char interval[40] = "", timeout[40] = "";
    if (k->def->interval)
        go_duration_string((long long)k->def->interval, interval);
    if (k->def->timeout)
        go_duration_string((long long)k->def->timeout, timeout);
    /* an output may be anything a service answered, or a query's ?note */
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:o, s:s, s:s, s:s, s:i, s:o, "
                     "s:I, s:I}",
                     "Node", k->node, "CheckID", k->id, "Name", k->name, "Status",
                     status_name(k->status), "Notes", k->notes, "Output",
                     go_json_stringn(k->output, strlen(k->output)), "ServiceID", k->service_id,
                     "ServiceName", k->service_name, "ServiceTags", service_tags(st, k), "Type",
                     k->def->type ? k->def->type : "", "Interval", interval, "Timeout", timeout,
                     "ExposedPort", 0, "Definition", definition(k->def), "CreateIndex",
                     (json_int_t)k->create_index, "ModifyIndex", (json_int_t)k->modify_index);
}

json_t *r_service_node(const fl_consul_t *c, const node_t *n, const svc_t *s, const char *addr,
                       int port)
{
    json_t *j = json_object();
    if (!j)
        return NULL;
    json_object_set_new(j, "ID", json_string(n->id ? n->id : ""));
    json_object_set_new(j, "Node", json_string(n->name));
    json_object_set_new(j, "Address", json_string(n->address));
    json_object_set_new(j, "Datacenter", json_string(c->dc));
    json_object_set_new(j, "TaggedAddresses", tagged_addresses(n));
    json_object_set_new(j, "NodeMeta", node_meta(n));
    json_object_set_new(j, "ServiceKind", json_string(s->kind ? s->kind : ""));
    json_object_set_new(j, "ServiceID", json_string(s->id));
    json_object_set_new(j, "ServiceName", json_string(s->name));
    json_object_set_new(j, "ServiceTags", r_strings(s->tags, s->ntags));
    json_object_set_new(j, "ServiceAddress", json_string(addr));
    json_object_set_new(j, "ServiceWeights", weights(s));
    json_object_set_new(j, "ServiceMeta", sorted(s->meta));
    json_object_set_new(j, "ServicePort", json_integer(port));
    json_object_set_new(j, "ServiceEnableTagOverride", json_boolean(s->enable_tag_override));
    json_object_set_new(j, "ServiceProxy", proxy());
    json_object_set_new(j, "ServiceConnect", json_object());
    json_object_set_new(j, "CreateIndex", json_integer((json_int_t)s->create_index));
    json_object_set_new(j, "ModifyIndex", json_integer((json_int_t)s->modify_index));
    return j;
}

json_t *r_member(const fl_consul_t *c, const fl_consul_agent_t *a)
{
    long i = find_node(c->live, a->node);
    const char *id = i >= 0 ? ((node_t *)c->live->nodes.v[i])->id : "";
    json_t *tags = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, "
                             "s:s}",
                             "acls", "0", "build", CONSUL_VERSION ":faultline", "dc", c->dc,
                             "ft_fs", "1", "ft_si", "1", "id", id ? id : "", "port", "8300",
                             "raft_vsn", "3", "role", "consul", "segment", "", "vsn", "2",
                             "vsn_max", "3", "vsn_min", "2", "wan_join_port", "8302");
    return json_pack("{s:s, s:s, s:i, s:o, s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "Name", a->node,
                     "Addr", a->host, "Port", 8301, "Tags", tags ? tags : json_object(), "Status",
                     1, "ProtocolMin", 1, "ProtocolMax", 5, "ProtocolCur", 2, "DelegateMin", 2,
                     "DelegateMax", 5, "DelegateCur", 4);
}

/* `faultline proxy`: links without Lua. One or more named proxies (each an fl_link_t), and a
 * small HTTP control API (JSON) to list them, add and remove toxics and read their counters,
 * so that people — and tests written in any language — can use the fault proxy on its own.
 * The API follows Toxiproxy's shape (/proxies, /proxies/NAME/toxics, /reset) and accepts
 * Toxiproxy's attribute names as aliases, so its clients mostly work unchanged. */
#include "harness/proxy.h"

#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "harness/link.h"
#include "lib/err.h"
#include "lib/hostport.h"
#include "lib/httpd.h"
#include "lib/rng.h"

#define MAX_PROXIES 256

typedef struct {
    char name[64];
    fl_link_t *link;
} proxy_t;

typedef struct {
    uv_loop_t *loop;
    fl_rng_t rng;
    proxy_t proxies[MAX_PROXIES];
    int nproxies;
    fl_httpd_t *httpd;
    uv_signal_t sigint, sigterm;
    int quiet;
    int no_splice;
    int stopping;
} server_t;

static void say(server_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(server_t *s, const char *fmt, ...)
{
    if (s->quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "faultline proxy: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ------------------------------------------------------------ JSON views ---- */

static json_t *toxic_json(const fl_toxic_t *t)
{
    json_t *attrs = json_object();
    for (int i = 0; i < FL_TOXIC_MAX_PARAMS && t->type->params[i].name; i++)
        json_object_set_new(attrs, t->type->params[i].name, json_real(t->p[i]));
    const fl_toxic_stats_t *st = &t->stats;
    json_t *stats = json_pack("{sI sI sI sI sI sI sI}", "connections", (json_int_t)st->connections,
                              "chunks", (json_int_t)st->chunks, "bytes", (json_int_t)st->bytes,
                              "dropped", (json_int_t)st->dropped, "resets", (json_int_t)st->resets,
                              "closes", (json_int_t)st->closes, "refused", (json_int_t)st->refused);
    return json_pack("{ss ss ss sf sI so so}", "name", t->name, "type", t->type->name, "stream",
                     fl_dirs_name(t->dirs), "toxicity", t->toxicity, "first", (json_int_t)t->first,
                     "attributes", attrs, "stats", stats);
}

static json_t *proxy_json(const proxy_t *p)
{
    const fl_link_t *l = p->link;
    char listen[96], upstream[96];
    snprintf(listen, sizeof listen, "%s:%d", l->listen_host, l->listen_port);
    snprintf(upstream, sizeof upstream, "%s:%d", l->up_host, l->up_port);
    json_t *toxics = json_array();
    for (const fl_toxic_t *t = l->toxics; t; t = t->next)
        json_array_append_new(toxics, toxic_json(t));
    const fl_link_stats_t *st = &l->stats;
    json_t *stats =
        json_pack("{sI sI sI sI sI sI sI sI}", "accepted", (json_int_t)st->accepted, "active",
                  (json_int_t)st->active, "upstream_failed", (json_int_t)st->upstream_failed,
                  "refused", (json_int_t)st->refused, "resets", (json_int_t)st->resets, "bytes_up",
                  (json_int_t)st->bytes[FL_DIR_UP], "bytes_down",
                  (json_int_t)st->bytes[FL_DIR_DOWN], "bytes_spliced", (json_int_t)st->spliced);
    return json_pack("{ss ss ss sb so so}", "name", p->name, "listen", listen, "upstream", upstream,
                     "enabled", 1, "toxics", toxics, "stats", stats);
}

static void reply_json(fl_httpd_exchange_t *ex, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text) {
        fl_httpd_respond(ex, 500, NULL, "application/json", "{\"error\":\"out of memory\"}", 25);
        return;
    }
    size_t n = strlen(text);
    text[n] = '\0';
    fl_httpd_respond(ex, status, NULL, "application/json", text, n);
    free(text);
}

static void reply_error(fl_httpd_exchange_t *ex, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reply_error(fl_httpd_exchange_t *ex, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    reply_json(ex, status, json_pack("{ss si}", "error", msg, "status", status));
}

/* ------------------------------------------------------------ proxies ---- */

static proxy_t *find_proxy(server_t *s, const char *name)
{
    for (int i = 0; i < s->nproxies; i++)
        if (strcmp(s->proxies[i].name, name) == 0)
            return &s->proxies[i];
    return NULL;
}

static void link_freed(fl_link_t *l)
{
    free(l);
}

static int add_proxy(server_t *s, const char *name, const char *listen, const char *upstream,
                     char *err, size_t errlen)
{
    char lhost[64], uhost[64];
    int lport, uport;
    if (!name[0] || strlen(name) >= sizeof s->proxies[0].name ||
        strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") !=
            strlen(name)) {
        snprintf(err, errlen, "bad proxy name '%s' (letters, digits, _ . - only)", name);
        return 400;
    }
    if (find_proxy(s, name)) {
        snprintf(err, errlen, "proxy '%s' already exists", name);
        return 409;
    }
    if (s->nproxies == MAX_PROXIES) {
        snprintf(err, errlen, "too many proxies (at most %d)", MAX_PROXIES);
        return 400;
    }
    if (fl_hostport_parse(listen, 1, lhost, sizeof lhost, &lport) != 0) {
        snprintf(err, errlen, "bad listen address '%s' (expected host:port)", listen);
        return 400;
    }
    if (fl_hostport_parse(upstream, 0, uhost, sizeof uhost, &uport) != 0) {
        snprintf(err, errlen, "bad upstream address '%s' (expected host:port)", upstream);
        return 400;
    }
    fl_link_t *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return 500;
    }
    snprintf(l->name, sizeof l->name, "%s", name);
    l->no_splice = s->no_splice;
    int rc = fl_link_open(s->loop, l, lhost, lport, uhost, uport, &s->rng);
    if (rc) {
        snprintf(err, errlen, "cannot listen on %s: %s", listen, uv_strerror(rc));
        fl_link_close(l, link_freed);
        return rc == UV_EADDRINUSE ? 409 : 400;
    }
    proxy_t *p = &s->proxies[s->nproxies++];
    snprintf(p->name, sizeof p->name, "%s", name);
    p->link = l;
    say(s, "proxy %s: %s:%d -> %s:%d", name, l->listen_host, l->listen_port, uhost, uport);
    return 0;
}

static void remove_proxy(server_t *s, proxy_t *p)
{
    fl_link_close(p->link, link_freed);
    int i = (int)(p - s->proxies);
    memmove(&s->proxies[i], &s->proxies[i + 1], (size_t)(s->nproxies - i - 1) * sizeof *p);
    s->nproxies--;
}

/* ------------------------------------------------------------ toxics ---- */

/* Toxiproxy's attribute names, per toxic, with the factor from its unit to ours. */
static const struct {
    const char *type, *alias, *ours;
    double factor;
} aliases[] = {
    {"latency", "latency", "ms", 1},      {"bandwidth", "rate", "kbps", 8},
    {"slicer", "average_size", "avg", 1}, {"slicer", "size_variation", "variation", 1},
    {"slicer", "delay", "delay_us", 1},   {"timeout", "timeout", "ms", 1},
    {"reset_peer", "timeout", "ms", 1},   {"slow_close", "delay", "ms", 1},
};

static const char *param_name(const char *type, const char *key, double *factor)
{
    *factor = 1;
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcmp(aliases[i].type, type) == 0 && strcmp(aliases[i].alias, key) == 0) {
            *factor = aliases[i].factor;
            return aliases[i].ours;
        }
    return key;
}

/* Adds the toxic body describes and answers; returns it, or NULL when it answered an error. */
static fl_toxic_t *add_toxic(proxy_t *p, json_t *body, fl_httpd_exchange_t *ex)
{
    char err[256];
    const char *type = json_string_value(json_object_get(body, "type"));
    if (!type) {
        reply_error(ex, 400,
                    "a toxic needs \"type\" (one of latency, bandwidth, slicer, "
                    "limit_data, timeout, reset_peer, slow_close, refuse)");
        return NULL;
    }
    fl_toxic_spec_t spec;
    fl_toxic_spec_init(&spec, type);
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        if (strcmp(key, "type") == 0 || strcmp(key, "attributes") == 0)
            continue;
        if (strcmp(key, "name") == 0) {
            if (!json_is_string(v))
                goto bad_type;
            spec.name = json_string_value(v);
        } else if (strcmp(key, "stream") == 0 || strcmp(key, "direction") == 0) {
            spec.dirs = json_is_string(v) ? fl_dirs_parse(json_string_value(v)) : 0;
            if (!spec.dirs) {
                reply_error(ex, 400, "%s must be \"upstream\", \"downstream\" or \"both\"", key);
                return NULL;
            }
        } else if (strcmp(key, "toxicity") == 0) {
            if (!json_is_number(v))
                goto bad_type;
            spec.toxicity = json_number_value(v);
        } else if (strcmp(key, "first") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 0) {
                reply_error(ex, 400, "first must be a whole number of connections (0 or more)");
                return NULL;
            }
            spec.first = (long)json_integer_value(v);
        } else {
            reply_error(ex, 400, "unknown toxic field \"%s\" (parameters go in \"attributes\")",
                        key);
            return NULL;
        }
    }
    json_t *attrs = json_object_get(body, "attributes");
    if (attrs && !json_is_object(attrs)) {
        reply_error(ex, 400, "attributes must be an object like {\"ms\": 100}");
        return NULL;
    }
    json_object_foreach(attrs, key, v)
    {
        if (spec.nparams == FL_LINK_MAX_TOXIC_PARAMS) {
            reply_error(ex, 400, "too many attributes");
            return NULL;
        }
        if (!json_is_number(v)) {
            reply_error(ex, 400, "attribute %s must be a number", key);
            return NULL;
        }
        double factor;
        spec.pname[spec.nparams] = param_name(type, key, &factor);
        spec.pvalue[spec.nparams++] = json_number_value(v) * factor;
    }
    fl_toxic_t *t = NULL;
    int rc = fl_link_add_toxic(p->link, &spec, &t, err, sizeof err);
    if (rc) {
        reply_error(ex, rc == FL_EINVAL ? (strstr(err, "already") ? 409 : 400) : 500, "%s", err);
        return NULL;
    }
    reply_json(ex, 200, toxic_json(t));
    return t;
bad_type:
    reply_error(ex, 400, "field \"%s\" has the wrong type", key);
    return NULL;
}

/* ------------------------------------------------------------ routing ---- */

static json_t *parse_body(fl_httpd_exchange_t *ex)
{
    size_t len = 0;
    const char *body = fl_httpd_body(ex, &len);
    json_error_t jerr;
    json_t *j = json_loadb(body ? body : "", len, 0, &jerr);
    if (!j) {
        reply_error(ex, 400, "invalid JSON: %s (line %d)", jerr.text, jerr.line);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        reply_error(ex, 400, "expected a JSON object");
        return NULL;
    }
    return j;
}

static void handle_toxics(server_t *s, fl_httpd_exchange_t *ex, proxy_t *p, const char *method,
                          const char *rest)
{
    if (!*rest) { /* /proxies/NAME/toxics */
        if (strcmp(method, "GET") == 0) {
            json_t *arr = json_array();
            for (fl_toxic_t *t = p->link->toxics; t; t = t->next)
                json_array_append_new(arr, toxic_json(t));
            reply_json(ex, 200, arr);
        } else if (strcmp(method, "POST") == 0) {
            json_t *body = parse_body(ex);
            if (!body)
                return;
            fl_toxic_t *t = add_toxic(p, body, ex);
            if (t)
                say(s, "proxy %s: toxic %s added (%s, %s)", p->name, t->name, t->type->name,
                    fl_dirs_name(t->dirs));
            json_decref(body);
        } else {
            reply_error(ex, 405, "use GET or POST on /proxies/%s/toxics", p->name);
        }
        return;
    }
    fl_toxic_t *t = fl_link_find_toxic(p->link, rest + 1);
    if (!t) {
        reply_error(ex, 404, "toxic '%s' not found on proxy %s", rest + 1, p->name);
        return;
    }
    if (strcmp(method, "GET") == 0) {
        reply_json(ex, 200, toxic_json(t));
    } else if (strcmp(method, "DELETE") == 0) {
        say(s, "proxy %s: toxic %s removed", p->name, t->name);
        fl_link_remove_toxic(p->link, t->name);
        fl_httpd_respond(ex, 204, NULL, NULL, NULL, 0);
    } else {
        reply_error(ex, 405, "use GET or DELETE on a toxic");
    }
}

static void handle_proxy(server_t *s, fl_httpd_exchange_t *ex, const char *method,
                         const char *name_and_rest)
{
    char name[64];
    const char *slash = strchr(name_and_rest, '/');
    size_t n = slash ? (size_t)(slash - name_and_rest) : strlen(name_and_rest);
    if (n == 0 || n >= sizeof name) {
        reply_error(ex, 404, "no such proxy");
        return;
    }
    memcpy(name, name_and_rest, n);
    name[n] = '\0';
    proxy_t *p = find_proxy(s, name);
    if (!p) {
        reply_error(ex, 404, "proxy '%s' not found", name);
        return;
    }
    const char *rest = name_and_rest + n;
    if (strncmp(rest, "/toxics", 7) == 0 && (rest[7] == '\0' || rest[7] == '/')) {
        handle_toxics(s, ex, p, method, rest + 7);
        return;
    }
    if (strcmp(rest, "/drop") == 0 && strcmp(method, "POST") == 0) {
        const char *reset = fl_httpd_query(ex);
        int rst = strstr(reset, "reset=1") || strstr(reset, "reset=true");
        fl_link_drop_connections(p->link, rst);
        say(s, "proxy %s: connections %s", name, rst ? "reset" : "closed");
        fl_httpd_respond(ex, 204, NULL, NULL, NULL, 0);
        return;
    }
    if (*rest) {
        reply_error(ex, 404, "no such resource: %s", fl_httpd_path(ex));
        return;
    }
    if (strcmp(method, "GET") == 0) {
        reply_json(ex, 200, proxy_json(p));
    } else if (strcmp(method, "DELETE") == 0) {
        say(s, "proxy %s: deleted", name);
        remove_proxy(s, p);
        fl_httpd_respond(ex, 204, NULL, NULL, NULL, 0);
    } else {
        reply_error(ex, 405, "use GET or DELETE on /proxies/%s", name);
    }
}

static void handle_create(server_t *s, fl_httpd_exchange_t *ex)
{
    json_t *body = parse_body(ex);
    if (!body)
        return;
    const char *name = json_string_value(json_object_get(body, "name"));
    const char *listen = json_string_value(json_object_get(body, "listen"));
    const char *upstream = json_string_value(json_object_get(body, "upstream"));
    if (!name || !listen || !upstream) {
        reply_error(ex, 400, "a proxy needs \"name\", \"listen\" and \"upstream\" strings");
    } else {
        char err[256];
        int status = add_proxy(s, name, listen, upstream, err, sizeof err);
        if (status)
            reply_error(ex, status, "%s", err);
        else
            reply_json(ex, 201, proxy_json(find_proxy(s, name)));
    }
    json_decref(body);
}

static void handle_types(fl_httpd_exchange_t *ex)
{
    json_t *arr = json_array();
    for (size_t i = 0; fl_toxic_types[i]; i++) {
        const fl_toxic_type_t *t = fl_toxic_types[i];
        json_t *params = json_array();
        for (int k = 0; k < FL_TOXIC_MAX_PARAMS && t->params[k].name; k++)
            json_array_append_new(params,
                                  json_pack("{ss sf sf sf sb ss}", "name", t->params[k].name, "min",
                                            t->params[k].min, "max", t->params[k].max, "default",
                                            t->params[k].def, "required", t->params[k].required,
                                            "doc", t->params[k].doc));
        json_array_append_new(
            arr, json_pack("{ss ss so}", "type", t->name, "doc", t->doc, "attributes", params));
    }
    reply_json(ex, 200, arr);
}

static void handler(fl_httpd_exchange_t *ex, void *arg)
{
    server_t *s = arg;
    const char *method = fl_httpd_method(ex), *path = fl_httpd_path(ex);
    if (strcmp(path, "/proxies") == 0) {
        if (strcmp(method, "GET") == 0) {
            json_t *obj = json_object();
            for (int i = 0; i < s->nproxies; i++)
                json_object_set_new(obj, s->proxies[i].name, proxy_json(&s->proxies[i]));
            reply_json(ex, 200, obj);
        } else if (strcmp(method, "POST") == 0) {
            handle_create(s, ex);
        } else {
            reply_error(ex, 405, "use GET or POST on /proxies");
        }
    } else if (strncmp(path, "/proxies/", 9) == 0) {
        handle_proxy(s, ex, method, path + 9);
    } else if (strcmp(path, "/reset") == 0 && strcmp(method, "POST") == 0) {
        for (int i = 0; i < s->nproxies; i++)
            fl_link_heal(s->proxies[i].link);
        say(s, "reset: every toxic removed");
        fl_httpd_respond(ex, 204, NULL, NULL, NULL, 0);
    } else if (strcmp(path, "/toxics") == 0 && strcmp(method, "GET") == 0) {
        handle_types(ex);
    } else if (strcmp(path, "/version") == 0 && strcmp(method, "GET") == 0) {
        reply_json(ex, 200, json_pack("{ss}", "version", FL_VERSION));
    } else {
        reply_error(ex, 404, "no such resource: %s %s", method, path);
    }
}

/* ------------------------------------------------------------ main ---- */

static void httpd_closed(fl_httpd_t *h, void *arg)
{
    (void)h;
    (void)arg;
}

static void on_signal(uv_signal_t *sig, int signum)
{
    server_t *s = sig->data;
    if (s->stopping)
        return;
    s->stopping = 1;
    say(s, "stopping on %s", signum == SIGINT ? "SIGINT" : "SIGTERM");
    while (s->nproxies)
        remove_proxy(s, &s->proxies[s->nproxies - 1]);
    fl_httpd_close(s->httpd, httpd_closed, NULL);
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
}

static const char proxy_usage[] =
    "usage: faultline proxy --listen HOST:PORT --upstream HOST:PORT [--control HOST:PORT]\n"
    "                       [--name NAME] [--seed N] [--no-splice] [--quiet]\n"
    "  forwards --listen to --upstream through a fault proxy; the JSON control API on\n"
    "  --control (default 127.0.0.1:8474) lists proxies and adds or removes toxics:\n"
    "    GET /proxies, POST /proxies {name,listen,upstream}, GET|DELETE /proxies/NAME,\n"
    "    GET|POST /proxies/NAME/toxics, GET|DELETE /proxies/NAME/toxics/TOXIC,\n"
    "    POST /proxies/NAME/drop[?reset=1], POST /reset, GET /toxics, GET /version\n"
    "  --no-splice copies bytes through the proxy's memory instead of splice(2) (to compare)\n";

int fl_proxy_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"upstream", required_argument, NULL, 'u'},
        {"control", required_argument, NULL, 'c'},
        {"name", required_argument, NULL, 'n'},
        {"seed", required_argument, NULL, 's'},
        {"quiet", no_argument, NULL, 'q'},
        {"no-splice", no_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *listen = NULL, *upstream = NULL, *control = "127.0.0.1:8474", *name = "main";
    unsigned long long seed = 1;
    int quiet = 0, no_splice = 0, c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
        switch (c) {
        case 'l':
            listen = optarg;
            break;
        case 'u':
            upstream = optarg;
            break;
        case 'c':
            control = optarg;
            break;
        case 'n':
            name = optarg;
            break;
        case 's':
            seed = strtoull(optarg, NULL, 10);
            break;
        case 'q':
            quiet = 1;
            break;
        case 'S':
            no_splice = 1;
            break;
        case 'h':
            fputs(proxy_usage, stdout);
            return 0;
        default:
            fprintf(stderr, "faultline: proxy: unknown option %s\n%s", argv[optind - 1],
                    proxy_usage);
            return 2;
        }
    }
    if ((listen == NULL) != (upstream == NULL) || optind < argc) {
        fprintf(stderr, "faultline: proxy: --listen and --upstream go together\n%s", proxy_usage);
        return 2;
    }
    char chost[64];
    int cport;
    if (fl_hostport_parse(control, 1, chost, sizeof chost, &cport) != 0) {
        fprintf(stderr, "faultline: proxy: bad --control address '%s'\n", control);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    server_t *s = calloc(1, sizeof *s);
    uv_loop_t loop;
    if (!s || uv_loop_init(&loop) != 0) {
        free(s);
        return 2;
    }
    s->loop = &loop;
    s->quiet = quiet;
    s->no_splice = no_splice;
    fl_rng_seed(&s->rng, seed);
    int code = 0;
    if (listen) {
        char err[256];
        if (add_proxy(s, name, listen, upstream, err, sizeof err) != 0) {
            fprintf(stderr, "faultline: proxy: %s\n", err);
            code = 2;
            goto out;
        }
    }
    fl_httpd_config_t cfg = {.handler = handler, .arg = s, .max_body = 64 * 1024};
    int rc = fl_httpd_start(&loop, chost, cport, &cfg, &s->httpd);
    if (rc) {
        fprintf(stderr, "faultline: proxy: cannot serve the control API on %s: %s\n", control,
                fl_strerror(rc));
        code = 2;
        goto out;
    }
    say(s, "control API on http://%s:%d", chost, fl_httpd_port(s->httpd));
    uv_signal_init(&loop, &s->sigint);
    uv_signal_init(&loop, &s->sigterm);
    s->sigint.data = s->sigterm.data = s;
    uv_signal_start(&s->sigint, on_signal, SIGINT);
    uv_signal_start(&s->sigterm, on_signal, SIGTERM);
    uv_run(&loop, UV_RUN_DEFAULT);
out:
    while (s->nproxies)
        remove_proxy(s, &s->proxies[s->nproxies - 1]);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0) {
        fprintf(stderr, "faultline: proxy: internal error: handles left open\n");
        code = code ? code : 1;
    }
    free(s);
    return code;
}

/* `faultline fake consul`: the fake Consul as a small dev server. N agents (nodes node-1 to
 * node-N) share one catalog and listen on the same host, on consecutive ports from the one
 * given (each picks a free port when it is 0), so a service can be pointed at "its own"
 * agent as in a real cluster. Each agent's address goes to stdout, one line each, as soon as
 * it listens; catalog events go to stderr unless --quiet. SIGINT or SIGTERM closes everything
 * and exits 0. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "fakes/consul/consul.h"
#include "lib/err.h"
#include "lib/hostport.h"

#define MAX_NODES 256

static const char usage[] =
    "usage: faultline fake consul --listen HOST:PORT [--nodes N] [--seed N] [--quiet]\n"
    "  agents node-1..node-N share one catalog, on ports PORT, PORT+1, ... (0: any free port)\n";

typedef struct {
    uv_loop_t loop;
    fl_consul_t *consul;
    uv_signal_t sigint, sigterm;
    int quiet;
    int closed;
} cli_t;

static void on_event(void *arg, const char *node, const char *text)
{
    cli_t *s = arg;
    if (s->quiet)
        return;
    fprintf(stderr, "faultline consul: %s%s%s\n", node, *node ? ": " : "", text);
}

static void on_closed(void *arg)
{
    cli_t *s = arg;
    s->closed = 1;
}

static void stop(cli_t *s)
{
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    if (s->consul)
        fl_consul_close(s->consul, on_closed, s);
    s->consul = NULL;
}

static void on_signal(uv_signal_t *sig, int signum)
{
    stop(sig->data);
}

static int parse_args(int argc, char **argv, const char **listen, long *nodes,
                      unsigned long long *seed, int *quiet)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'}, {"nodes", required_argument, NULL, 'n'},
        {"seed", required_argument, NULL, 's'},   {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    int c;
    char *end;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
        switch (c) {
        case 'l':
            *listen = optarg;
            break;
        case 'n':
            *nodes = strtol(optarg, &end, 10);
            if (*end || *nodes < 1 || *nodes > MAX_NODES) {
                fprintf(stderr, "faultline: fake consul: --nodes wants 1 to %d, not '%s'\n%s",
                        MAX_NODES, optarg, usage);
                return 2;
            }
            break;
        case 's':
            *seed = strtoull(optarg, NULL, 10);
            break;
        case 'q':
            *quiet = 1;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fprintf(stderr, "faultline: fake consul: unknown option %s\n%s", argv[optind - 1],
                    usage);
            return 2;
        }
    }
    if (!*listen || optind < argc) {
        fprintf(stderr, "faultline: fake consul: %s\n%s",
                *listen ? "unexpected arguments" : "--listen HOST:PORT is required", usage);
        return 2;
    }
    return -1;
}

/* Starts the agents; 0, or prints why not and returns 2. */
static int start_agents(cli_t *s, const char *host, int port, long nodes)
{
    for (long i = 0; i < nodes; i++) {
        char name[32];
        fl_consul_agent_t *a;
        snprintf(name, sizeof name, "node-%ld", i + 1);
        int p = port ? port + (int)i : 0;
        int rc = p > 65535 ? FL_ERANGE : fl_consul_add_agent(s->consul, name, host, p, &a);
        if (rc) {
            fprintf(stderr, "faultline: fake consul: cannot listen on %s:%d for %s: %s\n", host, p,
                    name, fl_strerror(rc));
            return 2;
        }
        printf("%s http://%s%s%s:%d\n", name, strchr(host, ':') ? "[" : "", host,
               strchr(host, ':') ? "]" : "", fl_consul_agent_port(a));
        fflush(stdout);
    }
    return 0;
}

int fl_consul_main(int argc, char **argv)
{
    const char *listen = NULL;
    long nodes = 1;
    unsigned long long seed = 1;
    int quiet = 0, code = parse_args(argc, argv, &listen, &nodes, &seed, &quiet);
    if (code >= 0)
        return code;
    char host[256];
    int port;
    if (fl_hostport_parse(listen, 1, host, sizeof host, &port) != 0) {
        fprintf(stderr, "faultline: fake consul: bad --listen address '%s'\n", listen);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    cli_t *s = calloc(1, sizeof *s);
    if (!s || uv_loop_init(&s->loop) != 0) {
        free(s);
        return 2;
    }
    s->quiet = quiet;
    fl_consul_config_t cfg = {.seed = seed, .on_event = on_event, .event_arg = s};
    uv_signal_init(&s->loop, &s->sigint);
    uv_signal_init(&s->loop, &s->sigterm);
    s->sigint.data = s->sigterm.data = s;
    code = fl_consul_new(&s->loop, &cfg, &s->consul) ? 2 : 0;
    if (!code)
        code = start_agents(s, strcmp(host, "localhost") == 0 ? "127.0.0.1" : host, port, nodes);
    if (!code) {
        uv_signal_start(&s->sigint, on_signal, SIGINT);
        uv_signal_start(&s->sigterm, on_signal, SIGTERM);
    } else {
        stop(s);
    }
    uv_run(&s->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&s->loop) != 0) {
        fprintf(stderr, "faultline: fake consul: internal error: handles left open\n");
        code = code ? code : 1;
    }
    free(s);
    return code;
}

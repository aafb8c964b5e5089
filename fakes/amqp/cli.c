/* `faultline fake amqp`: the fake broker as a small dev server, RabbitMQ-compatible for the
 * clients services use. Its address goes to stdout as amqp://HOST:PORT as soon as it
 * listens; events go to stderr unless --quiet. With --data DIR, durable state survives the
 * process (kill -9 included). SIGINT or SIGTERM closes everything and exits 0. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "fakes/amqp/amqp.h"
#include "lib/err.h"
#include "lib/hostport.h"

static const char usage[] =
    "usage: faultline fake amqp --listen HOST:PORT [--data DIR] [--user U] [--password P]\n"
    "                           [--vhost V]... [--heartbeat SECONDS] [--seed N] [--quiet]\n"
    "  a RabbitMQ-compatible AMQP 0-9-1 broker (user guest/guest and vhost / by default)\n";

typedef struct {
    uv_loop_t loop;
    fl_amqp_t *broker;
    uv_signal_t sigint, sigterm;
    int quiet;
} cli_t;

typedef struct {
    const char *listen, *data, *user, *password;
    char vhosts[4096];
    unsigned long long seed;
    long heartbeat;
    int quiet;
} opts_t;

static void on_event(void *arg, const char *text)
{
    cli_t *s = arg;
    if (!s->quiet)
        fprintf(stderr, "faultline amqp: %s\n", text);
}

static void stop(cli_t *s)
{
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    if (s->broker)
        fl_amqp_close(s->broker, NULL, NULL);
    s->broker = NULL;
}

static void on_signal(uv_signal_t *sig, int signum)
{
    (void)signum;
    stop(sig->data);
}

static int bad(const char *fmt, const char *what)
{
    fprintf(stderr, "faultline: fake amqp: ");
    fprintf(stderr, fmt, what);
    fprintf(stderr, "\n%s", usage);
    return 2;
}

static int parse_args(int argc, char **argv, opts_t *o)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"data", required_argument, NULL, 'd'},
        {"user", required_argument, NULL, 'u'},
        {"password", required_argument, NULL, 'p'},
        {"vhost", required_argument, NULL, 'v'},
        {"seed", required_argument, NULL, 's'},
        {"heartbeat", required_argument, NULL, 'b'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    char *end;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
        switch (c) {
        case 'l':
            o->listen = optarg;
            break;
        case 'd':
            o->data = optarg;
            break;
        case 'u':
            o->user = optarg;
            break;
        case 'p':
            o->password = optarg;
            break;
        case 'v':
            if (!*optarg || strchr(optarg, ',') || strlen(optarg) > 255 ||
                strlen(o->vhosts) + strlen(optarg) + 2 > sizeof o->vhosts)
                return bad("bad --vhost '%s' (1 to 255 bytes, no commas)", optarg);
            if (o->vhosts[0])
                strcat(o->vhosts, ",");
            strcat(o->vhosts, optarg);
            break;
        case 's':
            o->seed = strtoull(optarg, &end, 10);
            if (*end || !*optarg)
                return bad("--seed wants a number, not '%s'", optarg);
            break;
        case 'b':
            o->heartbeat = strtol(optarg, &end, 10);
            if (*end || o->heartbeat < 0 || o->heartbeat > 65535)
                return bad("--heartbeat wants 0 to 65535 seconds, not '%s'", optarg);
            break;
        case 'q':
            o->quiet = 1;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            return bad("unknown option %s", argv[optind - 1]);
        }
    }
    if (!o->listen)
        return bad("%s", "--listen HOST:PORT is required");
    if (optind < argc)
        return bad("unexpected argument '%s'", argv[optind]);
    return -1;
}

int fl_amqp_main(int argc, char **argv)
{
    opts_t o = {.seed = 1};
    int code = parse_args(argc, argv, &o);
    if (code >= 0)
        return code;
    char host[256];
    int port;
    if (fl_hostport_parse(o.listen, 1, host, sizeof host, &port) != 0)
        return bad("bad --listen address '%s'", o.listen);
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    signal(SIGPIPE, SIG_IGN);
    cli_t *s = calloc(1, sizeof *s);
    if (!s || uv_loop_init(&s->loop) != 0) {
        free(s);
        return 2;
    }
    s->quiet = o.quiet;
    fl_amqp_config_t cfg = {
        .user = o.user,
        .password = o.password,
        .vhosts = o.vhosts[0] ? o.vhosts : NULL,
        .data_dir = o.data,
        .seed = o.seed,
        .heartbeat = (uint16_t)o.heartbeat,
        .on_event = on_event,
        .event_arg = s,
    };
    uv_signal_init(&s->loop, &s->sigint);
    uv_signal_init(&s->loop, &s->sigterm);
    s->sigint.data = s->sigterm.data = s;
    int rc = fl_amqp_new(&s->loop, &cfg, &s->broker);
    if (rc) {
        fprintf(stderr, "faultline: fake amqp: cannot start%s%s: %s\n",
                o.data ? " with --data " : "", o.data ? o.data : "", fl_strerror(rc));
        code = 2;
    } else if ((rc = fl_amqp_listen(s->broker, host, port)) != 0) {
        fprintf(stderr, "faultline: fake amqp: cannot listen on %s:%d: %s\n", host, port,
                fl_strerror(rc));
        code = 2;
    } else {
        printf("amqp://%s%s%s:%d\n", strchr(host, ':') ? "[" : "", host,
               strchr(host, ':') ? "]" : "", fl_amqp_port(s->broker));
        fflush(stdout);
        code = 0;
    }
    if (!code) {
        uv_signal_start(&s->sigint, on_signal, SIGINT);
        uv_signal_start(&s->sigterm, on_signal, SIGTERM);
    } else {
        stop(s);
    }
    uv_run(&s->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&s->loop) != 0) {
        fprintf(stderr, "faultline: fake amqp: internal error: handles left open\n");
        code = code ? code : 1;
    }
    free(s);
    return code;
}

/* Unit tests for services/runtime/consul: a real fake Consul (`faultline fake consul`, started
 * here and stopped by PID) and the client on one loop: registration with a TCP check, a watch
 * that sees the instance once its check passes and loses it on deregistration, the
 * no-deregister bug switch, retries against an agent that is not there, bad addresses, and a
 * clean close (uv_loop_close == 0). */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/err.h"
#include "services/runtime/consul.h"

static uv_loop_t loop;
static pid_t agent_pid;
static char agent[64];
static char lines[64][256];
static int nlines;
static char seen[1024];
static int answers, watched_n;

static void start_agent(void)
{
    int fd[2];
    ck_assert_int_eq(pipe(fd), 0);
    agent_pid = fork();
    ck_assert_int_ge(agent_pid, 0);
    if (agent_pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        char bin[512];
        snprintf(bin, sizeof bin, "%s/faultline",
                 getenv("FL_BIN_DIR") ? getenv("FL_BIN_DIR") : ".");
        execl(bin, bin, "fake", "consul", "--listen", "127.0.0.1:0", "--quiet", (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    FILE *f = fdopen(fd[0], "r");
    char line[256] = "";
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f)); /* "node-1 http://127.0.0.1:PORT" */
    fclose(f);
    char *p = strstr(line, "http://");
    ck_assert_ptr_nonnull(p);
    snprintf(agent, sizeof agent, "%s", p + 7);
    agent[strcspn(agent, "\n")] = 0;
}

static void stop_agent(void)
{
    kill(agent_pid, SIGTERM);
    int st;
    waitpid(agent_pid, &st, 0);
}

static void log_line(void *arg, int error, const char *line)
{
    (void)arg;
    (void)error;
    if (nlines < 64)
        snprintf(lines[nlines++], sizeof lines[0], "%s", line);
}

static int logged(const char *needle)
{
    for (int i = 0; i < nlines; i++)
        if (strstr(lines[i], needle))
            return 1;
    return 0;
}

static void on_watch(void *arg, const char *const *addrs, size_t n, uint64_t index)
{
    (void)arg;
    (void)index;
    seen[0] = 0;
    for (size_t i = 0; i < n; i++)
        snprintf(seen + strlen(seen), sizeof seen - strlen(seen), "%s%s", i ? "," : "", addrs[i]);
    watched_n = (int)n;
    answers++;
}

static void on_watchdog(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

/* Runs the loop until cond holds or ms pass. */
#define RUN_UNTIL(cond, ms)                                                                        \
    do {                                                                                           \
        static uv_timer_t wd_;                                                                     \
        static int fired_;                                                                         \
        fired_ = 0;                                                                                \
        uv_timer_init(&loop, &wd_);                                                                \
        wd_.data = &fired_;                                                                        \
        uv_timer_start(&wd_, on_watchdog, ms, 0);                                                  \
        while (!(cond) && !fired_)                                                                 \
            uv_run(&loop, UV_RUN_ONCE);                                                            \
        uv_close((uv_handle_t *)&wd_, NULL);                                                       \
        uv_run(&loop, UV_RUN_NOWAIT);                                                              \
        ck_assert_msg(cond, "not within %d ms: %s", ms, #cond);                                    \
    } while (0)

static void flag(void *arg)
{
    (*(int *)arg)++;
}

static void on_conn(uv_stream_t *s, int status)
{
    (void)s;
    (void)status; /* the TCP check only connects */
}

START_TEST(register_watch_deregister)
{
    start_agent();
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    nlines = answers = 0;
    /* the service's port, for the TCP check */
    uv_tcp_t srv;
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    uv_tcp_init(&loop, &srv);
    ck_assert_int_eq(uv_tcp_bind(&srv, (struct sockaddr *)&sa, 0), 0);
    ck_assert_int_eq(uv_listen((uv_stream_t *)&srv, 16, on_conn), 0);
    struct sockaddr_in got;
    int len = sizeof got;
    uv_tcp_getsockname(&srv, (struct sockaddr *)&got, &len);
    int port = ntohs(got.sin_port);

    fl_cc_t *cc;
    fl_cc_config_t cfg = {agent, log_line, NULL};
    ck_assert_int_eq(fl_cc_new(&loop, &cfg, &cc), 0);
    char target[64], want[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    snprintf(want, sizeof want, "127.0.0.1:%d", port);
    fl_cc_service_t s = {"users-1", "users", "127.0.0.1", port, "blue, v1",
                         "tcp",     target,  "100ms",     "1m"};
    ck_assert_int_eq(fl_cc_register(cc, &s), 0);
    ck_assert_int_eq(fl_cc_register(cc, &s), FL_EINVAL); /* one registration per client */
    ck_assert_int_eq(fl_cc_watch(cc, "users", "2s", on_watch, NULL, NULL), 0);
    RUN_UNTIL(fl_cc_registered(cc), 3000);
    ck_assert(logged("registered with consul at"));
    RUN_UNTIL(watched_n == 1 && strcmp(seen, want) == 0, 3000);
    int done = 0;
    fl_cc_deregister(cc, 0, 1000, flag, &done);
    RUN_UNTIL(done == 1 && watched_n == 0, 3000);
    ck_assert(logged("deregistered from consul"));
    ck_assert_int_eq(fl_cc_registered(cc), 0);
    int closed = 0;
    fl_cc_close(cc, flag, &closed);
    uv_close((uv_handle_t *)&srv, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(closed, 1);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    stop_agent();
}
END_TEST

START_TEST(no_deregister_and_a_missing_agent)
{
    start_agent();
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    nlines = 0;
    fl_cc_t *cc;
    fl_cc_config_t cfg = {agent, log_line, NULL};
    ck_assert_int_eq(fl_cc_new(&loop, &cfg, &cc), 0);
    fl_cc_service_t s = {
        "orders-1", "orders", "127.0.0.1", 9, NULL, "http", "http://127.0.0.1:9/healthz",
        "1s",       NULL};
    ck_assert_int_eq(fl_cc_register(cc, &s), 0);
    RUN_UNTIL(fl_cc_registered(cc), 3000);
    int done = 0;
    fl_cc_deregister(cc, 1, 1000, flag, &done); /* FAULTLINE_BUG=no-deregister */
    ck_assert_int_eq(done, 1);
    ck_assert(logged("not deregistering from consul (FAULTLINE_BUG=no-deregister)"));
    ck_assert_int_eq(fl_cc_registered(cc), 1);
    int closed = 0;
    fl_cc_close(cc, flag, &closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(closed, 1);
    stop_agent();

    /* nobody at the address now: registration retries with backoff until closed */
    nlines = 0;
    ck_assert_int_eq(fl_cc_new(&loop, &cfg, &cc), 0);
    ck_assert_int_eq(fl_cc_register(cc, &s), 0);
    RUN_UNTIL(nlines >= 2, 3000);
    ck_assert(logged("registration failed:"));
    ck_assert(logged("(retrying in 200ms)"));
    closed = 0;
    fl_cc_close(cc, flag, &closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(closed, 1);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(bad_input)
{
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    fl_cc_t *cc;
    fl_cc_config_t cfg = {"consul.example:8500", NULL, NULL};
    ck_assert_int_eq(fl_cc_new(&loop, &cfg, &cc), FL_ESYNTAX); /* no DNS on the loop */
    cfg.addr = "127.0.0.1";
    ck_assert_int_eq(fl_cc_new(&loop, &cfg, &cc), FL_ESYNTAX);
    cfg.addr = "localhost:8500";
    ck_assert_int_eq(fl_cc_new(&loop, &cfg, &cc), 0);
    fl_cc_service_t s = {"a", "a", "127.0.0.1", 1, NULL, "carrier-pigeon", "x", "1s", NULL};
    ck_assert_int_eq(fl_cc_register(cc, &s), FL_EINVAL);
    ck_assert_int_eq(fl_cc_watch(cc, "a", "soon", on_watch, NULL, NULL), FL_EINVAL);
    int closed = 0;
    fl_cc_close(cc, flag, &closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(closed, 1);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    Suite *s = suite_create("consul_client");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, register_watch_deregister);
    tcase_add_test(tc, no_deregister_and_a_missing_agent);
    tcase_add_test(tc, bad_input);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

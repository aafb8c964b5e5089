/* Unit tests for harness/supervisor.c with a real loop, the real shim (FL_BIN_DIR/faultline)
 * and real processes on loopback: readiness by port (STARTING -> UP) and with ready = none,
 * output captured in inst->log (to the last byte, truncated past the ring), crash (SIGKILL,
 * term_signal 9), stop (SIGTERM honoured; SIGKILL after the grace period when ignored),
 * pause/resume (the service really stops, the shim does not), exit codes, a missing command
 * (127 with the message in the log), descendants killed with the instance, restart from
 * on_change while the last process's handles still close, close of a running instance, and
 * the timeline events. A watchdog timer bounds every wait; every test ends with the loop
 * closed (uv_loop_close() == 0), so a leaked handle fails the test. */
#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "harness/addr.h"
#include "harness/supervisor.h"
#include "harness/timeline.h"
#include "lib/err.h"
#include "lib/strv.h"
#include "procfs.h"

#define PYTHON "/usr/bin/python3"

/* A service that follows the wiring contract: listens on BIND:PORT (after DELAY seconds),
 * prints a line to stdout and one to stderr, and on SIGTERM exits 0 (TERM_MODE=exit0), dies
 * by it (default) or ignores it (ignore). */
static const char listener_py[] = "import os, signal, socket, sys, time\n"
                                  "mode = os.environ.get('TERM_MODE', 'exit0')\n"
                                  "if mode == 'exit0':\n"
                                  "    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
                                  "elif mode == 'ignore':\n"
                                  "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                                  "time.sleep(float(os.environ.get('DELAY', '0')))\n"
                                  "s = socket.socket()\n"
                                  "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                                  "s.bind((os.environ['BIND'], int(os.environ['PORT'])))\n"
                                  "s.listen(16)\n"
                                  "print('hello from', os.environ['INSTANCE_ID'], flush=True)\n"
                                  "print('stderr too', file=sys.stderr, flush=True)\n"
                                  "while True:\n"
                                  "    c, _ = s.accept()\n"
                                  "    c.close()\n";

static struct {
    uv_loop_t loop;
    uv_timer_t tick;     /* wakes the loop while a wait polls /proc */
    uv_timer_t watchdog; /* ends a wait that took too long */
    int timed_out;
    fl_run_result_t run;
    fl_scenario_result_t *res;
    fl_timeline_t tl;
    fl_addr_t addr;
    char shim[4096];
    char echo_svc[4096]; /* FL_BIN_DIR/echo-svc when built, else "" */
    fl_instance_t inst;
    int inst_inited;
    int closed;
    fl_inst_state_t states[64]; /* every state on_change saw */
    int nstates;
    pid_t guard; /* see guard_main */
    int guard_fd;
    int restart_on_down; /* on_change restarts the instance when it goes down */
    int restart_rc;
    int nprocs_at_restart;
} F;

static void tick_cb(uv_timer_t *t)
{
    (void)t;
}

static void watchdog_cb(uv_timer_t *t)
{
    F.timed_out = 1;
}

/* A failed check ends the test's process at once (_exit, or SIGKILL on timeout), and the code
 * under test may be what is broken: a guard process, told each process group as it starts,
 * SIGKILLs them all when the test's process is gone (its pipe reads EOF) unless finish() said
 * everything was cleaned up. No process is left behind, whatever fails. */
static void guard_main(int rd)
{
    pid_t groups[64];
    int n = 0;
    int32_t v;
    while (read(rd, &v, sizeof v) == (ssize_t)sizeof v) {
        if (v == 0)
            n = 0; /* finish(): all gone */
        else if (n < 64)
            groups[n++] = v;
    }
    for (int i = 0; i < n; i++)
        kill(-groups[i], SIGKILL);
    _exit(0);
}

static void guard_start(void)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    F.guard = fork();
    ck_assert_int_ge(F.guard, 0);
    if (F.guard == 0) {
        close(fds[1]);
        for (int fd = 3; fd < 1024; fd++)
            if (fd != fds[0])
                close(fd);
        guard_main(fds[0]);
    }
    close(fds[0]);
    F.guard_fd = fds[1];
    fcntl(F.guard_fd, F_SETFD, FD_CLOEXEC); /* never inherited by the services */
}

static void guard_tell(int32_t v)
{
    ssize_t n = write(F.guard_fd, &v, sizeof v);
    ck_assert_int_eq(n, (ssize_t)sizeof v);
}

/* Tells the guard "all clean" and waits for it. */
static void guard_stop(void)
{
    guard_tell(0);
    close(F.guard_fd);
    int st;
    ck_assert_int_eq(waitpid(F.guard, &st, 0), F.guard);
}

/* fl_instance_start, telling the guard about the new process group. */
static int start(fl_instance_t *inst)
{
    int rc = fl_instance_start(inst);
    if (rc == 0)
        guard_tell(inst->pid);
    return rc;
}

static void setup(void)
{
    memset(&F, 0, sizeof F);
    guard_start();
    ck_assert_int_eq(uv_loop_init(&F.loop), 0);
    uv_timer_init(&F.loop, &F.tick);
    uv_timer_init(&F.loop, &F.watchdog);
    F.res = fl_run_result_add(&F.run, "test.lua", "supervisor");
    ck_assert_ptr_nonnull(F.res);
    F.tl.res = F.res;
    F.tl.start_ns = uv_hrtime();
    ck_assert_int_eq(fl_addr_claim(&F.addr, FL_ADDR_X_FIRST), 0);
    const char *dir = getenv("FL_BIN_DIR");
    ck_assert_msg(dir && *dir, "FL_BIN_DIR is not set (run through ctest)");
    snprintf(F.shim, sizeof F.shim, "%s/faultline", dir);
    ck_assert_msg(access(F.shim, X_OK) == 0, "%s is not executable", F.shim);
    snprintf(F.echo_svc, sizeof F.echo_svc, "%s/echo-svc", dir);
    if (access(F.echo_svc, X_OK) != 0)
        F.echo_svc[0] = '\0';
    ck_assert_msg(access(PYTHON, X_OK) == 0, PYTHON " is needed");
}

static void teardown(void)
{
    /* a failed test exits its (forked) process: the shims see it and kill their groups */
}

#define WAIT_FOR(cond, ms)                                                                         \
    do {                                                                                           \
        wait_begin(ms);                                                                            \
        while (!(cond) && !F.timed_out)                                                            \
            uv_run(&F.loop, UV_RUN_ONCE);                                                          \
        wait_end();                                                                                \
        ck_assert_msg((cond), "timed out after %d ms waiting for %s (state %s)", (ms), #cond,      \
                      fl_inst_state_name(F.inst.state));                                           \
    } while (0)

static void wait_begin(int ms)
{
    F.timed_out = 0;
    uv_timer_start(&F.watchdog, watchdog_cb, (uint64_t)ms, 0);
    uv_timer_start(&F.tick, tick_cb, 5, 5);
}

static void wait_end(void)
{
    uv_timer_stop(&F.watchdog);
    uv_timer_stop(&F.tick);
}

/* Runs the loop for ms, whatever happens. */
static void spin(int ms)
{
    wait_begin(ms);
    while (!F.timed_out)
        uv_run(&F.loop, UV_RUN_ONCE);
    wait_end();
}

static void on_change(fl_instance_t *inst, void *arg)
{
    ck_assert_ptr_eq(inst, &F.inst);
    ck_assert_ptr_eq(arg, &F);
    if (F.nstates < 64)
        F.states[F.nstates++] = inst->state;
    if (F.restart_on_down && inst->state == FL_INST_DOWN) {
        F.restart_on_down = 0;
        F.restart_rc = start(inst);
        F.nprocs_at_restart = inst->nprocs;
    }
}

static int saw_state(fl_inst_state_t s)
{
    for (int i = 0; i < F.nstates; i++)
        if (F.states[i] == s)
            return 1;
    return 0;
}

/* Sets up F.inst running argv (extra: more "K=V" for its environment, NULL-terminated). */
static void inst_setup(const char *const *argv, const char *const *extra, fl_ready_t ready)
{
    fl_instance_t *inst = &F.inst;
    memset(inst, 0, sizeof *inst);
    snprintf(inst->name, sizeof inst->name, "svc-1");
    snprintf(inst->service, sizeof inst->service, "svc");
    inst->index = 1;
    fl_addr_instance(&F.addr, 1, 1, inst->host, sizeof inst->host);
    ck_assert_int_eq(fl_addr_next_port(&F.addr, &inst->port), 0);
    char **av = fl_strv_dup((char *const *)argv, 0);
    char **env = calloc(16, sizeof *env);
    ck_assert_ptr_nonnull(av);
    ck_assert_ptr_nonnull(env);
    int n = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "BIND=%s", inst->host);
    env[n++] = strdup(buf);
    snprintf(buf, sizeof buf, "PORT=%d", inst->port);
    env[n++] = strdup(buf);
    env[n++] = strdup("PATH=/usr/bin:/bin");
    env[n++] = strdup("SERVICE_NAME=svc");
    env[n++] = strdup("INSTANCE_ID=svc-1");
    for (int i = 0; extra && extra[i] && n < 15; i++)
        env[n++] = strdup(extra[i]);
    ck_assert_int_eq(fl_instance_init(&F.loop, inst, av, env), 0);
    F.inst_inited = 1;
    inst->shim_exe = F.shim;
    inst->ready = ready;
    inst->grace_ns = 3000000000ull;
    inst->tl = &F.tl;
    inst->on_change = on_change;
    inst->on_change_arg = &F;
    ck_assert_int_eq(inst->state, FL_INST_DOWN);
}

static void setup_listener(const char *const *extra)
{
    const char *argv[] = {PYTHON, "-c", listener_py, NULL};
    inst_setup(argv, extra, FL_READY_PORT);
}

/* The simple service for the basic cases: echo-svc when it is built, else the listener. */
static const char *setup_simple(void)
{
    if (F.echo_svc[0]) {
        const char *argv[] = {F.echo_svc, NULL};
        inst_setup(argv, NULL, FL_READY_PORT);
        return "listening on";
    }
    setup_listener(NULL);
    return "hello from svc-1";
}

static void sh_setup(const char *script, fl_ready_t ready)
{
    const char *argv[] = {"/bin/sh", "-c", script, NULL};
    inst_setup(argv, NULL, ready);
}

static void closed_cb(fl_instance_t *inst)
{
    ck_assert_ptr_eq(inst, &F.inst);
    F.closed++;
}

/* Closes the instance and every handle; the loop must then close cleanly. */
static void finish(void)
{
    if (F.inst_inited && !F.closed) {
        fl_instance_close(&F.inst, closed_cb);
        WAIT_FOR(F.closed, 5000);
    }
    ck_assert_int_eq(F.closed, F.inst_inited ? 1 : 0);
    uv_close((uv_handle_t *)&F.tick, NULL);
    uv_close((uv_handle_t *)&F.watchdog, NULL);
    for (int i = 0; i < 100 && uv_run(&F.loop, UV_RUN_NOWAIT); i++)
        sleep_ms(1);
    ck_assert_int_eq(uv_loop_close(&F.loop), 0);
    guard_stop();
    fl_addr_release(&F.addr);
    fl_run_result_free(&F.run);
}

static int log_count(const char *needle)
{
    char *s = fl_ring_tail(&F.inst.log, 0, NULL);
    ck_assert_ptr_nonnull(s);
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    free(s);
    return n;
}

static int log_has(const char *needle)
{
    return log_count(needle) > 0;
}

/* The text of the first timeline event containing needle, or NULL. All are process events
 * about our instance. */
static const char *event_with(const char *needle)
{
    for (size_t i = 0; i < F.res->nevents; i++) {
        fl_event_t *ev = &F.res->events[i];
        ck_assert_int_eq(ev->kind, FL_EV_PROCESS);
        ck_assert_str_eq(ev->subject, "svc-1");
        if (strstr(ev->text, needle))
            return ev->text;
    }
    return NULL;
}

/* A blocking TCP connection to the instance, or -1. */
static int connect_inst(int rcvtimeo_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct timeval tv = {rcvtimeo_ms / 1000, (rcvtimeo_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)F.inst.port)};
    inet_pton(AF_INET, F.inst.host, &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The service: the shim's child, once it has exec'd (its name is no longer the shim's). */
static pid_t service_pid(void)
{
    pid_t kids[4];
    char comm[64] = "";
    uint64_t deadline = now_ms() + 5000;
    while (now_ms() < deadline) {
        if (proc_children(F.inst.pid, kids, 4) >= 1) {
            proc_comm(kids[0], comm, sizeof comm);
            if (comm[0] && strcmp(comm, "faultline") != 0)
                return kids[0];
        }
        sleep_ms(5);
    }
    ck_abort_msg("the shim %d has no service child", F.inst.pid);
    return -1;
}

/* Open file descriptors of this process: a closed instance must leave none behind. */
static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    ck_assert_ptr_nonnull(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static int all_gone(const pid_t *pids, int n)
{
    for (int i = 0; i < n; i++)
        if (!proc_gone(pids[i]))
            return 0;
    return 1;
}

START_TEST(starting_then_up_with_log)
{
    const char *hello = setup_simple();
    ck_assert_int_eq(start(&F.inst), 0);
    ck_assert_int_eq(F.inst.state, FL_INST_STARTING);
    ck_assert(fl_instance_running(&F.inst));
    ck_assert_int_gt(F.inst.pid, 0);
    ck_assert_uint_eq(F.inst.starts, 1);
    ck_assert_int_eq(start(&F.inst), FL_ESTATE); /* already running */
    WAIT_FOR(F.inst.state == FL_INST_UP, 10000);
    ck_assert(saw_state(FL_INST_UP));
    ck_assert(F.inst.ready_seen);
    /* ready means the port really accepts */
    int fd = connect_inst(1000);
    ck_assert_int_ge(fd, 0);
    close(fd);
    WAIT_FOR(log_has(hello), 5000);
    if (!F.echo_svc[0])
        WAIT_FOR(log_has("stderr too"), 5000);
    char want[64];
    snprintf(want, sizeof want, "started (pid %d)", F.inst.pid);
    ck_assert_ptr_nonnull(event_with(want));
    ck_assert_ptr_nonnull(event_with("ready after "));
    finish();
}
END_TEST

START_TEST(crash_is_sigkill)
{
    setup_simple();
    ck_assert_int_eq(fl_instance_crash(&F.inst), FL_ESTATE); /* not running yet */
    ck_assert_int_eq(start(&F.inst), 0);
    WAIT_FOR(F.inst.state == FL_INST_UP, 10000);
    pid_t shim = F.inst.pid, svc = service_pid();
    ck_assert_int_eq(fl_instance_crash(&F.inst), 0);
    WAIT_FOR(F.inst.state == FL_INST_DOWN, 5000);
    ck_assert(!fl_instance_running(&F.inst));
    ck_assert(saw_state(FL_INST_DOWN));
    ck_assert_int_eq(F.inst.exited, 1);
    ck_assert_int_eq(F.inst.term_signal, SIGKILL);
    ck_assert_int_eq(F.inst.exit_status, 0);
    ck_assert_int_eq(F.inst.expected_exit, 1);
    ck_assert_int_eq(F.inst.pid, 0);
    char what[64];
    fl_instance_describe_exit(&F.inst, what, sizeof what);
    ck_assert_str_eq(what, "killed by SIGKILL");
    const char *ev = event_with("killed by SIGKILL");
    ck_assert_ptr_nonnull(ev);
    ck_assert_ptr_null(strstr(ev, "unexpected"));
    ck_assert_int_eq(fl_instance_crash(&F.inst), FL_ESTATE);
    const pid_t both[] = {shim, svc};
    WAIT_FOR(all_gone(both, 2), 2000);
    finish();
}
END_TEST

START_TEST(stop_sigterm_honoured)
{
    setup_simple();
    ck_assert_int_eq(fl_instance_stop(&F.inst, 1000000000ull), FL_ESTATE);
    ck_assert_int_eq(start(&F.inst), 0);
    WAIT_FOR(F.inst.state == FL_INST_UP, 10000);
    uint64_t t0 = now_ms();
    ck_assert_int_eq(fl_instance_stop(&F.inst, 3000000000ull), 0);
    ck_assert_int_eq(F.inst.state, FL_INST_STOPPING);
    ck_assert(saw_state(FL_INST_STOPPING));
    ck_assert(fl_instance_running(&F.inst));
    ck_assert_int_eq(fl_instance_stop(&F.inst, 3000000000ull), 0); /* again: no-op */
    WAIT_FOR(F.inst.state == FL_INST_DOWN, 5000);
    ck_assert_uint_lt(now_ms() - t0, 2500); /* well before the grace period */
    ck_assert_int_eq(F.inst.term_signal, 0);
    ck_assert_int_eq(F.inst.exit_status, 0);
    ck_assert_int_eq(F.inst.expected_exit, 1);
    ck_assert_ptr_nonnull(event_with("exited with code 0"));
    ck_assert_ptr_null(event_with("grace period"));
    finish();
}
END_TEST

START_TEST(stop_sigkill_after_grace)
{
    sh_setup("trap '' TERM; echo ignoring; exec sleep 1000", FL_READY_NONE);
    ck_assert_int_eq(start(&F.inst), 0);
    WAIT_FOR(log_has("ignoring"), 5000); /* the trap is set */
    pid_t svc = service_pid();
    uint64_t t0 = now_ms();
    ck_assert_int_eq(fl_instance_stop(&F.inst, 300000000ull), 0);
    spin(150);
    ck_assert_int_eq(F.inst.state, FL_INST_STOPPING); /* SIGTERM ignored */
    WAIT_FOR(F.inst.state == FL_INST_DOWN, 5000);
    uint64_t took = now_ms() - t0;
    ck_assert_uint_ge(took, 290);
    ck_assert_uint_lt(took, 2500);
    ck_assert_int_eq(F.inst.term_signal, SIGKILL);
    ck_assert_ptr_nonnull(event_with("still running after the grace period: SIGKILL"));
    WAIT_FOR(proc_gone(svc), 2000);
    finish();
}
END_TEST

START_TEST(pause_and_resume)
{
    setup_listener(NULL);
    ck_assert_int_eq(fl_instance_pause(&F.inst), FL_ESTATE);
    ck_assert_int_eq(start(&F.inst), 0);
    WAIT_FOR(F.inst.state == FL_INST_UP, 10000);
    pid_t shim = F.inst.pid, svc = service_pid();
    ck_assert_int_eq(fl_instance_resume(&F.inst), FL_ESTATE); /* not paused */

    ck_assert_int_eq(fl_instance_pause(&F.inst), 0);
    ck_assert_int_eq(F.inst.state, FL_INST_PAUSED);
    ck_assert(saw_state(FL_INST_PAUSED));
    ck_assert(fl_instance_running(&F.inst));
    ck_assert_int_eq(fl_instance_pause(&F.inst), FL_ESTATE);
    WAIT_FOR(proc_state(svc) == 'T', 2000);
    spin(100);
    ck_assert_int_eq(proc_state(svc), 'T');
    ck_assert_msg(proc_state(shim) != 'T', "the shim is stopped too: it cannot guard the group");
    /* the stopped service accepts (the kernel does) but never answers */
    int fd = connect_inst(200);
    ck_assert_int_ge(fd, 0);
    char c;
    ck_assert_int_eq(recv(fd, &c, 1, 0), -1);
    ck_assert(errno == EAGAIN || errno == EWOULDBLOCK);
    ck_assert_ptr_nonnull(event_with("paused (SIGSTOP)"));

    ck_assert_int_eq(fl_instance_resume(&F.inst), 0);
    ck_assert_int_eq(F.inst.state, FL_INST_UP); /* it was ready before */
    WAIT_FOR(proc_state(svc) != 'T', 2000);
    ck_assert_int_eq(recv(fd, &c, 1, 0), 0); /* the service runs again: it closes us */
    close(fd);
    ck_assert_ptr_nonnull(event_with("resumed (SIGCONT)"));
    finish();
}
END_TEST

START_TEST(stop_while_paused)
{
    setup_listener(NULL);
    ck_assert_int_eq(start(&F.inst), 0);
    WAIT_FOR(F.inst.state == FL_INST_UP, 10000);
    pid_t svc = service_pid();
    ck_assert_int_eq(fl_instance_pause(&F.inst), 0);
    WAIT_FOR(proc_state(svc) == 'T', 2000);
    uint64_t t0 = now_ms();
    ck_assert_int_eq(fl_instance_stop(&F.inst, 3000000000ull), 0);
    WAIT_FOR(F.inst.state == FL_INST_DOWN, 5000);
    ck_assert_uint_lt(now_ms() - t0, 2500); /* SIGTERM acted on once continued */
    ck_assert_int_eq(F.inst.term_signal, 0);
    ck_assert_int_eq(F.inst.exit_status, 0);
    finish();
}
END_TEST

START_TEST(crash_while_paused)
{
    setup_listener(NULL);
    ck_assert_int_eq(start(&F.inst), 0);
    WAIT_FOR(F.inst.state == FL_INST_UP, 10000);
    pid_t pids[2] = {F.inst.pid, service_pid()};
    ck_assert_int_eq(fl_instance_pause(&F.inst), 0);
    WAIT_FOR(proc_state(pids[1]) == 'T', 2000);
    ck_assert_int_eq(fl_instance_crash(&F.inst), 0); /* SIGKILL reaches stopped processes */
    WAIT_FOR(F.inst.state == FL_INST_DOWN, 5000);
    ck_assert_int_eq(F.inst.term_signal, SIGKILL);
    WAIT_FOR(all_gone(pids, 2), 2000);
    finish();
}
END_TEST

START_TEST(close_while_paused)
{
    setup_listener(NULL);
    ck_assert_int_eq(start(&F.inst), 0);
    WAIT_FOR(F.inst.state == FL_INST_UP, 10000);
    pid_t pids[2] = {F.inst.pid, service_pid()};
    ck_assert_int_eq(fl_instance_pause(&F.inst), 0);
    WAIT_FOR(proc_state(pids[1]) == 'T', 2000);
    fl_instance_close(&F.inst, closed_cb);
    WAIT_FOR(F.closed == 1, 5000);
    WAIT_FOR(all_gone(pids, 2), 2000);
    finish();
}
END_TEST

START_TEST(stop_while_starting)
{
    const char *extra[] = {"DELAY=30", NULL}; /* never listens during the test */
    setup_listener(extra);
    ck_assert_int_eq(start(&F.inst), 0);
    service_pid(); /* python runs (and has its SIGTERM handler soon) */
    spin(300);
    ck_assert_int_eq(F.inst.state, FL_INST_STARTING);
    ck_assert_int_eq(fl_instance_stop(&F.inst, 3000000000ull), 0);
    WAIT_FOR(F.inst.state == FL_INST_DOWN, 5000);
    ck_assert(!saw_state(FL_INST_UP));
    ck_assert(!F.inst.ready_seen);
    ck_assert_int_eq(F.inst.exit_status, 0);
    finish();
}
END_TEST

START_TEST(pause_before_ready)
{
    const char *extra[] = {"DELAY=0.3", NULL};
    setup_listener(extra);
    ck_assert_int_eq(start(&F.inst), 0);
    ck_assert_int_eq(fl_instance_pause(&F.inst), 0);
    spin(600);
    ck_assert_int_eq(F.inst.state, FL_INST_PAUSED);
    ck_assert(!saw_state(FL_INST_UP));
    ck_assert_int_eq(fl_instance_resume(&F.inst), 0);
    ck_assert_int_eq(F.inst.state, FL_INST_STARTING); /* never ready: probing again */
    WAIT_FOR(F.inst.state == FL_INST_UP, 10000);
    finish();
}
END_TEST

START_TEST(exit_code_reported)
{
    sh_setup("echo bye; exit 3", FL_READY_NONE);
    ck_assert_int_eq(start(&F.inst), 0);
    WAIT_FOR(F.inst.state == FL_INST_DOWN, 5000);
    ck_assert_int_eq(F.inst.exited, 1);
    ck_assert_int_eq(F.inst.exit_status, 3);
    ck_assert_int_eq(F.inst.term_signal, 0);
    ck_assert_int_eq(F.inst.expected_exit, 0);
    ck_assert(log_has("bye\n"));
    char what[64];
    fl_instance_describe_exit(&F.inst, what, sizeof what);
    ck_assert_str_eq(what, "exited with code 3");
    ck_assert_ptr_nonnull(event_with("exited with code 3 (unexpected)"));
    finish();
}
END_TEST

START_TEST(signal_death_reported)
{
    sh_setup("kill -TERM $$", FL_READY_NONE);
    ck_assert_int_eq(start(&F.inst), 0);
    WAIT_FOR(F.inst.state == FL_INST_DOWN, 5000);
    ck_assert_int_eq(F.inst.term_signal, SIGTERM);
    ck_assert_ptr_nonnull(event_with("killed by SIGTERM (unexpected)"));
    finish();
}
END_TEST

START_TEST(missing_command)
{
    const char *argv[] = {"/nonexistent/svc-binary", NULL};
    inst_setup(argv, NULL, FL_READY_NONE);
    ck_assert_int_eq(start(&F.inst), 0); /* the shim starts; the exec fails */
    WAIT_FOR(F.inst.state == FL_INST_DOWN, 5000);
    ck_assert_int_eq(F.inst.exit_status, 127);
    ck_assert_int_eq(F.inst.term_signal, 0);
    ck_assert(log_has("cannot execute /nonexistent/svc-binary: No such file or directory"));
    finish();
}
END_TEST

START_TEST(spawn_failure)
{
    sh_setup("exit 0", FL_READY_NONE);
    ck_assert_int_eq(start(&F.inst), 0); /* the loop's own fds exist from here */
    WAIT_FOR(F.inst.state == FL_INST_DOWN && F.inst.nprocs == 0, 5000);
    int fds = count_fds();
    F.inst.shim_exe = "/nonexistent/faultline";
    ck_assert_int_eq(start(&F.inst), FL_ESPAWN);
    ck_assert_int_eq(F.inst.state, FL_INST_DOWN);
    ck_assert_int_eq(F.inst.pid, 0);
    ck_assert_uint_eq(F.inst.starts, 1);
    ck_assert_ptr_nonnull(event_with("cannot start: "));
    WAIT_FOR(F.inst.nprocs == 0, 2000);
    ck_assert_int_eq(count_fds(), fds);
    finish();
}
END_TEST

START_TEST(descendants_die_with_crash)
{
    sh_setup("sleep 1000 & sleep 1000 & wait", FL_READY_NONE);
    ck_assert_int_eq(start(&F.inst), 0);
    pid_t d[8];
    int n = 0;
    uint64_t deadline = now_ms() + 5000;
    while ((n = proc_descendants(F.inst.pid, d, 8)) < 3 && now_ms() < deadline)
        sleep_ms(5);
    ck_assert_int_eq(n, 3); /* sh and its two sleeps */
    d[n++] = F.inst.pid;
    ck_assert_int_eq(fl_instance_crash(&F.inst), 0);
    WAIT_FOR(F.inst.state == FL_INST_DOWN, 5000);
    WAIT_FOR(all_gone(d, n), 2000);
    finish();
}
END_TEST

/* The service exits by itself and leaves a background child behind: it goes too. */
START_TEST(descendants_die_with_exit)
{
    sh_setup("sleep 1000 & echo bg=$!; exit 0", FL_READY_NONE);
    ck_assert_int_eq(start(&F.inst), 0);
    WAIT_FOR(F.inst.state == FL_INST_DOWN, 5000);
    ck_assert_int_eq(F.inst.exit_status, 0);
    char *log = fl_ring_tail(&F.inst.log, 0, NULL);
    const char *p = strstr(log, "bg=");
    ck_assert_ptr_nonnull(p);
    pid_t bg = (pid_t)atoi(p + 3);
    free(log);
    ck_assert_int_gt(bg, 0);
    WAIT_FOR(proc_gone(bg), 2000);
    finish();
}
END_TEST

START_TEST(ready_none_is_up_at_once)
{
    sh_setup("exec sleep 1000", FL_READY_NONE);
    ck_assert_int_eq(start(&F.inst), 0);
    ck_assert_int_eq(F.inst.state, FL_INST_UP);
    ck_assert(saw_state(FL_INST_UP)); /* on_change ran inside start */
    ck_assert(F.inst.ready_seen);
    ck_assert_ptr_nonnull(event_with("ready after"));
    finish();
}
END_TEST

START_TEST(restart_after_crash)
{
    setup_listener(NULL);
    ck_assert_int_eq(start(&F.inst), 0);
    WAIT_FOR(F.inst.state == FL_INST_UP, 10000);
    WAIT_FOR(log_has("hello from svc-1"), 5000);
    pid_t first = F.inst.pid;
    F.restart_on_down = 1; /* start again from on_change: the old handles are still closing */
    F.restart_rc = -1;
    ck_assert_int_eq(fl_instance_crash(&F.inst), 0);
    WAIT_FOR(F.inst.starts == 2, 5000);
    ck_assert_int_eq(F.restart_rc, 0);
    /* the new process, and the old one if its handles were still closing (they usually are;
     * on a loaded machine the group scan can outlast them) */
    ck_assert(F.nprocs_at_restart == 1 || F.nprocs_at_restart == 2);
    ck_assert_int_ne(F.inst.pid, first);
    ck_assert_int_eq(F.inst.exited, 0); /* cleared for the new run */
    ck_assert_int_eq(F.inst.expected_exit, 0);
    WAIT_FOR(F.inst.state == FL_INST_UP, 10000);
    WAIT_FOR(log_count("hello from svc-1") == 2, 5000);
    WAIT_FOR(F.inst.nprocs == 1, 2000);
    ck_assert(proc_gone(first));
    finish();
}
END_TEST

START_TEST(restart_after_stop)
{
    setup_listener(NULL);
    int fds = -1;
    for (int round = 1; round <= 3; round++) {
        ck_assert_int_eq(start(&F.inst), 0);
        WAIT_FOR(F.inst.state == FL_INST_UP, 10000);
        ck_assert_int_eq(fl_instance_stop(&F.inst, 3000000000ull), 0);
        WAIT_FOR(F.inst.state == FL_INST_DOWN && F.inst.nprocs == 0, 5000);
        ck_assert_int_eq(F.inst.exit_status, 0);
        if (round == 1)
            fds = count_fds(); /* after the loop's lazily created fds exist */
        else
            ck_assert_int_eq(count_fds(), fds); /* no pipe or socket left behind */
    }
    ck_assert_uint_eq(F.inst.starts, 3);
    finish();
}
END_TEST

START_TEST(close_kills_a_running_instance)
{
    setup_listener(NULL);
    ck_assert_int_eq(start(&F.inst), 0);
    WAIT_FOR(F.inst.state == FL_INST_UP, 10000);
    pid_t pids[2] = {F.inst.pid, service_pid()};
    int changes = F.nstates;
    fl_instance_close(&F.inst, closed_cb);
    ck_assert_int_eq(F.closed, 0); /* not before its handles are closed */
    WAIT_FOR(F.closed == 1, 5000);
    ck_assert_int_eq(F.nstates, changes); /* no on_change once closing */
    ck_assert(proc_gone(pids[0]));        /* the shim has been reaped */
    WAIT_FOR(all_gone(pids, 2), 2000);    /* SIGKILLed with its group */
    ck_assert_int_eq(F.inst.nprocs, 0);
    ck_assert_ptr_null(F.inst.proc);
    finish();
}
END_TEST

START_TEST(close_while_starting)
{
    const char *extra[] = {"DELAY=0.2", NULL};
    setup_listener(extra);
    ck_assert_int_eq(start(&F.inst), 0);
    spin(30); /* probes in flight against a port nobody listens on yet */
    fl_instance_close(&F.inst, closed_cb);
    WAIT_FOR(F.closed == 1, 5000);
    finish();
}
END_TEST

START_TEST(close_never_started)
{
    setup_simple();
    fl_instance_close(&F.inst, closed_cb);
    WAIT_FOR(F.closed == 1, 2000);
    ck_assert_int_eq(start(&F.inst), FL_ESTATE);
    finish();
}
END_TEST

/* More output than the ring holds: the tail is kept to the very last byte. */
START_TEST(log_keeps_the_tail)
{
    sh_setup("i=0; while [ $i -lt 2000 ]; do echo \"line $i of output, padded to be long enough\"; "
             "i=$((i+1)); done; echo LAST",
             FL_READY_NONE);
    ck_assert_int_eq(start(&F.inst), 0);
    WAIT_FOR(F.inst.state == FL_INST_DOWN, 10000);
    ck_assert_int_eq(F.inst.exit_status, 0);
    ck_assert_int_eq(fl_ring_truncated(&F.inst.log), 1);
    size_t len;
    char *s = fl_ring_tail(&F.inst.log, 0, &len);
    ck_assert_uint_gt(F.inst.log.total, len);
    ck_assert_uint_ge(len, 60000);
    ck_assert_str_eq(s + len - 5, "LAST\n");
    ck_assert_ptr_nonnull(strstr(s, "line 1999 of output"));
    ck_assert_ptr_null(strstr(s, "line 0 of output"));
    free(s);
    finish();
}
END_TEST

START_TEST(timeline_events_in_order)
{
    sh_setup("exec sleep 1000", FL_READY_NONE);
    ck_assert_int_eq(start(&F.inst), 0);
    ck_assert_int_eq(fl_instance_pause(&F.inst), 0);
    ck_assert_int_eq(fl_instance_resume(&F.inst), 0);
    ck_assert_int_eq(fl_instance_crash(&F.inst), 0);
    WAIT_FOR(F.inst.state == FL_INST_DOWN, 5000);
    const char *want[] = {"started (pid ", "ready after ", "paused (SIGSTOP)", "resumed (SIGCONT)",
                          "killed by SIGKILL"};
    ck_assert_uint_eq(F.res->nevents, 5);
    uint64_t last = 0;
    for (size_t i = 0; i < 5; i++) {
        fl_event_t *ev = &F.res->events[i];
        ck_assert_msg(strncmp(ev->text, want[i], strlen(want[i])) == 0, "event %zu: '%s'", i,
                      ev->text);
        ck_assert_int_eq(ev->kind, FL_EV_PROCESS);
        ck_assert_int_eq(ev->ok, 1);
        ck_assert_str_eq(ev->subject, "svc-1");
        ck_assert_uint_ge(ev->t_ns, last);
        last = ev->t_ns;
    }
    F.inst.tl = NULL; /* no timeline: nothing recorded, nothing breaks */
    ck_assert_int_eq(start(&F.inst), 0);
    ck_assert_int_eq(fl_instance_crash(&F.inst), 0);
    WAIT_FOR(F.inst.state == FL_INST_DOWN, 5000);
    ck_assert_uint_eq(F.res->nevents, 5);
    finish();
}
END_TEST

START_TEST(state_names)
{
    ck_assert_str_eq(fl_inst_state_name(FL_INST_DOWN), "down");
    ck_assert_str_eq(fl_inst_state_name(FL_INST_STARTING), "starting");
    ck_assert_str_eq(fl_inst_state_name(FL_INST_UP), "up");
    ck_assert_str_eq(fl_inst_state_name(FL_INST_PAUSED), "paused");
    ck_assert_str_eq(fl_inst_state_name(FL_INST_STOPPING), "stopping");
    ck_assert_str_eq(fl_inst_state_name((fl_inst_state_t)99), "?");
    fl_instance_t inst = {.exited = 0};
    char what[64];
    fl_instance_describe_exit(&inst, what, sizeof what);
    ck_assert_str_eq(what, "has not exited");
    finish();
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("supervisor");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 40);
    tcase_add_test(tc, starting_then_up_with_log);
    tcase_add_test(tc, crash_is_sigkill);
    tcase_add_test(tc, stop_sigterm_honoured);
    tcase_add_test(tc, stop_sigkill_after_grace);
    tcase_add_test(tc, pause_and_resume);
    tcase_add_test(tc, stop_while_paused);
    tcase_add_test(tc, pause_before_ready);
    tcase_add_test(tc, crash_while_paused);
    tcase_add_test(tc, close_while_paused);
    tcase_add_test(tc, stop_while_starting);
    tcase_add_test(tc, exit_code_reported);
    tcase_add_test(tc, signal_death_reported);
    tcase_add_test(tc, missing_command);
    tcase_add_test(tc, spawn_failure);
    tcase_add_test(tc, descendants_die_with_crash);
    tcase_add_test(tc, descendants_die_with_exit);
    tcase_add_test(tc, ready_none_is_up_at_once);
    tcase_add_test(tc, restart_after_crash);
    tcase_add_test(tc, restart_after_stop);
    tcase_add_test(tc, close_kills_a_running_instance);
    tcase_add_test(tc, close_while_starting);
    tcase_add_test(tc, close_never_started);
    tcase_add_test(tc, log_keeps_the_tail);
    tcase_add_test(tc, timeline_events_in_order);
    tcase_add_test(tc, state_names);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

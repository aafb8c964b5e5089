/* Unit tests for harness/shim.c, run as the real `faultline __shim HARNESS_PID CMD...` (the
 * way the supervisor starts it: in a new session, so it leads its own process group): the
 * service's exit code and death signal are mirrored; signals sent to the whole group reach
 * the service and not the shim; bad usage exits 2; an unknown command exits 127 naming it; a
 * shim whose harness is not its parent kills its group at once; and the orphan property: when
 * the harness dies by SIGKILL, the service and all its descendants are gone within 2 s. Every
 * wait is bounded; every process started here is killed or reaped before the test ends. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness/shim.h"
#include "procfs.h"

static char shim_exe[4096];

static void find_shim(void)
{
    const char *dir = getenv("FL_BIN_DIR");
    ck_assert_msg(dir && *dir, "FL_BIN_DIR is not set (run through ctest)");
    snprintf(shim_exe, sizeof shim_exe, "%s/faultline", dir);
    ck_assert_msg(access(shim_exe, X_OK) == 0, "%s is not executable", shim_exe);
}

/* Forks, makes the child a session leader (as UV_PROCESS_DETACHED does) with stdout and
 * stderr on the given fds (-1: /dev/null), and execs the shim with argv[] after "faultline".
 * harness is the pid given to the shim (NULL: this process). */
static pid_t spawn_shim(const char *harness, const char *const *args, int out, int err)
{
    char self[16];
    snprintf(self, sizeof self, "%d", (int)getpid());
    const char *argv[32] = {"faultline", FL_SHIM_ARG};
    int n = 2;
    if (harness != (const char *)-1)
        argv[n++] = harness ? harness : self;
    for (int i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        setsid();
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(out >= 0 ? out : devnull, 1);
        dup2(err >= 0 ? err : devnull, 2);
        execv(shim_exe, (char *const *)argv);
        _exit(126);
    }
    return pid;
}

/* waitpid with a deadline; on timeout the whole group is killed and the test fails. */
static int wait_bounded(pid_t pid, int ms)
{
    uint64_t deadline = now_ms() + (uint64_t)ms;
    int status;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        ck_assert_int_eq(r, 0);
        if (now_ms() > deadline) {
            kill(-pid, SIGKILL);
            waitpid(pid, &status, 0);
            ck_abort_msg("pid %d did not exit within %d ms", (int)pid, ms);
        }
        sleep_ms(5);
    }
}

static int run_status(const char *const *args)
{
    pid_t pid = spawn_shim(NULL, args, -1, -1);
    return wait_bounded(pid, 10000);
}

/* Reads what fd holds until EOF (bounded) into a static buffer. */
static const char *slurp(int fd, int ms)
{
    static char buf[8192];
    size_t len = 0;
    uint64_t deadline = now_ms() + (uint64_t)ms;
    while (len < sizeof buf - 1 && now_ms() < deadline) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    return buf;
}

/* Waits (bounded) until the shim's child runs a program called comm; returns its pid. */
static pid_t wait_service(pid_t shim, const char *comm)
{
    uint64_t deadline = now_ms() + 5000;
    while (now_ms() < deadline) {
        pid_t kids[8];
        int n = proc_children(shim, kids, 8);
        char name[64];
        if (n >= 1) {
            proc_comm(kids[0], name, sizeof name);
            if (strcmp(name, comm) == 0)
                return kids[0];
        }
        sleep_ms(5);
    }
    kill(-shim, SIGKILL);
    waitpid(shim, NULL, 0);
    ck_abort_msg("the shim %d never ran %s", (int)shim, comm);
    return -1;
}

START_TEST(exit_code_mirrored)
{
    find_shim();
    const char *three[] = {"/bin/sh", "-c", "exit 3", NULL};
    int st = run_status(three);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 3);
    const char *zero[] = {"/bin/true", NULL};
    st = run_status(zero);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 0);
    const char *big[] = {"/bin/sh", "-c", "exit 255", NULL};
    st = run_status(big);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 255);
}
END_TEST

START_TEST(signal_death_mirrored)
{
    find_shim();
    const char *term[] = {"/bin/sh", "-c", "kill -TERM $$; sleep 5", NULL};
    int st = run_status(term);
    ck_assert(WIFSIGNALED(st));
    ck_assert_int_eq(WTERMSIG(st), SIGTERM);
    const char *usr1[] = {"/bin/sh", "-c", "kill -USR1 $$; sleep 5", NULL};
    st = run_status(usr1);
    ck_assert(WIFSIGNALED(st));
    ck_assert_int_eq(WTERMSIG(st), SIGUSR1);
    const char *kill9[] = {"/bin/sh", "-c", "kill -KILL $$; sleep 5", NULL};
    st = run_status(kill9);
    ck_assert(WIFSIGNALED(st));
    ck_assert_int_eq(WTERMSIG(st), SIGKILL);
}
END_TEST

/* SIGTERM to the whole group (what fl_instance_stop does) kills the service, which the shim
 * survives and then mirrors. */
START_TEST(group_sigterm_reaches_the_service)
{
    find_shim();
    const char *args[] = {"/bin/sleep", "1000", NULL};
    pid_t shim = spawn_shim(NULL, args, -1, -1);
    pid_t svc = wait_service(shim, "sleep");
    ck_assert_int_gt(svc, 0);
    ck_assert_int_eq(kill(-shim, SIGTERM), 0);
    int st = wait_bounded(shim, 5000);
    ck_assert(WIFSIGNALED(st));
    ck_assert_int_eq(WTERMSIG(st), SIGTERM);
}
END_TEST

/* The shim itself ignores the signal: a service that handles SIGTERM decides the outcome. */
START_TEST(shim_survives_group_signals)
{
    find_shim();
    const char *args[] = {"/bin/sh", "-c",
                          "trap 'exit 7' TERM INT HUP; while :; do sleep 0.02; done", NULL};
    pid_t shim = spawn_shim(NULL, args, -1, -1);
    wait_service(shim, "sh");
    sleep_ms(50); /* let sh install its trap */
    ck_assert_int_eq(kill(-shim, SIGTERM), 0);
    int st = wait_bounded(shim, 5000);
    ck_assert_msg(WIFEXITED(st), "the shim died by signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    ck_assert_int_eq(WEXITSTATUS(st), 7);
}
END_TEST

START_TEST(bad_usage)
{
    find_shim();
    const char *none[] = {NULL};
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = spawn_shim((const char *)-1, none, -1, fds[1]); /* no pid, no command */
    close(fds[1]);
    int st = wait_bounded(pid, 5000);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 2);
    ck_assert_ptr_nonnull(strstr(slurp(fds[0], 2000), "usage: faultline __shim"));
    close(fds[0]);

    st = run_status(none); /* a pid but no command */
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 2);

    const char *cmd[] = {"/bin/true", NULL};
    const char *bad_pids[] = {"", "abc", "12x", "-5", "0"};
    for (size_t i = 0; i < sizeof bad_pids / sizeof bad_pids[0]; i++) {
        pid = spawn_shim(bad_pids[i], cmd, -1, -1);
        st = wait_bounded(pid, 5000);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 2, "harness pid '%s': status %#x",
                      bad_pids[i], st);
    }
}
END_TEST

START_TEST(unknown_command)
{
    find_shim();
    const char *args[] = {"/nonexistent/service-binary", "--flag", NULL};
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = spawn_shim(NULL, args, -1, fds[1]);
    close(fds[1]);
    int st = wait_bounded(pid, 5000);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 127);
    const char *err = slurp(fds[0], 2000);
    ck_assert_ptr_nonnull(strstr(err, "cannot execute /nonexistent/service-binary"));
    ck_assert_ptr_nonnull(strstr(err, "No such file"));
    close(fds[0]);
}
END_TEST

START_TEST(output_passes_through)
{
    find_shim();
    const char *args[] = {"/bin/sh", "-c", "echo to-stdout; echo to-stderr >&2", NULL};
    int out[2], err[2];
    ck_assert_int_eq(pipe(out), 0);
    ck_assert_int_eq(pipe(err), 0);
    pid_t pid = spawn_shim(NULL, args, out[1], err[1]);
    close(out[1]);
    close(err[1]);
    int st = wait_bounded(pid, 5000);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    ck_assert_str_eq(slurp(out[0], 2000), "to-stdout\n");
    ck_assert_str_eq(slurp(err[0], 2000), "to-stderr\n");
    close(out[0]);
    close(err[0]);
}
END_TEST

/* A shim whose parent is not the harness it names (the harness died before it started)
 * kills its group at once: the service never runs. */
START_TEST(harness_already_gone)
{
    find_shim();
    char marker[] = "/tmp/fl-shim-test-XXXXXX";
    int fd = mkstemp(marker);
    ck_assert_int_ge(fd, 0);
    close(fd);
    unlink(marker);
    char script[128];
    snprintf(script, sizeof script, "touch %s", marker);
    const char *args[] = {"/bin/sh", "-c", script, NULL};
    pid_t pid = spawn_shim("1", args, -1, -1);
    int st = wait_bounded(pid, 5000);
    ck_assert((WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) ||
              (WIFEXITED(st) && WEXITSTATUS(st) == 137));
    sleep_ms(100);
    ck_assert_msg(access(marker, F_OK) != 0, "the service ran although its harness was gone");
    unlink(marker);
}
END_TEST

/* Started by hand, not detached (so in its caller's process group), a shim that must kill
 * "its group" must not take its caller down with it. */
START_TEST(not_detached_spares_its_caller)
{
    find_shim();
    pid_t caller = fork();
    ck_assert_int_ge(caller, 0);
    if (caller == 0) {
        setpgid(0, 0); /* a group of our own, so the test runner is never at risk */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        pid_t shim = fork();
        if (shim == 0) { /* no setsid: the shim shares the caller's group */
            int devnull = open("/dev/null", O_RDWR);
            dup2(devnull, 1);
            dup2(devnull, 2);
            execl(shim_exe, "faultline", FL_SHIM_ARG, "1", "/bin/true", (char *)NULL);
            _exit(126);
        }
        int st;
        waitpid(shim, &st, 0);
        _exit(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL ? 0 : 3);
    }
    int st = wait_bounded(caller, 5000);
    ck_assert_msg(WIFEXITED(st), "the shim killed its caller (signal %d)",
                  WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    ck_assert_int_eq(WEXITSTATUS(st), 0);
}
END_TEST

/* Reads n whitespace-separated pids from fd (bounded). */
static void read_pids(int fd, pid_t *out, int n)
{
    char buf[512];
    size_t len = 0;
    uint64_t deadline = now_ms() + 5000;
    for (;;) {
        buf[len] = '\0';
        int got = 0, off = 0, v, used;
        while (got < n && sscanf(buf + off, "%d%n", &v, &used) == 1) {
            out[got++] = v;
            off += used;
        }
        if (got == n && strchr(buf + off, '\n'))
            return;
        ck_assert_msg(now_ms() < deadline, "only %d of %d pids arrived: '%s'", got, n, buf);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t r = read(fd, buf + len, sizeof buf - 1 - len);
        ck_assert_int_gt(r, 0);
        len += (size_t)r;
    }
}

/* The orphan property. This process becomes a subreaper so the orphans come back to it and
 * can be reaped (and nothing is left behind); a "harness" child starts the shim and is then
 * SIGKILLed; the shim, the service and its descendants must all be dead within 2 s. */
static void orphan_case(int paused)
{
    find_shim();
    ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    int pids[2], shimpid[2];
    ck_assert_int_eq(pipe(pids), 0);
    ck_assert_int_eq(pipe(shimpid), 0);
    pid_t self = getpid();
    pid_t harness = fork();
    ck_assert_int_ge(harness, 0);
    if (harness == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
        if (getppid() != self)
            _exit(1);
        char me[16];
        snprintf(me, sizeof me, "%d", (int)getpid());
        const char *args[] = {"/bin/sh", "-c",
                              "sleep 1000 & echo $!; sleep 1000 & echo $!; echo $$; wait", NULL};
        pid_t shim = spawn_shim(me, args, pids[1], -1);
        dprintf(shimpid[1], "%d\n", (int)shim);
        for (;;)
            pause();
    }
    close(pids[1]);
    close(shimpid[1]);
    pid_t all[4]; /* sleep, sleep, sh, shim */
    read_pids(pids[0], all, 3);
    read_pids(shimpid[0], all + 3, 1);
    close(pids[0]);
    close(shimpid[0]);
    for (int i = 0; i < 4; i++)
        ck_assert_msg(!proc_gone(all[i]), "pid %d is not running", (int)all[i]);
    if (paused) { /* as fl_instance_pause does: the group stops, the shim is woken */
        kill(-all[3], SIGSTOP);
        kill(all[3], SIGCONT);
        uint64_t until = now_ms() + 2000;
        while (proc_state(all[0]) != 'T' && now_ms() < until)
            sleep_ms(5);
        ck_assert_int_eq(proc_state(all[0]), 'T');
    }

    ck_assert_int_eq(kill(harness, SIGKILL), 0);
    int st;
    ck_assert_int_eq(waitpid(harness, &st, 0), harness);
    uint64_t t0 = now_ms();
    int alive = 4;
    while (alive && now_ms() - t0 < 2000) {
        while (waitpid(-1, NULL, WNOHANG) > 0) /* orphans come to us: reap them */
            ;
        alive = 0;
        for (int i = 0; i < 4; i++)
            alive += !proc_gone(all[i]);
        if (alive)
            sleep_ms(5);
    }
    if (alive) {
        for (int i = 0; i < 4; i++)
            kill(all[i], SIGKILL);
        kill(-all[3], SIGKILL);
    }
    for (uint64_t until = now_ms() + 2000; now_ms() < until;) { /* leave no zombies */
        pid_t r = waitpid(-1, NULL, WNOHANG);
        if (r < 0)
            break;
        if (r == 0)
            sleep_ms(5);
    }
    ck_assert_msg(alive == 0, "%d of the shim, service and descendants outlived the harness",
                  alive);
}

START_TEST(orphan_everything_dies_with_the_harness)
{
    orphan_case(0);
}
END_TEST

START_TEST(orphan_paused_group_dies_with_the_harness)
{
    orphan_case(1);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("shim");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, exit_code_mirrored);
    tcase_add_test(tc, signal_death_mirrored);
    tcase_add_test(tc, group_sigterm_reaches_the_service);
    tcase_add_test(tc, shim_survives_group_signals);
    tcase_add_test(tc, bad_usage);
    tcase_add_test(tc, unknown_command);
    tcase_add_test(tc, output_passes_through);
    tcase_add_test(tc, harness_already_gone);
    tcase_add_test(tc, not_detached_spares_its_caller);
    tcase_add_test(tc, orphan_everything_dies_with_the_harness);
    tcase_add_test(tc, orphan_paused_group_dies_with_the_harness);
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

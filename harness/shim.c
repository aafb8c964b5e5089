/* The instance shim (shim.h). Runs between fork and the service: keep it small, synchronous
 * and free of libuv. */
#include "harness/shim.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* Signals the harness sends to a whole instance group that the shim itself must survive. */
static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

#define DEATH_SIGNAL (SIGRTMIN + 3)

static void kill_group_and_die(int sig)
{
    (void)sig;
    kill(0, SIGCONT); /* a paused group must wake to die... */
    kill(0, SIGKILL); /* ...though SIGKILL reaches stopped processes too; this kills us */
    _exit(137);
}

static void ignore_signal(int sig)
{
    (void)sig;
}

static void set_handler(int sig, void (*fn)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(sig, &sa, NULL);
}

static void exec_service(char **argv, int armed_fd)
{
    /* The child starts with the shim's ignoring handlers: restore the defaults, then tell
     * the supervisor (armed_fd) that signals now reach the service. The supervisor holds
     * back catchable signals until then, so a stop sent right after the start is not lost
     * in this window. */
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
        signal(forwarded[i], SIG_DFL);
    signal(DEATH_SIGNAL, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (armed_fd >= 0) {
        ssize_t w;
        do
            w = write(armed_fd, "1", 1);
        while (w < 0 && errno == EINTR);
        close(armed_fd);
    }
    const char *soft = getenv(FL_SHIM_NOFILE_ENV);
    if (soft) {
        struct rlimit r;
        if (getrlimit(RLIMIT_NOFILE, &r) == 0) {
            r.rlim_cur = (rlim_t)strtoull(soft, NULL, 10);
            if (r.rlim_cur > 0 && r.rlim_cur <= r.rlim_max)
                setrlimit(RLIMIT_NOFILE, &r);
        }
        unsetenv(FL_SHIM_NOFILE_ENV);
    }
    execvp(argv[0], argv);
    fprintf(stderr, "faultline: cannot execute %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

int fl_shim_main(int argc, char **argv)
{
    int armed_fd = -1, cmd = 3;
    if (argc >= 6 && strcmp(argv[3], "--armed-fd") == 0) {
        armed_fd = atoi(argv[4]);
        cmd = 5;
        if (armed_fd < 3 || fcntl(armed_fd, F_GETFD) < 0) {
            fprintf(stderr, "faultline %s: bad --armed-fd '%s'\n", FL_SHIM_ARG, argv[4]);
            return 2;
        }
    }
    if (argc < cmd + 1) {
        fprintf(stderr, "usage: faultline %s HARNESS_PID [--armed-fd FD] CMD [ARG...]\n",
                FL_SHIM_ARG);
        return 2;
    }
    char *end;
    errno = 0;
    long hp = strtol(argv[2], &end, 10);
    if (errno || end == argv[2] || *end || hp <= 0 || hp != (pid_t)hp) {
        fprintf(stderr, "faultline %s: bad HARNESS_PID '%s'\n", FL_SHIM_ARG, argv[2]);
        return 2;
    }
    pid_t harness = (pid_t)hp;
    /* Everything below signals "our group" (kill(0, ...)): make sure it is ours alone, even
     * when started by hand rather than by the supervisor (which starts us detached). */
    if (getpgrp() != getpid())
        setsid();

    set_handler(DEATH_SIGNAL, kill_group_and_die);
    prctl(PR_SET_PDEATHSIG, DEATH_SIGNAL);
    if (getppid() != harness) /* the harness died before prctl took effect */
        kill_group_and_die(0);
    /* Orphaned descendants of the service are reparented to us, not to init. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
        set_handler(forwarded[i], ignore_signal);

    pid_t child = fork();
    if (child < 0) {
        fprintf(stderr, "faultline: cannot fork: %s\n", strerror(errno));
        return 127;
    }
    if (child == 0)
        exec_service(argv + cmd, armed_fd);
    if (armed_fd >= 0)
        close(armed_fd); /* the child's copy is the one that reports */

    int status = 0;
    for (;;) {
        pid_t p = waitpid(-1, &status, 0);
        if (p == child)
            break;
        if (p < 0 && errno != EINTR)
            return 127;
        /* p is a reparented descendant: reaped, keep waiting for the service */
    }
    if (WIFEXITED(status))
        _exit(WEXITSTATUS(status));
    int sig = WTERMSIG(status);
    /* Die by the same signal, without a core file of our own. */
    struct rlimit nocore = {0, 0};
    setrlimit(RLIMIT_CORE, &nocore);
    signal(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
    _exit(128 + sig);
}

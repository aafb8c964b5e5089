/* The supervisor (supervisor.h). Each start allocates an fl_proc_t holding the process and
 * its two output pipes; it is freed in the last close callback, so a restart never touches
 * handles that are still closing. */
#include "harness/supervisor.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/shim.h"
#include "lib/err.h"
#include "lib/strv.h"

#define LOG_RING_BYTES (64 * 1024)
#define PROBE_INTERVAL_MS 10

struct fl_proc {
    uv_process_t proc;
    uv_pipe_t out, err;
    uv_pipe_t ctl; /* the shim's child writes one byte here once signals reach it */
    int open;      /* handles not yet closed */
    fl_instance_t *inst;
    char readbuf[16384];
    char ctlbuf[8];
};

static void changed(fl_instance_t *inst)
{
    if (inst->on_change)
        inst->on_change(inst, inst->on_change_arg);
}

/* A process event; the reports draw the instance's lane from the state it records, which is
 * the state the instance is in once the event has happened (stopping still counts as up). */
static void event(fl_instance_t *inst, const char *fmt, const char *detail)
{
    static const fl_proc_state_t lane[] = {
        [FL_INST_DOWN] = FL_PS_DOWN,     [FL_INST_STARTING] = FL_PS_STARTING,
        [FL_INST_UP] = FL_PS_UP,         [FL_INST_PAUSED] = FL_PS_PAUSED,
        [FL_INST_STOPPING] = FL_PS_NONE,
    };
    fl_proc_state_t st =
        (unsigned)inst->state < sizeof lane / sizeof lane[0] ? lane[inst->state] : FL_PS_NONE;
    if (inst->tl)
        fl_timeline_process(inst->tl, inst->name, st, fmt, detail);
}

const char *fl_inst_state_name(fl_inst_state_t s)
{
    static const char *const names[] = {"down", "starting", "up", "paused", "stopping"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "?";
}

int fl_instance_running(const fl_instance_t *inst)
{
    return inst->state != FL_INST_DOWN;
}

static void try_finish_close(fl_instance_t *inst);

static void timer_closed(uv_handle_t *h)
{
    fl_instance_t *inst = h->data;
    fl_ring_free(&inst->log);
    fl_strv_free(inst->argv);
    fl_strv_free(inst->env);
    inst->argv = inst->env = NULL;
    if (inst->close_cb)
        inst->close_cb(inst);
}

static void try_finish_close(fl_instance_t *inst)
{
    if (!inst->closing || inst->nprocs || inst->probe || uv_is_closing((uv_handle_t *)&inst->timer))
        return;
    uv_close((uv_handle_t *)&inst->timer, timer_closed);
}

int fl_instance_init(uv_loop_t *loop, fl_instance_t *inst, char **argv, char **env)
{
    inst->loop = loop;
    inst->argv = argv;
    inst->env = env;
    inst->state = FL_INST_DOWN;
    int rc = fl_ring_init(&inst->log, LOG_RING_BYTES);
    if (rc)
        return rc;
    uv_timer_init(loop, &inst->timer);
    inst->timer.data = inst;
    return 0;
}

/* ---- output capture ---- */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    fl_proc_t *p = h->data; /* each read is consumed before the next: one buffer is enough */
    (void)suggested;
    buf->base = p->readbuf;
    buf->len = sizeof p->readbuf;
}

static void proc_handle_closed(uv_handle_t *h)
{
    fl_proc_t *p = h->data;
    if (--p->open > 0)
        return;
    fl_instance_t *inst = p->inst;
    if (inst->proc == p)
        inst->proc = NULL;
    inst->nprocs--;
    free(p);
    try_finish_close(inst);
}

static void close_pipe(fl_proc_t *p, uv_pipe_t *pipe)
{
    if (!uv_is_closing((uv_handle_t *)pipe))
        uv_close((uv_handle_t *)pipe, proc_handle_closed);
}

static void ctl_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    fl_proc_t *p = h->data;
    (void)suggested;
    buf->base = p->ctlbuf;
    buf->len = sizeof p->ctlbuf;
}

/* The service's process can now receive signals: deliver a stop held back meanwhile. */
static void ctl_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    fl_proc_t *p = s->data;
    fl_instance_t *inst = p->inst;
    (void)buf;
    if (n < 0) {
        close_pipe(p, (uv_pipe_t *)s);
        return;
    }
    if (n == 0 || inst->proc != p || inst->armed)
        return;
    inst->armed = 1;
    if (inst->term_pending && inst->state == FL_INST_STOPPING)
        kill(-inst->pid, SIGTERM);
    inst->term_pending = 0;
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    fl_proc_t *p = s->data;
    if (n > 0)
        fl_ring_write(&p->inst->log, buf->base, (size_t)n);
    else if (n < 0)
        close_pipe(p, (uv_pipe_t *)s);
}

/* Reads whatever the pipe still holds, without waiting, before it is closed. */
static void drain_pipe(fl_proc_t *p, uv_pipe_t *pipe)
{
    uv_os_fd_t fd;
    if (uv_is_closing((uv_handle_t *)pipe) || uv_fileno((uv_handle_t *)pipe, &fd) != 0)
        return;
    char buf[16384];
    for (int i = 0; i < 64; i++) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0)
            break;
        fl_ring_write(&p->inst->log, buf, (size_t)n);
    }
}

/* ---- exit ---- */

void fl_instance_describe_exit(const fl_instance_t *inst, char *out, size_t outlen)
{
    if (!inst->exited)
        snprintf(out, outlen, "has not exited");
    else if (inst->term_signal)
        snprintf(out, outlen, "killed by SIG%s",
                 sigabbrev_np(inst->term_signal) ? sigabbrev_np(inst->term_signal) : "?");
    else
        snprintf(out, outlen, "exited with code %lld", (long long)inst->exit_status);
}

/* Counts the live processes of group pgid other than skip_pid: *alive of them, *running of
 * them not stopped. Zombies do not count: they hold no socket, and where PID 1 does not
 * reap orphans they would never go. Reads /proc: call it only on rare events. */
static void group_scan(int pgid, int skip_pid, int *alive, int *running)
{
    *alive = *running = 0;
    DIR *d = opendir("/proc");
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] < '1' || de->d_name[0] > '9')
            continue;
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", de->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        const char *rp = strrchr(buf, ')'); /* the command name may hold anything */
        char state;
        int ppid, pgrp;
        if (!rp || sscanf(rp + 1, " %c %d %d", &state, &ppid, &pgrp) != 3 || pgrp != pgid ||
            state == 'Z' || state == 'X' || atoi(de->d_name) == skip_pid)
            continue;
        (*alive)++;
        if (state != 'T' && state != 't')
            (*running)++;
    }
    closedir(d);
}

static int group_alive(int pgid)
{
    int alive, running;
    group_scan(pgid, 0, &alive, &running);
    return alive > 0;
}

int fl_instance_stopped(const fl_instance_t *inst)
{
    if (inst->state != FL_INST_PAUSED)
        return 0;
    int alive, running;
    group_scan(inst->pid, inst->pid, &alive, &running); /* the shim stays awake on purpose */
    return running == 0;
}

static void now_down(fl_instance_t *inst)
{
    inst->state = FL_INST_DOWN;
    inst->pid = 0;
    inst->reaping_pgid = 0;
    char what[64];
    fl_instance_describe_exit(inst, what, sizeof what);
    event(inst, inst->expected_exit ? "%s" : "%s (unexpected)", what);
    changed(inst);
}

static void reap_tick(uv_timer_t *t)
{
    fl_instance_t *inst = t->data;
    int gone = !group_alive(inst->reaping_pgid);
    if (!gone && uv_hrtime() - inst->reaping_since < 5000000000ull)
        return;
    uv_timer_stop(&inst->timer);
    if (!gone)
        event(inst, "%s", "processes of its group still alive 5s after SIGKILL");
    now_down(inst);
}

static void exit_cb(uv_process_t *proc, int64_t status, int term_signal)
{
    fl_proc_t *p = proc->data;
    fl_instance_t *inst = p->inst;
    /* Descendants still in the group (the service's own children) go with it. */
    kill(-proc->pid, SIGKILL);
    drain_pipe(p, &p->out);
    drain_pipe(p, &p->err);
    close_pipe(p, &p->out);
    close_pipe(p, &p->err);
    close_pipe(p, &p->ctl);
    uv_close((uv_handle_t *)proc, proc_handle_closed);
    if (inst->proc != p)
        return;
    inst->proc = NULL; /* closing on its own; a restart may spawn the next one now */

    inst->exited = 1;
    inst->exit_status = status;
    inst->term_signal = term_signal;
    uv_timer_stop(&inst->timer);
    /* The shim can die before the service it guards (one SIGKILL to the group reaches both,
     * in no set order): the instance is down only once nothing of it runs any more, or a
     * restart could find the old listener still there. */
    if (!inst->closing && group_alive(proc->pid)) {
        inst->reaping_pgid = proc->pid;
        inst->reaping_since = uv_hrtime();
        uv_timer_start(&inst->timer, reap_tick, 1, 1);
        return;
    }
    now_down(inst);
}

/* ---- readiness ---- */

static void probe_closed(uv_handle_t *h)
{
    fl_instance_t *inst = h->data;
    free(h);
    inst->probe = NULL;
    try_finish_close(inst);
}

static void became_ready(fl_instance_t *inst)
{
    uv_timer_stop(&inst->timer);
    inst->state = FL_INST_UP;
    inst->ready_seen = 1;
    char detail[64];
    snprintf(detail, sizeof detail, "%.1fms", (uv_hrtime() - inst->started_ns) / 1e6);
    event(inst, "ready after %s", detail);
    changed(inst);
}

static void probe_connected(uv_connect_t *req, int status)
{
    uv_tcp_t *probe = (uv_tcp_t *)req->handle;
    fl_instance_t *inst = probe->data;
    free(req);
    uv_close((uv_handle_t *)probe, probe_closed);
    if (status == 0 && inst->state == FL_INST_STARTING && !inst->closing)
        became_ready(inst);
}

static void probe_tick(uv_timer_t *t)
{
    fl_instance_t *inst = t->data;
    if (inst->state != FL_INST_STARTING || inst->probe)
        return;
    if (inst->ready == FL_READY_CHECK) {
        if (inst->ready_check && inst->ready_check(inst, inst->ready_check_arg))
            became_ready(inst);
        return;
    }
    struct sockaddr_in sa;
    if (uv_ip4_addr(inst->host, inst->port, &sa) != 0)
        return;
    uv_tcp_t *probe = malloc(sizeof *probe);
    uv_connect_t *req = malloc(sizeof *req);
    if (!probe || !req) {
        free(probe);
        free(req);
        return;
    }
    uv_tcp_init(inst->loop, probe);
    probe->data = inst;
    inst->probe = probe;
    if (uv_tcp_connect(req, probe, (struct sockaddr *)&sa, probe_connected) != 0) {
        free(req);
        uv_close((uv_handle_t *)probe, probe_closed);
    }
}

/* ---- control ---- */

static char **shim_argv(fl_instance_t *inst, char *pidbuf, size_t pidlen)
{
    size_t n = 0;
    while (inst->argv[n])
        n++;
    char **argv = calloc(n + 6, sizeof *argv);
    if (!argv)
        return NULL;
    snprintf(pidbuf, pidlen, "%d", (int)getpid());
    argv[0] = (char *)inst->shim_exe;
    argv[1] = FL_SHIM_ARG;
    argv[2] = pidbuf;
    argv[3] = "--armed-fd";
    argv[4] = "3";
    memcpy(argv + 5, inst->argv, n * sizeof *argv);
    return argv;
}

int fl_instance_start(fl_instance_t *inst)
{
    if (inst->state != FL_INST_DOWN || inst->closing)
        return FL_ESTATE;
    fl_proc_t *p = calloc(1, sizeof *p);
    char pidbuf[16];
    char **argv = shim_argv(inst, pidbuf, sizeof pidbuf);
    if (!p || !argv)
        goto nomem;
    p->inst = inst;
    uv_pipe_init(inst->loop, &p->out, 0);
    uv_pipe_init(inst->loop, &p->err, 0);
    uv_pipe_init(inst->loop, &p->ctl, 0);
    p->out.data = p->err.data = p->ctl.data = p->proc.data = p;
    uv_stdio_container_t stdio[4] = {
        {.flags = UV_IGNORE},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&p->out},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&p->err},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&p->ctl},
    };
    uv_process_options_t opt = {
        .exit_cb = exit_cb,
        .file = inst->shim_exe,
        .args = argv,
        .env = inst->env,
        .flags = UV_PROCESS_DETACHED, /* own session and process group */
        .stdio_count = 4,
        .stdio = stdio,
    };
    int rc = uv_spawn(inst->loop, &p->proc, &opt);
    free(argv);
    if (rc != 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s", uv_strerror(rc));
        event(inst, "cannot start: %s", msg);
        p->open = 4;
        inst->nprocs++;
        uv_close((uv_handle_t *)&p->proc, proc_handle_closed);
        uv_close((uv_handle_t *)&p->out, proc_handle_closed);
        uv_close((uv_handle_t *)&p->err, proc_handle_closed);
        uv_close((uv_handle_t *)&p->ctl, proc_handle_closed);
        return FL_ESPAWN;
    }
    p->open = 4;
    inst->nprocs++;
    inst->proc = p;
    inst->pid = p->proc.pid;
    inst->exited = 0;
    inst->expected_exit = 0;
    inst->ready_seen = 0;
    inst->armed = 0;
    inst->term_pending = 0;
    inst->starts++;
    inst->started_ns = uv_hrtime();
    uv_read_start((uv_stream_t *)&p->out, alloc_cb, read_cb);
    uv_read_start((uv_stream_t *)&p->err, alloc_cb, read_cb);
    uv_read_start((uv_stream_t *)&p->ctl, ctl_alloc, ctl_read);
    inst->state = FL_INST_STARTING;
    char detail[48];
    snprintf(detail, sizeof detail, "pid %d", inst->pid);
    event(inst, "started (%s)", detail);
    if (inst->ready == FL_READY_NONE)
        became_ready(inst);
    else
        uv_timer_start(&inst->timer, probe_tick, 0, PROBE_INTERVAL_MS);
    return 0;
nomem:
    free(p);
    free(argv);
    return FL_ENOMEM;
}

int fl_instance_crash(fl_instance_t *inst)
{
    if (!fl_instance_running(inst))
        return FL_ESTATE;
    if (inst->reaping_pgid) { /* already dying: reap_tick reports when it is gone */
        inst->expected_exit = 1;
        return 0;
    }
    inst->expected_exit = 1;
    kill(-inst->pid, SIGKILL);
    return 0;
}

static void grace_expired(uv_timer_t *t)
{
    fl_instance_t *inst = t->data;
    if (inst->state != FL_INST_STOPPING)
        return;
    event(inst, "%s", "still running after the grace period: SIGKILL");
    kill(-inst->pid, SIGKILL);
}

int fl_instance_stop(fl_instance_t *inst, uint64_t grace_ns)
{
    if (!fl_instance_running(inst))
        return FL_ESTATE;
    if (inst->state == FL_INST_STOPPING || inst->reaping_pgid) {
        inst->expected_exit = 1;
        return 0;
    }
    int was_paused = inst->state == FL_INST_PAUSED;
    inst->expected_exit = 1;
    inst->state = FL_INST_STOPPING;
    if (inst->armed)
        kill(-inst->pid, SIGTERM);
    else /* the service cannot take it yet: ctl_read sends it when it can */
        inst->term_pending = 1;
    if (was_paused) /* a stopped process acts on SIGTERM only once continued */
        kill(-inst->pid, SIGCONT);
    uv_timer_stop(&inst->timer);
    uv_timer_start(&inst->timer, grace_expired, grace_ns / 1000000 + 1, 0);
    changed(inst);
    return 0;
}

int fl_instance_pause(fl_instance_t *inst)
{
    if ((inst->state != FL_INST_UP && inst->state != FL_INST_STARTING) || inst->reaping_pgid)
        return FL_ESTATE;
    kill(-inst->pid, SIGSTOP);
    kill(inst->pid, SIGCONT); /* the shim itself must stay awake to guard the group */
    uv_timer_stop(&inst->timer);
    inst->state = FL_INST_PAUSED;
    event(inst, "%s", "paused (SIGSTOP)");
    changed(inst);
    return 0;
}

int fl_instance_resume(fl_instance_t *inst)
{
    if (inst->state != FL_INST_PAUSED)
        return FL_ESTATE;
    kill(-inst->pid, SIGCONT);
    if (inst->ready_seen) {
        inst->state = FL_INST_UP;
    } else { /* paused before it was ready: keep probing */
        inst->state = FL_INST_STARTING;
        uv_timer_start(&inst->timer, probe_tick, 0, PROBE_INTERVAL_MS);
    }
    event(inst, "%s", "resumed (SIGCONT)");
    changed(inst);
    return 0;
}

void fl_instance_close(fl_instance_t *inst, void (*close_cb)(fl_instance_t *inst))
{
    inst->close_cb = close_cb;
    inst->closing = 1;
    inst->on_change = NULL;
    if (inst->state != FL_INST_DOWN && inst->pid > 0) {
        inst->expected_exit = 1;
        kill(-inst->pid, SIGKILL);
    }
    uv_timer_stop(&inst->timer);
    try_finish_close(inst);
}

/* The supervisor: starts instances (a process each, through the shim, see shim.h),
 * signals them (crash, stop, pause, resume), captures their output in a bounded ring, probes
 * readiness (the port accepts connections) and records every process event on the
 * timeline. It never waits: every change is reported through the instance's on_change. */
#ifndef FL_SUPERVISOR_H
#define FL_SUPERVISOR_H

#include <stdint.h>
#include <uv.h>

#include "harness/timeline.h"
#include "lib/ring.h"

typedef enum {
    FL_INST_DOWN,     /* not running (never started, exited, killed) */
    FL_INST_STARTING, /* running, not ready yet */
    FL_INST_UP,       /* running and ready */
    FL_INST_PAUSED,   /* SIGSTOPped */
    FL_INST_STOPPING, /* SIGTERM sent, waiting for exit (SIGKILL after the grace period) */
} fl_inst_state_t;

typedef enum {
    FL_READY_PORT,  /* ready when host:port accepts a TCP connection */
    FL_READY_NONE,  /* ready as soon as it is started */
    FL_READY_CHECK, /* ready when ready_check(inst, arg) says so (polled like the port) */
} fl_ready_t;

typedef struct fl_instance fl_instance_t;
typedef struct fl_proc fl_proc_t; /* one spawned process: freed when its handles close */

struct fl_instance {
    uv_loop_t *loop;
    char name[80];    /* "users-2" */
    char service[64]; /* "users" */
    int index;        /* replica, from 1 */
    char host[32];
    int port;
    char **argv; /* owned, NULL-terminated: the service's command */
    char **env;  /* owned, NULL-terminated: "K=V" */
    const char *shim_exe;
    fl_ready_t ready;
    int (*ready_check)(fl_instance_t *inst, void *arg); /* FL_READY_CHECK */
    void *ready_check_arg;
    uint64_t grace_ns; /* SIGTERM → SIGKILL */
    fl_timeline_t *tl;

    fl_inst_state_t state;
    int pid;    /* of the shim, which leads the instance's process group; 0 when down */
    int exited; /* the last run ended (exit_status / term_signal valid) */
    int64_t exit_status;
    int term_signal;
    int expected_exit; /* the harness asked for the last exit (crash, stop, teardown) */
    int ready_seen;    /* the current run has been ready once */
    int armed;         /* the service's process takes signals (see shim.h --armed-fd) */
    int reaping_pgid;  /* the shim exited; waiting for the rest of its group to die */
    uint64_t reaping_since;
    int term_pending; /* a stop waits for armed */
    unsigned starts;
    uint64_t started_ns;
    fl_ring_t log;

    fl_proc_t *proc;  /* the running process, or NULL */
    int nprocs;       /* processes whose handles are not all closed yet */
    uv_timer_t timer; /* readiness probing, then the stop grace period */
    uv_tcp_t *probe;  /* a connect attempt in flight, or NULL */
    int closing;
    void (*close_cb)(fl_instance_t *inst);

    void (*on_change)(fl_instance_t *inst, void *arg);
    void *on_change_arg;
};

/* Sets up an instance (no process yet). Takes ownership of argv and env. Returns 0 or
 * FL_ENOMEM. */
int fl_instance_init(uv_loop_t *loop, fl_instance_t *inst, char **argv, char **env);
/* Spawns the process. Returns 0, FL_ESTATE (already running) or FL_ESPAWN. */
int fl_instance_start(fl_instance_t *inst);
/* SIGKILLs the instance's whole process group. FL_ESTATE when not running. */
int fl_instance_crash(fl_instance_t *inst);
/* SIGTERM, then SIGKILL after grace_ns. FL_ESTATE when not running. */
int fl_instance_stop(fl_instance_t *inst, uint64_t grace_ns);
/* SIGSTOP / SIGCONT the service and its descendants. FL_ESTATE when not running / paused. */
int fl_instance_pause(fl_instance_t *inst);
int fl_instance_resume(fl_instance_t *inst);
int fl_instance_running(const fl_instance_t *inst);
/* 1 when the instance is paused and no process of it (the shim aside) still runs: SIGSTOP
 * takes effect when each process is next scheduled, not at once. */
int fl_instance_stopped(const fl_instance_t *inst);
const char *fl_inst_state_name(fl_inst_state_t s);
/* Describes the last exit ("exited with code 1", "killed by SIGKILL") into out. */
void fl_instance_describe_exit(const fl_instance_t *inst, char *out, size_t outlen);
/* Kills the process if running and closes every handle; close_cb runs when all are closed
 * (the instance's memory may be freed then, not before). */
void fl_instance_close(fl_instance_t *inst, void (*close_cb)(fl_instance_t *inst));

#endif

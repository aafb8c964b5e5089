/* The instance shim: `faultline __shim HARNESS_PID [--armed-fd FD] CMD [ARG...]`. The supervisor
 * starts every instance through it, in a new session whose process group holds the shim, the
 * service and all its descendants. The shim forks and execs the service, then waits:
 *  - when the service exits, the shim exits the same way (same code, or same signal), so the
 *    harness sees the service's own fate;
 *  - when the harness dies, even by SIGKILL, the kernel tells the shim (PR_SET_PDEATHSIG)
 *    and the shim SIGKILLs the whole group: no instance outlives its harness.
 * The shim ignores the signals the harness sends to the group (SIGTERM, SIGINT, ...) so
 * that only the service reacts; SIGKILL takes the shim down with it, and SIGSTOP stops it
 * until the supervisor sends it alone a SIGCONT. With --armed-fd, the service's process
 * writes one byte to FD (and closes it) once it has restored default signal handling, just
 * before exec: until then the supervisor holds catchable signals back. */
#ifndef FL_SHIM_H
#define FL_SHIM_H

#define FL_SHIM_ARG "__shim"
/* The harness raises its own descriptor limit; the shim restores the one this variable
 * holds (and removes the variable) before it starts the service. */
#define FL_SHIM_NOFILE_ENV "FAULTLINE_NOFILE_SOFT"

/* Runs the shim; never returns on success (exits like the service). */
int fl_shim_main(int argc, char **argv);

#endif

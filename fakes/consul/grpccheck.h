/* One gRPC health check call (grpc.health.v1.Health/Check over cleartext HTTP/2), for the
 * fake's GRPC checks (checks.c). Internal to fakes/consul. */
#ifndef FL_CONSUL_GRPCCHECK_H
#define FL_CONSUL_GRPCCHECK_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct grpc_probe grpc_probe_t;

/* passing: 1 for SERVING; output: Consul's words for the result. */
typedef void (*grpc_probe_cb)(void *arg, int passing, const char *output);

/* Calls target ("host:port" or "host:port/service") within timeout_ns; cb runs once, from a
 * loop callback, unless cancelled; freed(freed_arg) once the probe's handles are closed.
 * Returns 0 (and *out), or -1 with Consul's words for a target it cannot dial in err (cb and
 * freed are then never called). */
int grpc_probe_start(uv_loop_t *loop, const char *target, uint64_t timeout_ns, grpc_probe_cb cb,
                     void *arg, void (*freed)(void *), void *freed_arg, grpc_probe_t **out,
                     char *err, size_t errlen);
/* Abandons the call: cb is not called; the probe frees itself once its handles close. */
void grpc_probe_cancel(grpc_probe_t *p);

#endif

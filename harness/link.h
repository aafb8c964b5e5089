/* Links: the fault proxies. A link listens on a harness address and forwards every
 * connection it accepts to one upstream address, byte for byte in both directions, with
 * half-close propagated and bounded memory per connection (a slow reader stops the proxy
 * reading from the writer). Toxics (toxic.h) added to a link apply to the connections it
 * accepts from then on and to those already open. A process using links must ignore
 * SIGPIPE (a peer that went away makes writes fail with EPIPE, which links handle). */
#ifndef FL_LINK_H
#define FL_LINK_H

#include <stdint.h>
#include <uv.h>

#include "harness/timeline.h"
#include "harness/toxic.h"
#include "lib/rng.h"

#define FL_LINK_MAX_TOXIC_PARAMS 8

typedef struct {
    uint64_t accepted;        /* connections accepted */
    uint64_t active;          /* open now */
    uint64_t upstream_failed; /* the upstream refused or was unreachable */
    uint64_t refused;         /* reset at accept by a refuse toxic */
    uint64_t resets;          /* connections ended by a reset either way */
    uint64_t bytes[2];        /* forwarded, per direction (FL_DIR_UP, FL_DIR_DOWN) */
    uint64_t spliced;         /* of those, bytes moved by splice(2), never copied by the link */
} fl_link_stats_t;

typedef struct conn conn_t;

typedef struct fl_link {
    uv_loop_t *loop;
    char name[176];  /* "gateway-1->users-2", or the listen address when standalone */
    char client[80]; /* instance names; "" when standalone */
    char server[80];
    char listen_host[64];
    int listen_port;
    char up_host[64];
    int up_port;
    uv_tcp_t listener;
    uv_timer_t sweep;        /* resets connections stuck in a graceful close */
    uint64_t drain_limit_ns; /* how long a graceful close may wait for a reader (5 s) */
    fl_toxic_t *toxics;      /* in the order they were added */
    conn_t *conns;
    fl_link_stats_t stats;
    fl_timeline_t *tl; /* may be NULL */
    fl_rng_t *rng;
    uint64_t next_conn_id;
    int closing;
    int open_refs;
    void (*close_cb)(struct fl_link *l);
    char *scratch;      /* read buffer of the pipes that forward straight through... */
    int splice_pipe[2]; /* ...or, on Linux, the kernel pipe they splice(2) through (2 fds) */
    int splice_state;   /* 0 not made yet, 1 made, -1 none (cannot, or no_splice) */
    size_t splice_size; /* its capacity */
    int no_splice;      /* set before use: forward through the scratch buffer only */
    void *data;         /* for the owner */
} fl_link_t;

/* A toxic as asked for, before validation: type name, where it applies, and named
 * parameters (values are numbers). */
typedef struct {
    const char *type;
    const char *name; /* NULL: "<type>_<direction>" (made unique) */
    int dirs;         /* 0: the type's default (downstream) */
    double toxicity;  /* 0..1; set to 1 by fl_toxic_spec_init */
    long first;       /* -1: every connection */
    long *shared;     /* NULL, or where `first` counts: one budget for several links (the
                         toxic's `shared`), counted from the connections already open */
    int nparams;
    const char *pname[FL_LINK_MAX_TOXIC_PARAMS];
    double pvalue[FL_LINK_MAX_TOXIC_PARAMS];
} fl_toxic_spec_t;

void fl_toxic_spec_init(fl_toxic_spec_t *spec, const char *type);

/* Starts listening on listen_host:listen_port (0 picks a port) and forwarding to
 * up_host:up_port. Returns 0 or a negative libuv code (UV_EADDRINUSE...). Whatever it
 * returns, the link must be closed with fl_link_close before its memory is freed. */
int fl_link_open(uv_loop_t *loop, fl_link_t *l, const char *listen_host, int listen_port,
                 const char *up_host, int up_port, fl_rng_t *rng);
/* Changes where new connections go (open ones keep their upstream). */
void fl_link_set_upstream(fl_link_t *l, const char *up_host, int up_port);
/* Validates spec and adds the toxic. On a bad spec returns FL_EINVAL (unknown type,
 * unknown or missing parameter, value out of range, duplicate name) with a message in err;
 * FL_ENOMEM otherwise. *out (if not NULL) gets the toxic, owned by the link. */
int fl_link_add_toxic(fl_link_t *l, const fl_toxic_spec_t *spec, fl_toxic_t **out, char *err,
                      size_t errlen);
fl_toxic_t *fl_link_find_toxic(fl_link_t *l, const char *name);
/* Removes a toxic: whatever it held is passed on, in order. 0 or FL_ENOTFOUND. */
int fl_link_remove_toxic(fl_link_t *l, const char *name);
/* Removes every toxic. */
void fl_link_heal(fl_link_t *l);
/* Closes every connection (with a reset when reset is 1), keeps listening. */
void fl_link_drop_connections(fl_link_t *l, int reset);
/* Stops listening, closes every connection, frees every toxic; cb once all is closed. */
void fl_link_close(fl_link_t *l, void (*cb)(fl_link_t *l));
const char *fl_dir_name(fl_dir_t d);
/* "upstream", "downstream" or "both" → bitmask; 0 when unknown. */
int fl_dirs_parse(const char *s);
const char *fl_dirs_name(int dirs);

#endif

/* Toxics: the faults a link applies to the bytes it forwards (the Toxiproxy model). A toxic
 * is a small vtable (fl_toxic_type_t) in a file of its own under harness/toxics/, listed
 * once in the registry (toxics/registry.c); adding a fault is adding a file.
 *
 * On a link, each direction of each connection is a pipe: bytes read from one socket pass
 * through a chain of stages, one per toxic that applies to that connection and direction,
 * and are written to the other socket. A stage receives chunks in order, and passes them on
 * (now or later, whole or split), holds them, or drops them. The pipe counts the bytes read
 * but not yet written, wherever they are, and stops reading above a high-water mark: memory
 * per connection stays bounded whatever the toxics or the peers do. */
#ifndef FL_TOXIC_H
#define FL_TOXIC_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef enum { FL_DIR_UP = 0, FL_DIR_DOWN = 1 } fl_dir_t; /* up: client→server */
#define FL_DIRS_BOTH 3                                    /* bitmask: 1 << FL_DIR_UP | ... */

#define FL_TOXIC_MAX_PARAMS 4

/* A run of bytes in flight. off is how much of data has already been passed on. */
typedef struct fl_chunk {
    struct fl_chunk *next;
    size_t len, off;
    uint64_t t_ns;   /* when it was read from the source socket (uv_hrtime) */
    uint64_t due_ns; /* free for the toxic holding it: when to pass it on */
    char data[];
} fl_chunk_t;

typedef struct {
    const char *name;
    double min, max, def;
    int required;
    const char *doc;
} fl_toxic_param_t;

typedef struct {
    uint64_t connections; /* connections (or connection directions) it applied to */
    uint64_t chunks;      /* chunks it acted on */
    uint64_t bytes;       /* bytes it delayed, held, sliced or dropped */
    uint64_t dropped;     /* bytes it discarded */
    uint64_t resets;      /* connections it reset (RST) */
    uint64_t closes;      /* connections it closed */
    uint64_t refused;     /* connections refused at accept */
} fl_toxic_stats_t;

typedef struct fl_stage fl_stage_t;
typedef struct fl_toxic fl_toxic_t;

typedef struct {
    const char *name;
    const char *doc;
    fl_toxic_param_t params[FL_TOXIC_MAX_PARAMS]; /* unused entries have name NULL */
    size_t state_size;                            /* per stage, zeroed */
    /* refuse-style toxics act on new connections only: accept() → 1 resets the connection
     * at once. Such toxics have no stages. */
    int (*accept)(fl_toxic_t *t);
    /* The stage joined a pipe (new connection, or a toxic added to an open one). */
    void (*start)(fl_stage_t *s);
    /* A chunk arrives; the stage owns it and must emit, hold or drop it. NULL: pass on. */
    void (*data)(fl_stage_t *s, fl_chunk_t *c);
    /* The source half-closed and every earlier chunk has been given to data(). NULL: pass
     * the EOF on at once (fine for stages that hold nothing). */
    void (*eof)(fl_stage_t *s);
    /* The stage's timer fired. */
    void (*timer)(fl_stage_t *s);
    /* The toxic is being removed: pass on everything held, in order (and a held EOF).
     * NULL: emit s->held, then the EOF if one arrived and was held (got_eof && !eof_out). */
    void (*flush)(fl_stage_t *s);
} fl_toxic_type_t;

/* A toxic on a link, as a scenario added it. */
struct fl_toxic {
    const fl_toxic_type_t *type;
    char name[64];   /* unique on its link */
    int dirs;        /* 1 << FL_DIR_UP and/or 1 << FL_DIR_DOWN */
    double toxicity; /* probability that it applies to a connection */
    long first;      /* applies only to the first N connections after it was added; -1: all */
    long considered; /* connections drawn for so far */
    long *shared;    /* when set, `first` counts here: one budget for several links */
    double p[FL_TOXIC_MAX_PARAMS];
    fl_toxic_stats_t stats;
    uint64_t added_ns;
    uint64_t fault_id; /* the scenario's fault this toxic is part of (timeline); 0: none */
    struct fl_link *link;
    fl_toxic_t *next;
};

struct fl_pipe;
/* A FIFO of chunks, for toxics that hold data. */
typedef struct {
    struct fl_chunk *head, *tail;
    size_t bytes;
} fl_chunk_queue_t;

struct fl_stage {
    fl_toxic_t *toxic;
    struct fl_pipe *pipe;
    fl_stage_t *next;      /* downstream; NULL: the destination socket */
    fl_chunk_queue_t held; /* what the toxic holds back; freed with the stage */
    uv_timer_t timer;
    int timer_inited;
    int got_eof; /* eof() was called */
    int eof_out; /* the stage passed the EOF on */
    int removed; /* detached from the pipe; freed once its timer is closed */
    _Alignas(max_align_t) unsigned char state[];
};

/* The registry: every toxic type, NULL-terminated. */
extern const fl_toxic_type_t *const fl_toxic_types[];
const fl_toxic_type_t *fl_toxic_type_find(const char *name);

/* ---- what a toxic may call ---- */

/* Passes c (or what is left of it after off) on to the next stage or the socket. */
void fl_stage_emit(fl_stage_t *s, fl_chunk_t *c);
/* Passes the source's EOF on (after everything emitted before). */
void fl_stage_emit_eof(fl_stage_t *s);
/* For toxics that hold data and release it on a schedule: counts c's bytes, queues it on
 * s->held, and, when the hold was empty, calls the type's timer function at once (the one
 * function that releases what is due and arms the timer for the rest). */
void fl_stage_hold(fl_stage_t *s, fl_chunk_t *c);
/* An eof() for such toxics: passes the EOF on now if nothing is held; otherwise the timer
 * function passes it on once the hold is empty (it checks s->got_eof). */
void fl_stage_eof_after_held(fl_stage_t *s);
/* Takes up to max bytes from the head of s->held (the whole head chunk when it fits, else
 * a split); NULL when nothing is held or on FL_ENOMEM. */
fl_chunk_t *fl_stage_take(fl_stage_t *s, size_t max);
/* Discards c, counting it as dropped. */
void fl_stage_drop(fl_stage_t *s, fl_chunk_t *c);
/* One-shot timer in nanoseconds (millisecond resolution on the loop); restarts if running. */
void fl_stage_timer_start(fl_stage_t *s, uint64_t ns);
void fl_stage_timer_stop(fl_stage_t *s);
/* Ends the whole connection: RST to both peers, or an orderly close (FIN). */
void fl_stage_reset(fl_stage_t *s);
void fl_stage_close(fl_stage_t *s);
/* A uniform number in [0, 1) from the run's seeded generator. */
double fl_stage_random(fl_stage_t *s);
uint64_t fl_stage_now_ns(fl_stage_t *s);
/* Splits the first n unsent bytes of c into a new chunk (NULL on FL_ENOMEM). */
fl_chunk_t *fl_chunk_split(fl_chunk_t *c, size_t n);
void fl_chunk_free(fl_chunk_t *c);
void fl_chunk_queue_push(fl_chunk_queue_t *q, fl_chunk_t *c);
fl_chunk_t *fl_chunk_queue_pop(fl_chunk_queue_t *q);

#define FL_STAGE_STATE(s, type) ((type *)(void *)(s)->state)

#endif

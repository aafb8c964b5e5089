/* The scenario engine: one Lua 5.4 state per scenario file. Loading the file runs its top
 * level, which declares topology{...} and scenario(name, [opts], fn). Running a scenario
 * builds a fresh topology (one fl_instance_t per replica), then runs fn(t) in a coroutine
 * that yields on every waiting call (t:sleep, t:eventually, t:start, ...) and is resumed
 * from libuv callbacks: the loop never blocks. Whatever ends the scenario (return, failed
 * assert, Lua error, usage error, timeout), every process is stopped and every handle
 * closed before the done callback runs. */
#ifndef FL_ENGINE_H
#define FL_ENGINE_H

#include <stddef.h>

#include "harness/timeline.h"

struct fl_run;
typedef struct fl_engine fl_engine_t;

/* Loads a scenario file. On failure returns FL_ESYNTAX (or FL_ENOMEM) and writes a
 * "FILE:LINE: message" line into err. */
int fl_engine_load(struct fl_run *run, const char *path, fl_engine_t **out, char *err,
                   size_t errlen);
size_t fl_engine_count(const fl_engine_t *e);
const char *fl_engine_path(const fl_engine_t *e);
/* The file's topology in one line (fl_topology_describe), malloc'd, or NULL. */
char *fl_engine_topology(const fl_engine_t *e);
const char *fl_engine_name(const fl_engine_t *e, size_t i);
/* The mutants the file's topology declares (topology mutants), NULL-terminated. */
char *const *fl_engine_mutants(const fl_engine_t *e);
/* The mutants scenario i claims to catch (its catches option), NULL-terminated. */
char *const *fl_engine_catches(const fl_engine_t *e, size_t i);
/* 1 when "file: name" of scenario i matches the Lua pattern. */
int fl_engine_matches(fl_engine_t *e, size_t i, const char *pattern);
/* Runs scenario i, filling res; done(arg) runs (from a loop callback) once it has ended and
 * everything it started is gone. */
void fl_engine_run(fl_engine_t *e, size_t i, fl_scenario_result_t *res, void (*done)(void *),
                   void *arg);
void fl_engine_free(fl_engine_t *e);

#endif

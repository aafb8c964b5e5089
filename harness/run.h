/* A run: `faultline run [options] PATH...`. Owns the loop, the claimed address range, the
 * seeded RNG and the results; loads every scenario file first (so a configuration mistake
 * stops the run before any process starts), then runs the selected scenarios one after
 * another, each with a fresh topology, and writes the reports. */
#ifndef FL_RUN_H
#define FL_RUN_H

#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "harness/addr.h"
#include "harness/timeline.h"
#include "lib/rng.h"
#include "reports/report.h"

typedef struct {
    const char *filter; /* Lua pattern over "file: name", or NULL */
    uint64_t seed;
    int seed_given;
    uint64_t timeout_ns; /* per scenario */
    int fail_fast;
    int quiet, verbose;
    const char *junit_path, *html_path, *json_path;
    unsigned shard, nshards;  /* --shard I/N: 1 <= I <= N; 0/0 without */
    int mutants;              /* --mutants: a baseline, then once per mutant */
    const char *only_mutants; /* --mutants=a,b: only these (comma-separated), or NULL */
    char **paths;             /* files or folders */
    int npaths;
} fl_run_options_t;

typedef struct fl_run {
    uv_loop_t *loop;
    fl_run_options_t opt;
    fl_addr_t addr;
    fl_rng_t rng;
    char *self_exe; /* for the shim */
    char *bin_dir;  /* searched first for bare command names */
    fl_run_result_t result;
    fl_console_t console;
    int usage_errors;   /* load errors and usage verdicts: exit code 2 */
    const char *mutant; /* --mutants: FAULTLINE_BUG of every service started now, or NULL */
} fl_run_t;

/* Runs everything; returns the process exit code (0 passed, 1 failed, 2 usage/config). */
int fl_run_main(fl_run_options_t *opt);

#endif

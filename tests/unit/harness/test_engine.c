/* Unit tests for harness/engine.c (with prelude.lua and lua_links.c), driven in-process: a
 * hand-built run (real loop, claimed 127.X range, seeded RNG, the real shim FL_BIN_DIR/faultline,
 * echo-svc), Lua scenario files written to a temp dir, fl_engine_load, then fl_engine_run of
 * one scenario at a time with the loop run until its done callback. Each result is checked:
 * verdict, message, where ("file:line" of the user's line), traceback, the timeline (kinds,
 * texts, order) and the logs kept. Covered: pass; t:expect (continues, "(and N more failed
 * expectations)"); t:assert (stops); Lua errors (traceback); usage errors in a scenario (typo
 * with a suggestion, bad duration, wrong type, unknown service, stale t and instance); timeouts
 * (a busy loop stopped by the instruction hook, a long sleep stopped by the deadline timer with
 * its processes torn down); t:eventually / t:always; skip; load errors; setup failures;
 * process control; links (wiring, faults and their stats, leftovers, partitions, a connection
 * open at teardown, bytes held by a partition at teardown); seeded randomness.
 *
 * After every scenario, and after fl_engine_free, the loop must close (uv_loop_close() == 0:
 * a handle a scenario leaked fails the test; the loop is then initialised afresh), and no
 * process carrying this test's environment marker may remain (zombies count as gone: PID 1
 * may not reap them here). A guard process kills marked processes if the test dies. */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "harness/addr.h"
#include "harness/engine.h"
#include "harness/run.h"
#include "harness/timeline.h"
#include "lib/err.h"
#include "lib/rng.h"
#include "procfs.h"

#define MARK_VAR "FL_ENGINE_TEST_MARK"
#define RUN_WAIT_MS 15000 /* the watchdog of one scenario run */
#define MAX_RESULTS 64    /* results are preallocated, so pointers to them stay valid */

static struct {
    uv_loop_t loop;
    int loop_open;
    fl_run_t run;
    fl_run_result_t results;
    char dir[64];
    char mark[64];
    char *console_buf;
    size_t console_len;
    pid_t guard;
    int guard_fd;
    char at_buf[8][600]; /* lf_at's rotating results */
    int at_next;
    int timed_out;
    int probe_count; /* marked processes seen by the probe timer during a run (-1: no probe) */
} F;

/* ---------------------------------------------------------------- processes ---- */

/* 1 when /proc/PID/environ holds MARK_VAR=mark as one entry. */
static int proc_marked(pid_t pid, const char *mark)
{
    char path[64], want[128];
    snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
    snprintf(want, sizeof want, MARK_VAR "=%s", mark);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char *buf = NULL;
    size_t cap = 0, len = 0, n;
    char chunk[4096];
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            char *nb = realloc(buf, cap);
            if (!nb)
                break;
            buf = nb;
        }
        memcpy(buf + len, chunk, n);
        len += n;
    }
    fclose(f);
    int found = 0;
    for (size_t i = 0; buf && i < len && !found; i += strlen(buf + i) + 1) {
        buf[len] = '\0';
        found = strcmp(buf + i, want) == 0;
    }
    free(buf);
    return found;
}

/* The live (not zombie) processes carrying the marker, into out; how many (at most max). */
static int marked_pids(const char *mark, pid_t *out, int max)
{
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < max) {
        char *end;
        long p = strtol(de->d_name, &end, 10);
        if (*end || p <= 0 || p == getpid())
            continue;
        if (proc_marked((pid_t)p, mark) && !proc_gone((pid_t)p))
            out[n++] = (pid_t)p;
    }
    closedir(d);
    return n;
}

/* A failed check ends the test's process at once, and the engine may be what is broken: a
 * guard process SIGKILLs every marked process when the test's process is gone (its pipe reads
 * EOF) unless told that everything was cleaned up. */
static void guard_main(int rd)
{
    char v = 0;
    int clean = 0;
    while (read(rd, &v, 1) == 1)
        clean = v == 'c';
    if (!clean) {
        pid_t pids[256];
        for (int round = 0; round < 5; round++) {
            int n = marked_pids(F.mark, pids, 256);
            for (int i = 0; i < n; i++)
                kill(pids[i], SIGKILL);
            if (!n)
                break;
            sleep_ms(50);
        }
    }
    _exit(0);
}

static void guard_start(void)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    F.guard = fork();
    ck_assert_int_ge(F.guard, 0);
    if (F.guard == 0) {
        close(fds[1]);
        for (int fd = 3; fd < 1024; fd++)
            if (fd != fds[0])
                close(fd);
        guard_main(fds[0]);
    }
    close(fds[0]);
    F.guard_fd = fds[1];
    fcntl(F.guard_fd, F_SETFD, FD_CLOEXEC); /* never inherited by the services */
}

static void guard_stop(void)
{
    ck_assert_int_eq(write(F.guard_fd, "c", 1), 1);
    close(F.guard_fd);
    int st;
    ck_assert_int_eq(waitpid(F.guard, &st, 0), F.guard);
}

/* No marked process may remain; SIGKILLed ones get a moment to die. */
static void assert_no_marked_processes(void)
{
    pid_t pids[64];
    int n = 0;
    uint64_t deadline = now_ms() + 2000;
    while ((n = marked_pids(F.mark, pids, 64)) > 0 && now_ms() < deadline)
        sleep_ms(10);
    if (n > 0) {
        char comm[64];
        proc_comm(pids[0], comm, sizeof comm);
        ck_abort_msg("%d process(es) carrying the marker remain, e.g. pid %d (%s, state %c)", n,
                     (int)pids[0], comm, proc_state(pids[0]));
    }
}

/* ---------------------------------------------------------------- the loop ---- */

static void count_handle(uv_handle_t *h, void *arg)
{
    char *out = arg;
    size_t len = strlen(out);
    snprintf(out + len, 512 - len, "%s%s%s", len ? ", " : "",
             uv_handle_type_name(uv_handle_get_type(h)), uv_is_closing(h) ? " (closing)" : "");
}

/* Every handle must be closed: the loop closes, and is then initialised afresh. */
static void assert_loop_closes(void)
{
    for (int i = 0; i < 50 && uv_run(&F.loop, UV_RUN_NOWAIT); i++)
        sleep_ms(1);
    char open[512] = "";
    uv_walk(&F.loop, count_handle, open);
    int rc = uv_loop_close(&F.loop);
    ck_assert_msg(rc == 0, "the loop does not close (%s): handles left: %s", uv_strerror(rc), open);
    F.loop_open = 0;
    ck_assert_int_eq(uv_loop_init(&F.loop), 0);
    F.loop_open = 1;
}

/* ---------------------------------------------------------------- fixture ---- */

static void setup(void)
{
    memset(&F, 0, sizeof F);
    snprintf(F.mark, sizeof F.mark, "eng-%d-%llu", (int)getpid(), (unsigned long long)now_ms());
    guard_start();
    snprintf(F.dir, sizeof F.dir, "/tmp/fleng.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(F.dir));
    ck_assert_int_eq(uv_loop_init(&F.loop), 0);
    F.loop_open = 1;
    signal(SIGPIPE, SIG_IGN);

    fl_run_t *run = &F.run;
    run->loop = &F.loop;
    run->addr.lock_fd = -1;
    run->opt.seed = 42;
    run->opt.seed_given = 1;
    run->opt.timeout_ns = 5000000000ull;
    run->opt.verbose = 1; /* the live console echo runs too */
    fl_rng_seed(&run->rng, run->opt.seed);
    ck_assert_int_eq(fl_addr_claim(&run->addr, FL_ADDR_X_FIRST), 0);
    const char *bin = getenv("FL_BIN_DIR");
    ck_assert_msg(bin && *bin, "FL_BIN_DIR is not set (run through ctest)");
    char exe[4096];
    snprintf(exe, sizeof exe, "%s/faultline", bin);
    ck_assert_msg(access(exe, X_OK) == 0, "%s is not executable", exe);
    run->self_exe = strdup(exe);
    run->bin_dir = strdup(bin);
    snprintf(exe, sizeof exe, "%s/echo-svc", bin);
    ck_assert_msg(access(exe, X_OK) == 0, "%s is not executable", exe);
    run->console.out = open_memstream(&F.console_buf, &F.console_len);
    ck_assert_ptr_nonnull(run->console.out);
    run->console.verbose = 1;

    F.results.scenarios = calloc(MAX_RESULTS, sizeof *F.results.scenarios);
    ck_assert_ptr_nonnull(F.results.scenarios);
    F.results.capscenarios = MAX_RESULTS;
}

static void rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char p[600];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* Runs after a passing test (a failing one exits its process; the guard cleans up). */
static void teardown(void)
{
    if (F.loop_open) {
        assert_loop_closes();
        ck_assert_int_eq(uv_loop_close(&F.loop), 0);
        F.loop_open = 0;
    }
    assert_no_marked_processes();
    fl_addr_release(&F.run.addr);
    free(F.run.self_exe);
    free(F.run.bin_dir);
    fclose(F.run.console.out);
    free(F.console_buf);
    fl_run_result_free(&F.results);
    rm_dir(F.dir);
    guard_stop();
}

/* ---------------------------------------------------------------- scenario files ---- */

typedef struct {
    char name[64];
    char path[160];
    const char *text;
} luafile_t;

/* Writes F.dir/name. Every file starts (on its first line, so line numbers are the text's)
 * with MARK and ENV = { FL_ENGINE_TEST_MARK = MARK } for the services' env. */
static void lf_write(luafile_t *f, const char *name, const char *text)
{
    snprintf(f->name, sizeof f->name, "%s", name);
    snprintf(f->path, sizeof f->path, "%s/%s", F.dir, name);
    f->text = text;
    FILE *out = fopen(f->path, "w");
    ck_assert_ptr_nonnull(out);
    fprintf(out, "local MARK = '%s'; local ENV = { " MARK_VAR " = MARK }; %s", F.mark, text);
    ck_assert_int_eq(fclose(out), 0);
}

/* The line of the text tagged "-- @tag". */
static int lf_line(const luafile_t *f, const char *tag)
{
    char needle[64];
    snprintf(needle, sizeof needle, "-- @%s\n", tag);
    const char *p = strstr(f->text, needle);
    ck_assert_msg(p != NULL, "no tag @%s in %s", tag, f->name);
    int line = 1;
    for (const char *q = f->text; q < p; q++)
        line += *q == '\n';
    return line;
}

/* "path:line" of the tagged line. */
static const char *lf_at(const luafile_t *f, const char *tag)
{
    char *b = F.at_buf[F.at_next++ % 8];
    snprintf(b, sizeof F.at_buf[0], "%s:%d", f->path, lf_line(f, tag));
    return b;
}

static fl_engine_t *load_ok(luafile_t *f, const char *name, const char *text)
{
    lf_write(f, name, text);
    fl_engine_t *e = NULL;
    char err[2048] = "";
    int rc = fl_engine_load(&F.run, f->path, &e, err, sizeof err);
    ck_assert_msg(rc == 0, "loading %s failed (%d): %s", name, rc, err);
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(fl_engine_path(e), f->path);
    return e;
}

/* Loads a file that must not load; its message goes to err. */
static int load_bad(luafile_t *f, const char *name, const char *text, char *err, size_t errlen)
{
    lf_write(f, name, text);
    fl_engine_t *e = NULL;
    err[0] = '\0';
    int rc = fl_engine_load(&F.run, f->path, &e, err, errlen);
    ck_assert_msg(rc != 0, "%s loaded, but must not", name);
    ck_assert_ptr_null(e);
    ck_assert_msg(err[0], "no message for %s", name);
    return rc;
}

static void free_engine(fl_engine_t *e)
{
    fl_engine_free(e);
    assert_loop_closes();
    assert_no_marked_processes();
}

/* ---------------------------------------------------------------- running ---- */

static void done_cb(void *arg)
{
    ++*(int *)arg;
}

static void watchdog_cb(uv_timer_t *t)
{
    F.timed_out = 1;
}

static void probe_cb(uv_timer_t *t)
{
    pid_t pids[64];
    F.probe_count = marked_pids(F.mark, pids, 64);
}

static size_t scenario_index(fl_engine_t *e, const char *name)
{
    for (size_t i = 0; i < fl_engine_count(e); i++)
        if (strcmp(fl_engine_name(e, i), name) == 0)
            return i;
    ck_abort_msg("no scenario named \"%s\" in %s", name, fl_engine_path(e));
    return 0;
}

static const char *dump_events(const fl_scenario_result_t *r);

/* Runs one scenario to its end; probe_ms > 0 counts the marked processes that long after the
 * start (into F.probe_count). Then the loop must close and no marked process may remain. */
static fl_scenario_result_t *run_probe(fl_engine_t *e, const char *name, int probe_ms)
{
    size_t idx = scenario_index(e, name);
    ck_assert_int_lt(F.results.nscenarios, MAX_RESULTS);
    fl_scenario_result_t *res = fl_run_result_add(&F.results, fl_engine_path(e), name);
    ck_assert_ptr_nonnull(res);
    uv_timer_t wd, probe;
    uv_timer_init(&F.loop, &wd);
    uv_timer_init(&F.loop, &probe);
    F.timed_out = 0;
    F.probe_count = -1;
    uv_timer_start(&wd, watchdog_cb, RUN_WAIT_MS, 0);
    if (probe_ms > 0)
        uv_timer_start(&probe, probe_cb, (uint64_t)probe_ms, 0);
    int done = 0;
    uv_update_time(&F.loop); /* the loop's clock is as old as its last run: timers start now */
    fl_engine_run(e, idx, res, done_cb, &done);
    while (!done && !F.timed_out)
        uv_run(&F.loop, UV_RUN_ONCE);
    ck_assert_msg(done == 1, "scenario \"%s\" did not end within %d ms (done %d); events:\n%s",
                  name, RUN_WAIT_MS, done, dump_events(res));
    uv_close((uv_handle_t *)&wd, NULL);
    uv_close((uv_handle_t *)&probe, NULL);
    assert_loop_closes();
    assert_no_marked_processes();
    return res;
}

static fl_scenario_result_t *run(fl_engine_t *e, const char *name)
{
    return run_probe(e, name, 0);
}

/* ---------------------------------------------------------------- results ---- */

static const char *kind_name(fl_event_kind_t k)
{
    static const char *const names[] = {"process", "fault", "assert", "note"};
    return (unsigned)k < 4 ? names[k] : "?";
}

static const char *dump_events(const fl_scenario_result_t *r)
{
    static char out[8192];
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < r->nevents && len < sizeof out - 1; i++) {
        const fl_event_t *ev = &r->events[i];
        int w = snprintf(out + len, sizeof out - len, "  [%zu] %s%s %s | %s | %s\n", i,
                         kind_name(ev->kind), ev->ok ? "" : "(failed)", ev->subject, ev->text,
                         ev->where);
        if (w < 0)
            break;
        len += (size_t)w;
    }
    return out;
}

/* The first event from index from on of the kind (-1: any) whose text contains needle (and
 * whose subject is subject, unless NULL); -1 when none. */
static int ev_find(const fl_scenario_result_t *r, size_t from, int kind, const char *subject,
                   const char *needle)
{
    for (size_t i = from; i < r->nevents; i++) {
        const fl_event_t *ev = &r->events[i];
        if ((kind < 0 || (int)ev->kind == kind) &&
            (!subject || strcmp(ev->subject, subject) == 0) && strstr(ev->text, needle))
            return (int)i;
    }
    return -1;
}

static int ev_count(const fl_scenario_result_t *r, int kind, const char *needle)
{
    int n = 0;
    for (size_t i = 0; i < r->nevents; i++)
        n += (kind < 0 || (int)r->events[i].kind == kind) && strstr(r->events[i].text, needle);
    return n;
}

/* The event that must exist; fails with the whole timeline otherwise. */
static const fl_event_t *ev_must(const fl_scenario_result_t *r, int kind, const char *subject,
                                 const char *needle)
{
    int i = ev_find(r, 0, kind, subject, needle);
    ck_assert_msg(i >= 0, "no %s event%s%s with \"%s\" in %s: %s; events:\n%s",
                  kind >= 0 ? kind_name((fl_event_kind_t)kind) : "", subject ? " about " : "",
                  subject ? subject : "", needle, r->file, r->name, dump_events(r));
    return &r->events[i];
}

typedef struct {
    int kind;
    const char *subject;
    const char *text;
} evspec_t;

/* The events appear in this order (others may come between). */
static void ev_order(const fl_scenario_result_t *r, const evspec_t *specs, size_t n)
{
    size_t from = 0;
    for (size_t k = 0; k < n; k++) {
        int i = ev_find(r, from, specs[k].kind, specs[k].subject, specs[k].text);
        ck_assert_msg(i >= 0, "event %zu (%s \"%s\") missing or out of order in %s; events:\n%s", k,
                      specs[k].kind >= 0 ? kind_name((fl_event_kind_t)specs[k].kind) : "any",
                      specs[k].text, r->name, dump_events(r));
        from = (size_t)i + 1;
    }
}

#define EXPECT_VERDICT(r, v)                                                                       \
    ck_assert_msg((r)->verdict == (v), "%s: verdict %s, expected %s (message: %s at %s)",          \
                  (r)->name, fl_verdict_name((r)->verdict), fl_verdict_name(v),                    \
                  (r)->message ? (r)->message : "none", (r)->where ? (r)->where : "-")

static void expect_message(const fl_scenario_result_t *r, const char *needle)
{
    ck_assert_msg(r->message && strstr(r->message, needle), "%s: message \"%s\" lacks \"%s\"",
                  r->name, r->message ? r->message : "(null)", needle);
}

static void expect_where(const fl_scenario_result_t *r, const char *where)
{
    ck_assert_msg(r->where && strcmp(r->where, where) == 0, "%s: where \"%s\", expected \"%s\"",
                  r->name, r->where ? r->where : "(null)", where);
}

static const fl_log_t *log_of(const fl_scenario_result_t *r, const char *instance)
{
    for (size_t i = 0; i < r->nlogs; i++)
        if (strcmp(r->logs[i].instance, instance) == 0)
            return &r->logs[i];
    return NULL;
}

/* ================================================================ tests ==== */

static const char pass_lua[] =
    "scenario('passes', function(t) -- @decl\n"
    "  t:expect(true, 'true is true') -- @expect\n"
    "  t:assert(1 + 1 == 2, 'arithmetic works')\n"
    "  t:note('name=' .. t.name .. ' file=' .. t.file .. ' seed=' .. t.seed) -- @note\n"
    "  t:expect(t:now() >= 0, 'the clock runs')\n"
    "  t:expect(tostring(t) == 'scenario(passes)', 'tostring(t)')\n"
    "end)\n"
    "scenario('second', function(t) end)\n";

START_TEST(pass_events_in_order)
{
    luafile_t f;
    fl_engine_t *e = load_ok(&f, "pass.lua", pass_lua);
    ck_assert_uint_eq(fl_engine_count(e), 2);
    ck_assert_str_eq(fl_engine_name(e, 0), "passes");
    ck_assert_str_eq(fl_engine_name(e, 1), "second");
    ck_assert_int_eq(fl_engine_matches(e, 0, "pass%.lua: pass"), 1);
    ck_assert_int_eq(fl_engine_matches(e, 1, "pass%.lua: pass"), 0);
    ck_assert_int_eq(fl_engine_matches(e, 1, "[bad pattern"), 0);

    fl_scenario_result_t *r = run(e, "passes");
    EXPECT_VERDICT(r, FL_VERDICT_PASS);
    ck_assert_ptr_null(r->message);
    ck_assert_ptr_null(r->where);
    ck_assert_ptr_null(r->traceback);
    ck_assert_uint_eq(r->nlogs, 0);
    ck_assert(r->seconds >= 0 && r->seconds < 5);
    /* exactly these events, in this order */
    ck_assert_msg(r->nevents == 9, "9 events expected:\n%s", dump_events(r));
    const fl_event_t *ev = r->events;
    ck_assert_int_eq(ev[0].kind, FL_EV_NOTE);
    ck_assert_str_eq(ev[0].text, "setup: 0 instances");
    ck_assert_str_eq(ev[0].where, lf_at(&f, "decl"));
    ck_assert_int_eq(ev[1].kind, FL_EV_NOTE);
    ck_assert_str_eq(ev[1].text, "scenario started");
    ck_assert_int_eq(ev[2].kind, FL_EV_ASSERT);
    ck_assert_int_eq(ev[2].ok, 1);
    ck_assert_str_eq(ev[2].text, "true is true");
    ck_assert_str_eq(ev[2].where, lf_at(&f, "expect"));
    ck_assert_str_eq(ev[3].text, "arithmetic works");
    ck_assert_int_eq(ev[4].kind, FL_EV_NOTE);
    char note[512];
    snprintf(note, sizeof note, "name=passes file=%s seed=42", f.path);
    ck_assert_str_eq(ev[4].text, note);
    ck_assert_str_eq(ev[4].where, lf_at(&f, "note"));
    ck_assert_str_eq(ev[5].text, "the clock runs");
    ck_assert_str_eq(ev[6].text, "tostring(t)");
    ck_assert_int_eq(ev[6].ok, 1);
    ck_assert_str_eq(ev[7].text, "scenario ended: pass; teardown");
    ck_assert_str_eq(ev[8].text, "teardown done");
    for (size_t i = 1; i < r->nevents; i++)
        ck_assert_uint_ge(ev[i].t_ns, ev[i - 1].t_ns);
    /* the live console echo saw them */
    fflush(F.run.console.out);
    ck_assert_ptr_nonnull(strstr(F.console_buf, "true is true"));

    /* the engine runs its scenarios again and again */
    r = run(e, "second");
    EXPECT_VERDICT(r, FL_VERDICT_PASS);
    r = run(e, "passes");
    EXPECT_VERDICT(r, FL_VERDICT_PASS);
    free_engine(e);
}
END_TEST

static const char expect_lua[] = "scenario('expects', function(t)\n"
                                 "  t:expect(1 == 2, 'one equals two') -- @first\n"
                                 "  t:note('still running')\n"
                                 "  t:expect(false, 'second')\n"
                                 "  t:expect(nil)\n"
                                 "  t:expect(true, 'passes')\n"
                                 "  local r = t:expect(false, 'fourth')\n"
                                 "  t:note('expect returned ' .. tostring(r))\n"
                                 "end)\n"
                                 "scenario('one failure', function(t)\n"
                                 "  t:expect(false, 'only one') -- @one\n"
                                 "end)\n"
                                 "scenario('asserts', function(t)\n"
                                 "  t:assert(true, 'fine')\n"
                                 "  t:assert(nil, 'this stops it') -- @assert\n"
                                 "  t:note('MUST NOT APPEAR')\n"
                                 "end)\n"
                                 "scenario('expect then assert', function(t)\n"
                                 "  t:expect(false, 'the expectation') -- @exp2\n"
                                 "  t:assert(false, 'the assertion')\n"
                                 "  t:note('MUST NOT APPEAR')\n"
                                 "end)\n";

START_TEST(expect_continues_assert_stops)
{
    luafile_t f;
    fl_engine_t *e = load_ok(&f, "expect.lua", expect_lua);

    fl_scenario_result_t *r = run(e, "expects");
    EXPECT_VERDICT(r, FL_VERDICT_FAIL);
    ck_assert_str_eq(r->message, "one equals two (and 3 more failed expectations)");
    expect_where(r, lf_at(&f, "first"));
    ck_assert_ptr_null(r->traceback);
    ev_must(r, FL_EV_NOTE, NULL, "still running");
    ev_must(r, FL_EV_NOTE, NULL, "expect returned false");
    int failed = 0, passed = 0;
    for (size_t i = 0; i < r->nevents; i++)
        if (r->events[i].kind == FL_EV_ASSERT)
            r->events[i].ok ? passed++ : failed++;
    ck_assert_int_eq(failed, 4);
    ck_assert_int_eq(passed, 1);
    const fl_event_t *ev = ev_must(r, FL_EV_ASSERT, NULL, "expectation");
    ck_assert_int_eq(ev->ok, 0);
    ev = ev_must(r, FL_EV_ASSERT, NULL, "one equals two");
    ck_assert_str_eq(ev->where, lf_at(&f, "first"));
    ev_must(r, FL_EV_NOTE, NULL, "scenario ended: fail; teardown");

    r = run(e, "one failure");
    EXPECT_VERDICT(r, FL_VERDICT_FAIL);
    ck_assert_str_eq(r->message, "only one");
    expect_where(r, lf_at(&f, "one"));

    r = run(e, "asserts");
    EXPECT_VERDICT(r, FL_VERDICT_FAIL);
    ck_assert_str_eq(r->message, "this stops it");
    expect_where(r, lf_at(&f, "assert"));
    ck_assert_ptr_null(r->traceback);
    ck_assert_int_lt(ev_find(r, 0, -1, NULL, "MUST NOT APPEAR"), 0);
    static const evspec_t order[] = {
        {FL_EV_ASSERT, NULL, "fine"},
        {FL_EV_ASSERT, NULL, "this stops it"},
        {FL_EV_NOTE, NULL, "scenario ended: fail; teardown"},
        {FL_EV_NOTE, NULL, "teardown done"},
    };
    ev_order(r, order, 4);

    r = run(e, "expect then assert");
    EXPECT_VERDICT(r, FL_VERDICT_FAIL);
    ck_assert_str_eq(r->message, "the expectation (and 1 more failed expectations)");
    expect_where(r, lf_at(&f, "exp2"));
    ck_assert_int_lt(ev_find(r, 0, -1, NULL, "MUST NOT APPEAR"), 0);
    free_engine(e);
}
END_TEST

static const char error_lua[] =
    "local function inner()\n"
    "  local cfg = nil\n"
    "  return cfg.port -- @error\n"
    "end\n"
    "scenario('lua error', function(t)\n"
    "  t:note('before')\n"
    "  inner() -- @caller\n"
    "  t:note('MUST NOT APPEAR')\n"
    "end)\n"
    "scenario('error with a table', function(t)\n"
    "  error({ code = 1 }) -- @table\n"
    "end)\n"
    "scenario('error after a failed expectation', function(t)\n"
    "  t:expect(false, 'an expectation')\n"
    "  error('the real problem') -- @after\n"
    "end)\n"
    "scenario('start when up', function(t)\n"
    "  t:start('web-1') -- @start\n"
    "end)\n"
    "topology { services = { web = { cmd = { 'sh', '-c', 'exec sleep 100' }, ready = 'none', "
    "env = ENV } } }\n";

START_TEST(lua_errors_have_a_traceback)
{
    luafile_t f;
    fl_engine_t *e = load_ok(&f, "error.lua", error_lua);

    fl_scenario_result_t *r = run(e, "lua error");
    EXPECT_VERDICT(r, FL_VERDICT_ERROR);
    char want[600];
    snprintf(want, sizeof want, "%s: attempt to index a nil value (local 'cfg')",
             lf_at(&f, "error"));
    ck_assert_str_eq(r->message, want);
    expect_where(r, lf_at(&f, "error"));
    ck_assert_ptr_nonnull(r->traceback);
    ck_assert_msg(strstr(r->traceback, lf_at(&f, "error")) &&
                      strstr(r->traceback, lf_at(&f, "caller")),
                  "the traceback names both lines:\n%s", r->traceback);
    ck_assert_int_lt(ev_find(r, 0, -1, NULL, "MUST NOT APPEAR"), 0);
    const fl_event_t *ev = ev_must(r, FL_EV_ASSERT, NULL, "Lua error: ");
    ck_assert_int_eq(ev->ok, 0);
    ck_assert_str_eq(ev->where, lf_at(&f, "error"));
    ev_must(r, FL_EV_NOTE, NULL, "scenario ended: error; teardown");

    r = run(e, "error with a table");
    EXPECT_VERDICT(r, FL_VERDICT_ERROR);
    expect_message(r, "table: ");
    expect_where(r, lf_at(&f, "table"));
    ck_assert_ptr_nonnull(r->traceback);

    r = run(e, "error after a failed expectation");
    EXPECT_VERDICT(r, FL_VERDICT_ERROR);
    expect_message(r, "the real problem");
    expect_where(r, lf_at(&f, "after"));
    ck_assert_ptr_nonnull(r->traceback);

    r = run(e, "start when up");
    EXPECT_VERDICT(r, FL_VERDICT_ERROR);
    snprintf(want, sizeof want, "%s: cannot start web-1: it is already up", lf_at(&f, "start"));
    ck_assert_str_eq(r->message, want);
    free_engine(e);
}
END_TEST

static const char usage_lua[] =
    "topology { services = {\n"
    "  users = { cmd = { 'sh', '-c', 'exec sleep 100' }, ready = 'none', env = ENV },\n"
    "} }\n"
    "scenario('typo', function(t)\n"
    "  t:crsh(t:instance('users')) -- @typo\n"
    "end)\n"
    "scenario('bad duration', function(t)\n"
    "  t:sleep('5 s') -- @dur\n"
    "end)\n"
    "scenario('wrong type', function(t)\n"
    "  t:crash(42) -- @type\n"
    "end)\n"
    "scenario('unknown service', function(t)\n"
    "  t:instance('user') -- @svc\n"
    "end)\n"
    "scenario('replica out of range', function(t)\n"
    "  t:instance('users', 2) -- @range\n"
    "end)\n"
    "scenario('instance field typo', function(t)\n"
    "  local x = t:instance('users').nmae -- @field\n"
    "end)\n"
    "scenario('read-only t', function(t)\n"
    "  t.x = 1 -- @ro\n"
    "end)\n"
    "scenario('bad option', function(t)\n"
    "  t:restart('users-1', { crsh = true }) -- @opt\n"
    "end)\n"
    "scenario('wait in a coroutine', function(t)\n"
    "  local co = coroutine.wrap(function() t:sleep(0.01) end) -- @co\n"
    "  co()\n"
    "end)\n"
    "scenario('raw yield', function(t)\n"
    "  coroutine.yield() -- @yield\n"
    "  t:note('MUST NOT APPEAR')\n"
    "end)\n"
    "scenario('usage after a failed expectation', function(t)\n"
    "  t:expect(false, 'an expectation')\n"
    "  t:slep(1) -- @late\n"
    "end)\n"
    "scenario('keeps t', function(t)\n"
    "  STALE_T, STALE_INST = t, t:instance('users')\n"
    "end)\n"
    "scenario('stale t', function(t)\n"
    "  STALE_T:note('from the past') -- @stale\n"
    "end)\n"
    "scenario('stale instance', function(t)\n"
    "  t:note(STALE_INST.name) -- @staleinst\n"
    "end)\n"
    "scenario('stale instance passed to t', function(t)\n"
    "  t:crash(STALE_INST) -- @staleinst2\n"
    "end)\n";

static void expect_usage(const luafile_t *f, fl_engine_t *e, const char *name, const char *tag,
                         const char *needle)
{
    fl_scenario_result_t *r = run(e, name);
    EXPECT_VERDICT(r, FL_VERDICT_USAGE);
    expect_message(r, needle);
    expect_where(r, lf_at(f, tag));
    ck_assert_ptr_null(r->traceback);
    const fl_event_t *ev = ev_must(r, FL_EV_ASSERT, NULL, "usage error: ");
    ck_assert_int_eq(ev->ok, 0);
    ck_assert_str_eq(ev->where, lf_at(f, tag));
    ev_must(r, FL_EV_NOTE, NULL, "scenario ended: usage; teardown");
}

START_TEST(usage_errors_in_scenarios)
{
    luafile_t f;
    fl_engine_t *e = load_ok(&f, "usage.lua", usage_lua);
    expect_usage(&f, e, "typo", "typo", "t has no method or field 'crsh' (did you mean 'crash'?)");
    expect_usage(&f, e, "bad duration", "dur", "t:sleep duration");
    expect_usage(&f, e, "wrong type", "type",
                 "bad t:crash argument: expected an instance (from t:instance(service, n)), got "
                 "a number");
    expect_usage(&f, e, "unknown service", "svc",
                 "no service named 'user' (did you mean 'users'?)");
    expect_usage(&f, e, "replica out of range", "range",
                 "service 'users' has replicas 1 to 1, not 2");
    expect_usage(&f, e, "instance field typo", "field",
                 "an instance has no field 'nmae' (did you mean 'name'?)");
    expect_usage(&f, e, "read-only t", "ro", "t is read-only");
    expect_usage(&f, e, "bad option", "opt", "'crsh' (did you mean 'crash'?)");
    expect_usage(&f, e, "wait in a coroutine", "co", "not in a coroutine it created");
    /* nothing would ever resume it: a usage error at once, not a timeout */
    expect_usage(&f, e, "raw yield", "yield", "the scenario itself cannot yield");
    /* the usage error is what the verdict reports, not the failed expectation before it */
    expect_usage(&f, e, "usage after a failed expectation", "late",
                 "t has no method or field 'slep' (did you mean 'sleep'?)");

    fl_scenario_result_t *r = run(e, "keeps t");
    EXPECT_VERDICT(r, FL_VERDICT_PASS);
    expect_usage(&f, e, "stale t", "stale", "this t belongs to a scenario that has ended");
    expect_usage(&f, e, "stale instance", "staleinst", "belongs to a scenario that has ended");
    expect_usage(&f, e, "stale instance passed to t", "staleinst2",
                 "belongs to a scenario that has ended");
    free_engine(e);
}
END_TEST

static const char timeouts_lua[] =
    "scenario('busy loop', { timeout = '300ms' }, function(t)\n"
    "  t:note('spinning')\n"
    "  while true do end -- @spin\n"
    "end)\n"
    "scenario('busy loop that swallows errors', { timeout = '300ms' }, function(t)\n"
    "  while true do pcall(function() while true do end end) end\n"
    "end)\n"
    "scenario('busy loop, run timeout', function(t)\n"
    "  local x = 0\n"
    "  while true do x = x + 1 end -- @spin2\n"
    "end)\n"
    "scenario('generator spin', { timeout = '300ms' }, function(t)\n"
    "  local gen = coroutine.wrap(function() while true do end end) -- @gen\n"
    "  local v = gen()\n"
    "  t:expect(v ~= nil, 'MUST NOT BE RECORDED')\n"
    "  while true do end\n"
    "end)\n"
    "scenario('spin where the hook cannot yield', { timeout = '300ms' }, function(t)\n"
    "  table.sort({ 3, 2, 1 }, function(a, b) while true do end end) -- @sort\n"
    "end)\n"
    "scenario('after', function(t)\n"
    "  local x = 0\n"
    "  for i = 1, 3000000 do x = x + i end\n"
    "  t:note('after: ' .. x)\n"
    "end)\n";

START_TEST(busy_loops_are_stopped_by_the_hook)
{
    luafile_t f;
    fl_engine_t *e = load_ok(&f, "timeouts.lua", timeouts_lua);

    uint64_t t0 = now_ms();
    fl_scenario_result_t *r = run(e, "busy loop");
    uint64_t took = now_ms() - t0;
    EXPECT_VERDICT(r, FL_VERDICT_FAIL);
    expect_message(r, "timed out after 300ms");
    expect_where(r, lf_at(&f, "spin"));
    ck_assert_msg(took >= 290 && took < 3000, "took %llu ms", (unsigned long long)took);
    ev_must(r, FL_EV_NOTE, NULL, "spinning");
    const fl_event_t *ev = ev_must(r, FL_EV_ASSERT, NULL, "timed out after 300ms");
    ck_assert_int_eq(ev->ok, 0);

    t0 = now_ms();
    r = run(e, "busy loop that swallows errors");
    took = now_ms() - t0;
    EXPECT_VERDICT(r, FL_VERDICT_FAIL);
    expect_message(r, "timed out after 300ms");
    ck_assert_msg(took < 3000, "took %llu ms", (unsigned long long)took);

    /* a coroutine the scenario created is not yielded by the hook (the scenario would run on
     * as if it had yielded): the timeout goes through it and stops the scenario */
    r = run(e, "generator spin");
    EXPECT_VERDICT(r, FL_VERDICT_FAIL);
    expect_message(r, "timed out after 300ms while running Lua code");
    expect_where(r, lf_at(&f, "gen"));
    ck_assert_int_lt(ev_find(r, 0, -1, NULL, "MUST NOT BE RECORDED"), 0);

    /* inside a C call (a table.sort comparator) the hook cannot yield: it raises instead */
    r = run(e, "spin where the hook cannot yield");
    EXPECT_VERDICT(r, FL_VERDICT_FAIL);
    expect_message(r, "timed out after 300ms while running Lua code");
    expect_where(r, lf_at(&f, "sort"));

    F.run.opt.timeout_ns = 400000000ull; /* the run's --timeout, when the scenario has none */
    r = run(e, "busy loop, run timeout");
    EXPECT_VERDICT(r, FL_VERDICT_FAIL);
    expect_message(r, "timed out after 400ms");
    expect_where(r, lf_at(&f, "spin2"));

    /* the deadline is gone with the scenario: a busy (but finite) one after it passes */
    F.run.opt.timeout_ns = 5000000000ull;
    r = run(e, "after");
    EXPECT_VERDICT(r, FL_VERDICT_PASS);
    ev_must(r, FL_EV_NOTE, NULL, "after: 4500001500000");
    free_engine(e);
}
END_TEST

static const char stuck_lua[] =
    "topology { services = {\n"
    "  echo = { cmd = { 'echo-svc' }, env = ENV },\n"
    "  stubborn = { cmd = { 'sh', '-c', \"trap '' TERM; echo ignoring; while :; do sleep 0.05; "
    "done\" },\n"
    "               ready = 'none', grace = '200ms', env = ENV },\n"
    "  later = { cmd = { 'echo-svc' }, start = false, env = ENV },\n"
    "} }\n"
    "scenario('stuck in a long sleep', { timeout = '700ms' }, function(t)\n"
    "  t:note('sleeping')\n"
    "  t:sleep(1000) -- @sleep\n"
    "  t:note('MUST NOT APPEAR')\n"
    "end)\n";

static const char stuck_setup_lua[] =
    "topology { services = {\n"
    "  mute = { cmd = { 'sh', '-c', 'exec sleep 100' }, ready_timeout = '10s', env = ENV },\n"
    "} }\n"
    "scenario('deadline during setup', { timeout = '400ms' }, function(t) -- @decl\n"
    "  t:note('MUST NOT APPEAR')\n"
    "end)\n";

START_TEST(long_sleep_is_stopped_by_the_deadline)
{
    luafile_t f;
    fl_engine_t *e = load_ok(&f, "stuck.lua", stuck_lua);
    uint64_t t0 = now_ms();
    fl_scenario_result_t *r = run_probe(e, "stuck in a long sleep", 500);
    uint64_t took = now_ms() - t0;
    ck_assert_msg(F.probe_count >= 4, "the marked processes run during the scenario (%d)",
                  F.probe_count);
    EXPECT_VERDICT(r, FL_VERDICT_FAIL);
    char want[600];
    snprintf(want, sizeof want, "timed out after 700ms waiting at %s", lf_at(&f, "sleep"));
    ck_assert_str_eq(r->message, want);
    expect_where(r, lf_at(&f, "sleep"));
    /* 700ms, then SIGTERM, then SIGKILL for stubborn after its 200ms grace */
    ck_assert_msg(took >= 690 && took < 4000, "took %llu ms", (unsigned long long)took);
    ck_assert_int_lt(ev_find(r, 0, -1, NULL, "MUST NOT APPEAR"), 0);
    static const evspec_t order[] = {
        {FL_EV_NOTE, NULL, "setup: 3 instances"},
        {FL_EV_NOTE, NULL, "scenario started"},
        {FL_EV_NOTE, NULL, "sleeping"},
        {FL_EV_ASSERT, NULL, "timed out after 700ms"},
        {FL_EV_NOTE, NULL, "scenario ended: fail; teardown"},
        {FL_EV_NOTE, NULL, "teardown done"},
    };
    ev_order(r, order, 6);
    int ended = ev_find(r, 0, FL_EV_NOTE, NULL, "scenario ended");
    int echo_exit = ev_find(r, 0, FL_EV_PROCESS, "echo-1", "exited with code 0");
    int stub_exit = ev_find(r, 0, FL_EV_PROCESS, "stubborn-1", "killed by SIGKILL");
    ck_assert_msg(echo_exit > ended && stub_exit > ended, "teardown exits:\n%s", dump_events(r));
    ck_assert_int_lt(ev_find(r, 0, -1, "echo-1", "unexpected"), 0);
    ck_assert_int_lt(ev_find(r, 0, -1, "later-1", ""), 0);
    ck_assert_uint_eq(r->nlogs, 2); /* later-1 never started */
    const fl_log_t *log = log_of(r, "stubborn-1");
    ck_assert_ptr_nonnull(log);
    ck_assert_ptr_nonnull(strstr(log->text, "ignoring"));
    ck_assert_uint_eq(log->len, strlen(log->text));
    log = log_of(r, "echo-1");
    ck_assert_ptr_nonnull(log);
    ck_assert_ptr_nonnull(strstr(log->text, "echo[echo-1]: listening on"));

    free_engine(e);

    /* the deadline passes while setup waits for readiness */
    e = load_ok(&f, "stuck_setup.lua", stuck_setup_lua);
    t0 = now_ms();
    r = run(e, "deadline during setup");
    took = now_ms() - t0;
    EXPECT_VERDICT(r, FL_VERDICT_FAIL);
    expect_message(r, "timed out after 400ms");
    expect_where(r, lf_at(&f, "decl"));
    ck_assert_msg(took >= 390 && took < 3000, "took %llu ms", (unsigned long long)took);
    ck_assert_int_lt(ev_find(r, 0, -1, NULL, "MUST NOT APPEAR"), 0);
    ev_must(r, FL_EV_PROCESS, "mute-1", "killed by SIGTERM");
    free_engine(e);
}
END_TEST

static const char waits_lua[] =
    "scenario('eventually succeeds', function(t)\n"
    "  local n = 0\n"
    "  local got = t:eventually(function() n = n + 1; return n >= 3 and n end, '2s', 'n reaches "
    "3')\n"
    "  t:expect(got == 3, 'eventually returns the value')\n"
    "end)\n"
    "scenario('eventually times out', function(t)\n"
    "  t:eventually(function() error('not yet') end, '200ms', 'the sky is green') -- @ev\n"
    "  t:note('MUST NOT APPEAR')\n"
    "end)\n"
    "scenario('always holds', function(t)\n"
    "  local checks = 0\n"
    "  t:always(function() checks = checks + 1; return true end, '150ms', 'blue sky')\n"
    "  t:expect(checks >= 5, 'checked repeatedly: ' .. checks)\n"
    "end)\n"
    "scenario('always breaks', function(t)\n"
    "  local start = t:now()\n"
    "  t:always(function() return t:now() - start < 0.05 end, '2s', 'the clock stands still') -- "
    "@al\n"
    "  t:note('MUST NOT APPEAR')\n"
    "end)\n"
    "scenario('assert inside eventually', function(t)\n"
    "  t:eventually(function() t:assert(false, 'inner assert') end, '1s') -- @eva\n"
    "end)\n"
    "scenario('usage error inside eventually', function(t)\n"
    "  t:eventually(function() return t:nope() end, '1s') -- @evu\n"
    "end)\n";

START_TEST(eventually_and_always)
{
    luafile_t f;
    fl_engine_t *e = load_ok(&f, "waits.lua", waits_lua);

    fl_scenario_result_t *r = run(e, "eventually succeeds");
    EXPECT_VERDICT(r, FL_VERDICT_PASS);
    const fl_event_t *ev = ev_must(r, FL_EV_ASSERT, NULL, "eventually n reaches 3 (after ");
    ck_assert_int_eq(ev->ok, 1);
    ev_must(r, FL_EV_ASSERT, NULL, "eventually returns the value");

    uint64_t t0 = now_ms();
    r = run(e, "eventually times out");
    uint64_t took = now_ms() - t0;
    EXPECT_VERDICT(r, FL_VERDICT_FAIL);
    char want[600];
    snprintf(want, sizeof want,
             "eventually the sky is green: still not true after 200ms (last error: %s: not yet)",
             lf_at(&f, "ev"));
    ck_assert_str_eq(r->message, want);
    expect_where(r, lf_at(&f, "ev"));
    ck_assert_msg(took >= 190 && took < 2000, "took %llu ms", (unsigned long long)took);
    ck_assert_int_lt(ev_find(r, 0, -1, NULL, "MUST NOT APPEAR"), 0);

    r = run(e, "always holds");
    EXPECT_VERDICT(r, FL_VERDICT_PASS);
    ev_must(r, FL_EV_ASSERT, NULL, "always blue sky (held for 150ms, ");

    t0 = now_ms();
    r = run(e, "always breaks");
    took = now_ms() - t0;
    EXPECT_VERDICT(r, FL_VERDICT_FAIL);
    expect_message(r, "always the clock stands still: broken after ");
    expect_where(r, lf_at(&f, "al"));
    ck_assert_msg(took < 1500, "took %llu ms", (unsigned long long)took);
    ck_assert_int_lt(ev_find(r, 0, -1, NULL, "MUST NOT APPEAR"), 0);

    r = run(e, "assert inside eventually"); /* not caught by t:eventually */
    EXPECT_VERDICT(r, FL_VERDICT_FAIL);
    ck_assert_str_eq(r->message, "inner assert");
    expect_where(r, lf_at(&f, "eva"));

    r = run(e, "usage error inside eventually");
    EXPECT_VERDICT(r, FL_VERDICT_USAGE);
    expect_message(r, "t has no method or field 'nope'");
    expect_where(r, lf_at(&f, "evu"));
    free_engine(e);
}
END_TEST

static const char skip_lua[] =
    "topology { services = { echo = { cmd = { 'echo-svc' }, env = ENV } } }\n"
    "scenario('skipped', { skip = 'not today' }, function(t) error('must not run') end)\n"
    "scenario('skipped too', { skip = true }, function(t) error('must not run') end)\n"
    "scenario('not skipped', { skip = false }, function(t) t:note('ran') end)\n";

START_TEST(skipped_scenarios_do_not_run)
{
    luafile_t f;
    fl_engine_t *e = load_ok(&f, "skip.lua", skip_lua);
    fl_scenario_result_t *r = run(e, "skipped");
    EXPECT_VERDICT(r, FL_VERDICT_SKIP);
    ck_assert_str_eq(r->message, "not today");
    ck_assert_ptr_null(r->traceback);
    ck_assert_uint_eq(r->nlogs, 0);
    ck_assert_int_lt(ev_find(r, 0, FL_EV_PROCESS, NULL, ""), 0);
    ck_assert_int_lt(ev_find(r, 0, -1, NULL, "scenario started"), 0);
    ev_must(r, FL_EV_NOTE, NULL, "scenario ended: skip; teardown");

    r = run(e, "skipped too");
    EXPECT_VERDICT(r, FL_VERDICT_SKIP);
    ck_assert_str_eq(r->message, "skipped");

    r = run(e, "not skipped");
    EXPECT_VERDICT(r, FL_VERDICT_PASS);
    ev_must(r, FL_EV_NOTE, NULL, "ran");
    ck_assert_uint_eq(r->nlogs, 1);
    free_engine(e);
}
END_TEST

START_TEST(load_errors_name_file_and_line)
{
    luafile_t f;
    char err[2048], want[600];

    ck_assert_int_eq(load_bad(&f, "syntax.lua",
                              "scenario('x', function(t)\n"
                              "  t:note('a'\n"
                              "end)\n",
                              err, sizeof err),
                     FL_ESYNTAX);
    snprintf(want, sizeof want, "%s:3: ", f.path);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "syntax error: %s", err);

    load_bad(&f, "topokey.lua",
             "scenario('x', function(t) end)\n"
             "topology { services = {}, sevices = {} } -- @topo\n",
             err, sizeof err);
    snprintf(want, sizeof want, "%s: ", lf_at(&f, "topo"));
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0 && strstr(err, "'sevices'") &&
                      strstr(err, "did you mean 'services'?"),
                  "unknown topology key: %s", err);

    load_bad(&f, "twice.lua",
             "scenario('a', function(t) end) -- @first\n"
             "scenario('b', function(t) end)\n"
             "scenario('a', function(t) end) -- @second\n",
             err, sizeof err);
    snprintf(want, sizeof want, "%s: scenario \"a\" declared twice (first at %s)",
             lf_at(&f, "second"), lf_at(&f, "first"));
    ck_assert_str_eq(err, want);

    load_bad(&f, "topotwice.lua",
             "topology { services = {} }\n"
             "topology { services = {} } -- @again\n",
             err, sizeof err);
    snprintf(want, sizeof want, "%s: ", lf_at(&f, "again"));
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "topology twice: %s", err);

    load_bad(&f, "runtime.lua",
             "local x = 1\n"
             "error('boom') -- @boom\n",
             err, sizeof err);
    snprintf(want, sizeof want, "%s: boom", lf_at(&f, "boom"));
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "runtime error: %s", err);

    load_bad(&f, "badopt.lua", "scenario('x', { timout = 1 }, function(t) end) -- @opt\n", err,
             sizeof err);
    snprintf(want, sizeof want, "%s: ", lf_at(&f, "opt"));
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0 && strstr(err, "did you mean 'timeout'?"),
                  "scenario option typo: %s", err);

    load_bad(&f, "nofn.lua", "scenario('x') -- @nofn\n", err, sizeof err);
    snprintf(want, sizeof want, "%s: ", lf_at(&f, "nofn"));
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0 && strstr(err, "expected a function"),
                  "no function: %s", err);

    /* a busy top level is stopped by the instruction hook after the run's timeout */
    F.run.opt.timeout_ns = 300000000ull;
    uint64_t t0 = now_ms();
    load_bad(&f, "spin.lua",
             "local x = 0\n"
             "while true do x = x + 1 end -- @spin\n",
             err, sizeof err);
    ck_assert_msg(now_ms() - t0 < 3000, "the busy top level took too long");
    snprintf(want, sizeof want, "%s: ", lf_at(&f, "spin"));
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0 && strstr(err, "timed out"),
                  "busy top level: %s", err);

    /* a file that does not exist */
    fl_engine_t *e = NULL;
    snprintf(want, sizeof want, "%s/missing.lua", F.dir);
    ck_assert_int_ne(fl_engine_load(&F.run, want, &e, err, sizeof err), 0);
    ck_assert_ptr_null(e);
    ck_assert_msg(strstr(err, "missing.lua"), "missing file: %s", err);
    assert_loop_closes();
}
END_TEST

static const char setup_exit_lua[] =
    "topology { services = {\n"
    "  dies = { cmd = { 'sh', '-c', 'echo dying; exit 1' }, env = ENV },\n"
    "  client = { cmd = { 'sh', '-c', 'exec sleep 100' }, ready = 'none', needs = { 'dies' }, "
    "env = ENV },\n"
    "} }\n"
    "scenario('setup fails', function(t) -- @decl\n"
    "  t:note('MUST NOT APPEAR')\n"
    "end)\n";

static const char setup_mute_lua[] =
    "topology { services = {\n"
    "  mute = { cmd = { 'sh', '-c', 'echo not listening; exec sleep 100' }, ready_timeout = "
    "'300ms', env = ENV },\n"
    "} }\n"
    "scenario('never ready', function(t) -- @decl\n"
    "  t:note('MUST NOT APPEAR')\n"
    "end)\n"
    "scenario('start never ready', function(t)\n"
    "  t:note('MUST NOT APPEAR')\n"
    "end)\n";

START_TEST(setup_failures)
{
    luafile_t f;
    fl_engine_t *e = load_ok(&f, "setup_exit.lua", setup_exit_lua);
    fl_scenario_result_t *r = run(e, "setup fails");
    EXPECT_VERDICT(r, FL_VERDICT_FAIL);
    ck_assert_str_eq(r->message, "setup: dies-1 exited with code 1 before it was ready");
    expect_where(r, lf_at(&f, "decl"));
    ck_assert_int_lt(ev_find(r, 0, -1, NULL, "MUST NOT APPEAR"), 0);
    ck_assert_int_lt(ev_find(r, 0, -1, NULL, "scenario started"), 0);
    ck_assert_int_lt(ev_find(r, 0, -1, "client-1", ""), 0); /* its need never got ready */
    ev_must(r, FL_EV_PROCESS, "dies-1", "exited with code 1 (unexpected)");
    ck_assert_uint_eq(r->nlogs, 1);
    ck_assert_str_eq(r->logs[0].instance, "dies-1");
    ck_assert_str_eq(r->logs[0].text, "dying\n");
    ck_assert_uint_eq(r->logs[0].len, 6);
    ck_assert_int_eq(r->logs[0].truncated, 0);
    free_engine(e);

    e = load_ok(&f, "setup_mute.lua", setup_mute_lua);
    uint64_t t0 = now_ms();
    r = run(e, "never ready");
    uint64_t took = now_ms() - t0;
    EXPECT_VERDICT(r, FL_VERDICT_FAIL);
    ck_assert_str_eq(r->message, "setup: mute-1 not ready within 300ms (state: starting)");
    expect_where(r, lf_at(&f, "decl"));
    ck_assert_msg(took >= 290 && took < 3000, "took %llu ms", (unsigned long long)took);
    ck_assert_int_lt(ev_find(r, 0, -1, NULL, "MUST NOT APPEAR"), 0);
    const fl_log_t *log = log_of(r, "mute-1");
    ck_assert_ptr_nonnull(log);
    ck_assert_str_eq(log->text, "not listening\n");
    free_engine(e);
}
END_TEST

/* t:crash returns once the shim is reaped, but the service it killed may still hold its
 * listener for a moment (the shim can die first): waiting for the service process itself
 * keeps the next start's readiness probe from reaching the old listener. */
static const char control_lua[] =
    "topology { grace = '2s', services = {\n"
    "  echo = { cmd = { 'echo-svc' }, replicas = 2, env = ENV },\n"
    "  sleeper = { cmd = { 'sh', '-c', 'echo up; exec sleep 100' }, ready = 'none', env = ENV },\n"
    "} }\n"
    "local function state(i)\n"
    "  return string.format('%s state=%s pid=%s exit=%s signal=%s starts=%d', i.name, i.state,\n"
    "    tostring(i.pid), tostring(i.exit_code), tostring(i.signal), i.starts)\n"
    "end\n"
    "local function service_gone(t, inst)\n"
    "  local pid\n"
    "  for p in t:log(inst):gmatch('starting as echo %(pid (%d+)%)') do pid = p end\n"
    "  t:eventually(function()\n"
    "    local f = io.open('/proc/' .. pid .. '/stat')\n"
    "    if not f then return true end\n"
    "    local st = f:read('a'):match('%) (%a)')\n"
    "    f:close()\n"
    "    return st == 'Z' or st == 'X'\n"
    "  end, '5s', 'the crashed service process is gone')\n"
    "end\n"
    "scenario('control', function(t)\n"
    "  local e1 = t:instance('echo', 1)\n"
    "  t:assert(e1 == t:instance('echo') and e1 == t:instances('echo')[1], 'the same handle')\n"
    "  t:assert(e1.state == 'up' and e1.starts == 1, 'up after setup: ' .. state(e1))\n"
    "  local pid = e1.pid\n"
    "  t:crash(e1) -- @crash\n"
    "  t:expect(e1.state == 'down' and e1.signal == 9 and e1.exit_code == nil and e1.pid == nil,\n"
    "    'crashed: ' .. state(e1))\n"
    "  service_gone(t, e1)\n"
    "  t:start(e1) -- @start\n"
    "  t:expect(e1.state == 'up' and e1.starts == 2 and e1.pid ~= pid, 'started: ' .. state(e1))\n"
    "  t:stop(e1) -- @stop\n"
    "  t:expect(e1.state == 'down' and e1.exit_code == 0 and e1.signal == nil, 'stopped: ' .. "
    "state(e1))\n"
    "  t:restart(e1) -- @restart\n"
    "  t:expect(e1.state == 'up' and e1.starts == 3, 'restarted from down: ' .. state(e1))\n"
    "  t:restart(e1, { grace = '1s' })\n"
    "  t:expect(e1.state == 'up' and e1.starts == 4 and e1.exit_code == nil, 'restarted: ' .. "
    "state(e1))\n"
    "  local s = t:instance('sleeper')\n"
    "  t:restart('sleeper-1', { crash = true }) -- @rcrash\n"
    "  t:expect(s.state == 'up' and s.starts == 2 and s.signal == nil, 'restarted by a crash: ' "
    ".. state(s))\n"
    "  t:pause(e1) -- @pause\n"
    "  t:expect(e1.state == 'paused', 'paused: ' .. state(e1))\n"
    "  local ok, err = pcall(t.resume, t, t:instance('echo', 2))\n"
    "  t:expect(not ok and tostring(err):find('cannot resume echo%-2: it is up, not paused'), "
    "tostring(err))\n"
    "  ok, err = pcall(t.pause, t, e1)\n"
    "  t:expect(not ok and tostring(err):find('cannot pause echo%-1: it is paused'), "
    "tostring(err))\n"
    "  t:resume(e1) -- @resume\n"
    "  t:expect(e1.state == 'up', 'resumed: ' .. state(e1))\n"
    "  t:expect(select(2, t:log(e1):gsub('listening on', '')) == 4, 'the log spans restarts')\n"
    "  t:pause(t:instance('echo', 2)) -- left paused: teardown must still stop it\n"
    "end)\n"
    "scenario('crash when down', function(t)\n"
    "  local e = t:crash('echo-2')\n"
    "  t:crash(e) -- @crash2\n"
    "end)\n";

START_TEST(process_control)
{
    luafile_t f;
    fl_engine_t *e = load_ok(&f, "control.lua", control_lua);
    fl_scenario_result_t *r = run(e, "control");
    EXPECT_VERDICT(r, FL_VERDICT_PASS);
    static const struct {
        const char *subject, *text, *tag;
    } acts[] = {
        {"echo-1", "crash", "crash"},
        {"echo-1", "start", "start"},
        {"echo-1", "stop", "stop"},
        {"echo-1", "restart", "restart"},
        {"sleeper-1", "restart (crash)", "rcrash"},
        {"echo-1", "pause", "pause"},
        {"echo-1", "resume", "resume"},
    };
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) {
        int k = -1;
        for (size_t j = 0; j < r->nevents; j++)
            if (r->events[j].kind == FL_EV_FAULT && strcmp(r->events[j].text, acts[i].text) == 0 &&
                strcmp(r->events[j].subject, acts[i].subject) == 0) {
                k = (int)j;
                break;
            }
        ck_assert_msg(k >= 0, "no action event \"%s\":\n%s", acts[i].text, dump_events(r));
        ck_assert_str_eq(r->events[k].where, lf_at(&f, acts[i].tag));
    }
    static const evspec_t order[] = {
        {FL_EV_PROCESS, "echo-1", "started"},
        {FL_EV_PROCESS, "echo-1", "ready after "},
        {FL_EV_NOTE, NULL, "scenario started"},
        {FL_EV_FAULT, "echo-1", "crash"},
        {FL_EV_PROCESS, "echo-1", "killed by SIGKILL"},
        {FL_EV_FAULT, "echo-1", "start"},
        {FL_EV_PROCESS, "echo-1", "ready after "},
        {FL_EV_FAULT, "echo-1", "stop"},
        {FL_EV_PROCESS, "echo-1", "exited with code 0"},
        {FL_EV_NOTE, NULL, "scenario ended: pass; teardown"},
        {FL_EV_PROCESS, "echo-2", "exited with code 0"},
        {FL_EV_NOTE, NULL, "teardown done"},
    };
    ev_order(r, order, sizeof order / sizeof order[0]);
    ck_assert_int_lt(ev_find(r, 0, FL_EV_PROCESS, NULL, "unexpected"), 0);
    const fl_log_t *log = log_of(r, "echo-1");
    ck_assert_ptr_nonnull(log);
    int n = 0;
    for (const char *p = log->text; (p = strstr(p, "echo[echo-1]: listening on")); p++)
        n++;
    ck_assert_int_eq(n, 4);
    ck_assert_ptr_nonnull(log_of(r, "echo-2"));

    r = run(e, "crash when down");
    EXPECT_VERDICT(r, FL_VERDICT_ERROR);
    char want[600];
    snprintf(want, sizeof want, "%s: cannot crash echo-2: it is down", lf_at(&f, "crash2"));
    ck_assert_str_eq(r->message, want);
    free_engine(e);
}
END_TEST

static const char links_lua[] =
    "topology { services = {\n"
    "  echo = { cmd = { 'echo-svc' }, replicas = 2, env = ENV },\n"
    "  client = { cmd = { 'sh', '-c', 'echo \"ECHO_ADDR=$ECHO_ADDR\"; exec sleep 100' }, ready = "
    "'none',\n"
    "             needs = { 'echo' }, env = ENV },\n"
    "  curler = { cmd = { 'sh', '-c', 'curl -s --max-time 5 \"http://${ECHO_ADDR%%,*}/hello\"; "
    "echo; echo done; exec sleep 100' },\n"
    "             ready = 'none', start = false, needs = { 'echo' }, env = ENV },\n"
    "} }\n"
    "scenario('wiring', function(t)\n"
    "  local c = t:instance('client')\n"
    "  t:eventually(function() return t:log(c):find('\\n') end, '2s', 'the client printed')\n"
    "  t:note(t:log(c))\n"
    "  t:note('links ' .. table.concat(t:link('client', 'echo'):names(), ','))\n"
    "  t:note('echo ' .. t:instance('echo', 1).addr .. ',' .. t:instance('echo', 2).addr)\n"
    "  t:note('all ' .. #t:links():names())\n"
    "end)\n"
    "scenario('latency fault', function(t)\n"
    "  local f = t:link('client', 'echo-1'):latency { ms = 1 } -- @add\n"
    "  local s = f:stats()\n"
    "  t:expect(s.active == true and s.fired == false and s.connections == 0, 'fresh stats')\n"
    "  f:remove() -- @remove\n"
    "  t:expect(f:stats().active == false, 'inactive once removed')\n"
    "  f:remove()\n"
    "end)\n"
    "scenario('a fault that fires', function(t)\n"
    "  local f = t:link('curler', 'echo-1'):latency { ms = 1, direction = 'both' }\n"
    "  local c = t:start('curler-1')\n"
    "  t:eventually(function() return t:log(c):find('done') end, '4s', 'curl is done')\n"
    "  t:expect(t:log(c):find('\"instance\":\"echo-1\"', 1, true), 'echo-1 answered: ' .. "
    "t:log(c))\n"
    "  local s = f:stats()\n"
    "  t:expect(s.fired and s.connections == 1 and s.chunks >= 2 and s.bytes > 0,\n"
    "    string.format('fired: connections %d chunks %d bytes %d', s.connections, s.chunks, "
    "s.bytes))\n"
    "  local ls = t:link('curler', 'echo-1'):stats()\n"
    "  t:expect(ls.accepted == 1 and ls.bytes_up > 0 and ls.bytes_down > 0, 'link stats')\n"
    "  f:remove()\n"
    "end)\n"
    "scenario('fault left on', function(t)\n"
    "  t:link('client-1', 'echo-2'):latency { ms = 5, name = 'slow' }\n"
    "end)\n"
    "scenario('partitions', function(t)\n"
    "  local p = t:partition('client', 'echo') -- @part\n"
    "  t:expect(p:stats().active, 'partition on')\n"
    "  p:remove()\n"
    "  local o = t:partition('client', 'echo-1', { oneway = true })\n"
    "  local i = t:isolate('echo-2')\n"
    "  t:heal() -- @heal\n"
    "  for name, l in pairs(t:links():stats().links) do\n"
    "    t:expect(next(l.toxics) == nil, name .. ' healed')\n"
    "  end\n"
    "  t:partition('client', 'echo') -- left on at the end\n"
    "  t:isolate('curler-1')\n"
    "end)\n"
    "scenario('no link', function(t)\n"
    "  t:link('echo', 'client') -- @nolink\n"
    "end)\n"
    "scenario('toxic typo', function(t)\n"
    "  t:link('client', 'echo'):latency { msec = 3 } -- @typo\n"
    "end)\n";

START_TEST(links_wiring_and_faults)
{
    luafile_t f;
    fl_engine_t *e = load_ok(&f, "links.lua", links_lua);

    fl_scenario_result_t *r = run(e, "wiring");
    EXPECT_VERDICT(r, FL_VERDICT_PASS);
    const fl_event_t *ev = ev_must(r, FL_EV_NOTE, NULL, "ECHO_ADDR=");
    int x = 0, p1 = 0, p2 = 0;
    char tail = 0;
    ck_assert_msg(
        sscanf(ev->text, "ECHO_ADDR=127.%d.0.2:%d,127.%*d.0.2:%d%c", &x, &p1, &p2, &tail) == 4 &&
            tail == '\n',
        "ECHO_ADDR: %s", ev->text);
    ck_assert_int_eq(x, F.run.addr.x);
    ck_assert_int_ne(p1, p2);
    char want[256];
    snprintf(want, sizeof want, "ECHO_ADDR=127.%d.0.2:%d,127.%d.0.2:%d\n", x, p1, x, p2);
    ck_assert_str_eq(ev->text, want);
    ev_must(r, FL_EV_NOTE, NULL, "links client-1->echo-1,client-1->echo-2");
    ev = ev_must(r, FL_EV_NOTE, NULL, "echo ");
    snprintf(want, sizeof want, ":%d", p1);
    ck_assert_ptr_null(strstr(ev->text, want)); /* the links are not the servers */
    ev_must(r, FL_EV_NOTE, NULL, "all 8"); /* 4 to echo, and each instance's link to the broker */

    r = run(e, "latency fault");
    EXPECT_VERDICT(r, FL_VERDICT_PASS);
    ev = ev_must(r, FL_EV_FAULT, "client-1->echo-1", "latency{ms=1}");
    ck_assert_str_eq(ev->where, lf_at(&f, "add"));
    ev = ev_must(r, FL_EV_FAULT, "client-1->echo-1", "removed latency{ms=1}: ");
    ck_assert_str_eq(ev->text, "removed latency{ms=1}: applied to 0 connections, never fired");
    ck_assert_str_eq(ev->where, lf_at(&f, "remove"));
    ck_assert_int_eq(ev_count(r, FL_EV_FAULT, "removed"), 1);
    ck_assert_int_eq(ev_count(r, FL_EV_FAULT, "still on at the end"), 0);

    r = run(e, "a fault that fires");
    EXPECT_VERDICT(r, FL_VERDICT_PASS);
    ev = ev_must(r, FL_EV_FAULT, "curler-1->echo-1",
                 "removed latency{direction=\"both\", ms=1}: "
                 "applied to 1 connection, chunks ");

    r = run(e, "fault left on");
    EXPECT_VERDICT(r, FL_VERDICT_PASS);
    ev = ev_must(r, FL_EV_FAULT, "slow", "still on at the end on 1 link: ");
    ck_assert_ptr_nonnull(strstr(ev->text, "applied to 0 connections"));
    ck_assert_ptr_nonnull(strstr(ev->text, "(never fired)"));
    ck_assert_int_gt(ev_find(r, 0, FL_EV_FAULT, "slow", "still on"),
                     ev_find(r, 0, FL_EV_NOTE, NULL, "scenario ended"));

    r = run(e, "partitions");
    EXPECT_VERDICT(r, FL_VERDICT_PASS);
    ev = ev_must(r, FL_EV_FAULT, "client <-/-> echo", "partition");
    ck_assert_str_eq(ev->where, lf_at(&f, "part"));
    ev_must(r, FL_EV_FAULT, "client <-/-> echo", "removed partition: ");
    ev_must(r, FL_EV_FAULT, "client -/-> echo-1", "one-way partition");
    ev = ev_must(r, FL_EV_FAULT, "all links", "healed (");
    ck_assert_str_eq(ev->where, lf_at(&f, "heal"));
    /* one event per fault left on, closing its interval: the partition (client to both
     * echoes) and the isolation (curler to both echoes, and curler-1 to the broker) */
    const fl_event_t *on = ev_must(r, FL_EV_FAULT, "client <-/-> echo", "partition");
    ck_assert_int_eq(on->phase, FL_FAULT_ON);
    ck_assert_uint_gt(on->fault_id, 0);
    int left = ev_find(r, 0, FL_EV_FAULT, NULL, "still on at the end on 2 links");
    ck_assert_int_ge(left, 0);
    int last_on = -1;
    for (size_t k = 0; k < r->nevents; k++)
        if (r->events[k].phase == FL_FAULT_ON &&
            strcmp(r->events[k].subject, "client <-/-> echo") == 0)
            last_on = (int)k;
    ck_assert_int_ge(last_on, 0);
    ck_assert_int_eq(r->events[left].phase, FL_FAULT_OFF);
    ck_assert_uint_eq(r->events[left].fault_id, r->events[last_on].fault_id);
    ck_assert(r->events[left].counts.known);
    ev = ev_must(r, FL_EV_FAULT, NULL, "still on at the end on 3 links");
    ck_assert_int_eq(ev->phase, FL_FAULT_OFF);
    /* removed and healed faults closed their intervals with their counters */
    ev = ev_must(r, FL_EV_FAULT, "client <-/-> echo", "removed partition: ");
    ck_assert_int_eq(ev->phase, FL_FAULT_OFF);
    ck_assert_uint_eq(ev->fault_id, on->fault_id);
    ck_assert(ev->counts.known);
    ev = ev_must(r, FL_EV_FAULT, "client -/-> echo-1", "healed one-way partition: ");
    ck_assert_int_eq(ev->phase, FL_FAULT_OFF);
    ev = ev_must(r, FL_EV_FAULT, "isolate echo-2", "healed partition: ");
    ck_assert_int_eq(ev->phase, FL_FAULT_OFF);

    r = run(e, "no link");
    EXPECT_VERDICT(r, FL_VERDICT_USAGE);
    expect_message(r, "no link from echo to client");
    expect_where(r, lf_at(&f, "nolink"));

    r = run(e, "toxic typo");
    EXPECT_VERDICT(r, FL_VERDICT_USAGE);
    expect_message(r, "did you mean 'ms'?");
    expect_where(r, lf_at(&f, "typo"));
    free_engine(e);
}
END_TEST

static const char open_conn_lua[] =
    "topology { services = {\n"
    "  echo = { cmd = { 'echo-svc' }, env = ENV },\n"
    "  slow = { cmd = { 'sh', '-c', 'curl -s --max-time 5 \"http://$ECHO_ADDR/delay?ms=3000\"; "
    "echo finished; exec sleep 100' },\n"
    "           ready = 'none', needs = { 'echo' }, env = ENV },\n"
    "  held = { cmd = { 'sh', '-c', 'curl -s --max-time 5 -T - \"http://$ECHO_ADDR/x\" < "
    "/dev/zero; exec sleep 100' },\n"
    "           ready = 'none', start = false, needs = { 'echo' }, env = ENV },\n"
    "} }\n"
    "scenario('a request in flight at teardown', function(t)\n"
    "  t:eventually(function() return t:link('slow', 'echo'):stats().active == 1 end, '3s', 'in "
    "flight')\n"
    "  t:link('slow', 'echo'):latency { ms = 1 }\n"
    "  t:sleep('100ms')\n"
    "end)\n"
    "scenario('bytes held by a partition at teardown', function(t)\n"
    "  local p = t:partition('held', 'echo')\n"
    "  t:start('held-1')\n"
    "  t:eventually(function() return p:stats().bytes > 100000 end, '3s', 'bytes are held')\n"
    "end)\n";

START_TEST(open_connections_at_teardown)
{
    luafile_t f;
    fl_engine_t *e = load_ok(&f, "open.lua", open_conn_lua);
    uint64_t t0 = now_ms();
    fl_scenario_result_t *r = run(e, "a request in flight at teardown");
    uint64_t took = now_ms() - t0;
    EXPECT_VERDICT(r, FL_VERDICT_PASS);
    ck_assert_msg(took < 2500, "teardown waited for the request (%llu ms)",
                  (unsigned long long)took);
    const fl_log_t *log = log_of(r, "slow-1");
    ck_assert_ptr_nonnull(log);
    ck_assert_ptr_null(strstr(log->text, "finished"));
    ev_must(r, FL_EV_FAULT, "latency_downstream", "still on at the end on 1 link");

    r = run(e, "bytes held by a partition at teardown");
    EXPECT_VERDICT(r, FL_VERDICT_PASS);
    free_engine(e);
}
END_TEST

static const char random_lua[] =
    "local function draw(t)\n"
    "  local xs = {}\n"
    "  for i = 1, 4 do xs[#xs + 1] = tostring(t:random(1000000)) end\n"
    "  for i = 1, 2 do xs[#xs + 1] = string.format('%.17g', t:random()) end\n"
    "  for i = 1, 4 do xs[#xs + 1] = tostring(math.random(1000000)) end\n"
    "  local r = t:random(5, 7)\n"
    "  t:expect(r >= 5 and r <= 7, 'in range')\n"
    "  t:expect(math.type(t:random(3)) == 'integer', 'an integer')\n"
    "  t:note('seq ' .. table.concat(xs, ' '))\n"
    "end\n"
    "scenario('a', draw)\n"
    "scenario('b', draw)\n"
    "scenario('bad interval', function(t) t:random(3, 1) end) -- @bad\n";

static char *seq_of(fl_scenario_result_t *r)
{
    EXPECT_VERDICT(r, FL_VERDICT_PASS);
    const fl_event_t *ev = ev_must(r, FL_EV_NOTE, NULL, "seq ");
    return strdup(ev->text);
}

START_TEST(seeded_randomness)
{
    luafile_t f;
    fl_engine_t *e = load_ok(&f, "random.lua", random_lua);
    char *a1 = seq_of(run(e, "a"));
    char *b1 = seq_of(run(e, "b"));
    char *a2 = seq_of(run(e, "a"));
    ck_assert_str_eq(a1, a2);
    ck_assert_str_ne(a1, b1);
    /* the same file loaded again: the same sequences */
    luafile_t f2 = f;
    fl_engine_t *e2 = NULL;
    char err[512];
    ck_assert_int_eq(fl_engine_load(&F.run, f2.path, &e2, err, sizeof err), 0);
    char *b2 = seq_of(run(e2, "b"));
    ck_assert_str_eq(b1, b2);
    fl_engine_free(e2);
    /* another seed, another sequence */
    F.run.opt.seed = 43;
    char *a3 = seq_of(run(e, "a"));
    ck_assert_str_ne(a1, a3);

    fl_scenario_result_t *r = run(e, "bad interval");
    EXPECT_VERDICT(r, FL_VERDICT_USAGE);
    expect_message(r, "bad t:random interval: 3 > 1");
    expect_where(r, lf_at(&f, "bad"));
    free(a1);
    free(a2);
    free(a3);
    free(b1);
    free(b2);
    free_engine(e);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("engine");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, pass_events_in_order);
    tcase_add_test(tc, expect_continues_assert_stops);
    tcase_add_test(tc, lua_errors_have_a_traceback);
    tcase_add_test(tc, usage_errors_in_scenarios);
    tcase_add_test(tc, busy_loops_are_stopped_by_the_hook);
    tcase_add_test(tc, long_sleep_is_stopped_by_the_deadline);
    tcase_add_test(tc, eventually_and_always);
    tcase_add_test(tc, skipped_scenarios_do_not_run);
    tcase_add_test(tc, load_errors_name_file_and_line);
    tcase_add_test(tc, setup_failures);
    tcase_add_test(tc, process_control);
    tcase_add_test(tc, links_wiring_and_faults);
    tcase_add_test(tc, open_connections_at_teardown);
    tcase_add_test(tc, seeded_randomness);
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

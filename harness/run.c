/* A run (run.h): expand paths, claim addresses, load every file, run the selected
 * scenarios one by one from loop callbacks, write the reports, pick the exit code. */
#include "harness/run.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "harness/engine.h"
#include "harness/topology.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/strv.h"

typedef struct {
    fl_engine_t *e;
    size_t idx;
} item_t;

typedef struct {
    fl_run_t *run;
    fl_engine_t **engines;
    size_t nengines;
    item_t *items;
    size_t nitems, next;
    int stop;    /* --fail-fast tripped */
    int running; /* a scenario is running: live is its result */
    fl_scenario_result_t *live;
    uint64_t started; /* ...since this uv_hrtime() */
    /* --mutants: the mutants (union over the selected files), and the one being run */
    char **mutants;
    size_t nmutants;
    fl_mutant_result_t *mutant;
    item_t *mitems; /* its scenarios: those that claim it first */
    size_t mn, mnext, mclaimed;
    fl_run_result_t scratch; /* the results of its scenario runs */
    uv_timer_t ticker;       /* redraws the console's status line */
    int ticker_open;
} queue_t;

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int add_file(char ***files, size_t *n, const char *path)
{
    char **f = realloc(*files, (*n + 1) * sizeof *f);
    if (!f)
        return FL_ENOMEM;
    *files = f;
    if (!(f[*n] = strdup(path)))
        return FL_ENOMEM;
    (*n)++;
    return 0;
}

/* A folder's *.lua files, recursively and sorted; folders named lib hold modules, not
 * scenarios, and are skipped. */
static int add_dir(char ***files, size_t *n, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return FL_EIO;
    size_t first = *n;
    struct dirent *de;
    int rc = 0;
    while (!rc && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        fl_buf_t p = FL_BUF_INIT;
        fl_buf_printf(&p, "%s%s%s", dir, has_suffix(dir, "/") ? "" : "/", de->d_name);
        struct stat st;
        if (p.data && stat(p.data, &st) == 0) {
            if (S_ISDIR(st.st_mode) && strcmp(de->d_name, "lib") != 0)
                rc = add_dir(files, n, p.data);
            else if (S_ISREG(st.st_mode) && has_suffix(de->d_name, ".lua"))
                rc = add_file(files, n, p.data);
        }
        fl_buf_free(&p);
    }
    closedir(d);
    if (*n > first)
        qsort(*files + first, *n - first, sizeof **files, cmp_str);
    return rc;
}

static int expand_paths(fl_run_options_t *opt, char ***files, size_t *n)
{
    for (int i = 0; i < opt->npaths; i++) {
        struct stat st;
        if (stat(opt->paths[i], &st) != 0) {
            fprintf(stderr, "faultline: %s: %s\n", opt->paths[i], strerror(errno));
            return FL_ENOTFOUND;
        }
        int rc = S_ISDIR(st.st_mode) ? add_dir(files, n, opt->paths[i])
                                     : add_file(files, n, opt->paths[i]);
        if (rc) {
            fprintf(stderr, "faultline: %s: %s\n", opt->paths[i], fl_strerror(rc));
            return rc;
        }
    }
    return 0;
}

/* Report paths are checked before anything runs: a run that cannot write its report
 * should fail in a second, not after the suite. */
static int check_writable(const char *path)
{
    if (!path)
        return 0;
    if (!*path) {
        fprintf(stderr, "faultline: cannot write report '': empty file name\n");
        return FL_EIO;
    }
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            fprintf(stderr, "faultline: cannot write report %s: it is a folder\n", path);
            return FL_EIO;
        }
        if (access(path, W_OK) != 0)
            goto fail;
        return 0;
    }
    char *copy = strdup(path);
    if (!copy)
        return FL_ENOMEM;
    int ok = access(dirname(copy), W_OK) == 0;
    free(copy);
    if (ok)
        return 0;
fail:
    fprintf(stderr, "faultline: cannot write report %s: %s\n", path, strerror(errno));
    return FL_EIO;
}

static uint64_t unix_ms(void)
{
    uv_timeval64_t tv;
    uv_gettimeofday(&tv);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

/* A --filter that is not a valid Lua pattern is a usage error, not "nothing matches". */
static int check_filter(const char *pattern)
{
    if (!pattern)
        return 0;
    lua_State *L = luaL_newstate();
    if (!L)
        return FL_ENOMEM;
    luaL_openlibs(L);
    lua_getglobal(L, "string");
    lua_getfield(L, -1, "find");
    lua_pushliteral(L, "");
    lua_pushstring(L, pattern);
    int rc = 0;
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
        fprintf(stderr, "faultline: bad --filter pattern '%s': %s\n", pattern, lua_tostring(L, -1));
        rc = FL_ESYNTAX;
    }
    lua_close(L);
    return rc;
}

/* Two reports in one file would overwrite each other. */
static int check_distinct(const fl_run_options_t *opt)
{
    const char *p[3] = {opt->junit_path, opt->html_path, opt->json_path};
    static const char *const flag[3] = {"--junit", "--html", "--json"};
    for (int i = 0; i < 3; i++)
        for (int j = i + 1; j < 3; j++)
            if (p[i] && p[j] && strcmp(p[i], p[j]) == 0) {
                fprintf(stderr,
                        "faultline: %s and %s both name %s: give each report its own file\n",
                        flag[i], flag[j], p[i]);
                return FL_EINVAL;
            }
    return 0;
}

static int terminal_width(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 80;
}

static void tick(uv_timer_t *t)
{
    queue_t *q = t->data;
    fl_run_t *run = q->run;
    if (!q->running || !q->live)
        return;
    fl_console_progress(&run->console, q->live, (uv_hrtime() - q->started) / 1e9, terminal_width());
}

static void next_scenario(void *arg);

static void scenario_done(void *arg)
{
    queue_t *q = arg;
    fl_run_t *run = q->run;
    q->running = 0;
    fl_scenario_result_t *res = &run->result.scenarios[run->result.nscenarios - 1];
    switch (res->verdict) {
    case FL_VERDICT_PASS:
        run->result.passed++;
        break;
    case FL_VERDICT_FAIL:
        run->result.failed++;
        break;
    case FL_VERDICT_USAGE:
        run->usage_errors++;
        fprintf(stderr, "faultline: %s%s%s\n", res->where && *res->where ? res->where : "",
                res->where && *res->where ? ": " : "", res->message ? res->message : "");
        /* fall through */
    case FL_VERDICT_ERROR:
        run->result.errors++;
        break;
    case FL_VERDICT_SKIP:
        run->result.skipped++;
        break;
    }
    fl_console_scenario_done(&run->console, res);
    if (run->opt.fail_fast && res->verdict != FL_VERDICT_PASS && res->verdict != FL_VERDICT_SKIP)
        q->stop = 1;
    next_scenario(q);
}

static void next_scenario(void *arg)
{
    queue_t *q = arg;
    fl_run_t *run = q->run;
    while (q->next < q->nitems) {
        item_t *it = &q->items[q->next++];
        fl_scenario_result_t *res =
            fl_run_result_add(&run->result, fl_engine_path(it->e), fl_engine_name(it->e, it->idx));
        if (!res) {
            fprintf(stderr, "faultline: out of memory\n");
            q->stop = 1;
            return;
        }
        res->start_unix_ms = unix_ms();
        res->topology = fl_engine_topology(it->e);
        res->catches = fl_strv_dup(fl_engine_catches(it->e, it->idx), 0);
        if (q->stop) {
            res->verdict = FL_VERDICT_SKIP;
            res->message = strdup("not run: an earlier scenario failed (--fail-fast)");
            run->result.skipped++;
            continue;
        }
        q->running = 1;
        q->live = res;
        q->started = uv_hrtime();
        fl_engine_run(it->e, it->idx, res, scenario_done, q);
        return;
    }
}

/* ---------------------------------------------------------------- --mutants ---- */

/* The mutants of the files that have a selected scenario, each once: files in order, and
 * each file's in the order its topology lists them. */
static int collect_mutants(queue_t *q)
{
    for (size_t i = 0; i < q->nitems; i++) {
        if (i > 0 && q->items[i].e == q->items[i - 1].e)
            continue;
        for (char *const *m = fl_engine_mutants(q->items[i].e); *m; m++) {
            if (q->mutants && fl_mutants_has(q->mutants, *m))
                continue;
            char **v = realloc(q->mutants, (q->nmutants + 2) * sizeof *v);
            if (!v)
                return FL_ENOMEM;
            q->mutants = v;
            if (!(v[q->nmutants] = strdup(*m)))
                return FL_ENOMEM;
            v[++q->nmutants] = NULL;
        }
    }
    return 0;
}

/* --mutants=a,b: keep only those, in that order; each must be declared. */
static int only_mutants(queue_t *q, const char *list)
{
    char *copy = strdup(list), *save = NULL;
    char **keep = calloc(strlen(list) + 2, sizeof *keep);
    size_t n = 0;
    int rc = copy && keep ? 0 : FL_ENOMEM;
    for (char *m = copy ? strtok_r(copy, ",", &save) : NULL; !rc && m;
         m = strtok_r(NULL, ",", &save)) {
        if (!fl_mutants_has(q->mutants, m)) {
            fl_buf_t known = FL_BUF_INIT;
            for (size_t i = 0; i < q->nmutants; i++)
                fl_buf_printf(&known, "%s%s", i ? ", " : "", q->mutants[i]);
            fprintf(stderr,
                    "faultline: --mutants=%s: no topology of the selected scenarios declares "
                    "'%s' (they declare: %s)\n",
                    list, m, known.data ? known.data : "none");
            fl_buf_free(&known);
            rc = FL_EINVAL;
        } else if (!fl_mutants_has(keep, m) && !(keep[n++] = strdup(m))) {
            rc = FL_ENOMEM;
        }
    }
    free(copy);
    if (rc) {
        fl_strv_free(keep);
        return rc;
    }
    fl_strv_free(q->mutants);
    q->mutants = keep;
    q->nmutants = n;
    return 0;
}

/* The scenarios that can catch mutant m: those of files that declare it which the baseline
 * did not skip; the ones whose catches name m first. */
static int mutant_items(queue_t *q, const char *m)
{
    free(q->mitems);
    q->mitems = calloc(q->nitems ? q->nitems : 1, sizeof *q->mitems);
    if (!q->mitems)
        return FL_ENOMEM;
    q->mn = q->mnext = q->mclaimed = 0;
    for (int claimed = 1; claimed >= 0; claimed--)
        for (size_t i = 0; i < q->nitems; i++) {
            item_t *it = &q->items[i];
            if (q->run->result.scenarios[i].verdict == FL_VERDICT_SKIP ||
                !fl_mutants_has(fl_engine_mutants(it->e), m) ||
                fl_mutants_has(fl_engine_catches(it->e, it->idx), m) != claimed)
                continue;
            q->mitems[q->mn++] = *it;
            q->mclaimed += (size_t)claimed;
        }
    return 0;
}

static void next_mutant_scenario(void *arg);

static void mutant_scenario_done(void *arg)
{
    queue_t *q = arg;
    fl_run_t *run = q->run;
    q->running = 0;
    item_t *it = &q->mitems[q->mnext - 1];
    fl_scenario_result_t *res = &q->scratch.scenarios[q->scratch.nscenarios - 1];
    int claimed = fl_mutants_has(fl_engine_catches(it->e, it->idx), q->mutant->name);
    if (fl_mutant_add_run(q->mutant, res, claimed) != 0) {
        fprintf(stderr, "faultline: out of memory\n");
        return;
    }
    fl_console_mutant_run(&run->console, q->mutant->name, &q->mutant->runs[q->mutant->nruns - 1]);
    next_mutant_scenario(q);
}

/* Every scenario that claims the mutant runs (each claim is checked); the others run only
 * when none of those caught it, and stop at the first that does. */
static void next_mutant_scenario(void *arg)
{
    queue_t *q = arg;
    if (q->mnext >= q->mn || (q->mnext >= q->mclaimed && q->mutant->caught))
        return;
    item_t *it = &q->mitems[q->mnext++];
    fl_scenario_result_t *res =
        fl_run_result_add(&q->scratch, fl_engine_path(it->e), fl_engine_name(it->e, it->idx));
    if (!res) {
        fprintf(stderr, "faultline: out of memory\n");
        return;
    }
    res->start_unix_ms = unix_ms();
    q->running = 1;
    q->live = res;
    q->started = uv_hrtime();
    fl_engine_run(it->e, it->idx, res, mutant_scenario_done, q);
}

/* After a passing baseline: each mutant in turn, its scenarios with FAULTLINE_BUG=<mutant>. */
static int run_mutants(fl_run_t *run, queue_t *q)
{
    for (size_t i = 0; i < q->nmutants; i++) {
        const char *m = q->mutants[i];
        if (mutant_items(q, m) != 0 || !(q->mutant = fl_run_result_add_mutant(&run->result, m)))
            return FL_ENOMEM;
        fl_console_mutant_begin(&run->console, m, q->mclaimed, q->mn);
        run->mutant = m;
        next_mutant_scenario(q);
        uv_run(run->loop, UV_RUN_DEFAULT);
        run->mutant = NULL;
        q->live = NULL;
        fl_run_result_free(&q->scratch);
    }
    return 0;
}

/* --shard I/N: the scenarios, sorted by "file: name" (bytewise), are dealt round robin to N
 * shards; shard I keeps the I-th, (I+N)-th... and runs them in the usual order. Every shard
 * computes the same split from the same files, whatever the machine, locale or seed. */
typedef struct {
    char *key;
    size_t idx;
} shard_key_t;

static int cmp_key(const void *a, const void *b)
{
    const shard_key_t *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

static int shard_items(queue_t *q, unsigned shard, unsigned nshards)
{
    size_t total = q->nitems;
    if (!nshards || !total)
        return 0;
    shard_key_t *keys = calloc(total, sizeof *keys);
    char *keep = calloc(total, 1);
    int rc = keys && keep ? 0 : FL_ENOMEM;
    for (size_t i = 0; !rc && i < total; i++) {
        fl_buf_t k = FL_BUF_INIT;
        rc = fl_buf_printf(&k, "%s: %s", fl_engine_path(q->items[i].e),
                           fl_engine_name(q->items[i].e, q->items[i].idx));
        keys[i] = (shard_key_t){k.data, i};
    }
    if (!rc) {
        qsort(keys, total, sizeof *keys, cmp_key);
        for (size_t k = 0; k < total; k++)
            keep[keys[k].idx] = k % nshards == shard - 1;
        size_t n = 0;
        for (size_t i = 0; i < total; i++)
            if (keep[i])
                q->items[n++] = q->items[i];
        q->nitems = n;
    }
    for (size_t i = 0; keys && i < total; i++)
        free(keys[i].key);
    free(keys);
    free(keep);
    return rc;
}

static int write_report(const char *path, int (*writer)(const fl_run_result_t *, const char *),
                        const fl_run_result_t *res)
{
    if (!path)
        return 0;
    int rc = writer(res, path);
    if (rc)
        fprintf(stderr, "faultline: cannot write %s: %s\n", path,
                rc == FL_EIO ? strerror(errno) : fl_strerror(rc));
    return rc;
}

/* Every report asked for; each is tried even when an earlier one failed. */
static int write_reports(fl_run_t *run)
{
    int a = write_report(run->opt.junit_path, fl_junit_write, &run->result);
    int b = write_report(run->opt.html_path, fl_html_write, &run->result);
    int c = write_report(run->opt.json_path, fl_json_write, &run->result);
    return a || b || c ? FL_EIO : 0;
}

static uint64_t random_seed(void)
{
    uint64_t s = 0;
    if (getrandom(&s, sizeof s, GRND_NONBLOCK) != sizeof s)
        s = uv_hrtime() ^ ((uint64_t)getpid() << 32);
    return s % 1000000000000ull; /* short enough to type back in */
}

static int load_all(fl_run_t *run, queue_t *q, char **files, size_t nfiles)
{
    int bad = 0;
    q->engines = calloc(nfiles ? nfiles : 1, sizeof *q->engines);
    if (!q->engines)
        return FL_ENOMEM;
    for (size_t i = 0; i < nfiles; i++) {
        char err[2048];
        fl_engine_t *e = NULL;
        if (fl_engine_load(run, files[i], &e, err, sizeof err) != 0) {
            fprintf(stderr, "faultline: %s\n", err);
            bad++;
            continue;
        }
        q->engines[q->nengines++] = e;
        size_t n = fl_engine_count(e);
        if (n == 0)
            fprintf(stderr, "faultline: %s: warning: no scenario declared\n", files[i]);
        for (size_t j = 0; j < n; j++) {
            if (run->opt.filter && !fl_engine_matches(e, j, run->opt.filter))
                continue;
            item_t *it = realloc(q->items, (q->nitems + 1) * sizeof *it);
            if (!it)
                return FL_ENOMEM;
            q->items = it;
            q->items[q->nitems++] = (item_t){e, j};
        }
    }
    return bad ? FL_ESYNTAX : 0;
}

int fl_run_main(fl_run_options_t *opt)
{
    fl_run_t run_s, *run = &run_s;
    memset(run, 0, sizeof *run);
    run->opt = *opt;
    run->addr.lock_fd = -1;
    int code = 2;
    char **files = NULL;
    size_t nfiles = 0;
    queue_t q = {.run = run};
    uv_loop_t loop;

    if (!run->opt.seed_given)
        run->opt.seed = random_seed();
    fl_rng_seed(&run->rng, run->opt.seed);
    run->console.out = stdout;
    run->console.color = isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
    run->console.quiet = opt->quiet;
    run->console.verbose = opt->verbose;
    {
        const char *term = getenv("TERM");
        run->console.live =
            isatty(STDOUT_FILENO) && !opt->quiet && !(term && !strcmp(term, "dumb"));
    }
    run->result.seed = run->opt.seed;
    run->result.version = FL_VERSION;
    run->result.shard = opt->shard;
    run->result.nshards = opt->nshards;

    if (uv_loop_init(&loop) != 0)
        return 2;
    run->loop = &loop;
    signal(SIGPIPE, SIG_IGN);

    char exe[4096];
    size_t exelen = sizeof exe;
    if (uv_exepath(exe, &exelen) != 0) {
        fprintf(stderr, "faultline: cannot find my own executable\n");
        goto out;
    }
    run->self_exe = strdup(exe);
    run->bin_dir = strdup(dirname(exe));
    if (!run->self_exe || !run->bin_dir)
        goto out;

    if (expand_paths(&run->opt, &files, &nfiles) != 0 || check_distinct(opt) != 0 ||
        check_writable(opt->junit_path) != 0 || check_writable(opt->html_path) != 0 ||
        check_writable(opt->json_path) != 0 || check_filter(opt->filter) != 0)
        goto out;
    if (nfiles == 0) {
        fprintf(stderr, "faultline: no scenario files (*.lua) in the given paths\n");
        goto out;
    }
    if (fl_addr_claim(&run->addr, FL_ADDR_X_FIRST) != 0) {
        fprintf(stderr, "faultline: every loopback range 127.%d-%d.0.0/16 is in use\n",
                FL_ADDR_X_FIRST, FL_ADDR_X_LAST);
        goto out;
    }
    if (!opt->quiet)
        printf("faultline %s: seed %llu, addresses 127.%d.0.0/16, %zu file%s\n", FL_VERSION,
               (unsigned long long)run->opt.seed, run->addr.x, nfiles, nfiles == 1 ? "" : "s");
    else
        printf("faultline: seed %llu\n", (unsigned long long)run->opt.seed);
    fflush(stdout);
    if (load_all(run, &q, files, nfiles) != 0)
        goto out;
    size_t selected = q.nitems;
    if (shard_items(&q, opt->shard, opt->nshards) != 0)
        goto out;
    run->result.mutant_mode = opt->mutants;
    if (opt->mutants) {
        if (collect_mutants(&q) != 0 ||
            (opt->only_mutants && selected > 0 && only_mutants(&q, opt->only_mutants) != 0))
            goto out;
        if (q.nmutants == 0 && selected > 0) {
            fprintf(stderr, "faultline: --mutants: no topology of the selected scenarios declares "
                            "mutants (topology { mutants = { \"no-retry\", ... } })\n");
            goto out;
        }
        if (!opt->quiet && q.nmutants) {
            printf("mutant mode: %zu mutant%s (", q.nmutants, q.nmutants == 1 ? "" : "s");
            for (size_t i = 0; i < q.nmutants; i++)
                printf("%s%s", i ? ", " : "", q.mutants[i]);
            printf("); the baseline first\n");
        }
    }
    if (selected == 0)
        fprintf(stderr, "faultline: no scenario matches%s%s\n", opt->filter ? " --filter " : "",
                opt->filter ? opt->filter : "");
    else if (opt->nshards && !opt->quiet)
        printf("shard %u/%u: %zu of %zu scenarios\n", opt->shard, opt->nshards, q.nitems, selected);
    if (run->console.live && uv_timer_init(&loop, &q.ticker) == 0) {
        q.ticker.data = &q;
        q.ticker_open = 1;
        uv_timer_start(&q.ticker, tick, 200, 200);
        uv_unref((uv_handle_t *)&q.ticker); /* never what keeps the run going */
    }

    uint64_t t0 = uv_hrtime();
    run->result.start_unix_ms = unix_ms();
    next_scenario(&q);
    uv_run(&loop, UV_RUN_DEFAULT);
    run->result.seconds = (uv_hrtime() - t0) / 1e9;

    fl_console_summary(&run->console, &run->result);
    code = run->usage_errors ? 2 : (run->result.failed || run->result.errors) ? 1 : 0;
    if (opt->mutants && code == 0 && selected > 0) {
        uint64_t m0 = uv_hrtime();
        if (run_mutants(run, &q) != 0) {
            fprintf(stderr, "faultline: out of memory\n");
            code = 2;
            goto out;
        }
        run->result.seconds += (uv_hrtime() - m0) / 1e9;
        fl_console_mutants_summary(&run->console, &run->result, (uv_hrtime() - m0) / 1e9);
        code = fl_run_result_mutants_ok(&run->result) ? 0 : 1;
    } else if (opt->mutants && code != 0) {
        fprintf(stderr,
                "faultline: --mutants: the baseline did not pass, so the mutants were not run "
                "(a mutant caught by a suite that fails anyway proves nothing): fix the "
                "failures above first\n");
    }
    if (write_reports(run) != 0)
        code = 2;
out:
    if (q.ticker_open) {
        uv_close((uv_handle_t *)&q.ticker, NULL);
        q.ticker_open = 0;
    }
    for (size_t i = 0; i < q.nengines; i++)
        fl_engine_free(q.engines[i]);
    free(q.engines);
    free(q.items);
    free(q.mitems);
    fl_strv_free(q.mutants);
    fl_run_result_free(&q.scratch);
    for (size_t i = 0; i < nfiles; i++)
        free(files[i]);
    free(files);
    fl_run_result_free(&run->result);
    fl_addr_release(&run->addr);
    free(run->self_exe);
    free(run->bin_dir);
    uv_run(&loop, UV_RUN_DEFAULT); /* let any closing handle finish */
    if (uv_loop_close(&loop) != 0)
        fprintf(stderr, "faultline: internal error: handles left open at exit\n");
    return code;
}

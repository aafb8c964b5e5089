/* faultline's command line: parses arguments and hands over to the run, the shim, or the
 * version printer. Usage errors exit 2 with one line on stderr. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "fakes/amqp/amqp.h"
#include "fakes/consul/consul.h"
#include "harness/proxy.h"
#include "harness/run.h"
#include "harness/shim.h"
#include "lib/dur.h"

static const char usage_text[] =
    "usage: faultline run [options] PATH...   run the scenarios in PATH (.lua files or folders)\n"
    "       faultline proxy --listen HOST:PORT --upstream HOST:PORT [--control HOST:PORT]\n"
    "       faultline fake consul --listen HOST:PORT [--nodes N]   a standalone fake Consul\n"
    "       faultline fake amqp --listen HOST:PORT [--data DIR]    a standalone fake broker\n"
    "       faultline merge-junit OUT IN...   merge the JUnit files of --shard runs into OUT\n"
    "       faultline version\n"
    "\n"
    "run options:\n"
    "  --junit FILE       write a JUnit XML report to FILE\n"
    "  --html FILE        write a self-contained HTML report to FILE\n"
    "  --json FILE        write a JSON report to FILE (docs/report-json.md)\n"
    "  --shard I/N        run only the I-th of N slices of the scenarios (1 <= I <= N)\n"
    "  --filter PATTERN   run only scenarios whose \"file: name\" matches the Lua pattern\n"
    "  --mutants[=M,...]  prove the checks: after a passing baseline, run the scenarios once per\n"
    "                     mutant the topologies declare (FAULTLINE_BUG=<mutant>), or only the\n"
    "                     ones listed; every mutant must be caught by a scenario, and every\n"
    "                     catches claim must hold\n"
    "  --seed N           fix every random choice (printed at every start)\n"
    "  --timeout DUR      per-scenario wall limit (default 120s)\n"
    "  --fail-fast        stop after the first failing scenario\n"
    "  --keep-going       run every scenario (the default)\n"
    "  --quiet            print only failures and the summary\n"
    "  --verbose          print every timeline event as it happens\n"
    "\n"
    "exit codes: 0 all passed, 1 a scenario failed, 2 usage, configuration or load error\n";

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "faultline: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(see faultline --help)\n");
    return 2;
}

/* "I/N", both decimal, 1 <= I <= N <= 100000. */
static int parse_shard(const char *s, unsigned *i, unsigned *n)
{
    char *end;
    if (!(*s >= '0' && *s <= '9'))
        return -1;
    errno = 0;
    unsigned long a = strtoul(s, &end, 10);
    if (errno || *end != '/' || !(end[1] >= '0' && end[1] <= '9'))
        return -1;
    unsigned long b = strtoul(end + 1, &end, 10);
    if (errno || *end || a < 1 || b < 1 || a > b || b > 100000)
        return -1;
    *i = (unsigned)a;
    *n = (unsigned)b;
    return 0;
}

/* faultline merge-junit OUT IN... */
static int cmd_merge_junit(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        puts("usage: faultline merge-junit OUT IN...\n"
             "merges the JUnit files that faultline run --junit wrote (e.g. one per --shard)");
        return 0;
    }
    if (argc < 3)
        return usage_error("%s", "merge-junit needs an output file and at least one input file");
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], argv[1]) == 0)
            return usage_error("merge-junit: the output %s is also an input", argv[1]);
    char err[512];
    if (fl_junit_merge(argv[1], argv + 2, (size_t)(argc - 2), err, sizeof err) != 0) {
        fprintf(stderr, "faultline: %s\n", err);
        return 2;
    }
    return 0;
}

static int cmd_run(int argc, char **argv)
{
    enum {
        O_JUNIT = 256,
        O_FILTER,
        O_SEED,
        O_TIMEOUT,
        O_FAILFAST,
        O_KEEPGOING,
        O_QUIET,
        O_VERBOSE,
        O_HTML,
        O_JSON,
        O_SHARD,
        O_MUTANTS
    };
    static const struct option longopts[] = {
        {"junit", required_argument, NULL, O_JUNIT},
        {"html", required_argument, NULL, O_HTML},
        {"json", required_argument, NULL, O_JSON},
        {"shard", required_argument, NULL, O_SHARD},
        {"filter", required_argument, NULL, O_FILTER},
        {"mutants", optional_argument, NULL, O_MUTANTS},
        {"seed", required_argument, NULL, O_SEED},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"fail-fast", no_argument, NULL, O_FAILFAST},
        {"keep-going", no_argument, NULL, O_KEEPGOING},
        {"quiet", no_argument, NULL, O_QUIET},
        {"verbose", no_argument, NULL, O_VERBOSE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    fl_run_options_t opt = {.timeout_ns = 120000000000ull};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
        switch (c) {
        case O_JUNIT:
            opt.junit_path = optarg;
            break;
        case O_HTML:
            opt.html_path = optarg;
            break;
        case O_JSON:
            opt.json_path = optarg;
            break;
        case O_SHARD:
            if (parse_shard(optarg, &opt.shard, &opt.nshards) != 0)
                return usage_error("--shard expects I/N with 1 <= I <= N (like 2/4), got '%s'",
                                   optarg);
            break;
        case O_FILTER:
            opt.filter = optarg;
            break;
        case O_MUTANTS:
            opt.mutants = 1;
            opt.only_mutants = optarg;
            if (optarg && !*optarg)
                return usage_error("%s",
                                   "--mutants= needs mutant names: --mutants=no-retry,sticky-lb");
            break;
        case O_SEED: {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (errno || end == optarg || *end || optarg[0] == '-')
                return usage_error("--seed expects a non-negative whole number, got '%s'", optarg);
            opt.seed = v;
            opt.seed_given = 1;
            break;
        }
        case O_TIMEOUT:
            if (fl_dur_parse(optarg, &opt.timeout_ns) != 0 || opt.timeout_ns == 0)
                return usage_error("--timeout expects a duration like 30s or 2m, got '%s'", optarg);
            break;
        case O_FAILFAST:
            opt.fail_fast = 1;
            break;
        case O_KEEPGOING:
            opt.fail_fast = 0;
            break;
        case O_QUIET:
            opt.quiet = 1;
            opt.verbose = 0;
            break;
        case O_VERBOSE:
            opt.verbose = 1;
            opt.quiet = 0;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        case ':':
            return usage_error("option %s needs a value", argv[optind - 1]);
        default:
            return usage_error("unknown option %s", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return usage_error("%s", "run needs at least one PATH (a .lua file or a folder)");
    if (opt.mutants && opt.nshards)
        return usage_error("%s",
                           "--mutants cannot be split with --shard: any scenario of the suite "
                           "may be the one that catches a mutant (narrow it with --filter)");
    opt.paths = argv + optind;
    opt.npaths = argc - optind;
    return fl_run_main(&opt);
}

/* Links hold two descriptors per connection: take every descriptor we are allowed (the
 * soft limit is often 1024, the hard one far higher). */
static void raise_fd_limit(void)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
        char soft[32]; /* the shim gives services the limit they would have had */
        snprintf(soft, sizeof soft, "%llu", (unsigned long long)r.rlim_cur);
        setenv(FL_SHIM_NOFILE_ENV, soft, 1);
        r.rlim_cur = r.rlim_max;
        setrlimit(RLIMIT_NOFILE, &r);
    }
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], FL_SHIM_ARG) == 0)
        return fl_shim_main(argc, argv);
    raise_fd_limit();
    if (argc < 2) {
        fputs(usage_text, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    if (strcmp(cmd, "merge-junit") == 0)
        return cmd_merge_junit(argc - 1, argv + 1);
    if (strcmp(cmd, "proxy") == 0)
        return fl_proxy_main(argc - 1, argv + 1);
    if (strcmp(cmd, "fake") == 0) {
        if (argc >= 3 && strcmp(argv[2], "consul") == 0)
            return fl_consul_main(argc - 2, argv + 2);
        if (argc >= 3 && strcmp(argv[2], "amqp") == 0)
            return fl_amqp_main(argc - 2, argv + 2);
        return usage_error("unknown fake '%s' (there are: consul, amqp)", argc >= 3 ? argv[2] : "");
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("faultline %s\n", FL_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    return usage_error("unknown command '%s'", cmd);
}

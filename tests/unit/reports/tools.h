/* Helpers the report tests share: a private temp directory, running an outside checker
 * (xmllint, /usr/bin/python3 scripts) and writing a file. */
#ifndef FL_TEST_REPORTS_TOOLS_H
#define FL_TEST_REPORTS_TOOLS_H

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* A private temp directory per test, removed with everything in it. */
typedef struct {
    char dir[64];
    char path[128];
} tmp_t;

static inline void tmp_open(tmp_t *t, const char *file)
{
    strcpy(t->dir, "/tmp/fl-report-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(t->dir));
    snprintf(t->path, sizeof t->path, "%s/%s", t->dir, file);
}

/* Another file in the same directory. */
static inline void tmp_file(const tmp_t *t, const char *file, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", t->dir, file);
}

static inline void tmp_close(tmp_t *t)
{
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->dir);
    ck_assert_int_eq(system(cmd), 0);
}

static inline const char *source_dir(void)
{
    const char *d = getenv("FL_SOURCE_DIR");
    ck_assert_msg(d && *d, "FL_SOURCE_DIR is not set (ctest sets it)");
    return d;
}

/* Runs argv (looked up in PATH) and returns its exit status, or -1 when it could not run or
 * was killed. quiet sends its stderr to /dev/null (for negative controls). */
static inline int run_tool(char *const argv[], int quiet)
{
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int status, rc = -1;
    ck_assert_int_eq(posix_spawn_file_actions_init(&fa), 0);
    if (quiet)
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    if (posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ) != 0)
        goto done;
    while (waitpid(pid, &status, 0) < 0)
        ck_assert_int_eq(errno, EINTR);
    if (WIFEXITED(status))
        rc = WEXITSTATUS(status);
done:
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

static inline void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

#endif

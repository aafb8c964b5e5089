/* Test helpers shared by the supervisor and shim suites: what /proc says about a process
 * (state letter, children, command name) and a monotonic clock, so every wait is bounded. */
#ifndef FL_TEST_PROCFS_H
#define FL_TEST_PROCFS_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

static inline uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static inline void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Reads /proc/PID/stat: the state letter (R, S, T, Z, ...) and the parent pid; 0 when the
 * process does not exist. */
static inline char proc_stat(pid_t pid, pid_t *ppid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
    char state = 0;
    int pp = 0;
    if (!p || sscanf(p + 1, " %c %d", &state, &pp) != 2)
        return 0;
    if (ppid)
        *ppid = pp;
    return state;
}

static inline char proc_state(pid_t pid)
{
    return proc_stat(pid, NULL);
}

/* Dead: no such process, or a zombie nobody has reaped yet (it runs no more code). */
static inline int proc_gone(pid_t pid)
{
    char s = proc_state(pid);
    return s == 0 || s == 'Z' || s == 'X';
}

/* The children of pid, from /proc/PID/task/PID/children, or by scanning /proc for its
 * pid as parent where the kernel lacks that file. Returns how many (at most max). */
static inline int proc_children(pid_t pid, pid_t *out, int max)
{
    char path[96];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
    int n = 0;
    FILE *f = fopen(path, "r");
    if (f) {
        int c;
        while (n < max && fscanf(f, "%d", &c) == 1)
            out[n++] = c;
        fclose(f);
        return n;
    }
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    struct dirent *e;
    while (n < max && (e = readdir(d))) {
        char *end;
        long p = strtol(e->d_name, &end, 10);
        pid_t pp;
        if (*end || p <= 0)
            continue;
        if (proc_stat((pid_t)p, &pp) && pp == pid)
            out[n++] = (pid_t)p;
    }
    closedir(d);
    return n;
}

/* All descendants of pid (children first, then theirs). Returns how many (at most max). */
static inline int proc_descendants(pid_t pid, pid_t *out, int max)
{
    int n = proc_children(pid, out, max);
    for (int i = 0; i < n && n < max; i++)
        n += proc_children(out[i], out + n, max - n);
    return n;
}

/* The command name (/proc/PID/comm) into out; "" when gone. */
static inline void proc_comm(pid_t pid, char *out, size_t outlen)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    if (fgets(out, (int)outlen, f))
        out[strcspn(out, "\n")] = '\0';
    fclose(f);
}

#endif

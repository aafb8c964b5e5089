/* Unit tests for harness/addr.c: claiming a private loopback range (127.X, X >= 2, a second
 * claim gets another X while the first is held, a released X can be claimed again, every X
 * taken gives FL_EADDRINUSE), the address formats, and port allocation inside the run's own
 * slice (distinct ports, a port something else holds is skipped whatever address it is bound
 * to, a full slice gives FL_EADDRINUSE). Real sockets on loopback only. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness/addr.h"
#include "lib/err.h"

/* A TCP socket bound to ip:port (listening when listen_too), or -1. */
static int bind_tcp(const char *ip, int port, int reuse, int listen_too)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    int one = 1;
    if (reuse)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    ck_assert_int_eq(inet_pton(AF_INET, ip, &sa.sin_addr), 1);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || (listen_too && listen(fd, 4) != 0)) {
        close(fd);
        return -1;
    }
    return fd;
}

static int slice_base(const fl_addr_t *a)
{
    return FL_ADDR_PORT_BASE + (a->x - FL_ADDR_X_FIRST) * FL_ADDR_PORTS_PER_RUN;
}

START_TEST(claim_picks_a_private_range)
{
    fl_addr_t a;
    ck_assert_int_eq(fl_addr_claim(&a, FL_ADDR_X_FIRST), 0);
    ck_assert_int_ge(a.x, 2);
    ck_assert_int_le(a.x, 254);
    ck_assert_int_ge(a.lock_fd, 0);
    /* the lock listener really holds 127.X.0.1:LOCK_PORT */
    char ip[32];
    snprintf(ip, sizeof ip, "127.%d.0.1", a.x);
    ck_assert_int_eq(bind_tcp(ip, FL_ADDR_LOCK_PORT, 1, 1), -1);
    fl_addr_release(&a);
    ck_assert_int_eq(a.lock_fd, -1);
    fl_addr_release(&a); /* idempotent */
}
END_TEST

START_TEST(second_claim_gets_another_range)
{
    fl_addr_t a, b, c;
    ck_assert_int_eq(fl_addr_claim(&a, FL_ADDR_X_FIRST), 0);
    ck_assert_int_eq(fl_addr_claim(&b, a.x), 0); /* a.x is held: the next free one */
    ck_assert_int_ne(b.x, a.x);
    ck_assert_int_gt(b.x, a.x);
    int old = a.x;
    fl_addr_release(&a);
    ck_assert_int_eq(fl_addr_claim(&c, old), 0); /* freed: claimable again */
    ck_assert_int_eq(c.x, old);
    fl_addr_release(&b);
    fl_addr_release(&c);
}
END_TEST

START_TEST(first_out_of_range_starts_at_two)
{
    fl_addr_t a;
    ck_assert_int_eq(fl_addr_claim(&a, 0), 0);
    ck_assert_int_ge(a.x, FL_ADDR_X_FIRST);
    fl_addr_release(&a);
    ck_assert_int_eq(fl_addr_claim(&a, 999), 0);
    ck_assert_int_ge(a.x, FL_ADDR_X_FIRST);
    fl_addr_release(&a);
}
END_TEST

START_TEST(every_range_taken)
{
    /* Hold the last range ourselves, the way another run would, and start there. */
    char ip[32];
    snprintf(ip, sizeof ip, "127.%d.0.1", FL_ADDR_X_LAST);
    int fd = bind_tcp(ip, FL_ADDR_LOCK_PORT, 0, 1);
    ck_assert_msg(fd >= 0, "cannot hold %s:%d: %s", ip, FL_ADDR_LOCK_PORT, strerror(errno));
    fl_addr_t a;
    ck_assert_int_eq(fl_addr_claim(&a, FL_ADDR_X_LAST), FL_EADDRINUSE);
    ck_assert_int_eq(a.lock_fd, -1);
    close(fd);
    ck_assert_int_eq(fl_addr_claim(&a, FL_ADDR_X_LAST), 0);
    ck_assert_int_eq(a.x, FL_ADDR_X_LAST);
    fl_addr_release(&a);
}
END_TEST

START_TEST(formats)
{
    fl_addr_t a = {.x = 7, .lock_fd = -1};
    char out[32];
    fl_addr_instance(&a, 3, 2, out, sizeof out);
    ck_assert_str_eq(out, "127.7.3.2");
    fl_addr_instance(&a, 254, 254, out, sizeof out);
    ck_assert_str_eq(out, "127.7.254.254");
    fl_addr_harness(&a, 1, out, sizeof out);
    ck_assert_str_eq(out, "127.7.0.1");
    fl_addr_harness(&a, 200, out, sizeof out);
    ck_assert_str_eq(out, "127.7.0.200");
    char tiny[8];
    fl_addr_instance(&a, 3, 2, tiny, sizeof tiny); /* truncated, still terminated */
    ck_assert_str_eq(tiny, "127.7.3");
}
END_TEST

START_TEST(ports_distinct_inside_slice)
{
    fl_addr_t a;
    ck_assert_int_eq(fl_addr_claim(&a, FL_ADDR_X_FIRST), 0);
    int base = slice_base(&a);
    ck_assert_int_le(base + FL_ADDR_PORTS_PER_RUN - 1, 32767);
    int seen[FL_ADDR_PORTS_PER_RUN];
    for (int i = 0; i < 20; i++) {
        ck_assert_int_eq(fl_addr_next_port(&a, &seen[i]), 0);
        ck_assert_int_ge(seen[i], base);
        ck_assert_int_lt(seen[i], base + FL_ADDR_PORTS_PER_RUN);
        for (int j = 0; j < i; j++)
            ck_assert_int_ne(seen[i], seen[j]);
    }
    fl_addr_release(&a);
}
END_TEST

START_TEST(slices_of_two_runs_do_not_overlap)
{
    fl_addr_t a, b;
    ck_assert_int_eq(fl_addr_claim(&a, FL_ADDR_X_FIRST), 0);
    ck_assert_int_eq(fl_addr_claim(&b, a.x), 0);
    int pa, pb;
    for (int i = 0; i < FL_ADDR_PORTS_PER_RUN; i++) {
        ck_assert_int_eq(fl_addr_next_port(&a, &pa), 0);
        ck_assert_int_eq(fl_addr_next_port(&b, &pb), 0);
        ck_assert(pa < slice_base(&b) || pa >= slice_base(&b) + FL_ADDR_PORTS_PER_RUN);
        ck_assert(pb < slice_base(&a) || pb >= slice_base(&a) + FL_ADDR_PORTS_PER_RUN);
    }
    fl_addr_release(&a);
    fl_addr_release(&b);
}
END_TEST

/* The port the next call would try first, held by something else on ip, is skipped. */
/* Tests that bind ports of a slice themselves claim a range far from the ones real runs
 * take first: ports of a recently used slice may sit in TIME_WAIT, and a test binding
 * without SO_REUSEADDR would find them all busy. */
#define QUIET_X 200

static void check_skips(const char *ip_fmt, int reuse, int listen_too)
{
    fl_addr_t a;
    ck_assert_int_eq(fl_addr_claim(&a, QUIET_X), 0);
    int base = slice_base(&a), p;
    ck_assert_int_eq(fl_addr_next_port(&a, &p), 0); /* move off the slice's first port */
    /* the next port, or the first after it that we can hold (another test running at the
     * same time may have connections in TIME_WAIT on some) */
    char ip[32];
    snprintf(ip, sizeof ip, ip_fmt, a.x);
    int busy = base + a.next_port, fd = -1;
    for (; fd < 0 && busy < base + FL_ADDR_PORTS_PER_RUN - 1; busy++)
        fd = bind_tcp(ip, busy, reuse, listen_too);
    busy--;
    ck_assert_msg(fd >= 0, "cannot bind %s:%d: %s", ip, busy, strerror(errno));
    a.next_port = busy - base;
    ck_assert_int_eq(fl_addr_next_port(&a, &p), 0);
    ck_assert_int_ne(p, busy);
    ck_assert_int_gt(p, busy);
    ck_assert_int_lt(p, base + FL_ADDR_PORTS_PER_RUN);
    close(fd);
    fl_addr_release(&a);
}

START_TEST(skips_port_bound_on_any)
{
    check_skips("0.0.0.0", 0, 1);
}
END_TEST

START_TEST(skips_port_bound_on_localhost)
{
    check_skips("127.0.0.1", 0, 1);
}
END_TEST

START_TEST(skips_port_of_instance_address)
{
    check_skips("127.%d.1.1", 1, 1); /* a service listening with SO_REUSEADDR */
}
END_TEST

START_TEST(skips_port_bound_not_listening)
{
    check_skips("127.0.0.1", 0, 0);
}
END_TEST

START_TEST(whole_slice_taken)
{
    fl_addr_t a;
    ck_assert_int_eq(fl_addr_claim(&a, QUIET_X), 0);
    int base = slice_base(&a);
    int fds[FL_ADDR_PORTS_PER_RUN];
    for (int i = 0; i < FL_ADDR_PORTS_PER_RUN; i++)
        fds[i] = bind_tcp("0.0.0.0", base + i, 1, 1); /* -1: already busy, fine too */
    /* once the slice is used up, the kernel picks one: outside the slice, free, and
     * never one already handed out */
    int p = -1, q = -1;
    ck_assert_int_eq(fl_addr_next_port(&a, &p), 0);
    ck_assert(p < base || p >= base + FL_ADDR_PORTS_PER_RUN);
    ck_assert_int_eq(fl_addr_next_port(&a, &q), 0);
    ck_assert_int_ne(p, q);
    fl_addr_forget_ports(&a);
    p = -1;
    /* free one: it is found, wherever the cursor stands */
    int freed = -1;
    for (int i = FL_ADDR_PORTS_PER_RUN - 1; i >= 0 && freed < 0; i--)
        if (fds[i] >= 0) {
            close(fds[i]);
            fds[i] = -1;
            freed = base + i;
        }
    ck_assert_int_ge(freed, 0);
    ck_assert_int_eq(fl_addr_next_port(&a, &p), 0);
    ck_assert_int_eq(p, freed);
    for (int i = 0; i < FL_ADDR_PORTS_PER_RUN; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    fl_addr_release(&a);
}
END_TEST

START_TEST(lock_is_close_on_exec)
{
    fl_addr_t a;
    ck_assert_int_eq(fl_addr_claim(&a, FL_ADDR_X_FIRST), 0);
    /* a service must not inherit the lock (it would outlive the run and hold the range) */
    int flags = fcntl(a.lock_fd, F_GETFD);
    ck_assert_int_ge(flags, 0);
    ck_assert(flags & FD_CLOEXEC);
    fl_addr_release(&a);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("addr");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, claim_picks_a_private_range);
    tcase_add_test(tc, second_claim_gets_another_range);
    tcase_add_test(tc, first_out_of_range_starts_at_two);
    tcase_add_test(tc, every_range_taken);
    tcase_add_test(tc, formats);
    tcase_add_test(tc, ports_distinct_inside_slice);
    tcase_add_test(tc, slices_of_two_runs_do_not_overlap);
    tcase_add_test(tc, skips_port_bound_on_any);
    tcase_add_test(tc, skips_port_bound_on_localhost);
    tcase_add_test(tc, skips_port_of_instance_address);
    tcase_add_test(tc, skips_port_bound_not_listening);
    tcase_add_test(tc, whole_slice_taken);
    tcase_add_test(tc, lock_is_close_on_exec);
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

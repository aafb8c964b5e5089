/* Runs with everything the HTML and JSON reports draw: process lanes, paired fault events with
 * counters, instants, a fault left on, passed and failed assertions, a load series and span
 * summaries (synthetic: issue 8's generator and collector will fill these), hostile log
 * bytes; and a 30-minute soak, to check the HTML stays small. Built only with timeline.h's
 * API and plain field writes, as the harness does. */
#ifndef FL_TEST_REPORTS_RICH_H
#define FL_TEST_REPORTS_RICH_H

#include "fixture.h"

#define RX_FILE "scenarios/shop/retries.lua"
#define RX_FAIL "retries hide a crashed replica"
#define RX_TRACE_ERR "0af7651916cd43dd8448eb211c80319c"
#define RX_TRACE_RETRY "4bf92f3577b34da6a3ce929d0e0e4736"
#define RX_TRACE_OK "00000000000000000000000000000001"
#define RX_TRACE_SIBLINGS "00000000000000000000000000000002"
#define RX_SCRIPT "<script>alert(1)</script>"
#define RX_BIDI "bidi[\xe2\x80\xae]"

static inline fl_event_t *rx_at(fl_scenario_result_t *r, double at, fl_event_kind_t kind, int ok,
                                const char *subject, const char *where, const char *text)
{
    fx_event(r, at, kind, ok, subject, where, text);
    return &r->events[r->nevents - 1];
}

static inline void rx_proc(fl_scenario_result_t *r, double at, const char *inst, fl_proc_state_t st,
                           const char *text)
{
    rx_at(r, at, FL_EV_PROCESS, 1, inst, "", text)->state = st;
}

static inline fl_event_t *rx_fault(fl_scenario_result_t *r, double at, const char *subject,
                                   fl_fault_phase_t phase, uint64_t id, const char *text)
{
    fl_event_t *ev = rx_at(r, at, FL_EV_FAULT, 1, subject, RX_FILE ":9", text);
    ev->phase = phase;
    ev->fault_id = id;
    return ev;
}

static inline void rx_span(fl_scenario_result_t *r, const char *trace, const char *id,
                           const char *parent, const char *service, const char *name,
                           fl_span_kind_t kind, double start, double dur, fl_span_status_t st,
                           unsigned attempt, const char *akey, const char *aval)
{
    fl_span_t s;
    memset(&s, 0, sizeof s);
    snprintf(s.trace_id, sizeof s.trace_id, "%s", trace);
    snprintf(s.span_id, sizeof s.span_id, "%s", id);
    snprintf(s.parent_id, sizeof s.parent_id, "%s", parent);
    s.service = (char *)service;
    s.instance = (char *)"";
    s.name = (char *)name;
    s.kind = kind;
    s.start_ns = (uint64_t)(start * 1e9);
    s.duration_ns = (uint64_t)(dur * 1e9);
    s.status = st;
    s.status_message = (char *)(st == FL_STATUS_ERROR ? "UNAVAILABLE: <down> \x1b[1m" : "");
    s.attempt = attempt;
    fl_attr_t a = {(char *)akey, (char *)aval};
    if (akey) {
        s.attrs = &a;
        s.nattrs = 1;
    }
    ck_assert_int_eq(fl_timeline_span(r, &s), 0);
}

static inline void rx_sample(fl_series_t *s, double at, unsigned sent, unsigned errors, double p50)
{
    fl_sample_t x = {
        (uint64_t)(at * 1e9), sent, sent - errors, errors, p50, p50 * 2, p50 * 4, p50 * 8};
    ck_assert_int_eq(fl_series_push(s, &x), 0);
}

/* A failing scenario (first in the report though second in the run), a passing one and a
 * skipped one. The failing one: users-1 paused 2.5-3.0s, users-2 crashed at 2.0s; faults
 * 1 latency (1.0-4.0s, fired), 2 crash (instant), 3 pause, 4 consul down (left on), 5
 * partition (4.6-6.0s, never fired); the failed assertion at 5.0s. */
static inline void rx_build(fl_run_result_t *run)
{
    memset(run, 0, sizeof *run);
    run->seed = 42;
    run->version = "9.8.7";
    run->start_unix_ms = 1714566896000ull;
    run->seconds = 12.5;

    fl_scenario_result_t *r = fx_scenario(run, RX_FILE, "a quiet one", FL_VERDICT_PASS, 1.0);
    rx_proc(r, 0.1, "users-1", FL_PS_STARTING, "started (pid 7)");
    rx_proc(r, 0.2, "users-1", FL_PS_UP, "ready after 100ms");
    rx_at(r, 0.5, FL_EV_ASSERT, 1, "", RX_FILE ":30", "all fine");

    r = fx_scenario(run, RX_FILE, RX_FAIL, FL_VERDICT_FAIL, 7.0);
    r->message = fx_strdup("error rate below 1%: 0.2 & <rising>");
    r->where = fx_strdup(RX_FILE ":21");
    r->topology = fx_strdup("gateway (needs users), users x2; consul: fake; amqp: fake");
    rx_at(r, 0.0, FL_EV_NOTE, 1, "", RX_FILE ":12", "setup: 3 instances");
    rx_proc(r, 0.1, "users-1", FL_PS_STARTING, "started (pid 10)");
    rx_proc(r, 0.1, "users-2", FL_PS_STARTING, "started (pid 11)");
    rx_proc(r, 0.3, "users-1", FL_PS_UP, "ready after 200ms");
    rx_proc(r, 0.35, "users-2", FL_PS_UP, "ready after 250ms");
    rx_proc(r, 0.4, "gateway-1", FL_PS_STARTING, "started (pid 12)");
    rx_proc(r, 0.6, "gateway-1", FL_PS_UP, "ready after 200ms");
    rx_at(r, 0.6, FL_EV_NOTE, 1, "", "", "scenario started");
    rx_fault(r, 1.0, "gateway-1->users-1", FL_FAULT_ON, 1, "latency{ms=100}");
    rx_fault(r, 2.0, "users-2", FL_FAULT_ONCE, 2, "crash");
    rx_proc(r, 2.01, "users-2", FL_PS_DOWN, "killed by SIGKILL");
    rx_fault(r, 2.5, "users-1", FL_FAULT_ON, 3, "pause");
    rx_proc(r, 2.5, "users-1", FL_PS_PAUSED, "paused (SIGSTOP)");
    rx_fault(r, 3.0, "users-1", FL_FAULT_OFF, 3, "resume");
    rx_proc(r, 3.0, "users-1", FL_PS_UP, "resumed (SIGCONT)");
    rx_at(r, 3.5, FL_EV_ASSERT, 1, "", RX_FILE ":18", "eventually users healthy");
    fl_event_t *off = rx_fault(r, 4.0, "gateway-1->users-1", FL_FAULT_OFF, 1,
                               "removed latency{ms=100}: applied to 3 connections, chunks 10");
    off->counts = (fl_fault_counts_t){1, 3, 10, 1000, 0, 0, 0, 0};
    rx_fault(r, 4.5, "consul", FL_FAULT_ON, 4, "down");
    rx_fault(r, 4.6, "gateway-1 <-/-> users", FL_FAULT_ON, 5, "partition");
    rx_at(r, 5.0, FL_EV_ASSERT, 0, "", RX_FILE ":21", "error rate below 1%: 0.2 & <rising>");
    off = rx_fault(r, 6.0, "gateway-1 <-/-> users", FL_FAULT_OFF, 5, "healed partition");
    off->counts = (fl_fault_counts_t){1, 0, 0, 0, 0, 0, 0, 0};
    rx_at(r, 6.5, FL_EV_NOTE, 1, "", "", "scenario ended: fail; teardown");

    fl_series_t *s = fl_timeline_series(r, "gateway");
    ck_assert_ptr_nonnull(s);
    for (int i = 0; i < 7; i++)
        rx_sample(s, i, 100, i == 2 ? 20 : 0, i == 1 || i == 2 ? 110 : 5);

    rx_span(r, RX_TRACE_ERR, "a000000000000001", "", "gateway", "POST /orders", FL_SPAN_SERVER, 2.0,
            0.3, FL_STATUS_ERROR, 0, NULL, NULL);
    rx_span(r, RX_TRACE_ERR, "a000000000000002", "a000000000000001", "gateway", "users.Get",
            FL_SPAN_CLIENT, 2.01, 0.1, FL_STATUS_ERROR, 1, "rpc.grpc.status_code", "14");
    rx_span(r, RX_TRACE_ERR, "a000000000000003", "a000000000000001", "gateway", "users.Get",
            FL_SPAN_CLIENT, 2.15, 0.1, FL_STATUS_ERROR, 2, "retry.count", "1");
    rx_span(r, RX_TRACE_ERR, "a000000000000004", "a000000000000003", "users", "users.Get",
            FL_SPAN_SERVER, 2.16, 0.05, FL_STATUS_OK, 0, NULL, NULL);
    rx_span(r, RX_TRACE_RETRY, "b000000000000001", "", "gateway", "POST /users", FL_SPAN_SERVER,
            1.0, 0.2, FL_STATUS_OK, 0, NULL, NULL);
    rx_span(r, RX_TRACE_RETRY, "b000000000000002", "b000000000000001", "gateway", "users.Create",
            FL_SPAN_CLIENT, 1.05, 0.1, FL_STATUS_OK, 2, NULL, NULL);
    rx_span(r, RX_TRACE_OK, "c000000000000001", "", "gateway", "GET /healthz", FL_SPAN_SERVER, 0.7,
            0.01, FL_STATUS_OK, 0, "http.status_code", "200");
    rx_span(r, RX_TRACE_OK, "c000000000000002", "c000000000000001", "gateway", "users.Get",
            FL_SPAN_CLIENT, 0.701, 0.005, FL_STATUS_OK, 0, "retry.count", "0");
    /* retried, as the shop's runtime shows it: two CLIENT spans of one call, no attempt; the
     * first attempt failed, the request did not */
    rx_span(r, RX_TRACE_SIBLINGS, "d000000000000001", "", "gateway", "GET /users/1", FL_SPAN_SERVER,
            3.0, 0.2, FL_STATUS_OK, 0, NULL, NULL);
    rx_span(r, RX_TRACE_SIBLINGS, "d000000000000002", "d000000000000001", "gateway", "users.Get",
            FL_SPAN_CLIENT, 3.01, 0.05, FL_STATUS_ERROR, 0, NULL, NULL);
    rx_span(r, RX_TRACE_SIBLINGS, "d000000000000003", "d000000000000001", "gateway", "users.Get",
            FL_SPAN_CLIENT, 3.07, 0.05, FL_STATUS_OK, 0, NULL, NULL);

    fx_log(r, "users-1", FX_NASTY_LOG "\n" RX_SCRIPT " " RX_BIDI "\n", 0);
    char lines[2048] = "";
    for (int i = 1; i <= 100; i++)
        snprintf(lines + strlen(lines), sizeof lines - strlen(lines), "gw %03d\n", i);
    fx_log(r, "gateway-1", lines, 0);
    r->logs[r->nlogs - 1].marked = 1; /* the failure came after line 50 */
    r->logs[r->nlogs - 1].failure_at = 50 * 7;

    r = fx_scenario(run, FX_PART, "skipped one", FL_VERDICT_SKIP, 0);
    r->message = fx_strdup("not today");
}

/* One scenario of a 30-minute soak: every minute a fault on and off, a crash and a restart,
 * assertions every second, 2 load series of 1800 samples, 3000 spans in 600 traces (every
 * third failed), 6 instance logs of 64 KiB. */
static inline void rx_build_soak(fl_run_result_t *run)
{
    memset(run, 0, sizeof *run);
    run->seed = 7;
    run->version = "9.8.7";
    run->seconds = 1800;
    fl_scenario_result_t *r = fx_scenario(run, RX_FILE, "soak", FL_VERDICT_FAIL, 1800);
    r->message = fx_strdup("lost an order");
    char name[32], text[96];
    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof name, "users-%d", i + 1);
        rx_proc(r, 0.1, name, FL_PS_STARTING, "started");
        rx_proc(r, 0.5, name, FL_PS_UP, "ready");
    }
    uint64_t id = 0;
    for (int sec = 1; sec < 1800; sec++) {
        if (sec % 60 == 10) {
            snprintf(name, sizeof name, "users-%d", sec / 60 % 6 + 1);
            rx_fault(r, sec, name, FL_FAULT_ON, ++id, "latency{ms=200}");
            rx_fault(r, sec + 20, name, FL_FAULT_OFF, id, "removed latency{ms=200}")->counts =
                (fl_fault_counts_t){1, 50, 400, 40000, 0, 0, 0, 0};
            rx_fault(r, sec + 30, name, FL_FAULT_ONCE, ++id, "crash");
            rx_proc(r, sec + 30, name, FL_PS_DOWN, "killed");
            rx_proc(r, sec + 31, name, FL_PS_UP, "ready");
        }
        for (int k = 0; k < 10; k++) {
            snprintf(text, sizeof text, "order %d.%d is paid", sec, k);
            rx_at(r, sec + k / 10.0, FL_EV_ASSERT, !(sec == 1700 && k == 0), "", RX_FILE ":40",
                  text);
        }
    }
    for (int n = 0; n < 2; n++) {
        fl_series_t *s = fl_timeline_series(r, n ? "orders" : "gateway");
        for (int sec = 0; sec < 1800; sec++)
            rx_sample(s, sec, 200, sec % 60 == 40 ? 30 : 0, 4 + sec % 7);
    }
    for (int t = 0; t < 600; t++) {
        char trace[33], parent[17], span[17];
        snprintf(trace, sizeof trace, "%032x", t + 1);
        snprintf(parent, sizeof parent, "%016x", t * 8 + 1);
        rx_span(r, trace, parent, "", "gateway", "POST /orders", FL_SPAN_SERVER, t * 3.0, 0.2,
                t % 3 ? FL_STATUS_OK : FL_STATUS_ERROR, 0, NULL, NULL);
        for (int k = 1; k < 5; k++) {
            snprintf(span, sizeof span, "%016x", t * 8 + 1 + k);
            rx_span(r, trace, span, parent, "orders", "orders.Create", FL_SPAN_CLIENT,
                    t * 3.0 + k * 0.01, 0.05, FL_STATUS_OK, (unsigned)k, NULL, NULL);
        }
    }
    char *log = malloc(65536 + 1);
    ck_assert_ptr_nonnull(log);
    for (size_t i = 0; i < 65536; i++)
        log[i] = i % 64 == 63 ? '\n' : (char)('a' + i % 26);
    log[65536] = '\0';
    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof name, "users-%d", i + 1);
        fx_log(r, name, log, 1);
    }
    free(log);
}

#endif

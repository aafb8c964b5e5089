/* Blocking queries, as Consul runs them: ?index=N&wait=D on a read holds the answer until the
 * index that read would answer with moves past N, or until the wait is over (D is a Go
 * duration; missing or not positive means 5 minutes, at most 10 minutes, and Consul adds a
 * random wait/16 of jitter, here from the seeded generator). index=0 never blocks; an index
 * ahead of the catalog waits, as in Consul. A parked query is a req_t on the waiters list,
 * with its deadline as its timer. Every write kicks a re-evaluation of all of them on the next
 * loop iteration (one pass for a burst of writes); each compares only an index, and only
 * those that move are rendered. While frozen, nothing parked is answered, not even at its
 * deadline; the thaw answers those whose wait ran out. With stale answers the view moves on
 * by itself as time passes, so a timer kicks a pass when it next does. A query served without
 * a socket (fl_consul_serve) never parks: it is answered at once, as at its deadline. */
#include <stdlib.h>
#include <string.h>

#include "fakes/consul/internal.h"
#include "lib/err.h"

#define DEFAULT_WAIT_NS (5 * 60 * 1000000000ull)
#define MAX_WAIT_NS (10 * 60 * 1000000000ull)
#define JITTER_FRACTION 16

/* Parses ?wait and ?index; answers 400 as Consul does and returns -1 when they are bad. */
static int parse_wait(ctx_t *x, uint64_t *min_index, uint64_t *wait_ns)
{
    char buf[128];
    *min_index = 0;
    *wait_ns = 0;
    if (q_get(x, "wait", buf, sizeof buf) == 0 && *buf) {
        long long ns;
        if (go_parse_duration(buf, &ns, NULL) < 0) {
            reply_text(x, 400, "Invalid wait time");
            return -1;
        }
        *wait_ns = ns > 0 ? (uint64_t)ns : 0;
    }
    if (q_get(x, "index", buf, sizeof buf) == 0 && *buf) {
        unsigned long long idx;
        if (go_parse_uint(buf, &idx, NULL) < 0) {
            reply_text(x, 400, "Invalid index");
            return -1;
        }
        *min_index = idx;
    }
    return 0;
}

static uint64_t wait_with_jitter(fl_consul_t *c, uint64_t wait)
{
    if (wait == 0)
        wait = DEFAULT_WAIT_NS;
    if (wait > MAX_WAIT_NS)
        wait = MAX_WAIT_NS;
    if (wait / JITTER_FRACTION)
        wait += fl_rng_below(&c->rng, wait / JITTER_FRACTION);
    return wait;
}

static void answer(ctx_t *x)
{
    x->route->handle(x);
    ctx_send(x);
}

static void on_deadline(uv_timer_t *t);

static void park(ctx_t *x, uint64_t min_index, uint64_t wait)
{
    fl_consul_t *c = x->c;
    req_t *r = req_new(c, x->a, x->ex, REQ_WAIT);
    if (!r) {
        answer(x); /* cannot wait: answer now, which Consul allows (a spurious wake-up) */
        return;
    }
    r->route = x->route;
    r->min_index = min_index;
    req_link(&c->waiters, r);
    uint64_t ms = (wait_with_jitter(c, wait) + 999999) / 1000000;
    uv_timer_start(&r->timer, on_deadline, ms, 0);
}

void blocking_run(ctx_t *x)
{
    uint64_t min_index, wait, idx;
    if (parse_wait(x, &min_index, &wait) < 0 || check_dc(x) < 0 || x->route->index(x, &idx) < 0) {
        ctx_send(x);
        return;
    }
    if (min_index == 0 || idx > min_index || !x->ex) /* synchronous: answers as at the deadline */
        answer(x);
    else
        park(x, min_index, wait);
}

/* Looks at one parked query again; answers it when its index moved or its wait is over. */
static void evaluate(fl_consul_t *c, req_t *r, int force)
{
    ctx_t x;
    uint64_t idx = 0;
    if (!r->ex || ctx_init(&x, c, r->a, r->ex) < 0) {
        if (r->ex)
            ctx_free(&x);
        return;
    }
    x.route = r->route;
    x.st = cat_view(c);
    size_t plen = strlen(x.route->path);
    memmove(x.arg, x.arg + plen, strlen(x.arg + plen) + 1);
    if (x.route->index(&x, &idx) < 0)
        ctx_send(&x);
    else if (force || idx > r->min_index)
        answer(&x);
    ctx_free(&x);
}

static void on_deadline(uv_timer_t *t)
{
    req_t *r = t->data;
    fl_consul_t *c = r->c;
    if (c->frozen) {
        r->expired = 1;
        return;
    }
    evaluate(c, r, 1);
}

static void wake_pass(fl_consul_t *c)
{
    req_t *next;
    for (req_t *r = c->waiters; r; r = next) {
        next = r->next;
        evaluate(c, r, r->expired);
    }
    blocking_update_stale_timer(c);
}

static void on_wake(uv_timer_t *t)
{
    fl_consul_t *c = t->data;
    c->wake_pending = 0;
    if (!c->frozen)
        wake_pass(c);
}

void blocking_kick(fl_consul_t *c)
{
    if (c->closing || c->wake_pending)
        return;
    c->wake_pending = 1;
    uv_timer_start(&c->wake, on_wake, 0, 0);
}

void blocking_thaw(fl_consul_t *c)
{
    wake_pass(c);
}

static void on_stale_move(uv_timer_t *t)
{
    blocking_kick(t->data);
}

void blocking_update_stale_timer(fl_consul_t *c)
{
    if (c->closing)
        return;
    uint64_t next = cat_view_next_change(c);
    if (!next) {
        uv_timer_stop(&c->stale_timer);
        return;
    }
    uint64_t now = uv_hrtime();
    uint64_t ms = next > now ? (next - now + 999999) / 1000000 : 0;
    uv_timer_start(&c->stale_timer, on_stale_move, ms + 1, 0);
}

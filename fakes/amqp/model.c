/* The broker's model: vhosts hold exchanges and queues by name; exchanges hold bindings to
 * queues and other exchanges; routing walks them (direct, fanout, topic with * and #,
 * headers with x-match) and gives each queue a message at most once. Queues keep their ready
 * messages in order, expire them (x-message-ttl, the expiration property), bound their length
 * (x-max-length, x-max-length-bytes; drop-head or reject-publish), expire themselves
 * (x-expires) and dead-letter (x-dead-letter-exchange/routing-key, with RabbitMQ's x-death
 * header). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fakes/amqp/internal.h"
#include "lib/err.h"

#define TOMB ((const char *)1)

/* ---- names → objects ---- */

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s)
        h = (h ^ (uint8_t)*s++) * 1099511628211ull;
    return h;
}

void *map_get(const map_t *m, const char *key)
{
    if (!m->cap)
        return NULL;
    for (size_t i = hash(key) & (m->cap - 1), n = 0; n < m->cap; i = (i + 1) & (m->cap - 1), n++) {
        const char *k = m->slots[i].key;
        if (!k)
            return NULL;
        if (k != TOMB && strcmp(k, key) == 0)
            return m->slots[i].val;
    }
    return NULL;
}

static int map_grow(map_t *m)
{
    size_t cap = m->cap ? m->cap * 2 : 16;
    while (m->live * 2 >= cap)
        cap *= 2;
    struct map_slot *s = calloc(cap, sizeof *s);
    if (!s)
        return FL_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        const char *k = m->slots[i].key;
        if (!k || k == TOMB)
            continue;
        size_t j = hash(k) & (cap - 1);
        while (s[j].key)
            j = (j + 1) & (cap - 1);
        s[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = s;
    m->cap = cap;
    m->used = m->live;
    return 0;
}

int map_put(map_t *m, const char *key, void *val)
{
    if ((m->used + 1) * 4 >= m->cap * 3 && map_grow(m))
        return FL_ENOMEM;
    size_t i = hash(key) & (m->cap - 1);
    while (m->slots[i].key && m->slots[i].key != TOMB)
        i = (i + 1) & (m->cap - 1);
    if (!m->slots[i].key)
        m->used++;
    m->slots[i].key = key;
    m->slots[i].val = val;
    m->live++;
    return 0;
}

void map_del(map_t *m, const char *key)
{
    if (!m->cap)
        return;
    for (size_t i = hash(key) & (m->cap - 1), n = 0; n < m->cap; i = (i + 1) & (m->cap - 1), n++) {
        const char *k = m->slots[i].key;
        if (!k)
            return;
        if (k != TOMB && strcmp(k, key) == 0) {
            m->slots[i].key = TOMB;
            m->slots[i].val = NULL;
            m->live--;
            return;
        }
    }
}

void *map_next(const map_t *m, size_t *i)
{
    while (*i < m->cap) {
        struct map_slot *s = &m->slots[(*i)++];
        if (s->key && s->key != TOMB)
            return s->val;
    }
    return NULL;
}

void map_free(map_t *m)
{
    free(m->slots);
    memset(m, 0, sizeof *m);
}

char *amqp_strdup(const char *s)
{
    return amqp_strndup(s, strlen(s));
}

char *amqp_strndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

/* ---- messages ---- */

/* The expiration property: milliseconds as decimal text; UINT64_MAX when absent or not a
 * number (publish refuses those before a message is made). */
uint64_t expiration_ms(const fl_amqp_arg_t *e)
{
    uint64_t v = 0;
    if (e->len == 0 || e->len > 18)
        return UINT64_MAX;
    for (uint32_t i = 0; i < e->len; i++) {
        if (e->p[i] < '0' || e->p[i] > '9')
            return UINT64_MAX;
        v = v * 10 + (uint64_t)(e->p[i] - '0');
    }
    return v;
}

msg_t *msg_new(const char *exchange, size_t ex_len, const char *rkey, size_t rk_len,
               const uint8_t *props, size_t props_len, size_t body_len)
{
    return msg_new_room(exchange, ex_len, rkey, rk_len, props, props_len, body_len, body_len);
}

msg_t *msg_grow(msg_t *m, size_t room)
{
    return realloc(m, sizeof *m + m->ex_len + m->rk_len + 2 + m->props_len + room);
}

msg_t *msg_new_room(const char *exchange, size_t ex_len, const char *rkey, size_t rk_len,
                    const uint8_t *props, size_t props_len, size_t body_len, size_t room)
{
    if (ex_len > 255 || rk_len > 255 || room > body_len)
        return NULL;
    msg_t *m = malloc(sizeof *m + ex_len + rk_len + 2 + props_len + room);
    if (!m)
        return NULL;
    m->refs = 1;
    m->persistent = 0;
    m->id = 0;
    m->ttl_ms = UINT64_MAX;
    m->ex_len = (uint8_t)ex_len;
    m->rk_len = (uint8_t)rk_len;
    m->props_len = (uint32_t)props_len;
    m->body_len = (uint32_t)body_len;
    memcpy(m->data, exchange, ex_len);
    m->data[ex_len] = 0;
    memcpy(m->data + ex_len + 1, rkey, rk_len);
    m->data[ex_len + 1 + rk_len] = 0;
    memcpy(m->data + ex_len + rk_len + 2, props, props_len);
    /* what the properties say about delivery mode and expiry; the caller validated them */
    fl_amqp_props_t pr;
    if (fl_amqp_props_decode(props, props_len, &pr) == 0) {
        if (FL_AMQP_HAS(&pr, FL_AMQP_P_DELIVERY_MODE))
            m->persistent = pr.v[FL_AMQP_P_DELIVERY_MODE].u == 2;
        if (FL_AMQP_HAS(&pr, FL_AMQP_P_EXPIRATION))
            m->ttl_ms = expiration_ms(&pr.v[FL_AMQP_P_EXPIRATION]);
    }
    return m;
}

void msg_unref(msg_t *m)
{
    if (m && --m->refs == 0)
        free(m);
}

/* ---- vhosts ---- */

static const struct {
    const char *name;
    int type;
} builtin_exchanges[] = {
    {"", EX_DIRECT},
    {"amq.direct", EX_DIRECT},
    {"amq.fanout", EX_FANOUT},
    {"amq.topic", EX_TOPIC},
    {"amq.headers", EX_HEADERS},
    {"amq.match", EX_HEADERS},
    {"amq.rabbitmq.trace", EX_TOPIC},
};

vhost_t *vhost_find(broker_t *b, const char *name)
{
    for (size_t i = 0; i < b->nvhosts; i++)
        if (strcmp(b->vhosts[i]->name, name) == 0)
            return b->vhosts[i];
    return NULL;
}

vhost_t *vhost_add(broker_t *b, const char *name)
{
    vhost_t **v = realloc(b->vhosts, (b->nvhosts + 1) * sizeof *v);
    if (!v)
        return NULL;
    b->vhosts = v;
    vhost_t *vh = calloc(1, sizeof *vh);
    if (!vh || !(vh->name = amqp_strdup(name))) {
        free(vh);
        return NULL;
    }
    vh->b = b;
    for (size_t i = 0; i < sizeof builtin_exchanges / sizeof builtin_exchanges[0]; i++) {
        exchange_t *x =
            exchange_add(vh, builtin_exchanges[i].name, builtin_exchanges[i].type, 1, 0,
                         strcmp(builtin_exchanges[i].name, "amq.rabbitmq.trace") == 0, NULL, 0);
        if (!x) {
            vhost_free(vh);
            return NULL;
        }
    }
    b->vhosts[b->nvhosts++] = vh;
    return vh;
}

static void exchange_free(exchange_t *x)
{
    for (size_t i = 0; i < x->nbinds; i++) {
        free(x->binds[i].rkey);
        free(x->binds[i].args);
    }
    free(x->binds);
    free(x->args);
    free(x->name);
    free(x);
}

static void queue_free_now(queue_t *q);

void vhost_free(vhost_t *vh)
{
    size_t i = 0;
    exchange_t *x;
    queue_t *q;
    while ((x = map_next(&vh->exchanges, &i)))
        exchange_free(x);
    i = 0;
    while ((q = map_next(&vh->queues, &i)))
        queue_free_now(q);
    map_free(&vh->exchanges);
    map_free(&vh->queues);
    free(vh->name);
    free(vh);
}

/* ---- exchanges ---- */

int exchange_type_parse(const char *s)
{
    static const char *names[] = {"direct", "fanout", "topic", "headers"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

const char *exchange_type_name(int type)
{
    static const char *names[] = {"direct", "fanout", "topic", "headers"};
    return names[type];
}

static uint8_t *dup_bytes(const uint8_t *p, uint32_t len)
{
    uint8_t *d = malloc(len ? len : 1);
    if (d && len)
        memcpy(d, p, len);
    return d;
}

exchange_t *exchange_add(vhost_t *vh, const char *name, int type, int durable, int auto_delete,
                         int internal, const uint8_t *args, uint32_t args_len)
{
    exchange_t *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    x->vh = vh;
    x->type = type;
    x->durable = (uint8_t)durable;
    x->auto_delete = (uint8_t)auto_delete;
    x->internal = (uint8_t)internal;
    x->name = amqp_strdup(name);
    x->args = dup_bytes(args, args_len);
    x->args_len = args_len;
    if (!x->name || !x->args || map_put(&vh->exchanges, x->name, x)) {
        free(x->name);
        free(x->args);
        free(x);
        return NULL;
    }
    journal_exchange(vh->b, x, 1);
    return x;
}

static void exchange_maybe_auto_delete(exchange_t *x)
{
    if (x->auto_delete && !x->deleted && x->nbinds == 0)
        exchange_delete(x);
}

void exchange_delete(exchange_t *x)
{
    vhost_t *vh = x->vh;
    x->deleted = 1;
    map_del(&vh->exchanges, x->name);
    journal_exchange(vh->b, x, 0);
    /* bindings from it */
    for (size_t i = 0; i < x->nbinds; i++) {
        binding_t *bd = &x->binds[i];
        if (!bd->to_queue)
            ((exchange_t *)bd->dest)->bound_from--;
    }
    /* bindings to it, from other exchanges (its own go with it in exchange_free) */
    bindings_drop_dest(vh, 0, x);
    exchange_free(x);
}

static int binding_same(const binding_t *bd, int to_queue, void *dest, const char *rkey,
                        const uint8_t *args, uint32_t args_len)
{
    return bd->to_queue == to_queue && bd->dest == dest && strcmp(bd->rkey, rkey) == 0 &&
           bd->args_len == args_len && (args_len == 0 || memcmp(bd->args, args, args_len) == 0);
}

int binding_add(exchange_t *src, int to_queue, void *dest, const char *rkey, const uint8_t *args,
                uint32_t args_len)
{
    for (size_t i = 0; i < src->nbinds; i++)
        if (binding_same(&src->binds[i], to_queue, dest, rkey, args, args_len))
            return 0;
    if (src->nbinds == src->capbinds) {
        size_t cap = src->capbinds ? src->capbinds * 2 : 4;
        binding_t *v = realloc(src->binds, cap * sizeof *v);
        if (!v)
            return FL_ENOMEM;
        src->binds = v;
        src->capbinds = cap;
    }
    binding_t *bd = &src->binds[src->nbinds];
    bd->to_queue = to_queue;
    bd->dest = dest;
    bd->rkey = amqp_strdup(rkey);
    bd->args = dup_bytes(args, args_len);
    bd->args_len = args_len;
    if (!bd->rkey || !bd->args) {
        free(bd->rkey);
        free(bd->args);
        return FL_ENOMEM;
    }
    src->nbinds++;
    if (!to_queue)
        ((exchange_t *)dest)->bound_from++;
    journal_binding(src->vh->b, src, bd, 1);
    return 0;
}

static void binding_cut(exchange_t *src, size_t i)
{
    binding_t *bd = &src->binds[i];
    journal_binding(src->vh->b, src, bd, 0);
    if (!bd->to_queue)
        ((exchange_t *)bd->dest)->bound_from--;
    free(bd->rkey);
    free(bd->args);
    memmove(bd, bd + 1, (src->nbinds - i - 1) * sizeof *bd);
    src->nbinds--;
}

int binding_remove(exchange_t *src, int to_queue, void *dest, const char *rkey, const uint8_t *args,
                   uint32_t args_len)
{
    for (size_t i = 0; i < src->nbinds; i++) {
        if (binding_same(&src->binds[i], to_queue, dest, rkey, args, args_len)) {
            binding_cut(src, i);
            exchange_maybe_auto_delete(src);
            return 1;
        }
    }
    return 0;
}

void bindings_drop_dest(vhost_t *vh, int to_queue, void *dest)
{
    size_t it = 0;
    exchange_t *x;
    exchange_t *emptied[64];
    size_t nemptied = 0;
    while ((x = map_next(&vh->exchanges, &it))) {
        size_t before = x->nbinds;
        for (size_t i = x->nbinds; i-- > 0;)
            if (x->binds[i].to_queue == to_queue && x->binds[i].dest == dest)
                binding_cut(x, i);
        if (before && !x->nbinds && x->auto_delete && nemptied < 64)
            emptied[nemptied++] = x;
    }
    /* deleting changes the map: after the walk */
    for (size_t i = 0; i < nemptied; i++)
        exchange_maybe_auto_delete(emptied[i]);
}

/* ---- routing ---- */

/* Topic patterns: words separated by '.', '*' matches one word, '#' zero or more. */
int topic_match(const char *pat, const char *key)
{
    if (!*pat)
        return !*key;
    const char *pe = strchr(pat, '.');
    size_t pl = pe ? (size_t)(pe - pat) : strlen(pat);
    if (pl == 1 && pat[0] == '#') {
        const char *rest = pe ? pe + 1 : "";
        /* # takes zero words, or one word and tries again */
        if (topic_match(rest, key))
            return 1;
        if (!*key)
            return 0;
        const char *ke = strchr(key, '.');
        return ke ? topic_match(pat, ke + 1) : topic_match(pat, "");
    }
    const char *ke = strchr(key, '.');
    size_t kl = ke ? (size_t)(ke - key) : strlen(key);
    if (!*key && !ke)
        return 0;
    if (!(pl == 1 && pat[0] == '*') && (pl != kl || memcmp(pat, key, pl) != 0))
        return 0;
    if (!pe && !ke)
        return 1;
    if (!pe || !ke) {
        /* one side has more words: only a trailing "#" can still match nothing */
        return pe && !ke && strcmp(pe + 1, "#") == 0;
    }
    return topic_match(pe + 1, ke + 1);
}

/* Headers exchange: binding arguments against the message's headers. */
static int headers_match(const binding_t *bd, const uint8_t *hdr, uint32_t hdr_len)
{
    int any = 0;
    fl_amqp_value_t xm;
    if (fl_amqp_table_get(bd->args, bd->args_len, "x-match", &xm) && xm.type == 'S' &&
        ((xm.len == 3 && memcmp(xm.p, "any", 3) == 0) ||
         (xm.len == 10 && memcmp(xm.p, "any-with-x", 10) == 0)))
        any = 1;
    int with_x = xm.type == 'S' && xm.len >= 10 && memcmp(xm.p + xm.len - 7, "-with-x", 7) == 0;
    size_t off = 0;
    const uint8_t *name;
    uint8_t nlen;
    fl_amqp_value_t want, got;
    int considered = 0;
    while (fl_amqp_table_next(bd->args, bd->args_len, &off, &name, &nlen, &want) == 1) {
        if (!with_x && nlen >= 2 && name[0] == 'x' && name[1] == '-')
            continue;
        if (nlen == 7 && memcmp(name, "x-match", 7) == 0)
            continue;
        considered++;
        char key[256];
        memcpy(key, name, nlen);
        key[nlen] = 0;
        int has = hdr && fl_amqp_table_get(hdr, hdr_len, key, &got);
        int ok = has && (want.type == 'V' || fl_amqp_value_equal(&want, &got));
        if (any && ok)
            return 1;
        if (!any && !ok)
            return 0;
    }
    return any ? 0 : 1;
    (void)considered;
}

static int binding_matches(const exchange_t *x, const binding_t *bd, const char *rkey,
                           const uint8_t *hdr, uint32_t hdr_len)
{
    switch (x->type) {
    case EX_FANOUT:
        return 1;
    case EX_TOPIC:
        return topic_match(bd->rkey, rkey);
    case EX_HEADERS:
        return headers_match(bd, hdr, hdr_len);
    default:
        return strcmp(bd->rkey, rkey) == 0;
    }
}

static size_t route_walk(exchange_t *x, const char *rkey, const uint8_t *hdr, uint32_t hdr_len,
                         uint32_t pass, queue_t **out, size_t n, size_t max)
{
    if (x->mark == pass)
        return n;
    x->mark = pass;
    if (x->name[0] == 0) {
        /* the default exchange: every queue, by name */
        queue_t *q = map_get(&x->vh->queues, rkey);
        if (q && !q->deleted && q->mark != pass && n < max) {
            q->mark = pass;
            out[n++] = q;
        }
        return n;
    }
    for (size_t i = 0; i < x->nbinds; i++) {
        binding_t *bd = &x->binds[i];
        if (!binding_matches(x, bd, rkey, hdr, hdr_len))
            continue;
        if (bd->to_queue) {
            queue_t *q = bd->dest;
            if (!q->deleted && q->mark != pass && n < max) {
                q->mark = pass;
                out[n++] = q;
            }
        } else {
            n = route_walk(bd->dest, rkey, hdr, hdr_len, pass, out, n, max);
        }
    }
    return n;
}

static int msg_headers(const msg_t *m, const uint8_t **hdr, uint32_t *len)
{
    fl_amqp_props_t pr;
    if (fl_amqp_props_decode(msg_props(m), m->props_len, &pr) ||
        !FL_AMQP_HAS(&pr, FL_AMQP_P_HEADERS))
        return 0;
    *hdr = pr.v[FL_AMQP_P_HEADERS].p;
    *len = pr.v[FL_AMQP_P_HEADERS].len;
    return 1;
}

size_t route(exchange_t *x, msg_t *m, queue_t **out, size_t max)
{
    return route_key(x, m, msg_rkey(m), out, max);
}

size_t route_key(exchange_t *x, msg_t *m, const char *rkey, queue_t **out, size_t max)
{
    const uint8_t *hdr = NULL;
    uint32_t hdr_len = 0;
    if (x->type == EX_HEADERS || x->nbinds)
        msg_headers(m, &hdr, &hdr_len);
    uint32_t pass = ++x->vh->b->route_pass;
    if (pass == 0)
        pass = ++x->vh->b->route_pass;
    return route_walk(x, rkey, hdr, hdr_len, pass, out, 0, max);
}

/* ---- queues ---- */

static qent_t *ring_at(qring_t *r, size_t i)
{
    return &r->v[(r->head + i) & (r->cap - 1)];
}

static int ring_grow(qring_t *r)
{
    size_t cap = r->cap ? r->cap * 2 : 16;
    qent_t *v = malloc(cap * sizeof *v);
    if (!v)
        return FL_ENOMEM;
    for (size_t i = 0; i < r->len; i++)
        v[i] = *ring_at(r, i);
    free(r->v);
    r->v = v;
    r->cap = cap;
    r->head = 0;
    return 0;
}

static int ring_push(qring_t *r, const qent_t *e)
{
    if (r->len == r->cap && ring_grow(r))
        return FL_ENOMEM;
    *ring_at(r, r->len++) = *e;
    return 0;
}

/* Inserts e in seq order; requeued messages usually belong near the head. */
static int ring_insert(qring_t *r, const qent_t *e)
{
    if (r->len == r->cap && ring_grow(r))
        return FL_ENOMEM;
    size_t i = 0;
    while (i < r->len && ring_at(r, i)->seq < e->seq)
        i++;
    if (i < r->len / 2) {
        r->head = (r->head - 1) & (r->cap - 1);
        for (size_t j = 0; j < i; j++)
            *ring_at(r, j) = *ring_at(r, j + 1);
    } else {
        for (size_t j = r->len; j > i; j--)
            *ring_at(r, j) = *ring_at(r, j - 1);
    }
    *ring_at(r, i) = *e;
    r->len++;
    return 0;
}

static void ring_pop(qring_t *r, qent_t *e)
{
    *e = *ring_at(r, 0);
    r->head = (r->head + 1) & (r->cap - 1);
    r->len--;
}

static void queue_args_apply(queue_t *q)
{
    fl_amqp_value_t v;
    int64_t n;
    q->msg_ttl_ms = q->max_length = q->max_length_bytes = q->expires_ms = -1;
    if (fl_amqp_table_get(q->args, q->args_len, "x-message-ttl", &v) && fl_amqp_value_int(&v, &n))
        q->msg_ttl_ms = n;
    if (fl_amqp_table_get(q->args, q->args_len, "x-max-length", &v) && fl_amqp_value_int(&v, &n))
        q->max_length = n;
    if (fl_amqp_table_get(q->args, q->args_len, "x-max-length-bytes", &v) &&
        fl_amqp_value_int(&v, &n))
        q->max_length_bytes = n;
    if (fl_amqp_table_get(q->args, q->args_len, "x-expires", &v) && fl_amqp_value_int(&v, &n))
        q->expires_ms = n;
    if (fl_amqp_table_get(q->args, q->args_len, "x-dead-letter-exchange", &v) && v.type == 'S')
        q->dlx = amqp_strndup((const char *)v.p, v.len);
    if (fl_amqp_table_get(q->args, q->args_len, "x-dead-letter-routing-key", &v) && v.type == 'S')
        q->dlrk = amqp_strndup((const char *)v.p, v.len);
    if (fl_amqp_table_get(q->args, q->args_len, "x-overflow", &v) && v.type == 'S')
        q->overflow_reject = v.len == 14 && memcmp(v.p, "reject-publish", 14) == 0;
}

/* RabbitMQ's checks of queue arguments and its texts for the ones it refuses. */
int queue_args_check(const uint8_t *args, uint32_t len, const char *queue, const char *vhost,
                     char *text, size_t cap)
{
    static const struct {
        const char *name;
        int64_t min;
    } nums[] = {
        {"x-message-ttl", 0},
        {"x-max-length", 0},
        {"x-max-length-bytes", 0},
        {"x-expires", 1},
    };
    fl_amqp_value_t v;
    int64_t n;
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        if (!fl_amqp_table_get(args, len, nums[i].name, &v))
            continue;
        int w = snprintf(text, cap,
                         "PRECONDITION_FAILED - invalid arg '%s' for queue '%s' in vhost '%s': ",
                         nums[i].name, queue, vhost);
        if (w < 0 || (size_t)w >= cap)
            return FL_AMQP_PRECONDITION_FAILED;
        if (!fl_amqp_value_int(&v, &n)) {
            snprintf(text + w, cap - (size_t)w, "\"expected integer, got %s\"",
                     amqp_type_name(v.type));
            return FL_AMQP_PRECONDITION_FAILED;
        }
        if (n < nums[i].min) {
            snprintf(text + w, cap - (size_t)w, "{value_%s,%lld}", n < 0 ? "negative" : "zero",
                     (long long)n);
            return FL_AMQP_PRECONDITION_FAILED;
        }
    }
    if (fl_amqp_table_get(args, len, "x-dead-letter-routing-key", &v) &&
        !fl_amqp_table_get(args, len, "x-dead-letter-exchange", &v)) {
        snprintf(text, cap,
                 "PRECONDITION_FAILED - invalid arg 'x-dead-letter-routing-key' for queue '%s' in "
                 "vhost '%s': {routing_key_but_no_dlx_defined}",
                 queue, vhost);
        return FL_AMQP_PRECONDITION_FAILED;
    }
    return 0;
}

/* RabbitMQ's names of field types, as its texts say them. */
const char *amqp_type_name(char type)
{
    switch (type) {
    case 'S':
        return "longstr";
    case 'I':
        return "signedint";
    case 'i':
        return "unsignedint";
    case 'l':
        return "long";
    case 'L':
        return "unsignedlong";
    case 's':
        return "short";
    case 'u':
        return "unsignedshort";
    case 'b':
        return "byte";
    case 'B':
        return "unsignedbyte";
    case 't':
        return "bool";
    case 'f':
        return "float";
    case 'd':
        return "double";
    case 'D':
        return "decimal";
    case 'T':
        return "timestamp";
    case 'F':
        return "table";
    case 'A':
        return "array";
    case 'x':
        return "binary";
    case 'V':
        return "void";
    default:
        return "unknown";
    }
}

/* "the value '1000' of type 'signedint'" (or "none") for an argument's text. */
static void describe_arg(char *out, size_t cap, const fl_amqp_value_t *v, int present)
{
    int64_t n;
    if (!present)
        snprintf(out, cap, "none");
    else if (fl_amqp_value_int(v, &n))
        snprintf(out, cap, "the value '%lld' of type '%s'", (long long)n, amqp_type_name(v->type));
    else if (v->type == 'S' || v->type == 'x')
        snprintf(out, cap, "the value '%.*s' of type '%s'", (int)(v->len > 200 ? 200 : v->len),
                 (const char *)v->p, amqp_type_name(v->type));
    else if (v->type == 't')
        snprintf(out, cap, "the value '%s' of type 'bool'", v->i ? "true" : "false");
    else
        snprintf(out, cap, "a value of type '%s'", amqp_type_name(v->type));
}

static int same_arg(const fl_amqp_value_t *a, const fl_amqp_value_t *b)
{
    int64_t x, y;
    if (fl_amqp_value_int(a, &x) && fl_amqp_value_int(b, &y))
        return x == y; /* RabbitMQ compares numbers, whatever their integer type */
    return fl_amqp_value_equal(a, b);
}

int queue_args_differ(const queue_t *q, const uint8_t *args, uint32_t len, char *text, size_t cap)
{
    static const char *const compared[] = {
        "x-expires",
        "x-message-ttl",
        "x-max-length",
        "x-max-length-bytes",
        "x-dead-letter-exchange",
        "x-dead-letter-routing-key",
        "x-max-priority",
        "x-overflow",
        "x-queue-mode",
        "x-single-active-consumer",
        "x-queue-type",
        NULL,
    };
    for (const char *const *k = compared; *k; k++) {
        fl_amqp_value_t got = {0}, cur = {0};
        int has_got = fl_amqp_table_get(args, len, *k, &got);
        int has_cur = fl_amqp_table_get(q->args, q->args_len, *k, &cur);
        if (has_got == has_cur && (!has_got || same_arg(&got, &cur)))
            continue;
        char a[300], b[300];
        describe_arg(a, sizeof a, &got, has_got);
        describe_arg(b, sizeof b, &cur, has_cur);
        snprintf(text, cap,
                 "PRECONDITION_FAILED - inequivalent arg '%s' for queue '%s' in vhost '%s': "
                 "received %s but current is %s",
                 *k, q->name, q->vh->name, a, b);
        return 1;
    }
    return 0;
}

static void on_queue_timer(uv_timer_t *t);

queue_t *queue_add(vhost_t *vh, const char *name, int durable, int exclusive, int auto_delete,
                   conn_t *owner, const uint8_t *args, uint32_t args_len)
{
    queue_t *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->vh = vh;
    q->durable = (uint8_t)durable;
    q->exclusive = (uint8_t)exclusive;
    q->auto_delete = (uint8_t)auto_delete;
    q->owner = exclusive ? owner : NULL;
    q->name = amqp_strdup(name);
    q->args = dup_bytes(args, args_len);
    q->args_len = args_len;
    q->next_seq = 1;
    q->last_used = uv_hrtime();
    if (!q->name || !q->args || map_put(&vh->queues, q->name, q)) {
        free(q->name);
        free(q->args);
        free(q);
        return NULL;
    }
    queue_args_apply(q);
    uv_timer_init(vh->b->loop, &q->timer);
    q->timer.data = q;
    q->timer_open = 1;
    journal_queue(vh->b, q, 1);
    queue_arm_timer(q);
    return q;
}

static void drop_ready(queue_t *q)
{
    qent_t e;
    while (q->ready.len) {
        ring_pop(&q->ready, &e);
        journal_dequeue(q->vh->b, q, e.m);
        msg_unref(e.m);
    }
    q->ready_bytes = 0;
}

uint64_t queue_purge(queue_t *q)
{
    uint64_t n = q->ready.len;
    drop_ready(q);
    queue_arm_timer(q);
    return n;
}

static void on_queue_timer_closed(uv_handle_t *h)
{
    queue_t *q = h->data;
    q->timer_open = 0;
    queue_maybe_free(q);
}

static void queue_free_now(queue_t *q)
{
    /* at vhost teardown: every connection is gone, so nothing refers to q */
    drop_ready(q);
    free(q->ready.v);
    free(q->consumers);
    free(q->dlx);
    free(q->dlrk);
    free(q->args);
    free(q->name);
    free(q);
}

void queue_maybe_free(queue_t *q)
{
    if (!q->deleted || q->unacked || q->dirty || q->timer_open)
        return;
    free(q->ready.v);
    free(q->consumers);
    free(q->dlx);
    free(q->dlrk);
    free(q->args);
    free(q->name);
    free(q);
}

uint64_t queue_delete(queue_t *q)
{
    uint64_t n = q->ready.len;
    vhost_t *vh = q->vh;
    q->deleted = 1;
    map_del(&vh->queues, q->name);
    journal_queue(vh->b, q, 0);
    while (q->nconsumers)
        consumer_remove(q->consumers[q->nconsumers - 1], 1);
    drop_ready(q);
    bindings_drop_dest(vh, 1, q);
    broker_event(vh->b, "queue %s deleted (%llu messages dropped)", q->name, (unsigned long long)n);
    if (q->timer_open && !uv_is_closing((uv_handle_t *)&q->timer))
        uv_close((uv_handle_t *)&q->timer, on_queue_timer_closed);
    return n;
}

void queue_kick(queue_t *q)
{
    if (q->dirty || q->deleted)
        return;
    q->dirty = 1;
    q->dirty_next = q->vh->b->dirty;
    q->vh->b->dirty = q;
}

static uint64_t msg_size(const msg_t *m)
{
    return m->body_len;
}

/* Drops (dead-letters) from the head while the queue is over its limits. */
static void enforce_max_length(queue_t *q)
{
    while ((q->max_length >= 0 && (int64_t)q->ready.len > q->max_length) ||
           (q->max_length_bytes >= 0 && (int64_t)q->ready_bytes > q->max_length_bytes)) {
        qent_t e;
        ring_pop(&q->ready, &e);
        q->ready_bytes -= msg_size(e.m);
        queue_dead_letter(q, &e, "maxlen");
    }
}

int queue_enqueue(queue_t *q, msg_t *m)
{
    if (q->overflow_reject && ((q->max_length >= 0 && (int64_t)q->ready.len >= q->max_length) ||
                               (q->max_length_bytes >= 0 &&
                                (int64_t)(q->ready_bytes + msg_size(m)) > q->max_length_bytes)))
        return 0;
    uint64_t now = uv_hrtime();
    qent_t e = {m, q->next_seq++, 0, 0, 0};
    uint64_t ttl = m->ttl_ms;
    if (q->msg_ttl_ms >= 0 && (uint64_t)q->msg_ttl_ms < ttl)
        ttl = (uint64_t)q->msg_ttl_ms;
    if (ttl != UINT64_MAX)
        e.expires = now + ttl * 1000000ull; /* ttl 0: unless a consumer takes it at once */
    if (q->vh->b->delay_ns)
        e.ready_at = now + q->vh->b->delay_ns;
    if (ring_push(&q->ready, &e))
        return 0;
    msg_ref(m);
    q->ready_bytes += msg_size(m);
    q->st.published++;
    if (m->persistent && q->durable)
        journal_enqueue(q->vh->b, q, m);
    enforce_max_length(q);
    queue_kick(q);
    return 1;
}

/* Dead-letters or drops expired heads. */
static void expire_heads(queue_t *q, uint64_t now)
{
    while (q->ready.len) {
        qent_t *h = ring_at(&q->ready, 0);
        if (!h->expires || h->expires > now)
            break;
        /* a ttl of 0 still reaches a consumer that is waiting: dispatch runs before this */
        qent_t e;
        ring_pop(&q->ready, &e);
        q->ready_bytes -= msg_size(e.m);
        q->st.expired++;
        queue_dead_letter(q, &e, "expired");
    }
}

int queue_take(queue_t *q, qent_t *e)
{
    uint64_t now = uv_hrtime();
    while (q->ready.len) {
        qent_t *h = ring_at(&q->ready, 0);
        if (h->expires && h->expires < now) {
            expire_heads(q, now);
            continue;
        }
        if (h->ready_at > now)
            return 0;
        ring_pop(&q->ready, e);
        q->ready_bytes -= msg_size(e->m);
        return 1;
    }
    return 0;
}

void queue_requeue(queue_t *q, qent_t *e)
{
    e->redelivered = 1;
    if (q->deleted || ring_insert(&q->ready, e)) {
        journal_dequeue(q->vh->b, q, e->m);
        msg_unref(e->m);
        return;
    }
    q->ready_bytes += msg_size(e->m);
    queue_kick(q);
}

void queue_arm_timer(queue_t *q)
{
    if (!q->timer_open || q->deleted)
        return;
    uint64_t now = uv_hrtime(), next = 0;
    if (q->ready.len) {
        qent_t *h = ring_at(&q->ready, 0);
        if (h->expires)
            next = h->expires;
        if (h->ready_at > now && (!next || h->ready_at < next))
            next = h->ready_at;
    }
    if (q->expires_ms >= 0 && q->nconsumers == 0) {
        uint64_t at = q->last_used + (uint64_t)q->expires_ms * 1000000ull;
        if (!next || at < next)
            next = at;
    }
    if (!next) {
        uv_timer_stop(&q->timer);
        return;
    }
    uint64_t ms = next > now ? (next - now + 999999) / 1000000 : 0;
    uv_timer_start(&q->timer, on_queue_timer, ms, 0);
}

static void on_queue_timer(uv_timer_t *t)
{
    queue_t *q = t->data;
    broker_t *b = q->vh->b;
    uint64_t now = uv_hrtime();
    if (q->expires_ms >= 0 && q->nconsumers == 0 &&
        now >= q->last_used + (uint64_t)q->expires_ms * 1000000ull) {
        broker_event(b, "queue %s expired (x-expires %lld ms)", q->name, (long long)q->expires_ms);
        queue_delete(q);
        settle(b);
        return;
    }
    expire_heads(q, now);
    queue_kick(q);
    settle(b);
}

/* ---- dead-lettering ---- */

/* Appends the headers table of a dead-lettered message: the old fields but x-death and
 * x-first-death-*, then x-first-death-* (kept from before, or these), then x-death with this
 * death counted (an entry for the same queue and reason moves to the front, count + 1). */
static int death_headers(fl_buf_t *out, const uint8_t *hdr, uint32_t hdr_len, const queue_t *q,
                         const char *reason, const msg_t *m, const fl_amqp_arg_t *expiration)
{
    size_t start = fl_amqp_table_begin(out);
    size_t off = 0;
    const uint8_t *name;
    uint8_t nlen;
    fl_amqp_value_t v, deaths = {0};
    int have_first = 0, rc = 0;
    while (hdr && fl_amqp_table_next(hdr, hdr_len, &off, &name, &nlen, &v) == 1) {
        if (nlen == 7 && memcmp(name, "x-death", 7) == 0) {
            if (v.type == 'A')
                deaths = v;
            continue;
        }
        if (nlen >= 14 && memcmp(name, "x-first-death-", 14) == 0)
            have_first = 1;
    }
    /* copy the other fields byte for byte */
    off = 0;
    size_t prev = 0;
    while (hdr && fl_amqp_table_next(hdr, hdr_len, &off, &name, &nlen, &v) == 1) {
        if (!(nlen == 7 && memcmp(name, "x-death", 7) == 0))
            rc = rc ? rc : fl_buf_append(out, hdr + prev, off - prev);
        prev = off;
    }
    if (!have_first) {
        rc = rc ? rc : fl_amqp_field_str(out, "x-first-death-exchange", msg_exchange(m));
        rc = rc ? rc : fl_amqp_field_str(out, "x-first-death-queue", q->name);
        rc = rc ? rc : fl_amqp_field_str(out, "x-first-death-reason", reason);
    }
    rc = rc ? rc : fl_amqp_put_shortstr(out, "x-death", 7);
    rc = rc ? rc : fl_amqp_put_u8(out, 'A');
    size_t arr = fl_amqp_table_begin(out);
    /* this death first */
    int64_t count = 1;
    size_t aoff = 0;
    fl_amqp_value_t entry;
    while (deaths.p && fl_amqp_array_next(deaths.p, deaths.len, &aoff, &entry) == 1) {
        fl_amqp_value_t eq, er, ec;
        if (entry.type == 'F' && fl_amqp_table_get(entry.p, entry.len, "queue", &eq) &&
            fl_amqp_table_get(entry.p, entry.len, "reason", &er) && eq.type == 'S' &&
            er.type == 'S' && eq.len == strlen(q->name) && memcmp(eq.p, q->name, eq.len) == 0 &&
            er.len == strlen(reason) && memcmp(er.p, reason, er.len) == 0 &&
            fl_amqp_table_get(entry.p, entry.len, "count", &ec) && fl_amqp_value_int(&ec, &count))
            count++;
    }
    rc = rc ? rc : fl_amqp_put_u8(out, 'F');
    size_t t = fl_amqp_table_begin(out);
    rc = rc ? rc : fl_amqp_field_long(out, "count", count);
    rc = rc ? rc : fl_amqp_field_str(out, "reason", reason);
    rc = rc ? rc : fl_amqp_field_str(out, "queue", q->name);
    uint64_t secs = (uint64_t)time(NULL);
    uint8_t ts[8];
    for (int i = 0; i < 8; i++)
        ts[i] = (uint8_t)(secs >> (56 - 8 * i));
    rc = rc ? rc : fl_amqp_field_raw(out, "time", 'T', ts, 8);
    rc = rc ? rc : fl_amqp_field_str(out, "exchange", msg_exchange(m));
    rc = rc ? rc : fl_amqp_put_shortstr(out, "routing-keys", 12);
    rc = rc ? rc : fl_amqp_put_u8(out, 'A');
    size_t rk = fl_amqp_table_begin(out);
    rc = rc ? rc : fl_amqp_put_u8(out, 'S');
    rc = rc ? rc : fl_amqp_put_longstr(out, msg_rkey(m), m->rk_len);
    rc = rc ? rc : fl_amqp_table_end(out, rk);
    if (expiration) {
        rc = rc ? rc : fl_amqp_put_shortstr(out, "original-expiration", 19);
        rc = rc ? rc : fl_amqp_put_u8(out, 'S');
        rc = rc ? rc : fl_amqp_put_longstr(out, expiration->p, expiration->len);
    }
    rc = rc ? rc : fl_amqp_table_end(out, t);
    /* then the other deaths, without the one just counted */
    aoff = 0;
    while (deaths.p && fl_amqp_array_next(deaths.p, deaths.len, &aoff, &entry) == 1) {
        fl_amqp_value_t eq, er;
        if (entry.type == 'F' && fl_amqp_table_get(entry.p, entry.len, "queue", &eq) &&
            fl_amqp_table_get(entry.p, entry.len, "reason", &er) && eq.type == 'S' &&
            er.type == 'S' && eq.len == strlen(q->name) && memcmp(eq.p, q->name, eq.len) == 0 &&
            er.len == strlen(reason) && memcmp(er.p, reason, er.len) == 0)
            continue;
        rc = rc ? rc : fl_amqp_put_u8(out, (uint8_t)entry.type);
        rc = rc ? rc : fl_amqp_put_longstr(out, entry.p, entry.len);
    }
    rc = rc ? rc : fl_amqp_table_end(out, arr);
    rc = rc ? rc : fl_amqp_table_end(out, start);
    return rc;
}

/* RabbitMQ's dead-letter cycle rule: a message that would be dead-lettered into a queue it
 * already died in (its x-death says so) is dropped instead, unless a client rejected it on
 * the way. An automatic cycle (expired, maxlen) would otherwise never end: a full queue that
 * dead-letters into itself recursed until the stack ran out. */
static int dead_letter_cycle(const uint8_t *hdr, uint32_t hdr_len, const queue_t *to)
{
    fl_amqp_value_t deaths, entry, v;
    if (!fl_amqp_table_get(hdr, hdr_len, "x-death", &deaths) || deaths.type != 'A')
        return 0;
    size_t off = 0, nl = strlen(to->name);
    int seen = 0;
    while (fl_amqp_array_next(deaths.p, deaths.len, &off, &entry) == 1) {
        if (entry.type != 'F')
            continue;
        if (fl_amqp_table_get(entry.p, entry.len, "reason", &v) && v.type == 'S' && v.len == 8 &&
            memcmp(v.p, "rejected", 8) == 0)
            return 0;
        if (fl_amqp_table_get(entry.p, entry.len, "queue", &v) && v.type == 'S' && v.len == nl &&
            memcmp(v.p, to->name, nl) == 0)
            seen = 1;
    }
    return seen;
}

void queue_dead_letter(queue_t *q, qent_t *e, const char *reason)
{
    broker_t *b = q->vh->b;
    msg_t *m = e->m;
    journal_dequeue(b, q, m);
    exchange_t *x = q->dlx ? map_get(&q->vh->exchanges, q->dlx) : NULL;
    if (!x) {
        msg_unref(m);
        return;
    }
    q->st.dead_lettered++;
    fl_amqp_props_t pr;
    fl_buf_t hdr = FL_BUF_INIT, props = FL_BUF_INIT;
    msg_t *d = NULL;
    if (fl_amqp_props_decode(msg_props(m), m->props_len, &pr))
        goto done;
    const fl_amqp_arg_t *exp =
        FL_AMQP_HAS(&pr, FL_AMQP_P_EXPIRATION) ? &pr.v[FL_AMQP_P_EXPIRATION] : NULL;
    if (death_headers(&hdr, FL_AMQP_HAS(&pr, FL_AMQP_P_HEADERS) ? pr.v[FL_AMQP_P_HEADERS].p : NULL,
                      pr.v[FL_AMQP_P_HEADERS].len, q, reason, m, exp))
        goto done;
    pr.flags |= 1u << (15 - FL_AMQP_P_HEADERS);
    pr.v[FL_AMQP_P_HEADERS].p = (const uint8_t *)hdr.data + 4;
    pr.v[FL_AMQP_P_HEADERS].len = (uint32_t)(hdr.len - 4);
    pr.flags &= (uint16_t) ~(1u << (15 - FL_AMQP_P_EXPIRATION)); /* the TTL died with it */
    if (fl_amqp_props_encode(&props, &pr))
        goto done;
    const char *rk = q->dlrk ? q->dlrk : msg_rkey(m);
    d = msg_new(x->name, strlen(x->name), rk, strlen(rk), (const uint8_t *)props.data, props.len,
                m->body_len);
    if (!d)
        goto done;
    memcpy(msg_body(d), msg_body(m), m->body_len);
    queue_t *to[256];
    size_t n = route_key(x, d, rk, to, 256);
    for (size_t i = 0; i < n; i++)
        if (!dead_letter_cycle((const uint8_t *)hdr.data + 4, (uint32_t)(hdr.len - 4), to[i]))
            queue_enqueue(to[i], d);
done:
    msg_unref(d);
    msg_unref(m);
    fl_buf_free(&hdr);
    fl_buf_free(&props);
}

/* Restart: the queue keeps only its persistent messages (a durable queue's disk). */
void queue_drop_transient(queue_t *q)
{
    qring_t keep = {0};
    qent_t e;
    q->ready_bytes = 0;
    while (q->ready.len) {
        ring_pop(&q->ready, &e);
        if (e.m->persistent && !ring_push(&keep, &e)) {
            q->ready_bytes += msg_size(e.m);
            continue;
        }
        msg_unref(e.m);
    }
    free(q->ready.v);
    q->ready = keep;
    queue_arm_timer(q);
}

/* Replaying the journal: a recovered message, as if published, but flagged redelivered
 * because it may have been delivered before the broker went away. */
int queue_recover_msg(queue_t *q, msg_t *m)
{
    qent_t e = {m, q->next_seq++, 0, 0, 1};
    if (ring_push(&q->ready, &e))
        return FL_ENOMEM;
    msg_ref(m);
    q->ready_bytes += msg_size(m);
    return 0;
}

/* Replaying the journal: takes out the message with id (acked before the broker went away). */
void queue_forget_msg(queue_t *q, uint64_t id)
{
    for (size_t i = 0; i < q->ready.len; i++) {
        qent_t *e = ring_at(&q->ready, i);
        if (e->m->id != id)
            continue;
        msg_t *m = e->m;
        for (size_t j = i; j + 1 < q->ready.len; j++)
            *ring_at(&q->ready, j) = *ring_at(&q->ready, j + 1);
        q->ready.len--;
        q->ready_bytes -= msg_size(m);
        msg_unref(m);
        return;
    }
}

/* Walks q's ready messages (for the journal's snapshot). */
msg_t *queue_msg_at(queue_t *q, size_t i)
{
    return i < q->ready.len ? ring_at(&q->ready, i)->m : NULL;
}

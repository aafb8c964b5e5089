/* The KV store and /v1/kv/<key>: GET (one key, ?recurse, ?keys with ?separator, ?raw), PUT
 * (?flags, ?cas; the body is the value, up to Consul's 512 KiB), DELETE (?recurse, ?cas).
 * Entries live in the catalog's state, sorted by key, so they are part of the snapshots stale
 * answers read. Indexes follow Consul's KVS endpoints: one key answers with its ModifyIndex, or
 * the KV table index when missing; a prefix with the highest ModifyIndex under it, deletions
 * (tombstones) included, or the table index when there is nothing. Values are base64 in JSON;
 * an empty value is null. Missing keys are 404 with the index headers, which Go's client
 * needs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakes/consul/internal.h"
#include "lib/err.h"

#define MAX_TOMBSTONES 1024

/* ------------------------------------------------------------ base64 ---- */

static char *base64(const char *in, size_t len)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
    if (!out)
        return NULL;
    const unsigned char *p = (const unsigned char *)in;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < len)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < len)
            v |= p[i + 2];
        *o++ = abc[(v >> 18) & 63];
        *o++ = abc[(v >> 12) & 63];
        *o++ = i + 1 < len ? abc[(v >> 6) & 63] : '=';
        *o++ = i + 2 < len ? abc[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

/* ------------------------------------------------------------ the store ---- */

/* Binary search: the position of key, or where it would go (then *found is 0). */
static size_t kv_pos(const state_t *st, const char *key, int *found)
{
    size_t lo = 0, hi = st->kv.n;
    *found = 0;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(((kv_t *)st->kv.v[mid])->key, key);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static const kv_t *kv_get(const state_t *st, const char *key)
{
    int found;
    size_t i = kv_pos(st, key, &found);
    return found ? st->kv.v[i] : NULL;
}

static int has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The highest index under prefix, deletions included; 0 when nothing is there. */
static uint64_t prefix_index(const state_t *st, const char *prefix)
{
    uint64_t idx = 0;
    int found;
    for (size_t i = kv_pos(st, prefix, &found); i < st->kv.n; i++) {
        const kv_t *e = st->kv.v[i];
        if (!has_prefix(e->key, prefix))
            break;
        if (e->modify_index > idx)
            idx = e->modify_index;
    }
    for (size_t i = 0; i < st->tombs.n; i++) {
        const mark_t *m = st->tombs.v[i];
        if (has_prefix(m->name, prefix) && m->index > idx)
            idx = m->index;
    }
    return idx;
}

static void forget_tombstone(state_t *st, const char *key)
{
    for (size_t i = st->tombs.n; i-- > 0;)
        if (strcmp(((mark_t *)st->tombs.v[i])->name, key) == 0)
            vec_remove(&st->tombs, i);
}

static void add_tombstone(state_t *st, const char *key, uint64_t idx)
{
    forget_tombstone(st, key);
    if (st->tombs.n >= MAX_TOMBSTONES)
        vec_remove(&st->tombs, 0);
    mark_t *m = mark_new(key, idx);
    if (m && vec_push(&st->tombs, m))
        rec_unref(m);
}

/* Stores key=value (a write); returns 0 or FL_ENOMEM. */
static int kv_set(fl_consul_t *c, const char *key, const char *value, size_t len, uint64_t flags)
{
    kv_t *e = kv_new(key, value, len);
    if (!e)
        return FL_ENOMEM;
    state_t *st = c->live;
    uint64_t idx = cat_begin(c);
    int found;
    size_t i = kv_pos(st, key, &found);
    e->flags = flags;
    e->create_index = e->modify_index = idx;
    int rc = 0;
    if (found) {
        const kv_t *old = st->kv.v[i];
        e->create_index = old->create_index;
        e->lock_index = old->lock_index;
        rec_unref(st->kv.v[i]);
        st->kv.v[i] = e;
    } else if ((rc = vec_push(&st->kv, e)) == 0) {
        memmove(&st->kv.v[i + 1], &st->kv.v[i], (st->kv.n - 1 - i) * sizeof st->kv.v[0]);
        st->kv.v[i] = e;
    } else {
        rec_unref(e);
    }
    forget_tombstone(st, key);
    cat_bump_kv(c, idx);
    cat_end(c);
    return rc;
}

/* Deletes key, or every key under it with recurse (a write when something goes). */
static void kv_delete(fl_consul_t *c, const char *key, int recurse)
{
    state_t *st = c->live;
    int found;
    size_t i = kv_pos(st, key, &found);
    size_t end = i;
    if (recurse)
        while (end < st->kv.n && has_prefix(((kv_t *)st->kv.v[end])->key, key))
            end++;
    else
        end = found ? i + 1 : i;
    if (end == i)
        return;
    uint64_t idx = cat_begin(c);
    for (size_t j = end; j-- > i;) {
        add_tombstone(st, ((kv_t *)st->kv.v[j])->key, idx);
        vec_remove(&st->kv, j);
    }
    cat_bump_kv(c, idx);
    cat_end(c);
}

/* ------------------------------------------------------------ GET ---- */

static json_t *r_kv(const kv_t *e)
{
    char *b64 = e->len ? base64(e->value, e->len) : NULL;
    json_t *j =
        json_pack("{s:I, s:o, s:I, s:o, s:I, s:I}", "LockIndex", (json_int_t)e->lock_index, "Key",
                  go_json_stringn(e->key, strlen(e->key)), "Flags", (json_int_t)e->flags, "Value",
                  b64 ? json_string(b64) : json_null(), "CreateIndex", (json_int_t)e->create_index,
                  "ModifyIndex", (json_int_t)e->modify_index);
    free(b64);
    return j;
}

static int is_list(ctx_t *x)
{
    return q_has(x, "recurse") || q_has(x, "keys");
}

static uint64_t tombstone_index(const state_t *st, const char *key)
{
    for (size_t i = 0; i < st->tombs.n; i++)
        if (strcmp(((mark_t *)st->tombs.v[i])->name, key) == 0)
            return ((mark_t *)st->tombs.v[i])->index;
    return 0;
}

/* What the key (or prefix) itself last saw: a write, or a deletion; 0 for nothing. */
static uint64_t own_index(ctx_t *x)
{
    if (is_list(x))
        return prefix_index(x->st, x->arg);
    const kv_t *e = kv_get(x->st, x->arg);
    return e ? e->modify_index : tombstone_index(x->st, x->arg);
}

int kv_index(ctx_t *x, uint64_t *idx)
{
    if (!is_list(x) && !*x->arg) {
        reply_text(x, 400, "Missing key name");
        return -1;
    }
    *idx = own_index(x);
    return 0;
}

/* The index answered: the entry's, or the prefix's, or for nothing the KV table's. */
static uint64_t answered_index(ctx_t *x)
{
    const kv_t *e = is_list(x) ? NULL : kv_get(x->st, x->arg);
    uint64_t idx = is_list(x) ? prefix_index(x->st, x->arg) : e ? e->modify_index : 0;
    if (!idx)
        idx = x->st->kv_index ? x->st->kv_index : 1;
    return idx;
}

/* ?keys: the keys under the prefix, cut after the first separator past it. */
static json_t *kv_keys(ctx_t *x)
{
    char sep[64] = "";
    if (q_get(x, "seperator", sep, sizeof sep) != 0) /* Consul's historic spelling, too */
        sep[0] = '\0';
    q_get(x, "separator", sep, sizeof sep);
    const state_t *st = x->st;
    size_t plen = strlen(x->arg), slen = strlen(sep);
    json_t *out = json_array();
    const char *last = NULL;
    size_t last_len = 0;
    int found;
    for (size_t i = kv_pos(st, x->arg, &found); out && i < st->kv.n; i++) {
        const char *k = ((kv_t *)st->kv.v[i])->key;
        if (!has_prefix(k, x->arg))
            break;
        size_t len = strlen(k);
        const char *cut = slen ? strstr(k + plen, sep) : NULL;
        if (cut)
            len = (size_t)(cut - k) + slen;
        if (last && len == last_len && strncmp(k, last, len) == 0)
            continue;
        json_array_append_new(out, go_json_stringn(k, len)); /* keys are any bytes */
        last = k;
        last_len = len;
    }
    return out;
}

static void kv_get_reply(ctx_t *x)
{
    const state_t *st = x->st;
    uint64_t idx;
    if (kv_index(x, &idx) < 0)
        return;
    x->index = answered_index(x);
    if (q_has(x, "keys")) {
        json_t *keys = kv_keys(x);
        if (keys && json_array_size(keys) == 0 && *x->arg) {
            json_decref(keys);
            reply_text(x, 404, "%s", "");
        } else {
            reply_json(x, 200, keys);
        }
        return;
    }
    json_t *out = json_array();
    int found;
    if (q_has(x, "recurse")) {
        for (size_t i = kv_pos(st, x->arg, &found); out && i < st->kv.n; i++) {
            if (!has_prefix(((kv_t *)st->kv.v[i])->key, x->arg))
                break;
            json_array_append_new(out, r_kv(st->kv.v[i]));
        }
    } else {
        const kv_t *e = kv_get(st, x->arg);
        if (e && q_has(x, "raw")) {
            json_decref(out);
            reply_text(x, 200, "%s", "");
            fl_buf_append(&x->body, e->value, e->len);
            x->ctype = "text/plain";
            fl_buf_puts(&x->headers, "X-Content-Type-Options: nosniff\r\n"
                                     "Content-Security-Policy: sandbox\r\n");
            return;
        }
        if (e && out)
            json_array_append_new(out, r_kv(e));
    }
    if (out && json_array_size(out) == 0) {
        json_decref(out);
        reply_text(x, 404, "%s", "");
        return;
    }
    reply_json(x, 200, out);
}

/* ------------------------------------------------------------ PUT, DELETE ---- */

/* "Conflicting flags: " and the query as Go's url.Values.Encode() writes it. */
static int conflicting(ctx_t *x, const char *a, const char *b, const char *c)
{
    int n = q_has(x, a) + q_has(x, b) + (c ? q_has(x, c) : 0);
    if (n < 2)
        return 0;
    fl_buf_t q = FL_BUF_INIT;
    q_encode(x, &q);
    reply_text(x, 400, "Conflicting flags: %s", q.data ? q.data : "");
    fl_buf_free(&q);
    return 1;
}

/* Reads an unsigned query parameter; answers Consul's 500 and returns -1 when it is bad. */
static int uint_param(ctx_t *x, const char *name, uint64_t *out, int *present)
{
    char v[64];
    *present = q_get(x, name, v, sizeof v) == 0;
    if (!*present)
        return 0;
    fl_buf_t err = FL_BUF_INIT;
    unsigned long long u;
    int rc = go_parse_uint(v, &u, &err);
    if (rc < 0)
        reply_text(x, 500, "%s", err.data ? err.data : "invalid syntax");
    else
        *out = u;
    fl_buf_free(&err);
    return rc;
}

static void kv_put(ctx_t *x)
{
    uint64_t flags = 0, cas = 0;
    int has_flags, has_cas;
    if (!*x->arg) {
        reply_text(x, 400, "Missing key name");
        return;
    }
    if (conflicting(x, "cas", "acquire", "release") || uint_param(x, "flags", &flags, &has_flags) ||
        uint_param(x, "cas", &cas, &has_cas))
        return;
    char session[256];
    if (q_get(x, "acquire", session, sizeof session) == 0 ||
        q_get(x, "release", session, sizeof session) == 0) {
        reply_text(x, 500, "Invalid session \"%s\"", session); /* no sessions in this fake */
        return;
    }
    const char *body = x->req_body;
    size_t len = x->req_len;
    if (len > KV_MAX_VALUE) {
        reply_text(x, 413,
                   "Request body(%zu bytes) too large, max size: %d bytes. See "
                   "https://www.consul.io/docs/agent/config/config-files#kv_max_value_size.",
                   len, KV_MAX_VALUE);
        return;
    }
    if (has_cas) {
        const kv_t *e = kv_get(x->c->live, x->arg);
        if (cas == 0 ? e != NULL : !e || e->modify_index != cas) {
            reply_bool(x, 0);
            return;
        }
    }
    if (kv_set(x->c, x->arg, body, len, flags))
        reply_text(x, 500, "out of memory");
    else
        reply_bool(x, 1);
}

static void kv_del(ctx_t *x)
{
    uint64_t cas = 0;
    int has_cas, recurse = q_has(x, "recurse");
    if (conflicting(x, "recurse", "cas", NULL))
        return;
    if (!recurse && !*x->arg) {
        reply_text(x, 400, "Missing key name");
        return;
    }
    if (uint_param(x, "cas", &cas, &has_cas))
        return;
    if (has_cas) {
        const kv_t *e = kv_get(x->c->live, x->arg);
        if (e && e->modify_index != cas) {
            reply_bool(x, 0);
            return;
        }
    }
    kv_delete(x->c, x->arg, recurse);
    reply_bool(x, 1);
}

void kv_endpoint(ctx_t *x)
{
    if (check_dc(x) < 0)
        return;
    if (strcmp(x->method, "PUT") == 0)
        kv_put(x);
    else if (strcmp(x->method, "DELETE") == 0)
        kv_del(x);
    else
        kv_get_reply(x);
}

/* Durable state on disk, for `faultline fake amqp --data DIR`: an append-only journal of the
 * changes RabbitMQ would keep across a restart (durable exchanges and queues, bindings between
 * durable ends, persistent messages in durable queues, and their acknowledgements). Records
 * gather in memory during a callback and are written with one write(2) when it ends, so a
 * killed process loses nothing it acknowledged (a confirm goes out in the same callback,
 * after the write is queued; there is no fsync: the page cache outlives the process, not the
 * machine). Opening replays the journal into the model and rewrites it compacted.
 *
 * A record: kind (1 byte), length (4 bytes, big-endian), then fields, each a length (4) and
 * bytes. A truncated last record (a crash mid-write) is ignored; anything else malformed
 * fails the open with FL_EMALFORMED, naming the file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fakes/amqp/internal.h"
#include "lib/err.h"

enum { J_EX_ADD = 1, J_EX_DEL, J_Q_ADD, J_Q_DEL, J_BIND_ADD, J_BIND_DEL, J_ENQ, J_DEQ };

typedef struct {
    int fd;
    char *path;
    fl_buf_t pending;
    int replaying;
} journal_t;

#define MAX_FIELDS 8

typedef struct {
    const uint8_t *p[MAX_FIELDS];
    uint32_t len[MAX_FIELDS];
    int n;
} fields_t;

static void put_field(fl_buf_t *b, const void *p, size_t len)
{
    fl_amqp_put_u32(b, (uint32_t)len);
    fl_buf_append(b, p, len);
}

static void put_str(fl_buf_t *b, const char *s)
{
    put_field(b, s, strlen(s));
}

static void put_u64(fl_buf_t *b, uint64_t v)
{
    uint8_t x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (uint8_t)(v >> (56 - 8 * i));
    put_field(b, x, 8);
}

/* Starts a record; returns where its length goes. */
static size_t rec_begin(fl_buf_t *b, int kind)
{
    fl_amqp_put_u8(b, (uint8_t)kind);
    return fl_amqp_table_begin(b);
}

static journal_t *jr(broker_t *b)
{
    journal_t *j = b->journal;
    return j && !j->replaying ? j : NULL;
}

void journal_exchange(broker_t *b, exchange_t *x, int add)
{
    journal_t *j = jr(b);
    if (!j || !x->durable || !x->name[0] || strncmp(x->name, "amq.", 4) == 0)
        return;
    size_t at = rec_begin(&j->pending, add ? J_EX_ADD : J_EX_DEL);
    put_str(&j->pending, x->vh->name);
    put_str(&j->pending, x->name);
    if (add) {
        uint8_t flags[3] = {(uint8_t)x->type, x->auto_delete, x->internal};
        put_field(&j->pending, flags, 3);
        put_field(&j->pending, x->args, x->args_len);
    }
    fl_amqp_table_end(&j->pending, at);
}

void journal_queue(broker_t *b, queue_t *q, int add)
{
    journal_t *j = jr(b);
    if (!j || !q->durable)
        return;
    size_t at = rec_begin(&j->pending, add ? J_Q_ADD : J_Q_DEL);
    put_str(&j->pending, q->vh->name);
    put_str(&j->pending, q->name);
    if (add) {
        uint8_t flags[1] = {q->auto_delete};
        put_field(&j->pending, flags, 1);
        put_field(&j->pending, q->args, q->args_len);
    }
    fl_amqp_table_end(&j->pending, at);
}

static int binding_durable(exchange_t *src, binding_t *bd)
{
    if (!src->durable)
        return 0;
    return bd->to_queue ? ((queue_t *)bd->dest)->durable : ((exchange_t *)bd->dest)->durable;
}

void journal_binding(broker_t *b, exchange_t *src, binding_t *bd, int add)
{
    journal_t *j = jr(b);
    if (!j || !binding_durable(src, bd))
        return;
    size_t at = rec_begin(&j->pending, add ? J_BIND_ADD : J_BIND_DEL);
    put_str(&j->pending, src->vh->name);
    put_str(&j->pending, src->name);
    uint8_t to_queue = (uint8_t)bd->to_queue;
    put_field(&j->pending, &to_queue, 1);
    put_str(&j->pending,
            bd->to_queue ? ((queue_t *)bd->dest)->name : ((exchange_t *)bd->dest)->name);
    put_str(&j->pending, bd->rkey);
    put_field(&j->pending, bd->args, bd->args_len);
    fl_amqp_table_end(&j->pending, at);
}

void journal_enqueue(broker_t *b, queue_t *q, msg_t *m)
{
    journal_t *j = jr(b);
    if (!j)
        return;
    if (!m->id)
        m->id = ++b->next_msg_id;
    size_t at = rec_begin(&j->pending, J_ENQ);
    put_str(&j->pending, q->vh->name);
    put_str(&j->pending, q->name);
    put_u64(&j->pending, m->id);
    put_field(&j->pending, msg_exchange(m), m->ex_len);
    put_field(&j->pending, msg_rkey(m), m->rk_len);
    put_field(&j->pending, msg_props(m), m->props_len);
    put_field(&j->pending, msg_body(m), m->body_len);
    fl_amqp_table_end(&j->pending, at);
}

void journal_dequeue(broker_t *b, queue_t *q, msg_t *m)
{
    journal_t *j = jr(b);
    if (!j || !m->id || !q->durable)
        return;
    size_t at = rec_begin(&j->pending, J_DEQ);
    put_str(&j->pending, q->vh->name);
    put_str(&j->pending, q->name);
    put_u64(&j->pending, m->id);
    fl_amqp_table_end(&j->pending, at);
}

void journal_sync(broker_t *b)
{
    journal_t *j = b->journal;
    if (!j || !j->pending.len)
        return;
    size_t off = 0;
    while (off < j->pending.len) {
        ssize_t n = write(j->fd, j->pending.data + off, j->pending.len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            broker_event(b, "journal %s: write failed: %s", j->path, strerror(errno));
            break;
        }
        off += (size_t)n;
    }
    fl_buf_reset(&j->pending);
}

/* ---- replay ---- */

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static int parse_fields(const uint8_t *p, size_t len, fields_t *f)
{
    size_t off = 0;
    f->n = 0;
    while (off < len) {
        if (f->n == MAX_FIELDS || len - off < 4)
            return -1;
        uint32_t n = (uint32_t)p[off] << 24 | (uint32_t)p[off + 1] << 16 |
                     (uint32_t)p[off + 2] << 8 | p[off + 3];
        off += 4;
        if (len - off < n)
            return -1;
        f->p[f->n] = p + off;
        f->len[f->n++] = n;
        off += n;
    }
    return 0;
}

static int fstr(const fields_t *f, int i, char out[256])
{
    if (i >= f->n || f->len[i] > 255)
        return -1;
    memcpy(out, f->p[i], f->len[i]);
    out[f->len[i]] = 0;
    return 0;
}

static vhost_t *rec_vhost(broker_t *b, const fields_t *f)
{
    char name[256];
    if (fstr(f, 0, name))
        return NULL;
    vhost_t *vh = vhost_find(b, name);
    return vh ? vh : vhost_add(b, name);
}

static int replay_one(broker_t *b, int kind, const fields_t *f)
{
    char name[256], other[256], rk[256];
    vhost_t *vh = rec_vhost(b, f);
    if (!vh || fstr(f, 1, name))
        return -1;
    switch (kind) {
    case J_EX_ADD:
        if (f->n != 4 || f->len[2] != 3 || f->p[2][0] > EX_HEADERS)
            return -1;
        if (!map_get(&vh->exchanges, name) &&
            !exchange_add(vh, name, f->p[2][0], 1, f->p[2][1], f->p[2][2], f->p[3], f->len[3]))
            return -1;
        return 0;
    case J_EX_DEL: {
        exchange_t *x = map_get(&vh->exchanges, name);
        if (x)
            exchange_delete(x);
        return 0;
    }
    case J_Q_ADD:
        if (f->n != 4 || f->len[2] != 1)
            return -1;
        if (!map_get(&vh->queues, name) &&
            !queue_add(vh, name, 1, 0, f->p[2][0], NULL, f->p[3], f->len[3]))
            return -1;
        return 0;
    case J_Q_DEL: {
        queue_t *q = map_get(&vh->queues, name);
        if (q)
            queue_delete(q);
        return 0;
    }
    case J_BIND_ADD:
    case J_BIND_DEL: {
        if (f->n != 6 || f->len[2] != 1 || fstr(f, 3, other) || fstr(f, 4, rk))
            return -1;
        exchange_t *src = map_get(&vh->exchanges, name);
        void *dest = f->p[2][0] ? (void *)map_get(&vh->queues, other)
                                : (void *)map_get(&vh->exchanges, other);
        if (!src || !dest)
            return 0; /* one end was deleted later in the journal */
        if (kind == J_BIND_ADD)
            return binding_add(src, f->p[2][0], dest, rk, f->p[5], f->len[5]) ? -1 : 0;
        binding_remove(src, f->p[2][0], dest, rk, f->p[5], f->len[5]);
        return 0;
    }
    case J_ENQ: {
        if (f->n != 7 || f->len[2] != 8 || f->len[3] > 255 || f->len[4] > 255 ||
            fl_amqp_props_decode(f->p[5], f->len[5], &(fl_amqp_props_t){0}))
            return -1;
        queue_t *q = map_get(&vh->queues, name);
        if (!q)
            return 0;
        msg_t *m = msg_new((const char *)f->p[3], f->len[3], (const char *)f->p[4], f->len[4],
                           f->p[5], f->len[5], f->len[6]);
        if (!m)
            return -1;
        memcpy(msg_body(m), f->p[6], f->len[6]);
        m->id = be64(f->p[2]);
        if (m->id > b->next_msg_id)
            b->next_msg_id = m->id;
        int rc = queue_recover_msg(q, m);
        msg_unref(m);
        return rc ? -1 : 0;
    }
    case J_DEQ: {
        if (f->n != 3 || f->len[2] != 8)
            return -1;
        queue_t *q = map_get(&vh->queues, name);
        if (q)
            queue_forget_msg(q, be64(f->p[2]));
        return 0;
    }
    default:
        return -1;
    }
}

static int replay(broker_t *b, const uint8_t *p, size_t len)
{
    size_t off = 0;
    while (off < len) {
        if (len - off < 5)
            return 0; /* a record cut short by a crash */
        int kind = p[off];
        uint32_t n = (uint32_t)p[off + 1] << 24 | (uint32_t)p[off + 2] << 16 |
                     (uint32_t)p[off + 3] << 8 | p[off + 4];
        if (len - off - 5 < n)
            return 0;
        fields_t f;
        if (parse_fields(p + off + 5, n, &f) || replay_one(b, kind, &f))
            return FL_EMALFORMED;
        off += 5 + (size_t)n;
    }
    return 0;
}

/* The whole durable state as records, for the compacted journal. */
static void snapshot(broker_t *b)
{
    journal_t *j = b->journal;
    for (size_t v = 0; v < b->nvhosts; v++) {
        vhost_t *vh = b->vhosts[v];
        size_t it = 0;
        exchange_t *x;
        queue_t *q;
        while ((x = map_next(&vh->exchanges, &it)))
            journal_exchange(b, x, 1);
        it = 0;
        while ((q = map_next(&vh->queues, &it))) {
            journal_queue(b, q, 1);
            msg_t *m;
            for (size_t i = 0; (m = queue_msg_at(q, i)); i++)
                journal_enqueue(b, q, m);
        }
        it = 0;
        while ((x = map_next(&vh->exchanges, &it)))
            for (size_t i = 0; i < x->nbinds; i++)
                journal_binding(b, x, &x->binds[i], 1);
    }
    (void)j;
}

int journal_open(broker_t *b, const char *dir)
{
    journal_t *j = calloc(1, sizeof *j);
    if (!j)
        return FL_ENOMEM;
    j->fd = -1;
    size_t n = strlen(dir) + 32;
    j->path = malloc(n);
    if (!j->path) {
        free(j);
        return FL_ENOMEM;
    }
    snprintf(j->path, n, "%s/amqp-journal", dir);
    mkdir(dir, 0755);
    int rc = 0;
    fl_buf_t old = FL_BUF_INIT;
    int fd = open(j->path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        char chunk[65536];
        ssize_t r;
        while ((r = read(fd, chunk, sizeof chunk)) > 0)
            if (fl_buf_append(&old, chunk, (size_t)r)) {
                rc = FL_ENOMEM;
                break;
            }
        close(fd);
    } else if (errno != ENOENT) {
        rc = FL_EIO;
    }
    b->journal = j;
    j->replaying = 1;
    if (!rc && old.len)
        rc = replay(b, (const uint8_t *)old.data, old.len);
    j->replaying = 0;
    fl_buf_free(&old);
    if (rc)
        goto fail;
    /* compacted: written aside, then renamed over the old one */
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.new", j->path);
    snapshot(b);
    j->fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (j->fd < 0) {
        rc = FL_EIO;
        goto fail;
    }
    journal_sync(b);
    if (rename(tmp, j->path) < 0) {
        rc = FL_EIO;
        goto fail;
    }
    int fd2 = open(j->path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd2 < 0) {
        rc = FL_EIO;
        goto fail;
    }
    close(j->fd);
    j->fd = fd2;
    broker_event(b, "journal %s opened", j->path);
    return 0;
fail:
    broker_event(b, "journal %s: %s", j->path, fl_strerror(rc));
    journal_close(b);
    return rc;
}

void journal_close(broker_t *b)
{
    journal_t *j = b->journal;
    if (!j)
        return;
    journal_sync(b);
    if (j->fd >= 0)
        close(j->fd);
    fl_buf_free(&j->pending);
    free(j->path);
    free(j);
    b->journal = NULL;
}

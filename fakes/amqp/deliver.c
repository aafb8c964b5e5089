/* Getting messages to consumers and back: consumers take a queue's messages round-robin
 * within their prefetch (per consumer, or per channel with global qos) while their
 * connection keeps up; delivered messages wait on their channel, in delivery-tag order, for
 * an ack, nack or reject, and return to their queue (redelivered) when their channel or
 * connection closes. The duplicate and drop faults act here, on deliveries to consumers.
 *
 * Work is batched: whatever changes a queue marks it dirty, and settle() dispatches the dirty
 * queues and flushes the connections once the callback that changed them is done. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakes/amqp/internal.h"
#include "lib/err.h"

static int consumer_can_take(const consumer_t *c)
{
    const channel_t *ch = c->ch;
    const conn_t *cn = ch->c;
    if (ch->state != CH_OPEN || !ch->flow || cn->state != C_OPENED || cn->out.len >= OUT_HIGH_WATER)
        return 0;
    if (c->no_ack)
        return 1;
    if (c->prefetch && c->unacked >= c->prefetch)
        return 0;
    return !ch->prefetch_channel || ch->unacked_count < ch->prefetch_channel;
}

static int unacked_push(channel_t *ch, const unacked_t *u)
{
    if (ch->un_head + ch->un_len == ch->un_cap) {
        if (ch->un_head > ch->un_cap / 2) {
            memmove(ch->un, ch->un + ch->un_head, ch->un_len * sizeof *ch->un);
            ch->un_head = 0;
        } else {
            size_t cap = ch->un_cap ? ch->un_cap * 2 : 64;
            unacked_t *v = realloc(ch->un, cap * sizeof *v);
            if (!v)
                return FL_ENOMEM;
            ch->un = v;
            ch->un_cap = cap;
        }
    }
    ch->un[ch->un_head + ch->un_len++] = *u;
    return 0;
}

/* Delivers e from q to c. Takes over e's reference. */
static void deliver_one(consumer_t *c, queue_t *q, qent_t *e, int duplicate)
{
    channel_t *ch = c->ch;
    broker_t *b = q->vh->b;
    if (!duplicate && b->drop_rate > 0 && fl_rng_double(&b->rng) < b->drop_rate) {
        q->st.dropped++;
        journal_dequeue(b, q, e->m);
        msg_unref(e->m);
        return;
    }
    uint64_t tag = ++ch->next_tag;
    send_content(ch->c, ch->id, e->m, 60, c->tag, tag, e->redelivered, 0);
    q->st.delivered++;
    if (e->redelivered)
        q->st.redelivered++;
    int dup = !duplicate && b->dup_rate > 0 && fl_rng_double(&b->rng) < b->dup_rate;
    qent_t copy = *e;
    if (c->no_ack) {
        if (!dup)
            journal_dequeue(b, q, e->m);
        msg_unref(e->m);
    } else {
        unacked_t u = {tag, q, c, *e};
        if (unacked_push(ch, &u)) {
            /* cannot track it: back to the queue, as if the channel had closed */
            queue_requeue(q, e);
        } else {
            q->unacked++;
            c->unacked++;
            ch->unacked_count++;
        }
    }
    if (dup) {
        q->st.duplicated++;
        msg_ref(copy.m);
        copy.redelivered = 1;
        deliver_one(c, q, &copy, 1);
    }
}

void dispatch(queue_t *q)
{
    while (q->nconsumers && q->ready.len && !q->deleted) {
        consumer_t *c = NULL;
        size_t n = q->nconsumers;
        for (size_t i = 0; i < n; i++) {
            consumer_t *cand = q->consumers[(q->rr + i) % n];
            if (consumer_can_take(cand)) {
                c = cand;
                q->rr = (q->rr + i + 1) % n;
                break;
            }
        }
        qent_t e;
        if (!c || !queue_take(q, &e))
            break;
        deliver_one(c, q, &e, 0);
    }
    queue_arm_timer(q);
}

void settle(broker_t *b)
{
    if (b->in_settle)
        return;
    b->in_settle = 1;
    /* a flush can kick queues again (a connection back under its high-water mark) */
    while (b->dirty || b->flush) {
        while (b->dirty) {
            queue_t *q = b->dirty;
            b->dirty = q->dirty_next;
            q->dirty = 0;
            if (q->deleted)
                queue_maybe_free(q);
            else
                dispatch(q);
        }
        while (b->flush) {
            conn_t *c = b->flush;
            b->flush = c->flush_next;
            c->flush_queued = 0;
            conn_flush(c);
        }
    }
    journal_sync(b);
    b->in_settle = 0;
}

int consumer_add(channel_t *ch, queue_t *q, const char *tag, int no_ack, int exclusive,
                 consumer_t **out)
{
    consumer_t *c = calloc(1, sizeof *c);
    if (!c || !(c->tag = amqp_strdup(tag)))
        goto fail;
    if (q->nconsumers == q->capconsumers) {
        size_t cap = q->capconsumers ? q->capconsumers * 2 : 4;
        consumer_t **v = realloc(q->consumers, cap * sizeof *v);
        if (!v)
            goto fail;
        q->consumers = v;
        q->capconsumers = cap;
    }
    if (ch->nconsumers == ch->capconsumers) {
        size_t cap = ch->capconsumers ? ch->capconsumers * 2 : 4;
        consumer_t **v = realloc(ch->consumers, cap * sizeof *v);
        if (!v)
            goto fail;
        ch->consumers = v;
        ch->capconsumers = cap;
    }
    c->ch = ch;
    c->q = q;
    c->no_ack = (uint8_t)no_ack;
    c->exclusive = (uint8_t)exclusive;
    c->prefetch = ch->prefetch_consumer;
    q->consumers[q->nconsumers++] = c;
    ch->consumers[ch->nconsumers++] = c;
    q->had_consumer = 1;
    q->last_used = uv_hrtime();
    queue_kick(q);
    *out = c;
    return 0;
fail:
    if (c)
        free(c->tag);
    free(c);
    return FL_ENOMEM;
}

static void remove_ptr(consumer_t **v, size_t *n, consumer_t *c)
{
    for (size_t i = 0; i < *n; i++) {
        if (v[i] == c) {
            memmove(v + i, v + i + 1, (*n - i - 1) * sizeof *v);
            (*n)--;
            return;
        }
    }
}

void consumer_remove(consumer_t *c, int notify)
{
    channel_t *ch = c->ch;
    queue_t *q = c->q;
    remove_ptr(q->consumers, &q->nconsumers, c);
    remove_ptr(ch->consumers, &ch->nconsumers, c);
    if (q->rr >= q->nconsumers)
        q->rr = 0;
    for (size_t i = 0; i < ch->un_len; i++)
        if (ch->un[ch->un_head + i].c == c)
            ch->un[ch->un_head + i].c = NULL;
    if (notify && ch->c->cap_cancel_notify && ch->state == CH_OPEN && ch->c->state == C_OPENED) {
        fl_amqp_method_frame(conn_out(ch->c), ch->id, 60, 30, c->tag, 1);
        conn_flush_later(ch->c);
    }
    free(c->tag);
    free(c);
    q->last_used = uv_hrtime();
    if (q->auto_delete && !q->nconsumers && q->had_consumer && !q->deleted)
        queue_delete(q);
    else
        queue_arm_timer(q);
}

/* Index (from un_head) of the entry with tag, or -1. Tags ascend along the list. */
static long unacked_find(const channel_t *ch, uint64_t tag)
{
    size_t lo = 0, hi = ch->un_len;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        uint64_t t = ch->un[ch->un_head + mid].tag;
        if (t == tag)
            return ch->un[ch->un_head + mid].e.m ? (long)mid : -1;
        if (t < tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* Drops acknowledged entries from the front of the list. */
static void unacked_compact(channel_t *ch)
{
    while (ch->un_len && !ch->un[ch->un_head].e.m) {
        ch->un_head++;
        ch->un_len--;
    }
    if (!ch->un_len)
        ch->un_head = 0;
}

enum { SETTLE_ACK, SETTLE_REQUEUE, SETTLE_DEAD };

/* Takes one entry off the channel: acknowledged, requeued or dead-lettered. */
static void settle_entry(channel_t *ch, unacked_t *u, int how)
{
    queue_t *q = u->q;
    broker_t *b = q->vh->b;
    qent_t e = u->e;
    u->e.m = NULL;
    q->unacked--;
    ch->unacked_count--;
    if (u->c)
        u->c->unacked--;
    if (how == SETTLE_ACK) {
        q->st.acked++;
        journal_dequeue(b, q, e.m);
        msg_unref(e.m);
    } else if (how == SETTLE_REQUEUE) {
        queue_requeue(q, &e);
    } else {
        queue_dead_letter(q, &e, "rejected");
    }
    if (q->deleted)
        queue_maybe_free(q);
    else
        queue_kick(q);
    /* the consumer's queue may now send more; under a channel-wide prefetch (global qos), so
     * may the queues of the channel's other consumers */
    if (ch->prefetch_channel)
        for (size_t i = 0; i < ch->nconsumers; i++)
            queue_kick(ch->consumers[i]->q);
}

static int settle_tags(channel_t *ch, uint64_t tag, int multiple, int how, char *text, size_t cap)
{
    if (multiple) {
        if (tag != 0 && unacked_find(ch, tag) < 0 && (tag > ch->next_tag || tag == 0)) {
            snprintf(text, cap, "PRECONDITION_FAILED - unknown delivery tag %llu",
                     (unsigned long long)tag);
            return FL_AMQP_PRECONDITION_FAILED;
        }
        int any = 0;
        for (size_t i = 0; i < ch->un_len; i++) {
            unacked_t *u = &ch->un[ch->un_head + i];
            if (tag != 0 && u->tag > tag)
                break;
            if (u->e.m) {
                settle_entry(ch, u, how);
                any = 1;
            }
        }
        if (!any && tag != 0) {
            snprintf(text, cap, "PRECONDITION_FAILED - unknown delivery tag %llu",
                     (unsigned long long)tag);
            return FL_AMQP_PRECONDITION_FAILED;
        }
    } else {
        long i = unacked_find(ch, tag);
        if (i < 0) {
            snprintf(text, cap, "PRECONDITION_FAILED - unknown delivery tag %llu",
                     (unsigned long long)tag);
            return FL_AMQP_PRECONDITION_FAILED;
        }
        settle_entry(ch, &ch->un[ch->un_head + (size_t)i], how);
    }
    unacked_compact(ch);
    return 0;
}

int channel_ack(channel_t *ch, uint64_t tag, int multiple, char *text, size_t cap)
{
    return settle_tags(ch, tag, multiple, SETTLE_ACK, text, cap);
}

int channel_nack(channel_t *ch, uint64_t tag, int multiple, int requeue, char *text, size_t cap)
{
    return settle_tags(ch, tag, multiple, requeue ? SETTLE_REQUEUE : SETTLE_DEAD, text, cap);
}

void channel_requeue_all(channel_t *ch)
{
    for (size_t i = 0; i < ch->un_len; i++) {
        unacked_t *u = &ch->un[ch->un_head + i];
        if (u->e.m)
            settle_entry(ch, u, SETTLE_REQUEUE);
    }
    ch->un_len = 0;
    ch->un_head = 0;
}

void channel_recover(channel_t *ch, int requeue)
{
    (void)requeue;
    channel_requeue_all(ch);
}

int channel_get(channel_t *ch, queue_t *q, int no_ack)
{
    qent_t e;
    q->last_used = uv_hrtime();
    queue_arm_timer(q);
    if (!queue_take(q, &e))
        return 0;
    broker_t *b = q->vh->b;
    uint64_t tag = ++ch->next_tag;
    send_content(ch->c, ch->id, e.m, 71, NULL, tag, e.redelivered, (uint32_t)q->ready.len);
    q->st.delivered++;
    if (e.redelivered)
        q->st.redelivered++;
    if (no_ack) {
        journal_dequeue(b, q, e.m);
        msg_unref(e.m);
        return 1;
    }
    unacked_t u = {tag, q, NULL, e};
    if (unacked_push(ch, &u)) {
        queue_requeue(q, &e);
        return 1;
    }
    q->unacked++;
    ch->unacked_count++;
    return 1;
}

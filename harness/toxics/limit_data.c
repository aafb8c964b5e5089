/* limit_data {bytes}: passes the first bytes bytes of this direction, then closes the
 * connection (after what was passed is written); anything beyond is dropped. */
#include "harness/toxic.h"

typedef struct {
    uint64_t passed;
    int closed;
} limit_t;

static void data(fl_stage_t *s, fl_chunk_t *c)
{
    limit_t *st = FL_STAGE_STATE(s, limit_t);
    uint64_t limit = (uint64_t)s->toxic->p[0];
    size_t n = c->len - c->off;
    if (st->closed) {
        fl_stage_drop(s, c);
        return;
    }
    if (st->passed + n <= limit) {
        st->passed += n;
        fl_stage_emit(s, c);
        if (st->passed < limit)
            return;
    } else {
        size_t keep = (size_t)(limit - st->passed);
        if (keep) {
            fl_chunk_t *head = fl_chunk_split(c, keep);
            if (head)
                fl_stage_emit(s, head);
        }
        st->passed = limit;
        s->toxic->stats.chunks++;
        fl_stage_drop(s, c);
    }
    st->closed = 1;
    fl_stage_close(s);
}

static void start(fl_stage_t *s)
{
    if (s->toxic->p[0] == 0) { /* nothing may pass: close at once */
        FL_STAGE_STATE(s, limit_t)->closed = 1;
        fl_stage_close(s);
    }
}

const fl_toxic_type_t fl_toxic_limit_data = {
    .name = "limit_data",
    .doc = "closes the connection once bytes bytes have passed",
    .params = {{"bytes", 0, 1e15, 0, 1, "bytes allowed through before the close"}},
    .state_size = sizeof(limit_t),
    .start = start,
    .data = data,
};

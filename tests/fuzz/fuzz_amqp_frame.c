/* Fuzzes the broker's frame decoders (fakes/amqp/codec.c) the way a connection uses them: the
 * input (after one byte choosing frame_max) is split into frames, and each frame's payload is
 * decoded as what its type says: method arguments or a content header with its properties.
 * Nothing may read outside the input (copied to a buffer of its exact size for ASan), and
 * what the decoders accept must be self-consistent: a frame's bytes add up, a prefix of a
 * frame is "need more", decoded arguments lie inside their payload, and accepted properties
 * encode back to the very same bytes. A failed check aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakes/amqp/codec.h"
#include "lib/buf.h"
#include "lib/err.h"

static void fail(const char *what)
{
    fprintf(stderr, "amqp frame fuzz: %s\n", what);
    abort();
}

static void inside(const uint8_t *p, uint32_t len, const uint8_t *base, size_t size)
{
    if (len && (p < base || p + len > base + size))
        fail("a decoded range lies outside its payload");
}

static void check_method(const fl_amqp_frame_t *f)
{
    fl_amqp_method_t m;
    int rc = fl_amqp_method_decode(f->payload, f->size, &m);
    if (rc != 0 && rc != -FL_AMQP_SYNTAX_ERROR && rc != -FL_AMQP_COMMAND_INVALID)
        fail("method decode: unexpected return");
    if (rc == -FL_AMQP_COMMAND_INVALID && fl_amqp_method_find(m.class_id, m.method_id))
        fail("a known method called unknown");
    if (rc != 0)
        return;
    if (!m.spec || m.nargs != (int)strlen(m.spec->sig) || m.nargs > FL_AMQP_MAX_ARGS)
        fail("method decode: bad argument count");
    for (int i = 0; i < m.nargs; i++) {
        char t = m.spec->sig[i];
        if (t == 'S' || t == 'X' || t == 'T')
            inside(m.args[i].p, m.args[i].len, f->payload, f->size);
        if (t == 'S' && m.args[i].len > 255)
            fail("a short string over 255 bytes");
        if (t == 'b' && m.args[i].u > 1)
            fail("a bit that is not 0 or 1");
        if (t == 'T' && fl_amqp_table_check(m.args[i].p, m.args[i].len) != 0)
            fail("an accepted table argument does not check");
    }
}

static void check_header(const fl_amqp_frame_t *f)
{
    uint16_t cls;
    uint64_t size;
    fl_amqp_props_t pr;
    size_t off;
    int rc = fl_amqp_header_decode(f->payload, f->size, &cls, &size, &pr, &off);
    if (rc != 0 && rc != -FL_AMQP_SYNTAX_ERROR && rc != -FL_AMQP_FRAME_ERROR)
        fail("header decode: unexpected return");
    if (rc != 0)
        return;
    if (off != 12 || off > f->size)
        fail("properties do not start after class, weight and size");
    for (int i = 0; i < FL_AMQP_P_COUNT; i++)
        if (FL_AMQP_HAS(&pr, i))
            inside(pr.v[i].p, pr.v[i].len, f->payload, f->size);
    /* the property list is canonical: encoding what was decoded gives the same bytes */
    fl_buf_t b = FL_BUF_INIT;
    if (fl_amqp_props_encode(&b, &pr) != 0)
        fail("accepted properties do not encode");
    if (b.len != f->size - off || memcmp(b.data, f->payload + off, b.len) != 0)
        fail("properties do not encode back to their bytes");
    fl_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t maxes[] = {0, FL_AMQP_FRAME_MIN, 131072, 64};
    if (size == 0)
        return 0;
    uint32_t frame_max = maxes[data[0] & 3];
    size--;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data + 1, size);
    int h = fl_amqp_header_check(buf, size);
    if (h != 8 && h != FL_EAGAIN && h != FL_EMALFORMED)
        fail("header check: unexpected return");
    size_t off = 0;
    while (off < size) {
        fl_amqp_frame_t f;
        long n = fl_amqp_frame_parse(buf + off, size - off, frame_max, &f);
        if (n == FL_EAGAIN || n == -FL_AMQP_FRAME_ERROR)
            break;
        if (n <= 0 || (size_t)n > size - off || (size_t)n != (size_t)f.size + 8 ||
            f.payload != buf + off + 7 || (frame_max && (uint32_t)n > frame_max))
            fail("frame parse: inconsistent frame");
        fl_amqp_frame_t g;
        if (fl_amqp_frame_parse(buf + off, (size_t)n - 1, frame_max, &g) != FL_EAGAIN)
            fail("a frame's prefix is not 'need more'");
        if (f.type == FL_AMQP_FRAME_METHOD)
            check_method(&f);
        else if (f.type == FL_AMQP_FRAME_HEADER)
            check_header(&f);
        else if (f.type != FL_AMQP_FRAME_BODY && f.type != FL_AMQP_FRAME_HEARTBEAT)
            fail("a frame of an unknown type accepted");
        off += (size_t)n;
    }
    free(buf);
    return 0;
}

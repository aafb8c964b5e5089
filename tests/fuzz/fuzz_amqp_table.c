/* Fuzzes the field-table decoders (fakes/amqp/codec.c): a table the check accepts must walk
 * to its end without an error, every nested table and array inside it too (the check bounds
 * their depth, so this walk's recursion is bounded), every name must be found again by
 * table_get, and every value must equal itself. A table the check refuses must still walk
 * safely up to the point where it breaks. The input is copied to a buffer of its exact size
 * so that ASan sees any read past it. A failed check aborts. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakes/amqp/codec.h"
#include "lib/err.h"

static void fail(const char *what)
{
    fprintf(stderr, "amqp table fuzz: %s\n", what);
    abort();
}

static void walk_value(const fl_amqp_value_t *v, const uint8_t *base, size_t size, int depth);

static void walk_table(const uint8_t *p, size_t len, int depth)
{
    if (depth > 17)
        fail("a checked table nests deeper than the limit");
    size_t off = 0;
    const uint8_t *name;
    uint8_t nlen;
    fl_amqp_value_t v;
    int rc;
    while ((rc = fl_amqp_table_next(p, len, &off, &name, &nlen, &v)) == 1) {
        if (off > len || name < p || name + nlen > p + len)
            fail("a field outside its table");
        walk_value(&v, p, len, depth);
        /* the first field of that name is found again (names may repeat) */
        char key[256];
        memcpy(key, name, nlen);
        key[nlen] = 0;
        fl_amqp_value_t g;
        if (memchr(key, 0, nlen) == NULL && !fl_amqp_table_get(p, len, key, &g))
            fail("table_get misses a name the walk saw");
    }
    if (rc != 0 || off != len)
        fail("a checked table does not walk to its end");
}

static void walk_array(const uint8_t *p, size_t len, int depth)
{
    size_t off = 0;
    fl_amqp_value_t v;
    int rc;
    while ((rc = fl_amqp_array_next(p, len, &off, &v)) == 1) {
        if (off > len)
            fail("an item outside its array");
        walk_value(&v, p, len, depth);
    }
    if (rc != 0 || off != len)
        fail("a checked array does not walk to its end");
}

static void walk_value(const fl_amqp_value_t *v, const uint8_t *base, size_t size, int depth)
{
    if (v->len && (v->p < base || v->p + v->len > base + size))
        fail("a value outside its table");
    int nan = (v->type == 'f' || v->type == 'd') && isnan(v->d);
    if (!nan && !fl_amqp_value_equal(v, v))
        fail("a value differs from itself");
    int64_t i;
    int is_int = fl_amqp_value_int(v, &i);
    if (is_int != (strchr("bBsuIilLT", v->type) != NULL) || (is_int && i != v->i))
        fail("value_int disagrees with the type");
    if (v->type == 'F')
        walk_table(v->p, v->len, depth + 1);
    else if (v->type == 'A')
        walk_array(v->p, v->len, depth + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    int rc = fl_amqp_table_check(buf, size);
    if (rc == 0) {
        walk_table(buf, size, 0);
    } else if (rc == FL_EMALFORMED) {
        /* walking a bad table stops at the break, without reading past the input */
        size_t off = 0;
        const uint8_t *name;
        uint8_t nlen;
        fl_amqp_value_t v;
        int n = 0;
        while (fl_amqp_table_next(buf, size, &off, &name, &nlen, &v) == 1 && n++ < 100000)
            if (off > size)
                fail("walked past the input");
        fl_amqp_table_get(buf, size, "x-match", &v);
    } else {
        fail("table check: unexpected return");
    }
    free(buf);
    return 0;
}

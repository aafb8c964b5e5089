/* Unit tests for the fake AMQP broker (fakes/amqp) through real sockets on 127.0.0.1: scripted
 * clients (amqpfx.h) on the broker's own loop perform the handshake, break the protocol on
 * purpose, route through every exchange type, consume with prefetch, ack/nack/reject,
 * dead-letter, confirm, use transactions, and watch each of amqp.h's faults and the journal
 * of a data directory. What they check is what RabbitMQ 3.10 answers. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "amqpfx.h"

/* ---- the handshake ---- */

START_TEST(handshake_plain)
{
    fx_t fx;
    fx_init(&fx, NULL);
    cl_t c;
    cl_connect(&fx, &c);
    cl_write(&c, fl_amqp_protocol_header, 8);
    fl_amqp_method_t m;
    cl_expect(&c, 0, 10, 10, &m);
    ck_assert_uint_eq(m.args[0].u, 0);
    ck_assert_uint_eq(m.args[1].u, 9);
    fl_amqp_value_t v, cap;
    ck_assert(fl_amqp_table_get(m.args[2].p, m.args[2].len, "product", &v));
    ck_assert(v.type == 'S' && v.len == 8 && memcmp(v.p, "RabbitMQ", 8) == 0);
    ck_assert(fl_amqp_table_get(m.args[2].p, m.args[2].len, "capabilities", &v));
    ck_assert_int_eq(v.type, 'F');
    static const char *caps[] = {"publisher_confirms", "exchange_exchange_bindings",
                                 "basic.nack",         "consumer_cancel_notify",
                                 "connection.blocked", "authentication_failure_close",
                                 "per_consumer_qos",   "direct_reply_to"};
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        ck_assert_msg(fl_amqp_table_get(v.p, v.len, caps[i], &cap), "%s", caps[i]);
        ck_assert(cap.type == 't' && cap.i == 1);
    }
    ck_assert(arg_is(&m.args[3], "AMQPLAIN PLAIN"));
    ck_assert(arg_is(&m.args[4], "en_US"));
    hs_t h = {0};
    cl_start_ok(&c, &h);
    cl_expect(&c, 0, 10, 30, &m);
    ck_assert_uint_eq(m.args[0].u, 2047);
    ck_assert_uint_eq(m.args[1].u, 131072);
    ck_assert_uint_eq(m.args[2].u, 60);
    SEND(&c, 0, 10, 31, 2047, (uint32_t)131072, 0);
    SEND(&c, 0, 10, 40, "/", "", 0);
    cl_expect(&c, 0, 10, 41, NULL);
    ck_assert_int_eq(fl_amqp_connections(fx.b), 1);
    /* the client closes: close-ok, then the socket */
    SEND(&c, 0, 10, 50, 200, "bye", 0, 0);
    cl_expect(&c, 0, 10, 51, NULL);
    cl_expect_eof(&c, WAIT_MS);
    cl_free(&c);
    fx_close(&fx);
}
END_TEST

static int no_connections(fx_t *fx, void *arg)
{
    (void)arg;
    return fl_amqp_connections(fx->b) == 0;
}

START_TEST(handshake_amqplain_and_config)
{
    fl_amqp_config_t cfg = {.user = "svc", .password = "s3cret", .vhosts = "/,shop"};
    fx_t fx;
    fx_init(&fx, &cfg);
    cl_t c;
    hs_t h = {.user = "svc", .password = "s3cret", .mechanism = "AMQPLAIN", .vhost = "shop"};
    cl_open(&fx, &c, &h);
    cl_channel(&c, 1);
    cl_declare(&c, 1, "in-shop");
    ck_assert_int_eq(fl_amqp_queue_stats(fx.b, "shop", "in-shop", &(fl_amqp_queue_stats_t){0}), 0);
    ck_assert_int_eq(fl_amqp_queue_stats(fx.b, "/", "in-shop", &(fl_amqp_queue_stats_t){0}),
                     FL_ENOTFOUND);
    ck_assert_int_eq(fl_amqp_queue_stats(fx.b, "nope", "in-shop", &(fl_amqp_queue_stats_t){0}),
                     FL_ENOTFOUND);
    cl_free(&c);
    ck_assert(fx_until(&fx, no_connections, NULL, WAIT_MS));
    /* guest is not a user of this broker */
    cl_connect(&fx, &c);
    hs_t guest = {.cap_auth_close = 1};
    cl_write(&c, fl_amqp_protocol_header, 8);
    cl_expect(&c, 0, 10, 10, NULL);
    cl_start_ok(&c, &guest);
    cl_expect_conn_close(&c, 403, "ACCESS_REFUSED - Login was refused");
    cl_free(&c);
    fx_close(&fx);
}
END_TEST

START_TEST(bad_credentials)
{
    fx_t fx;
    fx_init(&fx, NULL);
    /* without authentication_failure_close: RabbitMQ closes the socket, saying nothing */
    cl_t c;
    cl_connect(&fx, &c);
    cl_write(&c, fl_amqp_protocol_header, 8);
    cl_expect(&c, 0, 10, 10, NULL);
    hs_t h = {.password = "wrong"};
    cl_start_ok(&c, &h);
    cl_expect_eof(&c, WAIT_MS);
    cl_free(&c);
    /* with it: connection.close 403, for PLAIN and AMQPLAIN alike */
    const char *mechs[] = {"PLAIN", "AMQPLAIN"};
    for (int i = 0; i < 2; i++) {
        cl_connect(&fx, &c);
        cl_write(&c, fl_amqp_protocol_header, 8);
        cl_expect(&c, 0, 10, 10, NULL);
        hs_t a = {.user = "nobody", .mechanism = mechs[i], .cap_auth_close = 1};
        cl_start_ok(&c, &a);
        char text[200];
        snprintf(text, sizeof text,
                 "ACCESS_REFUSED - Login was refused using authentication mechanism %s", mechs[i]);
        cl_expect_conn_close(&c, 403, text);
        cl_free(&c);
    }
    /* an unknown mechanism is not a refused login: closed without a word, as RabbitMQ does */
    cl_connect(&fx, &c);
    cl_write(&c, fl_amqp_protocol_header, 8);
    cl_expect(&c, 0, 10, 10, NULL);
    hs_t x = {.mechanism = "EXTERNAL", .cap_auth_close = 1};
    cl_start_ok(&c, &x);
    cl_expect_eof(&c, WAIT_MS);
    cl_free(&c);
    ck_assert(fx_saw(&fx, "unknown authentication mechanism 'EXTERNAL'"));
    ck_assert(fx_saw(&fx, "user 'nobody' refused"));
    fx_close(&fx);
}
END_TEST

START_TEST(bad_vhost)
{
    fx_t fx;
    fx_init(&fx, NULL);
    cl_t c;
    cl_connect(&fx, &c);
    cl_write(&c, fl_amqp_protocol_header, 8);
    fl_amqp_method_t m;
    cl_expect(&c, 0, 10, 10, NULL);
    cl_start_ok(&c, &(hs_t){0});
    cl_expect(&c, 0, 10, 30, &m);
    SEND(&c, 0, 10, 31, 2047, (uint32_t)131072, 0);
    SEND(&c, 0, 10, 40, "nope", "", 0);
    cl_expect_conn_close(&c, 530, "NOT_ALLOWED - vhost nope not found");
    cl_free(&c);
    fx_close(&fx);
}
END_TEST

/* Sends bytes instead of the protocol header: the broker answers with its own, then closes. */
static void expect_header_reply(fx_t *fx, const void *bytes, size_t len)
{
    cl_t c;
    cl_connect(fx, &c);
    cl_write(&c, bytes, len);
    uint64_t end = uv_hrtime() + WAIT_MS * MS;
    while (!c.eof && uv_hrtime() < end && !fx->fired)
        fx_spin(fx);
    ck_assert_msg(c.eof, "connection not closed");
    ck_assert_uint_eq(c.in.len, 8);
    ck_assert_mem_eq(c.in.data, "AMQP\0\0\x09\x01", 8);
    cl_free(&c);
}

START_TEST(wrong_protocol_header)
{
    fx_t fx;
    fx_init(&fx, NULL);
    expect_header_reply(&fx, "AMQP\0\0\x09\x00", 8);
    expect_header_reply(&fx, "AMQP\x01\x01\x00\x0a", 8);
    expect_header_reply(&fx, "AMQP\0\x01\0\0", 8);
    expect_header_reply(&fx, "GET / HTTP/1.1\r\n\r\n", 18);
    expect_header_reply(&fx, "AMQ", 3 + 1); /* "AMQ\0" differs at its 4th byte */
    ck_assert(fx_saw(&fx, "bad protocol header"));
    fx_close(&fx);
}
END_TEST

/* ---- framing errors ---- */

static void open_channel1(fx_t *fx, cl_t *c)
{
    cl_open(fx, c, NULL);
    cl_channel(c, 1);
}

START_TEST(frame_errors)
{
    fx_t fx;
    fx_init(&fx, NULL);
    cl_t bystander, c;
    open_channel1(&fx, &bystander);
    /* a frame whose frame-end octet is wrong */
    open_channel1(&fx, &c);
    fl_amqp_method_frame(&c.out, 2, 20, 10, "");
    c.out.data[c.out.len - 1] = 0;
    cl_flush(&c);
    cl_expect_conn_close(&c, 501, "FRAME_ERROR");
    cl_free(&c);
    /* a frame announced above frame_max: refused before its payload is sent */
    open_channel1(&fx, &c);
    uint8_t big[7] = {3, 0, 1, 0, 0x02, 0, 0};
    cl_write(&c, big, sizeof big);
    cl_expect_conn_close(&c, 501, "FRAME_ERROR");
    cl_free(&c);
    /* 2 GiB, during the handshake: no frame back (not tuned yet), just the socket closed */
    cl_connect(&fx, &c);
    cl_write(&c, fl_amqp_protocol_header, 8);
    cl_expect(&c, 0, 10, 10, NULL);
    uint8_t huge[7] = {1, 0, 0, 0x80, 0, 0, 0};
    cl_write(&c, huge, sizeof huge);
    cl_expect_eof(&c, WAIT_MS);
    cl_free(&c);
    /* an unknown frame type */
    open_channel1(&fx, &c);
    uint8_t odd[8] = {4, 0, 1, 0, 0, 0, 0, FL_AMQP_FRAME_END};
    cl_write(&c, odd, sizeof odd);
    cl_expect_conn_close(&c, 501, "FRAME_ERROR");
    cl_free(&c);
    /* a body frame above the negotiated frame_max (4096 here) */
    cl_connect(&fx, &c);
    cl_handshake(&c, &(hs_t){.frame_max = 4096});
    cl_channel(&c, 1);
    static char body[5000];
    fl_amqp_method_frame(&c.out, 1, 60, 40, 0, "", "q", 0, 0);
    fl_amqp_header_frame(&c.out, 1, sizeof body, (const uint8_t *)"\0\0", 2);
    fl_amqp_body_frames(&c.out, 1, (uint8_t *)body, sizeof body, 8192);
    cl_flush(&c);
    cl_expect_conn_close(&c, 501, "FRAME_ERROR");
    cl_free(&c);
    /* the other connection did not notice */
    cl_sync(&bystander, 1);
    cl_free(&bystander);
    fx_close(&fx);
}
END_TEST

START_TEST(unexpected_frame_505)
{
    fx_t fx;
    fx_init(&fx, NULL);
    cl_t c;
    /* a method where the content header belongs */
    open_channel1(&fx, &c);
    SEND(&c, 1, 60, 40, 0, "", "q", 0, 0);
    SEND(&c, 1, 60, 10, (uint32_t)0, 1, 0);
    cl_expect_conn_close(&c, 505, "UNEXPECTED_FRAME");
    cl_free(&c);
    /* a body with no publish before it */
    open_channel1(&fx, &c);
    fl_amqp_body_frames(&c.out, 1, (const uint8_t *)"x", 1, 4096);
    cl_flush(&c);
    cl_expect_conn_close(&c, 505, "UNEXPECTED_FRAME");
    cl_free(&c);
    /* a body that runs past what its header announced */
    open_channel1(&fx, &c);
    fl_amqp_method_frame(&c.out, 1, 60, 40, 0, "", "q", 0, 0);
    fl_amqp_header_frame(&c.out, 1, 2, (const uint8_t *)"\0\0", 2);
    fl_amqp_body_frames(&c.out, 1, (const uint8_t *)"xyz", 3, 4096);
    cl_flush(&c);
    cl_expect_conn_close(&c, 501, "FRAME_ERROR");
    cl_free(&c);
    fx_close(&fx);
}
END_TEST

START_TEST(channel_not_open_504)
{
    fx_t fx;
    fx_init(&fx, NULL);
    cl_t c;
    open_channel1(&fx, &c);
    SEND(&c, 3, 50, 10, 0, "q", 0, 0, 0, 0, 0, NULL, (size_t)0);
    cl_expect_conn_close(&c, 504, "CHANNEL_ERROR - expected 'channel.open'");
    cl_free(&c);
    /* a second channel.open on an open channel */
    open_channel1(&fx, &c);
    SEND(&c, 1, 20, 10, "");
    cl_expect_conn_close(&c, 504, "second 'channel.open'");
    cl_free(&c);
    fx_close(&fx);
}
END_TEST

/* ---- routing ---- */

static uint64_t ready(fx_t *fx, const char *q)
{
    return fx_stats(fx, q).ready;
}

START_TEST(routing_every_exchange_type)
{
    fx_t fx;
    fx_init(&fx, NULL);
    cl_t c;
    open_channel1(&fx, &c);
    /* the default exchange, by queue name */
    cl_declare(&c, 1, "d1");
    cl_publish(&c, 1, "", "d1", 0, "m");
    cl_publish(&c, 1, "", "nope", 0, "m");
    /* direct */
    cl_declare(&c, 1, "dq");
    cl_bind(&c, 1, "dq", "amq.direct", "k1", NULL);
    cl_publish(&c, 1, "amq.direct", "k1", 0, "m");
    cl_publish(&c, 1, "amq.direct", "k2", 0, "m");
    /* fanout: every bound queue, whatever the key */
    cl_declare(&c, 1, "f1");
    cl_declare(&c, 1, "f2");
    cl_bind(&c, 1, "f1", "amq.fanout", "", NULL);
    cl_bind(&c, 1, "f2", "amq.fanout", "zzz", NULL);
    cl_publish(&c, 1, "amq.fanout", "any", 0, "m");
    /* topic */
    static const char *pat[] = {"a.*", "a.#", "#", "*.b.#"};
    for (int i = 0; i < 4; i++) {
        char q[8];
        snprintf(q, sizeof q, "t%d", i + 1);
        cl_declare(&c, 1, q);
        cl_bind(&c, 1, q, "amq.topic", pat[i], NULL);
    }
    static const char *keys[] = {"a.b", "a", "a.b.c", "x.b", ""};
    for (int i = 0; i < 5; i++)
        cl_publish(&c, 1, "amq.topic", keys[i], 0, "m");
    /* headers, x-match all and any */
    fl_buf_t all = FL_BUF_INIT, any = FL_BUF_INIT, hdr = FL_BUF_INIT, props = FL_BUF_INIT;
    fl_amqp_field_str(&all, "x-match", "all");
    fl_amqp_field_str(&any, "x-match", "any");
    fl_amqp_field_str(&all, "a", "1");
    fl_amqp_field_str(&any, "a", "1");
    fl_amqp_field_long(&all, "b", 2);
    fl_amqp_field_long(&any, "b", 2);
    cl_declare(&c, 1, "h_all");
    cl_declare(&c, 1, "h_any");
    cl_bind(&c, 1, "h_all", "amq.headers", "", &all);
    cl_bind(&c, 1, "h_any", "amq.headers", "", &any);
    fl_amqp_field_long(&hdr, "b", 2);
    fl_amqp_field_str(&hdr, "a", "1");
    mkprops(&props, 0, NULL, &hdr);
    cl_publish_props(&c, 1, "amq.headers", "", 0, &props, "m", 1);
    fl_buf_reset(&hdr);
    fl_buf_reset(&props);
    fl_amqp_field_str(&hdr, "a", "1");
    mkprops(&props, 0, NULL, &hdr);
    cl_publish_props(&c, 1, "amq.headers", "", 0, &props, "m", 1);
    fl_buf_reset(&hdr);
    fl_buf_reset(&props);
    fl_amqp_field_str(&hdr, "a", "2");
    mkprops(&props, 0, NULL, &hdr);
    cl_publish_props(&c, 1, "amq.headers", "", 0, &props, "m", 1);
    cl_publish(&c, 1, "amq.headers", "", 0, "no headers");
    /* exchange to exchange */
    SEND(&c, 1, 40, 10, 0, "e2", "fanout", 0, 0, 0, 0, 0, NULL, (size_t)0);
    cl_expect(&c, 1, 40, 11, NULL);
    SEND(&c, 1, 40, 30, 0, "e2", "amq.direct", "toe2", 0, NULL, (size_t)0);
    cl_expect(&c, 1, 40, 31, NULL);
    cl_declare(&c, 1, "eq");
    cl_bind(&c, 1, "eq", "e2", "", NULL);
    cl_publish(&c, 1, "amq.direct", "toe2", 0, "m");
    cl_sync(&c, 1);
    ck_assert_uint_eq(ready(&fx, "d1"), 1);
    ck_assert_uint_eq(ready(&fx, "dq"), 1);
    ck_assert_uint_eq(ready(&fx, "f1"), 1);
    ck_assert_uint_eq(ready(&fx, "f2"), 1);
    ck_assert_uint_eq(ready(&fx, "t1"), 1);
    ck_assert_uint_eq(ready(&fx, "t2"), 3);
    ck_assert_uint_eq(ready(&fx, "t3"), 5);
    ck_assert_uint_eq(ready(&fx, "t4"), 3);
    ck_assert_uint_eq(ready(&fx, "h_all"), 1);
    ck_assert_uint_eq(ready(&fx, "h_any"), 2);
    ck_assert_uint_eq(ready(&fx, "eq"), 1);
    /* what a consumer sees of a routed message */
    msg_in_t d = {0};
    ck_assert(cl_get(&c, 1, "dq", 1, &d));
    ck_assert_str_eq(d.exchange, "amq.direct");
    ck_assert_str_eq(d.rkey, "k1");
    ck_assert(body_is(&d, "m"));
    ck_assert_uint_eq(d.count, 0);
    ck_assert(!cl_get(&c, 1, "dq", 1, &d));
    /* deleting an exchange takes its bindings, both ways (ASan sees any left behind) */
    SEND(&c, 1, 40, 20, 0, "e2", 0, 0);
    cl_expect(&c, 1, 40, 21, NULL);
    cl_publish(&c, 1, "amq.direct", "toe2", 0, "m");
    cl_sync(&c, 1);
    ck_assert_uint_eq(ready(&fx, "eq"), 1);
    /* publishing to a missing exchange closes the channel with 404 */
    cl_publish(&c, 1, "missing", "k", 0, "m");
    cl_expect_ch_close(&c, 1, 404, "NOT_FOUND - no exchange 'missing' in vhost '/'");
    msg_free(&d);
    fl_buf_free(&all);
    fl_buf_free(&any);
    fl_buf_free(&hdr);
    fl_buf_free(&props);
    cl_free(&c);
    fx_close(&fx);
}
END_TEST

/* ---- consuming ---- */

static void consume(cl_t *c, uint16_t ch, const char *q, const char *tag, int no_ack)
{
    SEND(c, ch, 60, 20, 0, q, tag, 0, no_ack, 0, 0, NULL, (size_t)0);
    fl_amqp_method_t m;
    cl_expect(c, ch, 60, 21, &m);
    if (tag[0])
        ck_assert(arg_is(&m.args[0], tag));
    else
        ck_assert(m.args[0].len > 9 && memcmp(m.args[0].p, "amq.ctag-", 9) == 0);
}

/* A client that tuned frame_max down to 4096 gets every content split to fit: deliveries,
 * get-ok and basic.return (the client's parser refuses any frame above its frame_max). */
START_TEST(content_split_at_negotiated_frame_max)
{
    fx_t fx;
    fx_init(&fx, NULL);
    cl_t c;
    cl_connect(&fx, &c);
    cl_handshake(&c, &(hs_t){.frame_max = 4096});
    cl_channel(&c, 1);
    cl_declare(&c, 1, "big");
    static char body[10000];
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (char)('a' + i % 26);
    fl_buf_t props = FL_BUF_INIT;
    mkprops(&props, 1, NULL, NULL);
    cl_publish_props(&c, 1, "", "big", 0, &props, body, sizeof body);
    cl_publish_props(&c, 1, "", "big", 0, &props, body, sizeof body);
    msg_in_t d = {0};
    ck_assert(cl_get(&c, 1, "big", 1, &d));
    ck_assert_uint_eq(d.body.len, sizeof body);
    ck_assert_mem_eq(d.body.data, body, sizeof body);
    consume(&c, 1, "big", "c", 1);
    cl_deliver(&c, 1, &d);
    ck_assert_uint_eq(d.body.len, sizeof body);
    ck_assert_mem_eq(d.body.data, body, sizeof body);
    cl_publish_props(&c, 1, "amq.direct", "nowhere", 1, &props, body, sizeof body);
    cl_expect(&c, 1, 60, 50, NULL);
    cl_content(&c, 1, &d);
    ck_assert_mem_eq(d.body.data, body, sizeof body);
    msg_free(&d);
    fl_buf_free(&props);
    cl_free(&c);
    fx_close(&fx);
}
END_TEST

START_TEST(prefetch_and_ack_multiple)
{
    fx_t fx;
    fx_init(&fx, NULL);
    cl_t c;
    open_channel1(&fx, &c);
    cl_declare(&c, 1, "pf");
    for (int i = 0; i < 6; i++) {
        char body[8];
        snprintf(body, sizeof body, "m%d", i + 1);
        cl_publish(&c, 1, "", "pf", 0, body);
    }
    SEND(&c, 1, 60, 10, (uint32_t)0, 2, 0);
    cl_expect(&c, 1, 60, 11, NULL);
    consume(&c, 1, "pf", "", 0);
    msg_in_t d = {0};
    cl_deliver(&c, 1, &d);
    ck_assert_uint_eq(d.tag, 1);
    ck_assert(body_is(&d, "m1"));
    cl_deliver(&c, 1, &d);
    ck_assert_uint_eq(d.tag, 2);
    cl_quiet(&c, 150); /* two unacked: no more */
    fl_amqp_queue_stats_t st = fx_stats(&fx, "pf");
    ck_assert_uint_eq(st.unacked, 2);
    ck_assert_uint_eq(st.ready, 4);
    ck_assert_uint_eq(st.consumers, 1);
    SEND(&c, 1, 60, 80, (uint64_t)1, 0);
    cl_deliver(&c, 1, &d);
    ck_assert_uint_eq(d.tag, 3);
    ck_assert(body_is(&d, "m3"));
    cl_quiet(&c, 100);
    /* multiple: everything up to 3 */
    SEND(&c, 1, 60, 80, (uint64_t)3, 1);
    cl_deliver(&c, 1, &d);
    cl_deliver(&c, 1, &d);
    ck_assert_uint_eq(d.tag, 5);
    cl_quiet(&c, 100);
    st = fx_stats(&fx, "pf");
    ck_assert_uint_eq(st.acked, 3);
    ck_assert_uint_eq(st.unacked, 2);
    ck_assert_uint_eq(st.ready, 1);
    /* multiple with tag 0: every outstanding one */
    SEND(&c, 1, 60, 80, (uint64_t)0, 1);
    cl_deliver(&c, 1, &d);
    ck_assert(body_is(&d, "m6"));
    SEND(&c, 1, 60, 80, (uint64_t)6, 0);
    cl_sync(&c, 1);
    st = fx_stats(&fx, "pf");
    ck_assert_uint_eq(st.acked, 6);
    ck_assert_uint_eq(st.delivered, 6);
    ck_assert_uint_eq(st.unacked, 0);
    /* an unknown tag is a channel error */
    SEND(&c, 1, 60, 80, (uint64_t)99, 0);
    cl_expect_ch_close(&c, 1, 406, "PRECONDITION_FAILED - unknown delivery tag 99");
    msg_free(&d);
    cl_free(&c);
    fx_close(&fx);
}
END_TEST

START_TEST(global_prefetch)
{
    fx_t fx;
    fx_init(&fx, NULL);
    cl_t c;
    open_channel1(&fx, &c);
    cl_declare(&c, 1, "g1");
    cl_declare(&c, 1, "g2");
    for (int i = 0; i < 2; i++) {
        cl_publish(&c, 1, "", "g1", 0, "a");
        cl_publish(&c, 1, "", "g2", 0, "b");
    }
    SEND(&c, 1, 60, 10, (uint32_t)0, 3, 1); /* 3 for the whole channel */
    cl_expect(&c, 1, 60, 11, NULL);
    msg_in_t d = {0};
    consume(&c, 1, "g1", "c1", 0);
    cl_deliver(&c, 1, &d);
    cl_deliver(&c, 1, &d);
    consume(&c, 1, "g2", "c2", 0);
    cl_deliver(&c, 1, &d); /* one more: the channel's third */
    ck_assert_str_eq(d.ctag, "c2");
    cl_quiet(&c, 150);
    ck_assert_uint_eq(fx_stats(&fx, "g2").unacked, 1);
    ck_assert_uint_eq(fx_stats(&fx, "g2").ready, 1);
    SEND(&c, 1, 60, 80, (uint64_t)1, 0);
    cl_deliver(&c, 1, &d);
    ck_assert_str_eq(d.ctag, "c2");
    cl_quiet(&c, 100);
    msg_free(&d);
    cl_free(&c);
    fx_close(&fx);
}
END_TEST

START_TEST(nack_requeue_redelivers)
{
    fx_t fx;
    fx_init(&fx, NULL);
    cl_t c;
    open_channel1(&fx, &c);
    cl_declare(&c, 1, "nq");
    cl_publish(&c, 1, "", "nq", 0, "first");
    cl_publish(&c, 1, "", "nq", 0, "second");
    msg_in_t d = {0};
    ck_assert(cl_get(&c, 1, "nq", 0, &d));
    ck_assert_uint_eq(d.tag, 1);
    ck_assert_int_eq(d.redelivered, 0);
    ck_assert_uint_eq(d.count, 1);
    SEND(&c, 1, 60, 120, (uint64_t)1, 0, 1); /* nack, requeue */
    ck_assert(cl_get(&c, 1, "nq", 0, &d));
    ck_assert(body_is(&d, "first")); /* back in its place, at the head */
    ck_assert_int_eq(d.redelivered, 1);
    ck_assert_uint_eq(d.tag, 2);
    SEND(&c, 1, 60, 90, (uint64_t)2, 1); /* reject, requeue */
    ck_assert(cl_get(&c, 1, "nq", 0, &d));
    ck_assert(body_is(&d, "first"));
    ck_assert_int_eq(d.redelivered, 1);
    ck_assert(cl_get(&c, 1, "nq", 0, &d));
    ck_assert(body_is(&d, "second"));
    ck_assert_int_eq(d.redelivered, 0);
    /* nack multiple without requeue: both gone (no dead-letter exchange) */
    SEND(&c, 1, 60, 120, (uint64_t)4, 1, 0);
    cl_sync(&c, 1);
    fl_amqp_queue_stats_t st = fx_stats(&fx, "nq");
    ck_assert_uint_eq(st.ready, 0);
    ck_assert_uint_eq(st.unacked, 0);
    ck_assert_uint_eq(st.redelivered, 2);
    ck_assert_uint_eq(st.delivered, 4);
    msg_free(&d);
    cl_free(&c);
    fx_close(&fx);
}
END_TEST

/* The first x-death entry of a dead-lettered message's headers. */
static void check_death(const msg_in_t *d, const char *queue, const char *reason)
{
    fl_amqp_props_t pr;
    ck_assert_int_eq(fl_amqp_props_decode((const uint8_t *)d->props.data, d->props.len, &pr), 0);
    ck_assert(FL_AMQP_HAS(&pr, FL_AMQP_P_HEADERS));
    const uint8_t *h = pr.v[FL_AMQP_P_HEADERS].p;
    uint32_t hl = pr.v[FL_AMQP_P_HEADERS].len;
    fl_amqp_value_t v, e, f;
    ck_assert(fl_amqp_table_get(h, hl, "x-first-death-reason", &v));
    ck_assert(v.type == 'S' && v.len == strlen(reason) && memcmp(v.p, reason, v.len) == 0);
    ck_assert(fl_amqp_table_get(h, hl, "x-first-death-queue", &v));
    ck_assert(v.type == 'S' && v.len == strlen(queue) && memcmp(v.p, queue, v.len) == 0);
    ck_assert(fl_amqp_table_get(h, hl, "x-death", &v));
    ck_assert_int_eq(v.type, 'A');
    size_t off = 0;
    ck_assert_int_eq(fl_amqp_array_next(v.p, v.len, &off, &e), 1);
    ck_assert_int_eq(e.type, 'F');
    ck_assert(fl_amqp_table_get(e.p, e.len, "reason", &f));
    ck_assert(f.len == strlen(reason) && memcmp(f.p, reason, f.len) == 0);
    ck_assert(fl_amqp_table_get(e.p, e.len, "queue", &f));
    ck_assert(f.len == strlen(queue) && memcmp(f.p, queue, f.len) == 0);
    ck_assert(fl_amqp_table_get(e.p, e.len, "count", &f));
    int64_t n;
    ck_assert(fl_amqp_value_int(&f, &n) && n == 1);
}

static int has_ready(fx_t *fx, void *q)
{
    fl_amqp_queue_stats_t st;
    return fl_amqp_queue_stats(fx->b, NULL, q, &st) == 0 && st.ready > 0;
}

START_TEST(dead_letter_on_reject_and_ttl)
{
    fx_t fx;
    fx_init(&fx, NULL);
    cl_t c;
    open_channel1(&fx, &c);
    cl_declare(&c, 1, "dlq");
    fl_buf_t args = FL_BUF_INIT;
    fl_amqp_field_str(&args, "x-dead-letter-exchange", "");
    fl_amqp_field_str(&args, "x-dead-letter-routing-key", "dlq");
    cl_declare_args(&c, 1, "src", 0, 0, &args);
    cl_publish(&c, 1, "", "src", 0, "rejected one");
    msg_in_t d = {0};
    ck_assert(cl_get(&c, 1, "src", 0, &d));
    SEND(&c, 1, 60, 90, d.tag, 0); /* reject, no requeue */
    cl_sync(&c, 1);
    ck_assert_uint_eq(ready(&fx, "dlq"), 1);
    ck_assert_uint_eq(fx_stats(&fx, "src").dead_lettered, 1);
    ck_assert(cl_get(&c, 1, "dlq", 1, &d));
    ck_assert(body_is(&d, "rejected one"));
    ck_assert_str_eq(d.rkey, "dlq");
    check_death(&d, "src", "rejected");
    /* x-message-ttl: expired messages go the same way */
    cl_declare(&c, 1, "dlq2");
    fl_buf_reset(&args);
    fl_amqp_field_long(&args, "x-message-ttl", 50);
    fl_amqp_field_str(&args, "x-dead-letter-exchange", "");
    fl_amqp_field_str(&args, "x-dead-letter-routing-key", "dlq2");
    cl_declare_args(&c, 1, "ttlsrc", 0, 0, &args);
    uint64_t t0 = uv_hrtime();
    cl_publish(&c, 1, "", "ttlsrc", 0, "too late");
    ck_assert(fx_until(&fx, has_ready, "dlq2", WAIT_MS));
    ck_assert_uint_ge((uv_hrtime() - t0) / MS, 45);
    fl_amqp_queue_stats_t st = fx_stats(&fx, "ttlsrc");
    ck_assert_uint_eq(st.expired, 1);
    ck_assert_uint_eq(st.ready, 0);
    ck_assert(cl_get(&c, 1, "dlq2", 1, &d));
    ck_assert(body_is(&d, "too late"));
    check_death(&d, "ttlsrc", "expired");
    /* bad queue arguments are refused as RabbitMQ does */
    fl_buf_reset(&args);
    fl_amqp_field_long(&args, "x-expires", 0);
    SEND(&c, 1, 50, 10, 0, "badq", 0, 0, 0, 0, 0, args.data, args.len);
    cl_expect_ch_close(&c, 1, 406, "invalid arg 'x-expires'");
    msg_free(&d);
    fl_buf_free(&args);
    cl_free(&c);
    fx_close(&fx);
}
END_TEST

START_TEST(max_length_drops_head)
{
    fx_t fx;
    fx_init(&fx, NULL);
    cl_t c;
    open_channel1(&fx, &c);
    fl_buf_t args = FL_BUF_INIT;
    fl_amqp_field_long(&args, "x-max-length", 2);
    cl_declare_args(&c, 1, "ml", 0, 0, &args);
    cl_publish(&c, 1, "", "ml", 0, "1");
    cl_publish(&c, 1, "", "ml", 0, "2");
    cl_publish(&c, 1, "", "ml", 0, "3");
    cl_sync(&c, 1);
    ck_assert_uint_eq(ready(&fx, "ml"), 2);
    msg_in_t d = {0};
    ck_assert(cl_get(&c, 1, "ml", 1, &d));
    ck_assert(body_is(&d, "2"));
    ck_assert(cl_get(&c, 1, "ml", 1, &d));
    ck_assert(body_is(&d, "3"));
    ck_assert(!cl_get(&c, 1, "ml", 1, &d));
    msg_free(&d);
    fl_buf_free(&args);
    cl_free(&c);
    fx_close(&fx);
}
END_TEST

/* A queue at its x-max-length that dead-letters into itself, and two that dead-letter into
 * each other: RabbitMQ drops a message that would die twice in the same queue with no
 * rejection on the way, rather than cycling for ever. */
START_TEST(dead_letter_cycles_end)
{
    fx_t fx;
    fx_init(&fx, NULL);
    cl_t c;
    open_channel1(&fx, &c);
    fl_buf_t args = FL_BUF_INIT;
    fl_amqp_field_long(&args, "x-max-length", 1);
    fl_amqp_field_str(&args, "x-dead-letter-exchange", ""); /* back by its own name */
    cl_declare_args(&c, 1, "self", 0, 0, &args);
    for (int i = 0; i < 3; i++)
        cl_publish(&c, 1, "", "self", 0, "x");
    cl_sync(&c, 1);
    ck_assert_uint_eq(ready(&fx, "self"), 1);
    fl_buf_t a = FL_BUF_INIT, b = FL_BUF_INIT;
    fl_amqp_field_long(&a, "x-max-length", 1);
    fl_amqp_field_str(&a, "x-dead-letter-exchange", "");
    fl_amqp_field_str(&a, "x-dead-letter-routing-key", "pong");
    fl_amqp_field_long(&b, "x-max-length", 1);
    fl_amqp_field_str(&b, "x-dead-letter-exchange", "");
    fl_amqp_field_str(&b, "x-dead-letter-routing-key", "ping");
    cl_declare_args(&c, 1, "ping", 0, 0, &a);
    cl_declare_args(&c, 1, "pong", 0, 0, &b);
    for (int i = 0; i < 5; i++) {
        cl_publish(&c, 1, "", "ping", 0, "p");
        cl_publish(&c, 1, "", "pong", 0, "q");
    }
    cl_sync(&c, 1);
    ck_assert_uint_eq(ready(&fx, "ping"), 1);
    ck_assert_uint_eq(ready(&fx, "pong"), 1);
    /* a rejection in the cycle lets the message go round again */
    msg_in_t d = {0};
    ck_assert(cl_get(&c, 1, "self", 0, &d));
    SEND(&c, 1, 60, 90, d.tag, 0);
    cl_sync(&c, 1);
    ck_assert_uint_eq(ready(&fx, "self"), 1);
    msg_free(&d);
    fl_buf_free(&args);
    fl_buf_free(&a);
    fl_buf_free(&b);
    cl_free(&c);
    fx_close(&fx);
}
END_TEST

START_TEST(confirms_and_mandatory_return)
{
    fx_t fx;
    fx_init(&fx, NULL);
    cl_t c;
    open_channel1(&fx, &c);
    cl_declare(&c, 1, "cq");
    SEND(&c, 1, 85, 10, 0);
    cl_expect(&c, 1, 85, 11, NULL);
    fl_buf_t props = FL_BUF_INIT;
    mkprops(&props, 1, NULL, NULL);
    /* unroutable and mandatory: basic.return, then the ack */
    cl_publish_props(&c, 1, "amq.direct", "nowhere", 1, &props, "lost", 4);
    fl_amqp_method_t m;
    cl_expect(&c, 1, 60, 50, &m);
    ck_assert_uint_eq(m.args[0].u, 312);
    ck_assert(arg_is(&m.args[1], "NO_ROUTE"));
    ck_assert(arg_is(&m.args[2], "amq.direct"));
    ck_assert(arg_is(&m.args[3], "nowhere"));
    msg_in_t d = {0};
    cl_content(&c, 1, &d);
    ck_assert(body_is(&d, "lost"));
    cl_expect(&c, 1, 60, 80, &m);
    ck_assert_uint_eq(m.args[0].u, 1);
    ck_assert_uint_eq(m.args[1].u, 0);
    /* routed: ack 2; unroutable, not mandatory: ack 3 and no return */
    cl_publish_props(&c, 1, "", "cq", 1, &props, "kept", 4);
    cl_expect(&c, 1, 60, 80, &m);
    ck_assert_uint_eq(m.args[0].u, 2);
    cl_publish_props(&c, 1, "amq.direct", "nowhere", 0, &props, "dropped", 7);
    cl_expect(&c, 1, 60, 80, &m);
    ck_assert_uint_eq(m.args[0].u, 3);
    /* tx cannot be selected on a confirm channel */
    SEND(&c, 1, 90, 10);
    cl_expect_ch_close(&c, 1, 406, "cannot switch from confirm to tx mode");
    msg_free(&d);
    fl_buf_free(&props);
    cl_free(&c);
    fx_close(&fx);
}
END_TEST

START_TEST(tx_commit_and_rollback)
{
    fx_t fx;
    fx_init(&fx, NULL);
    cl_t c;
    open_channel1(&fx, &c);
    cl_declare(&c, 1, "txq");
    cl_publish(&c, 1, "", "txq", 0, "before");
    SEND(&c, 1, 90, 10);
    cl_expect(&c, 1, 90, 11, NULL);
    cl_publish(&c, 1, "", "txq", 0, "rolled back");
    cl_sync(&c, 1);
    ck_assert_uint_eq(ready(&fx, "txq"), 1);
    SEND(&c, 1, 90, 30);
    cl_expect(&c, 1, 90, 31, NULL);
    ck_assert_uint_eq(ready(&fx, "txq"), 1);
    cl_publish(&c, 1, "", "txq", 0, "committed");
    /* an ack inside the transaction waits for the commit too */
    msg_in_t d = {0};
    ck_assert(cl_get(&c, 1, "txq", 0, &d));
    ck_assert(body_is(&d, "before"));
    SEND(&c, 1, 60, 80, d.tag, 0);
    cl_sync(&c, 1);
    fl_amqp_queue_stats_t st = fx_stats(&fx, "txq");
    ck_assert_uint_eq(st.ready, 0);
    ck_assert_uint_eq(st.unacked, 1);
    SEND(&c, 1, 90, 20);
    cl_expect(&c, 1, 90, 21, NULL);
    st = fx_stats(&fx, "txq");
    ck_assert_uint_eq(st.ready, 1);
    ck_assert_uint_eq(st.unacked, 0);
    ck_assert_uint_eq(st.acked, 1);
    ck_assert(cl_get(&c, 1, "txq", 1, &d));
    ck_assert(body_is(&d, "committed"));
    /* commit on a channel that never selected tx */
    cl_channel(&c, 2);
    SEND(&c, 2, 90, 20);
    cl_expect_ch_close(&c, 2, 406, "channel is not transactional");
    msg_free(&d);
    cl_free(&c);
    fx_close(&fx);
}
END_TEST

START_TEST(queue_delete_cancels_consumers)
{
    fx_t fx;
    fx_init(&fx, NULL);
    cl_t a, b;
    cl_open(&fx, &a, &(hs_t){.cap_cancel_notify = 1});
    cl_open(&fx, &b, NULL);
    cl_channel(&a, 1);
    cl_channel(&a, 2);
    cl_channel(&b, 1);
    cl_declare(&a, 1, "delq");
    consume(&a, 1, "delq", "c1", 0);
    consume(&b, 1, "delq", "c2", 0);
    ck_assert_uint_eq(fx_stats(&fx, "delq").consumers, 2);
    SEND(&a, 2, 50, 40, 0, "delq", 0, 0, 0);
    /* a asked for consumer_cancel_notify: basic.cancel comes before delete-ok */
    fl_amqp_method_t m;
    cl_expect(&a, 1, 60, 30, &m);
    ck_assert(arg_is(&m.args[0], "c1"));
    ck_assert_uint_eq(m.args[1].u, 1);
    cl_expect(&a, 2, 50, 41, &m);
    ck_assert_uint_eq(m.args[0].u, 0);
    /* b did not: nothing */
    cl_quiet(&b, 100);
    ck_assert_int_eq(fl_amqp_queue_stats(fx.b, NULL, "delq", &(fl_amqp_queue_stats_t){0}),
                     FL_ENOTFOUND);
    /* if-empty and if-unused refuse with 406 */
    cl_declare(&a, 1, "busy");
    cl_publish(&a, 1, "", "busy", 0, "x");
    SEND(&a, 1, 50, 40, 0, "busy", 0, 1, 0);
    cl_expect_ch_close(&a, 1, 406, "not empty");
    consume(&b, 1, "busy", "c3", 1);
    SEND(&a, 2, 50, 40, 0, "busy", 1, 0, 0);
    cl_expect_ch_close(&a, 2, 406, "in use");
    cl_free(&a);
    cl_free(&b);
    fx_close(&fx);
}
END_TEST

static int queue_gone(fx_t *fx, void *q)
{
    fl_amqp_queue_stats_t st;
    return fl_amqp_queue_stats(fx->b, NULL, q, &st) == FL_ENOTFOUND;
}

START_TEST(exclusive_queue_dies_with_connection)
{
    fx_t fx;
    fx_init(&fx, NULL);
    cl_t a, b;
    open_channel1(&fx, &a);
    open_channel1(&fx, &b);
    cl_declare_args(&a, 1, "exq", 0, 1, NULL);
    SEND(&b, 1, 50, 10, 0, "exq", 1, 0, 0, 0, 0, NULL, (size_t)0);
    cl_expect_ch_close(&b, 1, 405,
                       "RESOURCE_LOCKED - cannot obtain exclusive access to locked "
                       "queue 'exq'");
    /* server-named */
    SEND(&a, 1, 50, 10, 0, "", 0, 0, 1, 0, 0, NULL, (size_t)0);
    fl_amqp_method_t m;
    cl_expect(&a, 1, 50, 11, &m);
    char gen[256];
    copy_arg(gen, &m.args[0]);
    ck_assert_msg(strncmp(gen, "amq.gen-", 8) == 0 && strlen(gen) == 30, "%s", gen);
    SEND(&a, 0, 10, 50, 200, "bye", 0, 0);
    cl_expect(&a, 0, 10, 51, NULL);
    ck_assert(fx_until(&fx, queue_gone, "exq", WAIT_MS));
    ck_assert(queue_gone(&fx, gen));
    cl_free(&a);
    cl_free(&b);
    fx_close(&fx);
}
END_TEST

START_TEST(unacked_requeued_on_channel_close)
{
    fx_t fx;
    fx_init(&fx, NULL);
    cl_t c;
    open_channel1(&fx, &c);
    cl_declare(&c, 1, "uq");
    cl_publish(&c, 1, "", "uq", 0, "one");
    cl_publish(&c, 1, "", "uq", 0, "two");
    msg_in_t d = {0};
    ck_assert(cl_get(&c, 1, "uq", 0, &d));
    ck_assert(cl_get(&c, 1, "uq", 0, &d));
    ck_assert_uint_eq(fx_stats(&fx, "uq").unacked, 2);
    SEND(&c, 1, 20, 40, 200, "", 0, 0);
    cl_expect(&c, 1, 20, 41, NULL);
    fl_amqp_queue_stats_t st = fx_stats(&fx, "uq");
    ck_assert_uint_eq(st.unacked, 0);
    ck_assert_uint_eq(st.ready, 2);
    cl_channel(&c, 2);
    ck_assert(cl_get(&c, 2, "uq", 0, &d));
    ck_assert(body_is(&d, "one"));
    ck_assert_int_eq(d.redelivered, 1);
    ck_assert_uint_eq(d.tag, 1); /* tags are per channel */
    /* and when the connection goes */
    cl_free(&c);
    ck_assert(fx_until(&fx, no_connections, NULL, WAIT_MS));
    st = fx_stats(&fx, "uq");
    ck_assert_uint_eq(st.unacked, 0);
    ck_assert_uint_eq(st.ready, 2);
    msg_free(&d);
    fx_close(&fx);
}
END_TEST

START_TEST(heartbeat_timeout_drops_silent_client)
{
    fl_amqp_config_t cfg = {.heartbeat = 1};
    fx_t fx;
    fx_init(&fx, &cfg);
    cl_t silent, alive;
    fl_amqp_method_t m;
    cl_connect(&fx, &silent);
    cl_write(&silent, fl_amqp_protocol_header, 8);
    cl_expect(&silent, 0, 10, 10, NULL);
    cl_start_ok(&silent, &(hs_t){0});
    cl_expect(&silent, 0, 10, 30, &m);
    ck_assert_uint_eq(m.args[2].u, 1); /* the configured heartbeat is proposed */
    SEND(&silent, 0, 10, 31, 2047, (uint32_t)131072, 1);
    SEND(&silent, 0, 10, 40, "/", "", 0);
    cl_expect(&silent, 0, 10, 41, NULL);
    uint64_t t0 = uv_hrtime();
    cl_open(&fx, &alive, &(hs_t){.heartbeat = 1});
    /* alive sends a heartbeat every 400 ms; silent sends nothing */
    uint64_t next = 0;
    while (!silent.eof && !fx.fired && uv_hrtime() - t0 < 5000 * MS) {
        if (uv_hrtime() >= next) {
            fl_amqp_heartbeat_frame(&alive.out);
            cl_flush(&alive);
            next = uv_hrtime() + 400 * MS;
        }
        fx_spin(&fx);
    }
    uint64_t took = (uv_hrtime() - t0) / MS;
    ck_assert_msg(silent.eof, "the silent client was not dropped");
    ck_assert_msg(took >= 1900 && took < 4000, "dropped after %llu ms", (unsigned long long)took);
    cl_expect_eof(&silent, 100);
    ck_assert_int_gt(silent.heartbeats, 0); /* the broker sent its own */
    ck_assert(fx_saw(&fx, "missed heartbeats from client"));
    /* the other one is still there */
    cl_channel(&alive, 1);
    cl_sync(&alive, 1);
    ck_assert_int_gt(alive.heartbeats, 0);
    cl_free(&silent);
    cl_free(&alive);
    fx_close(&fx);
}
END_TEST

/* ---- faults ---- */

START_TEST(fault_down_and_up)
{
    fx_t fx;
    fx_init(&fx, NULL);
    cl_t c;
    open_channel1(&fx, &c);
    int port = fx.port;
    ck_assert_int_eq(fl_amqp_set_down(fx.b, 1), 0);
    cl_expect_eof(&c, WAIT_MS);
    cl_free(&c);
    ck_assert_int_eq(fl_amqp_connections(fx.b), 0);
    ck_assert_int_eq(cl_connect_port(&fx, &c, port), UV_ECONNREFUSED);
    cl_free(&c);
    ck_assert_int_eq(fl_amqp_set_down(fx.b, 1), 0);
    ck_assert_int_eq(fl_amqp_set_down(fx.b, 0), 0);
    ck_assert_int_eq(fl_amqp_port(fx.b), port);
    open_channel1(&fx, &c);
    cl_sync(&c, 1);
    ck_assert(fx_saw(&fx, "down: listener closed, 1 connection(s) dropped"));
    ck_assert(fx_saw(&fx, "up: listening again"));
    cl_free(&c);
    fx_close(&fx);
}
END_TEST

START_TEST(fault_restart_keeps_durable)
{
    fx_t fx;
    fx_init(&fx, NULL);
    cl_t c;
    open_channel1(&fx, &c);
    cl_declare_args(&c, 1, "dur", 1, 0, NULL);
    cl_declare(&c, 1, "tra");
    cl_publish(&c, 1, "", "dur", 2, "p1");
    cl_publish(&c, 1, "", "dur", 1, "t1");
    cl_publish(&c, 1, "", "dur", 2, "p2");
    cl_publish(&c, 1, "", "tra", 2, "lost with its queue");
    msg_in_t d = {0};
    ck_assert(cl_get(&c, 1, "dur", 0, &d)); /* p1, unacked at the restart */
    ck_assert(body_is(&d, "p1"));
    fl_amqp_restart(fx.b);
    cl_expect_conn_close(&c, 320, "CONNECTION_FORCED - broker forced connection closure");
    cl_free(&c);
    ck_assert(queue_gone(&fx, "tra"));
    fl_amqp_queue_stats_t st = fx_stats(&fx, "dur");
    ck_assert_uint_eq(st.ready, 2);
    ck_assert_uint_eq(st.unacked, 0);
    open_channel1(&fx, &c);
    ck_assert(cl_get(&c, 1, "dur", 1, &d));
    ck_assert(body_is(&d, "p1"));
    ck_assert_int_eq(d.redelivered, 1);
    ck_assert(cl_get(&c, 1, "dur", 1, &d));
    ck_assert(body_is(&d, "p2"));
    ck_assert_int_eq(d.redelivered, 0);
    ck_assert(!cl_get(&c, 1, "dur", 1, &d));
    msg_free(&d);
    cl_free(&c);
    fx_close(&fx);
}
END_TEST

START_TEST(fault_drop_connections)
{
    fx_t fx;
    fx_init(&fx, NULL);
    cl_t a, b;
    open_channel1(&fx, &a);
    open_channel1(&fx, &b);
    ck_assert_int_eq(fl_amqp_drop_connections(fx.b), 2);
    cl_expect_eof(&a, WAIT_MS); /* no close frame first */
    cl_expect_eof(&b, WAIT_MS);
    ck_assert_int_eq(fl_amqp_connections(fx.b), 0);
    ck_assert_int_eq(fl_amqp_drop_connections(fx.b), 0);
    cl_free(&a);
    cl_free(&b);
    open_channel1(&fx, &a);
    cl_sync(&a, 1);
    cl_free(&a);
    fx_close(&fx);
}
END_TEST

START_TEST(fault_blocked_holds_publishes)
{
    fx_t fx;
    fx_init(&fx, NULL);
    cl_t pub, other;
    cl_open(&fx, &pub, &(hs_t){.cap_blocked = 1});
    cl_open(&fx, &other, NULL);
    cl_channel(&pub, 1);
    cl_channel(&other, 1);
    cl_declare(&pub, 1, "bq");
    fl_amqp_set_blocked(fx.b, 1);
    fl_amqp_method_t m;
    cl_expect(&pub, 0, 10, 60, &m);
    ck_assert(arg_is(&m.args[0], "low on memory"));
    cl_quiet(&other, 50); /* did not declare the capability */
    cl_publish(&pub, 1, "", "bq", 0, "held");
    cl_publish(&other, 1, "", "bq", 0, "held too");
    fx_run_for(&fx, 200);
    ck_assert_uint_eq(ready(&fx, "bq"), 0);
    ck_assert_int_eq(fl_amqp_connections(fx.b), 2);
    fl_amqp_set_blocked(fx.b, 0);
    cl_expect(&pub, 0, 10, 61, NULL);
    cl_sync(&pub, 1);
    cl_sync(&other, 1);
    ck_assert_uint_eq(ready(&fx, "bq"), 2);
    /* a client connecting while blocked is told at once */
    fl_amqp_set_blocked(fx.b, 1);
    cl_t late;
    cl_open(&fx, &late, &(hs_t){.cap_blocked = 1});
    cl_expect(&late, 0, 10, 60, NULL);
    fl_amqp_set_blocked(fx.b, 0);
    cl_expect(&late, 0, 10, 61, NULL);
    cl_free(&late);
    cl_free(&pub);
    cl_free(&other);
    fx_close(&fx);
}
END_TEST

START_TEST(fault_delay)
{
    fx_t fx;
    fx_init(&fx, NULL);
    cl_t c;
    open_channel1(&fx, &c);
    cl_declare(&c, 1, "late");
    fl_amqp_set_delay(fx.b, 300 * MS);
    uint64_t t0 = uv_hrtime();
    cl_publish(&c, 1, "", "late", 0, "eventually");
    msg_in_t d = {0};
    ck_assert(!cl_get(&c, 1, "late", 1, &d)); /* there, but not deliverable yet */
    ck_assert_uint_eq(ready(&fx, "late"), 1);
    consume(&c, 1, "late", "c", 1);
    cl_deliver(&c, 1, &d);
    uint64_t took = (uv_hrtime() - t0) / MS;
    ck_assert_msg(took >= 290 && took < 2000, "delivered after %llu ms", (unsigned long long)took);
    ck_assert(body_is(&d, "eventually"));
    fl_amqp_set_delay(fx.b, 0);
    t0 = uv_hrtime();
    cl_publish(&c, 1, "", "late", 0, "now");
    cl_deliver(&c, 1, &d);
    ck_assert_uint_lt((uv_hrtime() - t0) / MS, 200);
    msg_free(&d);
    cl_free(&c);
    fx_close(&fx);
}
END_TEST

START_TEST(fault_duplicate)
{
    fx_t fx;
    fx_init(&fx, NULL);
    cl_t c;
    open_channel1(&fx, &c);
    cl_declare(&c, 1, "dup");
    fl_amqp_set_duplicate(fx.b, 1.0);
    consume(&c, 1, "dup", "c", 0);
    cl_publish(&c, 1, "", "dup", 0, "twice");
    msg_in_t d = {0};
    cl_deliver(&c, 1, &d);
    ck_assert(body_is(&d, "twice"));
    ck_assert_int_eq(d.redelivered, 0);
    cl_deliver(&c, 1, &d);
    ck_assert(body_is(&d, "twice"));
    ck_assert_int_eq(d.redelivered, 1);
    ck_assert_uint_eq(d.tag, 2);
    cl_quiet(&c, 100);
    fl_amqp_queue_stats_t st = fx_stats(&fx, "dup");
    ck_assert_uint_eq(st.duplicated, 1);
    ck_assert_uint_eq(st.delivered, 2);
    ck_assert_uint_eq(st.unacked, 2);
    /* both copies can be acked */
    SEND(&c, 1, 60, 80, (uint64_t)2, 1);
    cl_sync(&c, 1);
    st = fx_stats(&fx, "dup");
    ck_assert_uint_eq(st.unacked, 0);
    ck_assert_uint_eq(st.acked, 2);
    fl_amqp_set_duplicate(fx.b, 0);
    cl_publish(&c, 1, "", "dup", 0, "once");
    cl_deliver(&c, 1, &d);
    cl_quiet(&c, 100);
    msg_free(&d);
    cl_free(&c);
    fx_close(&fx);
}
END_TEST

/* Publishes n messages to a consumer with drop at rate; returns how many were dropped. */
static uint64_t drop_run(uint64_t seed, double rate, int n)
{
    fl_amqp_config_t cfg = {.seed = seed};
    fx_t fx;
    fx_init(&fx, &cfg);
    cl_t c;
    open_channel1(&fx, &c);
    cl_declare(&c, 1, "drop");
    fl_amqp_set_drop(fx.b, rate);
    for (int i = 0; i < n; i++)
        cl_publish(&c, 1, "", "drop", 0, "x");
    cl_sync(&c, 1);
    consume(&c, 1, "drop", "c", 1);
    fx_run_for(&fx, 20); /* dispatch happens once consume-ok is out */
    fl_amqp_queue_stats_t st = fx_stats(&fx, "drop");
    int got = 0;
    msg_in_t d = {0};
    for (uint64_t i = 0; i < st.delivered; i++) {
        cl_deliver(&c, 1, &d);
        got++;
    }
    cl_quiet(&c, 50);
    ck_assert_uint_eq(st.delivered + st.dropped, (uint64_t)n);
    ck_assert_uint_eq(st.ready, 0);
    msg_free(&d);
    cl_free(&c);
    fx_close(&fx);
    return st.dropped;
}

START_TEST(fault_drop_seeded)
{
    ck_assert_uint_eq(drop_run(1, 1.0, 5), 5);
    ck_assert_uint_eq(drop_run(1, 0.0, 5), 0);
    uint64_t a = drop_run(7, 0.5, 200), b = drop_run(7, 0.5, 200);
    ck_assert_uint_eq(a, b); /* the same seed drops the same deliveries */
    ck_assert_msg(a > 60 && a < 140, "dropped %llu of 200 at rate 0.5", (unsigned long long)a);
}
END_TEST

START_TEST(round_robin_and_consumer_rules)
{
    fx_t fx;
    fx_init(&fx, NULL);
    cl_t c;
    open_channel1(&fx, &c);
    cl_declare(&c, 1, "rr");
    consume(&c, 1, "rr", "a", 1);
    consume(&c, 1, "rr", "b", 1);
    for (int i = 0; i < 4; i++)
        cl_publish(&c, 1, "", "rr", 0, "x");
    msg_in_t d = {0};
    const char *want[] = {"a", "b", "a", "b"};
    for (int i = 0; i < 4; i++) {
        cl_deliver(&c, 1, &d);
        ck_assert_str_eq(d.ctag, want[i]);
    }
    /* an exclusive consumer on a queue that has consumers: 403 on the channel */
    cl_channel(&c, 2);
    SEND(&c, 2, 60, 20, 0, "rr", "x", 0, 0, 1, 0, NULL, (size_t)0);
    cl_expect_ch_close(&c, 2, 403, "in exclusive use");
    /* a consumer tag used twice on a channel: 530, which closes the connection */
    SEND(&c, 1, 60, 20, 0, "rr", "a", 0, 0, 0, 0, NULL, (size_t)0);
    cl_expect_conn_close(&c, 530, "reuse consumer tag 'a'");
    msg_free(&d);
    cl_free(&c);
    fx_close(&fx);
}
END_TEST

static int queue_gone(fx_t *fx, void *q);

START_TEST(queue_lifetimes_and_limits)
{
    fx_t fx;
    fx_init(&fx, NULL);
    cl_t c;
    open_channel1(&fx, &c);
    /* passive declare of a missing queue: 404 */
    SEND(&c, 1, 50, 10, 0, "nope", 1, 0, 0, 0, 0, NULL, (size_t)0);
    cl_expect_ch_close(&c, 1, 404, "no queue 'nope' in vhost '/'");
    cl_channel(&c, 2);
    /* purge answers with the count */
    cl_declare(&c, 2, "pq");
    cl_publish(&c, 2, "", "pq", 0, "1");
    cl_publish(&c, 2, "", "pq", 0, "2");
    SEND(&c, 2, 50, 30, 0, "pq", 0);
    fl_amqp_method_t m;
    cl_expect(&c, 2, 50, 31, &m);
    ck_assert_uint_eq(m.args[0].u, 2);
    ck_assert_uint_eq(ready(&fx, "pq"), 0);
    /* auto-delete: gone once its last consumer leaves */
    SEND(&c, 2, 50, 10, 0, "ad", 0, 0, 0, 1, 0, NULL, (size_t)0);
    cl_expect(&c, 2, 50, 11, NULL);
    consume(&c, 2, "ad", "c", 1);
    SEND(&c, 2, 60, 30, "c", 0);
    cl_expect(&c, 2, 60, 31, &m);
    ck_assert(arg_is(&m.args[0], "c"));
    ck_assert(queue_gone(&fx, "ad"));
    /* x-expires: an unused queue goes after its time */
    fl_buf_t args = FL_BUF_INIT;
    fl_amqp_field_long(&args, "x-expires", 100);
    cl_declare_args(&c, 2, "exp", 0, 0, &args);
    ck_assert(!queue_gone(&fx, "exp"));
    ck_assert(fx_until(&fx, queue_gone, "exp", WAIT_MS));
    ck_assert(fx_saw(&fx, "queue exp expired"));
    /* the expiration property: dropped after it (no dead-letter exchange) */
    cl_declare(&c, 2, "mexp");
    fl_buf_t props = FL_BUF_INIT;
    mkprops(&props, 1, "50", NULL);
    cl_publish_props(&c, 2, "", "mexp", 0, &props, "short-lived", 11);
    cl_sync(&c, 2);
    ck_assert_uint_eq(ready(&fx, "mexp"), 1);
    fx_run_for(&fx, 150);
    msg_in_t d = {0};
    ck_assert(!cl_get(&c, 2, "mexp", 1, &d));
    ck_assert_uint_eq(fx_stats(&fx, "mexp").expired, 1);
    /* x-overflow reject-publish: a confirm channel gets a nack for what did not fit */
    fl_buf_reset(&args);
    fl_amqp_field_long(&args, "x-max-length", 1);
    fl_amqp_field_str(&args, "x-overflow", "reject-publish");
    cl_declare_args(&c, 2, "full", 0, 0, &args);
    SEND(&c, 2, 85, 10, 0);
    cl_expect(&c, 2, 85, 11, NULL);
    fl_buf_reset(&props);
    mkprops(&props, 1, NULL, NULL);
    cl_publish_props(&c, 2, "", "full", 0, &props, "fits", 4);
    cl_expect(&c, 2, 60, 80, &m);
    ck_assert_uint_eq(m.args[0].u, 1);
    cl_publish_props(&c, 2, "", "full", 0, &props, "refused", 7);
    cl_expect(&c, 2, 60, 120, &m);
    ck_assert_uint_eq(m.args[0].u, 2);
    ck_assert_uint_eq(ready(&fx, "full"), 1);
    msg_free(&d);
    fl_buf_free(&args);
    fl_buf_free(&props);
    cl_free(&c);
    fx_close(&fx);
}
END_TEST

START_TEST(queue_stats_counts)
{
    fx_t fx;
    fx_init(&fx, NULL);
    cl_t c;
    open_channel1(&fx, &c);
    cl_declare(&c, 1, "st");
    ck_assert_int_eq(fl_amqp_queue_stats(fx.b, NULL, "missing", &(fl_amqp_queue_stats_t){0}),
                     FL_ENOTFOUND);
    for (int i = 0; i < 4; i++)
        cl_publish(&c, 1, "", "st", 0, "x");
    msg_in_t d = {0};
    ck_assert(cl_get(&c, 1, "st", 0, &d));
    SEND(&c, 1, 60, 80, d.tag, 0);
    ck_assert(cl_get(&c, 1, "st", 0, &d));
    SEND(&c, 1, 60, 120, d.tag, 0, 1);
    ck_assert(cl_get(&c, 1, "st", 0, &d)); /* the requeued one */
    consume(&c, 1, "st", "c", 0);
    cl_deliver(&c, 1, &d);
    cl_deliver(&c, 1, &d);
    cl_sync(&c, 1);
    fl_amqp_queue_stats_t st = fx_stats(&fx, "st");
    ck_assert_uint_eq(st.published, 4);
    ck_assert_uint_eq(st.delivered, 5);
    ck_assert_uint_eq(st.acked, 1);
    ck_assert_uint_eq(st.redelivered, 1);
    ck_assert_uint_eq(st.unacked, 3);
    ck_assert_uint_eq(st.ready, 0);
    ck_assert_uint_eq(st.consumers, 1);
    ck_assert_uint_eq(st.dropped + st.duplicated + st.dead_lettered + st.expired, 0);
    msg_free(&d);
    cl_free(&c);
    fx_close(&fx);
}
END_TEST

/* ---- the journal ---- */

static void rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[512];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    closedir(d);
    rmdir(dir);
}

static off_t file_size(const char *path)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return st.st_size;
}

START_TEST(journal_survives_process)
{
    char dir[] = "/tmp/fl-amqp-test-XXXXXX", path[64];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/amqp-journal", dir);
    fl_amqp_config_t cfg = {.data_dir = dir};
    fx_t fx;
    fx_init(&fx, &cfg);
    cl_t c;
    open_channel1(&fx, &c);
    SEND(&c, 1, 40, 10, 0, "jx", "direct", 0, 1, 0, 0, 0, NULL, (size_t)0);
    cl_expect(&c, 1, 40, 11, NULL);
    cl_declare_args(&c, 1, "jq", 1, 0, NULL);
    cl_declare(&c, 1, "jt");
    cl_bind(&c, 1, "jq", "jx", "r", NULL);
    cl_publish(&c, 1, "jx", "r", 2, "p1");
    cl_publish(&c, 1, "jx", "r", 1, "t1");
    cl_publish(&c, 1, "jx", "r", 2, "p2");
    cl_publish(&c, 1, "", "jt", 2, "in a transient queue");
    msg_in_t d = {0};
    ck_assert(cl_get(&c, 1, "jq", 0, &d));
    ck_assert(body_is(&d, "p1"));
    SEND(&c, 1, 60, 80, d.tag, 0);
    cl_sync(&c, 1);
    cl_free(&c);
    /* a new broker on the same directory */
    fx_stop_broker(&fx);
    fx_start_broker(&fx);
    ck_assert(queue_gone(&fx, "jt"));
    ck_assert_uint_eq(ready(&fx, "jq"), 1);
    open_channel1(&fx, &c);
    cl_publish(&c, 1, "jx", "r", 2, "p3"); /* the exchange and its binding came back */
    cl_sync(&c, 1);
    ck_assert_uint_eq(ready(&fx, "jq"), 2);
    ck_assert(cl_get(&c, 1, "jq", 0, &d));
    ck_assert(body_is(&d, "p2"));
    ck_assert_int_eq(d.redelivered, 1); /* it may have been delivered before */
    cl_free(&c);                        /* unacked: back to the queue, still journaled */
    fx_stop_broker(&fx);
    /* a last record cut short (a crash mid-write) is ignored */
    off_t before = file_size(path);
    fx_start_broker(&fx);
    open_channel1(&fx, &c);
    cl_publish(&c, 1, "jx", "r", 2, "p4, torn");
    cl_sync(&c, 1);
    cl_free(&c);
    fx_stop_broker(&fx);
    off_t after = file_size(path);
    ck_assert_int_gt(after, before);
    ck_assert_int_eq(truncate(path, after - 3), 0);
    fx_start_broker(&fx);
    ck_assert_uint_eq(ready(&fx, "jq"), 2);
    open_channel1(&fx, &c);
    ck_assert(cl_get(&c, 1, "jq", 1, &d));
    ck_assert(body_is(&d, "p2"));
    ck_assert(cl_get(&c, 1, "jq", 1, &d));
    ck_assert(body_is(&d, "p3"));
    ck_assert(!cl_get(&c, 1, "jq", 1, &d));
    cl_free(&c);
    fx_stop_broker(&fx);
    /* and so is one cut inside its 5-byte head */
    int fd = open(path, O_WRONLY | O_APPEND);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "\x07\0\0", 3), 3);
    close(fd);
    fx_start_broker(&fx);
    ck_assert_uint_eq(ready(&fx, "jq"), 0);
    fx_stop_broker(&fx);
    /* a corrupt journal fails the broker, naming the file */
    fd = open(path, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, "\x63", 1, 0), 1);
    close(fd);
    fl_amqp_t *b = NULL;
    ck_assert_int_eq(fl_amqp_new(&fx.loop, &fx.cfg, &b), FL_EMALFORMED);
    ck_assert(fx_saw(&fx, path));
    /* and so does one whose records do not hold together */
    fd = open(path, O_WRONLY | O_TRUNC);
    ck_assert_int_eq(write(fd, "\x03\0\0\0\x02\0\0", 7), 7);
    close(fd);
    ck_assert_int_eq(fl_amqp_new(&fx.loop, &fx.cfg, &b), FL_EMALFORMED);
    msg_free(&d);
    fx_close(&fx);
    rm_dir(dir);
}
END_TEST

Suite *amqp_broker_suite(void)
{
    Suite *s = suite_create("amqp_broker");
    TCase *tc = tcase_create("protocol");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, handshake_plain);
    tcase_add_test(tc, handshake_amqplain_and_config);
    tcase_add_test(tc, bad_credentials);
    tcase_add_test(tc, bad_vhost);
    tcase_add_test(tc, wrong_protocol_header);
    tcase_add_test(tc, frame_errors);
    tcase_add_test(tc, unexpected_frame_505);
    tcase_add_test(tc, channel_not_open_504);
    tcase_add_test(tc, content_split_at_negotiated_frame_max);
    tcase_add_test(tc, heartbeat_timeout_drops_silent_client);
    suite_add_tcase(s, tc);
    tc = tcase_create("model");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, routing_every_exchange_type);
    tcase_add_test(tc, prefetch_and_ack_multiple);
    tcase_add_test(tc, global_prefetch);
    tcase_add_test(tc, nack_requeue_redelivers);
    tcase_add_test(tc, dead_letter_on_reject_and_ttl);
    tcase_add_test(tc, max_length_drops_head);
    tcase_add_test(tc, dead_letter_cycles_end);
    tcase_add_test(tc, confirms_and_mandatory_return);
    tcase_add_test(tc, tx_commit_and_rollback);
    tcase_add_test(tc, queue_delete_cancels_consumers);
    tcase_add_test(tc, exclusive_queue_dies_with_connection);
    tcase_add_test(tc, unacked_requeued_on_channel_close);
    tcase_add_test(tc, queue_stats_counts);
    tcase_add_test(tc, round_robin_and_consumer_rules);
    tcase_add_test(tc, queue_lifetimes_and_limits);
    suite_add_tcase(s, tc);
    tc = tcase_create("faults");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, fault_down_and_up);
    tcase_add_test(tc, fault_restart_keeps_durable);
    tcase_add_test(tc, fault_drop_connections);
    tcase_add_test(tc, fault_blocked_holds_publishes);
    tcase_add_test(tc, fault_delay);
    tcase_add_test(tc, fault_duplicate);
    tcase_add_test(tc, fault_drop_seeded);
    tcase_add_test(tc, journal_survives_process);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(amqp_broker_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

/* Unit tests for reports/text.c: XML and terminal escaping of untrusted bytes (fixed cases for
 * each class of byte sequence, then random bytes checked against an independent validator),
 * locale-independent seconds, and which events a failure is attributed to. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness/timeline.h"
#include "lib/buf.h"
#include "reports/text.h"

static char *xml(const char *s, size_t len, int attr)
{
    fl_buf_t b = FL_BUF_INIT;
    if (fl_text_escape_xml(&b, s, len, attr) != 0)
        ck_abort_msg("fl_text_escape_xml failed");
    return b.data ? b.data : strdup("");
}

static char *term(const char *s, size_t len, int multiline)
{
    fl_buf_t b = FL_BUF_INIT;
    if (fl_text_escape_term(&b, s, len, multiline) != 0)
        ck_abort_msg("fl_text_escape_term failed");
    return b.data ? b.data : strdup("");
}

#define CHECK_XML(in, attr, want)                                                                  \
    do {                                                                                           \
        char *got_ = xml(in, sizeof(in) - 1, attr);                                                \
        ck_assert_str_eq(got_, want);                                                              \
        free(got_);                                                                                \
    } while (0)

#define CHECK_TERM(in, multiline, want)                                                            \
    do {                                                                                           \
        char *got_ = term(in, sizeof(in) - 1, multiline);                                          \
        ck_assert_str_eq(got_, want);                                                              \
        free(got_);                                                                                \
    } while (0)

START_TEST(xml_specials)
{
    CHECK_XML("a & b < c > d \"e\" 'f'", 0, "a &amp; b &lt; c &gt; d &quot;e&quot; &apos;f&apos;");
    CHECK_XML("x]]>y", 0, "x]]&gt;y");
    CHECK_XML("t\tn\nr\r", 0, "t\tn\nr&#13;");
    CHECK_XML("t\tn\nr\r", 1, "t&#9;n&#10;r&#13;");
    CHECK_XML("", 0, "");
}
END_TEST

START_TEST(xml_bad_bytes)
{
    CHECK_XML("a\0b", 0, "a\\x00b");
    CHECK_XML("\x01\x1b[0m\x7f", 0, "\\x01\\x1b[0m\\x7f");
    CHECK_XML("\xff\xfe", 0, "\\xff\\xfe");
    CHECK_XML("\xc0\xaf", 0, "\\xc0\\xaf");                   /* overlong '/' */
    CHECK_XML("\xe0\x80\xaf", 0, "\\xe0\\x80\\xaf");          /* overlong, 3 bytes */
    CHECK_XML("\xed\xa0\x80", 0, "\\xed\\xa0\\x80");          /* lone surrogate */
    CHECK_XML("\xf4\x90\x80\x80", 0, "\\xf4\\x90\\x80\\x80"); /* beyond U+10FFFF */
    CHECK_XML("\xe2\x9c", 0, "\\xe2\\x9c");                   /* truncated at the end */
    CHECK_XML("\xe2\x9c.", 0, "\\xe2\\x9c.");                 /* truncated in the middle */
    CHECK_XML("\x80", 0, "\\x80");                            /* stray continuation */
    CHECK_XML("\xef\xbf\xbe\xef\xbf\xbf", 0, "\\xef\\xbf\\xbe\\xef\\xbf\\xbf"); /* U+FFFE/F */
    CHECK_XML("\xc2\x9b", 0, "\\xc2\\x9b");                                     /* C1 CSI */
    CHECK_XML("x\xe2\x80\xaey", 0, "x\\xe2\\x80\\xaey"); /* RIGHT-TO-LEFT OVERRIDE */
    CHECK_XML("\xe2\x81\xa6", 1, "\\xe2\\x81\\xa6");     /* LEFT-TO-RIGHT ISOLATE */
}
END_TEST

static char *json(const char *s, size_t len)
{
    fl_buf_t b = FL_BUF_INIT;
    if (fl_text_escape_json(&b, s, len) != 0)
        ck_abort_msg("fl_text_escape_json failed");
    return b.data ? b.data : strdup("");
}

#define CHECK_JSON(in, want)                                                                       \
    do {                                                                                           \
        char *got_ = json(in, sizeof(in) - 1);                                                     \
        ck_assert_str_eq(got_, want);                                                              \
        free(got_);                                                                                \
    } while (0)

/* JSON keeps every valid character (controls as \uXXXX, which a reader turns back into the
 * character) and marks invalid bytes as text. */
START_TEST(json_escapes)
{
    CHECK_JSON("plain \xc3\xa9 \xe2\x9c\x93", "plain \xc3\xa9 \xe2\x9c\x93");
    CHECK_JSON("q\"b\\", "q\\\"b\\\\");
    CHECK_JSON("n\nt\tr\r", "n\\nt\\tr\\r");
    CHECK_JSON("a\0b\x1b[0m\x7f", "a\\u0000b\\u001b[0m\\u007f");
    CHECK_JSON("\xc2\x9b", "\\u009b");
    CHECK_JSON("\xe2\x80\xa8\xe2\x80\xa9", "\\u2028\\u2029");
    CHECK_JSON("\xff\xc0\xaf", "\\\\xff\\\\xc0\\\\xaf");
    CHECK_JSON("\xed\xa0\x80", "\\\\xed\\\\xa0\\\\x80");
    CHECK_JSON("", "");
}
END_TEST

START_TEST(numbers)
{
    static const struct {
        double v;
        int decimals;
        const char *want;
    } cases[] = {
        {1.5, 3, "1.5"},
        {2, 3, "2"},
        {0.0004, 3, "0"},
        {-1.25, 2, "-1.25"},
        {-0.0001, 2, "0"},
        {NAN, 3, "0"},
        {INFINITY, 0, "1000000000000000"},
        {12.3456, 3, "12.346"},
        {99.9999, 3, "100"},
        {0.1, 9, "0.1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fl_buf_t b = FL_BUF_INIT;
        ck_assert_int_eq(fl_text_put_number(&b, cases[i].v, cases[i].decimals), 0);
        ck_assert_msg(strcmp(b.data, cases[i].want) == 0, "case %zu: %s, want %s", i, b.data,
                      cases[i].want);
        fl_buf_free(&b);
    }
    fl_buf_t b = FL_BUF_INIT;
    ck_assert_int_eq(fl_text_put_ns(&b, 1234567890123ull), 0);
    ck_assert_str_eq(b.data, "1234.567890");
    fl_buf_free(&b);
}
END_TEST

START_TEST(xml_keeps_valid_utf8)
{
    CHECK_XML("h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x92\xa5", 0,
              "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x92\xa5");
    CHECK_XML("\xef\xbf\xbd\xf4\x8f\xbf\xbf\xc2\xa0", 1, "\xef\xbf\xbd\xf4\x8f\xbf\xbf\xc2\xa0");
}
END_TEST

START_TEST(term_escapes)
{
    CHECK_TERM("\x1b[2J\x1b]0;owned\x07", 1, "\\x1b[2J\\x1b]0;owned\\x07");
    CHECK_TERM("a\nb\tc\rd", 1, "a\nb\tc\\x0dd");
    CHECK_TERM("a\nb\tc", 0, "a\\x0ab\\x09c");
    CHECK_TERM("a\0b\x7f", 1, "a\\x00b\\x7f");
    CHECK_TERM("\xc2\x85\xc2\x9b", 1, "\\xc2\\x85\\xc2\\x9b"); /* C1 NEL, CSI */
    CHECK_TERM("x\xe2\x80\xaey", 1, "x\\xe2\\x80\\xaey");      /* RIGHT-TO-LEFT OVERRIDE */
    CHECK_TERM("\xff\xc0\xaf\xed\xa0\x80", 1, "\\xff\\xc0\\xaf\\xed\\xa0\\x80");
    CHECK_TERM("<&> h\xc3\xa9llo \xf0\x9f\x92\xa5", 0, "<&> h\xc3\xa9llo \xf0\x9f\x92\xa5");
}
END_TEST

/* An oracle written apart from text.c: decodes UTF-8 strictly; returns the sequence length or
 * 0 when invalid. */
static size_t oracle_utf8(const unsigned char *p, size_t n, uint32_t *cp)
{
    static const struct {
        unsigned char mask, lead;
        size_t len;
        uint32_t min;
    } forms[] = {{0x80, 0x00, 1, 0},
                 {0xe0, 0xc0, 2, 0x80},
                 {0xf0, 0xe0, 3, 0x800},
                 {0xf8, 0xf0, 4, 0x10000}};
    for (size_t f = 0; f < 4; f++) {
        if ((p[0] & forms[f].mask) != forms[f].lead)
            continue;
        size_t len = forms[f].len;
        if (n < len)
            return 0;
        uint32_t v = p[0] & (uint32_t)~forms[f].mask & 0xff;
        for (size_t i = 1; i < len; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return 0;
            v = v << 6 | (p[i] & 0x3f);
        }
        if (v < forms[f].min || v > 0x10ffff || (v >= 0xd800 && v < 0xe000))
            return 0;
        *cp = v;
        return len;
    }
    return 0;
}

static int xml_char_ok(uint32_t c)
{
    return c == 9 || c == 10 || c == 13 || (c >= 0x20 && c <= 0xd7ff) ||
           (c >= 0xe000 && c <= 0xfffd) || (c >= 0x10000 && c <= 0x10ffff);
}

/* Where well-formed XML character data (or attribute value) breaks the rules, or NULL: valid
 * UTF-8, XML chars only, no raw '<', '"', CR, DEL or C1, every '&' a known reference. Checked
 * without ck_assert per character: Check reports every assertion to its parent. */
static const char *xml_unsafe(const char *s, int attr)
{
    static const char *const refs[] = {"&amp;",  "&lt;",  "&gt;", "&quot;",
                                       "&apos;", "&#13;", "&#9;", "&#10;"};
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        uint32_t c;
        size_t len = oracle_utf8(p + i, n - i, &c);
        if (!len)
            return "invalid UTF-8";
        if (!xml_char_ok(c) || c == '<' || c == '"' || c == '\r' || c == 0x7f ||
            (c >= 0x80 && c <= 0x9f))
            return "a character that must be escaped";
        if (attr && (c == '\t' || c == '\n'))
            return "raw whitespace in an attribute";
        if (c == '&') {
            int known = 0;
            for (size_t r = 0; r < sizeof refs / sizeof refs[0]; r++)
                known |= strncmp(s + i, refs[r], strlen(refs[r])) == 0;
            if (!known)
                return "a stray &";
        }
        i += len;
    }
    return NULL;
}

static const char *term_unsafe(const char *s, int multiline)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        uint32_t c;
        size_t len = oracle_utf8(p + i, n - i, &c);
        if (!len)
            return "invalid UTF-8";
        int control = c < 0x20 || (c >= 0x7f && c <= 0x9f);
        if (control && !(multiline && (c == '\n' || c == '\t')))
            return "a control character";
        i += len;
    }
    return NULL;
}

/* Random bytes, biased towards the interesting ones, through every escaper: the output must
 * always be safe, and valid UTF-8 input without specials must come out unchanged. */
START_TEST(random_bytes_are_always_safe)
{
    static const unsigned char interesting[] = {0x00, 0x09, 0x0a, 0x0d, 0x1b, 0x26, 0x3c, 0x3e,
                                                0x22, 0x27, 0x5d, 0x7f, 0x80, 0x9b, 0xbf, 0xc0,
                                                0xc2, 0xe2, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff};
    uint64_t state = 0x9e3779b97f4a7c15ull;
    unsigned char in[64];
    for (int round = 0; round < 20000; round++) {
        size_t n = 0, len;
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        len = (size_t)(state >> 58);
        for (n = 0; n < len; n++) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            unsigned r = (unsigned)(state >> 33);
            in[n] = r & 1 ? interesting[(r >> 1) % sizeof interesting] : (unsigned char)(r >> 8);
        }
        for (int mode = 0; mode < 2; mode++) {
            char *x = xml((const char *)in, n, mode);
            char *t = term((const char *)in, n, mode);
            const char *xbad = xml_unsafe(x, mode), *tbad = term_unsafe(t, mode);
            if (xbad || tbad)
                ck_abort_msg("round %d mode %d: xml has %s, term has %s", round, mode,
                             xbad ? xbad : "nothing wrong", tbad ? tbad : "nothing wrong");
            free(x);
            free(t);
        }
    }
}
END_TEST

static char *seconds(double s, int decimals)
{
    fl_buf_t b = FL_BUF_INIT;
    ck_assert_int_eq(fl_text_put_seconds(&b, s, decimals), 0);
    return b.data;
}

#define CHECK_SECONDS(s, d, want)                                                                  \
    do {                                                                                           \
        char *got_ = seconds(s, d);                                                                \
        ck_assert_str_eq(got_, want);                                                              \
        free(got_);                                                                                \
    } while (0)

START_TEST(seconds_format)
{
    CHECK_SECONDS(1.5, 3, "1.500");
    CHECK_SECONDS(34.5, 1, "34.5");
    CHECK_SECONDS(1.234, 2, "1.23");
    CHECK_SECONDS(59.999, 2, "60.00");
    CHECK_SECONDS(0.0004, 3, "0.000");
    CHECK_SECONDS(0, 3, "0.000");
    CHECK_SECONDS(-2, 3, "0.000");
    CHECK_SECONDS(NAN, 3, "0.000");
    CHECK_SECONDS(INFINITY, 3, "1000000000000.000");
    CHECK_SECONDS(7, 0, "7.0"); /* decimals clamped to 1..3 */
    CHECK_SECONDS(7, 9, "7.000");
}
END_TEST

static void add_event(fl_scenario_result_t *r, fl_event_kind_t kind, int ok, const char *where)
{
    fl_timeline_t tl = {r, 0, NULL, NULL};
    ck_assert_int_eq(fl_timeline_add(&tl, kind, ok, "", where, "e%zu", r->nevents), 0);
}

START_TEST(failure_end)
{
    fl_run_result_t run = {0};
    fl_scenario_result_t *r = fl_run_result_add(&run, "f.lua", "s");
    ck_assert_ptr_nonnull(r);
    r->verdict = FL_VERDICT_FAIL;
    ck_assert_uint_eq(fl_text_failure_end(r), 0);
    add_event(r, FL_EV_NOTE, 1, "");           /* 0 */
    add_event(r, FL_EV_ASSERT, 1, "f.lua:3");  /* 1: passed */
    add_event(r, FL_EV_ASSERT, 0, "f.lua:4");  /* 2: first failure */
    add_event(r, FL_EV_PROCESS, 0, "f.lua:9"); /* 3: not an assertion */
    add_event(r, FL_EV_ASSERT, 0, "f.lua:9");  /* 4: the failure at r->where */
    add_event(r, FL_EV_NOTE, 1, "");           /* 5 */
    ck_assert_uint_eq(fl_text_failure_end(r), 3);
    r->where = strdup("f.lua:9");
    ck_assert_uint_eq(fl_text_failure_end(r), 5);
    free(r->where);
    r->where = strdup("f.lua:99");
    ck_assert_uint_eq(fl_text_failure_end(r), 3);
    r->verdict = FL_VERDICT_ERROR; /* a Lua error comes after every event */
    ck_assert_uint_eq(fl_text_failure_end(r), 6);
    fl_run_result_free(&run);
}
END_TEST

static Suite *text_suite(void)
{
    Suite *s = suite_create("text");
    TCase *tc = tcase_create("escape");
    tcase_add_test(tc, xml_specials);
    tcase_add_test(tc, xml_bad_bytes);
    tcase_add_test(tc, json_escapes);
    tcase_add_test(tc, numbers);
    tcase_add_test(tc, xml_keeps_valid_utf8);
    tcase_add_test(tc, term_escapes);
    tcase_add_test(tc, random_bytes_are_always_safe);
    suite_add_tcase(s, tc);
    tc = tcase_create("format");
    tcase_add_test(tc, seconds_format);
    tcase_add_test(tc, failure_end);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(text_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* Text helpers shared by the report writers (internal to reports/): escaping untrusted bytes
 * for XML and for a terminal, locale-independent numbers, and which events of a scenario
 * lead up to its failure. Everything a service prints or a scenario says is untrusted: these
 * functions accept any bytes and always produce well-formed, visible output. Invalid UTF-8 and
 * unwanted characters become the text "\xNN", one per byte. A backslash already in the input is
 * kept as is, so "\x01" in a report may also be those four characters in the original. */
#ifndef FL_REPORTS_TEXT_H
#define FL_REPORTS_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "harness/timeline.h"
#include "lib/buf.h"

/* How many events a failure report shows: the failing one and those just before it. */
#define FL_TEXT_CONTEXT_EVENTS 10

/* Appends s[0..len) to out as XML 1.0 character data, or (attr=1) as the inside of a
 * double-quoted attribute value. & < > " ' become entities; \r (and in attributes \t \n)
 * character references; characters XML 1.0 forbids (C0 controls but \t \n \r, U+FFFE, U+FFFF),
 * DEL, C1 controls, bidirectional overrides and invalid UTF-8 (truncated, overlong, surrogates,
 * beyond U+10FFFF) the text "\xNN" per byte. The result is valid HTML text (or attribute
 * value) too. s may be NULL when len is 0. Returns 0 or FL_ENOMEM. */
/* A document being written with a sticky error: the first failure (FL_ENOMEM) is kept in rc
 * and every later write is skipped, so writers check once, at the end. */
typedef struct {
    fl_buf_t *b;
    int rc;
} fl_out_t;
void fl_out_put(fl_out_t *o, const char *s);
void fl_out_putf(fl_out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

int fl_text_escape_xml(fl_buf_t *out, const char *s, size_t len, int attr);

/* Appends s[0..len) to out, safe to print on a terminal: C0 controls (but \t and \n when
 * multiline is 1), DEL, C1 controls, bidirectional overrides and invalid UTF-8 become "\xNN"
 * per byte, so output cannot move the cursor, recolour, retitle or reorder the screen.
 * Returns 0 or FL_ENOMEM. */
int fl_text_escape_term(fl_buf_t *out, const char *s, size_t len, int multiline);

/* Appends s[0..len) to out as the inside of a JSON string: " and \ escaped, control
 * characters (C0, DEL, C1) and U+2028/U+2029 as \uXXXX (lossless: a JSON reader gets the
 * character back), invalid UTF-8 as the text "\xNN" per byte (written \\xNN in JSON, since
 * JSON strings cannot hold raw bytes). Returns 0 or FL_ENOMEM. */
int fl_text_escape_json(fl_buf_t *out, const char *s, size_t len);

/* Appends a JSON number with up to `decimals` (0..9) decimals, integer arithmetic only, so the
 * locale cannot turn the dot into a comma; NaN, infinities and negatives below -1e15 or values
 * beyond 1e15 are clamped (NaN: 0). Trailing zeros are trimmed ("1.5", "2"). */
int fl_text_put_number(fl_buf_t *out, double v, int decimals);

/* Nanoseconds as seconds with 6 decimals ("1.234567"). Returns 0 or FL_ENOMEM. */
int fl_text_put_ns(fl_buf_t *out, uint64_t ns);

/* Writes doc to path (created or truncated) in one go. Returns 0, or FL_EIO with errno set by
 * the failing call (fopen, fwrite or fclose). */
int fl_text_write_file(const char *path, const fl_buf_t *doc);

/* Appends seconds with 1 to 3 decimals and a dot whatever the locale ("1.234"). Negative and
 * NaN become 0; values beyond about 30 000 years are clamped. Returns 0 or FL_ENOMEM. */
int fl_text_put_seconds(fl_buf_t *out, double seconds, int decimals);

/* One past the index of the event a failure is attributed to. For FL_VERDICT_FAIL: the first
 * failed assertion at r->where (when set), else the first failed assertion. Otherwise, and when
 * there is no failed assertion (a timeout, a Lua error), r->nevents: it came after them all. */
size_t fl_text_failure_end(const fl_scenario_result_t *r);

/* "process", "fault", "assert", "note". */
const char *fl_text_kind_name(fl_event_kind_t kind);

#endif

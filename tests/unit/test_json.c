/* tests/unit/test_json.c - the JSON reader and writer: JSONTestSuite-style accepted and refused
 * texts (numbers, strings, escapes, surrogates, UTF-8 edge cases, nesting limit), iterators,
 * string decoding, number conversions, and the string writer checked through the validator. */
#include <errno.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "tests/harness/check.h"
#include "transports/json.h"

static bool is_document(const char *text, size_t len);
static struct rh_span span_of(const char *s);
static void test_accepted(void);
static void test_refused(void);
static void test_value_len(void);
static void test_depth(void);
static void test_kinds(void);
static void test_iterators(void);
static void test_decode(void);
static void test_numbers(void);
static void test_writer(void);
static void check_round_trip(const void *s, size_t len, const void *expect, size_t expect_len);
static void check_written(const char *s, size_t len, const char *want);

/* RFC 8259 texts every strict parser accepts (JSONTestSuite "y_" in spirit). */
static const char *const accepted[] = {
    "[]",
    "{}",
    "[1]",
    "[-0]",
    "[0]",
    "[0.5]",
    "[1e10]",
    "[1E+2]",
    "[-1e-2]",
    "[123.456e78]",
    "[0e0]",
    "[-0.0e-0]",
    "0",
    "-0",
    "123",
    "\"x\"",
    "true",
    "false",
    "null",
    " [ 1 , 2 ] ",
    "\t\r\n{\"a\" : 1 , \"b\" : [true,false,null]}\n",
    "{\"a\":1,\"b\":[true,false,null]}",
    "[\"\\u0000\"]",
    "[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]",
    "[\"\\uD834\\uDD1E\"]",
    "[\"\\ud834\\udd1e\"]",
    "[\"\\u00e9\\u00E9\"]",
    "[\"\\uFFFF\"]",
    "[\"\\u0061\"]",
    "[\"\\uDBFF\\uDFFF\"]",
    "{\"\":0}",
    "[[[]]]",
    "[1,[2,{\"a\":[3]}]]",
    "\"\\u20ac\"",
    "[\"\x7f\"]",
    "[\"\xc2\x80\"]",
    "[\"\xdf\xbf\"]",
    "[\"\xe0\xa0\x80\"]",
    "[\"\xed\x9f\xbf\"]",
    "[\"\xee\x80\x80\"]",
    "[\"\xef\xbf\xbf\"]",
    "[\"\xf0\x90\x80\x80\"]",
    "[\"\xf4\x8f\xbf\xbf\"]",
    "[\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9d\x84\x9e\"]",
    "{\"a\":{\"b\":{\"c\":{}}}}",
    "[1.7976931348623157e308]",
    "[-9223372036854775809]",
    "[1,\"2\",[3],{\"4\":5},true,false,null]",
    "{\"a\":1,\"a\":2}",
};

/* Texts a strict parser refuses ("n_"), including ones lenient parsers take. */
static const char *const refused[] = {
    "",
    " ",
    "[1,]",
    "[,1]",
    "[1,,2]",
    "{\"a\":1,}",
    "{,}",
    "[01]",
    "[-01]",
    "[00]",
    "[-]",
    "[- 1]",
    "[1.]",
    "[.5]",
    "[1e]",
    "[1e+]",
    "[1E-]",
    "[+1]",
    "[NaN]",
    "[Infinity]",
    "[-Infinity]",
    "[0x10]",
    "[1.5e]",
    "[1e1.5]",
    "[\"\\x\"]",
    "[\"\\u12\"]",
    "[\"\\u12G4\"]",
    "[\"\\uD800\"]",
    "[\"\\uDC00\"]",
    "[\"\\uDFFF\\uD800\"]",
    "[\"\\uD800\\u0041\"]",
    "[\"\\uD800\\n\"]",
    "[\"\\uD800\\uD800\"]",
    "[\"\t\"]",
    "[\"\x01\"]",
    "[\"\x1e\"]",
    "[\"\x1f\"]",
    "[\"abc",
    "[\"abc\\",
    "[",
    "{",
    "[1",
    "{\"a\"",
    "{\"a\":",
    "{\"a\"}",
    "{\"a\" 1}",
    "{a:1}",
    "{'a':1}",
    "['a']",
    "[tru]",
    "[True]",
    "[nul]",
    "[fals]",
    "[1 2]",
    "{\"a\":1 \"b\":2}",
    "]",
    "}",
    "[1]]",
    "[1]x",
    "[1}",
    "{\"a\":1]",
    "{\"a\":1:2}",
    "{1:1}",
    "[\"\x80\"]",
    "[\"\xbf\"]",
    "[\"\xc0\x80\"]",
    "[\"\xc1\xbf\"]",
    "[\"\xc2\"]",
    "[\"\xc2\x41\"]",
    "[\"\xe0\x80\x80\"]",
    "[\"\xe0\x9f\xbf\"]",
    "[\"\xed\xa0\x80\"]",
    "[\"\xed\xbf\xbf\"]",
    "[\"\xe2\x82\"]",
    "[\"\xf0\x80\x80\x80\"]",
    "[\"\xf0\x8f\xbf\xbf\"]",
    "[\"\xf4\x90\x80\x80\"]",
    "[\"\xf5\x80\x80\x80\"]",
    "[\"\xf8\x88\x80\x80\x80\"]",
    "[\"\xfe\"]",
    "[\"\xff\"]",
    "\xef\xbb\xbf[]",
    "[\xe2\x82\xac]",
    "[\"a\"\"b\"]",
    "\"\\u00\"",
    "[\\u0020]",
    "{\"a\":1}}",
    "[] []",
    "/* c */ []",
    "[1] // c",
    "[\"a\"],",
    "{\"a\":undefined}",
    "[\x00]",
    "[1\x00]",
    "[\"\\u0000\\",
    "-",
    "1.",
    "1e",
    "--1",
};

int main(void)
{
    int64_t base = rh_alloc_live_bytes();
    test_accepted();
    test_refused();
    test_value_len();
    test_depth();
    test_kinds();
    test_iterators();
    test_decode();
    test_numbers();
    test_writer();
    CHECK_EQ(rh_alloc_live_bytes(), base);
    return rh_check_finish();
}

/* One value and nothing but whitespace after it, as a hub record must be. */
static bool is_document(const char *text, size_t len)
{
    const char *reason = NULL;
    ssize_t n = rh_json_value_len((const uint8_t *)text, len, &reason);
    if (n < 0) {
        CHECK(reason != NULL);
        return false;
    }
    for (size_t i = (size_t)n; i < len; i++)
        if (text[i] == '\0' || !strchr(" \t\r\n", text[i])) return false;
    return true;
}

static struct rh_span span_of(const char *s)
{
    return rh_span_make(s, (uint32_t)strlen(s));
}

static void test_accepted(void)
{
    for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
        bool ok = is_document(accepted[i], strlen(accepted[i]));
        rh_check_report(ok, __FILE__, __LINE__, "accepted", accepted[i]);
    }
    /* A NUL inside a string must be escaped; one outside is garbage, never an end. */
    CHECK(is_document("[\"\\u0000\"]", 10));
}

static void test_refused(void)
{
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        bool ok = !is_document(refused[i], strlen(refused[i]));
        rh_check_report(ok, __FILE__, __LINE__, "refused", refused[i]);
    }
    CHECK(!is_document("[\x00]", 3));
    CHECK(!is_document("[\"\x00\"]", 5));
    CHECK(!is_document("[1]\x00", 4));
}

static void test_value_len(void)
{
    const char *reason = NULL;
    CHECK_EQ(rh_json_value_len((const uint8_t *)"  [1]  ", 7, &reason), 5);
    CHECK_EQ(rh_json_value_len((const uint8_t *)"1 ", 2, &reason), 1);
    CHECK_EQ(rh_json_value_len((const uint8_t *)"123", 3, &reason), 3);
    CHECK_EQ(rh_json_value_len((const uint8_t *)"{}{}", 4, &reason), 2);
    CHECK_EQ(rh_json_value_len((const uint8_t *)"\"a\"x", 4, &reason), 3);
    CHECK_EQ(rh_json_value_len((const uint8_t *)"truex", 5, &reason), 4);
    /* A value cut short is malformed, not "need more". */
    reason = NULL;
    CHECK_EQ(rh_json_value_len((const uint8_t *)"tr", 2, &reason), -EPROTO);
    CHECK(reason != NULL);
    reason = NULL;
    CHECK_EQ(rh_json_value_len((const uint8_t *)"{\"a\":[1,2", 9, &reason), -EPROTO);
    CHECK(reason != NULL);
    CHECK_EQ(rh_json_value_len(NULL, 0, &reason), -EPROTO);
    CHECK_EQ(rh_json_value_len((const uint8_t *)"x", 1, NULL), -EPROTO);
    /* Every prefix of a valid object is refused; the whole is accepted. */
    const char *obj = "{\"a\":[1,{\"b\":\"\\u00e9\"}],\"c\":-1.5e3}";
    for (size_t k = 0; k < strlen(obj); k++)
        CHECK_EQ(rh_json_value_len((const uint8_t *)obj, k, &reason), -EPROTO);
    CHECK_EQ(rh_json_value_len((const uint8_t *)obj, strlen(obj), &reason), (ssize_t)strlen(obj));
}

static void test_depth(void)
{
    char text[2 * (RH_JSON_DEPTH_MAX + 1) + 16];
    const char *reason = NULL;

    /* RH_JSON_DEPTH_MAX nested containers are fine; one more is refused. */
    for (int extra = 0; extra <= 1; extra++) {
        size_t depth = RH_JSON_DEPTH_MAX + (size_t)extra, n = 0;
        for (size_t i = 0; i < depth; i++)
            text[n++] = '[';
        for (size_t i = 0; i < depth; i++)
            text[n++] = ']';
        ssize_t len = rh_json_value_len((const uint8_t *)text, n, &reason);
        if (extra)
            CHECK_EQ(len, -EPROTO);
        else
            CHECK_EQ(len, (ssize_t)n);
    }

    /* Mixed objects and arrays count alike. */
    static char big[8 * RH_JSON_DEPTH_MAX + 64];
    size_t n = 0;
    for (size_t i = 0; i < RH_JSON_DEPTH_MAX; i++) {
        memcpy(big + n, i % 2 ? "[" : "{\"\":", i % 2 ? 1 : 4);
        n += i % 2 ? 1 : 4;
    }
    big[n++] = '0';
    for (size_t i = RH_JSON_DEPTH_MAX; i-- > 0;)
        big[n++] = i % 2 ? ']' : '}';
    CHECK_EQ(rh_json_value_len((const uint8_t *)big, n, &reason), (ssize_t)n);

    /* A hostile nest is refused quickly, without recursion. */
    static uint8_t deep[100000];
    memset(deep, '[', sizeof(deep));
    CHECK_EQ(rh_json_value_len(deep, sizeof(deep), &reason), -EPROTO);
    CHECK(strstr(reason, "deep") != NULL);
}

static void test_kinds(void)
{
    CHECK_EQ(rh_json_kind_of(span_of("null")), RH_JSON_NULL);
    CHECK_EQ(rh_json_kind_of(span_of("false")), RH_JSON_FALSE);
    CHECK_EQ(rh_json_kind_of(span_of("true")), RH_JSON_TRUE);
    CHECK_EQ(rh_json_kind_of(span_of("-1")), RH_JSON_NUMBER);
    CHECK_EQ(rh_json_kind_of(span_of("0.5")), RH_JSON_NUMBER);
    CHECK_EQ(rh_json_kind_of(span_of("\"\"")), RH_JSON_STRING);
    CHECK_EQ(rh_json_kind_of(span_of("[]")), RH_JSON_ARRAY);
    CHECK_EQ(rh_json_kind_of(span_of("{}")), RH_JSON_OBJECT);
    CHECK_EQ(rh_json_kind_of(span_of("")), RH_JSON_INVALID);
    CHECK_EQ(rh_json_kind_of(span_of("x")), RH_JSON_INVALID);
}

static void test_iterators(void)
{
    struct rh_json_iter it;
    struct rh_span key, value;

    const char *arr = "[1, \"a,]\" ,{\"x\":[1,2]}, [ ], null,\"\\\"\"]";
    const char *want[] = {"1", "\"a,]\"", "{\"x\":[1,2]}", "[ ]", "null", "\"\\\"\""};
    uint32_t count = 0;
    rh_json_iter_init(&it, span_of(arr));
    while (rh_json_iter_next(&it, NULL, &value)) {
        if (count < 6) CHECK(rh_span_eq_str(value, want[count]));
        count++;
    }
    CHECK_EQ(count, 6);
    CHECK(!rh_json_iter_next(&it, NULL, &value));

    const char *obj = "{ \"a\" : 1 , \"b\":{\"c\":\"}\"} , \"d\\\"e\" :[] ,\"f\":\"g\"}";
    const char *keys[] = {"\"a\"", "\"b\"", "\"d\\\"e\"", "\"f\""};
    const char *values[] = {"1", "{\"c\":\"}\"}", "[]", "\"g\""};
    count = 0;
    rh_json_iter_init(&it, span_of(obj));
    while (rh_json_iter_next(&it, &key, &value)) {
        if (count < 4) {
            CHECK(rh_span_eq_str(key, keys[count]));
            CHECK(rh_span_eq_str(value, values[count]));
        }
        count++;
    }
    CHECK_EQ(count, 4);

    /* Without a key pointer, an object's values still come out in order. */
    count = 0;
    rh_json_iter_init(&it, span_of(obj));
    while (rh_json_iter_next(&it, NULL, &value))
        if (count < 4) CHECK(rh_span_eq_str(value, values[count++]));
    CHECK_EQ(count, 4);

    const char *empties[] = {"[]", "{}", "[ ]", "{ \n }", "", "5"};
    for (size_t i = 0; i < 6; i++) {
        rh_json_iter_init(&it, span_of(empties[i]));
        CHECK(!rh_json_iter_next(&it, &key, &value));
    }
}

static void test_decode(void)
{
    uint8_t out[64];
    CHECK_EQ(rh_json_string_decode(span_of("\"abc\""), out, sizeof(out)), 3);
    CHECK(memcmp(out, "abc", 3) == 0);
    CHECK_EQ(rh_json_string_decode(span_of("\"\""), out, sizeof(out)), 0);
    CHECK_EQ(rh_json_string_decode(span_of("\"\""), NULL, 0), 0);
    CHECK_EQ(rh_json_string_decode(span_of("\"a\\nb\\t\\\"\\\\\\/\\b\\f\\r\""), out, 64), 10);
    CHECK(memcmp(out, "a\nb\t\"\\/\b\f\r", 10) == 0);
    CHECK_EQ(rh_json_string_decode(span_of("\"\\u00e9\""), out, sizeof(out)), 2);
    CHECK(memcmp(out, "\xc3\xa9", 2) == 0);
    CHECK_EQ(rh_json_string_decode(span_of("\"\\u20AC\""), out, sizeof(out)), 3);
    CHECK(memcmp(out, "\xe2\x82\xac", 3) == 0);
    CHECK_EQ(rh_json_string_decode(span_of("\"\\uD834\\uDD1E!\""), out, sizeof(out)), 5);
    CHECK(memcmp(out, "\xf0\x9d\x84\x9e!", 5) == 0);
    CHECK_EQ(rh_json_string_decode(span_of("\"\\uDBFF\\uDFFF\""), out, sizeof(out)), 4);
    CHECK(memcmp(out, "\xf4\x8f\xbf\xbf", 4) == 0);
    CHECK_EQ(rh_json_string_decode(span_of("\"\\u0000\""), out, sizeof(out)), 1);
    CHECK_EQ(out[0], 0);
    CHECK_EQ(rh_json_string_decode(span_of("\"h\xc3\xa9\""), out, sizeof(out)), 3);

    /* Exactly fitting, one byte short (in a plain run and in an escape), not a string. */
    CHECK_EQ(rh_json_string_decode(span_of("\"abcd\""), out, 4), 4);
    CHECK_EQ(rh_json_string_decode(span_of("\"abcd\""), out, 3), -EMSGSIZE);
    CHECK_EQ(rh_json_string_decode(span_of("\"ab\\u20ac\""), out, 5), 5);
    CHECK_EQ(rh_json_string_decode(span_of("\"ab\\u20ac\""), out, 4), -EMSGSIZE);
    CHECK_EQ(rh_json_string_decode(span_of("123"), out, sizeof(out)), -EINVAL);
    CHECK_EQ(rh_json_string_decode(span_of("\""), out, sizeof(out)), -EINVAL);
    CHECK_EQ(rh_json_string_decode(span_of("\"\\uD800\""), out, sizeof(out)), -EINVAL);

    CHECK(rh_json_string_eq(span_of("\"type\""), "type"));
    CHECK(rh_json_string_eq(span_of("\"t\\u0079pe\""), "type"));
    CHECK(rh_json_string_eq(span_of("\"\\u0074ype\""), "type"));
    CHECK(rh_json_string_eq(span_of("\"\""), ""));
    CHECK(!rh_json_string_eq(span_of("\"typ\""), "type"));
    CHECK(!rh_json_string_eq(span_of("\"types\""), "type"));
    CHECK(!rh_json_string_eq(span_of("\"typ\\u0065s\""), "type"));
    CHECK(!rh_json_string_eq(span_of("\"\\u0000\""), ""));
    CHECK(!rh_json_string_eq(span_of("type"), "type"));
    CHECK(rh_json_string_eq(span_of("\"\\u00e9\""), "\xc3\xa9"));
}

static void test_numbers(void)
{
    int64_t i = 7;
    CHECK_EQ(rh_json_number_to_i64(span_of("0"), &i), 0);
    CHECK_EQ(i, 0);
    CHECK_EQ(rh_json_number_to_i64(span_of("-0"), &i), 0);
    CHECK_EQ(i, 0);
    CHECK_EQ(rh_json_number_to_i64(span_of("123"), &i), 0);
    CHECK_EQ(i, 123);
    CHECK_EQ(rh_json_number_to_i64(span_of("-123"), &i), 0);
    CHECK_EQ(i, -123);
    CHECK_EQ(rh_json_number_to_i64(span_of("9223372036854775807"), &i), 0);
    CHECK_EQ(i, INT64_MAX);
    CHECK_EQ(rh_json_number_to_i64(span_of("-9223372036854775808"), &i), 0);
    CHECK_EQ(i, INT64_MIN);
    CHECK_EQ(rh_json_number_to_i64(span_of("9223372036854775808"), &i), -ERANGE);
    CHECK_EQ(rh_json_number_to_i64(span_of("-9223372036854775809"), &i), -ERANGE);
    CHECK_EQ(rh_json_number_to_i64(span_of("99999999999999999999"), &i), -ERANGE);
    CHECK_EQ(rh_json_number_to_i64(span_of("1.0"), &i), -EINVAL);
    CHECK_EQ(rh_json_number_to_i64(span_of("1e2"), &i), -EINVAL);
    CHECK_EQ(rh_json_number_to_i64(span_of(""), &i), -EINVAL);
    CHECK_EQ(rh_json_number_to_i64(span_of("-"), &i), -EINVAL);
    CHECK_EQ(rh_json_number_to_i64(span_of("\"1\""), &i), -EINVAL);

    double d = 0;
    CHECK_EQ(rh_json_number_to_double(span_of("1.5"), &d), 0);
    CHECK(d == 1.5);
    CHECK_EQ(rh_json_number_to_double(span_of("-0.25"), &d), 0);
    CHECK(d == -0.25);
    CHECK_EQ(rh_json_number_to_double(span_of("1e3"), &d), 0);
    CHECK(d == 1000.0);
    CHECK_EQ(rh_json_number_to_double(span_of("1E-2"), &d), 0);
    CHECK(d > 0.0099 && d < 0.0101);
    CHECK_EQ(rh_json_number_to_double(span_of("42"), &d), 0);
    CHECK(d == 42.0);
    CHECK_EQ(rh_json_number_to_double(span_of("1e400"), &d), -EINVAL);
    CHECK_EQ(rh_json_number_to_double(span_of("1e-400"), &d), 0);
    CHECK_EQ(rh_json_number_to_double(span_of("inf"), &d), -EINVAL);
    CHECK_EQ(rh_json_number_to_double(span_of("0x10"), &d), -EINVAL);
    CHECK_EQ(rh_json_number_to_double(span_of(" 1"), &d), -EINVAL);
    CHECK_EQ(rh_json_number_to_double(span_of(""), &d), -EINVAL);

    /* Longer than the stack copy: one and 99 zeros. */
    char longnum[101];
    longnum[0] = '1';
    memset(longnum + 1, '0', 99);
    longnum[100] = '\0';
    CHECK_EQ(rh_json_number_to_double(span_of(longnum), &d), 0);
    CHECK(d > 0.99e99 && d < 1.01e99);
}

/* Writes @len bytes at @s as a string and checks the output is one valid JSON string that
 * decodes back to @expect (the input unless it had invalid UTF-8), with no raw control byte. */
static void check_round_trip(const void *s, size_t len, const void *expect, size_t expect_len)
{
    struct rh_buf *buf = rh_buf_new(0);
    rh_json_write_string(&buf, s, len);
    const char *reason;
    CHECK_EQ(rh_json_value_len(buf->data, buf->len, &reason), buf->len);
    bool has_control = false;
    for (uint32_t i = 0; i < buf->len; i++)
        has_control |= buf->data[i] < 0x20;
    CHECK(!has_control);
    uint8_t out[1024];
    struct rh_span v = rh_span_make(buf->data, buf->len);
    CHECK_EQ(rh_json_kind_of(v), RH_JSON_STRING);
    ssize_t n = rh_json_string_decode(v, out, sizeof(out));
    CHECK_EQ(n, (ssize_t)expect_len);
    CHECK(n == (ssize_t)expect_len && memcmp(out, expect, expect_len) == 0);
    rh_buf_unref(buf);
}

static void check_written(const char *s, size_t len, const char *want)
{
    struct rh_buf *buf = rh_buf_new(0);
    rh_json_write_string(&buf, s, len);
    bool ok = buf->len == strlen(want) && memcmp(buf->data, want, buf->len) == 0;
    rh_check_report(ok, __FILE__, __LINE__, "written", want);
    rh_buf_unref(buf);
}

static void test_writer(void)
{
    uint8_t all[128];
    for (int c = 0; c < 128; c++) {
        uint8_t b = (uint8_t)c;
        check_round_trip(&b, 1, &b, 1);
        all[c] = b;
    }
    check_round_trip(all, sizeof(all), all, sizeof(all));

    const char *text = "h\xc3\xa9llo \xe2\x82\xac \xf0\x9d\x84\x9e \xf4\x8f\xbf\xbf \xef\xbf\xbf";
    check_round_trip(text, strlen(text), text, strlen(text));
    check_round_trip("", 0, "", 0);

    check_written("", 0, "\"\"");
    check_written("\n", 1, "\"\\n\"");
    check_written("\b\f\r\t", 4, "\"\\b\\f\\r\\t\"");
    check_written("\x01", 1, "\"\\u0001\"");
    check_written("\x1e", 1, "\"\\u001e\"");
    check_written("\x1f", 1, "\"\\u001f\"");
    check_written("\0", 1, "\"\\u0000\"");
    check_written("a\"b\\c/", 6, "\"a\\\"b\\\\c/\"");
    check_written("\x7f", 1, "\"\x7f\"");
    check_written(text, strlen(text),
                  "\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9d\x84\x9e \xf4\x8f\xbf\xbf \xef\xbf\xbf\"");

    /* Invalid UTF-8 in: each offending byte becomes U+FFFD, so the output stays valid. */
    check_written("\xff", 1, "\"\\ufffd\"");
    check_written("a\xc0\x80z", 4, "\"a\\ufffd\\ufffdz\"");
    check_written("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"");
    check_written("\xe2\x82", 2, "\"\\ufffd\\ufffd\"");
    check_round_trip("a\xf5\x80z", 4, "a\xef\xbf\xbd\xef\xbf\xbdz", 8);

    /* Appends after what the buffer holds. */
    struct rh_buf *buf = rh_buf_copy("[", 1);
    rh_json_write_string(&buf, "x", 1);
    CHECK_EQ(buf->len, 4);
    CHECK(memcmp(buf->data, "[\"x\"", 4) == 0);
    rh_buf_unref(buf);
}

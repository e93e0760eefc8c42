/* The one number parser: every form a number may take or not take, each
 * outcome told apart (a number, not a number, out of range), as a table. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "check.h"
#include "mixreg/parse.h"

typedef enum { OK, NOT_A_NUMBER, OUT_OF_RANGE } outcome;

static const char *outcome_needle(outcome o, int whole)
{
    if (o == NOT_A_NUMBER) return whole ? "is not a whole number" : "is not a number";
    return "must be in";
}

/* Reals: range [-10, 1e300] unless a case gives its own. */
static void test_doubles(void)
{
    static const struct {
        const char *text;
        outcome want;
        double value;
    } cases[] = {
        {"1", OK, 1},
        {"-2.5", OK, -2.5},
        {"+3", OK, 3},
        {".5", OK, 0.5},
        {"5.", OK, 5},
        {"1e3", OK, 1000},
        {"1E-3", OK, 1e-3},
        {"2.5e+2", OK, 250},
        {"0", OK, 0},
        {"-0", OK, 0},
        {"2.2250738585072014e-308", OK, DBL_MIN},   /* the smallest normal double */
        {"1e300", OK, 1e300},
        /* whitespace: none before, none after */
        {" 1", NOT_A_NUMBER, 0},
        {"1 ", NOT_A_NUMBER, 0},
        {"\t1", NOT_A_NUMBER, 0},
        {"1\n", NOT_A_NUMBER, 0},
        {" ", NOT_A_NUMBER, 0},
        {"", NOT_A_NUMBER, 0},
        /* not decimal numbers */
        {"0x10", NOT_A_NUMBER, 0},
        {"0x1p3", NOT_A_NUMBER, 0},
        {"inf", NOT_A_NUMBER, 0},
        {"-inf", NOT_A_NUMBER, 0},
        {"infinity", NOT_A_NUMBER, 0},
        {"nan", NOT_A_NUMBER, 0},
        {"NAN(1)", NOT_A_NUMBER, 0},
        /* malformed or trailing junk */
        {"1e", NOT_A_NUMBER, 0},
        {"e5", NOT_A_NUMBER, 0},
        {".", NOT_A_NUMBER, 0},
        {"-", NOT_A_NUMBER, 0},
        {"+-1", NOT_A_NUMBER, 0},
        {"--1", NOT_A_NUMBER, 0},
        {"1.2.3", NOT_A_NUMBER, 0},
        {"1,5", NOT_A_NUMBER, 0},
        {"1e3x", NOT_A_NUMBER, 0},
        {"5%", NOT_A_NUMBER, 0},
        /* numbers, but not in range: too large or small for a double, or for the setting */
        {"1e400", OUT_OF_RANGE, 0},
        {"-1e400", OUT_OF_RANGE, 0},
        {"5e-324", OUT_OF_RANGE, 0},      /* subnormal */
        {"1e-400", OUT_OF_RANGE, 0},      /* below every double but zero */
        {"1e301", OUT_OF_RANGE, 0},
        {"-10.5", OUT_OF_RANGE, 0},
        {"99999999999999999999", OK, 1e20},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        double v = -99;
        mx_error_clear();
        mx_status st = mx_parse_double("--x", cases[k].text, -10, 1e300, &v);
        int good = cases[k].want == OK ? st == MX_OK && v == cases[k].value
                                       : st == MX_ERR_ARG && v == -99 &&
                                             strstr(mx_error_message(), outcome_needle(cases[k].want, 0)) &&
                                             !strncmp(mx_error_message(), "--x", 3);
        CHECK(good);
        if (!good) fprintf(stderr, "  double case '%s': status %d, value %g, message '%s'\n", cases[k].text, (int)st, v,
                           mx_error_message());
    }
    /* A subnormal is refused even where the range holds it. */
    double v;
    CHECK(mx_parse_double("--x", "5e-324", 0, 1, &v) == MX_ERR_ARG && strstr(mx_error_message(), "range of a double"));
    /* The whole text counts: over-long texts are refused, not truncated. */
    char longer[600];
    memset(longer, '1', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    CHECK(mx_parse_double("--x", longer, 0, 1, &v) == MX_ERR_ARG);
}

/* Whole numbers: range [2, 1000] unless a case says otherwise. */
static void test_sizes(void)
{
    static const struct {
        const char *text;
        outcome want;
        size_t value;
    } cases[] = {
        {"2", OK, 2},
        {"1000", OK, 1000},
        {"+5", OK, 5},
        {"007", OK, 7},
        {"1", OUT_OF_RANGE, 0},
        {"0", OUT_OF_RANGE, 0},
        {"-0", OUT_OF_RANGE, 0},
        {"-5", OUT_OF_RANGE, 0},
        {"1001", OUT_OF_RANGE, 0},
        {"18446744073709551615", OUT_OF_RANGE, 0},   /* 2^64 - 1 */
        {"18446744073709551616", OUT_OF_RANGE, 0},   /* 2^64: overflows, still out of range */
        {"99999999999999999999", OUT_OF_RANGE, 0},
        {"-99999999999999999999", OUT_OF_RANGE, 0},
        {" 5", NOT_A_NUMBER, 0},
        {"5 ", NOT_A_NUMBER, 0},
        {"", NOT_A_NUMBER, 0},
        {"+", NOT_A_NUMBER, 0},
        {"5.0", NOT_A_NUMBER, 0},
        {"1e2", NOT_A_NUMBER, 0},
        {"0x10", NOT_A_NUMBER, 0},
        {"12abc", NOT_A_NUMBER, 0},
        {"inf", NOT_A_NUMBER, 0},
        {"5steps", NOT_A_NUMBER, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        size_t v = 12345;
        mx_error_clear();
        mx_status st = mx_parse_size("--n", cases[k].text, 2, 1000, &v);
        int good = cases[k].want == OK ? st == MX_OK && v == cases[k].value
                                       : st == MX_ERR_ARG && v == 12345 &&
                                             strstr(mx_error_message(), outcome_needle(cases[k].want, 1));
        CHECK(good);
        if (!good) fprintf(stderr, "  size case '%s': status %d, value %zu, message '%s'\n", cases[k].text, (int)st, v,
                           mx_error_message());
    }
    size_t v;
    CHECK(mx_parse_size("--n", "0", 0, 10, &v) == MX_OK && v == 0);
    CHECK(mx_parse_size("--n", "-0", 0, 10, &v) == MX_OK && v == 0);
}

/* A number inside a longer text: a list item, the count before a unit. */
static void test_prefixes(void)
{
    size_t n;
    double d;
    CHECK(mx_parse_size_n("--n", "12,34", 2, 0, 100, &n) == MX_OK && n == 12);
    CHECK(mx_parse_size_n("--n", "5steps", 1, 0, 100, &n) == MX_OK && n == 5);
    CHECK(mx_parse_size_n("--n", "5steps", 2, 0, 100, &n) == MX_ERR_ARG && strstr(mx_error_message(), "'5s'"));
    CHECK(mx_parse_size_n("--n", "", 0, 0, 100, &n) == MX_ERR_ARG);
    CHECK(mx_parse_double_n("--d", "0.5,1e400", 3, 0, 1, &d) == MX_OK && d == 0.5);
    CHECK(mx_parse_double_n("--d", "1e400,0.5", 5, 0, 1, &d) == MX_ERR_ARG && strstr(mx_error_message(), "must be in"));
    CHECK(mx_parse_is_number("1e400", 5) && !mx_parse_is_number("1e", 2) && !mx_parse_is_number(" 1", 2));
}

/* Values that arrive parsed (JSON numbers): the same range messages. */
static void test_checks(void)
{
    CHECK(mx_check_double_range("--lr", 0.5, 0, 1) == MX_OK);
    CHECK(mx_check_double_range("--lr", -1, 0, 1) == MX_ERR_ARG && strstr(mx_error_message(), "--lr must be in [0, 1], got -1"));
    CHECK(mx_check_double_range("--lr", INFINITY, 0, 1) == MX_ERR_ARG);
    CHECK(mx_check_double_range("--lr", NAN, 0, 1) == MX_ERR_ARG);
    CHECK(mx_check_double_range("--x", 0.9000001, 0, 0.9) == MX_ERR_ARG && strstr(mx_error_message(), "got 0.9000001"));
    CHECK(mx_check_count_range("--n", 3, 1, 5) == MX_OK);
    CHECK(mx_check_count_range("--n", 0, 1, 5) == MX_ERR_ARG && strstr(mx_error_message(), "--n must be in 1..5, got 0"));
    CHECK(mx_check_count_range("--n", 2.5, 1, 5) == MX_ERR_ARG && strstr(mx_error_message(), "not a whole number"));
    CHECK(mx_check_count_range("--n", 1e300, 1, 5) == MX_ERR_ARG && strstr(mx_error_message(), "must be in"));
    CHECK(mx_check_count_range("--n", -INFINITY, 1, 5) == MX_ERR_ARG);
}

static void test_bools(void)
{
    int on = -1;
    CHECK(mx_parse_bool("--s", "yes", &on) == MX_OK && on == 1);
    CHECK(mx_parse_bool("--s", "off", &on) == MX_OK && on == 0);
    CHECK(mx_parse_bool("--s", " on", &on) == MX_ERR_ARG);
    CHECK(mx_parse_bool("--s", "2", &on) == MX_ERR_ARG);
}

int main(void)
{
    test_doubles();
    test_sizes();
    test_prefixes();
    test_checks();
    test_bools();
    CHECK_DONE();
}

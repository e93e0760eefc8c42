/* Parsing an experiment file into its runs: sections are methods, comma
 * lists are grid axes, every value is checked by the same flag table as
 * `mixreg train`, and every error names the file and line. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/experiment.h"
#include "mixreg/fileio.h"
#include "mixreg/parse.h"

#define MAX_SETTINGS 64
#define MAX_VALUES 64
#define MAX_SECTIONS 64
#define MAX_RUNS 10000

typedef struct {
    char key[64];
    char *values[MAX_VALUES];
    size_t count, line;
} setting;

typedef struct {
    char name[64];
    size_t line;
    setting settings[MAX_SETTINGS];
    size_t count;
} section;

typedef struct {
    const char *path;
    section shared;
    section *sections;
    size_t count;
    size_t run_capacity;
} parse_state;

static void free_section(section *s)
{
    for (size_t i = 0; i < s->count; i++)
        for (size_t v = 0; v < s->settings[i].count; v++) free(s->settings[i].values[v]);
    s->count = 0;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
    return s;
}

/* Re-raises the current error with "<path>:<line>: " (and a prefix) in front:
 * the message is copied first because it lives in the buffer being written. */
static mx_status error_at(const char *path, size_t line, const char *prefix)
{
    char message[512];
    snprintf(message, sizeof message, "%s", mx_error_message());
    return mx_error_set(MX_ERR_ARG, "%s:%zu: %s%s", path, line, prefix, message);
}

/* Keys whose one value may itself hold commas. */
static int single_valued(const char *key)
{
    return !strcmp(key, "hidden") || !strcmp(key, "schedule") || !strcmp(key, "data") || !strcmp(key, "normalize") ||
           !strcmp(key, "augment");
}

/* Keys of the experiment as a whole, set before the first section. */
static int whole_experiment_key(const char *key)
{
    return !strcmp(key, "bins") || !strcmp(key, "temperature") || !strcmp(key, "analyze-seeds");
}

static int experiment_key(const char *key) { return !strcmp(key, "seeds") || whole_experiment_key(key); }

/* Checks one value of `key` on its own, so a bad value is reported at its line. */
static mx_status check_value(const parse_state *p, size_t line, const char *key, const char *value)
{
    mx_status st = MX_OK;
    mx_train_config scratch;
    mx_train_config_default(&scratch);
    if (!strcmp(key, "seeds")) {
        /* Each seed is a --seed value: its range is the settings table's. */
        st = mx_train_config_set(&scratch, "seed", value);
    } else if (!strcmp(key, "bins")) {
        size_t bins;
        st = mx_parse_size("bins", value, 1, 1000, &bins);
    } else if (!strcmp(key, "temperature")) {
        int on;
        st = mx_parse_bool("temperature", value, &on);
    } else if (!strcmp(key, "analyze-seeds")) {
        /* none, all, or seeds (each a --seed value). */
        if (strcmp(value, "none") && strcmp(value, "all") && mx_train_config_set(&scratch, "seed", value) != MX_OK)
            st = mx_error_set(MX_ERR_ARG, "analyze-seeds: '%s' is not none, all or a seed", value);
    } else {
        st = mx_train_config_set(&scratch, key, value);
    }
    return st == MX_OK ? MX_OK : error_at(p->path, line, "");
}

static mx_status parse_setting(parse_state *p, section *sec, size_t line, char *text)
{
    char *eq = strchr(text, '=');
    if (!eq) return mx_error_set(MX_ERR_ARG, "%s:%zu: expected 'key = value' or '[method]'", p->path, line);
    *eq = '\0';
    const char *key = trim(text);
    char *value = trim(eq + 1);
    if (!*key || strlen(key) >= sizeof sec->settings[0].key)
        return mx_error_set(MX_ERR_ARG, "%s:%zu: missing or over-long key", p->path, line);
    /* An alias (timm's name) stands for the setting's own flag, so a setting
     * has one name in the grid, in run names and in "set twice". */
    if (!experiment_key(key) && mx_train_flag_canonical(key)) key = mx_train_flag_canonical(key);
    if (!strcmp(key, "out") || !strcmp(key, "resume"))
        return mx_error_set(MX_ERR_ARG, "%s:%zu: '%s' is set by the experiment runner, not the file", p->path, line, key);
    if (!experiment_key(key) && mx_train_flag_kind(key) == MX_FLAG_UNKNOWN)
        return mx_error_set(MX_ERR_ARG, "%s:%zu: unknown key '%s' (any `mixreg train` flag without its dashes, "
                            "or seeds, bins, temperature, analyze-seeds)", p->path, line, key);
    if (sec != &p->shared && whole_experiment_key(key))
        return mx_error_set(MX_ERR_ARG, "%s:%zu: '%s' applies to the whole experiment: set it before the first section",
                            p->path, line, key);
    for (size_t i = 0; i < sec->count; i++)
        if (!strcmp(sec->settings[i].key, key))
            return mx_error_set(MX_ERR_ARG, "%s:%zu: '%s' is set twice (first at line %zu)", p->path, line, key,
                                sec->settings[i].line);
    if (!*value && mx_train_flag_kind(key) != MX_FLAG_SWITCH)
        return mx_error_set(MX_ERR_ARG, "%s:%zu: '%s' has no value", p->path, line, key);
    if (sec->count == MAX_SETTINGS) return mx_error_set(MX_ERR_ARG, "%s:%zu: too many settings", p->path, line);
    setting *s = &sec->settings[sec->count++];
    memset(s, 0, sizeof *s);
    strcpy(s->key, key);
    s->line = line;
    int split = !single_valued(key) && strcmp(key, "bins") && strcmp(key, "temperature");
    for (char *item = value, *next; item; item = next) {
        next = split ? strchr(item, ',') : NULL;
        if (next) *next++ = '\0';
        char *v = trim(item);
        if (!*v && mx_train_flag_kind(key) != MX_FLAG_SWITCH)
            return mx_error_set(MX_ERR_ARG, "%s:%zu: empty entry in the list for '%s'", p->path, line, key);
        if (s->count == MAX_VALUES) return mx_error_set(MX_ERR_ARG, "%s:%zu: list too long", p->path, line);
        for (size_t k = 0; k < s->count; k++)
            if (!strcmp(s->values[k], v))
                return mx_error_set(MX_ERR_ARG, "%s:%zu: '%s' appears twice in the list for '%s'", p->path, line, v, key);
        mx_status st = check_value(p, line, key, *v ? v : "true");
        if (st != MX_OK) return st;
        if (!(s->values[s->count] = strdup(*v ? v : "true"))) return mx_error_set(MX_ERR_NOMEM, "out of memory");
        s->count++;
    }
    return MX_OK;
}

int mx_experiment_name_is_safe(const char *name)
{
    /* One directory name under OUT/runs (or runs/): never "." or "..", which
     * lead out of it, never a path, never something that reads as a flag. */
    return name[0] && strcmp(name, ".") && strcmp(name, "..") && !strchr(name, '/') && name[0] != '-';
}

static mx_status parse_section_header(parse_state *p, size_t line, char *text)
{
    size_t n = strlen(text);
    if (text[n - 1] != ']') return mx_error_set(MX_ERR_ARG, "%s:%zu: a section header is '[name]'", p->path, line);
    text[n - 1] = '\0';
    char *name = trim(text + 1);
    if (!*name || strlen(name) >= sizeof p->sections[0].name)
        return mx_error_set(MX_ERR_ARG, "%s:%zu: empty or over-long method name", p->path, line);
    for (const char *c = name; *c; c++)
        if (!isalnum((unsigned char)*c) && !strchr("-_.+", *c))
            return mx_error_set(MX_ERR_ARG, "%s:%zu: method name '%s' may hold only letters, digits and - _ . +", p->path,
                                line, name);
    if (!mx_experiment_name_is_safe(name))
        return mx_error_set(MX_ERR_ARG, "%s:%zu: method name '%s' cannot name a run directory (not '.', '..' or starting "
                            "with '-')", p->path, line, name);
    for (size_t i = 0; i < p->count; i++)
        if (!strcmp(p->sections[i].name, name))
            return mx_error_set(MX_ERR_ARG, "%s:%zu: method [%s] is declared twice (first at line %zu)", p->path, line,
                                name, p->sections[i].line);
    if (p->count == MAX_SECTIONS) return mx_error_set(MX_ERR_ARG, "%s:%zu: too many methods", p->path, line);
    section *s = &p->sections[p->count++];
    memset(s, 0, sizeof *s);
    strcpy(s->name, name);
    s->line = line;
    return MX_OK;
}

static const setting *find_setting(const section *s, const char *key)
{
    for (size_t i = 0; i < s->count; i++)
        if (!strcmp(s->settings[i].key, key)) return &s->settings[i];
    return NULL;
}

/* The settings in force for a method: its own, then the shared ones it does not override. */
static size_t effective_settings(const parse_state *p, const section *sec, const setting **out)
{
    size_t n = 0;
    for (size_t i = 0; i < p->shared.count; i++)
        if (!find_setting(sec, p->shared.settings[i].key) && !whole_experiment_key(p->shared.settings[i].key))
            out[n++] = &p->shared.settings[i];
    for (size_t i = 0; i < sec->count; i++) out[n++] = &sec->settings[i];
    return n;
}

/* Appends "_key=value" (or " key=value" for groups) with characters unsafe in a
 * directory name replaced. */
static void append_label(char *dst, size_t cap, const char *sep, const char *key, const char *value)
{
    size_t len = strlen(dst);
    snprintf(dst + len, cap - len, "%s%s=%s", sep, key, value);
    for (char *c = dst + len + strlen(sep); c < dst + cap && *c; c++)
        if (*c == '/' || isspace((unsigned char)*c)) *c = '-';
}

static mx_status expand_section(parse_state *p, const section *sec, mx_experiment *e)
{
    const setting *in_force[2 * MAX_SETTINGS];
    size_t n = effective_settings(p, sec, in_force), choice[2 * MAX_SETTINGS] = {0};
    const setting *seeds = NULL;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(in_force[i]->key, "seeds")) seeds = in_force[i];
    for (;;) {
        size_t seed_count = seeds ? seeds->count : 1;
        for (size_t si = 0; si < seed_count; si++) {
            if (e->count == MAX_RUNS) return mx_error_set(MX_ERR_ARG, "%s: more than %d runs", p->path, MAX_RUNS);
            if (e->count == p->run_capacity) {
                size_t cap = p->run_capacity ? 2 * p->run_capacity : 16;
                mx_experiment_run *grown = realloc(e->runs, cap * sizeof *grown);
                if (!grown) return mx_error_set(MX_ERR_NOMEM, "out of memory");
                e->runs = grown;
                p->run_capacity = cap;
            }
            mx_experiment_run *r = &e->runs[e->count];
            memset(r, 0, sizeof *r);
            mx_train_config_default(&r->config);
            snprintf(r->method, sizeof r->method, "%s", sec->name);
            snprintf(r->name, sizeof r->name, "%s", sec->name);
            snprintf(r->group, sizeof r->group, "%s", sec->name);
            r->line = sec->line;
            for (size_t i = 0; i < n; i++) {
                const setting *s = in_force[i];
                if (s == seeds) continue;
                const char *value = s->values[choice[i]];
                mx_status st = mx_train_config_set(&r->config, s->key, value);
                if (st != MX_OK) return error_at(p->path, s->line, "");
                if (s->count > 1) {
                    append_label(r->name, sizeof r->name, "_", s->key, value);
                    append_label(r->group, sizeof r->group, " ", s->key, value);
                }
            }
            if (seeds) {
                mx_train_config_set(&r->config, "seed", seeds->values[si]);
                append_label(r->name, sizeof r->name, "_", "seed", seeds->values[si]);
            }
            if (mx_train_config_validate(&r->config) != MX_OK) {
                char prefix[80];
                snprintf(prefix, sizeof prefix, "[%s]: ", sec->name);
                return error_at(p->path, sec->line, prefix);
            }
            e->count++;
        }
        /* Next grid point: an odometer over the multi-valued settings. */
        size_t i = n;
        while (i > 0 && (in_force[i - 1] == seeds || ++choice[i - 1] == in_force[i - 1]->count)) {
            if (in_force[i - 1] != seeds) choice[i - 1] = 0;
            i--;
        }
        if (i == 0) return MX_OK;
    }
}

/* Every run directory name, whatever the labels appended to the method's. */
static mx_status check_run_names(const char *path, const mx_experiment *e)
{
    for (size_t i = 0; i < e->count; i++)
        if (!mx_experiment_name_is_safe(e->runs[i].name))
            return mx_error_set(MX_ERR_ARG, "%s:%zu: [%s] gives the run name '%s', which cannot name a run directory", path,
                                e->runs[i].line, e->runs[i].method, e->runs[i].name);
    return MX_OK;
}

/* Two runs with the same settings would be the same run twice. */
static mx_status check_duplicates(const char *path, const mx_experiment *e)
{
    char **json = calloc(e->count + 1, sizeof(char *));
    if (!json) return mx_error_set(MX_ERR_NOMEM, "out of memory");
    mx_status st = MX_OK;
    for (size_t i = 0; i < e->count && st == MX_OK; i++) {
        json[i] = mx_train_config_to_json(&e->runs[i].config);
        if (!json[i]) st = mx_error_set(MX_ERR_NOMEM, "out of memory");
        for (size_t j = 0; j < i && st == MX_OK; j++)
            if (!strcmp(json[i], json[j]))
                st = mx_error_set(MX_ERR_ARG, "%s:%zu: [%s] repeats a run of [%s] (line %zu): %s has the same settings as %s",
                                  path, e->runs[i].line, e->runs[i].method, e->runs[j].method, e->runs[j].line,
                                  e->runs[i].name, e->runs[j].name);
    }
    for (size_t i = 0; i < e->count; i++) free(json[i]);
    free(json);
    return st;
}

static void experiment_name(const char *path, char *out, size_t cap)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(out, cap, "%s", base);
    char *dot = strrchr(out, '.');
    if (dot && dot != out) *dot = '\0';
}

static mx_status parse_lines(parse_state *p, char *text)
{
    section *current = &p->shared;
    size_t line = 0;
    for (char *cursor = text, *next; cursor; cursor = next) {
        line++;
        next = strchr(cursor, '\n');
        if (next) *next++ = '\0';
        /* A comment starts at '#' at the line's start or after a blank. */
        for (char *h = strchr(cursor, '#'); h; h = strchr(h + 1, '#'))
            if (h == cursor || isspace((unsigned char)h[-1])) {
                *h = '\0';
                break;
            }
        char *s = trim(cursor);
        if (!*s) continue;
        mx_status st;
        if (*s == '[') {
            st = parse_section_header(p, line, s);
            if (st == MX_OK) current = &p->sections[p->count - 1];
        } else {
            st = parse_setting(p, current, line, s);
        }
        if (st != MX_OK) return st;
    }
    if (!p->count)
        return mx_error_set(MX_ERR_ARG, "%s: no methods: declare at least one section such as [erm]", p->path);
    return MX_OK;
}

/* analyze-seeds: none, all, or the seeds whose runs are analysed; each
 * listed seed must be some run's. */
static mx_status mark_analyzed(const char *path, const setting *s, mx_experiment *e)
{
    int all = 0;
    for (size_t k = 0; k < s->count; k++) {
        int word = !strcmp(s->values[k], "none") || !strcmp(s->values[k], "all");
        if (word && s->count > 1)
            return mx_error_set(MX_ERR_ARG, "%s:%zu: analyze-seeds: '%s' stands alone, not in a list of seeds", path,
                                s->line, s->values[k]);
        all = !strcmp(s->values[k], "all");
    }
    if (s->count == 1 && !strcmp(s->values[0], "none")) return MX_OK;
    for (size_t k = 0; k < s->count; k++) {
        mx_train_config scratch;
        mx_train_config_default(&scratch);
        if (!all) mx_train_config_set(&scratch, "seed", s->values[k]); /* checked when read */
        size_t matched = 0;
        for (size_t i = 0; i < e->count; i++)
            if (all || e->runs[i].config.seed == scratch.seed) e->runs[i].analyze = 1, matched++;
        if (!matched)
            return mx_error_set(MX_ERR_ARG, "%s:%zu: analyze-seeds: no run has seed %s", path, s->line, s->values[k]);
    }
    return MX_OK;
}

mx_status mx_experiment_parse(const char *path, const char *text, mx_experiment *out)
{
    memset(out, 0, sizeof *out);
    parse_state p = {.path = path};
    char *copy = strdup(text);
    p.sections = calloc(MAX_SECTIONS, sizeof(section));
    out->source = strdup(text);
    mx_status st = copy && p.sections && out->source ? MX_OK : mx_error_set(MX_ERR_NOMEM, "out of memory");
    if (st == MX_OK) st = parse_lines(&p, copy);
    experiment_name(path, out->name, sizeof out->name);
    out->bins = 15;
    out->temperature = 1;
    const setting *s;
    if (st == MX_OK && (s = find_setting(&p.shared, "bins"))) mx_parse_size("bins", s->values[0], 1, 1000, &out->bins);
    if (st == MX_OK && (s = find_setting(&p.shared, "temperature"))) mx_parse_bool("temperature", s->values[0], &out->temperature);
    for (size_t i = 0; st == MX_OK && i < p.count; i++) st = expand_section(&p, &p.sections[i], out);
    if (st == MX_OK && (s = find_setting(&p.shared, "analyze-seeds"))) st = mark_analyzed(path, s, out);
    if (st == MX_OK) st = check_run_names(path, out);
    if (st == MX_OK) st = check_duplicates(path, out);
    free_section(&p.shared);
    for (size_t i = 0; p.sections && i < p.count; i++) free_section(&p.sections[i]);
    free(p.sections);
    free(copy);
    if (st != MX_OK) mx_experiment_free(out);
    return st;
}

mx_status mx_experiment_default_out(const char *path, const mx_experiment *e, char *out, size_t cap)
{
    if (!mx_experiment_name_is_safe(e->name))
        return mx_error_set(MX_ERR_ARG, "%s: the file's name gives no usable output directory ('runs/%s'); give --out DIR",
                            path, e->name);
    if (snprintf(out, cap, "runs/%s", e->name) >= (int)cap) return mx_error_set(MX_ERR_ARG, "%s: name too long", path);
    return MX_OK;
}

mx_status mx_experiment_load(const char *path, mx_experiment *out)
{
    char *text;
    size_t size;
    mx_status st = mx_file_read_all(path, 1 << 20, &text, &size);
    if (st != MX_OK) return st;
    if (strlen(text) != size) st = mx_error_set(MX_ERR_FORMAT, "%s: not a text file (holds a NUL byte)", path);
    if (st == MX_OK) st = mx_experiment_parse(path, text, out);
    free(text);
    return st;
}

void mx_experiment_free(mx_experiment *e)
{
    free(e->source);
    free(e->runs);
    memset(e, 0, sizeof *e);
}

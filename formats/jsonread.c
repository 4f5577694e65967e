/*
 * The table-driven strict JSON reader (formats/jsonread.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/jsonread.h"

void fmt_jr_init(struct fmt_jr *r, void *ctx)
{
	memset(r, 0, sizeof(*r));
	r->ctx = ctx;
}

size_t fmt_jr_push_key(struct fmt_jr *r, const char *key)
{
	size_t old = strlen(r->path);

	snprintf(r->path + old, sizeof(r->path) - old, "%s%s", old ? "." : "", key);
	return old;
}

size_t fmt_jr_push_index(struct fmt_jr *r, size_t index)
{
	size_t old = strlen(r->path);

	snprintf(r->path + old, sizeof(r->path) - old, "[%zu]", index);
	return old;
}

void fmt_jr_pop(struct fmt_jr *r, size_t mark)
{
	if (mark < sizeof(r->path))
		r->path[mark] = '\0';
}

imp_err fmt_jr_fail(struct fmt_jr *r, const char *key, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (key)
		n = snprintf(r->msg, sizeof(r->msg), "%s%s%s: ", r->path, r->path[0] ? "." : "",
			     key);
	else
		n = snprintf(r->msg, sizeof(r->msg), "%s: ", r->path[0] ? r->path : "(top level)");
	if (n < 0 || (size_t)n >= sizeof(r->msg))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(r->msg + n, sizeof(r->msg) - (size_t)n, fmt, ap);
	va_end(ap);
	r->rc = IMP_ERR_CONFIG;
	return IMP_ERR_CONFIG;
}

imp_err fmt_jr_set_str(struct fmt_jr *r, char **dst, const char *s)
{
	char *d = strdup(s);

	if (!d)
		return fmt_jr_oom(r);
	free(*dst);
	*dst = d;
	return IMP_OK;
}

imp_err fmt_jr_oom(struct fmt_jr *r)
{
	snprintf(r->msg, sizeof(r->msg), "out of memory");
	r->rc = IMP_ERR_NOMEM;
	return IMP_ERR_NOMEM;
}

/* `"a", "b" or "c"` of a name list, into buf. */
static void name_list(const struct fmt_jr_name *names, char *buf, size_t cap)
{
	size_t n = 0;

	buf[0] = '\0';
	while (names[n].name)
		n++;
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(buf);

		snprintf(buf + len, cap - len, "%s\"%s\"", i == 0 ? "" : i + 1 == n ? " or " : ", ",
			 names[i].name);
	}
}

/* A bound as the message prints it: hex for large bounds of a HEX row. */
static void bound(char *buf, size_t cap, uint64_t v, bool hex)
{
	if (hex && v >= 0x10000)
		snprintf(buf, cap, "0x%" PRIx64, v);
	else
		snprintf(buf, cap, "%" PRIu64, v);
}

/* What a good value of f is, in words. */
static void expect_text(const struct fmt_jr_field *f, char *buf, size_t cap)
{
	char lo[24], hi[24];

	if (f->expect) {
		snprintf(buf, cap, "%s", f->expect);
		return;
	}
	switch (f->type) {
	case FMT_JR_STR:
		snprintf(buf, cap, "%s", f->flags & FMT_JR_EMPTY_OK ? "a string" : "a non-empty string");
		break;
	case FMT_JR_BOOL:
		snprintf(buf, cap, "true or false");
		break;
	case FMT_JR_UINT:
		bound(lo, sizeof(lo), f->min, f->flags & FMT_JR_HEX);
		bound(hi, sizeof(hi), f->max, f->flags & FMT_JR_HEX);
		if (f->flags & FMT_JR_HEX)
			snprintf(buf, cap, "a number from %s to %s (an integer or a \"0x...\" string)",
				 lo, hi);
		else
			snprintf(buf, cap, "an integer from %s to %s", lo, hi);
		break;
	case FMT_JR_ENUM:
		name_list(f->names, buf, cap);
		break;
	case FMT_JR_FLAGS:
		snprintf(buf, cap, "an array of names");
		break;
	case FMT_JR_OBJECT:
		snprintf(buf, cap, "an object");
		break;
	case FMT_JR_ARRAY:
		snprintf(buf, cap, "an array of objects");
		break;
	case FMT_JR_ANY:
		snprintf(buf, cap, "a value");
		break;
	}
}

imp_err fmt_jr_expected(struct fmt_jr *r, const struct fmt_jr_field *f)
{
	char what[FMT_JR_MSG_MAX / 2];

	expect_text(f, what, sizeof(what));
	return fmt_jr_fail(r, NULL, "expected %s", what);
}

/* The i-th key a table (or, without one, a name list) allows; NULL past the end. */
static const char *allowed_key(const struct fmt_jr_field *fields, const struct fmt_jr_name *names,
			       size_t i)
{
	return fields ? fields[i].name : names[i].name;
}

imp_err fmt_jr_keys(struct fmt_jr *r, json_t *o, const struct fmt_jr_field *fields,
		    const struct fmt_jr_name *names)
{
	const char *key;
	json_t *v;

	json_object_foreach(o, key, v) {
		char list[FMT_JR_MSG_MAX / 2] = "";
		const char *k;
		size_t i;

		(void)v;
		for (i = 0; (k = allowed_key(fields, names, i)) != NULL; i++)
			if (strcmp(key, k) == 0)
				break;
		if (k)
			continue;
		for (i = 0; (k = allowed_key(fields, names, i)) != NULL; i++) {
			size_t len = strlen(list);

			snprintf(list + len, sizeof(list) - len, "%s%s", i ? ", " : "", k);
		}
		return fmt_jr_fail(r, key, "unknown key (expected %s)", list);
	}
	return IMP_OK;
}

imp_err fmt_jr_uint(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v, uint64_t *out)
{
	uint64_t x;

	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);

		if (i < 0)
			return fmt_jr_expected(r, f);
		x = (uint64_t)i;
	} else if (json_is_string(v) && (f->flags & FMT_JR_HEX)) {
		const char *s = json_string_value(v);
		char *end = NULL;

		/* strtoull would take a sign or leading blanks; a number here has none */
		if (!*s || *s == '-' || *s == '+' || *s == ' ' ||
		    strlen(s) != json_string_length(v))
			return fmt_jr_expected(r, f);
		errno = 0;
		x = strtoull(s, &end, 0);
		if (errno || *end)
			return fmt_jr_expected(r, f);
	} else {
		return fmt_jr_expected(r, f);
	}
	if (x < f->min || x > f->max)
		return fmt_jr_expected(r, f);
	*out = x;
	return IMP_OK;
}

_Static_assert(sizeof(bool) == 1, "a FMT_JR_BOOL field is stored as one byte");

static void store(void *obj, const struct fmt_jr_field *f, uint64_t v)
{
	char *p = (char *)obj + f->offset;

	switch (f->size) {
	case 1: { /* also a bool: 0 or 1 */
		uint8_t x = (uint8_t)v;
		memcpy(p, &x, 1);
		break;
	}
	case 2: {
		uint16_t x = (uint16_t)v;
		memcpy(p, &x, 2);
		break;
	}
	case 4: {
		uint32_t x = (uint32_t)v;
		memcpy(p, &x, 4);
		break;
	}
	case 8:
		memcpy(p, &v, 8);
		break;
	default:
		break; /* 0: checked, not stored */
	}
}

static const struct fmt_jr_name *find_name(const struct fmt_jr_name *names, json_t *v)
{
	const char *s = json_string_value(v);

	for (size_t i = 0; s && names[i].name; i++)
		if (strcmp(s, names[i].name) == 0)
			return &names[i];
	return NULL;
}

static imp_err read_flags(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v,
			  uint64_t *out)
{
	size_t n = json_array_size(v);
	uint64_t bits = 0;

	if (!json_is_array(v) || n < f->min || (f->max && n > f->max))
		return fmt_jr_expected(r, f);
	for (size_t i = 0; i < n; i++) {
		const struct fmt_jr_name *nm = find_name(f->names, json_array_get(v, i));
		size_t mark = fmt_jr_push_index(r, i);
		char list[FMT_JR_MSG_MAX / 2];

		if (!nm || ((f->flags & FMT_JR_ONCE) && (bits & nm->value))) {
			name_list(f->names, list, sizeof(list));
			return fmt_jr_fail(r, NULL, "expected %s%s", list,
					   f->flags & FMT_JR_ONCE ? ", each once" : "");
		}
		fmt_jr_pop(r, mark);
		bits |= nm->value;
	}
	*out = bits;
	return IMP_OK;
}

static imp_err read_array(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v, void *obj)
{
	size_t n = json_array_size(v);
	void **slot = (void **)((char *)obj + f->offset);
	size_t *count = (size_t *)((char *)obj + f->count_offset);
	void *saved_elems = r->elems;
	size_t saved_index = r->index;
	char *elems;
	imp_err rc = IMP_OK;

	if (!json_is_array(v) || n < f->min || (f->max && n > f->max))
		return fmt_jr_expected(r, f);
	elems = calloc(n ? n : 1, f->sub->size);
	if (!elems)
		return fmt_jr_oom(r);
	*slot = elems;
	*count = 0;
	for (size_t i = 0; i < n && rc == IMP_OK; i++) {
		size_t mark = fmt_jr_push_index(r, i);

		*count = i + 1;
		r->elems = elems;
		r->index = i;
		rc = fmt_jr_object(r, json_array_get(v, i), f->sub, elems + i * f->sub->size);
		fmt_jr_pop(r, mark);
	}
	r->elems = saved_elems;
	r->index = saved_index;
	return rc;
}

static imp_err read_value(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v, void *obj)
{
	const struct fmt_jr_name *nm;
	uint64_t x = 0;
	imp_err rc;

	switch (f->type) {
	case FMT_JR_STR:
		if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
		    (json_string_length(v) == 0 && !(f->flags & FMT_JR_EMPTY_OK)))
			return fmt_jr_expected(r, f);
		if (f->set)
			return f->set(r, f, v, obj);
		if (f->size)
			return fmt_jr_set_str(r, (char **)((char *)obj + f->offset),
					      json_string_value(v));
		return IMP_OK;
	case FMT_JR_BOOL:
		if (!json_is_boolean(v))
			return fmt_jr_expected(r, f);
		x = json_is_true(v);
		break;
	case FMT_JR_UINT:
		rc = fmt_jr_uint(r, f, v, &x);
		if (rc != IMP_OK)
			return rc;
		break;
	case FMT_JR_ENUM:
		nm = find_name(f->names, v);
		if (!nm)
			return fmt_jr_expected(r, f);
		x = nm->value;
		break;
	case FMT_JR_FLAGS:
		rc = read_flags(r, f, v, &x);
		if (rc != IMP_OK)
			return rc;
		break;
	case FMT_JR_OBJECT:
		if (!json_is_object(v))
			return fmt_jr_expected(r, f);
		return fmt_jr_object(r, v, f->sub, (char *)obj + f->offset);
	case FMT_JR_ARRAY:
		return read_array(r, f, v, obj);
	case FMT_JR_ANY:
		return f->set ? f->set(r, f, v, obj) : IMP_OK;
	default:
		return fmt_jr_fail(r, NULL, "no reader for this member"); /* a table bug */
	}
	/* BOOL, UINT, ENUM, FLAGS: a number x */
	if (f->set)
		return f->set(r, f, v, obj);
	store(obj, f, x);
	return IMP_OK;
}

imp_err fmt_jr_object(struct fmt_jr *r, json_t *o, const struct fmt_jr_table *table, void *obj)
{
	imp_err rc;

	if (!json_is_object(o))
		return fmt_jr_fail(r, NULL, "expected an object");
	if (table->init)
		table->init(obj);
	rc = fmt_jr_keys(r, o, table->fields, NULL);
	if (rc != IMP_OK)
		return rc;
	for (const struct fmt_jr_field *f = table->fields; f->name; f++) {
		json_t *v = json_object_get(o, f->name);
		size_t mark;

		if (v && json_is_null(v) && (f->flags & FMT_JR_NULLABLE))
			v = NULL;
		mark = fmt_jr_push_key(r, f->name);
		if (v)
			rc = read_value(r, f, v, obj);
		else if (f->flags & FMT_JR_REQUIRED) {
			char what[FMT_JR_MSG_MAX / 2];

			expect_text(f, what, sizeof(what));
			rc = fmt_jr_fail(r, NULL, "missing (expected %s)", what);
		}
		fmt_jr_pop(r, mark);
		if (rc != IMP_OK)
			return rc;
	}
	return table->finish ? table->finish(r, o, obj) : IMP_OK;
}

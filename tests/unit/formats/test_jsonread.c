/*
 * The table-driven JSON reader on its own: unknown keys, types, required
 * members, bounds, names, nested objects and arrays, each error naming the
 * full JSON path.
 */
#include <stdio.h>
#include <stdlib.h>

#include "fmt_test.h"

#include "formats/jsonread.h"

struct item {
	char *label;
	unsigned weight;
};

struct doc {
	char *name;
	bool on;
	uint64_t big;
	uint32_t addr;
	uint8_t small;
	unsigned colour;
	uint16_t bits;
	struct {
		unsigned depth;
		char *note;
	} inner;
	struct item *items;
	size_t n_items;
	int checked;
};

static const struct fmt_jr_name colours[] = {
	{ "red", 1 }, { "green", 2 }, { "blue", 3 }, { NULL, 0 },
};

static const struct fmt_jr_name bit_names[] = {
	{ "a", 1 }, { "b", 2 }, { "c", 4 }, { NULL, 0 },
};

/* An item's label must not repeat an earlier one's (r->elems, r->index). */
static imp_err item_finish(struct fmt_jr *r, json_t *o, void *obj)
{
	const struct item *it = obj;
	const struct item *all = r->elems;

	(void)o;
	for (size_t i = 0; i < r->index; i++)
		if (strcmp(all[i].label, it->label) == 0)
			return fmt_jr_fail(r, "label", "repeats items[%zu]", i);
	return IMP_OK;
}

static void item_init(void *obj)
{
	((struct item *)obj)->weight = 7;
}

static const struct fmt_jr_table item_table = {
	.fields = (const struct fmt_jr_field[]){
		{ .name = "label", .type = FMT_JR_STR, .flags = FMT_JR_REQUIRED,
		  FMT_JR_AT(struct item, label) },
		{ .name = "weight", .type = FMT_JR_UINT, .min = 1, .max = 9,
		  FMT_JR_AT(struct item, weight) },
		{ 0 },
	},
	.size = sizeof(struct item),
	.init = item_init,
	.finish = item_finish,
};

/* A setter: "checked" counts how often it ran, and refuses 13. */
static imp_err set_checked(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v, void *obj)
{
	struct doc *d = obj;
	uint64_t x = 0;
	imp_err rc;

	rc = fmt_jr_uint(r, f, v, &x);
	if (rc != IMP_OK)
		return rc;
	if (x == 13)
		return fmt_jr_fail(r, NULL, "unlucky");
	d->checked = (int)x;
	return IMP_OK;
}

static imp_err doc_finish(struct fmt_jr *r, json_t *o, void *obj)
{
	const struct doc *d = obj;

	(void)o;
	if (d->on && !d->name)
		return fmt_jr_fail(r, "name", "missing (required with on)");
	return IMP_OK;
}

static const struct fmt_jr_table doc_table = {
	.fields = (const struct fmt_jr_field[]){
		{ .name = "name", .type = FMT_JR_STR, .flags = FMT_JR_NULLABLE,
		  FMT_JR_AT(struct doc, name) },
		{ .name = "on", .type = FMT_JR_BOOL, FMT_JR_AT(struct doc, on) },
		{ .name = "big", .type = FMT_JR_UINT, .max = UINT64_MAX / 2,
		  FMT_JR_AT(struct doc, big) },
		{ .name = "addr", .type = FMT_JR_UINT, .flags = FMT_JR_HEX, .max = 0xFFFFFFFFu,
		  FMT_JR_AT(struct doc, addr) },
		{ .name = "small", .type = FMT_JR_UINT, .min = 2, .max = 200,
		  FMT_JR_AT(struct doc, small) },
		{ .name = "colour", .type = FMT_JR_ENUM, .names = colours,
		  FMT_JR_AT(struct doc, colour) },
		{ .name = "bits", .type = FMT_JR_FLAGS, .flags = FMT_JR_ONCE, .min = 1, .max = 3,
		  .names = bit_names, FMT_JR_AT(struct doc, bits) },
		{ .name = "inner", .type = FMT_JR_OBJECT,
		  .sub = &(const struct fmt_jr_table){
			  .fields = (const struct fmt_jr_field[]){
				  { .name = "depth", .type = FMT_JR_UINT, .flags = FMT_JR_REQUIRED,
				    .max = 3, FMT_JR_AT(struct doc, inner.depth) },
				  { .name = "note", .type = FMT_JR_STR, .flags = FMT_JR_EMPTY_OK,
				    FMT_JR_AT(struct doc, inner.note) },
				  { 0 },
			  },
		  } },
		{ .name = "items", .type = FMT_JR_ARRAY, .min = 1, .max = 4, .sub = &item_table,
		  .offset = offsetof(struct doc, items),
		  .count_offset = offsetof(struct doc, n_items) },
		{ .name = "checked", .type = FMT_JR_UINT, .max = 100, .set = set_checked },
		{ .name = "ignored", .type = FMT_JR_ANY },
		{ 0 },
	},
	.finish = doc_finish,
};

static void doc_release(struct doc *d)
{
	free(d->name);
	free(d->inner.note);
	for (size_t i = 0; i < d->n_items; i++)
		free(d->items[i].label);
	free(d->items);
	memset(d, 0, sizeof(*d));
}

/* Read text into d; the reader's message (or "") into msg. */
static imp_err read_doc(const char *text, struct doc *d, char msg[FMT_JR_MSG_MAX])
{
	json_error_t jerr;
	json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	struct fmt_jr r;
	imp_err rc;

	if (!root)
		fail_msg("bad test JSON %s: %s", text, jerr.text);
	memset(d, 0, sizeof(*d));
	fmt_jr_init(&r, NULL);
	rc = fmt_jr_object(&r, root, &doc_table, d);
	snprintf(msg, FMT_JR_MSG_MAX, "%s", rc == IMP_OK ? "" : r.msg);
	assert_int_equal(r.rc, rc);
	json_decref(root);
	return rc;
}

static void expect_msg(const char *text, const char *want)
{
	char msg[FMT_JR_MSG_MAX];
	struct doc d;

	assert_int_equal(read_doc(text, &d, msg), IMP_ERR_CONFIG);
	assert_string_equal(msg, want);
	doc_release(&d);
}

static void test_reads_every_type(void **state)
{
	char msg[FMT_JR_MSG_MAX];
	struct doc d;

	(void)state;
	assert_int_equal(read_doc("{\"name\": \"n\", \"on\": true, \"big\": 4294967296, "
				  "\"addr\": \"0x20000000\", \"small\": 200, \"colour\": \"blue\", "
				  "\"bits\": [\"a\", \"c\"], \"inner\": {\"depth\": 3, \"note\": \"\"}, "
				  "\"items\": [{\"label\": \"x\"}, {\"label\": \"y\", \"weight\": 2}], "
				  "\"checked\": 42, \"ignored\": [1, {}]}", &d, msg), IMP_OK);
	assert_string_equal(d.name, "n");
	assert_true(d.on);
	assert_true(d.big == 4294967296ull);
	assert_int_equal(d.addr, 0x20000000u);
	assert_int_equal(d.small, 200);
	assert_int_equal(d.colour, 3);
	assert_int_equal(d.bits, 5);
	assert_int_equal(d.inner.depth, 3);
	assert_string_equal(d.inner.note, "");
	assert_int_equal(d.n_items, 2);
	assert_string_equal(d.items[0].label, "x");
	assert_int_equal(d.items[0].weight, 7); /* the element's init */
	assert_int_equal(d.items[1].weight, 2);
	assert_int_equal(d.checked, 42);
	doc_release(&d);
	/* absent members stay as they were; null counts as absent where allowed */
	assert_int_equal(read_doc("{\"name\": null, \"addr\": 17}", &d, msg), IMP_OK);
	assert_null(d.name);
	assert_int_equal(d.addr, 17);
	assert_null(d.items);
	doc_release(&d);
}

static void test_unknown_key(void **state)
{
	(void)state;
	expect_msg("{\"nmae\": \"x\"}",
		   "nmae: unknown key (expected name, on, big, addr, small, colour, bits, inner, "
		   "items, checked, ignored)");
	expect_msg("{\"inner\": {\"depth\": 1, \"deep\": 2}}",
		   "inner.deep: unknown key (expected depth, note)");
	expect_msg("{\"items\": [{\"label\": \"a\"}, {\"label\": \"b\", \"w\": 1}]}",
		   "items[1].w: unknown key (expected label, weight)");
}

static void test_wrong_type(void **state)
{
	(void)state;
	expect_msg("[1]", "(top level): expected an object");
	expect_msg("{\"name\": 3}", "name: expected a non-empty string");
	expect_msg("{\"name\": \"\"}", "name: expected a non-empty string");
	expect_msg("{\"on\": 1}", "on: expected true or false");
	expect_msg("{\"small\": \"5\"}", "small: expected an integer from 2 to 200");
	expect_msg("{\"small\": 5.0}", "small: expected an integer from 2 to 200");
	expect_msg("{\"addr\": \"-1\"}",
		   "addr: expected a number from 0 to 0xffffffff (an integer or a \"0x...\" string)");
	expect_msg("{\"addr\": \"0x1g\"}",
		   "addr: expected a number from 0 to 0xffffffff (an integer or a \"0x...\" string)");
	expect_msg("{\"colour\": \"pink\"}", "colour: expected \"red\", \"green\" or \"blue\"");
	expect_msg("{\"colour\": 1}", "colour: expected \"red\", \"green\" or \"blue\"");
	expect_msg("{\"inner\": []}", "inner: expected an object");
	expect_msg("{\"items\": {}}", "items: expected an array of objects");
	expect_msg("{\"items\": [{\"label\": \"a\"}, 5]}", "items[1]: expected an object");
	expect_msg("{\"bits\": \"a\"}", "bits: expected an array of names");
}

static void test_missing_required(void **state)
{
	(void)state;
	expect_msg("{\"inner\": {}}", "inner.depth: missing (expected an integer from 0 to 3)");
	expect_msg("{\"items\": [{\"label\": \"a\"}, {\"label\": \"b\"}, {\"weight\": 1}]}",
		   "items[2].label: missing (expected a non-empty string)");
	/* the table's finish hook sees the whole object */
	expect_msg("{\"on\": true}", "name: missing (required with on)");
}

static void test_bounds(void **state)
{
	char msg[FMT_JR_MSG_MAX];
	struct doc d;

	(void)state;
	expect_msg("{\"small\": 1}", "small: expected an integer from 2 to 200");
	expect_msg("{\"small\": 201}", "small: expected an integer from 2 to 200");
	expect_msg("{\"small\": -3}", "small: expected an integer from 2 to 200");
	expect_msg("{\"addr\": \"0x100000000\"}",
		   "addr: expected a number from 0 to 0xffffffff (an integer or a \"0x...\" string)");
	expect_msg("{\"items\": []}", "items: expected an array of objects");
	expect_msg("{\"items\": [{\"label\": \"a\"}, {\"label\": \"b\"}, {\"label\": \"c\"}, "
		   "{\"label\": \"d\"}, {\"label\": \"e\"}]}", "items: expected an array of objects");
	expect_msg("{\"items\": [{\"label\": \"a\", \"weight\": 10}]}",
		   "items[0].weight: expected an integer from 1 to 9");
	expect_msg("{\"bits\": []}", "bits: expected an array of names");
	expect_msg("{\"bits\": [\"a\", \"b\", \"c\", \"a\"]}", "bits: expected an array of names");
	expect_msg("{\"bits\": [\"a\", \"a\"]}", "bits[1]: expected \"a\", \"b\" or \"c\", each once");
	expect_msg("{\"bits\": [\"a\", \"d\"]}", "bits[1]: expected \"a\", \"b\" or \"c\", each once");
	/* the edges themselves are values */
	assert_int_equal(read_doc("{\"small\": 2, \"addr\": \"0xffffffff\", \"inner\": "
				  "{\"depth\": 0}}", &d, msg), IMP_OK);
	assert_int_equal(d.small, 2);
	assert_int_equal(d.addr, 0xFFFFFFFFu);
	doc_release(&d);
}

static void test_setters_and_hooks(void **state)
{
	(void)state;
	expect_msg("{\"checked\": 13}", "checked: unlucky");
	expect_msg("{\"checked\": 101}", "checked: expected an integer from 0 to 100");
	expect_msg("{\"items\": [{\"label\": \"a\"}, {\"label\": \"b\"}, {\"label\": \"a\"}]}",
		   "items[2].label: repeats items[0]");
}

/* A path longer than the buffer is cut, never overrun. */
static void test_long_path(void **state)
{
	struct fmt_jr r;
	char key[400];

	(void)state;
	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	fmt_jr_init(&r, NULL);
	fmt_jr_push_key(&r, "a");
	fmt_jr_push_key(&r, key);
	assert_true(strlen(r.path) < FMT_JR_PATH_MAX);
	assert_int_equal(fmt_jr_fail(&r, "x", "bad"), IMP_ERR_CONFIG);
	assert_true(strlen(r.msg) < FMT_JR_MSG_MAX);
	fmt_jr_pop(&r, 1);
	assert_string_equal(r.path, "a");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reads_every_type),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_wrong_type),
		cmocka_unit_test(test_missing_required),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_setters_and_hooks),
		cmocka_unit_test(test_long_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Journal unit test of the canonical JSON writer (journal/canon.c): its
 * text is json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)
 * byte for byte, since event details are hashed into the chain and
 * journals written before it must still verify. Compared over chosen
 * values (every control character, escapes, multi-byte UTF-8, key orders,
 * integer limits, reals, wide and deep objects), over thousands of random
 * trees, and over the details a journal run writes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>

#include "jtest.h"
#include "imprint/util.h"
#include "journal_int.h"

#define REF_FLAGS (JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)

static unsigned compared;

/* Both writers on v (a reference taken): the same text, or both refuse. */
static void same(json_t *v, const char *what)
{
	char *ref, *got;

	assert_non_null(v);
	ref = json_dumps(v, REF_FLAGS);
	got = jcanon_dump(v);
	if (!ref || !got || strcmp(ref, got) != 0) {
		if (ref || got)
			fail_msg("%s: json_dumps %s, jcanon_dump %s", what, ref ? ref : "(fails)",
				 got ? got : "(fails)");
	}
	compared++;
	free(ref);
	free(got);
	json_decref(v);
}

static void test_scalars_and_escapes(void **state)
{
	char s[2];

	(void)state;
	same(json_object(), "empty object");
	same(json_array(), "empty array");
	same(json_true(), "true");
	same(json_false(), "false");
	same(json_null(), "null");
	same(json_string(""), "empty string");
	/* every byte below 0x20, alone and inside text */
	for (int c = 1; c < 0x20; c++) {
		s[0] = (char)c;
		s[1] = '\0';
		same(json_string(s), "control character");
		same(json_pack("{s:s}", s, "x"), "control character in a key");
	}
	same(json_stringn("a\0b", 3), "embedded NUL");
	same(json_string("quote \" backslash \\ slash / del \x7f tab\tend"), "escapes");
	same(json_string("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbf \xf4\x8f\xbf\xbf"),
	     "UTF-8 of 2, 3 and 4 bytes, U+FFFF, U+10FFFF");
	same(json_pack("{s:s, s:s, s:s}", "\xc3\xa9", "e", "z", "z", "\xe2\x82\xac", "euro"),
	     "UTF-8 keys");
	/* invalid UTF-8 made without jansson's check: both refuse */
	same(json_string_nocheck("bad \xff byte"), "invalid byte");
	same(json_string_nocheck("overlong \xc0\xaf"), "overlong");
	same(json_string_nocheck("surrogate \xed\xa0\x80"), "surrogate");
	same(json_string_nocheck("cut \xe2\x82"), "cut sequence");
	same(json_string_nocheck("above \xf4\x90\x80\x80"), "above U+10FFFF");
	same(json_integer(0), "0");
	same(json_integer(-1), "-1");
	same(json_integer(INT64_MAX), "INT64_MAX");
	same(json_integer(INT64_MIN), "INT64_MIN");
	same(json_pack("[f, f, f, f, f, f, f, f]", 0.1, 1.0, -0.0, 1e300, 1e-7, 3.0,
		       123456789012345678.0, -2.5e-300), "reals");
}

static void test_key_order(void **state)
{
	json_t *wide = json_object();
	json_t *deep = json_string("bottom");
	char key[16];

	(void)state;
	same(json_pack("{s:i, s:i, s:i, s:i, s:i, s:i}", "b", 1, "a", 2, "ab", 3, "B", 4, "",
		       5, "a\x7f", 6), "prefixes, case, empty key");
	same(json_pack("{s:{s:[i, {s:n, s:b}], s:s}, s:[]}", "z", "y", 1, "k", "j", 1, "x",
		       "w", "a"), "nested");
	/* more keys than the writer sorts on its stack */
	for (int i = 0; i < 300; i++) {
		snprintf(key, sizeof(key), "k%d", (i * 7919) % 1000);
		json_object_set_new(wide, key, json_integer(i));
	}
	same(wide, "300 keys");
	for (int i = 0; i < 200; i++)
		deep = i % 2 ? json_pack("{s:o}", "d", deep) : json_pack("[o]", deep);
	same(deep, "200 levels");
}

/* ------------------------------------------------------------ random */

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

static void rnd_text(char *out, size_t cap)
{
	static const char *const pieces[] = {
		"a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\x01", "\x1f", "\x7f",
		"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "key", "{}", "[]", ":", ",",
	};
	size_t n = rnd(12), o = 0;

	for (size_t i = 0; i < n; i++) {
		const char *p = pieces[rnd(IMP_ARRAY_SIZE(pieces))];
		size_t l = strlen(p);

		if (o + l >= cap)
			break;
		memcpy(out + o, p, l);
		o += l;
	}
	out[o] = '\0';
}

static json_t *rnd_value(int depth)
{
	char text[64];
	uint32_t kind = rnd(depth > 4 ? 6 : 9);

	switch (kind) {
	case 0:
		return json_null();
	case 1:
		return json_boolean(rnd(2));
	case 2:
		return json_integer((json_int_t)rnd(2000000) - 1000000);
	case 3:
		return json_real(((double)rnd(1000000) - 500000) / (1 + rnd(1000)));
	case 4:
	case 5:
		rnd_text(text, sizeof(text));
		return json_string(text);
	case 6:
	case 7: {
		json_t *o = json_object();

		for (uint32_t i = rnd(8); i > 0; i--) {
			rnd_text(text, sizeof(text));
			json_object_set_new(o, text, rnd_value(depth + 1));
		}
		return o;
	}
	default: {
		json_t *a = json_array();

		for (uint32_t i = rnd(6); i > 0; i--)
			json_array_append_new(a, rnd_value(depth + 1));
		return a;
	}
	}
}

static void test_random_trees(void **state)
{
	unsigned before = compared;

	(void)state;
	for (int i = 0; i < 5000; i++)
		same(rnd_value(0), "random tree");
	assert_int_equal(compared - before, 5000);
}

/* ----------------------------------------------------- member objects */

/* jcanon_object of members against json_dumps of json_pack of the same
 * (pack: a reference taken, NULL when json_pack refuses). */
static void same_object(const struct jcanon_member *m, size_t n, json_t *pack, const char *what)
{
	char *ref = pack ? json_dumps(pack, REF_FLAGS) : NULL;
	char *got = jcanon_object(m, n);

	if ((ref || got) && (!ref || !got || strcmp(ref, got) != 0))
		fail_msg("%s: json_pack+json_dumps %s, jcanon_object %s", what,
			 ref ? ref : "(fails)", got ? got : "(fails)");
	compared++;
	free(ref);
	free(got);
	json_decref(pack);
}

static void test_member_objects(void **state)
{
	static const char *const texts[] = {
		"KEYS", "", "F\xc3\xa9 \"1\"\n", "\\ / \x7f \x01", "\xf0\x9f\x98\x80",
		"bad \xff", NULL,
	};
	json_t *patch = json_pack("{s:s, s:{s:b}, s:n, s:[i, f]}", "pub", "04\t", "lock", "x",
				  1, "gone", "a", -3, 0.5);

	(void)state;
	for (size_t a = 0; a < IMP_ARRAY_SIZE(texts); a++) {
		for (size_t b = 0; b < IMP_ARRAY_SIZE(texts); b++) {
			const char *x = texts[a], *y = texts[b];
			const struct jcanon_member st[] = {
				{ "from", JCM_STR, .s = x },
				{ "to", JCM_STR, .s = y },
				{ "data", JCM_JSON_OR_NULL, .v = b % 2 ? patch : NULL },
			};
			const struct jcanon_member al[] = {
				{ "counter", JCM_INT, .i = (json_int_t)a * 1000003 - 7 },
				{ "serial", JCM_STR, .s = x },
				{ "fixture", JCM_STR_OR_NULL, .s = y },
				{ "from", JCM_STR, .s = "NEW" },
				{ "quota", JCM_INT, .i = INT64_MAX - (json_int_t)b },
			};
			const struct jcanon_member da[] = {
				{ "state", JCM_STR, .s = x },
				{ "data", JCM_JSON, .v = b % 2 ? patch : NULL },
			};

			same_object(st, IMP_ARRAY_SIZE(st),
				    json_pack("{s:s, s:s, s:O?}", "from", x, "to", y, "data",
					      b % 2 ? patch : NULL), "state event");
			same_object(al, IMP_ARRAY_SIZE(al),
				    json_pack("{s:I, s:s, s:s?, s:s, s:I}", "counter",
					      (json_int_t)a * 1000003 - 7, "serial", x, "fixture", y,
					      "from", "NEW", "quota", INT64_MAX - (json_int_t)b),
				    "alloc event");
			same_object(da, IMP_ARRAY_SIZE(da),
				    json_pack("{s:s, s:O}", "state", x, "data", b % 2 ? patch : NULL),
				    "data event");
		}
	}
	/* and when json_pack refuses, so does it: asserted, not only allowed */
	{
		const struct jcanon_member bad[] = { { "to", JCM_STR, .s = NULL } };
		const struct jcanon_member utf[] = { { "to", JCM_STR, .s = "bad \xff" } };
		const struct jcanon_member obj[] = { { "data", JCM_JSON, .v = NULL } };

		assert_null(jcanon_object(bad, 1));
		assert_null(jcanon_object(utf, 1));
		assert_null(jcanon_object(obj, 1));
	}
	json_decref(patch);
}

/* ------------------------------------------------- a journal's details */

/* Every detail and board data a journal run stored is json_dumps of
 * itself: what the journal wrote before this writer. */
static void test_journal_details(void **state)
{
	char dir[256], path[300], serial[JNL_SERIAL_MAX];
	EVP_PKEY *key = jt_key();
	struct jnl *j;
	json_t *data;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	unsigned rows = 0;

	(void)state;
	jt_mkdtemp(dir);
	snprintf(path, sizeof(path), "%s/journal.sqlite", dir);
	j = jt_open(path, key, 10, 3);
	assert_int_equal(jnl_allocate(j, "aa01", "F\xc3\xa9 \"1\"", serial, sizeof(serial), NULL),
			 IMP_OK);
	data = json_pack("{s:s, s:{s:b, s:s}, s:i, s:f}", "pub", "04ab\n\t\x01", "lock",
			 "debug_locked", 1, "note", "\xe2\x82\xac \\ /", "n", -7, "r", 0.25);
	assert_int_equal(jnl_set_state_obj(j, "aa01", JNL_ST_KEYS, data, NULL), IMP_OK);
	json_decref(data);
	assert_int_equal(jnl_set_state(j, "aa01", JNL_ST_CERTIFY,
				       "{\"cert\":\"MIIB\\u0007\",\"z\":null,\"a\":[1,2.5,\"x\"]}"),
			 IMP_OK);
	assert_int_equal(jnl_set_state(j, "aa01", JNL_ST_INJECT, NULL), IMP_OK);
	assert_int_equal(jnl_fail(j, "aa01", "F2", IMP_ERR_LINK, "uart \"timeout\"\n\xf0\x9f\x98\x80"),
			 IMP_OK);
	assert_int_equal(jnl_set_data(j, "aa01", "{\"pub\":null,\"k\":\"\xc3\xa9\"}"), IMP_OK);
	assert_int_equal(jnl_quarantine(j, "bb01", "F3", "locked \\ unknown"), IMP_OK);
	assert_int_equal(jnl_reject(j, "aa01", IMP_ERR_CHALLENGE, "bad\tsignature"), IMP_OK);
	assert_int_equal(jnl_checkpoint(j), IMP_OK);
	jnl_close(j);

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT detail FROM events UNION ALL "
					    "SELECT data FROM boards", -1, &st, NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *text = (const char *)sqlite3_column_text(st, 0);
		json_t *v = json_loads(text, 0, NULL);
		char *ref;

		assert_non_null(v);
		ref = json_dumps(v, REF_FLAGS);
		assert_non_null(ref);
		assert_string_equal(text, ref);
		free(ref);
		json_decref(v);
		rows++;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	assert_true(rows >= 12);
	EVP_PKEY_free(key);
	jt_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scalars_and_escapes),
		cmocka_unit_test(test_key_order),
		cmocka_unit_test(test_random_trees),
		cmocka_unit_test(test_member_objects),
		cmocka_unit_test(test_journal_details),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Unit tests of backend-export: exp_deliver (batching, results, failures)
 * against an in-memory outbox that replaces the journal at link time, and
 * the https exporter's pure parts (https.h): Retry-After, backoff bounds,
 * the per-record results parser under malformed and hostile answers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "exp/export.h"
#include "https.h"
#include "imprint/log.h"

/* ------------------------------------------------ the outbox, faked */

#define FAKE_MAX 12000

static struct fake_rec {
	char id[32];
	bool delivered, rejected;
	unsigned attempts;
	char reason[EXP_REASON_MAX];
} outbox[FAKE_MAX];
static size_t outbox_n;

static void outbox_fill(size_t n)
{
	memset(outbox, 0, sizeof(outbox));
	outbox_n = n;
	for (size_t i = 0; i < n; i++)
		snprintf(outbox[i].id, sizeof(outbox[i].id), "rec-%05zu", i);
}

static struct fake_rec *outbox_find(const char *id)
{
	for (size_t i = 0; i < outbox_n; i++)
		if (strcmp(outbox[i].id, id) == 0)
			return &outbox[i];
	return NULL;
}

static size_t outbox_count(bool delivered, bool rejected)
{
	size_t k = 0;

	for (size_t i = 0; i < outbox_n; i++)
		k += outbox[i].delivered == delivered && outbox[i].rejected == rejected;
	return k;
}

imp_err __wrap_jnl_outbox_pending(struct jnl *j, unsigned limit,
					   jnl_outbox_cb cb, void *arg);
imp_err __wrap_jnl_outbox_pending(struct jnl *j, unsigned limit,
					   jnl_outbox_cb cb, void *arg)
{
	unsigned given = 0;

	(void)j;
	for (size_t i = 0; i < outbox_n; i++) {
		struct jnl_outbox_entry e = { 0 };

		if (outbox[i].delivered || outbox[i].rejected)
			continue;
		if (limit && given == limit)
			break;
		e.record_id = outbox[i].id;
		e.serial = "S";
		e.uid = "00";
		e.jws = "h.p.s";
		e.attempts = outbox[i].attempts;
		given++;
		if (cb(arg, &e) != 0)
			break;
	}
	return IMP_OK;
}

imp_err __wrap_jnl_outbox_delivered(struct jnl *j, const char *id);
imp_err __wrap_jnl_outbox_delivered(struct jnl *j, const char *id)
{
	struct fake_rec *r = outbox_find(id);

	(void)j;
	if (!r)
		return IMP_ERR_NOT_FOUND;
	r->delivered = true;
	return IMP_OK;
}

/* All or none, as the journal's one transaction. */
imp_err __wrap_jnl_outbox_delivered_many(struct jnl *j, const char *const *ids,
						  size_t n);
imp_err __wrap_jnl_outbox_delivered_many(struct jnl *j, const char *const *ids,
						  size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!outbox_find(ids[i]))
			return IMP_ERR_NOT_FOUND;
	for (size_t i = 0; i < n; i++)
		__wrap_jnl_outbox_delivered(j, ids[i]);
	return IMP_OK;
}

imp_err __wrap_jnl_outbox_attempt_failed(struct jnl *j, const char *id,
						  const char *error);
imp_err __wrap_jnl_outbox_attempt_failed(struct jnl *j, const char *id,
						  const char *error)
{
	struct fake_rec *r = outbox_find(id);

	(void)j;
	if (!r)
		return IMP_ERR_NOT_FOUND;
	r->attempts++;
	snprintf(r->reason, sizeof(r->reason), "%s", error ? error : "");
	return IMP_OK;
}

imp_err __wrap_jnl_outbox_rejected(struct jnl *j, const char *id,
					    const char *reason);
imp_err __wrap_jnl_outbox_rejected(struct jnl *j, const char *id,
					    const char *reason)
{
	struct fake_rec *r = outbox_find(id);

	(void)j;
	if (!r)
		return IMP_ERR_NOT_FOUND;
	r->rejected = true;
	snprintf(r->reason, sizeof(r->reason), "%s", reason);
	return IMP_OK;
}

/* ------------------------------------------------ a scripted driver */

enum mode { M_ACCEPT, M_FAIL, M_EVERY_THIRD_PENDING, M_REJECT_ODD, M_NOTHING };

static struct {
	enum mode mode;
	size_t pushes, largest;
	size_t sizes[64];
} drv;

static imp_err fake_open(const struct exp_settings *s, void **state)
{
	(void)s;
	*state = &drv;
	return IMP_OK;
}

static imp_err fake_push(void *state, const struct exp_record *recs, size_t n,
			 struct exp_result *res)
{
	(void)state;
	assert_true(n >= 1 && n <= EXP_BATCH_MAX);
	if (drv.pushes < 64)
		drv.sizes[drv.pushes] = n;
	drv.pushes++;
	if (n > drv.largest)
		drv.largest = n;
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(res[i].status, EXP_PENDING);
		assert_non_null(recs[i].id);
	}
	if (drv.mode == M_FAIL)
		return IMP_ERR_EXPORT;
	for (size_t i = 0; i < n; i++) {
		unsigned k = (unsigned)atoi(recs[i].id + 4);

		switch (drv.mode) {
		case M_ACCEPT:
			res[i].status = EXP_ACCEPTED;
			break;
		case M_EVERY_THIRD_PENDING:
			res[i].status = k % 3 == 0 ? EXP_PENDING : EXP_DUPLICATE_SAME;
			break;
		case M_REJECT_ODD:
			res[i].status = k % 2 ? EXP_REJECTED : EXP_ACCEPTED;
			if (k % 2)
				snprintf(res[i].reason, sizeof(res[i].reason), "odd %u", k);
			break;
		default:
			break;
		}
	}
	return IMP_OK;
}

static imp_err fake_close(void *state)
{
	(void)state;
	return IMP_OK;
}

static const struct exp_driver fake = { "fake", "scripted", false, fake_open, fake_push,
					fake_close };
static const struct exp_driver fake_durable = { "fake-durable", "scripted, durable on close",
						true, fake_open, fake_push, fake_close };

static int setup(void **st)
{
	(void)st;
	memset(&drv, 0, sizeof(drv));
	return 0;
}

/* 2500 pending, batch 1000: 1000, 1000, 500, everything delivered once. */
static void test_batches(void **st)
{
	struct exp_deliver_opts o = { .batch = 1000 };
	struct exp_stats s;

	(void)st;
	outbox_fill(2500);
	assert_int_equal(exp_deliver(NULL, &fake, &drv, &o, &s, NULL, NULL), IMP_OK);
	assert_int_equal(drv.pushes, 3);
	assert_int_equal(drv.sizes[0], 1000);
	assert_int_equal(drv.sizes[1], 1000);
	assert_int_equal(drv.sizes[2], 500);
	assert_int_equal(outbox_count(true, false), 2500);
	assert_int_equal(s.accepted, 2500);
	assert_int_equal(s.batches, 3);
}

/* The default batch, and the cap at EXP_BATCH_MAX. */
static void test_batch_default_and_cap(void **st)
{
	struct exp_deliver_opts o = { 0 };

	(void)st;
	outbox_fill(EXP_BATCH_DEFAULT + 1);
	assert_int_equal(exp_deliver(NULL, &fake, &drv, &o, NULL, NULL, NULL), IMP_OK);
	assert_int_equal(drv.sizes[0], EXP_BATCH_DEFAULT);
	assert_int_equal(drv.sizes[1], 1);
	memset(&drv, 0, sizeof(drv));
	outbox_fill(EXP_BATCH_MAX * 2 + 10);
	o.batch = 100000;
	assert_int_equal(exp_deliver(NULL, &fake, &drv, &o, NULL, NULL, NULL), IMP_OK);
	assert_int_equal(drv.largest, EXP_BATCH_MAX);
	assert_int_equal(outbox_count(true, false), EXP_BATCH_MAX * 2 + 10);
}

static void test_max_records(void **st)
{
	struct exp_deliver_opts o = { .batch = 7, .max_records = 20 };

	(void)st;
	outbox_fill(100);
	assert_int_equal(exp_deliver(NULL, &fake, &drv, &o, NULL, NULL, NULL), IMP_OK);
	assert_int_equal(outbox_count(true, false), 20);
	assert_int_equal(drv.sizes[2], 6);
}

/* A batch that cannot be delivered: nothing leaves the outbox. */
static void test_failure_keeps_everything(void **st)
{
	struct exp_deliver_opts o = { .batch = 50 };
	struct exp_stats s;

	(void)st;
	outbox_fill(120);
	drv.mode = M_FAIL;
	assert_int_equal(exp_deliver(NULL, &fake, &drv, &o, &s, NULL, NULL), IMP_ERR_EXPORT);
	assert_int_equal(outbox_count(false, false), 120);
	assert_int_equal(s.failed, 1);
	assert_int_equal(outbox[0].attempts, 1);
	assert_int_equal(outbox[50].attempts, 0);
}

/* Records the backend did not settle stay pending; the others go. */
static void test_partial_answers(void **st)
{
	struct exp_deliver_opts o = { .batch = 30, .max_records = 30 };
	struct exp_stats s;

	(void)st;
	outbox_fill(30);
	drv.mode = M_EVERY_THIRD_PENDING;
	assert_int_equal(exp_deliver(NULL, &fake, &drv, &o, &s, NULL, NULL), IMP_OK);
	assert_int_equal(outbox_count(true, false), 20);
	for (size_t i = 0; i < 30; i++) {
		assert_int_equal(outbox[i].delivered, i % 3 != 0);
		assert_int_equal(outbox[i].attempts, i % 3 == 0);
	}
	assert_int_equal(s.duplicates, 20);
}

/* An answer that settles nothing is an error, not a loop. */
static void test_no_progress(void **st)
{
	struct exp_deliver_opts o = { .batch = 10 };

	(void)st;
	outbox_fill(10);
	drv.mode = M_NOTHING;
	assert_int_equal(exp_deliver(NULL, &fake, &drv, &o, NULL, NULL, NULL), IMP_ERR_EXPORT);
	assert_int_equal(outbox_count(false, false), 10);
	assert_int_equal(drv.pushes, 1);
}

static void test_rejections_kept_with_reason(void **st)
{
	struct exp_deliver_opts o = { .batch = 4 };

	(void)st;
	outbox_fill(9);
	drv.mode = M_REJECT_ODD;
	assert_int_equal(exp_deliver(NULL, &fake, &drv, &o, NULL, NULL, NULL), IMP_OK);
	assert_int_equal(outbox_count(false, true), 4);
	assert_int_equal(outbox_count(true, false), 5);
	assert_string_equal(outbox[3].reason, "odd 3");
}

/* durable_on_close: accepted ids come back, nothing is marked yet. */
static void test_durable_on_close(void **st)
{
	struct exp_deliver_opts o = { .batch = 4 };
	char **ids = NULL;
	size_t n = 0;

	(void)st;
	outbox_fill(10);
	assert_int_equal(exp_deliver(NULL, &fake_durable, &drv, &o, NULL, &ids, &n), IMP_OK);
	assert_int_equal(n, 10);
	assert_int_equal(outbox_count(true, false), 0);
	assert_int_equal(exp_deliver_commit(NULL, ids, n), IMP_OK);
	assert_int_equal(outbox_count(true, false), 10);
	exp_ids_free(ids, n);
}

/* ------------------------------------------------------ Retry-After */

static void test_retry_after(void **st)
{
	static const struct {
		const char *line;
		int ok;
		double v;
	} cases[] = {
		{ "Retry-After: 1\r\n", 1, 1 },
		{ "retry-after:120", 1, 120 },
		{ "RETRY-AFTER: \t 0 \r\n", 1, 0 },
		{ "Retry-After: 3600\r\n", 1, 3600 },
		{ "Retry-After: 3601\r\n", 0, 0 },
		{ "Retry-After: 99999999999999999999\r\n", 0, 0 },
		{ "Retry-After: -5\r\n", 0, 0 },
		{ "Retry-After: 1.5\r\n", 0, 0 },
		{ "Retry-After: 1e3\r\n", 0, 0 },
		{ "Retry-After: nan\r\n", 0, 0 },
		{ "Retry-After: inf\r\n", 0, 0 },
		{ "Retry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n", 0, 0 },
		{ "Retry-After:\r\n", 0, 0 },
		{ "Retry-After: 5 6\r\n", 0, 0 },
		{ "Retry-Afterx: 5\r\n", 0, 0 },
		{ "Content-Type: application/json\r\n", 0, 0 },
		{ "", 0, 0 },
	};

	(void)st;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		double v = -1;
		int ok = exp_https_retry_after(cases[i].line, strlen(cases[i].line), &v);

		if (ok != cases[i].ok)
			fail_msg("%s: got %d", cases[i].line, ok);
		if (ok)
			assert_true(v == cases[i].v);
		else
			assert_true(v == -1);
	}
	/* not NUL-terminated: only len bytes are read */
	{
		char buf[16] = "Retry-After: 12";
		double v = 0;

		assert_int_equal(exp_https_retry_after(buf, 14, &v), 1);
		assert_true(v == 1);
	}
}

/* --------------------------------------------------------- backoff */

static void test_backoff_bounds(void **st)
{
	(void)st;
	for (unsigned a = 0; a < 40; a++) {
		for (int k = 0; k <= 100; k++) {
			double r = k == 100 ? 0.999999 : k / 100.0;
			double w = exp_https_backoff(0.2, 10, a, r, -1);
			double cap = 0.2 * (double)(1u << (a < 16 ? a : 16));

			if (cap > 10)
				cap = 10;
			assert_true(w >= 0);
			assert_true(w <= cap);
			/* Retry-After is a floor, also above the cap */
			assert_true(exp_https_backoff(0.2, 10, a, r, 30) >= 30);
			assert_true(exp_https_backoff(0.2, 10, a, r, 30) <= 30);
			assert_true(exp_https_backoff(0.2, 10, a, r, 0.5) >= 0.5);
		}
	}
	/* hostile inputs to the jitter: never negative, never above the cap */
	assert_true(exp_https_backoff(0.2, 10, 3, -1, -1) == 0);
	assert_true(exp_https_backoff(0.2, 10, 3, 7, -1) == 0);
	assert_true(exp_https_backoff(0.2, 10, 3, 0.0 / 0.0, -1) == 0);
	assert_true(exp_https_backoff(-1, 10, 3, 0.5, -1) == 0);
	assert_true(exp_https_backoff(0.2, 10, 1000000, 0.5, -1) <= 10);
}

/* ------------------------------------------------- results parser */

static struct exp_record recs3[3] = {
	{ "a1", "S1", "u1", JNL_OUTBOX_IDENTITY, "x" },
	{ "b2", "S2", "u2", JNL_OUTBOX_IDENTITY, "y" },
	{ "c3", "S3", "u3", JNL_OUTBOX_IDENTITY, "z" },
};

static imp_err parse(const char *body, struct exp_result res[3])
{
	memset(res, 0, 3 * sizeof(*res));
	return exp_https_parse_results(body, body ? strlen(body) : 0, recs3, 3, res);
}

static void all_pending(const struct exp_result res[3])
{
	for (int i = 0; i < 3; i++)
		assert_int_equal(res[i].status, EXP_PENDING);
}

static void test_results_good(void **st)
{
	struct exp_result res[3];

	(void)st;
	assert_int_equal(parse("{\"results\":[{\"id\":\"a1\",\"status\":\"accepted\",\"code\":201},"
			       "{\"id\":\"b2\",\"status\":\"duplicate-same\",\"code\":200,"
			       "\"reason\":\"already stored\"},{\"id\":\"c3\",\"status\":"
			       "\"rejected\",\"code\":422,\"reason\":\"does not verify\"}]}",
			       res),
			 IMP_OK);
	assert_int_equal(res[0].status, EXP_ACCEPTED);
	assert_int_equal(res[0].code, 201);
	assert_int_equal(res[1].status, EXP_DUPLICATE_SAME);
	assert_string_equal(res[1].reason, "already stored");
	assert_int_equal(res[2].status, EXP_REJECTED);
	assert_int_equal(res[2].code, 422);
	/* out of order is fine */
	assert_int_equal(parse("{\"results\":[{\"id\":\"c3\",\"status\":\"accepted\"},"
			       "{\"id\":\"a1\",\"status\":\"accepted\"}]}",
			       res),
			 IMP_OK);
	assert_int_equal(res[0].status, EXP_ACCEPTED);
	assert_int_equal(res[1].status, EXP_PENDING);
	assert_int_equal(res[2].status, EXP_ACCEPTED);
}

/* Not an answer at all: a protocol error, every record pending. */
static void test_results_malformed(void **st)
{
	static const char *const bodies[] = {
		NULL,
		"",
		"not json",
		"[]",
		"{}",
		"{\"results\":{}}",
		"{\"results\":\"accepted\"}",
		"{\"results\":null}",
		"{\"results\":[{\"id\":\"a1\",\"status\":\"accepted\"}]",   /* cut */
		"{\"results\":[],\"results\":[{\"id\":\"a1\",\"status\":\"accepted\"}]}",
		"\"results\"",
		"{\"results\":[{\"id\":\"a1\\u0000x\",\"status\":\"accepted\"}]}",
		"{\"results\":[{\"id\":\"a1\",\"status\":\"accepted\"}]}garbage",
	};

	(void)st;
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		struct exp_result res[3];

		assert_int_equal(parse(bodies[i], res), IMP_ERR_PROTOCOL);
		all_pending(res);
	}
}

/* Entries that do not settle a record of ours leave it pending. */
static void test_results_hostile(void **st)
{
	static const char *const bodies[] = {
		"{\"results\":[]}",
		"{\"results\":[1,\"a1\",null,[],true]}",
		"{\"results\":[{\"status\":\"accepted\"}]}",                      /* no id */
		"{\"results\":[{\"id\":null,\"status\":\"accepted\"}]}",
		"{\"results\":[{\"id\":1,\"status\":\"accepted\"}]}",             /* wrong type */
		"{\"results\":[{\"id\":[\"a1\"],\"status\":\"accepted\"}]}",
		"{\"results\":[{\"id\":\"zz\",\"status\":\"accepted\"}]}",        /* unknown id */
		"{\"results\":[{\"id\":\"a1 \",\"status\":\"accepted\"}]}",
		"{\"results\":[{\"id\":\"A1\",\"status\":\"accepted\"}]}",
		"{\"results\":[{\"id\":\"a\",\"status\":\"accepted\"}]}",         /* prefix */
		"{\"results\":[{\"id\":\"a1\"}]}",                               /* no status */
		"{\"results\":[{\"id\":\"a1\",\"status\":1}]}",
		"{\"results\":[{\"id\":\"a1\",\"status\":true}]}",
		"{\"results\":[{\"id\":\"a1\",\"status\":\"ACCEPTED\"}]}",
		"{\"results\":[{\"id\":\"a1\",\"status\":\"accepted \"}]}",
		"{\"results\":[{\"id\":\"a1\",\"status\":\"retry\"}]}",
		"{\"results\":[{\"id\":\"a1\",\"status\":\"accepted\"},"
		"{\"id\":\"a1\",\"status\":\"rejected\"}]}",                     /* contradicts */
		"{\"results\":[{\"id\":\"a1\",\"status\":\"rejected\"},"
		"{\"id\":\"a1\",\"status\":\"accepted\"}]}",
	};

	(void)st;
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		struct exp_result res[3];

		if (parse(bodies[i], res) != IMP_OK)
			fail_msg("body %zu: not parsed", i);
		all_pending(res);
	}
}

/* Odd but harmless values are contained. */
static void test_results_values(void **st)
{
	struct exp_result res[3];
	char *big;
	size_t n = 100000;

	(void)st;
	/* an integer beyond 64 bits: not an answer (jansson refuses it) */
	assert_int_equal(parse("{\"results\":[{\"id\":\"a1\",\"status\":\"accepted\","
			       "\"code\":99999999999999999999999}]}",
			       res),
			 IMP_ERR_PROTOCOL);
	all_pending(res);
	assert_int_equal(parse("{\"results\":[{\"id\":\"a1\",\"status\":\"accepted\","
			       "\"code\":1e300},{\"id\":\"b2\",\"status\":"
			       "\"accepted\",\"code\":-1},{\"id\":\"c3\",\"status\":\"rejected\","
			       "\"code\":\"422\",\"reason\":7}]}",
			       res),
			 IMP_OK);
	assert_int_equal(res[0].status, EXP_ACCEPTED);
	assert_int_equal(res[0].code, 0);
	assert_int_equal(res[1].code, 0);
	assert_int_equal(res[2].status, EXP_REJECTED);
	assert_int_equal(res[2].code, 0);
	assert_string_equal(res[2].reason, "");
	/* the same answer twice counts once */
	assert_int_equal(parse("{\"results\":[{\"id\":\"b2\",\"status\":\"accepted\"},"
			       "{\"id\":\"b2\",\"status\":\"accepted\"}]}",
			       res),
			 IMP_OK);
	assert_int_equal(res[1].status, EXP_ACCEPTED);
	/* a huge reason is cut, NUL-terminated */
	{
		static const char head[] =
			"{\"results\":[{\"id\":\"c3\",\"status\":\"rejected\",\"reason\":\"";

		big = malloc(sizeof(head) + n + 8);
		assert_non_null(big);
		memcpy(big, head, sizeof(head) - 1);
		memset(big + sizeof(head) - 1, 'r', n);
		strcpy(big + sizeof(head) - 1 + n, "\"}]}");
	}
	assert_int_equal(parse(big, res), IMP_OK);
	assert_int_equal(res[2].status, EXP_REJECTED);
	assert_int_equal(strlen(res[2].reason), EXP_REASON_MAX - 1);
	free(big);
	/* many entries, none of ours: nothing settled */
	{
		size_t m = 20000, k = 0;
		char *many = malloc(m * 48 + 64);

		assert_non_null(many);
		k += (size_t)sprintf(many, "{\"results\":[");
		for (size_t i = 0; i < m; i++)
			k += (size_t)sprintf(many + k, "%s{\"id\":\"x%zu\",\"status\":\"accepted\"}",
					     i ? "," : "", i);
		sprintf(many + k, "]}");
		assert_int_equal(parse(many, res), IMP_OK);
		all_pending(res);
		free(many);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_batches, setup),
		cmocka_unit_test_setup(test_batch_default_and_cap, setup),
		cmocka_unit_test_setup(test_max_records, setup),
		cmocka_unit_test_setup(test_failure_keeps_everything, setup),
		cmocka_unit_test_setup(test_partial_answers, setup),
		cmocka_unit_test_setup(test_no_progress, setup),
		cmocka_unit_test_setup(test_rejections_kept_with_reason, setup),
		cmocka_unit_test_setup(test_durable_on_close, setup),
		cmocka_unit_test(test_retry_after),
		cmocka_unit_test(test_backoff_bounds),
		cmocka_unit_test(test_results_good),
		cmocka_unit_test(test_results_malformed),
		cmocka_unit_test(test_results_hostile),
		cmocka_unit_test(test_results_values),
	};

	imp_log_set_level(IMP_LOG_QUIET);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * The fixtures' --json events written in place (station/event_line.c) are
 * byte for byte the lines jansson prints for the same events (output.c's
 * st_board_event / st_result_event through st_event_line): random fixture
 * names, UIDs, serials, states, errors, messages with quotes, backslashes
 * and control characters, reals of every size. Where the in-place writer
 * gives up (no room, text that is not ASCII) it says so with 0, and jansson
 * still has the event or refuses it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "event_line.h"
#include "run.h"

#define TS "2026-12-01T21:00:00.042Z"

static struct station_ctx ctx;

static void rand_text(char *out, size_t cap, int kind)
{
	static const char nasty[] = "\"\\/\b\f\n\r\t\x01\x1f\x7f abcXYZ09-_.:";
	size_t n = (size_t)rand() % (cap - 1);

	if (kind == 0) /* the usual: short plain text */
		n = (size_t)rand() % 24;
	for (size_t i = 0; i < n; i++)
		out[i] = kind == 2 ? (char)(1 + rand() % 255)
			 : kind == 1 ? nasty[rand() % (int)(sizeof(nasty) - 1)]
				     : (char)('a' + rand() % 26);
	out[n] = '\0';
}

static double rand_real(void)
{
	static const double fixed[] = { 0.0, -0.0, 1.0, 100.0, 0.1, 0.0319, 1e-9, 123456789.0,
					1e17, 1e22, 1.5e300, 5e-324, -2.5, 3.0000000000000004 };
	int k = rand() % 3;

	if (k == 0)
		return fixed[rand() % (int)(sizeof(fixed) / sizeof(fixed[0]))];
	if (k == 1)
		return (double)rand() / 1000.0;
	return ((double)rand() / RAND_MAX - 0.5) * pow(10.0, rand() % 80 - 40);
}

static void rand_hex(char *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = "0123456789abcdef"[rand() % 16];
	out[n] = '\0';
}

/* Compare one event: the in-place text, or 0 and then a reason. */
static void compare(size_t n, const char *fast, char *slow)
{
	if (n) {
		assert_non_null(slow);
		assert_string_equal(fast, slow);
		assert_int_equal(n, strlen(slow));
	} else if (slow) {
		/* given up: only for a line longer than the buffer, or text
		 * that is not ASCII */
		bool high = false;

		for (const char *c = slow; *c; c++)
			high |= (unsigned char)*c >= 0x80;
		if (strlen(slow) < ST_EVENT_LINE_MAX && !high)
			fail_msg("in-place writer gave up on: %s", slow);
	}
	free(slow);
}

static json_t *with_ts(json_t *o)
{
	if (o)
		json_object_set_new(o, "ts", json_string(TS));
	return o;
}

static void test_board_events(void **state)
{
	char fixture[64], uid[33], serial[24], message[600], buf[ST_EVENT_LINE_MAX];
	unsigned fast = 0;

	(void)state;
	srand(21);
	for (int i = 0; i < 20000; i++) {
		int kind = i % 10 == 9 ? 2 : i % 3 == 2 ? 1 : 0;
		struct prov_progress p = { 0 };
		size_t n;

		rand_text(fixture, sizeof(fixture), kind == 2 ? 0 : kind);
		rand_hex(uid, rand() % 3 ? 32 : 0);
		rand_text(serial, sizeof(serial), rand() % 2);
		rand_text(message, rand() % 8 ? 80 : sizeof(message), kind);
		p.fixture = fixture;
		p.uid = uid;
		p.serial = serial;
		p.message = message;
		p.state = (enum jnl_state)(rand() % JNL_ST__COUNT);
		p.rc = rand() % 2 ? IMP_OK : (imp_err)(rand() % IMP_ERR__COUNT);
		p.failed_step = (enum jnl_state)(rand() % JNL_ST__COUNT);
		p.elapsed_s = rand_real();
		p.activity = PROV_ACT_BOARD;
		n = st_board_event_text(&p, TS, buf, sizeof(buf));
		fast += n != 0;
		compare(n, buf, st_event_line(&ctx, with_ts(st_board_event(&p))));
	}
	/* Most events take the in-place path. */
	assert_true(fast > 15000);
}

static void test_fixture_events(void **state)
{
	char fixture[64], message[300], buf[ST_EVENT_LINE_MAX];

	(void)state;
	srand(22);
	for (int i = 0; i < 5000; i++) {
		int kind = i % 7 == 6 ? 2 : i % 2;
		struct prov_progress p = { 0 };
		size_t n;

		rand_text(fixture, sizeof(fixture), kind == 2 ? 0 : kind);
		rand_text(message, sizeof(message), kind);
		p.fixture = fixture;
		p.message = message;
		p.uid = p.serial = "";
		p.boards = (unsigned)rand();
		p.activity = rand() % 2 ? PROV_ACT_WAIT_BOARD : PROV_ACT_WAIT_REMOVAL;
		n = st_fixture_event_text(&p, TS, buf, sizeof(buf));
		compare(n, buf,
			st_event_line(&ctx, with_ts(json_pack(
					   "{s:s, s:s, s:s, s:s, s:i}", "event", "fixture",
					   "fixture", p.fixture, "waiting",
					   p.activity == PROV_ACT_WAIT_BOARD ? "board" : "removal",
					   "message", p.message, "taken", (int)p.boards))));
	}
}

static void test_result_events(void **state)
{
	char fixture[64], id[JNL_RECORD_ID_MAX], buf[ST_EVENT_LINE_MAX];

	(void)state;
	srand(23);
	for (int i = 0; i < 20000; i++) {
		struct prov_result r = { 0 };
		json_t *o;
		size_t n;

		rand_text(fixture, sizeof(fixture), i % 11 == 10 ? 2 : i % 2);
		rand_hex(r.uid, rand() % 3 ? 32 : 0);
		rand_text(r.serial, sizeof(r.serial), 0);
		r.state = (enum jnl_state)(rand() % JNL_ST__COUNT);
		r.rc = rand() % 2 ? IMP_OK : (imp_err)(rand() % IMP_ERR__COUNT);
		r.failed_step = (enum jnl_state)(rand() % JNL_ST__COUNT);
		r.already_done = rand() % 2;
		r.quarantined = rand() % 5 == 0;
		r.not_taken = rand() % 7 == 0;
		r.seconds = rand_real();
		rand_hex(id, rand() % 2 ? 64 : 0);
		n = st_result_event_text(fixture, &r, id, TS, buf, sizeof(buf));
		/* st_result_event without a journal has no record id: add it
		 * as it would (a string, or null). */
		o = st_result_event(NULL, fixture, &r);
		if (o)
			json_object_set_new(o, "record_id", id[0] ? json_string(id) : json_null());
		compare(n, buf, st_event_line(&ctx, with_ts(o)));
	}
}

/* The writer's own rules: keys out of order, no room, a real jansson
 * refuses. */
static void test_refusals(void **state)
{
	char buf[64];
	struct st_evline e;
	size_t n;

	(void)state;
	st_ev_begin(&e, buf, sizeof(buf));
	st_ev_str(&e, "b", "x");
	st_ev_str(&e, "a", "y");
	assert_int_equal(st_ev_end(&e), 0);
	st_ev_begin(&e, buf, 8);
	st_ev_str(&e, "key", "a long value");
	assert_int_equal(st_ev_end(&e), 0);
	st_ev_begin(&e, buf, sizeof(buf));
	st_ev_real(&e, "x", NAN);
	assert_int_equal(st_ev_end(&e), 0);
	st_ev_begin(&e, buf, sizeof(buf));
	st_ev_int(&e, "a", -9223372036854775807LL - 1);
	st_ev_bool(&e, "b", false);
	st_ev_str(&e, "c", NULL);
	n = st_ev_end(&e);
	assert_int_equal(n, strlen(buf));
	assert_string_equal(buf, "{\"a\":-9223372036854775808,\"b\":false,\"c\":null}\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_board_events),
		cmocka_unit_test(test_fixture_events),
		cmocka_unit_test(test_result_events),
		cmocka_unit_test(test_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

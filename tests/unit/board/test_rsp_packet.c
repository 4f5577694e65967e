/* RSP packet codec: checksums, escapes, run-length encoding, malformed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "board/rsp.h"

static uint8_t out[BOARD_RSP_MAX_PAYLOAD];

static enum board_rsp_result parse(const char *s, size_t *len, size_t *consumed)
{
	char ack = 0;

	return board_rsp_parse((const uint8_t *)s, strlen(s), out, sizeof(out), len, consumed, &ack);
}

static void test_simple_packet(void **state)
{
	size_t len, used;

	(void)state;
	assert_int_equal(parse("$OK#9a", &len, &used), BOARD_RSP_PACKET);
	assert_int_equal(len, 2);
	assert_memory_equal(out, "OK", 2);
	assert_int_equal(used, 6);
	/* Upper-case checksum digits are accepted too. */
	assert_int_equal(parse("$OK#9A", &len, &used), BOARD_RSP_PACKET);
	/* Empty packet: "not supported". */
	assert_int_equal(parse("$#00", &len, &used), BOARD_RSP_PACKET);
	assert_int_equal(len, 0);
}

static void test_bad_checksum(void **state)
{
	size_t len, used;

	(void)state;
	assert_int_equal(parse("$OK#9b", &len, &used), BOARD_RSP_BAD_CHECKSUM);
	assert_int_equal(used, 6);
	assert_int_equal(parse("$OK#zz", &len, &used), BOARD_RSP_BAD);
	assert_int_equal(used, 6);
}

static void test_acks_and_noise(void **state)
{
	size_t len, used;
	char ack = 0;
	const uint8_t in[] = "xx+$OK#9a";

	(void)state;
	assert_int_equal(board_rsp_parse(in, 9, out, sizeof(out), &len, &used, &ack), BOARD_RSP_ACK);
	assert_int_equal(ack, '+');
	assert_int_equal(used, 3);
	assert_int_equal(board_rsp_parse(in + 3, 6, out, sizeof(out), &len, &used, &ack),
			 BOARD_RSP_PACKET);
	assert_int_equal(parse("-", &len, &used), BOARD_RSP_ACK);
	/* Pure noise: all consumed, need more. */
	assert_int_equal(parse("garbage", &len, &used), BOARD_RSP_NEED_MORE);
	assert_int_equal(used, 7);
	/* Incomplete packets never consume the start. */
	assert_int_equal(parse("ab$OK", &len, &used), BOARD_RSP_NEED_MORE);
	assert_int_equal(used, 2);
	assert_int_equal(parse("$OK#9", &len, &used), BOARD_RSP_NEED_MORE);
	assert_int_equal(used, 0);
}

static void test_escapes(void **state)
{
	const uint8_t data[] = { '#', '$', '}', '*', 0x00, 0xFF, 'a' };
	uint8_t esc[32], framed[64];
	size_t used, n, f, len, consumed;

	(void)state;
	n = board_rsp_escape(data, sizeof(data), esc, sizeof(esc), &used);
	assert_int_equal(used, sizeof(data));
	assert_int_equal(n, sizeof(data) + 4);
	f = board_rsp_frame(esc, n, framed, sizeof(framed));
	assert_int_equal(f, n + 4);
	assert_int_equal(board_rsp_parse(framed, f, out, sizeof(out), &len, &consumed, NULL),
			 BOARD_RSP_PACKET);
	assert_int_equal(len, sizeof(data));
	assert_memory_equal(out, data, sizeof(data));
	/* An escape cut by the '#' is malformed. */
	assert_int_equal(parse("$a}#de", &len, &consumed), BOARD_RSP_BAD);
	/* Escape only fills what fits. */
	n = board_rsp_escape(data, sizeof(data), esc, 3, &used);
	assert_int_equal(used, 1);
	assert_int_equal(n, 2);
}

static void frame_str(const char *body, uint8_t *buf, size_t *n)
{
	*n = board_rsp_frame((const uint8_t *)body, strlen(body), buf, 256);
}

static void test_run_length(void **state)
{
	uint8_t buf[256];
	size_t n, len, used;

	(void)state;
	/* "0* " = '0' then 32-29 = 3 more: "0000". */
	frame_str("0* ", buf, &n);
	assert_int_equal(board_rsp_parse(buf, n, out, sizeof(out), &len, &used, NULL),
			 BOARD_RSP_PACKET);
	assert_int_equal(len, 4);
	assert_memory_equal(out, "0000", 4);
	/* Repeat with nothing before it. */
	frame_str("* ", buf, &n);
	assert_int_equal(board_rsp_parse(buf, n, out, sizeof(out), &len, &used, NULL), BOARD_RSP_BAD);
	/* Repeat count below the minimum. */
	frame_str("a*\x1f", buf, &n);
	assert_int_equal(board_rsp_parse(buf, n, out, sizeof(out), &len, &used, NULL), BOARD_RSP_BAD);
	/* Run length must not overflow the output buffer. */
	frame_str("a*~", buf, &n);
	assert_int_equal(board_rsp_parse(buf, n, out, 10, &len, &used, NULL), BOARD_RSP_BAD);
	assert_int_equal(board_rsp_parse(buf, n, out, sizeof(out), &len, &used, NULL),
			 BOARD_RSP_PACKET);
	assert_int_equal(len, 1 + 126 - 29);
}

static void test_errors_and_hex(void **state)
{
	unsigned code = 0;
	uint8_t b[2];

	(void)state;
	assert_true(board_rsp_is_error((const uint8_t *)"E51", 3, &code));
	assert_int_equal(code, 0x51);
	assert_false(board_rsp_is_error((const uint8_t *)"E5", 2, &code));
	assert_false(board_rsp_is_error((const uint8_t *)"E5x", 3, &code));
	assert_false(board_rsp_is_error((const uint8_t *)"E511", 4, &code));
	assert_int_equal(board_rsp_unhex((const uint8_t *)"0aFf", 4, b, 2), 0);
	assert_int_equal(b[0], 0x0a);
	assert_int_equal(b[1], 0xff);
	assert_int_equal(board_rsp_unhex((const uint8_t *)"0g", 2, b, 1), -1);
	assert_int_equal(board_rsp_unhex((const uint8_t *)"0a0", 3, b, 1), -1);
}

static void test_output_bounds(void **state)
{
	uint8_t buf[256];
	size_t n, len, used;

	(void)state;
	frame_str("0123456789", buf, &n);
	assert_int_equal(board_rsp_parse(buf, n, out, 9, &len, &used, NULL), BOARD_RSP_BAD);
	assert_int_equal(board_rsp_parse(buf, n, out, 10, &len, &used, NULL), BOARD_RSP_PACKET);
	/* A new '$' inside a packet: resynchronise on it. */
	assert_int_equal(parse("$abc$OK#9a", &len, &used), BOARD_RSP_BAD);
	assert_int_equal(used, 4);
	/* A raw '%' inside a body is data (found by fuzzing). */
	frame_str("a%b", buf, &n);
	assert_int_equal(board_rsp_parse(buf, n, out, sizeof(out), &len, &used, NULL),
			 BOARD_RSP_PACKET);
	assert_int_equal(len, 3);
	/* Frame into a too-small buffer. */
	assert_int_equal(board_rsp_frame((const uint8_t *)"OK", 2, buf, 5), 0);
}

static void test_random_never_overreads(void **state)
{
	uint8_t buf[300];

	(void)state;
	srand(7);
	for (int i = 0; i < 20000; i++) {
		size_t n = (size_t)rand() % sizeof(buf), len = 0, used = 0, off = 0;
		const char alpha[] = "$#}*+-%0123456789abcdefOKE";

		for (size_t k = 0; k < n; k++)
			buf[k] = (rand() % 4) ? (uint8_t)alpha[rand() % (sizeof(alpha) - 1)]
					      : (uint8_t)rand();
		/* Walk the buffer like the driver does: always progress or stop. */
		while (off < n) {
			enum board_rsp_result r = board_rsp_parse(buf + off, n - off, out, 64, &len,
								  &used, NULL);

			assert_true(used <= n - off);
			assert_true(len <= 64);
			if (r == BOARD_RSP_NEED_MORE) {
				if (used == 0)
					break;
			} else {
				assert_true(used > 0);
			}
			off += used;
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple_packet),
		cmocka_unit_test(test_bad_checksum),
		cmocka_unit_test(test_acks_and_noise),
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_run_length),
		cmocka_unit_test(test_errors_and_hex),
		cmocka_unit_test(test_output_bounds),
		cmocka_unit_test(test_random_never_overreads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* RSP packet codec: checksums, escapes, run-length encoding, malformed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
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

/* The byte-at-a-time codec the table-driven one replaced: the reference. */
static uint8_t ref_sum(const uint8_t *p, size_t n)
{
	uint8_t sum = 0;

	for (size_t i = 0; i < n; i++)
		sum = (uint8_t)(sum + p[i]);
	return sum;
}

static int ref_hex(uint8_t c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
		: c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Long packets of every length class (the 8-byte steps, the 128-word
 * blocks of the checksum, their tails), escaped, framed, parsed back; hex
 * bodies decoded against the reference, with one bad digit anywhere. */
static void test_long_packets_match_reference(void **state)
{
	static uint8_t data[9000], esc[2 * 9000 + 8], framed[2 * 9000 + 16], hexs[2 * 9000];
	static uint8_t dec[9000];
	static const char digits[] = "0123456789abcdefABCDEF";

	(void)state;
	srand(7);
	for (size_t n = 0; n < sizeof(data); n += n < 300 ? 1 : 997) {
		size_t used = 0, e, f, len = 0, consumed = 0;
		uint8_t sum;

		for (size_t i = 0; i < n; i++)
			data[i] = (uint8_t)rand();
		e = board_rsp_escape(data, n, esc, sizeof(esc), &used);
		assert_int_equal(used, n);
		f = board_rsp_frame(esc, e, framed, sizeof(framed));
		assert_int_equal(f, e + 4);
		sum = ref_sum(esc, e);
		assert_int_equal(ref_hex(framed[f - 2]) << 4 | ref_hex(framed[f - 1]), sum);
		assert_int_equal(board_rsp_parse(framed, f, out, sizeof(out), &len, &consumed, NULL),
				 BOARD_RSP_PACKET);
		assert_int_equal(consumed, f);
		assert_int_equal(len, n);
		assert_memory_equal(out, data, n);
		/* Hex of n digits' worth, decoded as the reference does. */
		for (size_t i = 0; i < 2 * (n / 2); i++)
			hexs[i] = (uint8_t)digits[rand() % 22];
		assert_int_equal(board_rsp_unhex(hexs, 2 * (n / 2), dec, n / 2), 0);
		for (size_t i = 0; i < n / 2; i++)
			assert_int_equal(dec[i], ref_hex(hexs[2 * i]) << 4 | ref_hex(hexs[2 * i + 1]));
		if (n >= 2) {
			size_t at = (size_t)rand() % (2 * (n / 2));
			uint8_t keep = hexs[at];

			hexs[at] = (uint8_t)"g #$}*\xff"[rand() % 7];
			assert_int_equal(board_rsp_unhex(hexs, 2 * (n / 2), dec, n / 2), -1);
			hexs[at] = keep;
		}
	}
}

/* The byte-at-a-time escape the word-at-a-time one must equal: as many
 * whole input bytes as fit in cap, each special one as '}' and c ^ 0x20. */
static size_t ref_escape(const uint8_t *in, size_t n, uint8_t *o, size_t cap, size_t *used)
{
	size_t k = 0, i = 0;

	for (; i < n; i++) {
		bool sp = in[i] == '#' || in[i] == '$' || in[i] == '}' || in[i] == '*';

		if (k + (sp ? 2 : 1) > cap)
			break;
		if (sp) {
			o[k++] = '}';
			o[k++] = in[i] ^ 0x20;
		} else {
			o[k++] = in[i];
		}
	}
	*used = i;
	return k;
}

/* Random inputs (plain, dense in special bytes, runs of them), any offset,
 * every output room from 0 up: the same bytes, length and input used as
 * the reference, and nothing written beyond the room. */
static void test_escape_matches_reference(void **state)
{
	static uint8_t data[700], got[1500], want[1500];
	static const uint8_t sp[] = "#$}*a\0";

	(void)state;
	srand(13);
	for (int round = 0; round < 400; round++) {
		size_t n = (size_t)rand() % 600, off = (size_t)rand() % 9;
		int kind = round % 4;

		for (size_t i = 0; i < n + off; i++)
			data[i] = kind == 0 ? (uint8_t)rand()
				  : kind == 1 ? sp[rand() % 7]
				  : kind == 2 ? (rand() % 64 ? 'x' : '}')
				  : (uint8_t)(rand() % 3 ? rand() : '#');
		for (size_t cap = 0; cap <= 2 * n + 2; cap += cap < 40 ? 1 : 1 + (size_t)rand() % 37) {
			size_t gu = 0, wu = 0, g, w;

			memset(got, 0xA5, sizeof(got));
			g = board_rsp_escape(data + off, n, got, cap, &gu);
			w = ref_escape(data + off, n, want, cap, &wu);
			assert_int_equal(g, w);
			assert_int_equal(gu, wu);
			assert_memory_equal(got, want, w);
			for (size_t i = cap; i < sizeof(got); i++)
				if (got[i] != 0xA5)
					fail_msg("escape wrote byte %zu beyond the room %zu", i, cap);
		}
	}
}

/* A payload written at out + 1 frames in place to the same bytes as one
 * framed from a buffer of its own. */
static void test_frame_in_place(void **state)
{
	static uint8_t payload[3000], apart[3010], inplace[3010];

	(void)state;
	srand(17);
	for (size_t n = 0; n < sizeof(payload); n += 1 + (size_t)rand() % 97) {
		size_t a, b;

		for (size_t i = 0; i < n; i++)
			payload[i] = (uint8_t)(' ' + rand() % 90);
		memcpy(inplace + 1, payload, n);
		a = board_rsp_frame(payload, n, apart, sizeof(apart));
		b = board_rsp_frame(inplace + 1, n, inplace, sizeof(inplace));
		assert_int_equal(a, n + 4);
		assert_int_equal(b, a);
		assert_memory_equal(inplace, apart, a);
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
		cmocka_unit_test(test_long_packets_match_reference),
		cmocka_unit_test(test_escape_matches_reference),
		cmocka_unit_test(test_frame_in_place),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Agent frame codec: round trip, resync after garbage, bad CRC, oversize length. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wire/frame.h"

static struct wire_frame f, g;
static uint8_t buf[2 * WIRE_FRAME_MAX_LEN];

static size_t make(uint8_t type, uint16_t seq, size_t len, uint8_t *out)
{
	f.type = type;
	f.seq = seq;
	f.len = (uint16_t)len;
	for (size_t i = 0; i < len; i++)
		f.payload[i] = (uint8_t)(i * 31 + seq);
	return wire_frame_encode(&f, out, WIRE_FRAME_MAX_LEN);
}

static void test_crc_known(void **state)
{
	(void)state;
	/* The standard check value of CRC-32/IEEE. */
	assert_int_equal(wire_crc32(0, (const uint8_t *)"123456789", 9), 0xCBF43926u);
}

static void test_round_trip(void **state)
{
	size_t sizes[] = { 0, 1, 2, 100, 4095, WIRE_FRAME_MAX_PAYLOAD };

	(void)state;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = make(0x0A, (uint16_t)(0xFFF0 + i), sizes[i], buf), used = 0;

		assert_int_equal(n, WIRE_FRAME_HDR_LEN + sizes[i] + WIRE_FRAME_CRC_LEN);
		assert_int_equal(buf[0], 0xA5);
		assert_int_equal(buf[1], 0x5A);
		assert_int_equal(wire_frame_decode(buf, n, &g, &used), WIRE_FRAME_OK);
		assert_int_equal(used, n);
		assert_int_equal(g.type, 0x0A);
		assert_int_equal(g.seq, (uint16_t)(0xFFF0 + i));
		assert_int_equal(g.len, sizes[i]);
		assert_memory_equal(g.payload, f.payload, sizes[i]);
		/* Every strict prefix needs more. */
		assert_int_equal(wire_frame_decode(buf, n - 1, &g, &used), WIRE_FRAME_NEED_MORE);
		assert_int_equal(used, 0);
	}
}

static void test_encode_limits(void **state)
{
	(void)state;
	f.len = WIRE_FRAME_MAX_PAYLOAD + 1;
	assert_int_equal(wire_frame_encode(&f, buf, sizeof(buf)), 0);
	f.len = 10;
	assert_int_equal(wire_frame_encode(&f, buf, 10 + 11), 0);
}

static void test_resync_after_garbage(void **state)
{
	const uint8_t garbage[] = { 0x00, 0xA5, 0x13, 0xA5, 0xA5, 0xFF, 0x5A };
	size_t n, off = 0, used = 0;
	enum wire_frame_result r;

	(void)state;
	memcpy(buf, garbage, sizeof(garbage));
	n = sizeof(garbage) + make(0x81, 7, 20, buf + sizeof(garbage));
	for (;;) {
		r = wire_frame_decode(buf + off, n - off, &g, &used);
		off += used;
		if (r == WIRE_FRAME_OK)
			break;
		assert_true(used > 0);
		assert_true(off < n);
	}
	assert_int_equal(off, n);
	assert_int_equal(g.seq, 7);
	assert_int_equal(g.len, 20);
}

static void test_bad_crc(void **state)
{
	size_t n = make(0x82, 42, 50, buf), used = 0;

	(void)state;
	buf[20] ^= 0x10;
	assert_int_equal(wire_frame_decode(buf, n, &g, &used), WIRE_FRAME_BAD_CRC);
	assert_int_equal(g.seq, 42);     /* header (untrusted) reported */
	assert_int_equal(g.len, 0);      /* no payload handed out */
	assert_int_equal(used, 1);       /* resync past this magic only */
}

static void test_oversize_and_version(void **state)
{
	size_t n = make(0x01, 1, 4, buf), used = 0;

	(void)state;
	wire_put_u16(buf + 6, WIRE_FRAME_MAX_PAYLOAD + 1);
	assert_int_equal(wire_frame_decode(buf, n, &g, &used), WIRE_FRAME_BAD);
	assert_int_equal(used, 1);
	n = make(0x01, 1, 4, buf);
	buf[2] = 2;
	assert_int_equal(wire_frame_decode(buf, n, &g, &used), WIRE_FRAME_BAD);
	assert_int_equal(used, 1);
}

static void test_random_bytes(void **state)
{
	(void)state;
	srand(3);
	for (int i = 0; i < 2000; i++) {
		size_t n = (size_t)rand() % 600, off = 0, used;

		for (size_t k = 0; k < n; k++)
			buf[k] = (rand() % 8) == 0 ? 0xA5 : (rand() % 8) == 0 ? 0x5A : (uint8_t)rand();
		while (off < n) {
			enum wire_frame_result r = wire_frame_decode(buf + off, n - off, &g, &used);

			assert_true(used <= n - off);
			assert_true(g.len <= WIRE_FRAME_MAX_PAYLOAD);
			if (r == WIRE_FRAME_NEED_MORE && used == 0)
				break;
			if (r != WIRE_FRAME_NEED_MORE)
				assert_true(used > 0);
			off += used;
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc_known),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_encode_limits),
		cmocka_unit_test(test_resync_after_garbage),
		cmocka_unit_test(test_bad_crc),
		cmocka_unit_test(test_oversize_and_version),
		cmocka_unit_test(test_random_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

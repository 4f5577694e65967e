/* GDB memory-map parser (valid maps, hostile ones) and GDB's CRC-32. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "board/rsp.h"

static int parse(const char *xml, struct board_rsp_region *r, size_t cap, size_t *n)
{
	return board_rsp_parse_memory_map(xml, strlen(xml), r, cap, n);
}

/* What OpenOCD 0.12 sends for an nRF52840 with its nrf5 flash banks. */
static const char openocd_map[] =
	"<?xml version=\"1.0\"?>\n"
	"<!DOCTYPE memory-map PUBLIC \"+//IDN gnu.org//DTD GDB Memory Map V1.0//EN\" "
	"\"http://sourceware.org/gdb/gdb-memory-map.dtd\">\n"
	"<memory-map>\n"
	"<memory type=\"flash\" start=\"0x0\" length=\"0x100000\">\n"
	"<property name=\"blocksize\">0x1000</property>\n"
	"</memory>\n"
	"<memory type=\"ram\" start=\"0x100000\" length=\"0xfff00000\"/>\n"
	"<memory type=\"flash\" start=\"0x10001000\" length=\"0x1000\">\n"
	"<property name=\"blocksize\">0x1000</property>\n"
	"</memory>\n"
	"</memory-map>\n";

static void test_openocd_map(void **state)
{
	struct board_rsp_region r[8];
	size_t n = 0;

	(void)state;
	assert_int_equal(parse(openocd_map, r, 8, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(r[0].type, BOARD_RSP_MEM_FLASH);
	assert_int_equal(r[0].start, 0);
	assert_int_equal(r[0].length, 0x100000);
	assert_int_equal(r[0].blocksize, 0x1000);
	assert_int_equal(r[1].type, BOARD_RSP_MEM_RAM);
	assert_int_equal(r[1].start + r[1].length, 0x100000000ull);
	assert_int_equal(r[1].blocksize, 0);
	assert_int_equal(r[2].start, 0x10001000);
}

static void test_variants_accepted(void **state)
{
	struct board_rsp_region r[4];
	size_t n = 0;

	(void)state;
	/* Single quotes, decimal numbers, comments, other properties. */
	assert_int_equal(parse("<memory-map><!-- x --><memory type='rom' start='4096' "
			       "length = '16'/><memory type=\"flash\" start=\"0x8000000\" "
			       "length=\"0x20000\"><property name=\"other\">zz</property>"
			       "<property name=\"blocksize\"> 2048 </property></memory>"
			       "</memory-map>", r, 4, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(r[0].type, BOARD_RSP_MEM_ROM);
	assert_int_equal(r[0].start, 4096);
	assert_int_equal(r[1].blocksize, 2048);
	/* An empty map is a map. */
	assert_int_equal(parse("<memory-map/>", r, 4, &n), 0);
	assert_int_equal(n, 0);
}

static void test_hostile_refused(void **state)
{
	static const char *const bad[] = {
		"",
		"<memory-map>",
		"<memory type=\"flash\" start=\"0\" length=\"16\"/>",   /* outside a map */
		"<memory-map><memory type=\"flash\" start=\"0\" length=\"4096\"/></memory-map>",
		"<memory-map><memory type=\"flash\" start=\"0\" length=\"4096\"><property "
		"name=\"blocksize\">0</property></memory></memory-map>",
		"<memory-map><memory type=\"flash\" start=\"0\" length=\"4097\"><property "
		"name=\"blocksize\">4096</property></memory></memory-map>",
		"<memory-map><memory type=\"ram\" start=\"0xFFFFFFFF\" length=\"2\"/></memory-map>",
		"<memory-map><memory type=\"ram\" start=\"0\" length=\"0\"/></memory-map>",
		"<memory-map><memory type=\"ram\" start=\"0x\" length=\"4\"/></memory-map>",
		"<memory-map><memory type=\"ram\" start=\"-1\" length=\"4\"/></memory-map>",
		"<memory-map><memory type=\"ram\" start=\"99999999999999999999\" length=\"4\"/>"
		"</memory-map>",
		"<memory-map><memory type=\"eeprom\" start=\"0\" length=\"4\"/></memory-map>",
		"<memory-map><memory type=\"ram\" start=\"0\"/></memory-map>",
		"<memory-map><memory type=\"ram\" start=\"0\" length=\"4></memory-map>",
		"<memory-map><memory type=\"ram\" start=\"0\" length=\"4\"</memory-map>",
		"<memory-map><memory type=\"flash\" start=\"0\" length=\"4096\"><property "
		"name=\"blocksize\">4096</property>",
		"<!DOCTYPE x [<!ENTITY a \"b\">]><memory-map/>",          /* internal subset */
		"<memory-map><memory-map/></memory-map>",
		"<memory-map/><memory-map/>",
		"<memory-map><foo/></memory-map>",
		"<?xml version=\"1.0\"",
		"<memory-map><!-- unterminated </memory-map>",
	};
	struct board_rsp_region r[4];
	size_t n = 99;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = 99;
		if (parse(bad[i], r, 4, &n) != -1 || n != 0)
			fail_msg("accepted malformed map #%zu: %s", i, bad[i]);
	}
	/* More regions than room. */
	assert_int_equal(parse(openocd_map, r, 2, &n), -1);
	/* Every truncation of a valid map is refused, and never read past. */
	for (size_t len = 0; len + 1 < sizeof(openocd_map) - 1; len++) {
		char *cut = malloc(len ? len : 1);

		memcpy(cut, openocd_map, len);
		if (board_rsp_parse_memory_map(cut, len, r, 4, &n) == 0 && n == 3)
			fail_msg("truncated map of %zu bytes taken whole", len);
		free(cut);
	}
}

static void test_crc32_gdb(void **state)
{
	uint32_t c;

	(void)state;
	/* GDB's CRC-32 (MSB first, init 0xFFFFFFFF, no final xor) is the
	 * catalogued CRC-32/MPEG-2: check value of "123456789". */
	assert_int_equal(board_rsp_crc32(0xFFFFFFFFu, (const uint8_t *)"123456789", 9),
			 0x0376E6E7u);
	/* It chains over pieces. */
	c = board_rsp_crc32(0xFFFFFFFFu, (const uint8_t *)"1234", 4);
	assert_int_equal(board_rsp_crc32(c, (const uint8_t *)"56789", 5), 0x0376E6E7u);
	assert_int_equal(board_rsp_crc32(0xFFFFFFFFu, NULL, 0), 0xFFFFFFFFu);
}

/* The bit-at-a-time definition the table-driven code must equal. */
static uint32_t ref_crc32_msb(uint32_t crc, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		crc ^= (uint32_t)p[i] << 24;
		for (int k = 0; k < 8; k++)
			crc = crc & 0x80000000u ? crc << 1 ^ 0x04C11DB7u : crc << 1;
	}
	return crc;
}

/* Random data of every length up to 300 and some long ones, from any
 * offset (unaligned) and chained over random cuts: equal to the bitwise
 * reference. */
static void test_crc32_matches_bitwise(void **state)
{
	static uint8_t data[40000];

	(void)state;
	srand(11);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)rand();
	for (size_t n = 0; n < 30000; n += n < 300 ? 1 : 4099) {
		size_t off = (size_t)rand() % 9, cut = n ? (size_t)rand() % n : 0;
		uint32_t init = rand() % 2 ? 0xFFFFFFFFu : (uint32_t)rand() << 1 ^ (uint32_t)rand();
		uint32_t want = ref_crc32_msb(init, data + off, n);

		assert_int_equal(board_rsp_crc32(init, data + off, n), want);
		assert_int_equal(board_rsp_crc32(board_rsp_crc32(init, data + off, cut),
						 data + off + cut, n - cut),
				 want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_openocd_map),
		cmocka_unit_test(test_variants_accepted),
		cmocka_unit_test(test_hostile_refused),
		cmocka_unit_test(test_crc32_gdb),
		cmocka_unit_test(test_crc32_matches_bitwise),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

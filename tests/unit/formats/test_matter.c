/*
 * Matter onboarding (formats/matter.h) against the vectors of the Matter
 * specification's reference implementation, project-chip/connectedhomeip.
 * Each vector names the file it comes from; the values are the ones those
 * tests assert, re-typed here (no code of theirs is used).
 */
#include "fmt_test.h"

#include "formats/matter.h"
#include "imprint/util.h"

static void hex_to(const char *hex, uint8_t *out, size_t n)
{
	assert_int_equal(imp_hex_decode(hex, out, n), IMP_OK);
}

/* connectedhomeip src/setup_payload/tests/TestQRCode.cpp, TestBase38. */
static void test_base38_vectors(void **state)
{
	static const struct {
		const char *hex;
		const char *b38;
	} v[] = {
		{ "", "" },
		{ "0a", "A0" },
		{ "0a0a", "OT10" },
		{ "0a0a0a", "-N.B0" },
		{ "0a0a00", "OT100" },
		{ "0a0a28", "Y6V91" },
		{ "0a0a29", "KL0B1" },
		{ "0a0aff", "Q-M08" },
		{ "23", "Z0" },
		{ "ff00", "R600" },
		{ "2e0000", "81000" },
		{ "ff", "R6" },
		{ "ffff", "NE71" },
		{ "ffffff", "PLS18" },
		/* "Hello World!" */
		{ "48656c6c6f20576f726c6421", "KKHF3W2S013OPM3EJX11" },
	};
	uint8_t bin[32], back[32];
	char out[64];
	size_t n;

	(void)state;
	for (size_t i = 0; i < (size_t)IMP_ARRAY_SIZE(v); i++) {
		size_t len = strlen(v[i].hex) / 2;

		hex_to(v[i].hex, bin, len);
		assert_int_equal(fmt_base38_encode(bin, len, out, sizeof(out)), IMP_OK);
		assert_string_equal(out, v[i].b38);
		assert_int_equal(fmt_base38_decode(v[i].b38, back, sizeof(back), &n), IMP_OK);
		assert_int_equal(n, len);
		assert_memory_equal(back, bin, len);
	}
	/* the same file's decoder refusals: characters outside the alphabet,
	 * and chunks whose value exceeds what their bytes hold */
	assert_int_equal(fmt_base38_decode("[0", back, sizeof(back), &n), IMP_ERR_USAGE);
	assert_int_equal(fmt_base38_decode(" 0", back, sizeof(back), &n), IMP_ERR_USAGE);
	assert_int_equal(fmt_base38_decode("a0", back, sizeof(back), &n), IMP_ERR_USAGE);
	assert_int_equal(fmt_base38_decode("S6", back, sizeof(back), &n), IMP_ERR_USAGE);
	assert_int_equal(fmt_base38_decode("OE71", back, sizeof(back), &n), IMP_ERR_USAGE);
	assert_int_equal(fmt_base38_decode("QLS18", back, sizeof(back), &n), IMP_ERR_USAGE);
	assert_int_equal(fmt_base38_decode("S600", back, sizeof(back), &n), IMP_OK);
	assert_int_equal(n, 2);
	assert_int_equal(back[0], 0);
	assert_int_equal(back[1], 1);
	/* 1 and 3 characters are no chunk's length */
	assert_int_equal(fmt_base38_decode("A", back, sizeof(back), &n), IMP_ERR_USAGE);
	assert_int_equal(fmt_base38_decode("A00", back, sizeof(back), &n), IMP_ERR_USAGE);
	/* too small an output buffer is refused, never overrun */
	assert_int_equal(fmt_base38_encode(bin, 1, out, 2), IMP_ERR_USAGE);
	assert_int_equal(fmt_base38_encode(bin, 1, out, 3), IMP_OK);
}

/*
 * QR payloads:
 * - connectedhomeip src/setup_payload/tests/TestHelpers.h: the default
 *   payload (VID 12, PID 1, standard flow, SoftAP, discriminator 128,
 *   passcode 2048) is kDefaultPayloadQRCode "MT:M5L90MP500K64J00000", and
 *   kConcatenatedQRCode holds it with passcode and discriminator +1, +2, +3.
 * - connectedhomeip src/darwin/Framework/CHIPTests/
 *   MTRSetupPayloadSerializerTests.m: VID 0xFFF1, PID 1, standard flow,
 *   on-network, discriminator 0xabc, passcode 12121212.
 * - the commissioning data connectedhomeip's example apps log at start
 *   ("SetupQRCode: [MT:-24J042C00KA0648G00]", "Manual pairing code:
 *   [34970112332]" in the examples' READMEs): VID 0xFFF1, PID 0x8001, BLE,
 *   discriminator 3840, passcode 20202021.
 */
static void test_qr_vectors(void **state)
{
	static const struct {
		struct fmt_matter_payload p;
		const char *qr;
	} v[] = {
		{ { 12, 1, FMT_MATTER_FLOW_STANDARD, FMT_MATTER_DISC_SOFTAP, 128, 2048 },
		  "MT:M5L90MP500K64J00000" },
		{ { 12, 1, FMT_MATTER_FLOW_STANDARD, FMT_MATTER_DISC_SOFTAP, 129, 2049 },
		  "MT:M5L90U.D010K4J00000" },
		{ { 12, 1, FMT_MATTER_FLOW_STANDARD, FMT_MATTER_DISC_SOFTAP, 130, 2050 },
		  "MT:M5L900CM02IX4J00000" },
		{ { 12, 1, FMT_MATTER_FLOW_STANDARD, FMT_MATTER_DISC_SOFTAP, 131, 2051 },
		  "MT:M5L908OU03-85J00000" },
		{ { 0xFFF1, 1, FMT_MATTER_FLOW_STANDARD, FMT_MATTER_DISC_ON_NETWORK, 0xabc,
		    12121212 },
		  "MT:-24J06.H14BK9C7R900" },
		{ { 0xFFF1, 0x8001, FMT_MATTER_FLOW_STANDARD, FMT_MATTER_DISC_BLE, 3840,
		    20202021 },
		  "MT:-24J042C00KA0648G00" },
	};
	struct fmt_matter_payload back;
	char qr[FMT_MATTER_QR_MAX];

	(void)state;
	for (size_t i = 0; i < (size_t)IMP_ARRAY_SIZE(v); i++) {
		assert_int_equal(fmt_matter_qr(&v[i].p, qr), IMP_OK);
		assert_string_equal(qr, v[i].qr);
		assert_int_equal(fmt_matter_qr_parse(v[i].qr, &back), IMP_OK);
		assert_int_equal(back.vendor_id, v[i].p.vendor_id);
		assert_int_equal(back.product_id, v[i].p.product_id);
		assert_int_equal(back.flow, v[i].p.flow);
		assert_int_equal(back.discovery, v[i].p.discovery);
		assert_int_equal(back.discriminator, v[i].p.discriminator);
		assert_int_equal(back.passcode, v[i].p.passcode);
	}
}

/*
 * TestQRCode.cpp TestPayloadByteArrayRep: the default payload's bits,
 * most significant first (padding, passcode, discriminator, rendezvous,
 * flow, PID, VID, version).
 */
static void test_qr_bit_layout(void **state)
{
	static const char bits[] = "0000" "000000000000000100000000000" "000010000000"
				   "00000001" "00" "0000000000000001" "0000000000001100" "000";
	struct fmt_matter_payload p = { 12, 1, FMT_MATTER_FLOW_STANDARD,
					FMT_MATTER_DISC_SOFTAP, 128, 2048 };
	char qr[FMT_MATTER_QR_MAX];
	uint8_t buf[16];
	size_t n;

	(void)state;
	assert_int_equal(strlen(bits), 88);
	assert_int_equal(fmt_matter_qr(&p, qr), IMP_OK);
	assert_int_equal(fmt_base38_decode(qr + 3, buf, sizeof(buf), &n), IMP_OK);
	assert_int_equal(n, 11);
	for (size_t i = 0; i < 88; i++) {
		unsigned bit = buf[i / 8] >> (i % 8) & 1u;

		assert_int_equal(bit, (unsigned)(bits[87 - i] - '0'));
	}
}

static void test_qr_refusals(void **state)
{
	struct fmt_matter_payload p = { 0xFFF1, 0x8000, FMT_MATTER_FLOW_STANDARD,
					FMT_MATTER_DISC_BLE, 3840, 20202021 };
	struct fmt_matter_payload q;
	char qr[FMT_MATTER_QR_MAX];

	(void)state;
	q = p;
	q.discriminator = 0x1000;
	assert_int_equal(fmt_matter_qr(&q, qr), IMP_ERR_USAGE);
	q = p;
	q.flow = (enum fmt_matter_flow)3;
	assert_int_equal(fmt_matter_qr(&q, qr), IMP_ERR_USAGE);
	q = p;
	q.discovery = 0x20; /* a flag the station does not know: never issued, but read */
	assert_int_equal(fmt_matter_qr(&q, qr), IMP_ERR_USAGE);
	assert_int_equal(fmt_matter_qr_raw(&q, qr), IMP_OK);
	assert_int_equal(fmt_matter_qr_parse(qr, &q), IMP_OK);
	assert_int_equal(q.discovery, 0x20);
	q = p;
	q.passcode = 12345678; /* on the invalid list */
	assert_int_equal(fmt_matter_qr(&q, qr), IMP_ERR_USAGE);
	/* the raw form packs what fits (TestQRCode.cpp TestMaximumValues) */
	assert_int_equal(fmt_matter_qr_raw(&q, qr), IMP_OK);
	q.passcode = (1u << 27) - 1;
	q.vendor_id = q.product_id = 0xFFFF;
	q.discriminator = 0xFFF;
	q.flow = FMT_MATTER_FLOW_CUSTOM;
	q.discovery = FMT_MATTER_DISC_ALL;
	assert_int_equal(fmt_matter_qr_raw(&q, qr), IMP_OK);
	assert_int_equal(fmt_matter_qr_parse(qr, &p), IMP_OK);
	assert_int_equal(p.passcode, (1u << 27) - 1);
	assert_int_equal(p.discriminator, 0xFFF);
	q.passcode = 1u << 27;
	assert_int_equal(fmt_matter_qr_raw(&q, qr), IMP_ERR_USAGE);
	assert_int_equal(fmt_matter_qr_parse("MT:M5L90MP500K64J0000", &p), IMP_ERR_USAGE);
	assert_int_equal(fmt_matter_qr_parse("XX:M5L90MP500K64J00000", &p), IMP_ERR_USAGE);
}

/* connectedhomeip src/lib/support/tests/TestVerhoeff.cpp. */
static void test_verhoeff(void **state)
{
	(void)state;
	assert_int_equal(fmt_verhoeff_check("236"), '3');
	assert_int_equal(fmt_verhoeff_check("0"), '4');
	assert_int_equal(fmt_verhoeff_check("11111"), '5');
	assert_int_equal(fmt_verhoeff_check("12345"), '1');  /* "123451" validates */
	assert_int_equal(fmt_verhoeff_check("098765"), '2'); /* "0987652" validates */
	assert_int_equal(fmt_verhoeff_check("15"), '0');     /* "150" validates */
	assert_int_equal(fmt_verhoeff_check("4356678912349008"), '7');
	assert_int_equal(fmt_verhoeff_check("78324562830019274123748"), '4');
	assert_int_equal(fmt_verhoeff_check(""), '0');
	assert_int_equal(fmt_verhoeff_check("123F4567"), 0);
	assert_int_equal(fmt_verhoeff_check("23.4"), 0);
	assert_int_not_equal(fmt_verhoeff_check("12345"), fmt_verhoeff_check("13245"));
	assert_int_not_equal(fmt_verhoeff_check("1234567890"), fmt_verhoeff_check("1234567809"));
}

/*
 * connectedhomeip src/setup_payload/tests/TestManualCode.cpp: the code
 * before its check digit, which the test appends with Verhoeff (checked
 * above). Passcode 123456780 is outside the range the specification allows
 * for issuing, so these go through the raw encoder.
 */
static void test_manual_vectors(void **state)
{
	static const struct {
		struct fmt_matter_payload p;
		const char *digits;
	} v[] = {
		{ { 0, 0, FMT_MATTER_FLOW_STANDARD, 0, 2560, 123456780 }, "2361087535" },
		{ { 0, 0, FMT_MATTER_FLOW_CUSTOM, 0, 2560, 123456780 }, "63610875350000000000" },
		{ { 1, 1, FMT_MATTER_FLOW_CUSTOM, 0, 2560, 123456780 }, "63610875350000100001" },
		{ { 45367, 14526, FMT_MATTER_FLOW_CUSTOM, 0, 2560, 123456780 },
		  "63610875354536714526" },
		/* VID/PID without custom flow: the short code */
		{ { 45367, 14526, FMT_MATTER_FLOW_STANDARD, 0, 2560, 123456780 }, "2361087535" },
		{ { 65535, 65535, FMT_MATTER_FLOW_CUSTOM, 0, 0xFFF, 0x7FFFFFF },
		  "76553581916553565535" },
		{ { 0, 0, FMT_MATTER_FLOW_STANDARD, 0, 0, 1 }, "0000010000" },
	};
	char code[FMT_MATTER_MANUAL_MAX], want[FMT_MATTER_MANUAL_MAX];

	(void)state;
	for (size_t i = 0; i < (size_t)IMP_ARRAY_SIZE(v); i++) {
		snprintf(want, sizeof(want), "%s%c", v[i].digits, fmt_verhoeff_check(v[i].digits));
		assert_int_equal(fmt_matter_manual_code_raw(&v[i].p, code), IMP_OK);
		assert_string_equal(code, want);
	}
	/* an invalid passcode is refused by the issuing form */
	assert_int_equal(fmt_matter_manual_code(&v[0].p, code), IMP_ERR_USAGE);
	/* TestDecimalRepresentation_InvalidPayload: a 13-bit discriminator */
	{
		struct fmt_matter_payload p = v[0].p;

		p.discriminator = 0x1f00;
		assert_int_equal(fmt_matter_manual_code_raw(&p, code), IMP_ERR_USAGE);
	}
	/* the example apps' default (see test_qr_vectors) */
	{
		struct fmt_matter_payload p = { 0xFFF1, 0x8001, FMT_MATTER_FLOW_STANDARD,
						FMT_MATTER_DISC_BLE, 3840, 20202021 };

		assert_int_equal(fmt_matter_manual_code(&p, code), IMP_OK);
		assert_string_equal(code, "34970112332");
	}
}

/*
 * The SPAKE2+ verifier: connectedhomeip
 * src/protocols/secure_channel/tests/TestPASESession.cpp,
 * sTestSpake2p01_PinCode 20202021, sTestSpake2p01_Salt "SPAKE2P Key Salt",
 * sTestSpake2p01_IterationCount 1000, sTestSpake2p01_SerializedVerifier
 * (W0 || L).
 */
static void test_verifier_vector(void **state)
{
	static const char w0[] = "b96170aae803346884724fe9a3b287c30330c2a660375d17bb205a8cf1aecb35";
	static const char L[] = "0457f8ab79ee253ab6a8e46bb09e543ae422736de501e3db37d441fe344920d0"
				"9548e4c18240630c4ff4913c53513839b7c07fcc0627a1b8573a149fcd1fa466"
				"cf";
	static const uint8_t salt[] = "SPAKE2P Key Salt";
	uint8_t want[FMT_MATTER_VERIFIER_LEN], got[FMT_MATTER_VERIFIER_LEN];

	(void)state;
	hex_to(w0, want, FMT_MATTER_W0_LEN);
	hex_to(L, want + FMT_MATTER_W0_LEN, FMT_MATTER_L_LEN);
	assert_int_equal(fmt_matter_verifier(20202021, salt, 16, 1000, got), IMP_OK);
	assert_memory_equal(got, want, sizeof(want));
	/* another passcode, salt or count gives another verifier */
	assert_int_equal(fmt_matter_verifier(20202022, salt, 16, 1000, got), IMP_OK);
	assert_memory_not_equal(got, want, sizeof(want));
	assert_int_equal(fmt_matter_verifier(20202021, salt, 16, 1001, got), IMP_OK);
	assert_memory_not_equal(got, want, sizeof(want));
}

static void test_verifier_refusals(void **state)
{
	uint8_t salt[33] = { 0 }, out[FMT_MATTER_VERIFIER_LEN];

	(void)state;
	assert_int_equal(fmt_matter_verifier(20202021, salt, 15, 1000, out), IMP_ERR_USAGE);
	assert_int_equal(fmt_matter_verifier(20202021, salt, 33, 1000, out), IMP_ERR_USAGE);
	assert_int_equal(fmt_matter_verifier(20202021, salt, 32, 999, out), IMP_ERR_USAGE);
	assert_int_equal(fmt_matter_verifier(20202021, salt, 32, 100001, out), IMP_ERR_USAGE);
	assert_int_equal(fmt_matter_verifier(11111111, salt, 32, 1000, out), IMP_ERR_USAGE);
	assert_int_equal(fmt_matter_verifier(0, salt, 32, 1000, out), IMP_ERR_USAGE);
	assert_int_equal(fmt_matter_verifier(20202021, salt, 32, 1000, out), IMP_OK);
	assert_int_equal(fmt_matter_verifier(20202021, salt, 16, 100000, out), IMP_OK);
}

/* The specification's invalid list (5.1.7.1) and the range. */
static void test_passcode_validity(void **state)
{
	static const uint32_t bad[] = { 0, 11111111, 22222222, 33333333, 44444444, 55555555,
					66666666, 77777777, 88888888, 99999999, 12345678,
					87654321, 99999999 + 1, 1u << 27 };
	static const uint32_t good[] = { 1, 2, 20202021, 99999998, 12345679, 87654320 };

	(void)state;
	for (size_t i = 0; i < (size_t)IMP_ARRAY_SIZE(bad); i++)
		assert_false(fmt_matter_passcode_valid(bad[i]));
	for (size_t i = 0; i < (size_t)IMP_ARRAY_SIZE(good); i++)
		assert_true(fmt_matter_passcode_valid(good[i]));
}

/*
 * Rejection sampling: every draw is either refused or a valid code; the
 * draws that land on the invalid list or above the range are refused; a
 * sweep of the 27-bit space by a stride accepts about 74.5 % of it.
 */
static void test_passcode_draw(void **state)
{
	static const uint32_t refused[] = { 0, 11111111, 12345678, 87654321, 99999999,
					    100000000, (1u << 27) - 1 };
	uint8_t r[4];
	uint32_t pc, accepted = 0, total = 0;

	(void)state;
	for (size_t i = 0; i < (size_t)IMP_ARRAY_SIZE(refused); i++) {
		uint32_t v = refused[i] | 0xA0000000u; /* bits above 27 are dropped */

		r[0] = (uint8_t)v;
		r[1] = (uint8_t)(v >> 8);
		r[2] = (uint8_t)(v >> 16);
		r[3] = (uint8_t)(v >> 24);
		assert_false(fmt_matter_passcode_draw(r, &pc));
	}
	r[0] = 0x25;
	r[1] = 0x42;
	r[2] = 0x34;
	r[3] = 0xF1; /* 0x01344225 = 20202021 once the top bits are masked */
	assert_true(fmt_matter_passcode_draw(r, &pc));
	assert_int_equal(pc, 20202021);
	for (uint64_t v = 7; v < (1u << 27); v += 9973) {
		r[0] = (uint8_t)v;
		r[1] = (uint8_t)(v >> 8);
		r[2] = (uint8_t)(v >> 16);
		r[3] = (uint8_t)(v >> 24);
		total++;
		if (fmt_matter_passcode_draw(r, &pc)) {
			assert_true(fmt_matter_passcode_valid(pc));
			assert_int_equal(pc, (uint32_t)v);
			accepted++;
		}
	}
	assert_in_range(accepted * 1000u / total, 740, 750);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base38_vectors),
		cmocka_unit_test(test_qr_vectors),
		cmocka_unit_test(test_qr_bit_layout),
		cmocka_unit_test(test_qr_refusals),
		cmocka_unit_test(test_verhoeff),
		cmocka_unit_test(test_manual_vectors),
		cmocka_unit_test(test_verifier_vector),
		cmocka_unit_test(test_verifier_refusals),
		cmocka_unit_test(test_passcode_validity),
		cmocka_unit_test(test_passcode_draw),
	};

	imp_log_set_level(IMP_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

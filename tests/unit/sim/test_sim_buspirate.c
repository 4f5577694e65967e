/*
 * Unit tests of the virtual board's Bus Pirate (sim/buspirate.c): the
 * binary-mode handshake OpenOCD's buspirate driver performs, CMD_TAP_SHIFT
 * against the real TAP/DAP model (the IDCODE and a DPACC read), the other
 * OpenOCD-mode commands, SRST wired and unwired, and malformed, truncated
 * and random input, which must never crash the decoder or overrun its
 * output bound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sim/buspirate.h"
#include "sim/chip.h"
#include "sim/dap.h"
#include "sim/nrf52_map.h"

struct rig {
	struct sim_chip *chip;
	struct sim_dap *dap;
	struct sim_pirate p;
	uint8_t out[1 << 16];
	size_t n;
};

static struct rig *rig_new(bool srst_wired)
{
	struct sim_chip_opts o = { .family = "nordic-nrf52840", .revision = "legacy", .seed = 7 };
	struct rig *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	r->chip = sim_chip_new(&o);
	assert_non_null(r->chip);
	r->dap = sim_dap_new(r->chip);
	assert_non_null(r->dap);
	sim_pirate_init(&r->p, srst_wired);
	r->p.dap = r->dap;
	r->p.chip = r->chip;
	return r;
}

static void rig_free(struct rig *r)
{
	sim_dap_free(r->dap);
	sim_chip_free(r->chip);
	free(r);
}

/* Feed bytes; the answer is in r->out[0 .. r->n). */
static void feed(struct rig *r, const uint8_t *in, size_t n)
{
	assert_true(n * SIM_PIRATE_MAX_OUT_PER_BYTE <= sizeof(r->out));
	r->n = sim_pirate_feed(&r->p, in, n, r->out);
	assert_true(r->n <= n * SIM_PIRATE_MAX_OUT_PER_BYTE);
}

static void feed_expect(struct rig *r, const uint8_t *in, size_t n, const void *want, size_t wn)
{
	feed(r, in, n);
	assert_int_equal(r->n, wn);
	if (wn)
		assert_memory_equal(r->out, want, wn);
}

/* Console -> BBIO1 -> OCD1, as buspirate_bbio_enable does it. */
static void enter_ocd(struct rig *r)
{
	uint8_t zeros[20] = { 0 }, six = 0x06;

	feed_expect(r, zeros, sizeof(zeros), "BBIO1", 5);
	feed_expect(r, &six, 1, "OCD1", 4);
	assert_int_equal(r->p.mode, SIM_PIRATE_OCD);
}

/* buspirate_init after the handshake: pin mode, VREG, PULLUP, reset(0, 0). */
static void init_pins(struct rig *r, uint8_t mode)
{
	const uint8_t cmds[] = { 0x01, mode, 0x02, 0x02, 0x00, 0x02, 0x10, 0x00,
				 0x02, 0x04, 0x01, 0x02, 0x08, 0x01 };

	feed_expect(r, cmds, sizeof(cmds), NULL, 0);
	assert_false(r->p.trst_low);
	assert_false(r->p.srst_low);
}

/* A bit sequence (TMS, TDI per bit) as CMD_TAP_SHIFT bytes. */
struct seq {
	unsigned n;
	uint8_t tms[1024], tdi[1024];
};

static void bit(struct seq *s, int tms, int tdi)
{
	if (tms)
		s->tms[s->n / 8] |= (uint8_t)(1u << (s->n % 8));
	if (tdi)
		s->tdi[s->n / 8] |= (uint8_t)(1u << (s->n % 8));
	s->n++;
}

static size_t encode(const struct seq *s, uint8_t *cmd)
{
	size_t k = 0;

	cmd[k++] = 0x05;
	cmd[k++] = (uint8_t)(s->n >> 8);
	cmd[k++] = (uint8_t)s->n;
	for (unsigned i = 0; i < (s->n + 7) / 8; i++) {
		cmd[k++] = s->tdi[i];
		cmd[k++] = s->tms[i];
	}
	return k;
}

static uint32_t tdo_bits(const uint8_t *tdo, unsigned from, unsigned len)
{
	uint32_t v = 0;

	for (unsigned i = 0; i < len; i++)
		v |= (uint32_t)((tdo[(from + i) / 8] >> ((from + i) % 8)) & 1) << i;
	return v;
}

/* Test-Logic-Reset, Run-Test/Idle, then to Shift-DR: IDCODE is selected. */
static void idcode_seq(struct seq *s)
{
	memset(s, 0, sizeof(*s));
	for (int i = 0; i < 5; i++)
		bit(s, 1, 0);
	bit(s, 0, 0); /* Run-Test/Idle */
	bit(s, 1, 0); /* Select-DR-Scan */
	bit(s, 0, 0); /* Capture-DR */
	bit(s, 0, 0); /* Shift-DR */
	for (int i = 0; i < 32; i++)
		bit(s, i == 31, 0); /* bits 9..40; the last to Exit1-DR */
	bit(s, 1, 0); /* Update-DR */
	bit(s, 0, 0); /* Run-Test/Idle */
}

static void handshake_and_modes(void **state)
{
	struct rig *r = rig_new(false);
	uint8_t zeros[40] = { 0 }, b;

	(void)state;
	/* 19 zeros are not enough; a non-zero byte starts the count again */
	feed_expect(r, zeros, 19, NULL, 0);
	b = 'x';
	feed_expect(r, &b, 1, NULL, 0);
	feed_expect(r, zeros, 19, NULL, 0);
	feed_expect(r, zeros, 1, "BBIO1", 5);
	/* in BBIO1 every 0x00 answers BBIO1, as the driver's loop expects */
	feed_expect(r, zeros, 2, "BBIO1BBIO1", 10);
	b = 0x06;
	feed_expect(r, &b, 1, "OCD1", 4);
	feed_expect(r, &b, 1, "OCD1", 4);
	/* quit: 0x00 back to BBIO1, 0x0F back to the console (answers 0x01) */
	feed_expect(r, zeros, 1, "BBIO1", 5);
	b = 0x0F;
	feed_expect(r, &b, 1, "\x01", 1);
	assert_int_equal(r->p.mode, SIM_PIRATE_CONSOLE);
	/* a host that was killed in OCD1 mode: the next one's 20 zeros leave
	 * it and answer BBIO1 each, then 0x06 is OCD1 again */
	enter_ocd(r);
	feed(r, zeros, 20);
	assert_int_equal(r->n, 100);
	assert_memory_equal(r->out, "BBIO1BBIO1", 10);
	assert_int_equal(r->p.mode, SIM_PIRATE_BBIO);
	rig_free(r);
}

static void ocd_commands(void **state)
{
	struct rig *r = rig_new(false);
	const uint8_t speed_ok[] = { 0x07, 0x01, 0xAA, 0x55 };
	const uint8_t speed_bad[] = { 0x07, 0x01, 0xAA, 0x00 };
	const uint8_t jtag_speed[] = { 0x08, 0x00, 0x05 };
	const uint8_t adc = 0x03, unknown = 0x7E;

	(void)state;
	enter_ocd(r);
	feed_expect(r, speed_ok, sizeof(speed_ok), "\x07\x01", 2);
	feed_expect(r, speed_bad, sizeof(speed_bad), "\x07\x00", 2);
	feed_expect(r, jtag_speed, sizeof(jtag_speed), NULL, 0);
	feed(r, &adc, 1);
	assert_int_equal(r->n, 10);
	assert_int_equal(r->out[0], 0x03);
	assert_int_equal(r->out[1], 8);
	/* 3.3 V at OpenOCD's 155.1515 counts per volt */
	assert_int_equal(r->out[6] << 8 | r->out[7], 512);
	feed_expect(r, &unknown, 1, "\x00", 1);
	rig_free(r);
}

static void tap_shift_idcode(void **state)
{
	struct rig *r = rig_new(false);
	struct seq s;
	uint8_t cmd[3 + 2048];
	size_t k;

	(void)state;
	enter_ocd(r);
	init_pins(r, 1);
	idcode_seq(&s);
	k = encode(&s, cmd);
	feed(r, cmd, k);
	/* the header echoed, then one TDO byte per pair */
	assert_int_equal(r->n, 3 + (s.n + 7) / 8);
	assert_memory_equal(r->out, cmd, 3);
	assert_int_equal(tdo_bits(r->out + 3, 9, 32), SIM_DAP_IDCODE);
	assert_int_equal(r->p.cmd, 0);
	/* the same bytes one at a time: the same answer, as they arrive */
	{
		uint8_t all[sizeof(r->out)];
		size_t got = 0;

		for (size_t i = 0; i < k; i++) {
			feed(r, cmd + i, 1);
			memcpy(all + got, r->out, r->n);
			got += r->n;
		}
		assert_int_equal(got, 3 + (s.n + 7) / 8);
		assert_int_equal(tdo_bits(all + 3, 9, 32), SIM_DAP_IDCODE);
	}
	/* in HiZ nothing is clocked: the TAP stays where it was (Run-Test/
	 * Idle), so the same sequence shifts no IDCODE out */
	{
		uint8_t hiz[] = { 0x01, 0x00 };

		feed_expect(r, hiz, 2, NULL, 0);
		feed(r, cmd, k);
		assert_int_equal(r->n, 3 + (s.n + 7) / 8);
		assert_int_not_equal(tdo_bits(r->out + 3, 9, 32), SIM_DAP_IDCODE);
	}
	rig_free(r);
}

static void trst_holds_the_tap(void **state)
{
	struct rig *r = rig_new(false);
	const uint8_t trst_low[] = { 0x02, 0x04, 0x00 };
	struct seq s;
	uint8_t cmd[3 + 2048];
	size_t k;

	(void)state;
	enter_ocd(r);
	init_pins(r, 2);
	feed_expect(r, trst_low, sizeof(trst_low), NULL, 0);
	assert_true(r->p.trst_low);
	idcode_seq(&s);
	k = encode(&s, cmd);
	feed(r, cmd, k);
	/* held in Test-Logic-Reset: TDO is not driven from the IDCODE register */
	assert_int_not_equal(tdo_bits(r->out + 3, 9, 32), SIM_DAP_IDCODE);
	rig_free(r);
}

/* SRST reaches nRESET only when wired: a legacy nRF52 whose UICR APPROTECT
 * was programmed is protected from the next reset. */
static void srst_wired_or_not(void **state)
{
	const uint8_t srst_pulse[] = { 0x02, 0x08, 0x00, 0x02, 0x08, 0x01 };

	(void)state;
	for (int wired = 0; wired <= 1; wired++) {
		struct rig *r = rig_new(wired);
		uint8_t w[4] = { 0 };
		uint32_t st = 0;

		enter_ocd(r);
		init_pins(r, 1);
		/* UICR APPROTECT <- 0x00 (NVMC CONFIG WEN, write, REN) */
		w[0] = NRF_NVMC_CONFIG_WEN;
		assert_int_equal(sim_chip_write(r->chip, NRF_NVMC_CONFIG, w, 4), IMP_OK);
		memset(w, 0, 4);
		assert_int_equal(sim_chip_write(r->chip, NRF_UICR_APPROTECT, w, 4), IMP_OK);
		w[0] = NRF_NVMC_CONFIG_REN;
		while (sim_chip_write(r->chip, NRF_NVMC_CONFIG, w, 4) != IMP_OK)
			;
		feed_expect(r, srst_pulse, sizeof(srst_pulse), NULL, 0);
		assert_int_equal(sim_chip_ap_read(r->chip, NRF_CTRLAP_APSEL,
						  NRF_CTRLAP_APPROTECTSTATUS, &st), IMP_OK);
		assert_int_equal(st & 1, wired ? 0 : 1);
		rig_free(r);
	}
}

static void truncated_and_oversized(void **state)
{
	struct rig *r = rig_new(false);
	uint8_t big[3 + 2 * 1024 + 16], six = 0x06;
	size_t k = 0;

	(void)state;
	enter_ocd(r);
	init_pins(r, 1);
	/* 0xFFFF bits asked: 0x2000 are shifted, as the firmware limits it */
	big[k++] = 0x05;
	big[k++] = 0xFF;
	big[k++] = 0xFF;
	memset(big + k, 0, 2 * 1024);
	k += 2 * 1024;
	feed(r, big, k);
	assert_int_equal(r->n, 3 + 1024);
	assert_memory_equal(r->out, "\x05\xFF\xFF", 3);
	assert_int_equal(r->p.cmd, 0);
	feed_expect(r, &six, 1, "OCD1", 4);
	/* a shift cut short (the host died mid-write): the idle timeout drops
	 * the rest, the next command is a command again */
	feed(r, big, 3 + 10);
	assert_int_equal(r->n, 3 + 5);
	assert_int_equal(r->p.cmd, 0x05);
	sim_pirate_idle(&r->p);
	feed_expect(r, &six, 1, "OCD1", 4);
	/* each command's arguments cut short, then a hang-up: the console */
	{
		const uint8_t partial[][3] = { { 0x01 }, { 0x02, 0x04 }, { 0x07, 0x01, 0xAA },
					       { 0x08, 0x00 }, { 0x05, 0x00 } };
		const size_t len[] = { 1, 2, 3, 2, 2 };

		for (size_t i = 0; i < 5; i++) {
			feed(r, partial[i], len[i]);
			assert_int_equal(r->n, 0);
			sim_pirate_hangup(&r->p);
			assert_int_equal(r->p.mode, SIM_PIRATE_CONSOLE);
			feed_expect(r, &six, 1, NULL, 0);
			enter_ocd(r);
		}
	}
	/* zero bits: the header only */
	{
		const uint8_t none[] = { 0x05, 0x00, 0x00 };

		feed_expect(r, none, 3, "\x05\x00\x00", 3);
		feed_expect(r, &six, 1, "OCD1", 4);
	}
	rig_free(r);
}

/* Random bytes in random chunks, with and without a board behind the pins:
 * the decoder never writes past its bound and stays in a valid state. */
static void random_input_never_crashes(void **state)
{
	uint64_t x = 0x9E3779B97F4A7C15ull;

	(void)state;
	for (int with_board = 0; with_board <= 1; with_board++) {
		struct rig *r = rig_new(true);
		uint8_t in[512];

		if (!with_board) {
			r->p.dap = NULL;
			r->p.chip = NULL;
		}
		for (int round = 0; round < 4000; round++) {
			size_t n;

			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			n = (size_t)(x % sizeof(in)) + 1;
			for (size_t i = 0; i < n; i++) {
				x ^= x << 13;
				x ^= x >> 7;
				x ^= x << 17;
				/* bias towards command bytes and zeros */
				in[i] = (x & 3) == 0 ? (uint8_t)(x >> 8 & 0x0F) : (uint8_t)(x >> 16);
			}
			memset(r->out + n * SIM_PIRATE_MAX_OUT_PER_BYTE, 0xA5, 64);
			feed(r, in, n);
			for (size_t i = 0; i < 64; i++)
				assert_int_equal(r->out[n * SIM_PIRATE_MAX_OUT_PER_BYTE + i], 0xA5);
			assert_true(r->p.mode <= SIM_PIRATE_OCD);
			assert_true(r->p.shift_left <= SIM_PIRATE_MAX_SHIFT_BITS);
			assert_true(r->p.zeros < SIM_PIRATE_ZEROS_TO_BBIO);
			if (round % 97 == 0)
				sim_pirate_idle(&r->p);
			if (round % 389 == 0)
				sim_pirate_hangup(&r->p);
		}
		/* and it still speaks: back to the console, the handshake works */
		sim_pirate_hangup(&r->p);
		r->p.dap = r->dap;
		r->p.chip = r->chip;
		enter_ocd(r);
		rig_free(r);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(handshake_and_modes),
		cmocka_unit_test(ocd_commands),
		cmocka_unit_test(tap_shift_idcode),
		cmocka_unit_test(trst_holds_the_tap),
		cmocka_unit_test(srst_wired_or_not),
		cmocka_unit_test(truncated_and_oversized),
		cmocka_unit_test(random_input_never_crashes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

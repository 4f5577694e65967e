/*
 * Unit tests of the nRF52840 model (sim/chip_nrf52.c), the Cortex-M debug
 * registers (sim/core_cm.c) and the debug port (sim/dap.c), driven the way
 * the nRF52840 Product Specification and ADIv5 describe them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "imprint/util.h"
#include "sim/chip.h"
#include "sim/dap.h"
#include "sim/nrf52_map.h"
#include "sim/vb1_map.h"

static struct sim_chip *nrf(const char *rev, double latency, const char *dir, bool fw_keeps)
{
	struct sim_chip_opts o = { .family = "nordic-nrf52840", .revision = rev, .seed = 99,
				   .latency_scale = latency, .state_dir = dir,
				   .fw_keeps_approtect = fw_keeps };
	struct sim_chip *c = sim_chip_new(&o);

	assert_non_null(c);
	return c;
}

static imp_err w32_rc(struct sim_chip *c, uint32_t addr, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };

	return sim_chip_write(c, addr, b, 4);
}

static void w32(struct sim_chip *c, uint32_t addr, uint32_t v)
{
	assert_int_equal(w32_rc(c, addr, v), IMP_OK);
}

static uint32_t r32(struct sim_chip *c, uint32_t addr)
{
	uint8_t b[4];

	assert_int_equal(sim_chip_read(c, addr, b, 4), IMP_OK);
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint32_t ctrlap(struct sim_chip *c, uint32_t reg)
{
	uint32_t v = 0xDEADBEEF;

	assert_int_equal(sim_chip_ap_read(c, NRF_CTRLAP_APSEL, reg, &v), IMP_OK);
	return v;
}

static void wait_ready(struct sim_chip *c)
{
	for (int i = 0; i < 2000 && r32(c, NRF_NVMC_READY) != 1; i++)
		usleep(1000);
	assert_int_equal(r32(c, NRF_NVMC_READY), 1);
}

static void program(struct sim_chip *c, uint32_t addr, uint32_t v)
{
	w32(c, NRF_NVMC_CONFIG, NRF_NVMC_CONFIG_WEN);
	w32(c, addr, v);
	wait_ready(c);
	w32(c, NRF_NVMC_CONFIG, NRF_NVMC_CONFIG_REN);
}

static void erase_cmd(struct sim_chip *c, uint32_t reg, uint32_t v)
{
	w32(c, NRF_NVMC_CONFIG, NRF_NVMC_CONFIG_EEN);
	w32(c, reg, v);
	wait_ready(c);
	w32(c, NRF_NVMC_CONFIG, NRF_NVMC_CONFIG_REN);
}

static void ficr_and_uid(void **state)
{
	struct sim_chip *c = nrf(NULL, 0, NULL, false);
	const uint8_t *uid = sim_chip_uid(c);
	uint8_t id[8], zero[8] = { 0 };

	(void)state;
	assert_string_equal(sim_chip_family(c), "nordic-nrf52840");
	assert_int_equal(r32(c, NRF_FICR_INFO_PART), 0x52840);
	assert_int_equal(r32(c, NRF_FICR_INFO_VARIANT), NRF_VARIANT_AAD0);
	assert_int_equal(r32(c, NRF_FICR_CODEPAGESIZE), 4096);
	assert_int_equal(r32(c, NRF_FICR_CODESIZE), 256);
	assert_int_equal(r32(c, NRF_FICR_INFO_RAM), 256);
	assert_int_equal(r32(c, NRF_FICR_INFO_FLASH), 1024);
	assert_int_equal(sim_chip_read(c, NRF_FICR_DEVICEID0, id, 8), IMP_OK);
	assert_memory_equal(id, uid, 8);
	assert_memory_equal(uid + 8, zero, 8);
	/* FICR is read-only; unmapped space is a bus error */
	assert_int_equal(w32_rc(c, NRF_FICR_INFO_PART, 0), IMP_ERR_PROBE);
	assert_int_equal(sim_chip_read(c, 0x30000000u, id, 4), IMP_ERR_PROBE);
	/* flash and UICR start erased */
	assert_int_equal(r32(c, 0x0), 0xFFFFFFFFu);
	assert_int_equal(r32(c, NRF_UICR_APPROTECT), 0xFFFFFFFFu);
	sim_chip_free(c);

	c = nrf("hardened", 0, NULL, false);
	assert_int_equal(ctrlap(c, NRF_CTRLAP_IDR), NRF_CTRLAP_IDR_VALUE);
	sim_chip_free(c);
}

static void nvmc_wen_and_one_to_zero(void **state)
{
	struct sim_chip *c = nrf(NULL, 0, NULL, false);
	uint8_t b2[2] = { 0, 0 };

	(void)state;
	/* CONFIG=REN: a flash write is ignored, without an error */
	w32(c, 0x1000, 0x12345678);
	assert_int_equal(r32(c, 0x1000), 0xFFFFFFFFu);
	/* CONFIG=EEN is not WEN either */
	w32(c, NRF_NVMC_CONFIG, NRF_NVMC_CONFIG_EEN);
	w32(c, 0x1000, 0x12345678);
	assert_int_equal(r32(c, 0x1000), 0xFFFFFFFFu);
	/* WEN: programmed; a second write only clears bits */
	program(c, 0x1000, 0xF0F0F0F0u);
	assert_int_equal(r32(c, 0x1000), 0xF0F0F0F0u);
	program(c, 0x1000, 0x0FF00FF0u);
	assert_int_equal(r32(c, 0x1000), 0x00F000F0u);
	program(c, 0x1000, 0xFFFFFFFFu);
	assert_int_equal(r32(c, 0x1000), 0x00F000F0u);
	/* whole words only */
	w32(c, NRF_NVMC_CONFIG, NRF_NVMC_CONFIG_WEN);
	assert_int_equal(sim_chip_write(c, 0x2000, b2, 2), IMP_ERR_PROBE);
	assert_int_equal(r32(c, 0x2000), 0xFFFFFFFFu);
	/* ERASEPAGE needs EEN, then erases the page only */
	program(c, 0x2000, 0x11111111u);
	w32(c, NRF_NVMC_CONFIG, NRF_NVMC_CONFIG_WEN);
	w32(c, NRF_NVMC_ERASEPAGE, 0x1000);
	assert_int_equal(r32(c, 0x1000), 0x00F000F0u);
	erase_cmd(c, NRF_NVMC_ERASEPAGE, 0x1000);
	assert_int_equal(r32(c, 0x1000), 0xFFFFFFFFu);
	assert_int_equal(r32(c, 0x2000), 0x11111111u);
	/* UICR CUSTOMER words: OTP-like, only ERASEUICR gives them back */
	program(c, NRF_UICR_CUSTOMER0, 0xCAFEF00Du);
	program(c, NRF_UICR_CUSTOMER0, 0xFFFFFFFFu);
	assert_int_equal(r32(c, NRF_UICR_CUSTOMER0), 0xCAFEF00Du);
	erase_cmd(c, NRF_NVMC_ERASEPAGE, 0x0); /* a flash page erase leaves UICR */
	assert_int_equal(r32(c, NRF_UICR_CUSTOMER0), 0xCAFEF00Du);
	erase_cmd(c, NRF_NVMC_ERASEUICR, 1);
	assert_int_equal(r32(c, NRF_UICR_CUSTOMER0), 0xFFFFFFFFu);
	assert_int_equal(r32(c, 0x2000), 0x11111111u);
	/* ERASEALL: flash and UICR, counted as a mass erase */
	program(c, NRF_UICR_CUSTOMER0, 0x0u);
	assert_int_equal(sim_chip_mass_erases(c), 0);
	erase_cmd(c, NRF_NVMC_ERASEALL, 1);
	assert_int_equal(sim_chip_mass_erases(c), 1);
	assert_int_equal(r32(c, 0x2000), 0xFFFFFFFFu);
	assert_int_equal(r32(c, NRF_UICR_CUSTOMER0), 0xFFFFFFFFu);
	sim_chip_free(c);
}

static void nvmc_ready_timing(void **state)
{
	/* latency 100: a word write keeps READY low for 4.1 ms */
	struct sim_chip *c = nrf(NULL, 100, NULL, false);
	uint64_t t0;

	(void)state;
	assert_int_equal(r32(c, NRF_NVMC_READY), 1);
	w32(c, NRF_NVMC_CONFIG, NRF_NVMC_CONFIG_WEN);
	w32(c, 0x0, 0xA5A5A5A5u);
	assert_int_equal(r32(c, NRF_NVMC_READY), 0);
	assert_int_equal(r32(c, NRF_NVMC_READYNEXT), 0);
	usleep(8000);
	assert_int_equal(r32(c, NRF_NVMC_READY), 1);
	/* writes queue behind each other; an access to flash stalls until at
	 * most 2 ms of queued work is left (the bus stalls) */
	t0 = imp_now_ns();
	for (int i = 0; i < 4; i++)
		w32(c, 0x4 + 4u * (uint32_t)i, 0x5A5A5A5Au);
	assert_int_equal(r32(c, 0x4), 0x5A5A5A5Au);
	assert_true(imp_now_ns() - t0 >= 4 * 4100000u - 2000000u);
	wait_ready(c);
	assert_true(imp_now_ns() - t0 >= 4 * 4100000u);
	assert_true(sim_chip_modelled_ns(c) >= 5 * 4100000u);
	sim_chip_free(c);
}

static void legacy_approtect_at_reset(void **state)
{
	struct sim_chip *c = nrf("legacy", 0, NULL, false);
	uint8_t b[4];

	(void)state;
	assert_int_equal(ctrlap(c, NRF_CTRLAP_APPROTECTSTATUS), 1);
	assert_int_equal(sim_chip_lifecycle(c), 1);
	program(c, NRF_UICR_APPROTECT, 0xFFFFFF00u);
	/* burned, not yet effective: still open until a reset */
	assert_int_equal(sim_chip_fuses(c), VB1_FUSE_DEBUG_LOCK);
	assert_int_equal(sim_chip_fuses_effective(c), 0);
	assert_int_equal(r32(c, 0x0), 0xFFFFFFFFu);
	assert_int_equal(sim_chip_reset(c), IMP_OK);
	assert_int_equal(sim_chip_read(c, 0x0, b, 4), IMP_ERR_TARGET_LOCKED);
	assert_int_equal(sim_chip_read(c, NRF_UICR_APPROTECT, b, 4), IMP_ERR_TARGET_LOCKED);
	assert_int_equal(sim_chip_read(c, NRF_FICR_INFO_PART, b, 4), IMP_ERR_TARGET_LOCKED);
	assert_int_equal(w32_rc(c, NRF_NVMC_CONFIG, 2), IMP_ERR_TARGET_LOCKED);
	assert_int_equal(sim_chip_halt(c), IMP_ERR_TARGET_LOCKED);
	assert_true(sim_chip_debug_locked(c));
	assert_int_equal(sim_chip_fuses_effective(c), VB1_FUSE_DEBUG_LOCK);
	assert_int_equal(sim_chip_lifecycle(c), 3);
	/* the CTRL-AP stays reachable */
	assert_int_equal(ctrlap(c, NRF_CTRLAP_APPROTECTSTATUS), 0);
	assert_int_equal(ctrlap(c, NRF_CTRLAP_IDR), NRF_CTRLAP_IDR_VALUE);
	/* ERASEALL: flash, UICR and RAM erased, port open; each write of 1
	 * while none runs is one more erase */
	assert_int_equal(sim_chip_ap_write(c, NRF_CTRLAP_APSEL, NRF_CTRLAP_ERASEALL, 1), IMP_OK);
	assert_int_equal(sim_chip_mass_erases(c), 1);
	assert_int_equal(sim_chip_ap_write(c, NRF_CTRLAP_APSEL, NRF_CTRLAP_ERASEALL, 1), IMP_OK);
	assert_int_equal(sim_chip_mass_erases(c), 2);
	assert_int_equal(ctrlap(c, NRF_CTRLAP_ERASEALLSTATUS), 0);
	assert_int_equal(ctrlap(c, NRF_CTRLAP_APPROTECTSTATUS), 1);
	assert_int_equal(r32(c, NRF_UICR_APPROTECT), 0xFFFFFFFFu);
	assert_int_equal(sim_chip_fuses(c), 0);
	assert_int_equal(sim_chip_reset(c), IMP_OK);
	assert_int_equal(ctrlap(c, NRF_CTRLAP_APPROTECTSTATUS), 1);
	sim_chip_free(c);
}

static void eraseall_busy(void **state)
{
	/* latency 1: ERASEALLSTATUS busy for 169 ms, the port protected meanwhile */
	struct sim_chip *c = nrf("legacy", 1, NULL, false);

	(void)state;
	program(c, NRF_UICR_APPROTECT, 0xFFFFFF00u);
	sim_chip_reset(c);
	assert_int_equal(sim_chip_ap_write(c, NRF_CTRLAP_APSEL, NRF_CTRLAP_ERASEALL, 1), IMP_OK);
	assert_int_equal(ctrlap(c, NRF_CTRLAP_ERASEALLSTATUS), 1);
	assert_int_equal(ctrlap(c, NRF_CTRLAP_APPROTECTSTATUS), 0);
	/* a request while one runs is ignored */
	assert_int_equal(sim_chip_ap_write(c, NRF_CTRLAP_APSEL, NRF_CTRLAP_ERASEALL, 1), IMP_OK);
	assert_int_equal(sim_chip_mass_erases(c), 1);
	usleep(200000);
	assert_int_equal(ctrlap(c, NRF_CTRLAP_ERASEALLSTATUS), 0);
	assert_int_equal(ctrlap(c, NRF_CTRLAP_APPROTECTSTATUS), 1);
	sim_chip_free(c);
}

static void hardened_rules(void **state)
{
	struct sim_chip *c = nrf("hardened", 0, NULL, false);
	uint8_t b[4];

	(void)state;
	/* new part: erased UICR, no firmware: protected, lifecycle still OPEN */
	assert_true(sim_chip_debug_locked(c));
	assert_int_equal(sim_chip_read(c, NRF_FICR_INFO_VARIANT, b, 4), IMP_ERR_TARGET_LOCKED);
	assert_int_equal(ctrlap(c, NRF_CTRLAP_APPROTECTSTATUS), 0);
	assert_int_equal(sim_chip_lifecycle(c), 1);
	assert_int_equal(sim_chip_fuses(c), 0);
	/* ERASEALL opens it until the next reset */
	assert_int_equal(sim_chip_ap_write(c, NRF_CTRLAP_APSEL, NRF_CTRLAP_ERASEALL, 1), IMP_OK);
	assert_false(sim_chip_debug_locked(c));
	assert_int_equal(r32(c, NRF_FICR_INFO_VARIANT), NRF_VARIANT_AAF0);
	sim_chip_reset(c);
	assert_true(sim_chip_debug_locked(c));
	sim_chip_ap_write(c, NRF_CTRLAP_APSEL, NRF_CTRLAP_ERASEALL, 0);
	sim_chip_ap_write(c, NRF_CTRLAP_APSEL, NRF_CTRLAP_ERASEALL, 1);
	/* HwDisabled alone is not enough: no firmware writes SwDisabled */
	program(c, NRF_UICR_APPROTECT, 0xFFFFFF5Au);
	sim_chip_reset(c);
	assert_true(sim_chip_debug_locked(c));
	sim_chip_ap_write(c, NRF_CTRLAP_APSEL, NRF_CTRLAP_ERASEALL, 0);
	sim_chip_ap_write(c, NRF_CTRLAP_APSEL, NRF_CTRLAP_ERASEALL, 1);
	/* HwDisabled and a firmware image (reset vector programmed): open */
	program(c, NRF_UICR_APPROTECT, 0xFFFFFF5Au);
	program(c, 0x0, 0x20040000u);
	program(c, 0x4, 0x00000201u);
	sim_chip_reset(c);
	assert_false(sim_chip_debug_locked(c));
	assert_int_equal(sim_chip_lifecycle(c), 1);
	assert_int_equal(sim_chip_fuses(c), 0);
	/* SwDisable again changes nothing; FORCEPROTECT shuts it until the reset */
	w32(c, NRF_APPROTECT_DISABLE, NRF_APPROTECT_SWDISABLE);
	assert_false(sim_chip_debug_locked(c));
	w32(c, NRF_APPROTECT_FORCEPROTECT, 0);
	assert_true(sim_chip_debug_locked(c));
	sim_chip_reset(c); /* FORCEPROTECT lasts until the reset; the firmware opens it again */
	assert_false(sim_chip_debug_locked(c));
	/* UICR Enabled (0x00 over 0x5A): protected at reset despite the firmware */
	program(c, NRF_UICR_APPROTECT, 0xFFFFFF00u);
	assert_int_equal(sim_chip_fuses(c), VB1_FUSE_DEBUG_LOCK);
	sim_chip_reset(c);
	assert_true(sim_chip_debug_locked(c));
	assert_int_equal(sim_chip_lifecycle(c), 3);
	assert_int_equal(ctrlap(c, NRF_CTRLAP_APPROTECTSTATUS), 0);
	/* CTRL-AP RESET: held (refused), released: a reset */
	sim_chip_ap_write(c, NRF_CTRLAP_APSEL, NRF_CTRLAP_ERASEALL, 0);
	sim_chip_ap_write(c, NRF_CTRLAP_APSEL, NRF_CTRLAP_ERASEALL, 1);
	assert_false(sim_chip_debug_locked(c));
	assert_int_equal(r32(c, NRF_UICR_APPROTECT), 0xFFFFFFFFu);
	sim_chip_ap_write(c, NRF_CTRLAP_APSEL, NRF_CTRLAP_RESET, 1);
	assert_true(sim_chip_debug_locked(c));
	sim_chip_ap_write(c, NRF_CTRLAP_APSEL, NRF_CTRLAP_RESET, 0);
	assert_true(sim_chip_debug_locked(c)); /* erased UICR: protected again */
	sim_chip_free(c);

	/* firmware built to keep APPROTECT */
	c = nrf("hardened", 0, NULL, true);
	sim_chip_ap_write(c, NRF_CTRLAP_APSEL, NRF_CTRLAP_ERASEALL, 1);
	program(c, NRF_UICR_APPROTECT, 0xFFFFFF5Au);
	program(c, 0x4, 0x00000201u);
	sim_chip_reset(c);
	assert_true(sim_chip_debug_locked(c));
	sim_chip_free(c);
}

static void vector_catch_and_core(void **state)
{
	struct sim_chip *c = nrf("hardened", 0, NULL, false);

	(void)state;
	sim_chip_ap_write(c, NRF_CTRLAP_APSEL, NRF_CTRLAP_ERASEALL, 1);
	program(c, NRF_UICR_APPROTECT, 0xFFFFFF5Au);
	program(c, 0x0, 0x20040000u);
	program(c, 0x4, 0x00000201u);
	/* halting debug, halt, read PC through DCRSR/DCRDR */
	assert_int_equal(r32(c, 0xE000ED00u), 0x410FC241u);
	w32(c, 0xE000EDF0u, 0xA05F0003u);
	assert_true(r32(c, 0xE000EDF0u) & (1u << 17));
	/* without DBGKEY nothing changes */
	w32(c, 0xE000EDF0u, 0x00000001u);
	assert_true(r32(c, 0xE000EDF0u) & (1u << 17));
	/* VC_CORERESET + SYSRESETREQ: halted at the reset vector, no firmware ran */
	w32(c, 0xE000EDFCu, 0x01000001u);
	w32(c, 0xE000ED0Cu, 0x05FA0004u);
	/* the hardened part protected itself before the debugger got back */
	assert_true(sim_chip_debug_locked(c));
	sim_chip_debug_detach(c); /* the probe lets go */
	sim_chip_ap_write(c, NRF_CTRLAP_APSEL, NRF_CTRLAP_RESET, 1);
	sim_chip_ap_write(c, NRF_CTRLAP_APSEL, NRF_CTRLAP_RESET, 0);
	assert_false(sim_chip_debug_locked(c)); /* ran, firmware opened it */
	assert_int_equal(sim_chip_halted(c), 0);
	/* a reset halt on the open legacy part: S_RESET_ST, S_HALT, PC from the vector */
	sim_chip_free(c);
	c = nrf("legacy", 0, NULL, false);
	program(c, 0x0, 0x20040000u);
	program(c, 0x4, 0x00000201u);
	w32(c, 0xE000EDF0u, 0xA05F0001u);
	w32(c, 0xE000EDFCu, 0x01000001u);
	(void)r32(c, 0xE000EDF0u);
	w32(c, 0xE000ED0Cu, 0x05FA0004u);
	{
		uint32_t dhcsr = r32(c, 0xE000EDF0u);

		assert_true(dhcsr & (1u << 17));
		assert_true(dhcsr & (1u << 25));
		assert_false(r32(c, 0xE000EDF0u) & (1u << 25)); /* sticky, cleared by the read */
	}
	assert_true(r32(c, 0xE000ED30u) & 0x8u); /* DFSR.VCATCH */
	w32(c, 0xE000EDF4u, 15);
	assert_int_equal(r32(c, 0xE000EDF8u), 0x200u);
	w32(c, 0xE000EDF4u, 13);
	assert_int_equal(r32(c, 0xE000EDF8u), 0x20040000u);
	/* write r0 through DCRDR/DCRSR */
	w32(c, 0xE000EDF8u, 0x1234u);
	w32(c, 0xE000EDF4u, 0x10000u | 0);
	{
		uint32_t regs[SIM_CHIP_NREGS];

		assert_int_equal(sim_chip_read_regs(c, regs), IMP_OK);
		assert_int_equal(regs[0], 0x1234u);
		assert_int_equal(regs[15], 0x200u);
	}
	/* resume */
	w32(c, 0xE000EDF0u, 0xA05F0001u);
	assert_false(r32(c, 0xE000EDF0u) & (1u << 17));
	sim_chip_free(c);
}


/* ---- code run on the core by a debugger ---- */

static void put16(struct sim_chip *c, uint32_t addr, const uint16_t *op, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t b[2] = { (uint8_t)op[i], (uint8_t)(op[i] >> 8) };

		assert_int_equal(sim_chip_write(c, addr + 2u * (uint32_t)i, b, 2), IMP_OK);
	}
}

static void set_reg(struct sim_chip *c, unsigned sel, uint32_t v)
{
	w32(c, 0xE000EDF8u, v);
	w32(c, 0xE000EDF4u, 0x10000u | sel);
}

static uint32_t get_reg(struct sim_chip *c, unsigned sel)
{
	w32(c, 0xE000EDF4u, sel);
	return r32(c, 0xE000EDF8u);
}

/* Resume from the halt and wait (at most 2 s) for S_HALT or S_LOCKUP. */
static uint32_t run_until_stop(struct sim_chip *c)
{
	uint32_t dhcsr = 0;

	w32(c, 0xE000EDF0u, 0xA05F0001u);
	for (int i = 0; i < 2000; i++) {
		dhcsr = r32(c, 0xE000EDF0u);
		if (dhcsr & ((1u << 17) | (1u << 19)))
			break;
		usleep(1000);
	}
	return dhcsr;
}

static void core_executes_thumb(void **state)
{
	struct sim_chip *c = nrf("legacy", 0, NULL, false);
	/* r0 = 10 + 9 + ... + 1, stored at [r2], then BKPT */
	static const uint16_t sum[] = { 0x2000, 0x210A, 0x1840, 0x3901, 0xD1FC, 0x6010, 0xBE00 };
	/* copy r0 bytes from [r1] to [r3] word by word (LDMIA/STMIA), then BKPT */
	static const uint16_t copy[] = { 0xC910, 0xC310, 0x3804, 0xD1FB, 0xBE00 };
	static const uint16_t udf[] = { 0xDE00 };
	uint32_t dhcsr;

	(void)state;
	w32(c, 0xE000EDF0u, 0xA05F0003u); /* halt */
	put16(c, 0x20000000u, sum, IMP_ARRAY_SIZE(sum));
	set_reg(c, 2, 0x20001000u);
	set_reg(c, 15, 0x20000000u);
	set_reg(c, 16, 0x01000000u);
	dhcsr = run_until_stop(c);
	assert_true(dhcsr & (1u << 17));
	assert_int_equal(get_reg(c, 0), 55);
	assert_int_equal(r32(c, 0x20001000u), 55);
	assert_int_equal(get_reg(c, 15), 0x2000000Cu); /* halted on the BKPT */
	assert_true(r32(c, 0xE000ED30u) & 0x2u);       /* DFSR.BKPT */

	/* the same loop a flash loader runs: words into flash through the NVMC */
	w32(c, 0x20002000u, 0x11223344u);
	w32(c, 0x20002004u, 0x55667788u);
	w32(c, NRF_NVMC_CONFIG, NRF_NVMC_CONFIG_WEN);
	put16(c, 0x20000100u, copy, IMP_ARRAY_SIZE(copy));
	set_reg(c, 0, 8);
	set_reg(c, 1, 0x20002000u);
	set_reg(c, 3, 0x00003000u);
	set_reg(c, 15, 0x20000100u);
	dhcsr = run_until_stop(c);
	assert_true(dhcsr & (1u << 17));
	assert_int_equal(r32(c, 0x3000), 0x11223344u);
	assert_int_equal(r32(c, 0x3004), 0x55667788u);
	assert_int_equal(get_reg(c, 3), 0x3008u);
	w32(c, NRF_NVMC_CONFIG, NRF_NVMC_CONFIG_REN);

	/* a CRC-32 (polynomial 0x04C11DB7, MSB first, no final XOR) over 64 bytes,
	 * the kind of routine a debugger verifies flash with: MOV, MVNS, LDR
	 * literal, B, LDRB register, LSLS, EORS, BCC, SUBS, BNE, ADDS, CMP */
	{
		static const uint16_t crc[] = {
			0x4602, 0x2000, 0x43C0, 0x4E08, 0x2400, 0xE009, 0x5D15, 0x062D,
			0x4068, 0x2308, 0x0040, 0xD300, 0x4070, 0x3B01, 0xD1FA, 0x3401,
			0x428C, 0xD1F3, 0xBE00, 0xBF00, 0x1DB7, 0x04C1,
		};
		uint32_t want = 0xFFFFFFFFu;

		for (uint32_t i = 0; i < 64; i++) {
			uint8_t byte = (uint8_t)(i * 37u + 11u);

			w32(c, 0x20003000u + (i & ~3u), (r32(c, 0x20003000u + (i & ~3u)) & ~(0xFFu << (8 * (i & 3u)))) |
							 ((uint32_t)byte << (8 * (i & 3u))));
			want ^= (uint32_t)byte << 24;
			for (int k = 0; k < 8; k++)
				want = (want & 0x80000000u) ? (want << 1) ^ 0x04C11DB7u : want << 1;
		}
		put16(c, 0x20000400u, crc, IMP_ARRAY_SIZE(crc));
		set_reg(c, 0, 0x20003000u);
		set_reg(c, 1, 64);
		set_reg(c, 15, 0x20000400u);
		dhcsr = run_until_stop(c);
		assert_true(dhcsr & (1u << 17));
		assert_int_equal(get_reg(c, 15), 0x20000424u);
		assert_int_equal(get_reg(c, 0), want);
	}
	/* BL into a function that PUSHes and POPs {r4, pc}: back to the BKPT */
	{
		static const uint16_t call[] = { 0xF000, 0xF802, 0xBE00, 0xBF00, 0xB510, 0x2407, 0x1900, 0xBD10 };

		put16(c, 0x20000500u, call, IMP_ARRAY_SIZE(call));
		set_reg(c, 0, 5);
		set_reg(c, 13, 0x20003F00u);
		set_reg(c, 15, 0x20000500u);
		dhcsr = run_until_stop(c);
		assert_true(dhcsr & (1u << 17));
		assert_int_equal(get_reg(c, 15), 0x20000504u);
		assert_int_equal(get_reg(c, 0), 12);
		assert_int_equal(get_reg(c, 13), 0x20003F00u);
		assert_int_equal(get_reg(c, 14), 0x20000505u);
	}

	/* an instruction the core cannot execute: lockup, until the debugger halts it */
	put16(c, 0x20000200u, udf, 1);
	set_reg(c, 15, 0x20000200u);
	dhcsr = run_until_stop(c);
	assert_true(dhcsr & (1u << 19));
	assert_false(dhcsr & (1u << 17));
	w32(c, 0xE000EDF0u, 0xA05F0003u);
	dhcsr = r32(c, 0xE000EDF0u);
	assert_true(dhcsr & (1u << 17));
	assert_false(dhcsr & (1u << 19));

	/* firmware in flash (here erased, not executable) runs abstractly */
	set_reg(c, 15, 0x00001000u);
	w32(c, 0xE000EDF0u, 0xA05F0001u);
	usleep(20000);
	dhcsr = r32(c, 0xE000EDF0u);
	assert_false(dhcsr & ((1u << 17) | (1u << 19)));
	assert_int_equal(sim_chip_halted(c), 0);
	w32(c, 0xE000EDF0u, 0xA05F0003u);
	assert_int_equal(get_reg(c, 15), 0x00001000u);
	sim_chip_free(c);
}

/* ---- the debug port, at the JTAG pins ---- */

static void tms_seq(struct sim_dap *d, const char *bits)
{
	for (const char *p = bits; *p; p++)
		sim_dap_clock(d, *p == '1', 0);
}

/* From Run-Test/Idle: scan n bits of out through DR (or IR), back to idle. */
static uint64_t scan(struct sim_dap *d, bool ir, uint64_t out, unsigned n)
{
	uint64_t in = 0;

	tms_seq(d, ir ? "1100" : "100"); /* Select-DR(-IR), Capture, Shift */
	for (unsigned i = 0; i < n; i++) {
		in |= (uint64_t)sim_dap_tdo(d) << i;
		sim_dap_clock(d, i == n - 1, (int)((out >> i) & 1));
	}
	tms_seq(d, "10"); /* Update, Idle */
	return in;
}

/* DPACC/APACC: returns the previous read's result (ACK checked). */
static uint32_t acc(struct sim_dap *d, uint32_t ir, bool rnw, unsigned a, uint32_t data)
{
	uint64_t in;

	scan(d, true, ir, 4);
	in = scan(d, false, ((uint64_t)data << 3) | ((uint64_t)(a >> 2) << 1) | (rnw ? 1 : 0), 35);
	assert_int_equal(in & 7u, 2); /* OK/FAULT */
	return (uint32_t)(in >> 3);
}

static uint32_t dp_read(struct sim_dap *d, unsigned a)
{
	acc(d, 0xA, true, a, 0);
	return acc(d, 0xA, true, 0xC, 0); /* RDBUFF */
}

static uint32_t ap_read(struct sim_dap *d, unsigned a)
{
	acc(d, 0xB, true, a, 0);
	return acc(d, 0xA, true, 0xC, 0);
}

static void jtag_dap(void **state)
{
	struct sim_chip *c = nrf("legacy", 0, NULL, false);
	struct sim_dap *d = sim_dap_new(c);
	uint32_t cs;

	(void)state;
	assert_non_null(d);
	/* Test-Logic-Reset selects IDCODE */
	tms_seq(d, "111110");
	assert_int_equal((uint32_t)scan(d, false, 0, 32), SIM_DAP_IDCODE);
	/* IR capture is 0b0001; BYPASS is one bit of 0 */
	assert_int_equal(scan(d, true, 0xF, 4), 0x1);
	assert_int_equal(scan(d, false, 0x1, 2), 0x2); /* the bypass bit, then our 1 */
	/* power up */
	acc(d, 0xA, false, 0x4, 0x50000000u);
	cs = dp_read(d, 0x4);
	assert_int_equal(cs & 0xF0000000u, 0xF0000000u);
	/* AP #0 IDR, BASE */
	acc(d, 0xA, false, 0x8, 0x000000F0u);
	assert_int_equal(ap_read(d, 0xC), SIM_DAP_AHB_AP_IDR);
	assert_int_equal(ap_read(d, 0x8), 0xE00FF003u);
	/* CSW 32-bit single increment, TAR at FICR INFO.PART, two DRW reads */
	acc(d, 0xA, false, 0x8, 0x00000000u);
	acc(d, 0xB, false, 0x0, 0x23000012u);
	acc(d, 0xB, false, 0x4, NRF_FICR_INFO_PART);
	acc(d, 0xB, true, 0xC, 0);
	assert_int_equal(acc(d, 0xB, true, 0xC, 0), 0x52840u);
	assert_int_equal(acc(d, 0xA, true, 0xC, 0), NRF_VARIANT_AAD0);
	assert_int_equal(ap_read(d, 0x4), NRF_FICR_INFO_PART + 8);
	/* packed transfers are not implemented: the field reads back 0 */
	acc(d, 0xB, false, 0x0, 0x23000020u);
	assert_int_equal(ap_read(d, 0x0) & 0x30u, 0);
	/* a byte read lands in its lane */
	acc(d, 0xB, false, 0x0, 0x23000000u);
	acc(d, 0xB, false, 0x4, NRF_FICR_INFO_PART + 2);
	assert_int_equal(ap_read(d, 0xC), 0x00050000u);
	/* a bus error sets STICKYERR; AP accesses are skipped until it is cleared */
	acc(d, 0xB, false, 0x0, 0x23000002u);
	acc(d, 0xB, false, 0x4, 0x30000000u);
	(void)ap_read(d, 0xC);
	assert_true(dp_read(d, 0x4) & (1u << 5));
	assert_int_equal(ap_read(d, 0xC), 0);
	acc(d, 0xA, false, 0x4, 0x50000020u);
	assert_false(dp_read(d, 0x4) & (1u << 5));
	/* lock: the AHB-AP is disabled (IDR 0), transfers fail; the CTRL-AP answers */
	w32(c, NRF_NVMC_CONFIG, 1);
	w32(c, NRF_UICR_APPROTECT, 0xFFFFFF00u);
	sim_chip_reset(c);
	acc(d, 0xA, false, 0x8, 0x000000F0u);
	assert_int_equal(ap_read(d, 0xC), 0);
	acc(d, 0xA, false, 0x8, 0x00000000u);
	acc(d, 0xB, false, 0x4, 0x0);
	(void)ap_read(d, 0xC);
	assert_true(dp_read(d, 0x4) & (1u << 5));
	acc(d, 0xA, false, 0x4, 0x50000020u);
	acc(d, 0xA, false, 0x8, 0x010000F0u);
	assert_int_equal(ap_read(d, 0xC), NRF_CTRLAP_IDR_VALUE);
	acc(d, 0xA, false, 0x8, 0x01000000u);
	assert_int_equal(ap_read(d, 0xC), 0); /* APPROTECTSTATUS: protected */
	acc(d, 0xB, false, 0x4, 1);           /* ERASEALL */
	assert_int_equal(ap_read(d, 0x8), 0); /* ERASEALLSTATUS: done */
	assert_int_equal(ap_read(d, 0xC), 1); /* open */
	sim_dap_free(d);
	sim_chip_free(c);
}

static void persistence(void **state)
{
	char tmpl[] = "/tmp/imprint-nrf-unit.XXXXXX", cmd[128];
	char *dir = mkdtemp(tmpl);
	struct sim_chip *c;
	struct sim_chip_opts vb1 = { .state_dir = NULL };

	(void)state;
	assert_non_null(dir);
	c = nrf("hardened", 0, dir, false);
	sim_chip_ap_write(c, NRF_CTRLAP_APSEL, NRF_CTRLAP_ERASEALL, 1);
	program(c, NRF_UICR_CUSTOMER0 + 4, 0x0BADF00Du);
	program(c, 0x8000, 0x600DC0DEu);
	sim_chip_free(c);
	/* reopened as "legacy": the stored hardened board wins */
	c = nrf("legacy", 0, dir, false);
	assert_true(sim_chip_debug_locked(c)); /* hardened, erased APPROTECT */
	sim_chip_ap_write(c, NRF_CTRLAP_APSEL, NRF_CTRLAP_ERASEALL, 1);
	assert_int_equal(r32(c, NRF_FICR_INFO_VARIANT), NRF_VARIANT_AAF0);
	sim_chip_free(c);
	/* an imprint-vb1 chip refuses the nRF image */
	vb1.state_dir = dir;
	assert_null(sim_chip_new(&vb1));
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ficr_and_uid),
		cmocka_unit_test(nvmc_wen_and_one_to_zero),
		cmocka_unit_test(nvmc_ready_timing),
		cmocka_unit_test(legacy_approtect_at_reset),
		cmocka_unit_test(eraseall_busy),
		cmocka_unit_test(hardened_rules),
		cmocka_unit_test(vector_catch_and_core),
		cmocka_unit_test(core_executes_thumb),
		cmocka_unit_test(jtag_dap),
		cmocka_unit_test(persistence),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

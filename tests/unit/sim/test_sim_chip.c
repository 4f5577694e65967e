/* Unit tests of the virtual chip (sim/chip.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "imprint/util.h"
#include "sim/chip.h"
#include "sim/vb1_map.h"

static char *make_dir(void)
{
	char tmpl[] = "/tmp/imprint-sim-unit.XXXXXX";
	char *d = mkdtemp(tmpl);

	assert_non_null(d);
	return strdup(d);
}

static void rm_dir(char *d)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
	assert_int_equal(system(cmd), 0);
	free(d);
}

static struct sim_chip *chip_in(const char *dir, uint64_t seed)
{
	struct sim_chip_opts o = { .state_dir = dir, .seed = seed, .latency_scale = 0 };
	struct sim_chip *c = sim_chip_new(&o);

	assert_non_null(c);
	return c;
}

static void w32(struct sim_chip *c, uint32_t addr, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };

	assert_int_equal(sim_chip_write(c, addr, b, 4), IMP_OK);
}

static uint32_t r32(struct sim_chip *c, uint32_t addr)
{
	uint8_t b[4];

	assert_int_equal(sim_chip_read(c, addr, b, 4), IMP_OK);
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static void unlock(struct sim_chip *c)
{
	w32(c, VB1_FLASHC_KEYR, VB1_FLASHC_KEY1);
	w32(c, VB1_FLASHC_KEYR, VB1_FLASHC_KEY2);
	assert_int_equal(r32(c, VB1_FLASHC_CR) & VB1_FLASHC_CR_LOCK, 0);
}

static void burn(struct sim_chip *c, uint32_t mask)
{
	w32(c, VB1_FUSEC_KEYR, VB1_FUSEC_KEY);
	assert_true(r32(c, VB1_FUSEC_SR) & VB1_FUSEC_SR_ARMED);
	w32(c, VB1_FUSEC_CMD, mask);
	while (r32(c, VB1_FUSEC_SR) & VB1_FUSEC_SR_BSY)
		;
}

static void test_flash_program(void **state)
{
	struct sim_chip *c = chip_in(NULL, 1);
	uint8_t data[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, back[8];

	(void)state;
	/* locked controller: CR reads LOCK, flash writes are bus errors */
	assert_true(r32(c, VB1_FLASHC_CR) & VB1_FLASHC_CR_LOCK);
	assert_int_equal(sim_chip_write(c, VB1_FLASH_BASE, data, 8), IMP_ERR_PROBE);
	w32(c, VB1_FLASHC_CR, VB1_FLASHC_CR_PG); /* ignored while locked */
	assert_int_equal(sim_chip_write(c, VB1_FLASH_BASE, data, 8), IMP_ERR_PROBE);
	unlock(c);
	w32(c, VB1_FLASHC_CR, VB1_FLASHC_CR_PG);
	assert_int_equal(sim_chip_write(c, VB1_FLASH_BASE, data, 8), IMP_OK);
	assert_true(r32(c, VB1_FLASHC_SR) & VB1_FLASHC_SR_EOP);
	assert_int_equal(sim_chip_read(c, VB1_FLASH_BASE, back, 8), IMP_OK);
	assert_memory_equal(back, data, 8);
	/* unaligned programming is a bus error */
	assert_int_equal(sim_chip_write(c, VB1_FLASH_BASE + 9, data, 4), IMP_ERR_PROBE);
	/* programming a word that is not erased: PGERR, nothing changes */
	w32(c, VB1_FLASHC_SR, VB1_FLASHC_SR_EOP);
	w32(c, VB1_FLASH_BASE, 0);
	assert_true(r32(c, VB1_FLASHC_SR) & VB1_FLASHC_SR_PGERR);
	assert_int_equal(r32(c, VB1_FLASH_BASE), 0x04030201u);
	w32(c, VB1_FLASHC_SR, VB1_FLASHC_SR_PGERR);
	assert_int_equal(r32(c, VB1_FLASHC_SR) & VB1_FLASHC_SR_PGERR, 0);
	/* page erase */
	w32(c, VB1_FLASHC_CR, VB1_FLASHC_CR_PER);
	w32(c, VB1_FLASHC_AR, VB1_FLASH_BASE + 4);
	w32(c, VB1_FLASHC_CR, VB1_FLASHC_CR_PER | VB1_FLASHC_CR_STRT);
	assert_int_equal(r32(c, VB1_FLASH_BASE), 0xFFFFFFFFu);
	assert_int_equal(r32(c, VB1_FLASH_BASE + 4), 0xFFFFFFFFu);
	/* relock */
	w32(c, VB1_FLASHC_CR, VB1_FLASHC_CR_LOCK);
	assert_true(r32(c, VB1_FLASHC_CR) & VB1_FLASHC_CR_LOCK);
	sim_chip_free(c);
}

static void test_wrong_key_locks_until_reset(void **state)
{
	struct sim_chip *c = chip_in(NULL, 2);

	(void)state;
	w32(c, VB1_FLASHC_KEYR, VB1_FLASHC_KEY1);
	w32(c, VB1_FLASHC_KEYR, 0x12345678);
	w32(c, VB1_FLASHC_KEYR, VB1_FLASHC_KEY1);
	w32(c, VB1_FLASHC_KEYR, VB1_FLASHC_KEY2);
	assert_true(r32(c, VB1_FLASHC_CR) & VB1_FLASHC_CR_LOCK);
	sim_chip_reset(c);
	unlock(c);
	sim_chip_free(c);
}

static void test_boot_lock_write_protects(void **state)
{
	struct sim_chip *c = chip_in(NULL, 3);

	(void)state;
	burn(c, VB1_FUSE_BOOT_LOCK);
	assert_int_equal(r32(c, VB1_FUSEC_STATE), VB1_FUSE_BOOT_LOCK);
	/* not effective before reset */
	unlock(c);
	w32(c, VB1_FLASHC_CR, VB1_FLASHC_CR_PG);
	w32(c, VB1_FLASH_BASE, 0xAABBCCDD);
	assert_int_equal(r32(c, VB1_FLASH_BASE), 0xAABBCCDDu);
	sim_chip_reset(c);
	assert_int_equal(sim_chip_fuses_effective(c), VB1_FUSE_BOOT_LOCK);
	unlock(c);
	w32(c, VB1_FLASHC_CR, VB1_FLASHC_CR_PG);
	w32(c, VB1_FLASH_BASE + 4, 0x11111111);
	assert_true(r32(c, VB1_FLASHC_SR) & VB1_FLASHC_SR_WRPERR);
	assert_int_equal(r32(c, VB1_FLASH_BASE + 4), 0xFFFFFFFFu);
	/* erase refused too */
	w32(c, VB1_FLASHC_SR, VB1_FLASHC_SR_WRPERR);
	w32(c, VB1_FLASHC_AR, VB1_FLASH_BASE);
	w32(c, VB1_FLASHC_CR, VB1_FLASHC_CR_PER | VB1_FLASHC_CR_STRT);
	assert_true(r32(c, VB1_FLASHC_SR) & VB1_FLASHC_SR_WRPERR);
	assert_int_equal(r32(c, VB1_FLASH_BASE), 0xAABBCCDDu);
	/* and OTP */
	w32(c, VB1_FLASHC_SR, VB1_FLASHC_SR_WRPERR);
	w32(c, VB1_FLASHC_CR, VB1_FLASHC_CR_OTPPG);
	w32(c, VB1_OTP_BASE, 0x1);
	assert_true(r32(c, VB1_FLASHC_SR) & VB1_FLASHC_SR_WRPERR);
	assert_int_equal(r32(c, VB1_OTP_BASE), 0);
	sim_chip_free(c);
}

static void test_otp_only_sets_bits(void **state)
{
	struct sim_chip *c = chip_in(NULL, 4);

	(void)state;
	assert_int_equal(r32(c, VB1_OTP_BASE + 8), 0);
	/* OTP writes need OTPPG */
	unlock(c);
	{
		uint8_t b[4] = { 1, 0, 0, 0 };

		assert_int_equal(sim_chip_write(c, VB1_OTP_BASE, b, 4), IMP_ERR_PROBE);
	}
	w32(c, VB1_FLASHC_CR, VB1_FLASHC_CR_OTPPG);
	w32(c, VB1_OTP_BASE + 8, 0x0000F0F0);
	assert_int_equal(r32(c, VB1_OTP_BASE + 8), 0x0000F0F0u);
	w32(c, VB1_OTP_BASE + 8, 0x00000F0F);
	assert_int_equal(r32(c, VB1_OTP_BASE + 8), 0x0000FFFFu);
	w32(c, VB1_OTP_BASE + 8, 0);
	assert_int_equal(r32(c, VB1_OTP_BASE + 8), 0x0000FFFFu);
	sim_chip_free(c);
}

static void test_debug_lock_after_reset(void **state)
{
	struct sim_chip *c = chip_in(NULL, 5);
	uint8_t b[16];
	uint32_t regs[SIM_CHIP_NREGS];

	(void)state;
	assert_int_equal(r32(c, VB1_LIFECYCLE_ADDR), 1);
	burn(c, VB1_FUSE_DEBUG_LOCK);
	assert_int_equal(sim_chip_fuses(c), VB1_FUSE_DEBUG_LOCK);
	assert_int_equal(sim_chip_read(c, VB1_UID_ADDR, b, 16), IMP_OK); /* not yet */
	assert_int_equal(sim_chip_reset(c), IMP_OK);
	assert_int_equal(sim_chip_read(c, VB1_UID_ADDR, b, 16), IMP_ERR_TARGET_LOCKED);
	assert_int_equal(sim_chip_read(c, VB1_SRAM_BASE, b, 4), IMP_ERR_TARGET_LOCKED);
	assert_int_equal(sim_chip_write(c, VB1_SRAM_BASE, b, 4), IMP_ERR_TARGET_LOCKED);
	assert_int_equal(sim_chip_read_regs(c, regs), IMP_ERR_TARGET_LOCKED);
	assert_int_equal(sim_chip_halt(c), IMP_ERR_TARGET_LOCKED);
	assert_int_equal(sim_chip_lifecycle(c), 3);
	sim_chip_free(c);
}

static void test_fuse_fail_injection(void **state)
{
	struct sim_chip *c = chip_in(NULL, 6);

	(void)state;
	sim_chip_set_faults(c, SIM_FAULT_FUSE_FAIL);
	burn(c, VB1_FUSE_DEBUG_LOCK);
	assert_true(r32(c, VB1_FUSEC_SR) & VB1_FUSEC_SR_ERR);
	assert_int_equal(r32(c, VB1_FUSEC_STATE), 0);
	sim_chip_reset(c);
	assert_int_equal(r32(c, VB1_FUSEC_STATE), 0); /* still readable: nothing burned */
	/* the fault is one-shot: the next burn works */
	w32(c, VB1_FUSEC_SR, VB1_FUSEC_SR_ERR);
	burn(c, VB1_FUSE_BOOT_LOCK);
	assert_int_equal(r32(c, VB1_FUSEC_SR) & VB1_FUSEC_SR_ERR, 0);
	assert_int_equal(r32(c, VB1_FUSEC_STATE), VB1_FUSE_BOOT_LOCK);
	/* a command without KEYR is refused */
	w32(c, VB1_FUSEC_CMD, VB1_FUSE_DEBUG_LOCK);
	assert_true(r32(c, VB1_FUSEC_SR) & VB1_FUSEC_SR_ERR);
	assert_int_equal(r32(c, VB1_FUSEC_STATE), VB1_FUSE_BOOT_LOCK);
	sim_chip_free(c);
}

static void test_tamper_lock(void **state)
{
	struct sim_chip *c = chip_in(NULL, 7);
	uint8_t b[4];

	(void)state;
	sim_chip_set_faults(c, SIM_FAULT_TAMPER_LOCK);
	burn(c, VB1_FUSE_DEBUG_LOCK);
	sim_chip_reset(c);
	assert_int_equal(sim_chip_read(c, VB1_UID_ADDR, b, 4), IMP_OK);
	sim_chip_free(c);
}

static void test_persistence(void **state)
{
	char *dir = make_dir();
	struct sim_chip *c = chip_in(dir, 0);
	uint8_t uid[16], b[4];

	(void)state;
	memcpy(uid, sim_chip_uid(c), 16);
	unlock(c);
	w32(c, VB1_FLASHC_CR, VB1_FLASHC_CR_PG);
	w32(c, VB1_FLASH_BASE + 0x100, 0xCAFEF00D);
	w32(c, VB1_FLASHC_CR, VB1_FLASHC_CR_OTPPG);
	w32(c, VB1_OTP_BASE + 4, 0x5A5A0000);
	w32(c, VB1_SRAM_BASE, 0x12345678);
	burn(c, VB1_FUSE_BOOT_LOCK);
	sim_chip_set_personalised(c);
	sim_chip_free(c);

	/* re-open: a different seed must not change the stored UID */
	c = chip_in(dir, 99);
	assert_memory_equal(sim_chip_uid(c), uid, 16);
	assert_int_equal(r32(c, VB1_FLASH_BASE + 0x100), 0xCAFEF00Du);
	assert_int_equal(r32(c, VB1_OTP_BASE + 4), 0x5A5A0000u);
	assert_int_equal(sim_chip_fuses(c), VB1_FUSE_BOOT_LOCK);
	assert_int_equal(sim_chip_fuses_effective(c), VB1_FUSE_BOOT_LOCK); /* power-up is a reset */
	assert_int_equal(r32(c, VB1_LIFECYCLE_ADDR), 2);
	assert_int_equal(sim_chip_read(c, VB1_SRAM_BASE, b, 4), IMP_OK);
	sim_chip_free(c);
	rm_dir(dir);
}

static void test_seeded_uid_and_map(void **state)
{
	struct sim_chip *a = chip_in(NULL, 42), *b = chip_in(NULL, 42), *r = chip_in(NULL, 0);
	uint8_t buf[16], uid[16] = { 0 };
	struct sim_chip_opts o = { .uid = uid };
	struct sim_chip *u;

	(void)state;
	assert_memory_equal(sim_chip_uid(a), sim_chip_uid(b), 16);
	assert_memory_not_equal(sim_chip_uid(a), sim_chip_uid(r), 16);
	assert_int_equal(sim_chip_read(a, VB1_UID_ADDR, buf, 16), IMP_OK);
	assert_memory_equal(buf, sim_chip_uid(a), 16);
	/* unmapped and partly unmapped ranges */
	assert_int_equal(sim_chip_read(a, 0x30000000, buf, 4), IMP_ERR_PROBE);
	assert_int_equal(sim_chip_read(a, VB1_SRAM_BASE + VB1_SRAM_SIZE - 2, buf, 4), IMP_ERR_PROBE);
	/* system information is read-only */
	assert_int_equal(sim_chip_write(a, VB1_UID_ADDR, buf, 4), IMP_ERR_PROBE);
	uid[0] = 0xAB;
	u = sim_chip_new(&o);
	assert_non_null(u);
	assert_int_equal(sim_chip_uid(u)[0], 0xAB);
	sim_chip_free(u);
	sim_chip_free(a);
	sim_chip_free(b);
	sim_chip_free(r);
}

static void test_power_cut(void **state)
{
	char *dir = make_dir();
	pid_t pid;
	int st;
	struct sim_chip *c;

	(void)state;
	/* the chip image exists before the child starts counting */
	c = chip_in(dir, 0);
	sim_chip_free(c);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		c = chip_in(dir, 0);
		unlock(c);
		w32(c, VB1_FLASHC_CR, VB1_FLASHC_CR_PG);
		sim_power_cut_arm(sim_nv_write_count() + 3);
		for (uint32_t i = 0; i < 5; i++)
			w32(c, VB1_FLASH_BASE + 4 * i, 0x10 + i);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), SIM_POWER_CUT_EXIT);
	c = chip_in(dir, 0);
	assert_int_equal(r32(c, VB1_FLASH_BASE), 0x10);
	assert_int_equal(r32(c, VB1_FLASH_BASE + 4), 0x11);
	assert_int_equal(r32(c, VB1_FLASH_BASE + 8), 0xFFFFFFFFu); /* the cut write is lost */
	assert_int_equal(r32(c, VB1_FLASH_BASE + 12), 0xFFFFFFFFu);
	sim_chip_free(c);
	rm_dir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flash_program),
		cmocka_unit_test(test_wrong_key_locks_until_reset),
		cmocka_unit_test(test_boot_lock_write_protects),
		cmocka_unit_test(test_otp_only_sets_bits),
		cmocka_unit_test(test_debug_lock_after_reset),
		cmocka_unit_test(test_fuse_fail_injection),
		cmocka_unit_test(test_tamper_lock),
		cmocka_unit_test(test_persistence),
		cmocka_unit_test(test_seeded_uid_and_map),
		cmocka_unit_test(test_power_cut),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

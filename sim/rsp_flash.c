/*
 * The flash driver of the virtual board's GDB server: what OpenOCD, J-Link,
 * pyOCD and the Black Magic Probe offer a client, the chip's memory map
 * (qXfer:memory-map:read) and vFlashErase / vFlashWrite / vFlashDone.
 *
 * Like a real server's driver it reaches the flash through the chip's own
 * flash controller, by the register accesses a client would make over the
 * debug port (sim_chip_read / sim_chip_write): the same erase and program
 * operations, the same modelled time, the same lock state (a debug-locked
 * chip refuses with IMP_ERR_TARGET_LOCKED, RSP E51), the same write
 * protection (boot-lock: SR.WRPERR) and the same injected faults (power
 * cut at a non-volatile write). Writes are buffered until vFlashDone, as
 * OpenOCD's gdb_server does, so a client may split them anywhere.
 *
 * Families without a driver here (nordic-nrf52840, st-stm32u5: OpenOCD's
 * nrf5 and stm32l4x drivers are the servers there) get no memory map, and
 * their clients program through the controller's registers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "board_int.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "sim/vb1_map.h"

#define VB1_SR_CLEAR (VB1_FLASHC_SR_EOP | VB1_FLASHC_SR_WRPERR | VB1_FLASHC_SR_PGERR)
#define VB1_SR_ERRORS (VB1_FLASHC_SR_WRPERR | VB1_FLASHC_SR_PGERR)
#define PROGRAM_CHUNK 8192u /* bytes per controller write, as a probe's transfers */

/* The flash region and the rest of the map, as OpenOCD lists a target's
 * banks and the memory around them. */
static const char vb1_memory_map[] =
	"<?xml version=\"1.0\"?>\n"
	"<!DOCTYPE memory-map PUBLIC \"+//IDN gnu.org//DTD GDB Memory Map V1.0//EN\" "
	"\"http://sourceware.org/gdb/gdb-memory-map.dtd\">\n"
	"<memory-map>\n"
	"<memory type=\"flash\" start=\"0x08000000\" length=\"0x40000\">"
	"<property name=\"blocksize\">0x800</property></memory>\n"
	"<memory type=\"rom\" start=\"0x1fff7000\" length=\"0x800\"/>\n"
	"<memory type=\"ram\" start=\"0x1fff7800\" length=\"0x400\"/>\n"
	"<memory type=\"ram\" start=\"0x20000000\" length=\"0x10000\"/>\n"
	"<memory type=\"ram\" start=\"0x40022000\" length=\"0x400\"/>\n"
	"<memory type=\"ram\" start=\"0x40023000\" length=\"0x400\"/>\n"
	"</memory-map>\n";

_Static_assert(VB1_FLASH_BASE == 0x08000000u && VB1_FLASH_SIZE == 0x40000u &&
	       VB1_FLASH_PAGE == 0x800u, "vb1 memory map");

static bool is_vb1(const struct sim_chip *c)
{
	return strcmp(sim_chip_family(c), "imprint-vb1") == 0;
}

const char *sim_rsp_flash_memory_map(const struct sim_chip *c)
{
	return c && is_vb1(c) ? vb1_memory_map : NULL;
}

static imp_err reg_write(struct sim_chip *c, uint32_t addr, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };

	return sim_chip_write(c, addr, b, 4);
}

static imp_err reg_read(struct sim_chip *c, uint32_t addr, uint32_t *v)
{
	uint8_t b[4];
	imp_err rc = sim_chip_read(c, addr, b, 4);

	if (rc == IMP_OK)
		*v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
		     (uint32_t)b[3] << 24;
	return rc;
}

/* KEYR <- KEY1, KEY2 unless CR is open already; then CR.LOCK must read 0. */
static imp_err vb1_unlock(struct sim_chip *c)
{
	uint32_t cr = 0;
	imp_err rc = reg_read(c, VB1_FLASHC_CR, &cr);

	if (rc != IMP_OK || !(cr & VB1_FLASHC_CR_LOCK))
		return rc;
	rc = reg_write(c, VB1_FLASHC_KEYR, VB1_FLASHC_KEY1);
	if (rc == IMP_OK)
		rc = reg_write(c, VB1_FLASHC_KEYR, VB1_FLASHC_KEY2);
	if (rc == IMP_OK)
		rc = reg_read(c, VB1_FLASHC_CR, &cr);
	if (rc == IMP_OK && (cr & VB1_FLASHC_CR_LOCK)) {
		IMP_WARN("rsp flash: the flash controller did not unlock (a wrong key sequence "
			 "since the last reset?)");
		rc = IMP_ERR_PROBE;
	}
	return rc;
}

/* SR after an operation: its error flags fail it (named in the log). */
static imp_err vb1_check(struct sim_chip *c, const char *what, uint32_t addr)
{
	uint32_t sr = 0;
	imp_err rc = reg_read(c, VB1_FLASHC_SR, &sr);

	if (rc != IMP_OK)
		return rc;
	if (sr & VB1_SR_ERRORS) {
		IMP_WARN("rsp flash: %s at 0x%08x failed: SR 0x%02x (%s)", what, addr, sr,
			 (sr & VB1_FLASHC_SR_WRPERR) ? "WRPERR: write-protected, boot-lock fuse"
						     : "PGERR: word not erased");
		return IMP_ERR_PROBE;
	}
	return IMP_OK;
}

/* Relock the controller whatever happened (as the profile's sequences do). */
static imp_err vb1_relock(struct sim_chip *c, imp_err rc)
{
	imp_err rc2 = reg_write(c, VB1_FLASHC_CR, VB1_FLASHC_CR_LOCK);

	return rc != IMP_OK ? rc : rc2;
}

static bool in_flash(uint32_t addr, uint64_t len)
{
	return addr >= VB1_FLASH_BASE && (uint64_t)addr + len <= (uint64_t)VB1_FLASH_BASE +
									   VB1_FLASH_SIZE;
}

/* true when the page reads erased over the debug port (*rc: the read's error). */
static bool page_blank(struct sim_chip *c, uint32_t page, imp_err *rc)
{
	uint8_t buf[VB1_FLASH_PAGE];

	*rc = sim_chip_read(c, page, buf, sizeof(buf));
	if (*rc != IMP_OK)
		return false;
	for (size_t i = 0; i < sizeof(buf); i++)
		if (buf[i] != 0xFF)
			return false;
	return true;
}

/*
 * Erase whole pages. A page that already reads erased is left alone, as
 * J-Link's and pyOCD's flash loaders skip blank sectors: a fresh board
 * costs no erase at all. The whole bank, when anything in it is not blank,
 * is one mass erase (OpenOCD's stm32f1x does the same).
 */
imp_err sim_rsp_flash_erase(struct sim_chip *c, uint32_t addr, uint32_t len)
{
	uint32_t npages = len / VB1_FLASH_PAGE, todo = 0;
	bool whole = addr == VB1_FLASH_BASE && len == VB1_FLASH_SIZE;
	uint8_t *need;
	imp_err rc = IMP_OK;

	if (!is_vb1(c) || len == 0 || !in_flash(addr, len))
		return IMP_ERR_NOT_FOUND;
	if ((addr - VB1_FLASH_BASE) % VB1_FLASH_PAGE || len % VB1_FLASH_PAGE)
		return IMP_ERR_USAGE;
	need = calloc(npages, 1);
	if (!need)
		return IMP_ERR_NOMEM;
	for (uint32_t i = 0; i < npages && rc == IMP_OK; i++) {
		need[i] = !page_blank(c, addr + i * VB1_FLASH_PAGE, &rc);
		todo += need[i];
	}
	if (rc != IMP_OK || todo == 0)
		goto cleanup;
	rc = vb1_unlock(c);
	if (rc == IMP_OK && whole) {
		rc = reg_write(c, VB1_FLASHC_SR, VB1_SR_CLEAR);
		if (rc == IMP_OK)
			rc = reg_write(c, VB1_FLASHC_CR, VB1_FLASHC_CR_MER);
		if (rc == IMP_OK)
			rc = reg_write(c, VB1_FLASHC_CR, VB1_FLASHC_CR_MER | VB1_FLASHC_CR_STRT);
		if (rc == IMP_OK)
			rc = vb1_check(c, "mass erase", addr);
	}
	for (uint32_t i = 0; !whole && rc == IMP_OK && i < npages; i++) {
		uint32_t page = addr + i * VB1_FLASH_PAGE;

		if (!need[i])
			continue;
		rc = reg_write(c, VB1_FLASHC_SR, VB1_SR_CLEAR);
		if (rc == IMP_OK)
			rc = reg_write(c, VB1_FLASHC_CR, VB1_FLASHC_CR_PER);
		if (rc == IMP_OK)
			rc = reg_write(c, VB1_FLASHC_AR, page);
		if (rc == IMP_OK)
			rc = reg_write(c, VB1_FLASHC_CR, VB1_FLASHC_CR_PER | VB1_FLASHC_CR_STRT);
		if (rc == IMP_OK)
			rc = vb1_check(c, "page erase", page);
	}
	rc = vb1_relock(c, rc);
cleanup:
	free(need);
	return rc;
}

/* Program the buffered run: whole words, padded with erased bytes. */
static imp_err flush(struct sim_rsp_flash *f, struct sim_chip *c)
{
	uint32_t head = f->addr % 4u;
	size_t n = (head + f->len + 3u) / 4u * 4u;
	uint32_t start = f->addr - head;
	uint8_t *words;
	imp_err rc;

	if (f->len == 0)
		return IMP_OK;
	words = malloc(n);
	if (!words)
		return IMP_ERR_NOMEM;
	memset(words, 0xFF, n);
	memcpy(words + head, f->buf, f->len);
	f->len = 0;
	rc = vb1_unlock(c);
	if (rc == IMP_OK)
		rc = reg_write(c, VB1_FLASHC_SR, VB1_SR_CLEAR);
	if (rc == IMP_OK)
		rc = reg_write(c, VB1_FLASHC_CR, VB1_FLASHC_CR_PG);
	for (size_t off = 0; rc == IMP_OK && off < n; off += PROGRAM_CHUNK) {
		size_t k = n - off < PROGRAM_CHUNK ? n - off : PROGRAM_CHUNK;

		rc = sim_chip_write(c, start + (uint32_t)off, words + off, k);
		if (rc == IMP_OK)
			rc = vb1_check(c, "programming", start + (uint32_t)off);
	}
	free(words);
	return vb1_relock(c, rc);
}

imp_err sim_rsp_flash_write(struct sim_rsp_flash *f, struct sim_chip *c, uint32_t addr,
			    const uint8_t *data, size_t n)
{
	imp_err rc;

	if (!is_vb1(c) || !in_flash(addr, n))
		return IMP_ERR_NOT_FOUND;
	if (f->len && addr != f->addr + f->len) {
		/* Not the continuation of the run: program that one first. */
		rc = flush(f, c);
		if (rc != IMP_OK)
			return rc;
	}
	if (f->len == 0)
		f->addr = addr;
	if (f->len + n > f->cap) {
		size_t cap = f->cap ? f->cap : 16384;
		uint8_t *nb;

		while (cap < f->len + n)
			cap *= 2;
		nb = realloc(f->buf, cap);
		if (!nb)
			return IMP_ERR_NOMEM;
		f->buf = nb;
		f->cap = cap;
	}
	memcpy(f->buf + f->len, data, n);
	f->len += n;
	return IMP_OK;
}

imp_err sim_rsp_flash_done(struct sim_rsp_flash *f, struct sim_chip *c)
{
	if (f->len == 0)
		return IMP_OK;
	if (!c || !is_vb1(c)) {
		f->len = 0;
		return IMP_ERR_NOT_FOUND;
	}
	return flush(f, c);
}

void sim_rsp_flash_free(struct sim_rsp_flash *f)
{
	free(f->buf);
	memset(f, 0, sizeof(*f));
}

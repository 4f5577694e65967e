/*
 * The virtual board's debug port: an IEEE 1149.1 JTAG TAP in front of an
 * ARM ADIv5 JTAG-DP (ARM IHI 0031), with AP #0 a MEM-AP (AHB-AP) onto the
 * chip's memory map and APs >= 1 the chip family's vendor access ports
 * (sim_chip_ap_read/write). The register model above the wire is the one
 * an SW-DP reaches; the wire is JTAG because that is what OpenOCD's
 * remote_bitbang driver speaks (sim/bitbang.c carries it over TCP).
 *
 * TAP: IR 4 bits (capture 0b0001), IDCODE 0xE (resets to it), DPACC 0xA,
 * APACC 0xB, ABORT 0x8, every other instruction BYPASS. DPACC/APACC scans
 * are 35 bits: out RnW (bit 0), A[3:2] (bits 2:1), data (bits 34:3); in
 * ACK (OK/FAULT 0b010; WAIT is never needed, every access completes before
 * the next scan) and the result of the previous read.
 *
 * DP: CTRL/STAT (power-up requests acknowledged at once; STICKYERR,
 * STICKYCMP, STICKYORUN write-1-to-clear), SELECT (APSEL, APBANKSEL),
 * RDBUFF; DPIDR at address 0. A failed MEM-AP transfer sets STICKYERR and
 * while it is set no AP transfer is performed (reads give 0).
 *
 * MEM-AP: CSW (8/16/32-bit, auto-increment off or single; packed transfers
 * are not implemented, the field reads back 0), TAR (auto-increment wraps
 * within 4 KiB, as the Cortex-M4 AHB-AP's does), DRW (byte lanes by
 * TAR[1:0]), BD0-BD3, CFG 0, BASE (ROM table at 0xE00FF000 when the chip has a Cortex-M
 * System Control Space), IDR 0x24770011 (AHB-AP). While the chip refuses
 * debug access (sim_chip_debug_locked) the MEM-AP is disabled: every
 * register reads 0, IDR included, writes are ignored and DRW/BD transfers
 * fail (STICKYERR) — as an nRF52 with APPROTECT behaves.
 */
#ifndef SIM_DAP_H
#define SIM_DAP_H

#include <stdbool.h>
#include <stdint.h>

#include "sim/chip.h"

#define SIM_DAP_IDCODE 0x2BA01477u /* what an nRF52's debug port identifies as */
#define SIM_DAP_AHB_AP_IDR 0x24770011u

struct sim_dap;

/* A debug port onto chip (not owned). NULL on out of memory. */
struct sim_dap *sim_dap_new(struct sim_chip *chip);
void sim_dap_free(struct sim_dap *d);

/* TRST: the TAP goes to Test-Logic-Reset (IR = IDCODE). */
void sim_dap_trst(struct sim_dap *d);
/* One rising edge of TCK with these TMS and TDI levels. */
void sim_dap_clock(struct sim_dap *d, int tms, int tdi);
/* TDO as the TAP drives it while TCK is low (0 outside the Shift states). */
int sim_dap_tdo(const struct sim_dap *d);

/*
 * One DP or AP transaction at register level, as a DPACC/APACC Update-DR
 * performs it (for tests and for an SW-DP front end). a is the byte address
 * 0x0/0x4/0x8/0xC. For a read, *rdata receives the register's value now
 * (the JTAG layer presents it one scan later).
 */
void sim_dap_transact(struct sim_dap *d, bool ap, bool rnw, unsigned a, uint32_t wdata,
		      uint32_t *rdata);

#endif

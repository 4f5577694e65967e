/*
 * Memory map of the virtual board's chip, "imprint-vb1". The station never
 * includes this file: it learns the same numbers from the target profile
 * board/profiles/imprint-vb1.json. docs/VBOARD.md describes the map.
 * All registers are 32-bit little-endian, as on a Cortex-M part.
 */
#ifndef SIM_VB1_MAP_H
#define SIM_VB1_MAP_H

#define VB1_FLASH_BASE 0x08000000u
#define VB1_FLASH_SIZE (256u * 1024u)
#define VB1_FLASH_PAGE 2048u          /* erase granule; erased bytes read 0xFF */

#define VB1_SRAM_BASE 0x20000000u
#define VB1_SRAM_SIZE (64u * 1024u)

#define VB1_SYS_BASE 0x1FFF7000u      /* read-only system information */
#define VB1_UID_ADDR 0x1FFF7000u      /* 16 bytes, unique per chip */
#define VB1_LIFECYCLE_ADDR 0x1FFF7010u /* u32: 1 OPEN, 2 PERSONALISED, 3 LOCKED */
#define VB1_OTP_BASE 0x1FFF7800u      /* 1 KiB, reads 0x00 when blank; bits only 0 -> 1 */
#define VB1_OTP_SIZE 1024u

/* Flash controller: programs flash and OTP. */
#define VB1_FLASHC_BASE 0x40022000u
#define VB1_FLASHC_KEYR (VB1_FLASHC_BASE + 0x00) /* write KEY1 then KEY2 to unlock CR */
#define VB1_FLASHC_SR (VB1_FLASHC_BASE + 0x04)   /* status, write 1 to clear EOP/errors */
#define VB1_FLASHC_CR (VB1_FLASHC_BASE + 0x08)   /* control */
#define VB1_FLASHC_AR (VB1_FLASHC_BASE + 0x0C)   /* page address for PER */
#define VB1_FLASHC_KEY1 0x45670123u
#define VB1_FLASHC_KEY2 0xCDEF89ABu
#define VB1_FLASHC_SR_BSY (1u << 0)
#define VB1_FLASHC_SR_PGERR (1u << 2)  /* programmed a word that was not erased */
#define VB1_FLASHC_SR_WRPERR (1u << 4) /* write-protected (boot-lock fuse) */
#define VB1_FLASHC_SR_EOP (1u << 5)
#define VB1_FLASHC_CR_PG (1u << 0)     /* word writes to flash program it */
#define VB1_FLASHC_CR_PER (1u << 1)    /* page erase (address in AR) on STRT */
#define VB1_FLASHC_CR_MER (1u << 2)    /* mass erase on STRT */
#define VB1_FLASHC_CR_OTPPG (1u << 4)  /* word writes to OTP program it (OR) */
#define VB1_FLASHC_CR_STRT (1u << 6)
#define VB1_FLASHC_CR_LOCK (1u << 7)   /* reads 1 while locked; write 1 to relock */

/* Fuse controller: one-time fuses, effective after the next reset. */
#define VB1_FUSEC_BASE 0x40023000u
#define VB1_FUSEC_KEYR (VB1_FUSEC_BASE + 0x00)  /* write KEY to arm one CMD */
#define VB1_FUSEC_CMD (VB1_FUSEC_BASE + 0x04)   /* write a fuse mask to burn it */
#define VB1_FUSEC_SR (VB1_FUSEC_BASE + 0x08)    /* BSY, ERR, ARMED */
#define VB1_FUSEC_STATE (VB1_FUSEC_BASE + 0x0C) /* burned fuse mask (read-only) */
#define VB1_FUSEC_KEY 0xF05EB0C7u
#define VB1_FUSEC_SR_BSY (1u << 0)
#define VB1_FUSEC_SR_ERR (1u << 1)
#define VB1_FUSEC_SR_ARMED (1u << 2)
#define VB1_FUSE_DEBUG_LOCK (1u << 0)  /* after reset: SWD refuses all access */
#define VB1_FUSE_BOOT_LOCK (1u << 1)   /* after reset: flash and OTP write-protected */

/* RSP error the vboard returns for any access while debug-locked: "E51". */
#define VB1_RSP_ERR_LOCKED 0x51u

#endif

/*
 * Memory map and registers of the nRF52840 model, from Nordic's nRF52840
 * Product Specification (v1.7): FICR, UICR, NVMC, APPROTECT, CTRL-AP. The
 * station never includes this file: it learns the same numbers from
 * board/profiles/nordic-nrf52840.json. docs/VBOARD.md describes the model.
 */
#ifndef SIM_NRF52_MAP_H
#define SIM_NRF52_MAP_H

#define NRF_FLASH_BASE 0x00000000u
#define NRF_FLASH_SIZE (1024u * 1024u)
#define NRF_FLASH_PAGE 4096u           /* FICR CODEPAGESIZE; CODESIZE = 256 pages */
#define NRF_RAM_BASE 0x20000000u
#define NRF_RAM_SIZE (256u * 1024u)
#define NRF_CODE_RAM_BASE 0x00800000u  /* the same RAM seen on the code bus */

#define NRF_FICR_BASE 0x10000000u
#define NRF_FICR_CODEPAGESIZE (NRF_FICR_BASE + 0x010)
#define NRF_FICR_CODESIZE (NRF_FICR_BASE + 0x014)
#define NRF_FICR_DEVICEID0 (NRF_FICR_BASE + 0x060) /* DEVICEID[0..1]: the 64-bit unique ID */
#define NRF_FICR_DEVICEID1 (NRF_FICR_BASE + 0x064)
#define NRF_FICR_DEVICEADDRTYPE (NRF_FICR_BASE + 0x0A0)
#define NRF_FICR_DEVICEADDR0 (NRF_FICR_BASE + 0x0A4)
#define NRF_FICR_INFO_PART (NRF_FICR_BASE + 0x100)
#define NRF_FICR_INFO_VARIANT (NRF_FICR_BASE + 0x104)
#define NRF_FICR_INFO_PACKAGE (NRF_FICR_BASE + 0x108)
#define NRF_FICR_INFO_RAM (NRF_FICR_BASE + 0x10C)
#define NRF_FICR_INFO_FLASH (NRF_FICR_BASE + 0x110)

#define NRF_PART_52840 0x52840u
#define NRF_VARIANT_AAD0 0x41414430u   /* "AAD0": APPROTECT controlled by UICR only */
#define NRF_VARIANT_AAF0 0x41414630u   /* "AAF0" (build codes Fxx): hardened APPROTECT */

#define NRF_UICR_BASE 0x10001000u
#define NRF_UICR_SIZE 0x1000u
#define NRF_UICR_CUSTOMER0 (NRF_UICR_BASE + 0x080) /* CUSTOMER[0..31] */
#define NRF_UICR_PSELRESET0 (NRF_UICR_BASE + 0x200)
#define NRF_UICR_PSELRESET1 (NRF_UICR_BASE + 0x204)
#define NRF_UICR_APPROTECT (NRF_UICR_BASE + 0x208)
#define NRF_APPROTECT_PALL_ENABLED 0x00u
#define NRF_APPROTECT_PALL_HWDISABLED 0x5Au /* hardened revision only */
#define NRF_APPROTECT_PALL_ERASED 0xFFu

#define NRF_NVMC_BASE 0x4001E000u
#define NRF_NVMC_READY (NRF_NVMC_BASE + 0x400)
#define NRF_NVMC_READYNEXT (NRF_NVMC_BASE + 0x408)
#define NRF_NVMC_CONFIG (NRF_NVMC_BASE + 0x504)
#define NRF_NVMC_ERASEPAGE (NRF_NVMC_BASE + 0x508)
#define NRF_NVMC_ERASEALL (NRF_NVMC_BASE + 0x50C)
#define NRF_NVMC_ERASEUICR (NRF_NVMC_BASE + 0x514)
#define NRF_NVMC_CONFIG_REN 0u
#define NRF_NVMC_CONFIG_WEN 1u
#define NRF_NVMC_CONFIG_EEN 2u

/* APPROTECT peripheral of the hardened revision. */
#define NRF_APPROTECT_FORCEPROTECT 0x40000550u
#define NRF_APPROTECT_DISABLE 0x40000558u
#define NRF_APPROTECT_SWDISABLE 0x5Au

/* CTRL-AP: access port #1, registers by address. */
#define NRF_CTRLAP_APSEL 1u
#define NRF_CTRLAP_RESET 0x000u
#define NRF_CTRLAP_ERASEALL 0x004u
#define NRF_CTRLAP_ERASEALLSTATUS 0x008u   /* 1 busy, 0 ready */
#define NRF_CTRLAP_APPROTECTSTATUS 0x00Cu  /* bit0: 1 protection not enabled, 0 enabled */
#define NRF_CTRLAP_IDR 0x0FCu
#define NRF_CTRLAP_IDR_VALUE 0x02880000u

/* Latency model at scale 1.0 (the PS's NVMC timing, maxima). */
#define SIM_NRF_LAT_WRITE_US 41.0
#define SIM_NRF_LAT_ERASEPAGE_MS 85.0
#define SIM_NRF_LAT_ERASEALL_MS 169.0

#endif

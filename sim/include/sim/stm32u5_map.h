/*
 * The STM32U5 model's modelled times at latency 1.0 (sim/chip_stm32u5.c,
 * docs/VBOARD.md): values of the model, not taken from a datasheet table.
 * imprint-vboard --print-model prints them.
 */
#ifndef SIM_STM32U5_MAP_H
#define SIM_STM32U5_MAP_H

#define SIM_U5_LAT_QW_US 118.0          /* one quad-word (128 bits) */
#define SIM_U5_LAT_PAGE_ERASE_MS 1.5    /* one 8 KiB page */
#define SIM_U5_LAT_BANK_ERASE_MS 3.0    /* one bank (MER1 or MER2) */
#define SIM_U5_LAT_OPT_PROGRAM_MS 10.0  /* OPTSTRT */
#define SIM_U5_FLASH_PAGE 0x2000u

#endif

/* Private to board/: the open-probe handle shared by the wrappers. */
#ifndef BOARD_PROBE_PRIV_H
#define BOARD_PROBE_PRIV_H

#include <stdbool.h>

#include "board/probe.h"

struct board_probe {
	const struct board_probe_driver *drv;
	void *priv;
	bool expect_locked;  /* verify_lock: "target locked" is the good answer */
};

/* Used by board_probe_attach_sim (probe_sim.c). */
imp_err board_probe_sim_attach_priv(struct sim_chip *chip, void **priv);

#endif

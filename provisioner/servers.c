/*
 * The fixtures' debug servers for a run (provisioner/provision.h,
 * prov_fixtures_start): one OpenOCD per openocd:// fixture the run uses,
 * started before its first board, kept by the probe driver until the run closes.
 */
#include "board/probe.h"
#include "imprint/log.h"
#include "provisioner/provision.h"

void prov_fixtures_start(const struct fmt_config *cfg, size_t n)
{
	/* Only the fixtures this run uses: another fixture's probe may be in
	 * someone else's hands. */
	for (size_t i = 0; i < n && i < cfg->fixture_count; i++) {
		const struct fmt_fixture *fx = &cfg->fixtures[i];
		imp_err rc;

		if (fx->probe_kind != FMT_PROBE_OPENOCD || !fx->probe)
			continue;
		rc = board_probe_server_start(fx->probe);
		/* The board's own open says it again, with what to do. */
		if (rc != IMP_OK)
			IMP_DEBUG("%s: no debug server kept for the run (%s)", fx->name,
				  imp_err_name(rc));
	}
}

void prov_fixtures_wait(void)
{
	board_probe_servers_wait();
}

void prov_fixtures_stop(void)
{
	board_probe_servers_stop();
}

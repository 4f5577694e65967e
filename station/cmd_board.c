/*
 * imprint board info: what one board on the fixture says about itself,
 * through the debug probe (SWD) and through the agent (UART).
 */
#include <stdio.h>
#include <string.h>

#include "board/agent.h"
#include "board/link.h"
#include "board/probe.h"
#include "board/profile.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "board_plan.h"
#include "station.h"

struct info_opts {
	const char *probe;
	const char *uart;
	const char *profile;
	long baud;
};

static struct info_opts info_o = { .profile = "imprint-vb1" };

static const struct st_option info_opts_table[] = {
	{ "probe", 'p', ST_OPT_STRING, &info_o.probe, "URI", "debug probe: rsp://HOST:PORT, openocd://CONFIG or sim:" },
	{ "uart", 'u', ST_OPT_STRING, &info_o.uart, "PATH", "agent UART (tty) path" },
	{ "profile", 't', ST_OPT_STRING, &info_o.profile, "NAME",
	  "target profile (default imprint-vb1)" },
	{ "baud", 'b', ST_OPT_INT, &info_o.baud, "N", "UART baud rate (default: the profile's)" },
	ST_OPTIONS_END,
};

static void fuse_obj(json_t *o, uint32_t mask, const char *source)
{
	json_object_set_new(o, "fuses", json_integer(mask));
	json_object_set_new(o, "fuses_source", json_string(source));
	json_object_set_new(o, "debug_lock", json_boolean(mask & WIRE_FUSE_DEBUG_LOCK));
	json_object_set_new(o, "boot_lock", json_boolean(mask & WIRE_FUSE_BOOT_LOCK));
}

static void print_info(const json_t *o, void *arg)
{
	const char *uid_swd = json_string_value(json_object_get(o, "uid_swd"));
	const char *uid_agent = json_string_value(json_object_get(o, "uid_agent"));
	const char *swd = json_string_value(json_object_get(o, "swd"));
	json_t *match = json_object_get(o, "uid_match");
	json_t *v;

	(void)arg;
	printf("profile          %s\n", json_string_value(json_object_get(o, "profile")));
	if (swd && uid_swd)
		printf("uid (swd)        %s\n", uid_swd);
	else if (swd)
		printf("uid (swd)        unreadable: %s\n",
		       strcmp(swd, "locked") == 0 ? "target locked (debug port refuses access)" : swd);
	if (json_object_get(o, "uart"))
		printf("uid (agent)      %s\n", uid_agent ? uid_agent : "unavailable");
	if (json_is_boolean(match))
		printf("uid match        %s\n", json_is_true(match) ? "yes" : "NO: different boards?");
	if ((v = json_object_get(o, "lifecycle")))
		printf("lifecycle        %s\n", json_string_value(v));
	if ((v = json_object_get(o, "fuses")))
		printf("fuses            0x%02x (debug-lock %s, boot-lock %s; read via %s)\n",
		       (unsigned)json_integer_value(v),
		       json_is_true(json_object_get(o, "debug_lock")) ? "burned" : "open",
		       json_is_true(json_object_get(o, "boot_lock")) ? "burned" : "open",
		       json_string_value(json_object_get(o, "fuses_source")));
	if ((v = json_object_get(o, "agent_version")))
		printf("agent version    %u (0x%04x), protocol %u\n", (unsigned)json_integer_value(v),
		       (unsigned)json_integer_value(v),
		       (unsigned)json_integer_value(json_object_get(o, "protocol_version")));
	if ((v = json_object_get(o, "slots")))
		printf("key slots used   0x%02x\n", (unsigned)json_integer_value(v));
}

static int board_info(struct info_opts *o, struct station_ctx *ctx)
{
	struct board_profile *prof = NULL;
	struct board_probe *probe = NULL;
	struct board_link *link = NULL;
	struct board_agent_info info;
	uint8_t uid[64];
	char hex[129];
	size_t uid_len = 0;
	bool have_swd_uid = false, have_agent = false, have_fuses = false;
	json_t *out = json_object();
	imp_err rc = IMP_OK, first_err = IMP_OK;
	uint32_t fuses = 0;

	if (!out)
		return st_fail(IMP_ERR_NOMEM, NULL);
	if (!o->probe && !o->uart) {
		IMP_ERROR("board info: give --probe URI, --uart PATH, or both");
		json_decref(out);
		return IMP_ERR_USAGE;
	}
	rc = board_profile_load(o->profile, ctx->data_dir, &prof);
	if (rc != IMP_OK) {
		json_decref(out);
		return st_fail(rc, "check --profile (a name on the profile search path, or a file)");
	}
	json_object_set_new(out, "profile", json_string(prof->name));

	if (o->probe) {
		json_object_set_new(out, "probe", json_string(o->probe));
		rc = board_probe_open(o->probe, &probe);
		if (rc != IMP_OK) {
			first_err = rc;
			json_object_set_new(out, "swd", json_string("unreachable"));
		} else {
			board_probe_expect_locked(probe, true);
			rc = board_profile_read_uid(prof, probe, uid, sizeof(uid), &uid_len);
			board_probe_expect_locked(probe, false);
			if (rc == IMP_OK) {
				imp_hex_encode(uid, uid_len, hex);
				json_object_set_new(out, "uid_swd", json_string(hex));
				json_object_set_new(out, "swd", json_string("open"));
				have_swd_uid = true;
			} else if (rc == IMP_ERR_TARGET_LOCKED) {
				json_object_set_new(out, "swd", json_string("locked"));
			} else {
				first_err = rc;
				json_object_set_new(out, "swd", json_string("error"));
			}
			if (have_swd_uid && prof->fuses_readable &&
			    board_profile_read_fuses(prof, probe, &fuses) == IMP_OK) {
				fuse_obj(out, fuses, "swd");
				have_fuses = true;
			}
		}
	}

	if (o->uart) {
		json_object_set_new(out, "uart", json_string(o->uart));
		rc = board_link_open("serial", o->uart,
				     o->baud > 0 ? (unsigned)o->baud : prof->agent_baud, &link);
		if (rc == IMP_OK)
			rc = board_agent_identify(link, &info);
		if (rc == IMP_OK) {
			have_agent = true;
			imp_hex_encode(info.uid, WIRE_UID_LEN, hex);
			json_object_set_new(out, "uid_agent", json_string(hex));
			json_object_set_new(out, "lifecycle",
					    json_string(board_lifecycle_name(info.lifecycle)));
			json_object_set_new(out, "agent_version", json_integer(info.agent_version));
			json_object_set_new(out, "protocol_version",
					    json_integer(info.proto_version));
			json_object_set_new(out, "slots", json_integer(info.slots));
			if (!have_fuses)
				fuse_obj(out, info.fuses, "agent");
		} else if (first_err == IMP_OK) {
			first_err = rc;
		}
	}

	if (have_swd_uid && have_agent) {
		/* A chip with a shorter UID (nRF52: 8 bytes) has the agent's
		 * 16 bytes end in zeros. */
		bool match = uid_len <= WIRE_UID_LEN && memcmp(uid, info.uid, uid_len) == 0;

		for (size_t i = uid_len; match && i < WIRE_UID_LEN; i++)
			match = info.uid[i] == 0;

		json_object_set_new(out, "uid_match", json_boolean(match));
		if (!match) {
			IMP_ERROR("the UID read through SWD differs from the agent's: probe and UART "
				  "are on different boards, or the profile's UID address is wrong");
			if (first_err == IMP_OK)
				first_err = IMP_ERR_VERIFY;
		}
	}
	st_emit(ctx, out, print_info, NULL);
	board_link_close(link);
	board_probe_close(probe);
	board_profile_free(prof);
	if (first_err != IMP_OK)
		return st_fail(first_err, "check the fixture: probe URI, UART path, and that the "
			       "board is powered");
	return 0;
}

static int board_info_run(struct station_ctx *ctx, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return board_info(&info_o, ctx);
}

static const struct st_command board_info_cmd = {
	.name = "info",
	.fn = board_info_run,
	.need = NEED_NOTHING,
	.summary = "a board's UID (through SWD and UART), lifecycle, fuses, agent version",
	.usage = "imprint board info [--probe URI] [--uart PATH] [--profile NAME] [--baud N]",
	.opts = info_opts_table,
	.help = "Reads the board's unique ID through the debug probe (at the target "
		"profile's UID address) and through the provisioning agent on the UART, and "
		"says whether they match; shows the lifecycle, fuses and agent version. "
		"Give --probe, --uart or both. Probe URIs: rsp://HOST:PORT (a GDB server: "
		"OpenOCD, pyOCD, J-Link, QEMU, imprint-vboard), openocd://CONFIG (the "
		"station starts OpenOCD) or sim:. A locked board answers \"unreadable: "
		"target locked\" through the probe and exit 0. Exits 12 when the probe and "
		"the UART reach two different boards.",
	.exits = (const imp_err[]){ IMP_ERR_NOT_FOUND, IMP_ERR_VERIFY, IMP_ERR_PROBE,
				    IMP_ERR_TARGET_LOCKED, IMP_ERR_LINK, IMP_ERR_PROTOCOL,
				    IMP_ERR_TIMEOUT, IMP_ERR_BOARD, IMP_OK },
	.example = "imprint board info --probe rsp://127.0.0.1:3333 --uart /dev/ttyUSB0",
};

static struct {
	const char *profile;
	const char *board;
	const char *uart;
	bool permanent;
} plan_o;

static const struct st_option plan_opts_table[] = {
	{ "board", 'B', ST_OPT_STRING, &plan_o.board, "URI",
	  "plan against this board: its probe is only read, nothing is written" },
	{ "permanent", 0, ST_OPT_FLAG, &plan_o.permanent, NULL,
	  "plan as if a supervisor confirmed the profile's permanent lock" },
	{ "profile", 't', ST_OPT_STRING, &plan_o.profile, "NAME", "target profile (required)" },
	{ "uart", 'u', ST_OPT_STRING, &plan_o.uart, "PATH", "with --board: the agent UART, asked IDENTIFY" },
	ST_OPTIONS_END,
};

static int board_plan_run(struct station_ctx *ctx, int argc, char **argv)
{
	struct board_profile *prof = NULL;
	json_t *out = NULL;
	imp_err rc;

	(void)argc;
	(void)argv;
	if (!plan_o.profile) {
		IMP_ERROR("board plan: give --profile NAME");
		return IMP_ERR_USAGE;
	}
	/* Loading applies the fatal-combination rules: a refused profile stops here. */
	rc = board_profile_load(plan_o.profile, ctx->data_dir, &prof);
	if (rc != IMP_OK)
		return st_fail(rc, "fix the profile: the message names the field or the rule");
	rc = st_board_plan(prof, plan_o.board, plan_o.uart, 0, plan_o.permanent, -1, &out);
	board_profile_free(prof);
	if (rc != IMP_OK)
		return st_fail(rc, plan_o.board ? "check --board (a probe URI) and that the board is "
			       "powered" : "check the options");
	st_emit(ctx, out, st_board_plan_print, NULL);
	return 0;
}

static const struct st_command board_plan_cmd = {
	.name = "plan",
	.fn = board_plan_run,
	.need = NEED_NOTHING,
	.summary = "every irreversible write a profile would make, in order, with its checks",
	.usage = "imprint board plan --profile NAME [--board URI [--uart PATH]] [--permanent]",
	.opts = plan_opts_table,
	.help = "Loads the profile (refusing it when it breaks a fatal-combination rule: "
		"lock-before-firmware, permanent-without-opt-in, missing-companion, lock-unverified) "
		"and prints the irreversible writes of its fuse_burn sequence in the order the "
		"station makes them at LOCK, each with the check before it and the gates the "
		"station passes before LOCK. With --board the plan runs against that board: reads "
		"only (conditions and read-modify-writes resolved from the board as it is), no "
		"write, reset or halt is sent.",
	.exits = (const imp_err[]){ IMP_ERR_CONFIG, IMP_ERR_NOT_FOUND, IMP_ERR_PROBE,
				    IMP_ERR_TIMEOUT, IMP_OK },
	.example = "imprint board plan --profile st-stm32u5 --board openocd://vboard-stm32u5.cfg?set.VBOARD_PORT=45123",
};

static const struct st_command *const board_subs[] = { &board_info_cmd, &board_plan_cmd, NULL };

const struct st_command st_cmd_board = {
	.name = "board",
	.need = NEED_NOTHING,
	.summary = "talk to one board: info, plan",
	.usage = "imprint board info [--probe URI] [--uart PATH] [--profile NAME] [--baud N]\n"
		 "       imprint board plan --profile NAME [--board URI [--uart PATH]] [--permanent]",
	.subs = board_subs,
	.help = "Commands that reach one board directly, outside a provisioning run; "
		"nothing is journaled.",
	.example = "imprint board info --uart /dev/ttyUSB0",
};

/*
 * Fuse plans: `imprint board plan` and `imprint provision --dry-run`.
 * Every irreversible write a profile's fuse_burn would make, in order,
 * with the checks before it; against a board (reads only, no write is
 * sent: board_profile_plan) the conditions and values are those of the
 * board as it is now.
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

/* The provisioner's gates before LOCK (provisioner/provision.c step_lock). */
static const char *const lock_gates[] = {
	"FIRMWARE: the image's digest verified on the board (the server's CRC-32, or SHA-256 "
	"of a read-back)",
	"CHALLENGE: the board signed a fresh nonce, verified against its certificate",
	"the journal takes the record (outbox probe)",
	"the agent's key slots locked",
	NULL,
};

static void hex32(char *out, size_t cap, bool known, uint32_t v, const char *var)
{
	if (known)
		snprintf(out, cap, "0x%08x", v);
	else
		snprintf(out, cap, "$%s", var && *var ? var : "?");
}

static const char *runs_name(int runs)
{
	return runs == 1 ? "yes" : runs == 0 ? "no" : "unknown";
}

static json_t *step_json(const struct board_plan_entry *e)
{
	const struct board_profile_step *st = e->st;
	char addr[32], value[32], at[96], cond[64] = "";
	json_t *o;

	hex32(addr, sizeof(addr), e->addr_known, e->addr, st->addr.var);
	hex32(value, sizeof(value), e->value_known, e->value, st->value.var);
	snprintf(at, sizeof(at), "%s[%zu]", e->seq, e->index);
	if (st->if_var[0])
		snprintf(cond, sizeof(cond), "if $%s", st->if_var);
	else if (st->unless_var[0])
		snprintf(cond, sizeof(cond), "unless $%s", st->unless_var);
	o = json_pack("{s:s, s:s, s:s}", "step", at, "op", board_profile_op_name(st->op), "addr",
		      addr);
	if (!o)
		return NULL;
	if (st->ap >= 0)
		json_object_set_new(o, "ap", json_integer(st->ap));
	if (st->op == BOARD_OP_WRITE32 || st->op == BOARD_OP_MODIFY32 ||
	    st->op == BOARD_OP_CHECK32 || st->op == BOARD_OP_POLL32)
		json_object_set_new(o, "value", json_string(value));
	if (st->op != BOARD_OP_WRITE32 && st->op != BOARD_OP_SELECT32 && st->op != BOARD_OP_READ32) {
		char m[16];

		snprintf(m, sizeof(m), "0x%08x", st->mask.num);
		json_object_set_new(o, "mask", json_string(m));
	}
	if (*cond)
		json_object_set_new(o, "condition", json_string(cond));
	json_object_set_new(o, "runs", json_string(runs_name(e->runs)));
	if (e->read_known) {
		char r[16];

		snprintf(r, sizeof(r), "0x%08x", e->read);
		json_object_set_new(o, "reads_now", json_string(r));
	}
	if (e->check_ok >= 0)
		json_object_set_new(o, "holds_now", json_boolean(e->check_ok));
	if (st->irreversible)
		json_object_set_new(o, "what", json_string(st->irreversible));
	if (st->error)
		json_object_set_new(o, "else", json_string(st->error));
	if (st->permanent)
		json_object_set_new(o, "permanent", json_true());
	if (st->resets)
		json_object_set_new(o, "resets", json_true());
	return o;
}

static bool is_check(const struct board_profile_step *st)
{
	return st->op == BOARD_OP_CHECK32 || st->op == BOARD_OP_POLL32;
}

static json_t *verify_json(const struct board_profile *p)
{
	char s[512];

	if (p->lock_uid_readable)
		snprintf(s, sizeof(s), "%sthe chip's lock_status says locked, a read of %u bytes at "
			 "0x%08x is refused, the UID at 0x%08x still reads and matches the agent's%s",
			 p->lock_reset ? "reset; " : "", p->lock_refused_len, p->lock_refused_addr,
			 p->uid_addr, p->lock_lifecycle ? ", the agent reports locked" : "");
	else
		snprintf(s, sizeof(s), "%sthe UID read at 0x%08x fails%s%s",
			 p->lock_reset ? "reset; " : "", p->uid_addr,
			 board_profile_seq(p, "lock_status") ? " and lock_status confirms the lock" :
			 " with 'target locked' from the server",
			 p->lock_lifecycle ? ", the agent reports locked" : "");
	return json_string(s);
}

imp_err st_board_plan(const struct board_profile *p, const char *probe_uri, const char *uart,
		      unsigned baud, bool permanent, int firmware, json_t **out)
{
	struct board_profile_vars vars = { 0 };
	struct board_plan plan = { 0 };
	struct board_probe *probe = NULL;
	struct board_link *link = NULL;
	json_t *o = json_object(), *writes = json_array(), *gates = json_array();
	uint32_t want = (WIRE_FUSE_DEBUG_LOCK | WIRE_FUSE_BOOT_LOCK) & p->fuse_mask;
	uint32_t fuses = 0;
	const struct board_plan_entry *last_check = NULL;
	bool nothing_to_burn = false;
	size_t n = 0;
	imp_err rc = IMP_OK;

	*out = NULL;
	if (!o || !writes || !gates) {
		rc = IMP_ERR_NOMEM;
		goto cleanup;
	}
	json_object_set_new(o, "profile", json_string(p->name));
	json_object_set_new(o, "sequence", json_string("fuse_burn"));
	json_object_set_new(o, "stage", json_string("LOCK"));
	json_object_set_new(o, "board", probe_uri ? json_string(probe_uri) : json_null());
	json_object_set_new(o, "permanent", json_boolean(permanent));
	for (size_t i = 0; lock_gates[i]; i++)
		json_array_append_new(gates, json_string(i == 0 && firmware == 0 ?
			"FIRMWARE: NONE: this station has no firmware image, so nothing is "
			"verified on the board before LOCK" : lock_gates[i]));
	json_object_set_new(o, "gates", gates);
	gates = NULL;
	if (permanent && !p->permanent_lock_allowed) {
		IMP_ERROR("profile %s does not allow a permanent lock", p->name);
		rc = IMP_ERR_USAGE;
		goto cleanup;
	}
	if (probe_uri) {
		uint8_t uid[64];
		char hex[129];
		size_t uid_len = 0;
		int locked = -1;

		rc = board_probe_open(probe_uri, &probe);
		if (rc != IMP_OK)
			goto cleanup;
		board_probe_expect_locked(probe, true);
		if (board_profile_read_uid(p, probe, uid, sizeof(uid), &uid_len) == IMP_OK) {
			imp_hex_encode(uid, uid_len, hex);
			json_object_set_new(o, "uid_swd", json_string(hex));
		}
		if (board_profile_lock_status(p, probe, &locked) == IMP_OK)
			json_object_set_new(o, "locked_now", json_boolean(locked == 1));
		if (p->fuses_readable && board_profile_read_fuses(p, probe, &fuses) == IMP_OK) {
			json_object_set_new(o, "fuses_now", json_integer(fuses));
			nothing_to_burn = (fuses & want) == want;
		}
		board_probe_expect_locked(probe, false);
		if (uart) {
			struct board_agent_info info;

			if (board_link_open("serial", uart, baud ? baud : p->agent_baud, &link) == IMP_OK &&
			    board_agent_identify(link, &info) == IMP_OK) {
				imp_hex_encode(info.uid, WIRE_UID_LEN, hex);
				json_object_set_new(o, "uid_agent", json_string(hex));
				json_object_set_new(o, "lifecycle",
						    json_string(board_lifecycle_name(info.lifecycle)));
			}
		}
		want &= ~fuses;
	}
	json_object_set_new(o, "nothing_to_burn", json_boolean(nothing_to_burn));
	board_profile_var_set(&vars, "mask", want);
	board_profile_var_set(&vars, "permanent", permanent ? 1 : 0);
	if (want && board_profile_seq(p, "fuse_burn")) {
		rc = board_profile_plan(p, "fuse_burn", probe, &vars, &plan);
		if (rc != IMP_OK)
			goto cleanup;
	}
	for (size_t i = 0; i < plan.n; i++) {
		const struct board_plan_entry *e = &plan.e[i];
		json_t *w;

		if (is_check(e->st) && e->runs != 0)
			last_check = e;
		if (!e->st->irreversible)
			continue;
		w = step_json(e);
		if (!w) {
			rc = IMP_ERR_NOMEM;
			goto cleanup;
		}
		if (e->runs != 0)
			json_object_set_new(w, "n", json_integer((json_int_t)++n));
		if (last_check)
			json_object_set_new(w, "after", step_json(last_check));
		json_array_append_new(writes, w);
	}
	json_object_set_new(o, "irreversible_writes", json_integer((json_int_t)n));
	json_object_set_new(o, "writes", writes);
	writes = NULL;
	json_object_set_new(o, "verify", verify_json(p));
	*out = o;
	o = NULL;
cleanup:
	board_plan_release(&plan);
	board_link_close(link);
	board_probe_close(probe);
	json_decref(writes);
	json_decref(gates);
	json_decref(o);
	return rc;
}

static void print_step(const json_t *s, const char *indent)
{
	const char *op = json_string_value(json_object_get(s, "op"));
	const char *cond = json_string_value(json_object_get(s, "condition"));
	json_t *ap = json_object_get(s, "ap");

	printf("%s%s %s ", indent, json_string_value(json_object_get(s, "step")), op);
	if (ap)
		printf("AP #%d reg ", (int)json_integer_value(ap));
	printf("%s", json_string_value(json_object_get(s, "addr")));
	if (strcmp(op, "write32") == 0)
		printf(" <- %s", json_string_value(json_object_get(s, "value")));
	else if (strcmp(op, "modify32") == 0)
		printf(" <- %s (mask %s)", json_string_value(json_object_get(s, "value")),
		       json_string_value(json_object_get(s, "mask")));
	else if (json_object_get(s, "value"))
		printf(" & %s == %s", json_string_value(json_object_get(s, "mask")),
		       json_string_value(json_object_get(s, "value")));
	if (cond)
		printf(" (%s)", cond);
	if (json_is_true(json_object_get(s, "resets")))
		printf(" [resets the chip]");
	if (json_is_true(json_object_get(s, "permanent")))
		printf(" [PERMANENT]");
	printf("\n");
}

void st_board_plan_print(const json_t *o, void *arg)
{
	const json_t *w, *v;
	const char *board = json_string_value(json_object_get(o, "board"));
	size_t i;

	(void)arg;
	printf("profile %s: %d irreversible write%s in fuse_burn, run at LOCK%s\n",
	       json_string_value(json_object_get(o, "profile")),
	       (int)json_integer_value(json_object_get(o, "irreversible_writes")),
	       json_integer_value(json_object_get(o, "irreversible_writes")) == 1 ? "" : "s",
	       json_is_true(json_object_get(o, "permanent")) ? " (permanent lock confirmed)" : "");
	if (board) {
		printf("board %s (read only: nothing was written)\n", board);
		if ((v = json_object_get(o, "uid_swd")))
			printf("  uid (swd)    %s\n", json_string_value(v));
		if ((v = json_object_get(o, "uid_agent")))
			printf("  uid (agent)  %s, lifecycle %s\n", json_string_value(v),
			       json_string_value(json_object_get(o, "lifecycle")));
		if ((v = json_object_get(o, "locked_now")))
			printf("  locked now   %s\n", json_is_true(v) ? "yes" : "no");
		if (json_is_true(json_object_get(o, "nothing_to_burn")))
			printf("  nothing to burn: the fuses are burned already\n");
	}
	printf("before LOCK:\n");
	json_array_foreach(json_object_get(o, "gates"), i, w)
		printf("  - %s\n", json_string_value(w));
	json_array_foreach(json_object_get(o, "writes"), i, w) {
		json_t *n = json_object_get(w, "n"), *after = json_object_get(w, "after");

		if (n)
			printf("%2d. ", (int)json_integer_value(n));
		else
			printf("--  not run: ");
		print_step(w, "");
		printf("    %s\n", json_string_value(json_object_get(w, "what")));
		if (board && (v = json_object_get(w, "runs")))
			printf("    runs now: %s\n", json_string_value(v));
		if (after) {
			print_step(after, "    after check ");
			if ((v = json_object_get(after, "else")))
				printf("      else: %s\n", json_string_value(v));
			if ((v = json_object_get(after, "reads_now")))
				printf("      reads %s now%s\n", json_string_value(v),
				       json_is_true(json_object_get(after, "holds_now")) ? ": holds" :
				       json_is_false(json_object_get(after, "holds_now")) ?
				       ": does NOT hold" : " (before the writes the plan does not send)");
		}
	}
	printf("then the lock is verified from outside: %s\n",
	       json_string_value(json_object_get(o, "verify")));
}

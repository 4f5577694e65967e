/*
 * Fuse plans (board/profile.h): a sequence walked without writing. Reads
 * go to the board when there is one (a select32 then resolves the steps
 * it conditions, a modify32 shows the word it would write); writes, resets
 * and halts are only recorded. A check after a write the plan did not send
 * shows what the board reads now, never whether it would hold.
 */
#include <stdlib.h>
#include <string.h>

#include "board/profile.h"
#include "imprint/log.h"
#include "imprint/util.h"

static bool var_known(const struct board_profile_vars *vars, const char *name, uint32_t *v)
{
	return vars && board_profile_var_get(vars, name, v) == 0;
}

static bool value_of(const struct board_profile_value *pv, const struct board_profile_vars *vars,
		     uint32_t *out)
{
	if (!pv->var[0]) {
		*out = pv->num;
		return true;
	}
	return var_known(vars, pv->var, out);
}

static imp_err push(struct board_plan *plan, const struct board_plan_entry *e)
{
	if (plan->n == plan->cap) {
		size_t cap = plan->cap ? plan->cap * 2 : 32;
		struct board_plan_entry *ne = realloc(plan->e, cap * sizeof(*ne));

		if (!ne)
			return IMP_ERR_NOMEM;
		plan->e = ne;
		plan->cap = cap;
	}
	plan->e[plan->n++] = *e;
	return IMP_OK;
}

void board_plan_release(struct board_plan *plan)
{
	free(plan->e);
	memset(plan, 0, sizeof(*plan));
}

/* A word of the board as it is now (the plan's own writes are never sent). */
static bool plan_read(struct board_probe *probe, int ap, uint32_t addr, uint32_t *v)
{
	if (!probe)
		return false;
	if (ap < 0)
		return board_probe_read_u32(probe, addr, v) == IMP_OK;
	return board_probe_ap_read(probe, (unsigned)ap, addr, v) == IMP_OK;
}

/* 1 runs, 0 skipped, -1 unknown. */
static int condition(const struct board_profile_step *st, const struct board_profile_vars *vars)
{
	uint32_t v = 0;
	int runs = 1;

	if (st->if_var[0])
		runs = !var_known(vars, st->if_var, &v) ? -1 : v != 0;
	if (runs != 0 && st->unless_var[0]) {
		if (!var_known(vars, st->unless_var, &v))
			runs = -1;
		else if (v != 0)
			runs = 0;
	}
	return runs;
}

imp_err board_profile_plan(const struct board_profile *p, const char *name,
			   struct board_probe *probe, struct board_profile_vars *vars,
			   struct board_plan *plan)
{
	const struct board_profile_seq *s = board_profile_seq(p, name);
	bool wrote = false;
	imp_err rc = IMP_OK;

	if (!s)
		return IMP_ERR_UNSUPPORTED;
	if (probe)
		board_probe_expect_locked(probe, true);
	for (size_t i = 0; i < s->n_steps && rc == IMP_OK; i++) {
		const struct board_profile_step *st = &s->steps[i];
		struct board_plan_entry e = { .seq = s->name, .index = i, .st = st, .check_ok = -1 };
		uint32_t mask = 0xFFFFFFFFu, w = 0;
		bool mask_known = value_of(&st->mask, vars, &mask);

		e.runs = condition(st, vars);
		e.addr_known = value_of(&st->addr, vars, &e.addr);
		e.value_known = value_of(&st->value, vars, &e.value);
		if (e.runs == 0) {
			rc = push(plan, &e);
			continue;
		}
		switch (st->op) {
		case BOARD_OP_WRITE32:
			wrote = true;
			break;
		case BOARD_OP_MODIFY32:
			if (e.addr_known && plan_read(probe, st->ap, e.addr, &w)) {
				e.read_known = true;
				e.read = w;
				if (e.value_known && mask_known)
					e.value = (w & ~mask) | (e.value & mask);
				else
					e.value_known = false;
			} else {
				e.value_known = false;
			}
			wrote = true;
			break;
		case BOARD_OP_RESET:
		case BOARD_OP_HALT:
			wrote = true;
			break;
		case BOARD_OP_READ32:
		case BOARD_OP_SELECT32:
		case BOARD_OP_CHECK32:
		case BOARD_OP_POLL32:
			if (e.addr_known && e.runs == 1 && plan_read(probe, st->ap, e.addr, &w)) {
				e.read_known = true;
				e.read = w;
			}
			if (!e.read_known)
				break;
			if (st->op == BOARD_OP_READ32 && vars) {
				rc = board_profile_var_set(vars, st->var, w);
			} else if (st->op == BOARD_OP_SELECT32 && vars) {
				size_t k;

				for (k = 0; k < st->n_cases; k++)
					if (st->cases[k].value == (w & mask))
						break;
				e.check_ok = k < st->n_cases || st->has_default;
				if (e.check_ok)
					rc = board_profile_var_set(vars, st->var,
								   k < st->n_cases ?
								   st->cases[k].result : st->dflt);
			} else if ((st->op == BOARD_OP_CHECK32 || st->op == BOARD_OP_POLL32) &&
				   e.value_known && mask_known && !wrote) {
				/* After a write the plan did not send, what the
				 * board reads now says nothing about the run. */
				e.check_ok = (w & mask) == e.value;
			}
			break;
		default:
			break;
		}
		if (rc == IMP_OK)
			rc = push(plan, &e);
	}
	if (probe)
		board_probe_expect_locked(probe, false);
	return rc;
}

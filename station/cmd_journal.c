/*
 * imprint journal checkpoint [--interval N]: sign the journal's head now
 * with the record-signing key (docs/JOURNAL.md "Checkpoints"), and
 * optionally store a new interval between automatic checkpoints.
 */
#include <stdio.h>
#include <string.h>

#include "imprint/log.h"
#include "run.h"

/* -1: the option was not given */
static long cp_interval = -1, serials_after = -1;

static const struct st_option checkpoint_opts[] = {
	{ "interval", 'i', ST_OPT_INT, &cp_interval, "N",
	  "store N (1..1000000) as the events between automatic checkpoints" },
	{ "serials-after", 0, ST_OPT_INT, &serials_after, "N",
	  "take serial counters up to N as issued: the next serial comes after N (with the "
	  "anchor file lost and no reservation in the hsm)" },
	ST_OPTIONS_END,
};

static void print_checkpoint(const json_t *o, void *arg)
{
	(void)arg;
	printf("journal checkpoint: event %lld signed (%lld events between automatic "
	       "checkpoints)\n",
	       (long long)json_integer_value(json_object_get(o, "seq")),
	       (long long)json_integer_value(json_object_get(o, "interval")));
}

static imp_err checkpoint_check(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	if (cp_interval != -1 && (cp_interval < 1 || cp_interval > 1000000)) {
		IMP_ERROR("--interval: expected 1..1000000 events, got %ld", cp_interval);
		return IMP_ERR_USAGE;
	}
	if (serials_after >= 0)
		st_journal_serials_after((uint64_t)serials_after);
	return IMP_OK;
}

static int journal_checkpoint(struct station_ctx *ctx, int argc, char **argv)
{
	struct st_run *r = ctx->run;
	struct jnl_info info;
	imp_err rc = IMP_OK;

	(void)argc;
	(void)argv;
	if (cp_interval != -1)
		rc = jnl_set_checkpoint_interval(r->journal, (uint32_t)cp_interval);
	if (rc == IMP_OK) {
		rc = jnl_checkpoint(r->journal);
		if (rc != IMP_OK)
			IMP_ERROR("%s", jnl_last_error());
	}
	if (rc == IMP_OK) {
		st_anchor_update(r);
		rc = jnl_info(r->journal, &info);
	}
	if (rc == IMP_OK)
		st_emit(ctx, json_pack("{s:s, s:I, s:I}", "event", "checkpoint", "seq",
				       (json_int_t)info.last_checkpoint_seq, "interval",
				       (json_int_t)info.checkpoint_interval),
			print_checkpoint, NULL);
	return rc == IMP_OK ? 0 : st_fail(rc, "check the hsm and the journal");
}

static const struct st_command journal_checkpoint_cmd = {
	.name = "checkpoint",
	.fn = journal_checkpoint,
	.need = NEED_HSM,
	.summary = "sign the journal's head now with the record-signing key",
	.usage = "imprint journal checkpoint [--interval N] [--serials-after N]",
	.opts = checkpoint_opts,
	.check = checkpoint_check,
	.help = "Signs the journal's head (its newest event's hash, sequence and serial "
		"counter) with the record-signing key in the hsm, and stores it in the "
		"hsm's anchor. Every run ends with a checkpoint; this takes one on demand, "
		"as the audit and 'status --verify' require one over the head. --interval N "
		"also stores the number of events between automatic checkpoints "
		"(docs/JOURNAL.md). --serials-after N moves the serial counter on to N "
		"(the serials up to N are never issued; refused below the journal's counter "
		"or past the quota): with the journal's anchor file (journal.sqlite-anchor) "
		"lost for good and no reservation of serials in the hsm, a writable run is "
		"refused until this names a counter N at least as high as any board of this "
		"station may carry.",
	.exits = (const imp_err[]){ IMP_ERR_JOURNAL, IMP_ERR_QUOTA, IMP_OK },
	.example = "imprint journal checkpoint --interval 500",
};

static const struct st_command *const journal_subs[] = {
	&journal_checkpoint_cmd,
	NULL,
};

const struct st_command st_cmd_journal = {
	.name = "journal",
	.need = NEED_DATA_DIR,
	.summary = "sign the journal's head now: checkpoint [--interval N] [--serials-after N]",
	.usage = "imprint journal checkpoint [--interval N] [--serials-after N]",
	.subs = journal_subs,
	.help = "The journal (DATA/journal.sqlite, or the configuration's journal) is read "
		"by status, boards, records, report and audit; this command signs its head "
		"on demand.",
	.example = "imprint journal checkpoint",
};

/*
 * imprint journal checkpoint [--interval N]: sign the journal's head now
 * with the record-signing key (docs/JOURNAL.md "Checkpoints"), and
 * optionally store a new interval between automatic checkpoints.
 */
#include <stdio.h>
#include <string.h>

#include "imprint/log.h"
#include "line.h"

static void print_checkpoint(const json_t *o, void *arg)
{
	(void)arg;
	printf("journal checkpoint: event %lld signed (%lld events between automatic "
	       "checkpoints)\n",
	       (long long)json_integer_value(json_object_get(o, "seq")),
	       (long long)json_integer_value(json_object_get(o, "interval")));
}

int cmd_journal(int argc, char **argv, struct station_ctx *ctx)
{
	bool help = false;
	long interval = 0;
	const struct st_option opts[] = {
		{ "interval", 'i', ST_OPT_INT, &interval, "N",
		  "store N (1..1000000) as the events between automatic checkpoints" },
		ST_OPTIONS_END,
	};
	static const char usage[] = "imprint journal checkpoint [--interval N]";
	struct st_line l;
	struct jnl_info info;
	int first;
	imp_err rc;

	memset(&l, 0, sizeof(l));
	if (argc >= 2 && strcmp(argv[1], "checkpoint") == 0) {
		argc--;
		argv++;
	} else if (argc >= 2 && argv[1][0] != '-') {
		IMP_ERROR("journal: unknown action '%s'; usage: %s", argv[1], usage);
		return IMP_ERR_USAGE;
	}
	rc = st_parse_options(opts, usage, argc, argv, &first, &help);
	if (rc != IMP_OK || help)
		return (int)rc;
	if (first != argc) {
		IMP_ERROR("journal checkpoint takes no arguments; usage: %s", usage);
		return IMP_ERR_USAGE;
	}
	if (interval < 0 || interval > 1000000) {
		IMP_ERROR("--interval: expected 1..1000000 events, got %ld", interval);
		return IMP_ERR_USAGE;
	}
	rc = st_line_open(ctx, &l, ST_LINE_HSM);
	if (rc == IMP_OK && interval > 0)
		rc = jnl_set_checkpoint_interval(l.journal, (uint32_t)interval);
	if (rc == IMP_OK) {
		rc = jnl_checkpoint(l.journal);
		if (rc != IMP_OK)
			IMP_ERROR("%s", jnl_last_error());
	}
	if (rc == IMP_OK)
		rc = jnl_info(l.journal, &info);
	if (rc == IMP_OK)
		st_emit(ctx, json_pack("{s:s, s:I, s:I}", "event", "checkpoint", "seq",
				       (json_int_t)info.last_checkpoint_seq, "interval",
				       (json_int_t)info.checkpoint_interval),
			print_checkpoint, NULL);
	st_line_close(&l);
	return rc == IMP_OK ? 0 : st_fail(rc, "check the hsm and the journal");
}

/*
 * imprint line: the whole line on one PostgreSQL (docs/LINE.md).
 *   line status    throughput per station, yield, failures by step, quota left
 *   line sync      feed this station's records and journal head to the line now
 *   line release   give back this station's unused leased serials (end of shift)
 * The line audit is `imprint audit --line URL`.
 */
#include <stdio.h>
#include <string.h>

#include "imprint/log.h"
#include "imprint/util.h"
#include "run.h"

static void print_status(const json_t *o, void *arg)
{
	const json_t *st;
	size_t i;

	(void)arg;
	printf("line: quota %lld, issued %lld, quota left %lld (leased %lld: %lld leased unused, "
	       "%lld released unused; %lld never leased)\n",
	       json_integer_value(json_object_get(o, "quota")),
	       json_integer_value(json_object_get(o, "issued")),
	       json_integer_value(json_object_get(o, "quota_left")),
	       json_integer_value(json_object_get(o, "leased")),
	       json_integer_value(json_object_get(o, "leased_unused")),
	       json_integer_value(json_object_get(o, "released_unused")),
	       json_integer_value(json_object_get(o, "unleased")));
	printf("records: %lld (%lld identities), %lld conflicts\n",
	       json_integer_value(json_object_get(o, "records")),
	       json_integer_value(json_object_get(o, "identities")),
	       json_integer_value(json_object_get(o, "conflicts")));
	printf("%-16s %8s %8s %10s %7s %6s %7s %9s  %s\n", "station", "issued", "records",
	       "boards/h", "yield%", "failed", "unused", "head", "failures by step");
	json_array_foreach(json_object_get(o, "stations"), i, st) {
		char *fails = json_dumps(json_object_get(st, "failures_by_step"),
					 JSON_COMPACT | JSON_SORT_KEYS);
		const json_t *y = json_object_get(st, "yield_pct");
		const json_t *bph = json_object_get(st, "boards_per_hour");
		char ys[16] = "-", bs[24] = "-";

		if (json_is_number(y))
			snprintf(ys, sizeof(ys), "%.1f", json_number_value(y));
		if (json_is_number(bph))
			snprintf(bs, sizeof(bs), "%.0f", json_number_value(bph));
		printf("%-16s %8lld %8lld %10s %7s %6lld %7lld %9lld  %s\n",
		       json_string_value(json_object_get(st, "station")),
		       json_integer_value(json_object_get(st, "issued")),
		       json_integer_value(json_object_get(st, "records")), bs, ys,
		       json_integer_value(json_object_get(st, "failed")),
		       json_integer_value(json_object_get(st, "leased_unused")),
		       json_integer_value(json_object_get(st, "head_seq")), fails ? fails : "{}");
		free(fails);
	}
}

static long wait_s = 10;

static const struct st_option line_opts[] = {
	{ "line", 0, ST_OPT_STRING, &st_ctx.line_url, "URL",
	  "the line database (default: the configuration's line.url)" },
	ST_OPTIONS_END,
};

static const struct st_option sync_opts[] = {
	{ "line", 0, ST_OPT_STRING, &st_ctx.line_url, "URL",
	  "the line database (default: the configuration's line.url)" },
	{ "wait", 'w', ST_OPT_INT, &wait_s, "S",
	  "keep trying for S seconds while the line is unreachable (10)" },
	ST_OPTIONS_END,
};

static int line_status_run(struct station_ctx *ctx, int argc, char **argv)
{
	const struct fmt_config *cfg = &ctx->run->cfg;
	struct line_opts o;
	json_t *out = NULL;
	imp_err rc;

	(void)argc;
	(void)argv;
	if (!st_line_url(ctx, cfg)) {
		IMP_ERROR("line: no line configured: give --line URL or a \"line\" section");
		return st_fail(IMP_ERR_CONFIG, NULL);
	}
	st_line_opts(ctx, cfg, &o);
	o.quota = 0; /* status never changes the quota */
	rc = line_status(&o, &out);
	if (rc != IMP_OK)
		return st_fail(rc, NULL);
	json_object_set_new(out, "event", json_string("line_status"));
	st_emit(ctx, out, print_status, NULL);
	return 0;
}

static int sync_line(struct station_ctx *ctx, bool release)
{
	struct st_run *l = ctx->run;
	uint64_t pending = 0;
	unsigned sent = 0, n;
	double until = imp_now_s() + (double)wait_s;
	imp_err rc = IMP_OK;

	if (!l->line) {
		IMP_ERROR("line: no line configured: give --line URL or a \"line\" section");
		return st_fail(IMP_ERR_CONFIG, NULL);
	}
	line_stop_feed(l->line);
	for (;;) {
		rc = line_sync(l->line, &n);
		sent += n;
		if (rc == IMP_OK)
			rc = jnl_line_count_pending(l->journal, &pending);
		if ((rc == IMP_OK && pending == 0) || imp_now_s() >= until ||
		    (rc != IMP_OK && rc != IMP_ERR_TIMEOUT))
			break;
		imp_sleep_us(500000);
	}
	if (rc == IMP_OK && release)
		rc = line_release(l->line);
	if (rc == IMP_OK || rc == IMP_ERR_TIMEOUT)
		st_emit(ctx, json_pack("{s:s, s:I, s:I, s:b, s:b}", "event", "line_sync", "sent",
				       (json_int_t)sent, "pending", (json_int_t)pending, "online",
				       rc == IMP_OK, "released", release && rc == IMP_OK),
			NULL, NULL);
	if (!ctx->json)
		printf("line: %u records fed, %llu pending%s%s\n", sent,
		       (unsigned long long)pending, rc == IMP_ERR_TIMEOUT ?
		       " (the line database is unreachable: run 'imprint line sync' again)" : "",
		       release && rc == IMP_OK ? "; unused leases given back" : "");
	return rc == IMP_OK ? 0 : st_fail(rc, NULL);
}

static int line_sync_run(struct station_ctx *ctx, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return sync_line(ctx, false);
}

static int line_release_run(struct station_ctx *ctx, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return sync_line(ctx, true);
}

static const struct st_command line_release_cmd = {
	.name = "release",
	.fn = line_release_run,
	.need = NEED_HSM,
	.summary = "give back this station's unused leased serials (end of shift)",
	.usage = "imprint line release [--line URL] [--wait S]",
	.opts = sync_opts,
	.help = "At the end of a shift, gives the unused serials of this station's open "
		"leases back to the line, so that no serial is lost and none is issued "
		"twice (docs/LINE.md). --wait S waits up to S seconds for the line "
		"database. Exits 18 if the line does not answer in time.",
	.exits = (const imp_err[]){ IMP_ERR_JOURNAL, IMP_ERR_TIMEOUT, IMP_ERR_QUOTA,
				    IMP_ERR_DUPLICATE, IMP_OK },
	.example = "imprint line release --line postgresql://line.example/imprint",
};

static const struct st_command line_status_cmd = {
	.name = "status",
	.fn = line_status_run,
	.need = NEED_CONFIG,
	.summary = "the line's quota, throughput per station, yield, failures by step",
	.usage = "imprint line status [--line URL]",
	.opts = line_opts,
	.help = "The line as the line database sees it: its quota and serials issued, each "
		"station's throughput and last contact, yield and failures by step. Reads "
		"the line database only (--line URL, else line.url).",
	.exits = (const imp_err[]){ IMP_ERR_TIMEOUT, IMP_ERR_JOURNAL, IMP_OK },
	.example = "imprint line status --line postgresql://line.example/imprint",
};

static const struct st_command line_sync_cmd = {
	.name = "sync",
	.fn = line_sync_run,
	.need = NEED_HSM,
	.summary = "feed this station's records and journal head to the line now",
	.usage = "imprint line sync [--line URL] [--wait S]",
	.opts = sync_opts,
	.help = "Sends this station's records and journal head to the line now (provision "
		"and resume do it in the background); --wait S waits up to S seconds for "
		"the line database. Exits 18 if it does not answer in time, 23 if the line "
		"already holds a UID or serial of this station under another identity.",
	.exits = (const imp_err[]){ IMP_ERR_TIMEOUT, IMP_ERR_DUPLICATE, IMP_ERR_JOURNAL, IMP_OK },
	.example = "imprint line sync --wait 30",
};

static const struct st_command *const line_subs[] = {
	&line_release_cmd,
	&line_status_cmd,
	&line_sync_cmd,
	NULL,
};

const struct st_command st_cmd_line = {
	.name = "line",
	.need = NEED_DATA_DIR,
	.summary = "the whole line on one PostgreSQL: status, sync, release (docs/LINE.md)",
	.usage = "imprint line status|sync|release [--line URL] [--wait S]",
	.subs = line_subs,
	.help = "Line mode: several stations share one PostgreSQL database for serial "
		"leases, the quota, UID uniqueness and a central copy of every record "
		"(docs/LINE.md). The line's half of the audit is 'imprint audit --line "
		"URL'.",
	.example = "imprint line status --line postgresql://line.example/imprint",
};

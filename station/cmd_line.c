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
#include "line.h"

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

static int show_line_status(struct station_ctx *ctx, const struct fmt_config *cfg)
{
	struct line_opts o;
	json_t *out = NULL;
	imp_err rc;

	st_line_opts(ctx, cfg, &o);
	o.quota = 0; /* status never changes the quota */
	rc = line_status(&o, &out);
	if (rc != IMP_OK)
		return st_fail(rc, NULL);
	json_object_set_new(out, "event", json_string("line_status"));
	st_emit(ctx, out, print_status, NULL);
	return 0;
}

static int sync_line(struct station_ctx *ctx, long wait_s, bool release)
{
	struct st_line l;
	uint64_t pending = 0;
	unsigned sent = 0, n;
	double until = imp_now_s() + (double)wait_s;
	imp_err rc;

	rc = st_line_open(ctx, &l, ST_LINE_HSM);
	if (rc == IMP_OK && !l.line) {
		IMP_ERROR("line: no line configured: give --line URL or a \"line\" section");
		rc = IMP_ERR_CONFIG;
	}
	if (rc != IMP_OK) {
		st_line_close(&l);
		return st_fail(rc, NULL);
	}
	line_stop_feed(l.line);
	for (;;) {
		rc = line_sync(l.line, &n);
		sent += n;
		if (rc == IMP_OK)
			rc = jnl_line_count_pending(l.journal, &pending);
		if ((rc == IMP_OK && pending == 0) || imp_now_s() >= until ||
		    (rc != IMP_OK && rc != IMP_ERR_TIMEOUT))
			break;
		imp_sleep_us(500000);
	}
	if (rc == IMP_OK && release)
		rc = line_release(l.line);
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
	st_line_close(&l);
	return rc == IMP_OK ? 0 : st_fail(rc, NULL);
}

int cmd_line(int argc, char **argv, struct station_ctx *ctx)
{
	bool help = false;
	long wait_s = 10;
	const struct st_option opts[] = {
		{ "line", 0, ST_OPT_STRING, &ctx->line_url, "URL",
		  "the line database (default: the configuration's line.url)" },
		{ "wait", 'w', ST_OPT_INT, &wait_s, "S",
		  "sync, release: keep trying for S seconds while the line is unreachable (10)" },
		ST_OPTIONS_END,
	};
	struct fmt_config cfg = { 0 };
	const char *sub;
	int first, code;
	imp_err rc;

	/* `imprint line SUB [options]`: the options follow the subcommand. */
	sub = argc > 1 && argv[1][0] != '-' ? argv[1] : NULL;
	rc = st_parse_options(opts, "imprint line status|sync|release [--line URL] [--wait S]",
			      sub ? argc - 1 : argc, sub ? argv + 1 : argv, &first, &help);
	if (rc != IMP_OK || help)
		return (int)rc;
	if (!sub || first != argc - 1 || wait_s < 0) {
		IMP_ERROR("line: say status, sync or release; see 'imprint line --help'");
		return IMP_ERR_USAGE;
	}
	if (strcmp(sub, "sync") == 0)
		return sync_line(ctx, wait_s, false);
	if (strcmp(sub, "release") == 0)
		return sync_line(ctx, wait_s, true);
	if (strcmp(sub, "status") != 0) {
		IMP_ERROR("line: unknown subcommand '%s': say status, sync or release", sub);
		return IMP_ERR_USAGE;
	}
	rc = st_load_config(ctx, &cfg);
	if (rc == IMP_OK && !st_line_url(ctx, &cfg)) {
		IMP_ERROR("line: no line configured: give --line URL or a \"line\" section");
		rc = IMP_ERR_CONFIG;
	}
	if (rc != IMP_OK) {
		fmt_config_release(&cfg);
		return st_fail(rc, NULL);
	}
	code = show_line_status(ctx, &cfg);
	fmt_config_release(&cfg);
	return code;
}

/*
 * The report page: one self-contained HTML file made from the status object
 * (report.h). Plots are inline SVG written here: no charting library, no
 * script, nothing to fetch, so the file opens the same on a line PC without
 * network as in a browser under test, and nothing outside Debian's C
 * toolchain is needed to build it. Every figure a test or a tool may read
 * carries an id and a data-value attribute holding the status object's
 * number as is.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "journal/journal.h"
#include "report.h"

#define W 640 /* plot width, px */
#define H 180 /* plot height */
#define PAD 36

static void esc(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		default: fputc(*s, f);
		}
	}
}

static long long ival(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static void tile(FILE *f, const char *id, const char *label, long long v, const char *extra)
{
	fprintf(f, "<div class=\"tile\"><div class=\"label\">%s</div>"
		   "<div class=\"num\" id=\"%s\" data-value=\"%lld\">%lld</div>%s</div>\n",
		label, id, v, v, extra ? extra : "");
}

/* A bar chart: n bars with labels; ids "ID-bar-K". */
static void bars(FILE *f, const char *id, const char *title, size_t n, const char *const *labels,
		 const long long *values, const char *color, bool pareto)
{
	long long max = 1, total = 0;
	double bw = n ? (double)(W - 2 * PAD) / (double)n : 0;

	for (size_t i = 0; i < n; i++) {
		if (values[i] > max)
			max = values[i];
		total += values[i];
	}
	fprintf(f, "<figure><figcaption>");
	esc(f, title);
	fprintf(f, "</figcaption><svg id=\"%s\" role=\"img\" width=\"%d\" height=\"%d\" "
		   "viewBox=\"0 0 %d %d\" xmlns=\"http://www.w3.org/2000/svg\">\n",
		id, W, H, W, H);
	fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#888\"/>"
		   "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#888\"/>"
		   "<text x=\"%d\" y=\"%d\" class=\"ax\" text-anchor=\"end\">%lld</text>"
		   "<text x=\"%d\" y=\"%d\" class=\"ax\" text-anchor=\"end\">0</text>\n",
		PAD, H - PAD, W - PAD, H - PAD, PAD, 10, PAD, H - PAD, PAD - 4, 18, max, PAD - 4,
		H - PAD);
	if (n == 0)
		fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" class=\"ax\">no data"
			   "</text>\n", W / 2, H / 2);
	long long cum = 0;
	double px = 0, py = 0;

	for (size_t i = 0; i < n; i++) {
		double h = (double)(H - PAD - 10) * (double)values[i] / (double)max;
		double x = PAD + bw * (double)i + bw * 0.1;

		fprintf(f, "<rect id=\"%s-bar-%zu\" data-label=\"", id, i);
		esc(f, labels[i]);
		fprintf(f, "\" data-value=\"%lld\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
			   "height=\"%.1f\" fill=\"%s\"><title>",
			values[i], x, (double)(H - PAD) - h, bw * 0.8, h, color);
		esc(f, labels[i]);
		fprintf(f, ": %lld</title></rect>\n", values[i]);
		if (n <= 24 || i % (n / 12 + 1) == 0) {
			fprintf(f, "<text x=\"%.1f\" y=\"%d\" class=\"ax\" text-anchor=\"middle\">",
				x + bw * 0.4, H - PAD + 14);
			esc(f, labels[i]);
			fprintf(f, "</text>\n");
		}
		if (pareto && total > 0) {
			double cx = x + bw * 0.4;
			double cy;

			cum += values[i];
			cy = (double)(H - PAD) - (double)(H - PAD - 10) * (double)cum / (double)total;
			if (i > 0)
				fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
					   "stroke=\"#c0392b\" stroke-width=\"2\"/>\n",
					px, py, cx, cy);
			fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"#c0392b\"><title>"
				   "%.0f%% cumulative</title></circle>\n",
				cx, cy, 100.0 * (double)cum / (double)total);
			px = cx;
			py = cy;
		}
	}
	if (pareto && total > 0)
		fprintf(f, "<text x=\"%d\" y=\"18\" class=\"ax\" fill=\"#c0392b\">100%%</text>\n",
			W - PAD + 4);
	fprintf(f, "</svg></figure>\n");
}

static int cmp_step(const void *a, const void *b)
{
	const long long *x = a, *y = b; /* {count, state} pairs */

	if (x[0] != y[0])
		return x[0] < y[0] ? 1 : -1;
	return (x[1] > y[1]) - (x[1] < y[1]);
}

static void pareto(FILE *f, const json_t *shift)
{
	const json_t *steps = json_object_get(shift, "failures_by_step");
	long long pairs[JNL_ST__COUNT][2];
	const char *labels[JNL_ST__COUNT] = { 0 };
	long long values[JNL_ST__COUNT] = { 0 };
	size_t n = 0;

	for (int s = 0; s < JNL_ST__COUNT; s++) {
		json_t *v = json_object_get(steps, jnl_state_name((enum jnl_state)s));

		if (v) {
			pairs[n][0] = json_integer_value(v);
			pairs[n][1] = s;
			n++;
		}
	}
	qsort(pairs, n, sizeof(pairs[0]), cmp_step);
	for (size_t i = 0; i < n; i++) {
		labels[i] = jnl_state_name((enum jnl_state)pairs[i][1]);
		values[i] = pairs[i][0];
	}
	fprintf(f, "<section id=\"failures\"><h2>Failures by step</h2>\n");
	bars(f, "chart-pareto", "failures by step, most frequent first, with the cumulative share",
	     n, labels, values, "#e67e22", true);
	fprintf(f, "<table><tr><th>step</th><th>failures</th></tr>\n");
	for (size_t i = 0; i < n; i++)
		fprintf(f, "<tr class=\"fail-step\" data-step=\"%s\" data-count=\"%lld\"><td>%s</td>"
			   "<td>%lld</td></tr>\n",
			labels[i], values[i], labels[i], values[i]);
	if (n == 0)
		fprintf(f, "<tr><td colspan=\"2\">none</td></tr>\n");
	fprintf(f, "</table></section>\n");
}

static void hourly(FILE *f, const json_t *shift)
{
	const json_t *arr = json_object_get(shift, "done_per_hour");
	size_t n = json_array_size(arr);
	const char **labels = calloc(n ? n : 1, sizeof(*labels));
	long long *values = calloc(n ? n : 1, sizeof(*values));
	char (*short_lbl)[8] = calloc(n ? n : 1, sizeof(*short_lbl));

	if (!labels || !values || !short_lbl)
		goto cleanup;
	for (size_t i = 0; i < n; i++) {
		const char *h = json_string_value(json_object_get(json_array_get(arr, i), "hour"));

		/* "2026-12-01T11:00Z" -> "11h" */
		snprintf(short_lbl[i], sizeof(short_lbl[i]), "%.2sh", h && strlen(h) > 12 ? h + 11 : "");
		labels[i] = short_lbl[i];
		values[i] = ival(json_array_get(arr, i), "done");
	}
	fprintf(f, "<section id=\"hourly\"><h2>Boards done per hour (UTC)</h2>\n");
	bars(f, "chart-hourly", "boards done per hour", n, labels, values, "#2e86c1", false);
	fprintf(f, "</section>\n");
cleanup:
	free(labels);
	free(values);
	free(short_lbl);
}

static void cycle(FILE *f, const json_t *shift)
{
	const json_t *ct = json_object_get(shift, "cycle_time");
	const json_t *fixtures = json_object_get(ct, "fixtures");
	long long lo = ival(ct, "lo_ms"), bin = ival(ct, "bin_ms");
	const char *fx;
	json_t *v;
	int k = 0;

	fprintf(f, "<section id=\"cycle\"><h2>Cycle time per fixture</h2>\n"
		   "<table><tr><th>fixture</th><th>boards</th><th>min s</th><th>median s</th>"
		   "<th>p90 s</th><th>max s</th></tr>\n");
	json_object_foreach((json_t *)fixtures, fx, v) {
		fprintf(f, "<tr class=\"cycle-fixture\" data-fixture=\"");
		esc(f, fx);
		fprintf(f, "\" data-n=\"%lld\"><td>", ival(v, "n"));
		esc(f, fx);
		fprintf(f, "</td><td>%lld</td><td>%.3f</td><td>%.3f</td><td>%.3f</td><td>%.3f</td>"
			   "</tr>\n",
			ival(v, "n"), ival(v, "min_ms") / 1000.0, ival(v, "p50_ms") / 1000.0,
			ival(v, "p90_ms") / 1000.0, ival(v, "max_ms") / 1000.0);
	}
	if (json_object_size(fixtures) == 0)
		fprintf(f, "<tr><td colspan=\"6\">no board done</td></tr>\n");
	fprintf(f, "</table>\n");
	/* Small multiples: one row per fixture over the shared bins, each row
	 * scaled to its own largest bin. */
	size_t nfx = json_object_size(fixtures), nb = 0;
	const int row = 34, left = 90, top = 8;
	int hgt = top + (int)nfx * row + 24;

	json_object_foreach((json_t *)fixtures, fx, v)
		if (json_array_size(json_object_get(v, "hist")) > nb)
			nb = json_array_size(json_object_get(v, "hist"));
	if (nfx == 0 || nb == 0) {
		fprintf(f, "</section>\n");
		return;
	}
	double bw = (double)(W - left - PAD) / (double)nb;

	fprintf(f, "<figure><figcaption>boards per cycle time, one row per fixture (bins of %lld "
		   "ms)</figcaption><svg id=\"chart-cycle\" role=\"img\" width=\"%d\" "
		   "height=\"%d\" viewBox=\"0 0 %d %d\" xmlns=\"http://www.w3.org/2000/svg\">\n",
		bin, W, hgt, W, hgt);
	json_object_foreach((json_t *)fixtures, fx, v) {
		const json_t *hist = json_object_get(v, "hist");
		long long max = 1;
		int y0 = top + k * row;

		for (size_t i = 0; i < json_array_size(hist); i++)
			if (json_integer_value(json_array_get(hist, i)) > max)
				max = json_integer_value(json_array_get(hist, i));
		fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"ax\" text-anchor=\"end\">", left - 6,
			y0 + row - 12);
		esc(f, fx);
		fprintf(f, "</text><line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" "
			   "stroke=\"#bbb\"/>\n",
			left, y0 + row - 4, W - PAD, y0 + row - 4);
		for (size_t i = 0; i < json_array_size(hist); i++) {
			long long c = json_integer_value(json_array_get(hist, i));
			double h = (double)(row - 8) * (double)c / (double)max;

			if (!c)
				continue;
			fprintf(f, "<rect class=\"cycle-bin\" data-fixture=\"");
			esc(f, fx);
			fprintf(f, "\" data-value=\"%lld\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
				   "height=\"%.1f\" fill=\"#27ae60\"><title>%lld board(s), %lld to %lld "
				   "ms</title></rect>\n",
				c, left + bw * (double)i + 1, (double)(y0 + row - 4) - h, bw - 2, h, c,
				lo + (long long)i * bin, lo + (long long)(i + 1) * bin);
		}
		k++;
	}
	for (size_t i = 0; i <= nb; i += (nb + 5) / 6) {
		long long ms = lo + (long long)i * bin;

		fprintf(f, "<text x=\"%.1f\" y=\"%d\" class=\"ax\" text-anchor=\"middle\">",
			left + bw * (double)i, hgt - 8);
		if (bin * (long long)nb >= 10000)
			fprintf(f, "%.1f s</text>\n", (double)ms / 1000.0);
		else
			fprintf(f, "%lld ms</text>\n", ms);
	}
	fprintf(f, "</svg></figure>\n");
	fprintf(f, "</section>\n");
}

static void quota(FILE *f, const json_t *st)
{
	long long issued = ival(st, "issued"), left = ival(st, "quota_left");
	long long all = issued + left;
	double wi = all ? (double)(W - 2 * PAD) * (double)issued / (double)all : 0;

	fprintf(f, "<section id=\"quota-sec\"><h2>Quota</h2>\n"
		   "<svg id=\"chart-quota\" width=\"%d\" height=\"40\" viewBox=\"0 0 %d 40\" "
		   "xmlns=\"http://www.w3.org/2000/svg\">"
		   "<rect x=\"%d\" y=\"8\" width=\"%d\" height=\"20\" fill=\"#d5dbdb\"/>"
		   "<rect id=\"quota-used-bar\" data-value=\"%lld\" x=\"%d\" y=\"8\" width=\"%.1f\" "
		   "height=\"20\" fill=\"#8e44ad\"/></svg>\n"
		   "<p>%s: <b>%lld</b> issued, <b>%lld</b> left.</p></section>\n",
		W, W, PAD, W - 2 * PAD, issued, PAD, wi,
		json_is_true(json_object_get(st, "line_mode")) ? "serials from the line's leases"
							     : "station quota",
		issued, left);
}

static void audit(FILE *f, const json_t *st)
{
	const json_t *c = json_object_get(st, "chain");
	bool ok = json_is_true(json_object_get(c, "ok"));

	char cp[48];

	if (ival(c, "last_checkpoint_seq"))
		snprintf(cp, sizeof(cp), "at event %lld", ival(c, "last_checkpoint_seq"));
	else
		snprintf(cp, sizeof(cp), "none yet");
	fprintf(f, "<section id=\"audit-sec\"><h2>Journal audit</h2>\n");
	if (!c) {
		fprintf(f, "<p id=\"audit\" data-ok=\"unknown\">not verified</p></section>\n");
		return;
	}
	fprintf(f, "<p id=\"audit\" data-ok=\"%s\" class=\"%s\">%s</p>\n", ok ? "true" : "false",
		ok ? "good" : "bad",
		!ok && json_is_true(json_object_get(c, "incomplete"))
			? "NOT VERIFIED: what the check needs is missing (status --verify says what)"
		: !ok ? "BROKEN: the journal was altered outside imprint"
		: ival(c, "checkpoints") ? "hash chain and signed checkpoints verified"
					 : "hash chain verified; no signed checkpoint yet");
	fprintf(f, "<table><tr><th>events</th><td id=\"audit-events\" data-value=\"%lld\">%lld</td>"
		   "</tr><tr><th>signed checkpoints</th><td id=\"audit-checkpoints\" "
		   "data-value=\"%lld\">%lld</td></tr><tr><th>last signed checkpoint</th>"
		   "<td id=\"audit-last-checkpoint\" data-value=\"%lld\">%s</td></tr>"
		   "<tr><th>events after it (not yet signed)</th><td id=\"audit-unsigned\" "
		   "data-value=\"%lld\">%lld</td></tr><tr><th>signatures checked</th><td>%s</td></tr>"
		   "<tr><th>journal head</th><td><code>event %lld, ",
		ival(c, "events"), ival(c, "events"), ival(c, "checkpoints"), ival(c, "checkpoints"),
		ival(c, "last_checkpoint_seq"), cp,
		ival(c, "unsigned_tail"), ival(c, "unsigned_tail"),
		json_is_true(json_object_get(c, "signatures_checked")) ? "yes" : "no (no certificate)",
		ival(st, "head_seq"));
	esc(f, json_string_value(json_object_get(st, "head_hash")));
	fprintf(f, "</code></td></tr>");
	if (!ok) {
		fprintf(f, "<tr><th>broken at</th><td>event %lld: ", ival(c, "bad_seq"));
		esc(f, json_string_value(json_object_get(c, "reason")));
		fprintf(f, "</td></tr>");
	}
	fprintf(f, "</table></section>\n");
}

static void failures(FILE *f, const json_t *st)
{
	size_t i;
	json_t *v;

	fprintf(f, "<section id=\"recent\"><h2>Recent failures</h2><table><tr><th>uid</th>"
		   "<th>serial</th><th>state</th><th>fixture</th><th>error</th><th>when</th></tr>\n");
	json_array_foreach(json_object_get(st, "failures"), i, v) {
		static const char *const keys[] = { "uid", "serial", "state", "fixture", "error",
						    "updated" };

		fprintf(f, "<tr class=\"recent-failure\">");
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
			fprintf(f, "<td>");
			esc(f, json_string_value(json_object_get(v, keys[k])));
			fprintf(f, "</td>");
		}
		fprintf(f, "</tr>\n");
	}
	if (json_array_size(json_object_get(st, "failures")) == 0)
		fprintf(f, "<tr><td colspan=\"6\">none</td></tr>\n");
	fprintf(f, "</table></section>\n");
}

/* Line mode (report --line): the line's quota and records, per station,
 * and the line's failures by step summed over its stations. */
static void line_section(FILE *f, const json_t *ln)
{
	const json_t *stations = json_object_get(ln, "stations");
	long long sums[JNL_ST__COUNT] = { 0 };
	long long pairs[JNL_ST__COUNT][2];
	const char *labels[JNL_ST__COUNT] = { 0 };
	long long values[JNL_ST__COUNT] = { 0 };
	size_t i, n = 0;
	json_t *st;

	fprintf(f, "<section id=\"line\"><h2>The line</h2><div class=\"tiles\">\n");
	tile(f, "line-issued", "issued on the line", ival(ln, "issued"), NULL);
	tile(f, "line-quota-left", "line quota left", ival(ln, "quota_left"), NULL);
	tile(f, "line-records", "records on the line", ival(ln, "records"), NULL);
	tile(f, "line-conflicts", "conflicts", ival(ln, "conflicts"), NULL);
	fprintf(f, "</div><table><tr><th>station</th><th>issued</th><th>records</th>"
		   "<th>boards/h</th><th>yield %%</th><th>failed</th><th>leased unused</th>"
		   "<th>journal head</th><th>failures by step</th></tr>\n");
	json_array_foreach(json_object_get(ln, "stations"), i, st) {
		const json_t *y = json_object_get(st, "yield_pct");
		const json_t *bph = json_object_get(st, "boards_per_hour");
		const char *key;
		json_t *v;

		fprintf(f, "<tr class=\"line-station\" data-station=\"");
		esc(f, json_string_value(json_object_get(st, "station")));
		fprintf(f, "\" data-issued=\"%lld\" data-records=\"%lld\" data-failed=\"%lld\"><td>",
			ival(st, "issued"), ival(st, "records"), ival(st, "failed"));
		esc(f, json_string_value(json_object_get(st, "station")));
		fprintf(f, "</td><td>%lld</td><td>%lld</td>", ival(st, "issued"), ival(st, "records"));
		if (json_is_number(bph))
			fprintf(f, "<td>%.0f</td>", json_number_value(bph));
		else
			fprintf(f, "<td>-</td>");
		if (json_is_number(y))
			fprintf(f, "<td>%.1f</td>", json_number_value(y));
		else
			fprintf(f, "<td>-</td>");
		fprintf(f, "<td>%lld</td><td>%lld</td><td>%lld</td><td>", ival(st, "failed"),
			ival(st, "leased_unused"), ival(st, "head_seq"));
		json_object_foreach(json_object_get(st, "failures_by_step"), key, v) {
			enum jnl_state s;

			fprintf(f, "%s&nbsp;%lld ", key, json_integer_value(v));
			if (jnl_state_parse(key, &s) == IMP_OK)
				sums[s] += json_integer_value(v);
		}
		fprintf(f, "</td></tr>\n");
	}
	if (json_array_size(stations) == 0)
		fprintf(f, "<tr><td colspan=\"9\">no station</td></tr>\n");
	fprintf(f, "</table>\n");
	for (int s = 0; s < JNL_ST__COUNT; s++)
		if (sums[s]) {
			pairs[n][0] = sums[s];
			pairs[n][1] = s;
			n++;
		}
	qsort(pairs, n, sizeof(pairs[0]), cmp_step);
	for (i = 0; i < n; i++) {
		labels[i] = jnl_state_name((enum jnl_state)pairs[i][1]);
		values[i] = pairs[i][0];
	}
	bars(f, "chart-line-pareto", "the line's failures by step, all stations", n, labels, values,
	     "#d35400", true);
	fprintf(f, "</section>\n");
}

static void body(FILE *f, const json_t *st)
{
	const json_t *shift = json_object_get(st, "shift");
	const json_t *states = json_object_get(st, "boards");
	const json_t *fpy = json_object_get(shift, "first_pass_yield");
	char extra[256], now[40];
	time_t t = time(NULL);
	struct tm tm;
	const char *key;
	json_t *v;

	gmtime_r(&t, &tm);
	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(f, "<header><h1>Station ");
	esc(f, json_string_value(json_object_get(st, "station_id")));
	fprintf(f, "</h1><p>journal <code>");
	esc(f, json_string_value(json_object_get(st, "journal")));
	fprintf(f, "</code>; shift ");
	esc(f, json_is_string(json_object_get(shift, "since"))
		       ? json_string_value(json_object_get(shift, "since"))
		       : "(start)");
	fprintf(f, " to ");
	esc(f, json_is_string(json_object_get(shift, "until"))
		       ? json_string_value(json_object_get(shift, "until"))
		       : "now");
	fprintf(f, "; made <span id=\"generated\">%s</span></p></header>\n<div class=\"tiles\">\n",
		now);
	tile(f, "total-done", "boards done", ival(shift, "done"), NULL);
	tile(f, "total-rejected", "rejected", ival(shift, "rejected"), NULL);
	tile(f, "total-finished", "finished", ival(shift, "finished"), NULL);
	if (json_is_real(fpy))
		snprintf(extra, sizeof(extra),
			 "<div class=\"num\" id=\"fpy\" data-value=\"%.17g\" data-first-pass=\"%lld\" "
			 "data-finished=\"%lld\">%.1f%%</div>",
			 json_real_value(fpy), ival(shift, "first_pass"), ival(shift, "finished"),
			 100.0 * json_real_value(fpy));
	else
		snprintf(extra, sizeof(extra),
			 "<div class=\"num\" id=\"fpy\" data-value=\"null\" data-first-pass=\"0\" "
			 "data-finished=\"0\">-</div>");
	fprintf(f, "<div class=\"tile\"><div class=\"label\">first-pass yield</div>%s</div>\n",
		extra);
	tile(f, "quota-left", "quota left", ival(st, "quota_left"), NULL);
	tile(f, "outbox-pending", "export backlog", ival(st, "outbox_pending"), NULL);
	fprintf(f, "</div>\n<section id=\"states\"><h2>Boards per state (whole journal)</h2>"
		   "<div class=\"states\">");
	json_object_foreach((json_t *)states, key, v)
		fprintf(f, "<span class=\"state%s\">%s <b id=\"state-%s\" data-value=\"%lld\">%lld"
			   "</b></span>",
			json_integer_value(v) ? "" : " zero", key, key, json_integer_value(v),
			json_integer_value(v));
	fprintf(f, "</div></section>\n");
	hourly(f, shift);
	pareto(f, shift);
	cycle(f, shift);
	quota(f, st);
	audit(f, st);
	failures(f, st);
	if (json_object_get(st, "line"))
		line_section(f, json_object_get(st, "line"));
}

static const char STYLE[] =
	"body{font-family:sans-serif;margin:1.5em;color:#222;max-width:62em}"
	"h1{margin:0 0 .2em}h2{font-size:1.1em;margin:1.4em 0 .4em;border-bottom:1px solid #ccc}"
	".tiles{display:flex;flex-wrap:wrap;gap:.8em;margin:1em 0}"
	".tile{border:1px solid #ccc;border-radius:6px;padding:.4em .8em;min-width:6em}"
	".states{display:flex;flex-wrap:wrap;gap:.3em}.state{border:1px solid #ddd;"
	"padding:.1em .5em;font-size:.85em}.zero{color:#aaa}"
	".label{font-size:.8em;color:#666}.num{font-size:1.8em;font-weight:bold}"
	"table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2em .6em;"
	"text-align:left;font-size:.9em}figure{margin:.5em 0}figcaption{font-size:.85em;"
	"color:#555}.ax{font-size:10px;fill:#555}.good{color:#1e8449;font-weight:bold}"
	".bad{color:#c0392b;font-weight:bold}code{font-size:.85em;word-break:break-all}";

/* The live page replaces #report with /fragment every two seconds. */
static const char SCRIPT[] =
	"setInterval(function(){fetch('/fragment'+location.search,{cache:'no-store'}).then(function(r){"
	"if(!r.ok)throw new Error(r.status);return r.text();}).then(function(t){"
	"document.getElementById('report').innerHTML=t;}).catch(function(){});},2000);";

char *st_report_fragment(const json_t *status)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	body(f, status);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

char *st_report_html(const json_t *status, bool live)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
		   "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
		   "style-src 'unsafe-inline'; img-src data:%s\">\n"
		   "<link rel=\"icon\" href=\"data:,\">\n"
		   "<title>imprint: station ",
		live ? "; script-src 'unsafe-inline'; connect-src 'self'" : "");
	esc(f, json_string_value(json_object_get(status, "station_id")));
	fprintf(f, "</title>\n<style>%s</style></head>\n<body>\n<div id=\"report\"%s>\n", STYLE,
		live ? " data-live=\"true\"" : "");
	body(f, status);
	fprintf(f, "</div>\n");
	if (live)
		fprintf(f, "<script>%s</script>\n", SCRIPT);
	fprintf(f, "</body></html>\n");
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

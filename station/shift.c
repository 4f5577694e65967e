/*
 * The shift's figures, from the journal's events (jnl_iterate_events): no
 * SQL here. A board counts in the window by the time of the event: a DONE
 * transition at that time is a board done in the window, an error event a
 * failure at the step it names.
 *
 * First-pass yield: boards that reached DONE in the window without any
 * error or reissue before, over the boards that finished in it (DONE or
 * rejected to FAILED). Cycle time: the board's DONE event minus its first
 * event (registration or allocation), grouped by the fixture it was registered on.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "journal/journal.h"
#include "report.h"

#define SHIFT_HOURS_MAX 744 /* a month of hourly bars; older hours are cut */
#define SHIFT_BINS 12       /* cycle-time histogram bins */

struct shift_board {
	struct shift_board *next;
	char uid[JNL_UID_HEX_MAX + 1];
	char fixture[64];
	long long first_ms;
	unsigned errors;
};

struct shift_done {
	long long ms, cycle_ms;
	char fixture[64];
	bool first_pass;
};

struct shift {
	const char *since, *until;
	struct shift_board *buckets[1024];
	uint64_t fail_by_step[JNL_ST__COUNT];
	uint64_t failed, first_pass;
	struct shift_done *done;
	size_t ndone, cap;
	imp_err rc;
};

/*
 * The date, time and fraction of "2026-12-01T11:07:14.123...": *tm and *ms
 * (the first three digits of the fraction), *digits how many the fraction
 * has (-1: none, no '.'). Returns what follows, or NULL.
 */
static const char *ts_parse(const char *ts, struct tm *tm, long long *ms, int *digits)
{
	const char *p = strptime(ts, "%Y-%m-%dT%H:%M:%S", tm);

	*ms = 0;
	*digits = -1;
	if (!p || *p != '.')
		return p;
	*digits = 0;
	for (p++; *p >= '0' && *p <= '9'; p++)
		if ((*digits)++ < 3)
			*ms = *ms * 10 + (*p - '0');
	for (int d = *digits; d < 3; d++)
		*ms *= 10;
	return p;
}

/* "2026-12-01T11:07:14.123Z" to milliseconds since the epoch; -1 if not. */
static long long ts_ms(const char *ts)
{
	struct tm tm = { 0 };
	long long ms;
	int digits;

	if (!ts_parse(ts, &tm, &ms, &digits))
		return -1;
	return (long long)timegm(&tm) * 1000 + ms;
}

/*
 * A time a user gives: RFC 3339 with its zone, "Z" or an offset (+05:00 is
 * converted to UTC), and nothing after it. Without a zone, or with anything
 * else after the seconds, -1: a time read as UTC that was meant otherwise
 * would bound the shift silently wrong.
 */
static long long user_ts_ms(const char *ts)
{
	struct tm tm = { 0 };
	long long ms, off = 0;
	int digits;
	const char *p = ts_parse(ts, &tm, &ms, &digits);

	if (!p || digits == 0)
		return -1;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) &&
		   isdigit((unsigned char)p[2]) && p[3] == ':' && isdigit((unsigned char)p[4]) &&
		   isdigit((unsigned char)p[5])) {
		int h = (p[1] - '0') * 10 + (p[2] - '0'), m = (p[4] - '0') * 10 + (p[5] - '0');

		if (h > 23 || m > 59)
			return -1;
		/* local = UTC + offset */
		off = (long long)(h * 60 + m) * 60 * 1000 * (*p == '+' ? -1 : 1);
		p += 6;
	} else {
		return -1;
	}
	if (*p)
		return -1;
	return (long long)timegm(&tm) * 1000 + ms + off;
}

bool st_time_norm(const char *in, char out[32])
{
	long long ms = in ? user_ts_ms(in) : -1;
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char sec[24];

	if (ms < 0 || !gmtime_r(&t, &tm))
		return false;
	strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, 32, "%s.%03lldZ", sec, ms % 1000);
	return true;
}

static unsigned uid_hash(const char *s)
{
	unsigned h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % 1024;
}

static struct shift_board *board_get(struct shift *s, const char *uid, bool create)
{
	unsigned h = uid_hash(uid);
	struct shift_board *b;

	for (b = s->buckets[h]; b; b = b->next)
		if (strcmp(b->uid, uid) == 0)
			return b;
	if (!create)
		return NULL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	snprintf(b->uid, sizeof(b->uid), "%s", uid);
	b->first_ms = -1;
	b->next = s->buckets[h];
	s->buckets[h] = b;
	return b;
}

static bool in_window(const struct shift *s, const char *ts)
{
	/* RFC 3339 UTC with a fixed layout: the text order is the time order. */
	return (!s->since || strcmp(ts, s->since) >= 0) && (!s->until || strcmp(ts, s->until) < 0);
}

static int shift_event(void *arg, const struct jnl_event *ev)
{
	struct shift *s = arg;
	struct shift_board *b;
	json_t *d;

	if (!ev->uid || (strcmp(ev->kind, "state") != 0 && strcmp(ev->kind, "error") != 0 &&
			 strcmp(ev->kind, "reissue") != 0 && strcmp(ev->kind, "alloc") != 0))
		return 0;
	b = board_get(s, ev->uid, true);
	d = json_loads(ev->detail, 0, NULL);
	if (!b || !d) {
		json_decref(d);
		s->rc = b ? IMP_ERR_JOURNAL : IMP_ERR_NOMEM;
		return 1;
	}
	if (b->first_ms < 0)
		b->first_ms = ts_ms(ev->ts);
	if (!b->fixture[0]) {
		/* registration and allocation name it; a step's data may too */
		const char *fx = json_string_value(json_object_get(d, "fixture"));

		if (!fx)
			fx = json_string_value(json_object_get(json_object_get(d, "data"), "fixture"));
		if (fx && fx[0])
			snprintf(b->fixture, sizeof(b->fixture), "%s", fx);
	}
	if (strcmp(ev->kind, "error") == 0) {
		enum jnl_state st;
		const char *name = json_string_value(json_object_get(d, "state"));

		if (in_window(s, ev->ts) && name && jnl_state_parse(name, &st) == IMP_OK)
			s->fail_by_step[st]++;
		b->errors++;
	} else if (strcmp(ev->kind, "reissue") == 0) {
		b->errors++;
	} else if (in_window(s, ev->ts)) {
		const char *to = json_string_value(json_object_get(d, "to"));

		if (to && strcmp(to, "FAILED") == 0) {
			s->failed++;
		} else if (to && strcmp(to, "DONE") == 0) {
			if (s->ndone == s->cap) {
				size_t cap = s->cap ? s->cap * 2 : 64;
				struct shift_done *n = realloc(s->done, cap * sizeof(*n));

				if (!n) {
					json_decref(d);
					s->rc = IMP_ERR_NOMEM;
					return 1;
				}
				s->done = n;
				s->cap = cap;
			}
			struct shift_done *dn = &s->done[s->ndone++];

			dn->ms = ts_ms(ev->ts);
			dn->cycle_ms = dn->ms - b->first_ms;
			dn->first_pass = b->errors == 0;
			snprintf(dn->fixture, sizeof(dn->fixture), "%s",
				 b->fixture[0] ? b->fixture : "-");
			if (dn->first_pass)
				s->first_pass++;
		}
	}
	json_decref(d);
	return 0;
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return (x > y) - (x < y);
}

/* Fixtures in natural order (F2 before F10), then by time. */
static int cmp_done(const void *a, const void *b)
{
	const struct shift_done *x = a, *y = b;
	int c = strverscmp(x->fixture, y->fixture);

	return c ? c : (x->ms > y->ms) - (x->ms < y->ms);
}

static void hour_label(long long hour, char *out, size_t cap)
{
	time_t t = (time_t)(hour * 3600);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, cap, "%Y-%m-%dT%H:00Z", &tm);
}

static json_t *per_hour(const struct shift *s)
{
	json_t *arr = json_array();
	long long lo = 0, hi = 0;

	for (size_t i = 0; i < s->ndone; i++) {
		long long h = s->done[i].ms / 3600000;

		if (i == 0 || h < lo)
			lo = h;
		if (i == 0 || h > hi)
			hi = h;
	}
	if (s->ndone == 0)
		return arr;
	if (hi - lo >= SHIFT_HOURS_MAX)
		lo = hi - SHIFT_HOURS_MAX + 1;
	for (long long h = lo; h <= hi; h++) {
		uint64_t n = 0;
		char label[32];

		for (size_t i = 0; i < s->ndone; i++)
			n += s->done[i].ms / 3600000 == h;
		hour_label(h, label, sizeof(label));
		json_array_append_new(arr, json_pack("{s:s, s:I}", "hour", label, "done",
						     (json_int_t)n));
	}
	return arr;
}

/* Per fixture: count, min, median, 90th percentile, max and a histogram
 * over the bins shared by all fixtures (lo_ms + i * bin_ms). */
static json_t *cycle_times(struct shift *s)
{
	json_t *o = json_object(), *fixtures = json_object();
	long long lo = 0, hi = 0, bin;
	long long *v = malloc((s->ndone ? s->ndone : 1) * sizeof(*v));

	if (!o || !fixtures || !v) {
		free(v);
		json_decref(o);
		json_decref(fixtures);
		return NULL;
	}
	if (s->ndone)
		qsort(s->done, s->ndone, sizeof(*s->done), cmp_done);
	for (size_t i = 0; i < s->ndone; i++) {
		if (i == 0 || s->done[i].cycle_ms < lo)
			lo = s->done[i].cycle_ms;
		if (i == 0 || s->done[i].cycle_ms > hi)
			hi = s->done[i].cycle_ms;
	}
	bin = (hi - lo) / SHIFT_BINS + 1;
	for (size_t i = 0; i < s->ndone; i++) {
		const char *fx = s->done[i].fixture;
		size_t n = 0;
		json_t *hist;

		if (json_object_get(fixtures, fx))
			continue;
		hist = json_array();
		for (int k = 0; k < SHIFT_BINS; k++)
			json_array_append_new(hist, json_integer(0));
		for (size_t k = i; k < s->ndone; k++) {
			if (strcmp(s->done[k].fixture, fx) != 0)
				continue;
			size_t slot = (size_t)((s->done[k].cycle_ms - lo) / bin);
			json_t *c = json_array_get(hist, slot);

			json_integer_set(c, json_integer_value(c) + 1);
			v[n++] = s->done[k].cycle_ms;
		}
		qsort(v, n, sizeof(*v), cmp_ll);
		json_object_set_new(fixtures, fx,
				    json_pack("{s:I, s:I, s:I, s:I, s:I, s:o}", "n", (json_int_t)n,
					      "min_ms", (json_int_t)v[0], "p50_ms",
					      (json_int_t)v[(n - 1) / 2], "p90_ms",
					      (json_int_t)v[(n - 1) * 9 / 10], "max_ms",
					      (json_int_t)v[n - 1], "hist", hist));
	}
	free(v);
	json_object_set_new(o, "lo_ms", json_integer(lo));
	json_object_set_new(o, "bin_ms", json_integer(bin));
	json_object_set_new(o, "fixtures", fixtures);
	return o;
}

imp_err st_shift_stats(struct jnl *j, const char *since, const char *until, json_t **out)
{
	char lo[32], hi[32];
	struct shift s = { 0 };
	json_t *steps, *o = NULL;
	uint64_t finished;
	imp_err rc;

	*out = NULL;
	if ((since && !st_time_norm(since, lo)) || (until && !st_time_norm(until, hi)))
		return IMP_ERR_USAGE;
	s.since = since ? lo : NULL;
	s.until = until ? hi : NULL;
	rc = jnl_iterate_events(j, 0, NULL, shift_event, &s);
	if (rc == IMP_OK)
		rc = s.rc;
	if (rc != IMP_OK)
		goto cleanup;
	steps = json_object();
	for (int st = 0; st < JNL_ST__COUNT; st++)
		if (s.fail_by_step[st])
			json_object_set_new(steps, jnl_state_name((enum jnl_state)st),
					    json_integer((json_int_t)s.fail_by_step[st]));
	finished = s.ndone + s.failed;
	o = json_pack("{s:s?, s:s?, s:I, s:I, s:I, s:I, s:o, s:o, s:o*}", "since", s.since, "until",
		      s.until, "done", (json_int_t)s.ndone, "rejected", (json_int_t)s.failed,
		      "finished", (json_int_t)finished, "first_pass", (json_int_t)s.first_pass,
		      "failures_by_step", steps, "done_per_hour", per_hour(&s), "cycle_time",
		      cycle_times(&s));
	if (o)
		json_object_set_new(o, "first_pass_yield",
				    finished ? json_real((double)s.first_pass / (double)finished)
					     : json_null());
	rc = o ? IMP_OK : IMP_ERR_NOMEM;
	*out = o;
cleanup:
	for (size_t h = 0; h < 1024; h++)
		while (s.buckets[h]) {
			struct shift_board *n = s.buckets[h]->next;

			free(s.buckets[h]);
			s.buckets[h] = n;
		}
	free(s.done);
	return rc;
}

/*
 * The fixtures' --json events without a jansson tree (event_line.h): the
 * members in key order, strings escaped and reals printed as json_dumps
 * does, one write(2) a line.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "event_line.h"
#include "imprint/util.h"
#include "station.h"

void st_ev_begin(struct st_evline *e, char *buf, size_t cap)
{
	e->buf = buf;
	e->cap = cap;
	e->len = 0;
	e->last_key = NULL;
	e->bad = cap < 3;
	if (!e->bad)
		e->buf[e->len++] = '{';
}

static void put(struct st_evline *e, const char *s, size_t n)
{
	if (e->bad || n > e->cap - e->len) {
		e->bad = true;
		return;
	}
	memcpy(e->buf + e->len, s, n);
	e->len += n;
}

/* ,"key": ; keys are the program's own ASCII names, in ascending order. */
static void key(struct st_evline *e, const char *k)
{
	if (e->last_key && strcmp(e->last_key, k) >= 0)
		e->bad = true;
	e->last_key = k;
	if (e->len > 1)
		put(e, ",", 1);
	put(e, "\"", 1);
	put(e, k, strlen(k));
	put(e, "\":", 2);
}

void st_ev_str(struct st_evline *e, const char *k, const char *val)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *s = (const unsigned char *)val;

	key(e, k);
	if (!val) {
		put(e, "null", 4);
		return;
	}
	put(e, "\"", 1);
	while (*s && !e->bad) {
		const unsigned char *run = s;
		char esc[6];
		size_t n = 2;

		while (*s >= 0x20 && *s < 0x80 && *s != '"' && *s != '\\')
			s++;
		put(e, (const char *)run, (size_t)(s - run));
		if (!*s)
			break;
		if (*s >= 0x80) {
			/* jansson checks UTF-8 and refuses the whole event
			 * when it is not: leave such text to it. */
			e->bad = true;
			return;
		}
		esc[0] = '\\';
		switch (*s) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[*s >> 4];
			esc[5] = hex[*s & 15];
			n = 6;
		}
		put(e, esc, n);
		s++;
	}
	put(e, "\"", 1);
}

void st_ev_int(struct st_evline *e, const char *k, long long val)
{
	char d[24], *p = d + sizeof(d);
	unsigned long long u = val < 0 ? 0ull - (unsigned long long)val : (unsigned long long)val;

	key(e, k);
	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (val < 0)
		*--p = '-';
	put(e, p, (size_t)(d + sizeof(d) - p));
}

/* As jansson prints a real: "%.17g", ".0" added to a whole number, the
 * exponent without '+' and leading zeros. */
void st_ev_real(struct st_evline *e, const char *k, double val)
{
	char d[40], *x;
	int n;

	key(e, k);
	if (!isfinite(val)) {
		e->bad = true; /* json_real refuses it */
		return;
	}
	n = snprintf(d, sizeof(d), "%.17g", val);
	if (n <= 0 || (size_t)n >= sizeof(d) - 3 || strspn(d, "0123456789+-.e") != (size_t)n) {
		e->bad = true;
		return;
	}
	if (!strchr(d, '.') && !strchr(d, 'e')) {
		memcpy(d + n, ".0", 3);
		n += 2;
	}
	x = strchr(d, 'e');
	if (x) {
		char *from = x + 1, *to = x + 1;

		if (*to == '-')
			to++, from++;
		else if (*from == '+')
			from++;
		while (*from == '0' && from[1])
			from++;
		if (from != to) {
			memmove(to, from, (size_t)(d + n + 1 - from));
			n -= (int)(from - to);
		}
	}
	put(e, d, (size_t)n);
}

void st_ev_bool(struct st_evline *e, const char *k, bool val)
{
	key(e, k);
	if (val)
		put(e, "true", 4);
	else
		put(e, "false", 5);
}

size_t st_ev_end(struct st_evline *e)
{
	put(e, "}\n", 2);
	if (e->bad || e->len >= e->cap)
		return 0;
	e->buf[e->len] = '\0';
	return e->len;
}

/* --------------------------------------------------------- the time */

void st_event_ts(char out[32])
{
	/* gmtime_r takes glibc's time-zone lock: a thread formats a second
	 * once and keeps it for the events of that second. */
	static _Thread_local time_t sec = (time_t)-1;
	static _Thread_local char text[24];
	struct timespec ts;
	int ms;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_sec != sec) {
		struct tm tm;

		gmtime_r(&ts.tv_sec, &tm);
		strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &tm);
		sec = ts.tv_sec;
	}
	ms = (int)(ts.tv_nsec / 1000000) % 1000;
	memcpy(out, text, 19);
	out[19] = '.';
	out[20] = (char)('0' + ms / 100);
	out[21] = (char)('0' + ms / 10 % 10);
	out[22] = (char)('0' + ms % 10);
	out[23] = 'Z';
	out[24] = '\0';
}

/* ------------------------------------------------------- the events */

/* As output.c's step_fields: where the board is and, after an error, what
 * failed; members between "code" and "ts" in key order, so split in two. */
static void code_fields(struct st_evline *e, int code, imp_err rc)
{
	st_ev_int(e, "code", code);
	if (rc != IMP_OK)
		st_ev_str(e, "code_name", imp_err_name(rc));
}

static void event_fields(struct st_evline *e, const char *event, imp_err rc,
			 enum jnl_state failed)
{
	st_ev_str(e, "event", event);
	if (rc != IMP_OK)
		st_ev_str(e, "failed_step", jnl_state_name(failed));
}

static void step_members(struct st_evline *e, enum jnl_state state, imp_err rc,
			 enum jnl_state failed)
{
	int step = st_step_number(rc != IMP_OK ? failed : state);

	if (step > 0) {
		st_ev_int(e, "step", step);
		st_ev_int(e, "steps", ST_STEPS);
	}
}

size_t st_board_event_text(const struct prov_progress *p, const char *ts, char *buf, size_t cap)
{
	struct st_evline e;

	if (!p->fixture || !p->message)
		return 0;
	st_ev_begin(&e, buf, cap);
	code_fields(&e, (int)p->rc, p->rc);
	st_ev_real(&e, "elapsed_s", p->elapsed_s);
	event_fields(&e, "board", p->rc, p->failed_step);
	st_ev_str(&e, "fixture", p->fixture);
	st_ev_str(&e, "message", p->message);
	st_ev_str(&e, "serial", p->serial[0] ? p->serial : NULL);
	st_ev_str(&e, "state", jnl_state_name(p->state));
	step_members(&e, p->state, p->rc, p->failed_step);
	st_ev_str(&e, "ts", ts);
	st_ev_str(&e, "uid", p->uid[0] ? p->uid : NULL);
	return st_ev_end(&e);
}

size_t st_fixture_event_text(const struct prov_progress *p, const char *ts, char *buf,
			     size_t cap)
{
	struct st_evline e;

	if (!p->fixture || !p->message)
		return 0;
	st_ev_begin(&e, buf, cap);
	st_ev_str(&e, "event", "fixture");
	st_ev_str(&e, "fixture", p->fixture);
	st_ev_str(&e, "message", p->message);
	st_ev_int(&e, "taken", (int)p->boards);
	st_ev_str(&e, "ts", ts);
	st_ev_str(&e, "waiting", p->activity == PROV_ACT_WAIT_BOARD ? "board" : "removal");
	return st_ev_end(&e);
}

size_t st_result_event_text(const char *fixture, const struct prov_result *r,
			    const char *record_id, const char *ts, char *buf, size_t cap)
{
	struct st_evline e;

	if (!fixture)
		return 0;
	st_ev_begin(&e, buf, cap);
	st_ev_bool(&e, "already_done", r->already_done);
	code_fields(&e, (int)r->rc, r->rc);
	event_fields(&e, "result", r->rc, r->failed_step);
	st_ev_str(&e, "fixture", fixture);
	if (r->not_taken)
		st_ev_bool(&e, "not_taken", true);
	st_ev_str(&e, "record_id", record_id && record_id[0] ? record_id : NULL);
	st_ev_real(&e, "seconds", r->seconds);
	st_ev_str(&e, "serial", r->serial[0] ? r->serial : NULL);
	st_ev_str(&e, "state", jnl_state_name(r->quarantined ? JNL_ST_QUARANTINED : r->state));
	step_members(&e, r->state, r->rc, r->failed_step);
	st_ev_str(&e, "ts", ts);
	st_ev_str(&e, "uid", r->uid[0] ? r->uid : NULL);
	return st_ev_end(&e);
}

/* ------------------------------------------------------- the writing */

void st_out_line(const char *line, size_t n)
{
	imp_write_line(STDOUT_FILENO, line, n);
}

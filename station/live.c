/*
 * The live station board (live.h). Plain VT100/ANSI escapes: the
 * alternate screen while it runs (the scrollback does not grow), absolute
 * cursor addressing for every line, erase to end of line, no wrap: every
 * line is cut to one column less than the width. A drawing thread redraws
 * at most 10 times a second, at once after a SIGWINCH, at least once a
 * second (the clocks), and reads the totals from the journal at most
 * twice a second.
 *
 * Layout, top to bottom: the header (the journal's totals, this run's
 * yield and boards per hour, the run's time), a title line, one row per
 * fixture sorted by name (condensed into cells when they do not fit, with
 * a summary line for those that still do not), and the failures region
 * (the newest first).
 */
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "imprint/log.h"
#include "imprint/util.h"
#include "live.h"

#define LIVE_FAILURES 32     /* failures kept (the region shows what fits) */
#define LIVE_LOG_MAX (4u << 20)
#define STEPS (JNL_ST_DONE + 1) /* CONNECT .. DONE: step k of 11 */
#define CELL_W 22            /* a condensed fixture cell */
#define LINE_MAX_W 1024

struct lfx {
	char name[128];       /* the configuration keeps names short; a longer one is cut */
	enum prov_activity act;
	enum jnl_state state;
	bool active;            /* a board runs on it now */
	bool seen;              /* any report yet */
	char uid[JNL_UID_HEX_MAX + 1];
	char serial[JNL_SERIAL_MAX];
	double started;         /* when the current (or last) board started */
	double seconds;         /* the last board's time, once finished */
	size_t fw_done, fw_total;
	char last[160];         /* the last finished board's result */
	char msg[160];          /* continuous: what the fixture waits for */
	char log_err[200];      /* the last error or warning naming the fixture */
	unsigned boards;
};

struct lfail {
	double when;
	char fixture[128];
	char step[16];
	char text[220];
};

static struct {
	pthread_mutex_t lock;
	bool active, continuous, stop;
	struct jnl *journal;
	struct lfx *fx;
	size_t n;
	struct lfail fail[LIVE_FAILURES];
	unsigned nfail;           /* failures seen in this run */
	unsigned run_done, run_failed, run_quarantined;
	uint64_t counts[JNL_ST__COUNT];
	double t0, counts_at;
	bool dirty;
	pthread_t thread;
	FILE *log;                /* log lines held back */
	char *log_buf;
	size_t log_len;
	unsigned log_dropped;
	struct sigaction old_winch;
} lv = { .lock = PTHREAD_MUTEX_INITIALIZER };

static volatile sig_atomic_t winch;

static void on_winch(int sig)
{
	(void)sig;
	winch = 1;
}

bool st_live_wanted(const struct station_ctx *ctx)
{
	const char *term = getenv("TERM");

	return !ctx->json && isatty(STDOUT_FILENO) && imp_log_get_level() <= IMP_LOG_INFO &&
	       term && *term && strcmp(term, "dumb") != 0;
}

bool st_live_active(void)
{
	return lv.active;
}

/* ---------------------------------------------------------------- model */

static int by_name(const void *a, const void *b)
{
	return strverscmp(((const struct lfx *)a)->name, ((const struct lfx *)b)->name);
}

static struct lfx *find_fx(const char *name)
{
	for (size_t i = 0; i < lv.n; i++)
		if (strcmp(lv.fx[i].name, name) == 0)
			return &lv.fx[i];
	return NULL;
}

static void add_failure(struct lfx *f, const char *step, const char *text)
{
	struct lfail *e = &lv.fail[lv.nfail % LIVE_FAILURES];

	e->when = imp_now_s();
	snprintf(e->fixture, sizeof(e->fixture), "%s", f->name);
	snprintf(e->step, sizeof(e->step), "%s", step);
	snprintf(e->text, sizeof(e->text), "%s", text);
	lv.nfail++;
}

/* The text of a failure: the fixture's own error line if it logged one
 * for this board, else the error's description. */
static void failure_text(const struct lfx *f, const struct prov_progress *p, char *out,
			 size_t cap)
{
	const char *id = p->serial[0] ? p->serial : p->uid;

	if (f->log_err[0])
		snprintf(out, cap, "%s%s%s", id, *id ? ": " : "", f->log_err);
	else
		snprintf(out, cap, "%s%s%s (%s)", id, *id ? ": " : "", imp_err_str(p->rc),
			 imp_err_name(p->rc));
}

void st_live_progress(const struct prov_progress *p)
{
	struct lfx *f;
	char text[220];
	double now = imp_now_s();

	pthread_mutex_lock(&lv.lock);
	f = find_fx(p->fixture);
	if (!f)
		goto out;
	f->seen = true;
	f->act = p->activity;
	if (p->boards)
		f->boards = p->boards;
	switch (p->activity) {
	case PROV_ACT_WAIT_BOARD:
	case PROV_ACT_WAIT_REMOVAL:
		f->active = false;
		snprintf(f->msg, sizeof(f->msg), "%s", p->message);
		break;
	case PROV_ACT_FLASH:
		f->fw_done = p->fw_done;
		f->fw_total = p->fw_total;
		break;
	case PROV_ACT_BOARD:
		if (!f->active) {
			/* a new board on the fixture */
			f->active = true;
			f->started = now - p->elapsed_s;
			f->log_err[0] = '\0';
			f->msg[0] = '\0';
		}
		/* a rejected board reports FAILED: keep the step it failed at */
		if (p->state < JNL_ST_DONE || p->rc == IMP_OK)
			f->state = p->state;
		snprintf(f->uid, sizeof(f->uid), "%s", p->uid);
		snprintf(f->serial, sizeof(f->serial), "%s", p->serial);
		f->fw_done = f->fw_total = 0;
		if (p->rc != IMP_OK) {
			f->active = false;
			f->seconds = p->elapsed_s;
			failure_text(f, p, text, sizeof(text));
			if (p->rc == IMP_ERR_QUARANTINE) {
				lv.run_quarantined++;
				snprintf(f->last, sizeof(f->last), "QUARANTINED %s", p->uid);
			} else if (p->rc != IMP_ERR_INTERRUPTED) {
				lv.run_failed++;
				snprintf(f->last, sizeof(f->last), "FAILED at %s: %s%s",
					 jnl_state_name(f->state), imp_err_name(p->rc),
					 p->state == JNL_ST_FAILED ? " (rejected)" : "");
			} else {
				snprintf(f->last, sizeof(f->last), "stopped at %s (resumable)",
					 jnl_state_name(p->state));
			}
			if (p->rc != IMP_ERR_INTERRUPTED)
				add_failure(f, jnl_state_name(f->state), text);
		} else if (p->state == JNL_ST_DONE) {
			f->active = false;
			f->seconds = p->elapsed_s;
			lv.run_done++;
			snprintf(f->last, sizeof(f->last), "DONE %s", p->serial);
		}
		break;
	}
	lv.dirty = true;
out:
	pthread_mutex_unlock(&lv.lock);
}

void st_live_result(const char *fixture, const struct prov_result *r)
{
	struct lfx *f;

	pthread_mutex_lock(&lv.lock);
	f = find_fx(fixture);
	if (f && r->already_done) {
		f->seen = true;
		f->active = false;
		f->act = PROV_ACT_BOARD;
		f->state = JNL_ST_DONE;
		snprintf(f->serial, sizeof(f->serial), "%s", r->serial);
		snprintf(f->last, sizeof(f->last), "DONE %s (already done)", r->serial);
		lv.dirty = true;
	}
	pthread_mutex_unlock(&lv.lock);
}

/* Log lines while the board is up: held back, and a fixture's own error
 * or warning ("NAME: ...") kept for its failure line. */
static void sink(void *arg, enum imp_log_level level, const char *prog, const char *lname,
		 const char *msg)
{
	(void)arg;
	pthread_mutex_lock(&lv.lock);
	if (lv.log && lv.log_len < LIVE_LOG_MAX) {
		fprintf(lv.log, "%s: %s: %s\n", prog, lname, msg);
		fflush(lv.log);
	} else {
		lv.log_dropped++;
	}
	if (level <= IMP_LOG_WARN) {
		for (size_t i = 0; i < lv.n; i++) {
			size_t k = strlen(lv.fx[i].name);

			if (strncmp(msg, lv.fx[i].name, k) == 0 && msg[k] == ':' && msg[k + 1] == ' ') {
				if (level == IMP_LOG_ERROR || !lv.fx[i].log_err[0])
					snprintf(lv.fx[i].log_err, sizeof(lv.fx[i].log_err), "%s",
						 msg + k + 2);
				break;
			}
		}
	}
	lv.dirty = true;
	pthread_mutex_unlock(&lv.lock);
}

/* --------------------------------------------------------------- frame */

struct frame {
	char (*line)[LINE_MAX_W];
	int n, cap, width;
};

/* Append one line, cut to the width; control bytes and non-ASCII become '?'. */
static void put(struct frame *fr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct frame *fr, const char *fmt, ...)
{
	char tmp[LINE_MAX_W * 2];
	va_list ap;
	char *l;
	int k;

	if (fr->n >= fr->cap)
		return;
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	l = fr->line[fr->n++];
	for (k = 0; tmp[k] && k < fr->width && k < LINE_MAX_W - 1; k++)
		l[k] = (unsigned char)tmp[k] < 0x20 || (unsigned char)tmp[k] > 0x7e ? '?' : tmp[k];
	while (k > 0 && l[k - 1] == ' ')
		k--;
	l[k] = '\0';
}

static void bar(char *out, size_t cap, size_t done, size_t total)
{
	char b[11];
	unsigned pct = total ? (unsigned)(done * 100 / total) : 0;
	unsigned full = pct / 10;

	for (unsigned i = 0; i < 10; i++)
		b[i] = i < full ? '#' : '-';
	b[10] = '\0';
	snprintf(out, cap, "[%s]%4u%%", b, pct);
}

static const char *status_word(const struct lfx *f)
{
	if (!f->seen)
		return "-";
	if (f->act == PROV_ACT_WAIT_BOARD)
		return "waiting";
	if (f->act == PROV_ACT_WAIT_REMOVAL)
		return "remove";
	if (f->active)
		return jnl_state_name(f->state);
	if (strncmp(f->last, "DONE", 4) == 0)
		return "DONE";
	if (strncmp(f->last, "QUAR", 4) == 0)
		return "QUARANT";
	if (strncmp(f->last, "FAILED", 6) == 0)
		return "FAILED";
	return jnl_state_name(f->state);
}

static void step_of(const struct lfx *f, char *out, size_t cap)
{
	if (f->seen && (f->active || f->act == PROV_ACT_BOARD) && f->state <= JNL_ST_DONE)
		snprintf(out, cap, "%d/%d", (int)f->state + 1, STEPS);
	else
		snprintf(out, cap, "-");
}

static double fx_time(const struct lfx *f, double now)
{
	if (f->active)
		return now - f->started;
	return f->seconds;
}

static void full_row(struct frame *fr, const struct lfx *f, int namew, double now)
{
	char step[24], detail[80];

	step_of(f, step, sizeof(step));
	if (f->active && f->fw_total)
		bar(detail, sizeof(detail), f->fw_done, f->fw_total);
	else if (f->serial[0])
		snprintf(detail, sizeof(detail), "%s", f->serial);
	else
		snprintf(detail, sizeof(detail), "%.12s", f->uid);
	put(fr, "%-*s %5s %-9s %-16s %6.1fs  %s%s%s", namew, f->name, step, status_word(f),
	    detail, fx_time(f, now), f->last[0] ? f->last : "-",
	    f->msg[0] && !f->active ? " | " : "", f->msg[0] && !f->active ? f->msg : "");
}

static void cell(char *out, size_t cap, const struct lfx *f)
{
	char step[24], what[16];

	step_of(f, step, sizeof(step));
	if (f->active && f->fw_total)
		snprintf(what, sizeof(what), "FW %3u%%",
			 (unsigned)(f->fw_done * 100 / (f->fw_total ? f->fw_total : 1)));
	else
		snprintf(what, sizeof(what), "%.9s", status_word(f));
	snprintf(out, cap, "%-6.6s %5s %-9s", f->name, step, what);
}

/* The fixtures from index `shown` on, in one line: how many, and what they do. */
static void more_line(struct frame *fr, size_t shown)
{
	unsigned running = 0, waiting = 0, done = 0, failed = 0;

	for (size_t i = shown; i < lv.n; i++) {
		const char *w = status_word(&lv.fx[i]);

		if (lv.fx[i].active)
			running++;
		else if (strcmp(w, "DONE") == 0)
			done++;
		else if (strcmp(w, "FAILED") == 0 || strcmp(w, "QUARANT") == 0)
			failed++;
		else
			waiting++;
	}
	put(fr, "+%zu %s (%s..%s): %u running, %u done, %u failed, %u other", lv.n - shown,
	    shown ? "more" : "fixtures", lv.fx[shown].name, lv.fx[lv.n - 1].name, running, done,
	    failed, waiting);
}

static void build(struct frame *fr, int rows, int cols, bool final)
{
	double now = imp_now_s(), el = now - lv.t0;
	uint64_t inflight = 0;
	unsigned finished = lv.run_done + lv.run_failed + lv.run_quarantined;
	int namew = 7, avail, fmax, fshow = 0, per_row, need;
	char yield[16], rate[16];
	size_t shown = 0;
	const char *tail = final ? "  (stopped)" : lv.continuous ? "  (ctrl-c stops; resumable)" : "";

	fr->n = 0;
	fr->width = cols > 1 ? cols - 1 : 1;
	for (int s = JNL_ST_CONNECT; s < JNL_ST_DONE; s++)
		inflight += lv.counts[s];
	if (finished)
		snprintf(yield, sizeof(yield), "%.1f%%", 100.0 * lv.run_done / finished);
	else
		snprintf(yield, sizeof(yield), "-");
	if (el >= 1.0)
		snprintf(rate, sizeof(rate), "%.0f/h", lv.run_done * 3600.0 / el);
	else
		snprintf(rate, sizeof(rate), "-/h");
	put(fr, "done %llu  failed %llu  quarantined %llu  in progress %llu  yield %s  %s  "
		"%02d:%02d:%02d",
	    (unsigned long long)lv.counts[JNL_ST_DONE], (unsigned long long)lv.counts[JNL_ST_FAILED],
	    (unsigned long long)lv.counts[JNL_ST_QUARANTINED], (unsigned long long)inflight, yield,
	    rate, (int)(el / 3600), (int)(el / 60) % 60, (int)el % 60);
	if (rows < 3)
		return;
	/* the failures region: up to a sixth of the screen, at least one line */
	fmax = rows / 6 < 1 ? 1 : rows / 6;
	if (lv.nfail)
		fshow = (int)(lv.nfail < (unsigned)fmax ? lv.nfail : (unsigned)fmax);
	avail = rows - 2 - (fshow ? fshow + 1 : 0);
	if (avail < 1) {
		fshow = fshow ? 1 : 0;
		avail = rows - 2 - (fshow ? 2 : 0);
	}
	for (size_t i = 0; i < lv.n; i++) {
		int k = (int)strlen(lv.fx[i].name);

		if (k > namew)
			namew = k > 12 ? 12 : k;
	}
	if (avail >= 1 && lv.n <= (size_t)avail) {
		put(fr, "%-*s %5s %-9s %-16s %7s  %s%s", namew, "FIXTURE", "STEP", "STATE",
		    "SERIAL/PROGRESS", "TIME", "LAST RESULT", tail);
		for (size_t i = 0; i < lv.n; i++)
			full_row(fr, &lv.fx[i], namew, now);
	} else if (avail >= 2) {
		char rowbuf[LINE_MAX_W], c[64];

		per_row = (fr->width + 2) / (CELL_W + 2);
		if (per_row < 1)
			per_row = 1;
		need = (int)((lv.n + (size_t)per_row - 1) / (size_t)per_row);
		put(fr, "%zu fixtures, %d per row: name, step, state%s", lv.n, per_row, tail);
		if (need > avail)
			need = avail - 1; /* the last line says what is not shown */
		for (int r = 0; r < need; r++) {
			size_t len = 0;

			rowbuf[0] = '\0';
			for (int k = 0; k < per_row && shown < lv.n; k++, shown++) {
				cell(c, sizeof(c), &lv.fx[shown]);
				len += (size_t)snprintf(rowbuf + len, sizeof(rowbuf) - len, "%s%-*s",
							k ? "  " : "", CELL_W, c);
				if (len >= sizeof(rowbuf))
					len = sizeof(rowbuf) - 1;
			}
			put(fr, "%s", rowbuf);
		}
		if (shown < lv.n)
			more_line(fr, shown);
	} else {
		more_line(fr, 0); /* a tiny terminal: all the fixtures in one line */
	}
	/* the failures region takes what the fixtures left */
	if (fshow && rows - fr->n - 1 > fshow)
		fshow = rows - fr->n - 1;
	if (fshow > (int)lv.nfail)
		fshow = (int)lv.nfail;
	if (fshow > LIVE_FAILURES)
		fshow = LIVE_FAILURES;
	if (fshow && rows - fr->n == 1)
		fshow = 1; /* no room for the title: the newest failure alone */
	else if (fshow)
		put(fr, "-- failures: %u in this run%s --", lv.nfail,
		    lv.nfail > (unsigned)fshow ? " (newest first)" : "");
	if (fshow) {
		for (int k = 0; k < fshow; k++) {
			const struct lfail *e = &lv.fail[(lv.nfail - 1 - (unsigned)k) % LIVE_FAILURES];
			double t = e->when - lv.t0;

			put(fr, "%02d:%02d:%02d %s at %s, %s", (int)(t / 3600), (int)(t / 60) % 60,
			    (int)t % 60, e->fixture, e->step, e->text);
		}
	}
}

static void term_size(int *rows, int *cols)
{
	struct winsize ws;

	*rows = 24;
	*cols = 80;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0) {
		*rows = ws.ws_row;
		*cols = ws.ws_col;
	}
}

static void write_all(const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(STDOUT_FILENO, p, n);

		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static void draw(bool clear)
{
	struct frame fr;
	int rows, cols;
	char *out;
	size_t len = 0, cap;

	term_size(&rows, &cols);
	fr.cap = rows;
	fr.line = calloc((size_t)rows, sizeof(*fr.line));
	cap = (size_t)rows * (LINE_MAX_W + 16) + 64;
	out = malloc(cap);
	if (!fr.line || !out)
		goto cleanup;
	pthread_mutex_lock(&lv.lock);
	build(&fr, rows, cols, false);
	lv.dirty = false;
	pthread_mutex_unlock(&lv.lock);
	len += (size_t)snprintf(out + len, cap - len, "%s", clear ? "\033[2J" : "");
	for (int i = 0; i < fr.n; i++)
		len += (size_t)snprintf(out + len, cap - len, "\033[%d;1H%s\033[K", i + 1,
					fr.line[i]);
	if (fr.n < rows)
		len += (size_t)snprintf(out + len, cap - len, "\033[%d;1H\033[J", fr.n + 1);
	write_all(out, len);
cleanup:
	free(out);
	free(fr.line);
}

static void read_counts(void)
{
	uint64_t c[JNL_ST__COUNT];

	if (!lv.journal || jnl_counts(lv.journal, c) != IMP_OK)
		return;
	pthread_mutex_lock(&lv.lock);
	memcpy(lv.counts, c, sizeof(c));
	lv.counts_at = imp_now_s();
	lv.dirty = true;
	pthread_mutex_unlock(&lv.lock);
}

static void *draw_main(void *arg)
{
	double last = 0;
	bool clear = true;

	(void)arg;
	for (;;) {
		double now = imp_now_s();
		bool stop, dirty;

		pthread_mutex_lock(&lv.lock);
		stop = lv.stop;
		dirty = lv.dirty;
		pthread_mutex_unlock(&lv.lock);
		if (stop)
			break;
		if (winch) {
			winch = 0;
			clear = true;
		}
		if (now - lv.counts_at >= 0.5)
			read_counts();
		if (clear || (dirty && now - last >= 0.1) || now - last >= 1.0) {
			draw(clear);
			clear = false;
			last = now;
		}
		imp_sleep_us(50000);
	}
	return NULL;
}

/* ---------------------------------------------------- folded log lines */

/*
 * After the board: log lines on the terminal are folded at spaces to its
 * width (continuations indented), so a long error never wraps over what
 * the final board shows.
 */
static void fold_line(const char *line, int width)
{
	const char *p = line;
	int indent = 0;

	if (width < 20)
		width = 20;
	while (*p) {
		int room = width - 1 - indent, cut;
		size_t left = strlen(p);

		if ((int)left <= room) {
			fprintf(stderr, "%*s%s\n", indent, "", p);
			return;
		}
		for (cut = room; cut > room / 2 && p[cut] != ' '; cut--)
			;
		if (p[cut] != ' ')
			cut = room;
		fprintf(stderr, "%*s%.*s\n", indent, "", cut, p);
		p += cut;
		while (*p == ' ')
			p++;
		indent = 4;
	}
}

static int stderr_width(void)
{
	struct winsize ws;

	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return 80;
}

static void fold_text(const char *text, size_t len)
{
	int width = stderr_width();
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		char *one = strndup(p, n);

		if (one)
			fold_line(one, width);
		free(one);
		p += n + 1;
	}
}

static void fold_sink(void *arg, enum imp_log_level level, const char *prog, const char *lname,
		      const char *msg)
{
	char line[1200];

	(void)arg;
	(void)level;
	snprintf(line, sizeof(line), "%s: %s: %s", prog, lname, msg);
	fold_line(line, stderr_width());
	fflush(stderr);
}

/* ---------------------------------------------------------- start/stop */

bool st_live_model_init(const struct fmt_fixture *fx, size_t n, bool continuous)
{
	if (lv.active || lv.fx || n == 0)
		return false;
	lv.fx = calloc(n, sizeof(*lv.fx));
	if (!lv.fx)
		return false;
	for (size_t i = 0; i < n; i++)
		snprintf(lv.fx[i].name, sizeof(lv.fx[i].name), "%s", fx[i].name);
	qsort(lv.fx, n, sizeof(*lv.fx), by_name);
	lv.n = n;
	lv.continuous = continuous;
	lv.t0 = imp_now_s();
	lv.stop = false;
	lv.nfail = lv.run_done = lv.run_failed = lv.run_quarantined = 0;
	lv.log_dropped = 0;
	memset(lv.counts, 0, sizeof(lv.counts));
	lv.counts_at = 0;
	return true;
}

void st_live_model_free(void)
{
	free(lv.fx);
	lv.fx = NULL;
	lv.n = 0;
}

size_t st_live_render(int rows, int cols, bool final, char *out, size_t cap)
{
	struct frame fr;
	size_t len = 0;

	if (cap == 0)
		return 0;
	out[0] = '\0';
	fr.cap = rows > 0 ? rows : 1;
	fr.line = calloc((size_t)fr.cap, sizeof(*fr.line));
	if (!fr.line)
		return 0;
	pthread_mutex_lock(&lv.lock);
	build(&fr, rows, cols, final);
	pthread_mutex_unlock(&lv.lock);
	for (int i = 0; i < fr.n && len < cap; i++)
		len += (size_t)snprintf(out + len, cap - len, "%s\n", fr.line[i]);
	free(fr.line);
	return (size_t)fr.n;
}

bool st_live_start(struct jnl *journal, const struct fmt_fixture *fx, size_t n,
		   bool continuous)
{
	struct sigaction sa;

	if (!st_live_model_init(fx, n, continuous))
		return false;
	lv.journal = journal;
	lv.log = isatty(STDERR_FILENO) ? open_memstream(&lv.log_buf, &lv.log_len) : NULL;
	read_counts();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_winch;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGWINCH, &sa, &lv.old_winch);
	/* the alternate screen, the cursor hidden */
	write_all("\033[?1049h\033[?25l", 14);
	if (lv.log)
		imp_log_set_sink(sink, NULL);
	lv.active = true;
	if (pthread_create(&lv.thread, NULL, draw_main, NULL) != 0) {
		lv.active = false;
		imp_log_set_sink(NULL, NULL);
		write_all("\033[?25h\033[?1049l", 14);
		sigaction(SIGWINCH, &lv.old_winch, NULL);
		if (lv.log)
			fclose(lv.log);
		lv.log = NULL;
		free(lv.log_buf);
		lv.log_buf = NULL;
		st_live_model_free();
		return false;
	}
	return true;
}

void st_live_stop(void)
{
	struct frame fr;
	int rows, cols;

	if (!lv.active)
		return;
	pthread_mutex_lock(&lv.lock);
	lv.stop = true;
	pthread_mutex_unlock(&lv.lock);
	pthread_join(lv.thread, NULL);
	/* from now on log lines go to the terminal folded to its width */
	imp_log_set_sink(lv.log ? fold_sink : NULL, NULL);
	write_all("\033[?25h\033[?1049l", 14);
	sigaction(SIGWINCH, &lv.old_winch, NULL);
	lv.active = false;
	if (lv.log) {
		fclose(lv.log);
		lv.log = NULL;
		if (lv.log_len)
			fold_text(lv.log_buf, lv.log_len);
		if (lv.log_dropped)
			fprintf(stderr, "imprint: warning: %u more log lines were dropped while the "
					"live board ran\n", lv.log_dropped);
		fflush(stderr);
		free(lv.log_buf);
		lv.log_buf = NULL;
		lv.log_len = 0;
	}
	/* The final board stays on the normal screen, below the log. */
	read_counts();
	term_size(&rows, &cols);
	rows = rows > 6 ? rows - 2 : rows; /* room for the summary line and a prompt */
	fr.cap = rows;
	fr.line = calloc((size_t)rows, sizeof(*fr.line));
	if (fr.line) {
		pthread_mutex_lock(&lv.lock);
		build(&fr, rows, cols, true);
		pthread_mutex_unlock(&lv.lock);
		fflush(stdout);
		for (int i = 0; i < fr.n; i++) {
			write_all(fr.line[i], strlen(fr.line[i]));
			write_all("\n", 1);
		}
		free(fr.line);
	}
	st_live_model_free();
}

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>

#include "imprint/log.h"
#include "imprint/util.h"

static enum imp_log_level log_level = IMP_LOG_INFO;
static const char *log_prog = "imprint";
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static imp_log_sink_fn log_sink;
static void *log_sink_arg;

void imp_log_set_sink(imp_log_sink_fn fn, void *arg)
{
	pthread_mutex_lock(&log_lock);
	log_sink = fn;
	log_sink_arg = arg;
	pthread_mutex_unlock(&log_lock);
}

void imp_log_set_level(enum imp_log_level level)
{
	if ((int)level < (int)IMP_LOG_QUIET)
		level = IMP_LOG_QUIET;
	if (level > IMP_LOG_TRACE)
		level = IMP_LOG_TRACE;
	log_level = level;
}

enum imp_log_level imp_log_get_level(void)
{
	return log_level;
}

void imp_log_set_prog(const char *prog)
{
	log_prog = prog;
}

void imp_log(enum imp_log_level level, const char *fmt, ...)
{
	static const char *const names[] = { "", "error", "warning", "info", "debug", "trace" };
	char line[1024], *text = line, *big = NULL;
	va_list ap;
	int head, n;

	if (level > log_level || level <= IMP_LOG_QUIET)
		return;
	/* The line is formatted outside the lock, "prog: level: " and all,
	 * and written with one call: stderr has no buffer, so three calls
	 * were three writes with the lock held. */
	head = snprintf(line, sizeof(line), "%s: %s: ", log_prog, names[level]);
	if (head < 0 || (size_t)head >= sizeof(line))
		head = 0;
	va_start(ap, fmt);
	n = vsnprintf(line + head, sizeof(line) - (size_t)head - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(line) - (size_t)head - 1) {
		big = malloc((size_t)head + (size_t)n + 2);
		if (big) {
			memcpy(big, line, (size_t)head);
			va_start(ap, fmt);
			vsnprintf(big + head, (size_t)n + 1, fmt, ap);
			va_end(ap);
			text = big;
		} else {
			n = (int)(sizeof(line) - (size_t)head - 2); /* cut */
		}
	}
	pthread_mutex_lock(&log_lock);
	if (log_sink) {
		log_sink(log_sink_arg, level, log_prog, names[level], text + head);
		pthread_mutex_unlock(&log_lock);
	} else {
		pthread_mutex_unlock(&log_lock);
		/* Whole, and without a lock where one write is atomic. */
		text[head + n] = '\n';
		imp_write_line(STDERR_FILENO, text, (size_t)head + (size_t)n + 1);
	}
	free(big);
}

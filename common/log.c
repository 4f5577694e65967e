#include <stdarg.h>
#include <stdio.h>
#include <pthread.h>

#include "imprint/log.h"

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
	va_list ap;

	if (level > log_level || level <= IMP_LOG_QUIET)
		return;
	/* One line per call, whole, even with several fixture threads. */
	pthread_mutex_lock(&log_lock);
	if (log_sink) {
		char line[1024];

		va_start(ap, fmt);
		vsnprintf(line, sizeof(line), fmt, ap);
		va_end(ap);
		log_sink(log_sink_arg, level, log_prog, names[level], line);
		pthread_mutex_unlock(&log_lock);
		return;
	}
	fprintf(stderr, "%s: %s: ", log_prog, names[level]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	pthread_mutex_unlock(&log_lock);
}

/*
 * Logging to stderr with levels. Messages are lowercase, without a trailing
 * full stop. Never pass a secret (PIN, key material) to these functions.
 */
#ifndef IMPRINT_LOG_H
#define IMPRINT_LOG_H

enum imp_log_level {
	IMP_LOG_QUIET = 0, /* nothing at all */
	IMP_LOG_ERROR = 1,
	IMP_LOG_WARN = 2,
	IMP_LOG_INFO = 3,  /* default */
	IMP_LOG_DEBUG = 4,
	IMP_LOG_TRACE = 5,
};

void imp_log_set_level(enum imp_log_level level);
enum imp_log_level imp_log_get_level(void);
/* Prefix every line with this program name ("imprint", "imprint-vboard"). */
void imp_log_set_prog(const char *prog);

/*
 * Hand every line that passes the level to fn instead of writing it to
 * stderr (NULL: stderr again): prog and level name as the line's prefix
 * would have them, and the message (at most 1023 bytes). fn runs under the
 * log's lock: it must not log.
 */
typedef void (*imp_log_sink_fn)(void *arg, enum imp_log_level level, const char *prog,
				const char *level_name, const char *msg);
void imp_log_set_sink(imp_log_sink_fn fn, void *arg);

void imp_log(enum imp_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define IMP_ERROR(...) imp_log(IMP_LOG_ERROR, __VA_ARGS__)
#define IMP_WARN(...) imp_log(IMP_LOG_WARN, __VA_ARGS__)
#define IMP_INFO(...) imp_log(IMP_LOG_INFO, __VA_ARGS__)
#define IMP_DEBUG(...) imp_log(IMP_LOG_DEBUG, __VA_ARGS__)
#define IMP_TRACE(...) imp_log(IMP_LOG_TRACE, __VA_ARGS__)

#endif

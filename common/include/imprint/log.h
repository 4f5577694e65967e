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

void imp_log(enum imp_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define IMP_ERROR(...) imp_log(IMP_LOG_ERROR, __VA_ARGS__)
#define IMP_WARN(...) imp_log(IMP_LOG_WARN, __VA_ARGS__)
#define IMP_INFO(...) imp_log(IMP_LOG_INFO, __VA_ARGS__)
#define IMP_DEBUG(...) imp_log(IMP_LOG_DEBUG, __VA_ARGS__)
#define IMP_TRACE(...) imp_log(IMP_LOG_TRACE, __VA_ARGS__)

#endif

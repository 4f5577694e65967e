/*
 * Background delivery during `imprint provision` (exp/export.h,
 * exp_background_start): one thread runs exp_deliver() through the https
 * exporter every second, and once more at the end. It never fails the run:
 * errors are logged and the records stay in the outbox for the next pass or
 * the next `imprint export`.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exp/export.h"
#include "imprint/log.h"

#define BG_INTERVAL_S 1
#define BG_RETRY_FOR_S 5.0   /* one pass gives up after this, the next one tries again */
#define BG_TIMEOUT_MS 10000

struct exp_background {
	struct jnl *j;
	const struct exp_driver *d;
	void *state;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	atomic_bool stop;
	uint64_t delivered;
};

static bool stop_cb(void *arg)
{
	struct exp_background *bg = arg;

	return atomic_load(&bg->stop);
}

static void pass(struct exp_background *bg, bool final)
{
	struct exp_deliver_opts o = { 0 };
	struct exp_stats st;
	imp_err rc;

	if (!final) {
		o.stop = stop_cb;
		o.stop_arg = bg;
	}
	rc = exp_deliver(bg->j, bg->d, bg->state, &o, &st, NULL, NULL);
	bg->delivered += st.accepted + st.duplicates;
	if (rc != IMP_OK)
		IMP_WARN("background delivery: %s; the records stay in the outbox (imprint export "
			 "delivers them)", imp_err_str(rc));
	else if (st.rejected)
		IMP_WARN("background delivery: %llu records rejected (imprint export --rejected)",
			 (unsigned long long)st.rejected);
}

static void *run(void *arg)
{
	struct exp_background *bg = arg;

	for (;;) {
		struct timespec until;

		pthread_mutex_lock(&bg->mu);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += BG_INTERVAL_S;
		while (!atomic_load(&bg->stop) &&
		       pthread_cond_timedwait(&bg->cv, &bg->mu, &until) == 0)
			;
		pthread_mutex_unlock(&bg->mu);
		if (atomic_load(&bg->stop))
			break;
		pass(bg, false);
	}
	pass(bg, true); /* the final flush */
	return NULL;
}

imp_err exp_background_start(struct jnl *j, const struct fmt_config *cfg,
			     struct exp_background **out)
{
	struct exp_settings s = { 0 };
	struct exp_background *bg;
	imp_err rc;

	*out = NULL;
	if (!cfg->registry.url)
		return IMP_OK;
	bg = calloc(1, sizeof(*bg));
	if (!bg)
		return IMP_ERR_NOMEM;
	rc = exp_settings_from_config(cfg, &s);
	if (rc != IMP_OK) {
		free(bg);
		return rc;
	}
	s.retry_for_s = BG_RETRY_FOR_S;
	s.timeout_ms = BG_TIMEOUT_MS;
	bg->j = j;
	bg->d = exp_driver_find("https");
	rc = bg->d ? bg->d->open(&s, &bg->state) : IMP_ERR_INTERNAL;
	if (rc != IMP_OK) {
		free(bg);
		return rc;
	}
	pthread_mutex_init(&bg->mu, NULL);
	pthread_cond_init(&bg->cv, NULL);
	atomic_store(&bg->stop, false);
	if (pthread_create(&bg->th, NULL, run, bg) != 0) {
		bg->d->close(bg->state);
		pthread_mutex_destroy(&bg->mu);
		pthread_cond_destroy(&bg->cv);
		free(bg);
		return IMP_ERR_INTERNAL;
	}
	IMP_INFO("delivering records to %s in the background", s.url);
	*out = bg;
	return IMP_OK;
}

uint64_t exp_background_stop(struct exp_background *bg)
{
	uint64_t n;

	if (!bg)
		return 0;
	pthread_mutex_lock(&bg->mu);
	atomic_store(&bg->stop, true);
	pthread_cond_broadcast(&bg->cv);
	pthread_mutex_unlock(&bg->mu);
	pthread_join(bg->th, NULL);
	bg->d->close(bg->state);
	pthread_mutex_destroy(&bg->mu);
	pthread_cond_destroy(&bg->cv);
	n = bg->delivered;
	free(bg);
	return n;
}

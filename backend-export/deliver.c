/*
 * The outbox pump (exp_deliver), the driver table and small helpers.
 */
#include <stdlib.h>
#include <string.h>

#include "exp/export.h"
#include "imprint/log.h"
#include "imprint/util.h"

extern const struct exp_driver exp_driver_aws_iot;
extern const struct exp_driver exp_driver_azure_dps;
extern const struct exp_driver exp_driver_csv;
extern const struct exp_driver exp_driver_https;
extern const struct exp_driver exp_driver_manifest;
extern const struct exp_driver exp_driver_microchip_manifest;

/* Alphabetical; exp_driver_find relies on it. */
const struct exp_driver *const exp_drivers[] = {
	&exp_driver_aws_iot,
	&exp_driver_azure_dps,
	&exp_driver_csv,
	&exp_driver_https,
	&exp_driver_manifest,
	&exp_driver_microchip_manifest,
	NULL,
};

const struct exp_driver *exp_driver_find(const char *name)
{
	for (size_t i = 0; exp_drivers[i]; i++) {
		int cmp = strcmp(name, exp_drivers[i]->name);

		if (cmp == 0)
			return exp_drivers[i];
		if (cmp < 0)
			break;
	}
	return NULL;
}

void exp_ids_free(char **ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

imp_err exp_deliver_commit(struct jnl *j, char **ids, size_t n)
{
	return jnl_outbox_delivered_many(j, (const char *const *)ids, n);
}

/* A batch of pending rows, copied out of the journal callback. */
struct batch {
	struct exp_record *recs;
	size_t n, cap;
};

static void batch_clear(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		free((char *)b->recs[i].id);
		free((char *)b->recs[i].serial);
		free((char *)b->recs[i].uid);
		free((char *)b->recs[i].jws);
	}
	b->n = 0;
}

static imp_err batch_add(struct batch *b, const struct jnl_outbox_entry *e)
{
	struct exp_record *r = &b->recs[b->n];

	r->id = strdup(e->record_id ? e->record_id : "");
	r->serial = strdup(e->serial ? e->serial : "");
	r->uid = strdup(e->uid ? e->uid : "");
	r->jws = strdup(e->jws ? e->jws : "");
	r->kind = e->kind;
	b->n++;
	if (!r->id || !r->serial || !r->uid || !r->jws)
		return IMP_ERR_NOMEM;
	return IMP_OK;
}

struct run {
	struct jnl *j;
	const struct exp_driver *d;
	void *state;
	struct exp_deliver_opts o;
	struct exp_stats st;
	struct batch b;
	struct exp_result *res;
	char **ids;        /* durable_on_close: accepted, not yet marked */
	size_t nids, capids;
	imp_err rc;
};

static imp_err keep_id(struct run *r, const char *id)
{
	if (r->nids == r->capids) {
		size_t nc = r->capids ? r->capids * 2 : 256;
		char **t = realloc(r->ids, nc * sizeof(*t));

		if (!t)
			return IMP_ERR_NOMEM;
		r->ids = t;
		r->capids = nc;
	}
	r->ids[r->nids] = strdup(id);
	if (!r->ids[r->nids])
		return IMP_ERR_NOMEM;
	r->nids++;
	return IMP_OK;
}

/* Push the collected batch and record every result: the acknowledged
 * records leave the outbox together, in one journal transaction. */
static imp_err push_batch(struct run *r)
{
	const char **acked = NULL;
	size_t progressed = 0, nacked = 0;
	imp_err rc;

	memset(r->res, 0, r->b.n * sizeof(*r->res));
	r->st.batches++;
	r->st.pushed += r->b.n;
	rc = r->d->push(r->state, r->b.recs, r->b.n, r->res);
	if (rc != IMP_OK) {
		r->st.failed++;
		if (!r->d->durable_on_close)
			for (size_t i = 0; i < r->b.n; i++)
				jnl_outbox_attempt_failed(r->j, r->b.recs[i].id,
								   imp_err_str(rc));
		return rc;
	}
	acked = calloc(r->b.n ? r->b.n : 1, sizeof(*acked));
	if (!acked)
		return IMP_ERR_NOMEM;
	for (size_t i = 0; i < r->b.n; i++) {
		const struct exp_record *rec = &r->b.recs[i];
		const struct exp_result *res = &r->res[i];

		rc = IMP_OK;
		switch (res->status) {
		case EXP_ACCEPTED:
		case EXP_DUPLICATE_SAME:
			if (res->status == EXP_ACCEPTED)
				r->st.accepted++;
			else
				r->st.duplicates++;
			progressed++;
			if (r->d->durable_on_close)
				rc = keep_id(r, rec->id);
			else
				acked[nacked++] = rec->id;
			break;
		case EXP_REJECTED:
			r->st.rejected++;
			progressed++;
			IMP_WARN("record %s (serial %s) rejected: %s", rec->id, rec->serial,
				 res->reason);
			rc = jnl_outbox_rejected(r->j, rec->id,
							  res->reason[0] ? res->reason : "rejected");
			break;
		case EXP_PENDING:
			rc = jnl_outbox_attempt_failed(
				r->j, rec->id, res->reason[0] ? res->reason : "no result for it");
			break;
		}
		if (rc != IMP_OK)
			break;
	}
	if (rc == IMP_OK)
		rc = jnl_outbox_delivered_many(r->j, acked, nacked);
	free(acked);
	if (rc != IMP_OK)
		return rc;
	if (progressed == 0) {
		IMP_ERROR("the backend answered without a result for any record of the batch");
		return IMP_ERR_EXPORT;
	}
	return IMP_OK;
}

/* Single pass (durable_on_close): batches are pushed from inside the list. */
static int pass_cb(void *arg, const struct jnl_outbox_entry *e)
{
	struct run *r = arg;

	r->rc = batch_add(&r->b, e);
	if (r->rc == IMP_OK && r->b.n == r->b.cap) {
		r->rc = push_batch(r);
		batch_clear(&r->b);
	}
	if (r->rc != IMP_OK)
		return 1;
	return r->o.stop && r->o.stop(r->o.stop_arg);
}

static int batch_cb(void *arg, const struct jnl_outbox_entry *e)
{
	struct run *r = arg;

	if (r->b.n == r->b.cap)
		return 1;
	r->rc = batch_add(&r->b, e);
	return r->rc != IMP_OK;
}

imp_err exp_deliver(struct jnl *j, const struct exp_driver *d, void *state,
		    const struct exp_deliver_opts *opts, struct exp_stats *stats,
		    char ***accepted_ids, size_t *accepted_n)
{
	struct run r = { .j = j, .d = d, .state = state };
	uint64_t done = 0;
	double t0 = imp_now_s();
	imp_err rc = IMP_OK;

	if (opts)
		r.o = *opts;
	if (r.o.batch == 0)
		r.o.batch = EXP_BATCH_DEFAULT;
	if (r.o.batch > EXP_BATCH_MAX)
		r.o.batch = EXP_BATCH_MAX;
	if (accepted_ids) {
		*accepted_ids = NULL;
		*accepted_n = 0;
	}
	r.b.cap = r.o.batch;
	r.b.recs = calloc(r.b.cap, sizeof(*r.b.recs));
	r.res = calloc(r.b.cap, sizeof(*r.res));
	if (!r.b.recs || !r.res) {
		rc = IMP_ERR_NOMEM;
		goto cleanup;
	}
	if (d->durable_on_close) {
		/* Accepted records stay pending until close: one pass over the list. */
		rc = jnl_outbox_pending(j, (unsigned)r.o.max_records, pass_cb, &r);
		if (rc == IMP_OK)
			rc = r.rc;
		if (rc == IMP_OK && r.b.n)
			rc = push_batch(&r);
		goto cleanup;
	}
	for (;;) {
		unsigned want = r.o.batch;

		if (r.o.stop && r.o.stop(r.o.stop_arg))
			break;
		if (r.o.max_records && r.o.max_records - done < want)
			want = (unsigned)(r.o.max_records - done);
		if (want == 0)
			break;
		batch_clear(&r.b);
		r.rc = IMP_OK;
		rc = jnl_outbox_pending(j, want, batch_cb, &r);
		if (rc == IMP_OK)
			rc = r.rc;
		if (rc != IMP_OK || r.b.n == 0)
			break;
		rc = push_batch(&r);
		if (rc != IMP_OK)
			break;
		done += r.b.n;
	}
cleanup:
	batch_clear(&r.b);
	free(r.b.recs);
	free(r.res);
	r.st.seconds = imp_now_s() - t0;
	if (stats)
		*stats = r.st;
	if (accepted_ids && d->durable_on_close) {
		*accepted_ids = r.ids;
		*accepted_n = r.nids;
	} else {
		exp_ids_free(r.ids, r.nids);
	}
	return rc;
}

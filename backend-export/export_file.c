/*
 * File exports (drivers with durable_on_close) read the outbox and never
 * change it: delivery to the registry keeps its own state in the outbox
 * (delivered_at, rejected_reason), a file export keeps its own progress in
 * a file of its own, so one export can never make a record "delivered" for
 * another, and the same export can be made again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp/export.h"
#include "imprint/log.h"
#include "imprint/util.h"

#define FX_BATCH 256

struct fx {
	const struct exp_driver *d;
	void *state;
	const char *since;
	struct exp_record recs[FX_BATCH];
	struct exp_result res[FX_BATCH];
	char *created[FX_BATCH];
	size_t n;
	struct exp_stats *st;
	char *last;          /* created of the newest record written */
	imp_err rc;
};

static void fx_clear(struct fx *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free((char *)f->recs[i].id);
		free((char *)f->recs[i].serial);
		free((char *)f->recs[i].uid);
		free((char *)f->recs[i].jws);
		free(f->created[i]);
	}
	f->n = 0;
}

static imp_err fx_flush(struct fx *f)
{
	imp_err rc;

	if (f->n == 0)
		return IMP_OK;
	memset(f->res, 0, sizeof(f->res[0]) * f->n);
	rc = f->d->push(f->state, f->recs, f->n, f->res);
	if (rc != IMP_OK)
		return rc;
	for (size_t i = 0; i < f->n; i++) {
		switch (f->res[i].status) {
		case EXP_ACCEPTED:
		case EXP_DUPLICATE_SAME:
			f->st->accepted++;
			if (!f->last || strcmp(f->created[i], f->last) > 0) {
				free(f->last);
				f->last = strdup(f->created[i]);
			}
			break;
		case EXP_REJECTED:
			f->st->rejected++;
			IMP_WARN("%s cannot carry record %s (%s): %s; it is not in the file, and "
				 "the outbox is unchanged", f->d->name, f->recs[i].id,
				 f->recs[i].serial, f->res[i].reason);
			break;
		case EXP_PENDING:
			break;
		}
	}
	f->st->pushed += f->n;
	fx_clear(f);
	return IMP_OK;
}

static int fx_row(void *arg, const struct jnl_outbox_row *r)
{
	struct fx *f = arg;
	struct exp_record *e = &f->recs[f->n];

	if (r->rejected_reason)
		return 0; /* the registry refused it for good: not a device to import */
	if (f->since && r->created && strcmp(r->created, f->since) <= 0)
		return 0;
	e->id = strdup(r->record_id ? r->record_id : "");
	e->serial = strdup(r->serial ? r->serial : "");
	e->uid = strdup(r->uid ? r->uid : "");
	e->jws = strdup(r->jws ? r->jws : "");
	e->kind = r->kind && strcmp(r->kind, "revocation") == 0 ? JNL_OUTBOX_REVOCATION
								 : JNL_OUTBOX_IDENTITY;
	f->created[f->n] = strdup(r->created ? r->created : "");
	f->n++;
	if (!e->id || !e->serial || !e->uid || !e->jws || !f->created[f->n - 1]) {
		f->rc = IMP_ERR_NOMEM;
		return 1;
	}
	if (f->n == FX_BATCH) {
		f->rc = fx_flush(f);
		if (f->rc != IMP_OK)
			return 1;
	}
	return 0;
}

imp_err exp_export_file(const char *journal, const struct exp_driver *d, void *state,
			const char *since, struct exp_stats *st, char **last)
{
	struct fx *f = calloc(1, sizeof(*f));
	imp_err rc;

	*last = NULL;
	if (!f)
		return IMP_ERR_NOMEM;
	f->d = d;
	f->state = state;
	f->since = since && *since ? since : NULL;
	f->st = st;
	rc = jnl_outbox_scan(journal, JNL_OUTBOX_ALL, fx_row, f);
	if (rc == IMP_OK)
		rc = f->rc;
	if (rc == IMP_OK)
		rc = fx_flush(f);
	fx_clear(f);
	if (rc == IMP_OK)
		*last = f->last;
	else
		free(f->last);
	free(f);
	return rc;
}

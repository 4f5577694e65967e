/*
 * The status object: the one builder behind `imprint status --json`,
 * `imprint report` and the dashboard (report.h).
 */
#include <stdio.h>
#include <string.h>

#include "formats/x509.h"
#include "hsm/org.h"
#include "imprint/log.h"
#include "report.h"
#include "run.h"

struct failure_list {
	json_t *arr;
};

static int failure_cb(void *arg, const struct jnl_board *b)
{
	struct failure_list *f = arg;

	json_array_append_new(f->arr, json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:s}", "uid",
						b->uid, "serial", b->serial, "state",
						jnl_state_name(b->state), "fixture", b->fixture,
						"code", (int)b->last_error, "error",
						b->last_error_msg, "updated", b->updated));
	return 0;
}

/* The first boards row its events do not give, as the report's break. */
struct table_check {
	struct jnl_verify_report *rep;
	uint64_t mismatches;
};

static void table_cb(void *arg, const char *uid, uint64_t last_seq, const char *what)
{
	struct table_check *t = arg;

	(void)uid;
	/* The first few in full; the count says the rest (`imprint audit`
	 * lists every one as a finding). */
	if (t->mismatches < 10)
		IMP_ERROR("%s", what);
	if (t->mismatches++ == 0) {
		t->rep->bad_seq = last_seq ? last_seq : t->rep->events;
		snprintf(t->rep->reason, sizeof(t->rep->reason), "%s", what);
	}
}

/* Verify the journal's hash chain and checkpoint signatures (record-signing
 * certificate from DATA/trust), its anchor, and its boards table against
 * the events. */
static imp_err verify_journal(struct station_ctx *ctx, struct jnl *j, json_t **out)
{
	struct table_check table = { 0 };
	uint64_t boards = 0, outbox = 0;
	struct jnl_verify_report rep;
	struct jnl_verify_opts vo = { 0 };
	char trust[4200], path[4300], jpath[4200], apath[4300], unchecked[9000] = "";
	bool incomplete = false;
	X509 *cert = NULL;
	imp_err rc;

	/* Every page, also of a file the open did not check again. */
	rc = jnl_verify_pages(j);
	if (rc)
		return rc;
	st_trust_dir(ctx, trust, sizeof(trust));
	snprintf(path, sizeof(path), "%s/%s", trust, hsm_org_file(HSM_ORG_RECORD));
	if (fmt_cert_load(path, &cert) == IMP_OK) {
		vo.pkey = X509_get0_pubkey(cert);
		vo.require_signed_head = true;
	} else {
		snprintf(unchecked, sizeof(unchecked), "the checkpoint signatures could not be "
			 "checked: no record-signing certificate in %s (restore DATA/trust from its "
			 "backup)", path);
	}
	rc = jnl_verify_chain(j, &vo, &rep);
	if (rc == IMP_OK || rc == IMP_ERR_AUDIT) {
		char msg[JNL_MSG_MAX];
		bool found = false;
		imp_err arc = jnl_anchor_check(j, msg, sizeof(msg), &found);

		/* No anchor beside a journal that has events: a copy put back
		 * from an older backup could not be told from the journal. */
		st_journal_path(ctx, &ctx->run->cfg, jpath, sizeof(jpath));
		jnl_anchor_path(jpath, apath, sizeof(apath));
		if (arc == IMP_OK && !found && rep.events > 0 && !unchecked[0])
			snprintf(unchecked, sizeof(unchecked), "the journal's anchor %s is "
				 "missing, so a journal put back from an older copy cannot be told; "
				 "restore it with the journal from the same backup, or run 'imprint "
				 "journal checkpoint', which checks the journal against the hsm's "
				 "anchor and writes it again", apath);
		if (arc == IMP_OK && unchecked[0]) {
			IMP_ERROR("journal: not verified: %s", unchecked);
			/* Not verified, unless the chain is proven broken already. */
			incomplete = rc == IMP_OK;
			if (rc == IMP_OK) {
				rep.bad_seq = 0;
				snprintf(rep.reason, sizeof(rep.reason), "%.*s",
					 (int)sizeof(rep.reason) - 1, unchecked);
			}
			rc = IMP_ERR_AUDIT;
		} else if (arc == IMP_ERR_AUDIT) {
			IMP_ERROR("%s", msg);
			if (rc == IMP_OK) {
				rep.bad_seq = rep.events;
				snprintf(rep.reason, sizeof(rep.reason), "%s", msg);
			}
			rc = IMP_ERR_AUDIT;
		} else if (arc != IMP_OK) {
			rc = arc;
		}
	}
	/* The boards table is compared also when a check could not be made. */
	if (rc == IMP_OK || incomplete) {
		imp_err brc;

		table.rep = &rep;
		brc = jnl_verify_boards(j, table_cb, &table, &boards);
		if (brc == IMP_OK || brc == IMP_ERR_AUDIT) {
			imp_err orc = jnl_verify_outbox(j, table_cb, &table, &outbox);

			if (orc != IMP_OK && (brc == IMP_OK || orc != IMP_ERR_AUDIT))
				brc = orc;
		}
		if (brc != IMP_OK && brc != IMP_ERR_AUDIT)
			IMP_ERROR("journal: %s", jnl_last_error());
		if (brc != IMP_OK) {
			rc = brc;
			incomplete = false; /* proven wrong, not only unchecked */
		}
	}
	*out = json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:b, s:I, s:I, s:I, s:s}", "ok",
			 rc == IMP_OK, "events", (json_int_t)rep.events, "boards_compared",
			 (json_int_t)boards, "outbox_compared", (json_int_t)outbox,
			 "boards_mismatched", (json_int_t)table.mismatches,
			 "checkpoints", (json_int_t)rep.checkpoints,
			 "signatures_checked", rep.signatures_checked, "last_checkpoint_seq",
			 (json_int_t)rep.last_checkpoint_seq, "unsigned_tail",
			 (json_int_t)rep.unsigned_tail, "bad_seq", (json_int_t)rep.bad_seq, "reason",
			 rep.reason);
	/* Not proven altered: what the check needed was missing. */
	if (*out)
		json_object_set_new(*out, "incomplete", json_boolean(incomplete));
	if (rc == IMP_ERR_AUDIT && table.mismatches)
		IMP_ERROR("journal: %llu boards or outbox rows differ from their events (%s); "
			  "`imprint audit` lists each", (unsigned long long)table.mismatches,
			  table.mismatches > 10 ? "the first 10 above" : "above");
	else if (rc == IMP_ERR_AUDIT && !(incomplete && !rep.bad_seq))
		IMP_ERROR("journal chain broken at event %llu: %s%s", (unsigned long long)rep.bad_seq,
			  rep.reason,
			  strncmp(rep.reason, "the head is not signed", 22) == 0 ||
				  strncmp(rep.reason, "the journal is behind", 21) == 0
				  ? ""
				  : "; the journal was altered outside imprint");
	X509_free(cert);
	return rc;
}

imp_err st_status_build(struct station_ctx *ctx, const struct st_status_opts *so, json_t **out)
{
	struct st_run *l = ctx->run;
	struct jnl_info info;
	uint64_t counts[JNL_ST__COUNT];
	uint64_t pending = 0, quarantines = 0, quarantines_done = 0;
	struct failure_list f = { json_array() };
	json_t *states = json_object();
	json_t *chain = NULL, *shift = NULL, *o = NULL;
	char jpath[4200];
	imp_err rc;

	*out = NULL;
	rc = jnl_info(l->journal, &info);
	if (rc == IMP_OK)
		rc = jnl_counts(l->journal, counts);
	if (rc == IMP_OK)
		rc = jnl_list_failures(l->journal, so->failures_limit, failure_cb, &f);
	if (rc == IMP_OK)
		rc = jnl_outbox_count_pending(l->journal, &pending);
	if (rc == IMP_OK)
		rc = jnl_quarantine_counts(l->journal, &quarantines, &quarantines_done);
	if (rc == IMP_OK)
		rc = st_shift_stats(l->journal, so->since, so->until, &shift);
	if (rc == IMP_OK && so->verify) {
		rc = verify_journal(ctx, l->journal, &chain);
		if (rc != IMP_OK && rc != IMP_ERR_AUDIT)
			goto cleanup;
	}
	if (rc != IMP_OK && rc != IMP_ERR_AUDIT)
		goto cleanup;
	st_journal_path(ctx, &l->cfg, jpath, sizeof(jpath));
	for (int s = 0; s < JNL_ST__COUNT; s++)
		json_object_set_new(states, jnl_state_name((enum jnl_state)s),
				    json_integer((json_int_t)counts[s]));
	o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:O, s:O, s:I, s:I, s:s, s:I, s:O}", "station_id",
		      info.station_id, "journal", jpath, "quota", (json_int_t)info.quota, "issued",
		      (json_int_t)info.issued, "quota_left", (json_int_t)info.quota_left, "boards",
		      states, "failures", f.arr, "outbox_pending", (json_int_t)pending, "head_seq",
		      (json_int_t)info.head_seq, "head_hash", info.head_hash,
		      "last_checkpoint_seq", (json_int_t)info.last_checkpoint_seq, "shift", shift);
	if (!o) {
		rc = IMP_ERR_NOMEM;
		goto cleanup;
	}
	if (chain)
		json_object_set(o, "chain", chain);
	json_object_set_new(o, "line_mode", json_boolean(info.leased_serials));
	/* Quarantine events: every board set aside, and of those the ones that
	 * presented a finished board's UID (docs/JOURNAL.md). */
	json_object_set_new(o, "quarantines", json_pack("{s:I, s:I}", "events",
							 (json_int_t)quarantines, "done_uid",
							 (json_int_t)quarantines_done));
	*out = o;
cleanup:
	json_decref(shift);
	json_decref(chain);
	json_decref(f.arr);
	json_decref(states);
	return rc;
}

/*
 * imprint status: boards per state, quota left, recent failures.
 */
#include <stdio.h>
#include <string.h>

#include "formats/x509.h"
#include "hsm/org.h"
#include "imprint/log.h"
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

static void print_status(const json_t *o, void *arg)
{
	const json_t *states = json_object_get(o, "boards");
	const char *key;
	json_t *v;
	size_t i;

	(void)arg;
	printf("station %s, journal %s\n", json_string_value(json_object_get(o, "station_id")),
	       json_string_value(json_object_get(o, "journal")));
	if (json_is_true(json_object_get(o, "line_mode")))
		printf("line mode: serials from leases of the line ('imprint line status' shows the "
		       "line's quota); issued here %lld, left in this station's leases %lld\n",
		       json_integer_value(json_object_get(o, "issued")),
		       json_integer_value(json_object_get(o, "quota_left")));
	else
		printf("quota %lld, issued %lld, left %lld\n",
		       json_integer_value(json_object_get(o, "quota")),
		       json_integer_value(json_object_get(o, "issued")),
		       json_integer_value(json_object_get(o, "quota_left")));
	printf("\nboards per state:\n");
	json_object_foreach((json_t *)states, key, v)
		printf("  %-12s %lld\n", key, json_integer_value(v));
	printf("\nrecent failures:\n");
	json_array_foreach(json_object_get(o, "failures"), i, v)
		printf("  %s %-10s %-10s %s (exit %lld)\n", json_string_value(json_object_get(v, "uid")),
		       json_string_value(json_object_get(v, "serial")),
		       json_string_value(json_object_get(v, "state")),
		       json_string_value(json_object_get(v, "error")),
		       json_integer_value(json_object_get(v, "code")));
	if (json_array_size(json_object_get(o, "failures")) == 0)
		printf("  none\n");
	printf("\nrecords waiting for delivery: %lld\n",
	       json_integer_value(json_object_get(o, "outbox_pending")));
	v = json_object_get(o, "chain");
	if (v)
		printf("journal chain: %s (%lld events, %lld signed checkpoints, %lld events after "
		       "the last)%s%s\n",
		       json_is_true(json_object_get(v, "ok")) ? "verified" : "BROKEN",
		       json_integer_value(json_object_get(v, "events")),
		       json_integer_value(json_object_get(v, "checkpoints")),
		       json_integer_value(json_object_get(v, "unsigned_tail")),
		       json_is_true(json_object_get(v, "ok")) ? "" : ": ",
		       json_string_value(json_object_get(v, "reason")));
}

/* Verify the journal's hash chain and checkpoint signatures (record-signing
 * certificate from DATA/trust). */
static imp_err verify_journal(struct station_ctx *ctx, struct jnl *j, json_t **out)
{
	struct jnl_verify_report rep;
	struct jnl_verify_opts vo = { 0 };
	char trust[4200], path[4300];
	X509 *cert = NULL;
	imp_err rc;

	st_trust_dir(ctx, trust, sizeof(trust));
	snprintf(path, sizeof(path), "%s/%s", trust, hsm_org_file(HSM_ORG_RECORD));
	if (fmt_cert_load(path, &cert) == IMP_OK) {
		vo.pkey = X509_get0_pubkey(cert);
		vo.require_signed_head = true;
	} else
		IMP_WARN("no %s: checkpoint signatures are not checked", path);
	rc = jnl_verify_chain(j, &vo, &rep);
	if (rc == IMP_OK || rc == IMP_ERR_AUDIT) {
		char msg[600];
		imp_err arc = jnl_anchor_check(j, msg, sizeof(msg));

		if (arc == IMP_ERR_AUDIT) {
			IMP_ERROR("%s", msg);
			if (rc == IMP_OK) {
				rep.bad_seq = rep.events;
				snprintf(rep.reason, sizeof(rep.reason), "%.300s", msg);
			}
			rc = IMP_ERR_AUDIT;
		} else if (arc != IMP_OK) {
			rc = arc;
		}
	}
	*out = json_pack("{s:b, s:I, s:I, s:b, s:I, s:I, s:s}", "ok", rc == IMP_OK, "events",
			 (json_int_t)rep.events, "checkpoints", (json_int_t)rep.checkpoints,
			 "signatures_checked", rep.signatures_checked, "unsigned_tail",
			 (json_int_t)rep.unsigned_tail, "bad_seq", (json_int_t)rep.bad_seq, "reason",
			 rep.reason);
	if (rc == IMP_ERR_AUDIT)
		IMP_ERROR("journal chain broken at event %llu: %s%s", (unsigned long long)rep.bad_seq,
			  rep.reason,
			  strncmp(rep.reason, "the head is not signed", 22) == 0 ||
				  strncmp(rep.reason, "the journal is behind", 21) == 0
				  ? ""
				  : "; the journal was altered outside imprint");
	X509_free(cert);
	return rc;
}

static long failures_limit = 10;
static bool verify;

static const struct st_option status_opts[] = {
	{ "failures", 0, ST_OPT_INT, &failures_limit, "N", "show the N most recent failures (10)" },
	{ "verify", 0, ST_OPT_FLAG, &verify, NULL,
	  "also verify the journal's hash chain and signed checkpoints" },
	ST_OPTIONS_END,
};

static int status_run(struct station_ctx *ctx, int argc, char **argv)
{
	struct st_run *l = ctx->run;
	struct jnl_info info;
	uint64_t counts[JNL_ST__COUNT];
	uint64_t pending = 0;
	struct failure_list f = { json_array() };
	json_t *states = json_object();
	json_t *chain = NULL;
	char jpath[4200];
	imp_err rc;

	(void)argc;
	(void)argv;
	rc = jnl_info(l->journal, &info);
	if (rc == IMP_OK)
		rc = jnl_counts(l->journal, counts);
	if (rc == IMP_OK)
		rc = jnl_list_failures(l->journal, (unsigned)failures_limit, failure_cb, &f);
	if (rc == IMP_OK)
		rc = jnl_outbox_count_pending(l->journal, &pending);
	if (rc == IMP_OK && verify) {
		rc = verify_journal(ctx, l->journal, &chain);
		if (rc != IMP_OK && rc != IMP_ERR_AUDIT)
			goto cleanup;
	}
	if (rc == IMP_OK || rc == IMP_ERR_AUDIT) {
		st_journal_path(ctx, &l->cfg, jpath, sizeof(jpath));
		for (int s = 0; s < JNL_ST__COUNT; s++)
			json_object_set_new(states, jnl_state_name((enum jnl_state)s),
					    json_integer((json_int_t)counts[s]));
		json_t *o =
			json_pack("{s:s, s:s, s:I, s:I, s:I, s:O, s:O, s:I}", "station_id",
				  info.station_id, "journal", jpath, "quota", (json_int_t)info.quota,
				  "issued", (json_int_t)info.issued, "quota_left",
				  (json_int_t)info.quota_left, "boards", states, "failures", f.arr,
				  "outbox_pending", (json_int_t)pending);

		if (o && chain)
			json_object_set(o, "chain", chain);
		if (o)
			json_object_set_new(o, "line_mode", json_boolean(info.leased_serials));
		st_emit(ctx, o, print_status, NULL);
	}
cleanup:
	json_decref(chain);
	json_decref(f.arr);
	json_decref(states);
	return st_fail(rc, NULL);
}

const struct st_command st_cmd_status = {
	.name = "status",
	.fn = status_run,
	.need = NEED_JOURNAL,
	.summary = "boards per state, quota left, recent failures",
	.usage = "imprint status [--failures N] [--verify]",
	.opts = status_opts,
	.help = "Reads the journal only. --verify checks the hash chain and the signed "
		"checkpoints against DATA/trust and exits 28 (audit) if they do not hold.",
};

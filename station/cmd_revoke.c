/*
 * imprint revoke SERIAL --reason TEXT: decommissioning (GSMA CLP.13 8.10).
 * A revocation record, signed by the organisation's revocation key in the
 * HSM, goes into the outbox and is delivered like any record
 * (imprint export).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "exp/export.h"
#include "formats/jws.h"
#include "formats/record.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "run.h"

/* What the outbox holds for one serial: its newest identity record and,
 * if revoked_id is set (jnl_revocation_record_id), that revocation's row. */
struct find_id {
	const char *serial;
	const char *revoked_id;
	char record_id[128];
	char created[40];
	char state[300];
	char *jws; /* the revocation's, malloc'ed */
};

static int find_identity(void *arg, const struct jnl_outbox_row *r)
{
	struct find_id *f = arg;

	if (strcmp(r->serial, f->serial) != 0)
		return 0;
	if (strcmp(r->kind, "identity") == 0)
		snprintf(f->record_id, sizeof(f->record_id), "%s", r->record_id);
	if (f->revoked_id && strcmp(r->record_id, f->revoked_id) == 0) {
		snprintf(f->created, sizeof(f->created), "%s", r->created);
		if (r->rejected_reason)
			snprintf(f->state, sizeof(f->state), "the registry rejected it (%s)",
				 r->rejected_reason);
		else if (r->delivered_at)
			snprintf(f->state, sizeof(f->state), "delivered to the registry %s",
				 r->delivered_at);
		else
			snprintf(f->state, sizeof(f->state),
				 "not delivered yet: 'imprint export' delivers it");
		free(f->jws);
		f->jws = strdup(r->jws);
	}
	return 0;
}

/* A serial is revoked once, whatever the reason: say by which record. */
static void already_revoked(const struct find_id *f)
{
	json_t *p = NULL;
	const char *reason = NULL, *at = NULL;

	if (f->jws && fmt_jws_peek_payload(f->jws, &p) == IMP_OK) {
		reason = json_string_value(json_object_get(p, "reason"));
		at = json_string_value(json_object_get(p, "revoked_at"));
	}
	IMP_ERROR("serial %s is already revoked: revocation record %s (reason '%s', revoked at "
		  "%s) is in the outbox, %s; a serial is revoked once, whatever the reason: "
		  "'imprint records --serial %s' shows its records", f->serial, f->revoked_id,
		  reason ? reason : "?", at ? at : f->created[0] ? f->created : "?",
		  f->state[0] ? f->state : "as the journal shows", f->serial);
	json_decref(p);
}

static void print_revoked(const json_t *o, void *arg)
{
	(void)arg;
	printf("revoked %s (%s): revocation record %s is in the outbox; deliver it with "
	       "'imprint export'\n",
	       json_string_value(json_object_get(o, "serial")),
	       json_string_value(json_object_get(o, "reason")),
	       json_string_value(json_object_get(o, "record_id")));
}

static const char *revoke_reason;

static imp_err revoke_check(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	if (!st_has_text(revoke_reason)) {
		IMP_ERROR("revoke: give the reason with --reason TEXT: it goes into the signed "
			  "record");
		return IMP_ERR_USAGE;
	}
	if (!st_plain_text(revoke_reason)) {
		IMP_ERROR("revoke: --reason holds a control character (a newline, tab or escape): "
			  "give it as one line of plain text, it goes into the signed record");
		return IMP_ERR_USAGE;
	}
	return IMP_OK;
}

static int revoke_run(struct station_ctx *ctx, int argc, char **argv)
{
	struct st_run *l = ctx->run;
	struct jnl_board b = { 0 };
	struct find_id f = { 0 };
	char revoked[JNL_RECORD_ID_MAX];
	struct fmt_revocation rv = { 0 };
	struct hsm_key_signer ks;
	struct fmt_signer signer;
	X509 *x5c[1];
	json_t *obj = NULL;
	char *jws = NULL, *canon = NULL;
	size_t canon_len = 0;
	uint8_t md[32];
	char rid[65], jpath[4200];
	imp_err rc;

	(void)argc;
	f.serial = argv[1];
	rc = jnl_get_board_by_serial(l->journal, f.serial, &b);
	if (rc == IMP_ERR_NOT_FOUND)
		IMP_ERROR("serial %s is not in this station's journal", f.serial);
	if (rc == IMP_OK) {
		rc = jnl_revocation_record_id(l->journal, b.uid, revoked);
		if (rc == IMP_OK)
			f.revoked_id = revoked;
		else if (rc == IMP_ERR_NOT_FOUND)
			rc = IMP_OK;
		else
			IMP_ERROR("%s", jnl_last_error());
	}
	if (rc == IMP_OK) {
		st_journal_path(ctx, &l->cfg, jpath, sizeof(jpath));
		rc = jnl_outbox_scan(jpath, JNL_OUTBOX_ALL, find_identity, &f);
	}
	if (rc != IMP_OK)
		goto cleanup;
	if (f.revoked_id) {
		already_revoked(&f);
		rc = IMP_ERR_EXISTS;
		goto cleanup;
	}
	/* A revocation names what it revokes: a board never recorded (one
	 * rejected at its lock step) exported no identity to take back. */
	if (!f.record_id[0]) {
		IMP_ERROR("serial %s has no identity record in this station's journal (its board "
			  "is %s): no identity was exported for it, so there is nothing to revoke; "
			  "a board rejected at its lock step is listed by 'imprint audit': keep it "
			  "off the shipment", f.serial, jnl_state_name(b.state));
		rc = IMP_ERR_NOT_FOUND;
		goto cleanup;
	}
	rv.serial = f.serial;
	rv.record_id = f.record_id[0] ? f.record_id : NULL;
	rv.reason = revoke_reason;
	rv.station_id = l->cfg.station_id;
	rv.operator_name = l->station.operator_name;
	rc = fmt_revocation_build(&rv, &obj);
	if (rc == IMP_OK)
		rc = fmt_record_canonical(obj, &canon, &canon_len);
	if (rc != IMP_OK)
		goto cleanup;
	/* The revocation's own id: SHA-256 of its canonical bytes. */
	EVP_Digest(canon, canon_len, md, NULL, EVP_sha256(), NULL);
	imp_hex_encode(md, sizeof(md), rid);
	x5c[0] = l->station.org.cert[HSM_ORG_REVOCATION];
	hsm_signer_init(&ks, l->journal_session, l->station.org.key[HSM_ORG_REVOCATION],
			X509_get0_pubkey(x5c[0]), &signer);
	rc = fmt_record_sign(obj, &signer, x5c, 1, &jws);
	if (rc == IMP_OK) {
		rc = jnl_outbox_add_revocation(l->journal, b.uid, rid, jws);
		if (rc != IMP_OK)
			IMP_ERROR("%s", jnl_last_error());
	}
	if (rc == IMP_OK)
		st_emit(ctx,
			json_pack("{s:s, s:s, s:s, s:s, s:s}", "event", "revoked", "serial",
				  f.serial, "reason", revoke_reason, "record_id", rid, "revokes",
				  f.record_id),
			print_revoked, NULL);
cleanup:
	json_decref(obj);
	free(canon);
	free(jws);
	free(f.jws);
	jnl_board_release(&b);
	return st_fail(rc, NULL);
}

static const struct st_option revoke_opts[] = {
	{ "reason", 'r', ST_OPT_STRING, &revoke_reason, "TEXT",
	  "why: decommissioned, key-compromise, failed-test, ... (required)" },
	ST_OPTIONS_END,
};

const struct st_command st_cmd_revoke = {
	.name = "revoke",
	.fn = revoke_run,
	.need = NEED_HSM,
	.summary = "decommission a device: a signed revocation record into the outbox",
	.usage = "imprint revoke SERIAL --reason TEXT",
	.opts = revoke_opts,
	.min_args = 1,
	.max_args = 1,
	.help = "Decommissions device SERIAL: a revocation record, signed by the "
		"organisation's revocation key in the hsm, goes into the outbox and is "
		"delivered like any record ('imprint export'); the journal keeps the board "
		"and its identity. --reason says why (key-compromise, decommissioned, ...). "
		"A serial is revoked once: a second revoke, whatever its reason, is refused "
		"with exit 10 and names the revocation record already made. Exits 9 if "
		"SERIAL is not in this station's journal.",
	.check = revoke_check,
	.exits = (const imp_err[]){ IMP_ERR_NOT_FOUND, IMP_ERR_EXISTS, IMP_OK },
	.example = "imprint revoke DEMO000001 --reason decommissioned",
};

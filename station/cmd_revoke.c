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
#include "formats/record.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "run.h"

struct find_id {
	const char *serial;
	char record_id[128];
};

static int find_identity(void *arg, const struct jnl_outbox_row *r)
{
	struct find_id *f = arg;

	if (strcmp(r->serial, f->serial) == 0 && strcmp(r->kind, "identity") == 0)
		snprintf(f->record_id, sizeof(f->record_id), "%s", r->record_id);
	return 0;
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
	return IMP_OK;
}

static int revoke_run(struct station_ctx *ctx, int argc, char **argv)
{
	struct st_run *l = ctx->run;
	struct jnl_board b = { 0 };
	struct find_id f = { 0 };
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
		st_journal_path(ctx, &l->cfg, jpath, sizeof(jpath));
		rc = jnl_outbox_scan(jpath, JNL_OUTBOX_ALL, find_identity, &f);
	}
	if (rc != IMP_OK)
		goto cleanup;
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
	if (rc == IMP_OK)
		rc = jnl_outbox_add_revocation(l->journal, b.uid, rid, jws);
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
		"Exits 9 if SERIAL is not in this station's journal.",
	.check = revoke_check,
	.exits = (const imp_err[]){ IMP_ERR_NOT_FOUND, IMP_ERR_EXISTS, IMP_OK },
	.example = "imprint revoke DEMO000001 --reason decommissioned",
};

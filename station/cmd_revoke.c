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
#include "line.h"

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

int cmd_revoke(int argc, char **argv, struct station_ctx *ctx)
{
	bool help = false;
	const char *reason = NULL;
	const struct st_option opts[] = {
		{ "reason", 'r', ST_OPT_STRING, &reason, "TEXT",
		  "why: decommissioned, key-compromise, failed-test, ... (required)" },
		ST_OPTIONS_END,
	};
	struct st_line l;
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
	int first;
	imp_err rc;

	memset(&l, 0, sizeof(l));
	rc = st_parse_options(opts, "imprint revoke SERIAL --reason TEXT", argc, argv, &first,
			      &help);
	if (rc != IMP_OK || help)
		return (int)rc;
	if (first < argc - 1) {
		/* SERIAL before the options: parse what follows it. */
		int more;

		rc = st_parse_options(opts, "imprint revoke SERIAL --reason TEXT", argc - first,
				      argv + first, &more, &help);
		if (rc != IMP_OK || help)
			return (int)rc;
		if (more != argc - first) {
			IMP_ERROR("revoke: give one SERIAL and --reason TEXT");
			return IMP_ERR_USAGE;
		}
		argc = first + 1;
	}
	if (first != argc - 1 || !reason || !reason[0]) {
		IMP_ERROR("revoke: give one SERIAL and --reason TEXT");
		return IMP_ERR_USAGE;
	}
	f.serial = argv[first];
	rc = st_line_open(ctx, &l, ST_LINE_HSM);
	if (rc == IMP_OK) {
		rc = jnl_get_board_by_serial(l.journal, f.serial, &b);
		if (rc == IMP_ERR_NOT_FOUND)
			IMP_ERROR("serial %s is not in this station's journal", f.serial);
	}
	if (rc == IMP_OK) {
		st_journal_path(ctx, &l.cfg, jpath, sizeof(jpath));
		rc = jnl_outbox_scan(jpath, JNL_OUTBOX_ALL, find_identity, &f);
	}
	if (rc != IMP_OK)
		goto cleanup;
	rv.serial = f.serial;
	rv.record_id = f.record_id[0] ? f.record_id : NULL;
	rv.reason = reason;
	rv.station_id = l.cfg.station_id;
	rv.operator_name = l.station.operator_name;
	rc = fmt_revocation_build(&rv, &obj);
	if (rc == IMP_OK)
		rc = fmt_record_canonical(obj, &canon, &canon_len);
	if (rc != IMP_OK)
		goto cleanup;
	/* The revocation's own id: SHA-256 of its canonical bytes. */
	EVP_Digest(canon, canon_len, md, NULL, EVP_sha256(), NULL);
	imp_hex_encode(md, sizeof(md), rid);
	x5c[0] = l.station.org.cert[HSM_ORG_REVOCATION];
	hsm_signer_init(&ks, l.journal_session, l.station.org.key[HSM_ORG_REVOCATION],
			X509_get0_pubkey(x5c[0]), &signer);
	rc = fmt_record_sign(obj, &signer, x5c, 1, &jws);
	if (rc == IMP_OK)
		rc = jnl_outbox_add_revocation(l.journal, b.uid, rid, jws);
	if (rc == IMP_OK)
		st_emit(ctx,
			json_pack("{s:s, s:s, s:s, s:s, s:s}", "event", "revoked", "serial",
				  f.serial, "reason", reason, "record_id", rid, "revokes",
				  f.record_id),
			print_revoked, NULL);
cleanup:
	json_decref(obj);
	free(canon);
	free(jws);
	jnl_board_release(&b);
	st_line_close(&l);
	return st_fail(rc, NULL);
}

/* Matter factory data per board (provisioner/matter.h, docs/MATTER.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "board/agent.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "provisioner/matter.h"
#include "provisioner/provision.h"
#include "wire/factory.h"

#define AAD_TAG "imprint-matter-passcode-v1" /* persisted: the sealing AAD's prefix */
#define PASSCODE_DRAWS 64 /* each draw is accepted with p ~ 0.745: 64 fail ~ 1e-38 */
#define SEALED_LEN (4 + HSM_SEAL_OVERHEAD)

_Static_assert(FMT_MATTER_VERIFIER_LEN == WIRE_FACTORY_VERIFIER_LEN, "one verifier length");
_Static_assert(FMT_MATTER_CD_MAX == WIRE_FACTORY_CD_MAX, "one declaration bound");

imp_err prov_matter_open(struct prov_station *st, struct hsm_session *s)
{
	const struct fmt_matter_config *m = &st->cfg->matter;
	uint8_t *cd = NULL;
	size_t n = 0;
	imp_err rc;

	if (!m->enabled)
		return IMP_OK;
	rc = hsm_seal_key(s, PROV_MATTER_SEAL_LABEL, true, &st->matter_seal);
	if (rc != IMP_OK) {
		IMP_ERROR("matter: the hsm holds no usable sealing key \"%s\" for the setup "
			  "passcodes (%s); check that the token offers AES-GCM (docs/MATTER.md)",
			  PROV_MATTER_SEAL_LABEL, imp_err_name(rc));
		return rc;
	}
	/* Before any board: the token must seal and unseal (AES-GCM both ways). */
	{
		static const uint8_t probe_aad[] = AAD_TAG "|self-test";
		uint8_t zero[4] = { 0 }, sealed[SEALED_LEN], back[4];

		rc = hsm_seal(s, st->matter_seal, probe_aad, sizeof(probe_aad) - 1, zero, 4, sealed);
		if (rc == IMP_OK)
			rc = hsm_unseal(s, st->matter_seal, probe_aad, sizeof(probe_aad) - 1, sealed,
					sizeof(sealed), back);
		if (rc == IMP_OK && memcmp(back, zero, 4) != 0)
			rc = IMP_ERR_HSM;
		if (rc != IMP_OK) {
			IMP_ERROR("matter: the hsm cannot seal and open setup passcodes with \"%s\" "
				  "(%s): it needs AES-GCM encryption and decryption (docs/MATTER.md); "
				  "no board was touched", PROV_MATTER_SEAL_LABEL, imp_err_name(rc));
			return rc;
		}
	}
	if (!m->certification_declaration)
		return IMP_OK;
	rc = imp_read_file(m->certification_declaration, &cd, &n);
	if (rc != IMP_OK || n == 0 || n > FMT_MATTER_CD_MAX) {
		IMP_ERROR("matter: certification declaration %s %s; give the CMS-signed "
			  "declaration of the product (DER, at most %u bytes) in "
			  "matter.certification_declaration", m->certification_declaration,
			  rc != IMP_OK ? "cannot be read" : n == 0 ? "is empty" : "is too large",
			  FMT_MATTER_CD_MAX);
		free(cd);
		return IMP_ERR_CONFIG;
	}
	if (EVP_Digest(cd, n, st->matter_cd_sha256, NULL, EVP_sha256(), NULL) != 1) {
		free(cd);
		return IMP_ERR_CRYPTO;
	}
	st->matter_cd = cd;
	st->matter_cd_len = n;
	return IMP_OK;
}

void prov_matter_close(struct prov_station *st)
{
	free(st->matter_cd);
	st->matter_cd = NULL;
	st->matter_cd_len = 0;
}

/* "imprint-matter-passcode-v1|UID|SERIAL" */
static imp_err aad_of(const char *uid, const char *serial, char *out, size_t cap, size_t *n)
{
	int w = snprintf(out, cap, AAD_TAG "|%s|%s", uid, serial);

	if (w < 0 || (size_t)w >= cap)
		return IMP_ERR_INTERNAL;
	*n = (size_t)w;
	return IMP_OK;
}

static void passcode_le(uint32_t pc, uint8_t b[4])
{
	b[0] = (uint8_t)pc;
	b[1] = (uint8_t)(pc >> 8);
	b[2] = (uint8_t)(pc >> 16);
	b[3] = (uint8_t)(pc >> 24);
}

static imp_err draw_passcode(struct hsm_session *s, uint32_t *pc)
{
	uint8_t r[4];
	imp_err rc = IMP_OK;

	for (int i = 0; i < PASSCODE_DRAWS; i++) {
		rc = hsm_random(s, r, sizeof(r));
		if (rc != IMP_OK)
			break;
		if (fmt_matter_passcode_draw(r, pc)) {
			imp_wipe(r, sizeof(r));
			return IMP_OK;
		}
	}
	imp_wipe(r, sizeof(r));
	if (rc == IMP_OK) {
		IMP_ERROR("matter: %d draws from the hsm's rng gave no valid setup passcode; the "
			  "token's rng is suspect: check it before going on", PASSCODE_DRAWS);
		rc = IMP_ERR_HSM;
	}
	return rc;
}

static void set_hex(json_t *o, const char *key, const uint8_t *bin, size_t n)
{
	char hex[2 * WIRE_FACTORY_SALT_MAX + 2 * SEALED_LEN + 1];

	if (2 * n + 1 > sizeof(hex))
		return;
	imp_hex_encode(bin, n, hex);
	json_object_set_new(o, key, json_string(hex));
}

imp_err prov_matter_make(const struct prov_station *st, struct hsm_session *s,
			 const char *uid, const char *serial, json_t *add)
{
	const struct fmt_matter_config *m = &st->cfg->matter;
	uint8_t salt[FMT_MATTER_SALT_MAX], ver[FMT_MATTER_VERIFIER_LEN], digest[32];
	uint8_t pcb[4], sealed[SEALED_LEN], rd[2];
	char aad[256];
	size_t aad_len = 0;
	uint32_t pc = 0;
	unsigned disc;
	json_t *o = NULL;
	imp_err rc;

	if (!m->enabled)
		return IMP_OK;
	rc = draw_passcode(s, &pc);
	if (rc == IMP_OK)
		rc = hsm_random(s, salt, m->salt_length);
	if (rc == IMP_OK && m->discriminator < 0)
		rc = hsm_random(s, rd, sizeof(rd));
	if (rc != IMP_OK)
		goto cleanup;
	disc = m->discriminator >= 0 ? (unsigned)m->discriminator
				     : ((unsigned)rd[0] << 8 | rd[1]) & FMT_MATTER_DISCRIMINATOR_MAX;
	rc = fmt_matter_verifier(pc, salt, m->salt_length, m->iterations, ver);
	if (rc != IMP_OK)
		goto cleanup;
	if (EVP_Digest(ver, sizeof(ver), digest, NULL, EVP_sha256(), NULL) != 1) {
		rc = IMP_ERR_CRYPTO;
		goto cleanup;
	}
	passcode_le(pc, pcb);
	rc = aad_of(uid, serial, aad, sizeof(aad), &aad_len);
	if (rc == IMP_OK)
		rc = hsm_seal(s, st->matter_seal, (const uint8_t *)aad, aad_len, pcb, sizeof(pcb),
			      sealed);
	if (rc != IMP_OK)
		goto cleanup;
	o = json_pack("{sI sI sI sI sI sI}", "vendor_id",
		      (json_int_t)fmt_matter_id_value(m->vendor_id), "product_id",
		      (json_int_t)fmt_matter_id_value(m->product_id), "discriminator",
		      (json_int_t)disc, "flow", (json_int_t)m->flow, "discovery",
		      (json_int_t)m->discovery, "iterations", (json_int_t)m->iterations);
	if (!o) {
		rc = IMP_ERR_NOMEM;
		goto cleanup;
	}
	set_hex(o, "salt", salt, m->salt_length);
	set_hex(o, "verifier_sha256", digest, sizeof(digest));
	set_hex(o, "passcode_sealed", sealed, sizeof(sealed));
	if (st->matter_cd)
		set_hex(o, "cd_sha256", st->matter_cd_sha256, 32);
	json_object_set_new(add, "matter", o);
cleanup:
	imp_wipe(&pc, sizeof(pc));
	imp_wipe(pcb, sizeof(pcb));
	imp_wipe(ver, sizeof(ver));
	return rc;
}

/* ------------------------------------------------------- the step data */

struct mdata {
	uint16_t vendor_id, product_id, discriminator;
	unsigned flow, discovery;
	uint32_t iterations;
	uint8_t salt[FMT_MATTER_SALT_MAX];
	size_t salt_len;
	uint8_t verifier_sha256[32];
	uint8_t sealed[SEALED_LEN];
	bool has_cd;
	uint8_t cd_sha256[32];
};

static bool get_int(const json_t *o, const char *k, json_int_t max, json_int_t *v)
{
	const json_t *e = json_object_get(o, k);

	if (!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) > max)
		return false;
	*v = json_integer_value(e);
	return true;
}

static bool get_hex(const json_t *o, const char *k, uint8_t *out, size_t min, size_t max,
		    size_t *n)
{
	const char *s = json_string_value(json_object_get(o, k));
	size_t len = s ? strlen(s) : 0;

	if (!s || len % 2 || len / 2 < min || len / 2 > max ||
	    imp_hex_decode(s, out, len / 2) != IMP_OK)
		return false;
	if (n)
		*n = len / 2;
	return true;
}

static imp_err mdata_read(const json_t *o, struct mdata *d)
{
	json_int_t vid, pid, disc, flow, discovery, it;

	memset(d, 0, sizeof(*d));
	if (!json_is_object(o) || !get_int(o, "vendor_id", 0xFFFF, &vid) ||
	    !get_int(o, "product_id", 0xFFFF, &pid) ||
	    !get_int(o, "discriminator", FMT_MATTER_DISCRIMINATOR_MAX, &disc) ||
	    !get_int(o, "flow", FMT_MATTER_FLOW_CUSTOM, &flow) ||
	    !get_int(o, "discovery", FMT_MATTER_DISC_ALL, &discovery) ||
	    !get_int(o, "iterations", FMT_MATTER_ITER_MAX, &it) ||
	    !get_hex(o, "salt", d->salt, FMT_MATTER_SALT_MIN, FMT_MATTER_SALT_MAX, &d->salt_len) ||
	    !get_hex(o, "verifier_sha256", d->verifier_sha256, 32, 32, NULL) ||
	    !get_hex(o, "passcode_sealed", d->sealed, SEALED_LEN, SEALED_LEN, NULL)) {
		IMP_ERROR("matter: the journal's factory data for this board is malformed");
		return IMP_ERR_JOURNAL;
	}
	d->has_cd = json_object_get(o, "cd_sha256") != NULL;
	if (d->has_cd && !get_hex(o, "cd_sha256", d->cd_sha256, 32, 32, NULL)) {
		IMP_ERROR("matter: the journal's factory data for this board is malformed");
		return IMP_ERR_JOURNAL;
	}
	d->vendor_id = (uint16_t)vid;
	d->product_id = (uint16_t)pid;
	d->discriminator = (uint16_t)disc;
	d->flow = (unsigned)flow;
	d->discovery = (unsigned)discovery;
	d->iterations = (uint32_t)it;
	return IMP_OK;
}

/* Unseal the passcode and compute the verifier again; both must match the
 * journal. The caller wipes *pc and ver. */
static imp_err open_passcode(struct hsm_session *s, hsm_obj seal, const char *uid,
			     const char *serial, const struct mdata *d, uint32_t *pc,
			     uint8_t ver[FMT_MATTER_VERIFIER_LEN])
{
	uint8_t pcb[4], digest[32];
	char aad[256];
	size_t aad_len = 0;
	imp_err rc;

	rc = aad_of(uid, serial, aad, sizeof(aad), &aad_len);
	if (rc == IMP_OK)
		rc = hsm_unseal(s, seal, (const uint8_t *)aad, aad_len, d->sealed, sizeof(d->sealed),
				pcb);
	if (rc != IMP_OK) {
		if (rc == IMP_ERR_VERIFY)
			IMP_ERROR("matter: the sealed setup passcode of board %s (%s) does not open "
				  "with this hsm's sealing key", uid, serial);
		return rc;
	}
	*pc = (uint32_t)pcb[0] | (uint32_t)pcb[1] << 8 | (uint32_t)pcb[2] << 16 |
	      (uint32_t)pcb[3] << 24;
	imp_wipe(pcb, sizeof(pcb));
	rc = fmt_matter_verifier(*pc, d->salt, d->salt_len, d->iterations, ver);
	if (rc == IMP_OK &&
	    EVP_Digest(ver, FMT_MATTER_VERIFIER_LEN, digest, NULL, EVP_sha256(), NULL) != 1)
		rc = IMP_ERR_CRYPTO;
	if (rc == IMP_OK && CRYPTO_memcmp(digest, d->verifier_sha256, 32) != 0) {
		IMP_ERROR("matter: board %s (%s): the unsealed passcode does not give the "
			  "journaled verifier", uid, serial);
		rc = IMP_ERR_VERIFY;
	}
	return rc;
}

imp_err prov_matter_deliver(const struct prov_station *st, struct hsm_session *s,
			    struct board_link *link, const char *uid, const char *serial,
			    const json_t *matter)
{
	struct mdata d;
	struct wire_factory f = { 0 };
	uint8_t ver[FMT_MATTER_VERIFIER_LEN], sent[WIRE_FACTORY_MAX_LEN];
	uint8_t *back = NULL;
	size_t back_len = 0;
	struct wire_wr w;
	uint32_t pc = 0;
	imp_err rc;

	if (!st->cfg->matter.enabled)
		return IMP_OK;
	if (!matter) {
		IMP_ERROR("matter: board %s (%s) has no factory data in the journal", uid, serial);
		return IMP_ERR_JOURNAL;
	}
	rc = mdata_read(matter, &d);
	if (rc != IMP_OK)
		return rc;
	if (d.has_cd != (st->matter_cd != NULL) ||
	    (d.has_cd && CRYPTO_memcmp(d.cd_sha256, st->matter_cd_sha256, 32) != 0)) {
		IMP_ERROR("matter: board %s (%s): the certification declaration changed since its "
			  "factory data was made; restore matter.certification_declaration",
			  uid, serial);
		return IMP_ERR_CONFIG;
	}
	rc = open_passcode(s, st->matter_seal, uid, serial, &d, &pc, ver);
	imp_wipe(&pc, sizeof(pc));
	if (rc != IMP_OK)
		goto cleanup;
	f.vendor_id = d.vendor_id;
	f.product_id = d.product_id;
	f.discriminator = d.discriminator;
	f.iterations = d.iterations;
	f.salt = d.salt;
	f.salt_len = d.salt_len;
	f.verifier = ver;
	f.cd = st->matter_cd;
	f.cd_len = st->matter_cd_len;
	rc = board_agent_store_factory_data(link, &f);
	if (rc == IMP_OK)
		rc = board_agent_read_factory_data(link, &back, &back_len);
	if (rc != IMP_OK)
		goto cleanup;
	wire_wr_init(&w, sent, sizeof(sent));
	wire_factory_write(&w, &f);
	if (w.overflow || back_len != w.n || memcmp(back, sent, w.n) != 0) {
		IMP_ERROR("matter: board %s (%s) reads back other factory data than it was sent; "
			  "its factory-data area does not keep what it is given", uid, serial);
		rc = IMP_ERR_VERIFY;
	}
cleanup:
	imp_wipe(ver, sizeof(ver));
	imp_wipe(sent, sizeof(sent));
	free(back);
	return rc;
}

imp_err prov_matter_record(const json_t *matter, struct fmt_record_matter *out,
			   uint8_t digest[32])
{
	struct mdata d;
	imp_err rc = mdata_read(matter, &d);

	if (rc != IMP_OK)
		return rc;
	memcpy(digest, d.verifier_sha256, 32);
	out->vendor_id = d.vendor_id;
	out->product_id = d.product_id;
	out->discriminator = d.discriminator;
	out->verifier_sha256 = digest;
	return IMP_OK;
}

imp_err prov_matter_payload(struct hsm_session *s, hsm_obj seal, const char *uid,
			    const char *serial, const json_t *matter,
			    struct fmt_matter_payload *out)
{
	uint8_t ver[FMT_MATTER_VERIFIER_LEN];
	struct mdata d;
	uint32_t pc = 0;
	imp_err rc;

	memset(out, 0, sizeof(*out));
	rc = mdata_read(matter, &d);
	if (rc == IMP_OK)
		rc = open_passcode(s, seal, uid, serial, &d, &pc, ver);
	imp_wipe(ver, sizeof(ver));
	if (rc != IMP_OK)
		return rc;
	out->vendor_id = d.vendor_id;
	out->product_id = d.product_id;
	out->flow = (enum fmt_matter_flow)d.flow;
	out->discovery = (uint8_t)d.discovery;
	out->discriminator = d.discriminator;
	out->passcode = pc;
	imp_wipe(&pc, sizeof(pc));
	return IMP_OK;
}

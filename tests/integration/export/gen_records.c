/*
 * Generate a test organisation (in-memory keys: root, device CA, record
 * signing, revocation) and N signed identity records, for the audit tests
 * and bench/audit. Writes DIR/trust/{root-ca,device-ca,record-signing,
 * revocation,bundle}.pem and DIR/records.jsonl ({"id":..,"jws":..} lines).
 *
 *   gen_records DIR N [--threads T] [--dup-serial] [--dup-public-key] [--outlive-ca]
 *               [--revoke K]
 *
 * --revoke K: after the N identity records, K revocation records of the
 * serials of records 0..K-1 (lines {"id":..,"jws":..,"kind":"revocation"},
 * signed with the revocation key, each id the SHA-256 of its canonical
 * bytes as the station makes it).
 * --dup-serial: the last record reuses the first one's serial;
 * --dup-public-key: the last record reuses the first one's device key.
 * Both stay validly signed, so only uniqueness can catch them.
 * --outlive-ca: trust/device-ca.pem is valid for 30 days only, while the
 * device certificates (10 years) are issued under a twin certificate of the
 * same key and name: signed and chained, but outliving the CA in the trust.
 *
 * Record 0 is made through the library (fmt_cert_issue, fmt_record_build,
 * fmt_record_sign) and is the template of every other: its device
 * certificate DER is patched (serial, CN, public key, key identifier) and
 * re-signed, its record object gets the new values, and both signatures are
 * made with per-thread EVP_PKEY_CTXs set up once, so that a million records
 * take about a minute instead of a quarter of an hour. The audit verifies
 * every one of them in full, which is what proves the template right.
 */
#include <pthread.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/base64.h"
#include "formats/ecdsa_der.h"
#include "formats/jws.h"
#include "formats/record.h"
#include "formats/x509.h"
#include "imprint/util.h"

struct org {
	EVP_PKEY *key[4];
	X509 *cert[4];
	struct fmt_signer signer[4];
};

/* What record 0 leaves for the others. */
struct tmpl {
	uint8_t *cert;      /* device certificate DER */
	size_t cert_len;
	size_t off_serial, off_cn, off_point, off_ski; /* where the variable parts are */
	size_t tbs_off, tbs_len; /* the TBSCertificate TLV */
	uint8_t algid[12];
	json_t *rec;        /* record 0's object */
	char *h64;          /* the JWS header segment (same for every record) */
	uint8_t point0[65];
};

struct gen {
	struct org *org;
	struct tmpl *t;
	long from, to, n;
	bool dup_serial, dup_key;
	EVP_PKEY *first_key;
	FILE *out;
	pthread_mutex_t *lock;
	int rc;
};

static unsigned validity_days = 3650;

static X509 *issue(struct org *o, int profile, const char *cn, EVP_PKEY *key, int issuer,
		   const uint8_t *serial)
{
	struct fmt_name_entry subj[] = { { "O", "Audit Test Org" }, { "CN", cn } };
	struct fmt_cert_request req = { 0 };
	X509 *c = NULL;

	req.profile = (enum fmt_cert_profile)profile;
	req.subject = subj;
	req.subject_count = 2;
	req.subject_key = key;
	req.issuer = issuer < 0 ? NULL : o->cert[issuer];
	req.validity_days = validity_days;
	req.serial = serial;
	req.serial_len = serial ? 16 : 0;
	if (fmt_cert_issue(&req, &o->signer[issuer < 0 ? 0 : issuer], &c) != IMP_OK)
		return NULL;
	return c;
}


static size_t find(const uint8_t *hay, size_t n, const void *needle, size_t m)
{
	const uint8_t *p = memmem(hay, n, needle, m);

	return p ? (size_t)(p - hay) : 0;
}

/* Length of a DER header at p (tag + length octets). */
static size_t der_hdr(const uint8_t *p, size_t *len)
{
	if (p[1] < 0x80) {
		*len = p[1];
		return 2;
	}
	*len = 0;
	for (int k = 0; k < (p[1] & 0x7f); k++)
		*len = (*len << 8) | p[2 + k];
	return 2 + (size_t)(p[1] & 0x7f);
}

static size_t put_hdr(uint8_t *p, uint8_t tag, size_t len)
{
	p[0] = tag;
	if (len < 0x80) {
		p[1] = (uint8_t)len;
		return 2;
	}
	if (len < 0x100) {
		p[1] = 0x81;
		p[2] = (uint8_t)len;
		return 3;
	}
	p[1] = 0x82;
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
	return 4;
}

static void ski_of(const uint8_t point[65], uint8_t out[20])
{
	SHA1(point, 65, out);
}

/* Learn the template from record 0's certificate and object. */
static int tmpl_init(struct tmpl *t, X509 *cert, const uint8_t serial[16], const char *cn,
		     EVP_PKEY *key, json_t *rec, const char *jws)
{
	uint8_t ski[20];
	size_t hl, len, off;
	struct fmt_jws_parts jp;

	if (fmt_cert_to_der(cert, &t->cert, &t->cert_len) != IMP_OK ||
	    fmt_pubkey_to_point(key, t->point0) != IMP_OK || fmt_jws_split(jws, &jp) != IMP_OK)
		return 0;
	ski_of(t->point0, ski);
	t->off_serial = find(t->cert, t->cert_len, serial, 16);
	t->off_cn = find(t->cert, t->cert_len, cn, strlen(cn));
	t->off_point = find(t->cert, t->cert_len, t->point0, 65);
	t->off_ski = find(t->cert, t->cert_len, ski, 20);
	hl = der_hdr(t->cert, &len);
	t->tbs_off = hl;
	t->tbs_len = der_hdr(t->cert + hl, &len) + len;
	off = t->tbs_off + t->tbs_len;
	memcpy(t->algid, t->cert + off, sizeof(t->algid));
	t->rec = json_deep_copy(rec);
	t->h64 = strndup(jp.header, jp.header_len);
	return t->off_serial && t->off_cn && t->off_point && t->off_ski && t->rec && t->h64;
}

static int sign_md(EVP_PKEY_CTX *c, const uint8_t md[32], uint8_t *der, size_t *der_len)
{
	*der_len = FMT_ECDSA_DER_MAX;
	return EVP_PKEY_sign(c, der, der_len, md, 32) == 1;
}

static char *b64url(const void *p, size_t n)
{
	return fmt_b64url_encode(p, n);
}

/* Record i from the template: new key, certificate and record, both signed. */
static char *fast_record(struct gen *g, long i, EVP_PKEY_CTX *ca, EVP_PKEY_CTX *rs,
			 const EC_GROUP *grp, BN_CTX *bn, const uint8_t *fixed_point,
			 char **id_out)
{
	struct tmpl *t = g->t;
	uint8_t point[65], ski[20], serial[16], md[32], sig[FMT_ECDSA_DER_MAX], raw[64];
	uint8_t *cert = malloc(t->cert_len + 16);
	size_t sig_len, n, body;
	char sn[32], uid_hex[25], idsrc[64], rid[65], fp[65], *der_b64 = NULL, *x = NULL, *y = NULL;
	char *payload = NULL, *p64 = NULL, *input = NULL, *s64 = NULL, *out = NULL;
	json_t *o = NULL, *jwk;
	BIGNUM *d = BN_new();
	EC_POINT *P = EC_POINT_new(grp);

	if (!cert || !d || !P)
		goto cleanup;
	if (fixed_point) {
		memcpy(point, fixed_point, 65);
	} else if (BN_rand_range(d, EC_GROUP_get0_order(grp)) != 1 || BN_is_zero(d) ||
		   EC_POINT_mul(grp, P, d, NULL, NULL, bn) != 1 ||
		   EC_POINT_point2oct(grp, P, POINT_CONVERSION_UNCOMPRESSED, point, 65, bn) != 65) {
		goto cleanup;
	}
	snprintf(sn, sizeof(sn), "AUD%08ld", (i == g->n - 1 && g->dup_serial) ? 0 : i);
	RAND_bytes(serial, 8);
	serial[0] = (uint8_t)(0x01 | (serial[0] & 0x7f));
	for (int k = 0; k < 8; k++)
		serial[8 + k] = (uint8_t)((uint64_t)i >> (8 * (7 - k)));
	ski_of(point, ski);
	/* the certificate: the template with this record's values, re-signed */
	memcpy(cert, t->cert, t->cert_len);
	memcpy(cert + t->off_serial, serial, 16);
	memcpy(cert + t->off_cn, sn, strlen(sn));
	memcpy(cert + t->off_point, point, 65);
	memcpy(cert + t->off_ski, ski, 20);
	SHA256(cert + t->tbs_off, t->tbs_len, md);
	if (!sign_md(ca, md, sig, &sig_len))
		goto cleanup;
	{
		uint8_t *c2 = malloc(t->tbs_len + sizeof(t->algid) + sig_len + 16);
		size_t inner = t->tbs_len + sizeof(t->algid) + 3 + sig_len + (sig_len + 1 >= 0x80);
		size_t k;

		if (!c2)
			goto cleanup;
		k = put_hdr(c2, 0x30, inner);
		memcpy(c2 + k, cert + t->tbs_off, t->tbs_len);
		k += t->tbs_len;
		memcpy(c2 + k, t->algid, sizeof(t->algid));
		k += sizeof(t->algid);
		k += put_hdr(c2 + k, 0x03, sig_len + 1);
		c2[k++] = 0;
		memcpy(c2 + k, sig, sig_len);
		k += sig_len;
		free(cert);
		cert = c2;
		body = k;
	}
	der_b64 = fmt_b64_encode(cert, body);
	SHA256(cert, body, md);
	imp_hex_encode(md, 32, fp);
	/* the record */
	memset(uid_hex, 0, sizeof(uid_hex));
	{
		uint8_t uid[12];

		memset(uid, 0xa5, sizeof(uid));
		for (int k = 0; k < 8; k++)
			uid[4 + k] = (uint8_t)((uint64_t)i >> (8 * k));
		imp_hex_encode(uid, sizeof(uid), uid_hex);
	}
	snprintf(idsrc, sizeof(idsrc), "%s|%s", sn, uid_hex);
	SHA256((const uint8_t *)idsrc, strlen(idsrc), md);
	imp_hex_encode(md, 32, rid);
	x = b64url(point + 1, 32);
	y = b64url(point + 33, 32);
	o = json_deep_copy(t->rec);
	jwk = json_object_get(o, "public_key");
	if (!der_b64 || !x || !y || !o || !jwk)
		goto cleanup;
	json_object_set_new(o, "record_id", json_string(rid));
	json_object_set_new(o, "serial", json_string(sn));
	json_object_set_new(o, "chip_uid", json_string(uid_hex));
	json_object_set_new(jwk, "x", json_string(x));
	json_object_set_new(jwk, "y", json_string(y));
	json_object_set_new(o, "device_certificate", json_string(der_b64));
	json_object_set_new(o, "device_certificate_sha256", json_string(fp));
	json_object_set_new(json_object_get(o, "journal"), "seq", json_integer(i + 1));
	if (fmt_record_canonical(o, &payload, &n) != IMP_OK)
		goto cleanup;
	p64 = b64url(payload, n);
	if (!p64 || asprintf(&input, "%s.%s", t->h64, p64) < 0) {
		input = NULL;
		goto cleanup;
	}
	SHA256((const uint8_t *)input, strlen(input), md);
	if (!sign_md(rs, md, sig, &sig_len) ||
	    fmt_ecdsa_der_to_raw(sig, sig_len, raw) != IMP_OK)
		goto cleanup;
	s64 = b64url(raw, 64);
	if (s64 && asprintf(&out, "%s.%s", input, s64) < 0)
		out = NULL;
	if (out)
		*id_out = strdup(rid);
cleanup:
	free(cert);
	free(der_b64);
	free(x);
	free(y);
	free(payload);
	free(p64);
	free(input);
	free(s64);
	json_decref(o);
	BN_free(d);
	EC_POINT_free(P);
	return out;
}

static EVP_PKEY_CTX *sign_ctx(EVP_PKEY *k)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);

	if (c && EVP_PKEY_sign_init(c) != 1) {
		EVP_PKEY_CTX_free(c);
		c = NULL;
	}
	return c;
}

static void *fast_worker(void *arg)
{
	struct gen *g = arg;
	EVP_PKEY_CTX *ca = sign_ctx(g->org->key[1]), *rs = sign_ctx(g->org->key[2]);
	EC_GROUP *grp = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	BN_CTX *bn = BN_CTX_new();
	size_t cap = 1u << 20, used = 0;
	char *buf = malloc(cap);

	if (!ca || !rs || !grp || !bn || !buf)
		g->rc = 1;
	for (long i = g->from; i < g->to && !g->rc; i++) {
		bool dupk = i == g->n - 1 && g->dup_key;
		char *id = NULL, *jws = fast_record(g, i, ca, rs, grp, bn,
						    dupk ? g->t->point0 : NULL, &id);
		size_t need;

		if (!jws || !id) {
			g->rc = 1;
		} else {
			need = strlen(id) + strlen(jws) + 32;
			if (used + need > cap) {
				pthread_mutex_lock(g->lock);
				fwrite(buf, 1, used, g->out);
				pthread_mutex_unlock(g->lock);
				used = 0;
			}
			used += (size_t)sprintf(buf + used, "{\"id\":\"%s\",\"jws\":\"%s\"}\n", id, jws);
		}
		free(id);
		free(jws);
	}
	pthread_mutex_lock(g->lock);
	fwrite(buf, 1, used, g->out);
	pthread_mutex_unlock(g->lock);
	free(buf);
	EVP_PKEY_CTX_free(ca);
	EVP_PKEY_CTX_free(rs);
	EC_GROUP_free(grp);
	BN_CTX_free(bn);
	return NULL;
}

static void *gen_worker(void *arg)
{
	struct gen *g = arg;
	char line[8192];

	for (long i = g->from; i < g->to; i++) {
		char serial[32], cn[32], *jws = NULL;
		uint8_t ser0[16];
		uint8_t uid[12];
		EVP_PKEY *key = NULL;
		X509 *cert = NULL;
		json_t *obj = NULL;
		struct fmt_record r = { 0 };
		bool last = i == g->n - 1;

		snprintf(serial, sizeof(serial), "AUD%08ld", (last && g->dup_serial) ? 0 : i);
		snprintf(cn, sizeof(cn), "%s", serial);
		memset(uid, 0xa5, sizeof(uid));
		for (int k = 0; k < 8; k++)
			uid[4 + k] = (uint8_t)((uint64_t)i >> (8 * k));
		if (last && g->dup_key) {
			key = g->first_key;
			EVP_PKEY_up_ref(key);
		} else if (fmt_p256_generate(&key) != IMP_OK) {
			g->rc = 1;
			return NULL;
		}
		if (i == 0)
			g->first_key = key, EVP_PKEY_up_ref(key);
		{
			uint8_t ser[16];

			RAND_bytes(ser, sizeof(ser));
			ser[0] = (uint8_t)(0x01 | (ser[0] & 0x7f));
			cert = issue(g->org, FMT_CERT_DEVICE, cn, key, 1, ser);
			memcpy(ser0, ser, sizeof(ser));
		}
		r.serial = serial;
		r.chip_uid = uid;
		r.chip_uid_len = sizeof(uid);
		r.sku = "AUD-1";
		r.key_mode = FMT_KEY_MODE_DEVICE;
		r.public_key = key;
		r.device_certificate = cert;
		r.lock_state.debug_locked = true;
		r.lock_state.boot_locked = true;
		r.lock_state.lifecycle = "secured";
		r.station_id = "audit-gen";
		r.fixture = "F1";
		r.issued_at = "2026-11-26T09:50:00Z";
		r.journal.seq = (uint64_t)i + 1;
		r.journal.prev_hash = "0000000000000000000000000000000000000000000000000000000000000000";
		r.journal.event_hash = "1111111111111111111111111111111111111111111111111111111111111111";
		if (!cert || fmt_record_build(&r, &obj) != IMP_OK ||
		    fmt_record_sign(obj, &g->org->signer[2], &g->org->cert[2], 1, &jws) != IMP_OK) {
			g->rc = 1;
			return NULL;
		}
		if (i == 0 && g->t && !tmpl_init(g->t, cert, ser0, cn, key, obj, jws)) {
			g->rc = 1;
			return NULL;
		}
		snprintf(line, sizeof(line), "{\"id\":\"%s\",\"jws\":\"%s\"}\n",
			 json_string_value(json_object_get(obj, "record_id")), jws);
		pthread_mutex_lock(g->lock);
		fputs(line, g->out);
		pthread_mutex_unlock(g->lock);
		free(jws);
		json_decref(obj);
		X509_free(cert);
		EVP_PKEY_free(key);
	}
	return NULL;
}

/* The revocation of record i's serial, as one line of records.jsonl. */
static int revocation_line(struct org *o, long i, FILE *out)
{
	char serial[32], rid[65], *canon = NULL, *jws = NULL;
	struct fmt_revocation rv = { 0 };
	json_t *obj = NULL;
	uint8_t md[32];
	size_t canon_len = 0;
	int rc = 1;

	snprintf(serial, sizeof(serial), "AUD%08ld", i);
	rv.serial = serial;
	rv.reason = "decommissioned";
	rv.revoked_at = "2026-11-27T09:50:00Z";
	rv.station_id = "audit-gen";
	if (fmt_revocation_build(&rv, &obj) == IMP_OK &&
	    fmt_record_canonical(obj, &canon, &canon_len) == IMP_OK &&
	    fmt_record_sign(obj, &o->signer[3], &o->cert[3], 1, &jws) == IMP_OK) {
		SHA256((const uint8_t *)canon, canon_len, md);
		imp_hex_encode(md, sizeof(md), rid);
		fprintf(out, "{\"id\":\"%s\",\"jws\":\"%s\",\"kind\":\"revocation\"}\n", rid, jws);
		rc = 0;
	}
	free(canon);
	free(jws);
	json_decref(obj);
	return rc;
}

int main(int argc, char **argv)
{
	static const char *const files[4] = { "root-ca.pem", "device-ca.pem", "record-signing.pem",
					      "revocation.pem" };
	struct org o = { 0 };
	long n, threads = 2, revoke = 0;
	bool dup_serial = false, dup_key = false, outlive = false;
	X509 *trust_ca = NULL;
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	char path[4200];
	FILE *bundle, *out;
	struct gen g[16];
	pthread_t th[16];
	int rc = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: gen_records DIR N [--threads T] [--dup-serial] "
				"[--dup-public-key] [--outlive-ca]\n");
		return 2;
	}
	n = atol(argv[2]);
	for (int i = 3; i < argc; i++) {
		if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			threads = atol(argv[++i]);
		else if (strcmp(argv[i], "--dup-serial") == 0)
			dup_serial = true;
		else if (strcmp(argv[i], "--dup-public-key") == 0)
			dup_key = true;
		else if (strcmp(argv[i], "--outlive-ca") == 0)
			outlive = true;
		else if (strcmp(argv[i], "--revoke") == 0 && i + 1 < argc)
			revoke = atol(argv[++i]);
	}
	if (threads < 1 || threads > 16 || n < 1 || revoke < 0 || revoke > n)
		return 2;
	for (int k = 0; k < 4; k++) {
		if (fmt_p256_generate(&o.key[k]) != IMP_OK)
			return 1;
		fmt_signer_from_pkey(&o.signer[k], o.key[k]);
	}
	o.cert[0] = issue(&o, FMT_CERT_ROOT_CA, "Root CA", o.key[0], -1, NULL);
	o.cert[1] = issue(&o, FMT_CERT_SUB_CA, "Device CA", o.key[1], 0, NULL);
	o.cert[2] = issue(&o, FMT_CERT_RECORD_SIGNING, "Record Signing", o.key[2], 0, NULL);
	o.cert[3] = issue(&o, FMT_CERT_REVOCATION, "Revocation", o.key[3], 0, NULL);
	if (outlive) {
		validity_days = 30;
		trust_ca = issue(&o, FMT_CERT_SUB_CA, "Device CA", o.key[1], 0, NULL);
		validity_days = 3650;
		if (!trust_ca)
			return 1;
	}
	snprintf(path, sizeof(path), "%s/trust", argv[1]);
	if (!o.cert[0] || !o.cert[1] || !o.cert[2] || !o.cert[3] || imp_mkdir_p(path, 0755))
		return 1;
	snprintf(path, sizeof(path), "%s/trust/bundle.pem", argv[1]);
	bundle = fopen(path, "w");
	for (int k = 0; k < 4 && bundle; k++) {
		char *pem = NULL;

		snprintf(path, sizeof(path), "%s/trust/%s", argv[1], files[k]);
		X509 *c = k == 1 && trust_ca ? trust_ca : o.cert[k];

		if (fmt_cert_write_pem(c, path) != IMP_OK || fmt_cert_to_pem(c, &pem) != IMP_OK)
			return 1;
		fputs(pem, bundle);
		free(pem);
	}
	if (!bundle)
		return 1;
	fclose(bundle);
	snprintf(path, sizeof(path), "%s/records.jsonl", argv[1]);
	out = fopen(path, "w");
	if (!out)
		return 1;
	/* Record 0 first (the duplicates reuse its serial / key). */
	struct tmpl tp = { 0 };
	struct gen first = { &o, &tp, 0, 1, n, dup_serial, dup_key, NULL, out, &lock, 0 };

	gen_worker(&first);
	rc = first.rc;
	for (long t = 0; t < threads; t++) {
		long span = n - 1;

		g[t] = first;
		g[t].from = 1 + span * t / threads;
		g[t].to = 1 + span * (t + 1) / threads;
		pthread_create(&th[t], NULL, fast_worker, &g[t]);
	}
	for (long t = 0; t < threads; t++) {
		pthread_join(th[t], NULL);
		rc |= g[t].rc;
	}
	for (long i = 0; i < revoke && rc == 0; i++)
		rc = revocation_line(&o, i, out);
	fclose(out);
	EVP_PKEY_free(first.first_key);
	free(tp.cert);
	free(tp.h64);
	json_decref(tp.rec);
	X509_free(trust_ca);
	for (int k = 0; k < 4; k++) {
		X509_free(o.cert[k]);
		EVP_PKEY_free(o.key[k]);
	}
	return rc;
}

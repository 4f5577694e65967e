/*
 * The identity-record verifier (formats/record_verify.h): the fast path
 * against the reference, over a corpus of valid records and systematic
 * mutations of each: every member missing, extra, of every wrong type;
 * members reordered; non-canonical JSON; bad base64 in every segment and in
 * the certificate; signature bytes flipped; header members changed;
 * forged keys and certificates, and every byte of the device certificate
 * changed in turn. Each case is run through both paths, in the audit's mode
 * (pinned key, device CA as anchor) and the registry's (x5c chain, the
 * whole hierarchy), and must hold:
 *
 *   fast path accepts  =>  reference accepts, with the same facts
 *   (so: reference refuses  =>  fast path refuses)
 *
 * and every valid record of the corpus is accepted by both (the fast path
 * must not be a filter that refuses everything).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/x509v3.h>

#include "formats/base64.h"
#include "formats/ecdsa_der.h"
#include "formats/jws.h"
#include "formats/record.h"
#include "formats/record_verify.h"
#include "formats/x509.h"
#include "imprint/log.h"

enum { ROOT, DEVCA, REC, OTHERCA, NKEYS };

/* One way of verifying: the fast path's trust and the reference's anchors. */
struct mode {
	const char *name;
	struct fmt_rv_trust *trust;
	struct fmt_rv *rv;
	struct fmt_record_anchors anchors;
};

static struct {
	EVP_PKEY *key[NKEYS];
	X509 *cert[NKEYS];
	struct fmt_signer signer[NKEYS];
	X509_STORE *dev_store; /* the audit: device CA as anchor */
	X509_STORE *bundle;    /* the registry: root and device CA */
	struct mode mode[2];
	/* tallies over every case */
	unsigned cases, ref_accepts, fast_accepts;
} org;

/* issuer: index of the issuing certificate, or -1 - k for a root of key k. */
static X509 *issue(int profile, const char *cn, EVP_PKEY *key, int issuer, time_t not_before,
		   unsigned days)
{
	struct fmt_name_entry subj[] = { { "O", "Unit Org" }, { "CN", cn } };
	struct fmt_cert_request req = { 0 };
	X509 *c = NULL;

	req.profile = (enum fmt_cert_profile)profile;
	req.subject = subj;
	req.subject_count = 2;
	req.subject_key = key;
	req.issuer = issuer < 0 ? NULL : org.cert[issuer];
	req.validity_days = days;
	req.not_before = not_before;
	assert_int_equal(fmt_cert_issue(&req, &org.signer[issuer < 0 ? -1 - issuer : issuer], &c),
			 IMP_OK);
	return c;
}

static char *cert_b64(X509 *c)
{
	uint8_t *der = NULL;
	size_t n = 0;
	char *b64;

	assert_int_equal(fmt_cert_to_der(c, &der, &n), IMP_OK);
	b64 = fmt_b64_encode(der, n);
	free(der);
	assert_non_null(b64);
	return b64;
}

static int setup(void **st)
{
	char *rec64, *root64;

	(void)st;
	imp_log_set_level(IMP_LOG_QUIET);
	for (int k = 0; k < NKEYS; k++) {
		assert_int_equal(fmt_p256_generate(&org.key[k]), IMP_OK);
		fmt_signer_from_pkey(&org.signer[k], org.key[k]);
	}
	org.cert[ROOT] = issue(FMT_CERT_ROOT_CA, "Root", org.key[ROOT], -1 - ROOT, 0, 3650);
	org.cert[DEVCA] = issue(FMT_CERT_SUB_CA, "Device CA", org.key[DEVCA], ROOT, 0, 3650);
	org.cert[REC] = issue(FMT_CERT_RECORD_SIGNING, "Records", org.key[REC], ROOT, 0, 3650);
	/* another CA with the very same subject name, not trusted */
	org.cert[OTHERCA] =
		issue(FMT_CERT_ROOT_CA, "Device CA", org.key[OTHERCA], -1 - OTHERCA, 0, 3650);
	org.dev_store = X509_STORE_new();
	org.bundle = X509_STORE_new();
	assert_non_null(org.dev_store);
	assert_non_null(org.bundle);
	assert_int_equal(X509_STORE_add_cert(org.dev_store, org.cert[DEVCA]), 1);
	X509_STORE_set_flags(org.dev_store, X509_V_FLAG_PARTIAL_CHAIN);
	assert_int_equal(X509_STORE_add_cert(org.bundle, org.cert[ROOT]), 1);
	assert_int_equal(X509_STORE_add_cert(org.bundle, org.cert[DEVCA]), 1);

	/* the audit's mode */
	org.mode[0].name = "audit";
	assert_int_equal(fmt_rv_trust_new(org.key[REC], NULL, &org.cert[DEVCA], 1, NULL,
					  &org.mode[0].trust),
			 IMP_OK);
	org.mode[0].anchors.signer = org.key[REC];
	org.mode[0].anchors.devices = org.dev_store;
	/* the registry's mode */
	org.mode[1].name = "registry";
	rec64 = cert_b64(org.cert[REC]);
	root64 = cert_b64(org.cert[ROOT]);
	assert_int_equal(fmt_rv_trust_new(org.key[REC], rec64, &org.cert[DEVCA], 1, org.bundle,
					  &org.mode[1].trust),
			 IMP_OK);
	assert_int_equal(fmt_rv_trust_allow_x5c(org.mode[1].trust, root64), IMP_OK);
	org.mode[1].anchors.signers = org.bundle;
	org.mode[1].anchors.devices = org.bundle;
	free(rec64);
	free(root64);
	for (int m = 0; m < 2; m++)
		assert_int_equal(fmt_rv_new(org.mode[m].trust, &org.mode[m].rv), IMP_OK);
	return 0;
}

static int teardown(void **st)
{
	(void)st;
	printf("[ info ] %u cases x 2 modes: reference accepted %u, fast path accepted %u\n",
	       org.cases, org.ref_accepts, org.fast_accepts);
	for (int m = 0; m < 2; m++) {
		fmt_rv_free(org.mode[m].rv);
		fmt_rv_trust_free(org.mode[m].trust);
	}
	X509_STORE_free(org.dev_store);
	X509_STORE_free(org.bundle);
	for (int k = 0; k < NKEYS; k++) {
		X509_free(org.cert[k]);
		EVP_PKEY_free(org.key[k]);
	}
	return 0;
}

/* The verdicts of one case, in both modes. */
struct verdict {
	bool fast[2], ref[2];
};

static void facts_equal(const struct fmt_record_facts *a, const struct fmt_record_facts *b,
			const char *mode, const char *what)
{
	if (strcmp(a->record_id, b->record_id) || strcmp(a->serial, b->serial) ||
	    strcmp(a->uid, b->uid) || strcmp(a->pubkey, b->pubkey) ||
	    strcmp(a->cert_serial, b->cert_serial) || strcmp(a->cert_sha256, b->cert_sha256) ||
	    memcmp(a->jws_sha256, b->jws_sha256, 32) || a->signatures != b->signatures)
		fail_msg("%s, %s: the paths accept with different facts (%s/%s %s/%s %u/%u)", mode,
			 what, a->serial, b->serial, a->cert_serial, b->cert_serial, a->signatures,
			 b->signatures);
}

/*
 * Run jws through both paths in both modes and hold them to the property.
 * what names the case in a failure.
 */
static struct verdict check_modes(struct mode *modes, int nmodes, const char *jws,
				  const char *expect_id, const char *what)
{
	struct verdict v = { { false, false }, { false, false } };

	for (int m = 0; m < nmodes; m++) {
		struct fmt_record_facts ff, rf;
		enum fmt_record_stage stage;

		v.fast[m] = fmt_rv_identity(modes[m].rv, jws, expect_id, &ff) == IMP_OK;
		v.ref[m] = fmt_record_verify_full(jws, &modes[m].anchors, expect_id, &rf,
						  &stage) == IMP_OK;
		if (v.ref[m] != (stage == FMT_RECORD_STAGE_OK))
			fail_msg("%s, %s: the reference's stage does not match its answer",
				 modes[m].name, what);
		if (v.fast[m] && !v.ref[m]) {
			/* say why the reference refused it */
			imp_log_set_level(IMP_LOG_ERROR);
			fmt_record_verify_full(jws, &modes[m].anchors, expect_id, &rf, &stage);
			fail_msg("%s, %s: the fast path accepted what the reference refuses (stage %d)",
				 modes[m].name, what, (int)stage);
		}
		if (v.fast[m])
			facts_equal(&ff, &rf, modes[m].name, what);
		org.ref_accepts += v.ref[m];
		org.fast_accepts += v.fast[m];
	}
	org.cases++;
	return v;
}

static struct verdict check(const char *jws, const char *expect_id, const char *what)
{
	return check_modes(org.mode, 2, jws, expect_id, what);
}

/* Both paths, both modes, accept. */
static void both_accept(const char *jws, const char *expect_id, const char *what)
{
	struct verdict v = check(jws, expect_id, what);

	for (int m = 0; m < 2; m++)
		if (!v.fast[m] || !v.ref[m])
			fail_msg("%s, %s: a valid record is refused (fast %d, reference %d)",
				 org.mode[m].name, what, v.fast[m], v.ref[m]);
}

/* The reference refuses in both modes (so the fast path did too). */
static void both_refuse(const char *jws, const char *what)
{
	struct verdict v = check(jws, NULL, what);

	for (int m = 0; m < 2; m++)
		if (v.ref[m])
			fail_msg("%s, %s: a forgery is accepted by the reference", org.mode[m].name,
				 what);
}

/* ---------------------------------------------------------------- corpus */

struct device {
	EVP_PKEY *key;
	X509 *cert;
};

static struct device new_device(const char *cn)
{
	struct device d = { NULL, NULL };

	assert_int_equal(fmt_p256_generate(&d.key), IMP_OK);
	d.cert = issue(FMT_CERT_DEVICE, cn, d.key, DEVCA, 0, 365);
	return d;
}

static void device_free(struct device *d)
{
	X509_free(d->cert);
	EVP_PKEY_free(d->key);
}

/* A record object; variant picks optional members and the key mode. */
static json_t *record(const struct device *d, const char *serial, int variant)
{
	static const uint8_t kcv[3] = { 0xab, 0xcd, 0xef };
	uint8_t uid[8] = { 1, 2, 3, 4, 5, 6, 7, (uint8_t)serial[strlen(serial) - 1] };
	uint8_t fw[32], vd[32];
	struct fmt_record_matter m = { 0xFFF1, 0x8000, 3840, vd };
	struct fmt_record r = { 0 };
	json_t *o = NULL;

	memset(fw, 0x5a, sizeof(fw));
	memset(vd, 0xa5, sizeof(vd));
	r.serial = serial;
	r.chip_uid = uid;
	r.chip_uid_len = sizeof(uid);
	r.sku = "SKU-1";
	r.key_mode = variant == 2 ? FMT_KEY_MODE_PSK : variant == 1 ? FMT_KEY_MODE_HSM :
				   FMT_KEY_MODE_DEVICE;
	if (r.key_mode == FMT_KEY_MODE_PSK) {
		r.kcv = kcv;
		r.kcv_len = sizeof(kcv);
	} else {
		r.public_key = d->key;
		r.device_certificate = d->cert;
	}
	if (variant == 1) {
		r.firmware_sha256 = fw;
		r.matter = &m; /* Matter factory data (docs/MATTER.md) */
	}
	if (variant == 3) {
		r.operator_name = "op-7";
		r.record_id = "custom-record-id-3";
	}
	r.lock_state.debug_locked = true;
	r.lock_state.boot_locked = variant != 3;
	r.lock_state.lifecycle = "secured";
	r.station_id = "st";
	r.fixture = "F1";
	r.issued_at = "2026-11-26T09:50:00Z";
	r.journal.seq = 7 + (uint64_t)variant;
	r.journal.prev_hash = "0000000000000000000000000000000000000000000000000000000000000000";
	r.journal.event_hash = "1111111111111111111111111111111111111111111111111111111111111111";
	assert_int_equal(fmt_record_build(&r, &o), IMP_OK);
	return o;
}

/* Sign a record object (x5c = the record-signing certificate). */
static char *sign_obj(const json_t *o)
{
	char *jws = NULL;

	assert_int_equal(fmt_record_sign(o, &org.signer[REC], &org.cert[REC], 1, &jws), IMP_OK);
	return jws;
}

/* Sign payload bytes as they are, under the usual header. */
static char *sign_bytes(const char *payload)
{
	char *jws = NULL;

	assert_int_equal(fmt_jws_sign(&org.signer[REC], FMT_RECORD_TYP, NULL, &org.cert[REC], 1,
				      payload, strlen(payload), &jws),
			 IMP_OK);
	return jws;
}

/* Sign header and payload bytes as they are (header forgeries). */
static char *sign_raw(const char *header, const char *payload)
{
	char *h64 = fmt_b64url_encode(header, strlen(header));
	char *p64 = fmt_b64url_encode(payload, strlen(payload));
	char *input, *s64, *out;
	uint8_t sig[64];

	assert_non_null(h64);
	assert_non_null(p64);
	assert_int_not_equal(asprintf(&input, "%s.%s", h64, p64), -1);
	assert_int_equal(fmt_signer_sign(&org.signer[REC], input, strlen(input), sig), IMP_OK);
	s64 = fmt_b64url_encode(sig, sizeof(sig));
	assert_int_not_equal(asprintf(&out, "%s.%s", input, s64), -1);
	free(h64);
	free(p64);
	free(input);
	free(s64);
	return out;
}

static char *canonical(const json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);

	assert_non_null(s);
	return s;
}

/* The corpus: every key mode and optional member. */
#define NVALID 4

struct corpus {
	struct device dev[NVALID];
	json_t *obj[NVALID];
	char *jws[NVALID];
};

static void corpus_make(struct corpus *c)
{
	static const char *const serials[NVALID] = { "SN0001", "SN0002", "SN0003", "SN0004" };

	for (int i = 0; i < NVALID; i++) {
		c->dev[i] = new_device(serials[i]);
		c->obj[i] = record(&c->dev[i], serials[i], i);
		c->jws[i] = sign_obj(c->obj[i]);
	}
}

static void corpus_free(struct corpus *c)
{
	for (int i = 0; i < NVALID; i++) {
		device_free(&c->dev[i]);
		json_decref(c->obj[i]);
		free(c->jws[i]);
	}
}

/* ----------------------------------------------------------------- tests */

static void test_valid(void **st)
{
	struct corpus c;

	(void)st;
	corpus_make(&c);
	for (int i = 0; i < NVALID; i++) {
		const char *id = json_string_value(json_object_get(c.obj[i], "record_id"));
		char what[32];

		snprintf(what, sizeof(what), "valid record %d", i);
		both_accept(c.jws[i], NULL, what);
		both_accept(c.jws[i], id, what);  /* under its own id */
		both_accept(c.jws[i], NULL, what); /* again: the header is cached now */
		{
			struct verdict v = check(c.jws[i], "another-id", "another id");

			assert_false(v.ref[0] || v.ref[1]);
		}
	}
	corpus_free(&c);
}

/* Values of every kind, to put in place of a member's. */
static json_t *wrong_value(int k)
{
	switch (k) {
	case 0: return json_string("");
	case 1: return json_string("x");
	case 2: return json_string("ABCDEF");
	case 3: return json_string("abc");
	case 4: return json_integer(0);
	case 5: return json_integer(-1);
	case 6: return json_integer(1LL << 62);
	case 7: return json_real(1.5);
	case 8: return json_true();
	case 9: return json_null();
	case 10: return json_object();
	case 11: return json_array();
	case 12: return json_pack("{ss}", "a", "b");
	case 13: return json_string("0000000000000000000000000000000000000000000000000000000000000000");
	}
	return NULL;
}
#define NWRONG 14

/* Re-sign o canonically and check it; count in *refused what both refused. */
static void check_obj(const json_t *o, const char *what)
{
	char *p = canonical(o);
	char *jws = sign_bytes(p);

	check(jws, NULL, what);
	free(jws);
	free(p);
}

/*
 * Each member of the object at path (NULL: the record; else a member
 * object of it) missing, replaced by a value of every kind, and an extra
 * member beside it.
 */
static void mutate_members(const json_t *rec, const char *sub)
{
	json_t *target = sub ? json_object_get(rec, sub) : (json_t *)rec;
	const char *key;
	json_t *val;

	assert_non_null(target);
	json_object_foreach(target, key, val) {
		char what[128];
		json_t *o, *t;

		(void)val;
		/* missing */
		o = json_deep_copy(rec);
		t = sub ? json_object_get(o, sub) : o;
		json_object_del(t, key);
		snprintf(what, sizeof(what), "%s.%s missing", sub ? sub : "record", key);
		check_obj(o, what);
		json_decref(o);
		/* every other kind */
		for (int k = 0; k < NWRONG; k++) {
			o = json_deep_copy(rec);
			t = sub ? json_object_get(o, sub) : o;
			json_object_set_new(t, key, wrong_value(k));
			snprintf(what, sizeof(what), "%s.%s kind %d", sub ? sub : "record", key, k);
			check_obj(o, what);
			json_decref(o);
		}
	}
	/* extra members, before, between and after the others in canonical order */
	{
		static const char *const extra[] = { "a", "m", "zz", "record_idx", "Type" };

		for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
			char what[128];
			json_t *o = json_deep_copy(rec);
			json_t *t = sub ? json_object_get(o, sub) : o;

			json_object_set_new(t, extra[i], json_string("1"));
			snprintf(what, sizeof(what), "%s + %s", sub ? sub : "record", extra[i]);
			check_obj(o, what);
			json_decref(o);
		}
	}
}

static void test_members(void **st)
{
	struct corpus c;
	static const char *const subs[] = { NULL, "lock_state", "journal", "public_key", "matter" };

	(void)st;
	corpus_make(&c);
	for (int i = 0; i < NVALID; i++)
		for (size_t s = 0; s < sizeof(subs) / sizeof(subs[0]); s++)
			if (!subs[s] || json_object_get(c.obj[i], subs[s]))
				mutate_members(c.obj[i], subs[s]);
	corpus_free(&c);
}

/* The same members in another order: JSON, not canonical, refused by both. */
static json_t *reversed(const json_t *o, bool deep)
{
	const char *keys[64];
	size_t n = 0;
	const char *key;
	json_t *v, *r = json_object();

	json_object_foreach((json_t *)o, key, v)
		keys[n++] = key;
	/* json_object_foreach walks insertion order; sort, then insert backwards */
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && strcmp(keys[j - 1], keys[j]) > 0; j--) {
			const char *t = keys[j];

			keys[j] = keys[j - 1];
			keys[j - 1] = t;
		}
	while (n--) {
		json_t *m = json_object_get(o, keys[n]);

		json_object_set_new(r, keys[n],
				    deep && json_is_object(m) ? reversed(m, true) : json_deep_copy(m));
	}
	return r;
}

/* Canonical bytes with one edit (from -> to, first occurrence). */
static char *edit(const char *canon, const char *from, const char *to)
{
	const char *at = strstr(canon, from);
	size_t fl = strlen(from), tl = strlen(to);
	char *mod;

	if (!at)
		return NULL;
	mod = malloc(strlen(canon) + tl + 1);
	assert_non_null(mod);
	memcpy(mod, canon, (size_t)(at - canon));
	memcpy(mod + (at - canon), to, tl);
	strcpy(mod + (at - canon) + tl, at + fl);
	return mod;
}

static void test_non_canonical(void **st)
{
	static const struct {
		const char *from, *to;
	} edits[] = {
		{ "{\"", "{ \"" },
		{ "\":", "\": " },
		{ ",\"", ", \"" },
		{ "}", " }" },
		{ "\"record_version\":1", "\"record_version\":2" },
		{ "\"record_version\":1", "\"record_version\":1.0" },
		{ "\"record_version\":1", "\"record_version\":1e0" },
		{ "\"record_version\":1", "\"record_version\":01" },
		{ "\"record_version\":1", "\"record_version\":+1" },
		{ "\"record_version\":1", "\"record_version\":-0" },
		{ "\"sku\":\"SKU-1\"", "\"sku\":\"SKU\\u002d1\"" },
		{ "\"sku\":\"SKU-1\"", "\"sku\":\"SKU\\/1\"" },
		{ "\"sku\":\"SKU-1\"", "\"sku\":\"SKU-\\u00e91\"" },
		{ "\"sku\":\"SKU-1\"", "\"sku\":\"SKU-\xc3\xa9\"" }, /* UTF-8: valid, canonical */
		{ "\"sku\":\"SKU-1\"", "\"sku\":\"SKU-1\",\"sku\":\"SKU-1\"" },
		{ "\"sku\":\"SKU-1\"", "\"sku\":\"SKU-1\",\"sku\":\"SKU-2\"" },
		{ "\"sku\":\"SKU-1\"", "\"s\\u006bu\":\"SKU-1\"" },
		{ "\"type\":\"identity\"", "\"type\":\"revocation\"" },
		{ "\"type\":\"identity\"", "\"type\":\"Identity\"" },
		{ "\"key_mode\":\"device\"", "\"key_mode\":\"psk\"" },
		{ "\"key_mode\":\"device\"", "\"key_mode\":\"hsm\"" }, /* valid: both accept */
		{ "\"key_mode\":\"device\"", "\"key_mode\":\"DEVICE\"" },
		{ "\"debug_locked\":true", "\"debug_locked\":1" },
		{ "\"debug_locked\":true", "\"debug_locked\":True" },
		{ "\"seq\":7", "\"seq\":-7" },
		{ "\"seq\":7", "\"seq\":99999999999999999999" },
		{ "\"seq\":7", "\"seq\":7.0" },
		{ "\"kty\":\"EC\"", "\"kty\":\"RSA\"" },
		{ "\"crv\":\"P-256\"", "\"crv\":\"P-384\"" },
		{ "\"device_certificate_sha256\":\"", "\"device_certificate_sha256\":\"0" },
		{ "\"chip_uid\":\"", "\"chip_uid\":\"A" },
	};
	struct corpus c;

	(void)st;
	corpus_make(&c);
	for (int i = 0; i < NVALID; i++) {
		char *canon = canonical(c.obj[i]);
		char *f;
		json_t *r;
		char *p;

		/* the canonical payload re-signed without kid: accepted by both */
		f = sign_bytes(canon);
		both_accept(f, NULL, "canonical re-signed");
		free(f);
		/* reordered, at the top and at every level */
		for (int deep = 0; deep < 2; deep++) {
			r = reversed(c.obj[i], deep);
			p = json_dumps(r, JSON_COMPACT);
			assert_non_null(p);
			f = sign_bytes(p);
			both_refuse(f, deep ? "reordered, every level" : "reordered");
			free(f);
			free(p);
			json_decref(r);
		}
		/* indented, and a trailing newline */
		p = json_dumps(c.obj[i], JSON_INDENT(1) | JSON_SORT_KEYS);
		f = sign_bytes(p);
		both_refuse(f, "indented");
		free(f);
		free(p);
		assert_int_not_equal(asprintf(&p, "%s\n", canon), -1);
		f = sign_bytes(p);
		both_refuse(f, "trailing newline");
		free(f);
		free(p);
		for (size_t e = 0; e < sizeof(edits) / sizeof(edits[0]); e++) {
			char *mod = edit(canon, edits[e].from, edits[e].to);
			char what[64];

			if (!mod)
				continue; /* not in this variant (psk has no key, ...) */
			snprintf(what, sizeof(what), "record %d edit %zu", i, e);
			f = sign_bytes(mod);
			if (strstr(edits[e].to, "\"hsm\"")) {
				both_accept(f, NULL, what);
			} else if (strstr(edits[e].to, "\xc3")) {
				/* the reference takes it; the fast path leaves non-ASCII to it */
				struct verdict v = check(f, NULL, what);

				assert_true(v.ref[0] && v.ref[1]);
			} else {
				both_refuse(f, what);
			}
			free(f);
			free(mod);
		}
		free(canon);
	}
	corpus_free(&c);
}

/* Single-character changes all along a valid JWS (every 17th), and cuts. */
static void test_jws_mutations(void **st)
{
	static const char alpha[] = "AQgw_-+/=.z \n";
	struct corpus c;

	(void)st;
	corpus_make(&c);
	for (int r = 0; r < NVALID; r += 2) {
		char *jws = c.jws[r];
		size_t n = strlen(jws);

		for (size_t i = 0; i < n; i += 17) {
			for (size_t a = 0; a < sizeof(alpha) - 1; a++) {
				char saved = jws[i];

				if (alpha[a] == saved)
					continue;
				jws[i] = alpha[a];
				both_refuse(jws, "one character changed");
				jws[i] = saved;
			}
		}
		for (size_t cut = 0; cut < n; cut += 61) {
			char *t = strndup(jws, cut);

			both_refuse(t, "cut");
			free(t);
		}
		/* padding appended to each segment; a segment removed or doubled */
		{
			char *d1 = strchr(jws, '.'), *d2 = strchr(d1 + 1, '.'), *t;

			assert_int_not_equal(asprintf(&t, "%.*s=%s", (int)(d1 - jws), jws, d1), -1);
			both_refuse(t, "header padded");
			free(t);
			assert_int_not_equal(asprintf(&t, "%.*s=%s", (int)(d2 - jws), jws, d2), -1);
			both_refuse(t, "payload padded");
			free(t);
			assert_int_not_equal(asprintf(&t, "%s=", jws), -1);
			both_refuse(t, "signature padded");
			free(t);
			assert_int_not_equal(asprintf(&t, "%.*s", (int)(d2 - jws), jws), -1);
			both_refuse(t, "no signature");
			free(t);
			assert_int_not_equal(asprintf(&t, "%s%s", jws, d2), -1);
			both_refuse(t, "signature twice");
			free(t);
		}
	}
	both_refuse("", "empty");
	both_refuse("..", "dots");
	corpus_free(&c);
}

/* Flip every bit of every signature byte; r or s zero; the other signer. */
static void test_signature_flips(void **st)
{
	struct corpus c;

	(void)st;
	corpus_make(&c);
	for (int r = 0; r < NVALID; r++) {
		char *d2 = strrchr(c.jws[r], '.');
		uint8_t *sig = NULL;
		size_t n = 0;

		assert_int_equal(fmt_b64url_decode(d2 + 1, strlen(d2 + 1), &sig, &n), IMP_OK);
		assert_int_equal(n, 64);
		for (size_t i = 0; i < 64; i++) {
			for (int bit = 0; bit < 8; bit += r == 0 ? 1 : 8) {
				char *s64, *t;

				sig[i] ^= (uint8_t)(1u << bit);
				s64 = fmt_b64url_encode(sig, 64);
				assert_int_not_equal(asprintf(&t, "%.*s.%s", (int)(d2 - c.jws[r]),
							      c.jws[r], s64), -1);
				both_refuse(t, "signature bit flipped");
				free(t);
				free(s64);
				sig[i] ^= (uint8_t)(1u << bit);
			}
		}
		for (int half = 0; half < 2; half++) {
			uint8_t z[64];
			char *s64, *t;

			memcpy(z, sig, 64);
			memset(z + 32 * half, 0, 32);
			s64 = fmt_b64url_encode(z, 64);
			assert_int_not_equal(asprintf(&t, "%.*s.%s", (int)(d2 - c.jws[r]), c.jws[r],
						      s64), -1);
			both_refuse(t, half ? "s = 0" : "r = 0");
			free(t);
			free(s64);
		}
		free(sig);
	}
	/* a genuine signature of another key (the device CA's) */
	{
		char *jws = NULL;

		assert_int_equal(fmt_record_sign(c.obj[0], &org.signer[DEVCA], &org.cert[DEVCA], 1,
						 &jws),
				 IMP_OK);
		both_refuse(jws, "signed by the device CA");
		free(jws);
	}
	corpus_free(&c);
}

static void test_header_forgeries(void **st)
{
	struct corpus c;
	char *rec64 = cert_b64(org.cert[REC]);
	char *ca64 = cert_b64(org.cert[DEVCA]);
	char *h[16];
	size_t nh = 0;

	(void)st;
	corpus_make(&c);
	assert_int_not_equal(asprintf(&h[nh++], "{\"alg\":\"none\",\"typ\":\"%s\",\"x5c\":[\"%s\"]}",
				      FMT_RECORD_TYP, rec64), -1);
	assert_int_not_equal(asprintf(&h[nh++], "{\"alg\":\"ES384\",\"typ\":\"%s\",\"x5c\":[\"%s\"]}",
				      FMT_RECORD_TYP, rec64), -1);
	assert_int_not_equal(asprintf(&h[nh++], "{\"alg\":\"ES256\",\"typ\":\"%s\",\"x5c\":[\"%s\"]}",
				      FMT_REVOCATION_TYP, rec64), -1);
	assert_int_not_equal(asprintf(&h[nh++], "{\"alg\":\"ES256\",\"x5c\":[\"%s\"]}", rec64), -1);
	assert_int_not_equal(asprintf(&h[nh++],
				      "{\"alg\":\"ES256\",\"crit\":[\"x\"],\"typ\":\"%s\",\"x5c\":[\"%s\"]}",
				      FMT_RECORD_TYP, rec64), -1);
	assert_int_not_equal(asprintf(&h[nh++],
				      "{\"alg\":\"ES256\",\"kid\":7,\"typ\":\"%s\",\"x5c\":[\"%s\"]}",
				      FMT_RECORD_TYP, rec64), -1);
	assert_int_not_equal(asprintf(&h[nh++],
				      "{\"alg\":\"ES256\",\"alg\":\"ES256\",\"typ\":\"%s\",\"x5c\":[\"%s\"]}",
				      FMT_RECORD_TYP, rec64), -1);
	assert_int_not_equal(asprintf(&h[nh++],
				      "{\"alg\":\"ES256\",\"typ\":\"%s\",\"x5c\":[\"%s\"],\"zip\":\"DEF\"}",
				      FMT_RECORD_TYP, rec64), -1);
	assert_int_not_equal(asprintf(&h[nh++], "[\"alg\",\"ES256\"]"), -1);
	/* registry's mode: x5c naming another certificate first (the audit pins the key) */
	assert_int_not_equal(asprintf(&h[nh++], "{\"alg\":\"ES256\",\"typ\":\"%s\",\"x5c\":[\"%s\"]}",
				      FMT_RECORD_TYP, ca64), -1);
	for (size_t i = 0; i < nh; i++) {
		char *p = canonical(c.obj[0]);
		char *jws = sign_raw(h[i], p);
		struct verdict v = check(jws, NULL, h[i]);

		if (i + 1 < nh)
			assert_false(v.ref[0] || v.ref[1]);
		else
			assert_false(v.ref[1] || v.fast[1]);
		free(jws);
		free(p);
		free(h[i]);
	}
	/* the usual header, written by hand, with the members in another order */
	{
		char *hd, *p = canonical(c.obj[0]), *jws;

		assert_int_not_equal(asprintf(&hd, "{\"x5c\":[\"%s\"],\"typ\":\"%s\",\"alg\":\"ES256\"}",
					      rec64, FMT_RECORD_TYP), -1);
		jws = sign_raw(hd, p);
		both_accept(jws, NULL, "header members in another order");
		free(jws);
		free(hd);
		free(p);
	}
	free(rec64);
	free(ca64);
	corpus_free(&c);
}

/* Set the record's certificate (base64 text as given) and its digest, re-sign, check. */
static struct verdict check_cert_b64(const json_t *rec, const char *b64, const uint8_t *der,
				     size_t n, const char *what)
{
	json_t *o = json_deep_copy(rec);
	uint8_t md[32];
	char hex[65];
	char *jws;
	struct verdict v;

	if (der) {
		EVP_MD_CTX *m = EVP_MD_CTX_new();
		unsigned l = 0;

		assert_non_null(m);
		assert_int_equal(EVP_DigestInit_ex2(m, EVP_sha256(), NULL), 1);
		assert_int_equal(EVP_DigestUpdate(m, der, n), 1);
		assert_int_equal(EVP_DigestFinal_ex(m, md, &l), 1);
		EVP_MD_CTX_free(m);
		for (int i = 0; i < 32; i++)
			snprintf(hex + 2 * i, 3, "%02x", md[i]);
		json_object_set_new(o, "device_certificate_sha256", json_string(hex));
	}
	json_object_set_new(o, "device_certificate", json_string(b64));
	jws = sign_obj(o);
	v = check(jws, NULL, what);
	free(jws);
	json_decref(o);
	return v;
}

/* Bad base64 in the certificate member. */
static void test_certificate_base64(void **st)
{
	struct corpus c;
	const char *b64;
	size_t n;

	(void)st;
	corpus_make(&c);
	b64 = json_string_value(json_object_get(c.obj[0], "device_certificate"));
	n = strlen(b64);
	{
		char *t;

		assert_int_not_equal(asprintf(&t, "%s=", b64), -1);
		assert_false(check_cert_b64(c.obj[0], t, NULL, 0, "padded again").ref[0]);
		free(t);
		assert_int_not_equal(asprintf(&t, " %s", b64), -1);
		assert_false(check_cert_b64(c.obj[0], t, NULL, 0, "leading space").ref[0]);
		free(t);
		assert_int_not_equal(asprintf(&t, "%.*s\n%s", 64, b64, b64 + 64), -1);
		assert_false(check_cert_b64(c.obj[0], t, NULL, 0, "line break").ref[0]);
		free(t);
		t = strndup(b64, n - 4);
		assert_false(check_cert_b64(c.obj[0], t, NULL, 0, "last quantum cut").ref[0]);
		free(t);
		t = strdup(b64);
		for (size_t i = 0; i < n; i++)
			if (t[i] == '+')
				t[i] = '-';
			else if (t[i] == '/')
				t[i] = '_';
		if (strcmp(t, b64) != 0)
			assert_false(check_cert_b64(c.obj[0], t, NULL, 0, "url alphabet").ref[0]);
		free(t);
	}
	corpus_free(&c);
}

/*
 * Every byte of the device certificate's DER changed in turn (the record's
 * digest follows, so only the certificate itself is wrong): whatever the
 * in-place reader accepts, OpenSSL's chain verification accepts.
 */
static void test_certificate_bytes(void **st)
{
	struct corpus c;
	uint8_t *der = NULL;
	size_t n = 0;
	unsigned fast = 0;

	(void)st;
	corpus_make(&c);
	assert_int_equal(fmt_cert_to_der(c.dev[0].cert, &der, &n), IMP_OK);
	for (size_t i = 0; i < n; i++) {
		static const uint8_t x[] = { 0x01 };

		for (size_t k = 0; k < sizeof(x); k++) {
			char *b64;
			struct verdict v;

			der[i] ^= x[k];
			b64 = fmt_b64_encode(der, n);
			v = check_cert_b64(c.obj[0], b64, der, n, "certificate byte changed");
			fast += v.fast[0] + v.fast[1];
			free(b64);
			der[i] ^= x[k];
		}
	}
	/* the unchanged certificate through the same route: accepted */
	{
		char *b64 = fmt_b64_encode(der, n);
		struct verdict v = check_cert_b64(c.obj[0], b64, der, n, "certificate unchanged");

		assert_true(v.fast[0] && v.fast[1] && v.ref[0] && v.ref[1]);
		free(b64);
	}
	print_message("[ info ] %zu certificate bytes changed: the fast path accepted %u\n", n,
		      fast);
	free(der);
	corpus_free(&c);
}

/* DER length octets of len at p; returns their count. */
static size_t der_len(uint8_t *p, size_t len)
{
	if (len < 0x80) {
		p[0] = (uint8_t)len;
		return 1;
	}
	if (len < 0x100) {
		p[0] = 0x81;
		p[1] = (uint8_t)len;
		return 2;
	}
	p[0] = 0x82;
	p[1] = (uint8_t)(len >> 8);
	p[2] = (uint8_t)len;
	return 3;
}

/* Length of the TLV header at p (tag + length octets); *len its content length. */
static size_t tlv_hdr(const uint8_t *p, size_t *len)
{
	if (p[1] < 0x80) {
		*len = p[1];
		return 2;
	}
	if (p[1] == 0x81) {
		*len = p[2];
		return 3;
	}
	*len = (size_t)p[2] << 8 | p[3];
	return 4;
}

/*
 * cert's DER with the TBS byte i (counted from the TBS start) changed by x,
 * signed again by the device CA: a certificate the CA really issued. *n its
 * length; malloc'ed.
 */
static uint8_t *resigned(X509 *cert, size_t i, uint8_t x, size_t *n)
{
	uint8_t *der = NULL, *out, md[32], raw[64], sig[FMT_ECDSA_DER_MAX], *o;
	size_t dn = 0, len, hl, tbs_hl, tbs_len, sig_len = 0, body;
	static const uint8_t alg[] = { 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48,
				       0xce, 0x3d, 0x04, 0x03, 0x02 };
	EVP_MD_CTX *m;
	unsigned l = 0;

	assert_int_equal(fmt_cert_to_der(cert, &der, &dn), IMP_OK);
	hl = tlv_hdr(der, &len);
	tbs_hl = tlv_hdr(der + hl, &tbs_len);
	tbs_len += tbs_hl;
	if (i >= tbs_len) {
		free(der);
		return NULL;
	}
	der[hl + i] ^= x;
	m = EVP_MD_CTX_new();
	assert_non_null(m);
	assert_int_equal(EVP_DigestInit_ex2(m, EVP_sha256(), NULL), 1);
	assert_int_equal(EVP_DigestUpdate(m, der + hl, tbs_len), 1);
	assert_int_equal(EVP_DigestFinal_ex(m, md, &l), 1);
	EVP_MD_CTX_free(m);
	assert_int_equal(org.signer[DEVCA].sign_digest(org.signer[DEVCA].arg, md, raw), IMP_OK);
	assert_int_equal(fmt_ecdsa_raw_to_der(raw, sig, sizeof(sig), &sig_len), IMP_OK);
	body = tbs_len + sizeof(alg) + 2 + 1 + sig_len;
	out = malloc(body + 8);
	assert_non_null(out);
	o = out;
	*o++ = 0x30;
	o += der_len(o, body);
	memcpy(o, der + hl, tbs_len);
	o += tbs_len;
	memcpy(o, alg, sizeof(alg));
	o += sizeof(alg);
	*o++ = 0x03;
	o += der_len(o, sig_len + 1);
	*o++ = 0x00;
	memcpy(o, sig, sig_len);
	o += sig_len;
	*n = (size_t)(o - out);
	free(der);
	return out;
}

/*
 * Every byte of the device certificate's TBS changed in turn and signed
 * again by the device CA: whatever the in-place reader takes, OpenSSL's
 * chain verification takes (and some such certificates are valid).
 */
static void test_certificate_resigned(void **st)
{
	struct corpus c;
	unsigned fast = 0, ref = 0, cases = 0;

	(void)st;
	corpus_make(&c);
	for (size_t i = 0;; i++) {
		static const uint8_t x[] = { 0x01, 0x80 };
		bool more = true;

		for (size_t k = 0; k < sizeof(x) && more; k++) {
			size_t n = 0;
			uint8_t *der = resigned(c.dev[0].cert, i, x[k], &n);
			char *b64;
			struct verdict v;

			if (!der) {
				more = false;
				break;
			}
			char what[64];

			snprintf(what, sizeof(what), "TBS byte %zu ^ 0x%02x, re-signed", i, x[k]);
			b64 = fmt_b64_encode(der, n);
			v = check_cert_b64(c.obj[0], b64, der, n, what);
			fast += v.fast[0] + v.fast[1];
			ref += v.ref[0] + v.ref[1];
			cases++;
			free(b64);
			free(der);
		}
		if (!more)
			break;
	}
	/* re-signing an unchanged TBS gives a valid certificate */
	{
		size_t n = 0;
		uint8_t *der = resigned(c.dev[0].cert, 0, 0, &n);
		char *b64 = fmt_b64_encode(der, n);
		struct verdict v = check_cert_b64(c.obj[0], b64, der, n, "re-signed unchanged");

		assert_true(v.fast[0] && v.fast[1] && v.ref[0] && v.ref[1]);
		free(b64);
		free(der);
	}
	print_message("[ info ] %u re-signed certificates x 2 modes: reference accepted %u, fast "
		      "path accepted %u\n", cases, ref, fast);
	assert_true(ref > 0);
	corpus_free(&c);
}

/* A device CA past its validity: both paths refuse its certificates. */
static void test_expired_ca(void **st)
{
	time_t now = time(NULL);
	EVP_PKEY *k = NULL;
	struct fmt_signer ks;
	X509 *ca, *dc;
	X509_STORE *store = X509_STORE_new();
	struct mode m = { "expired CA", NULL, NULL, { NULL, NULL, NULL } };
	struct device d;
	json_t *o;
	char *jws;
	struct verdict v;

	(void)st;
	assert_int_equal(fmt_p256_generate(&k), IMP_OK);
	fmt_signer_from_pkey(&ks, k);
	ca = issue(FMT_CERT_SUB_CA, "Old CA", k, ROOT, now - 20 * 86400, 10);
	{
		struct fmt_name_entry subj[] = { { "CN", "SN8" } };
		struct fmt_cert_request req = { 0 };

		assert_int_equal(fmt_p256_generate(&d.key), IMP_OK);
		req.profile = FMT_CERT_DEVICE;
		req.subject = subj;
		req.subject_count = 1;
		req.subject_key = d.key;
		req.issuer = ca;
		req.validity_days = 30;
		/* Issued while the CA was valid (nothing is issued after it ends). */
		req.not_before = now - 15 * 86400;
		assert_int_equal(fmt_cert_issue(&req, &ks, &dc), IMP_OK);
		d.cert = dc;
	}
	assert_non_null(store);
	assert_int_equal(X509_STORE_add_cert(store, ca), 1);
	X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
	assert_int_equal(fmt_rv_trust_new(org.key[REC], NULL, &ca, 1, NULL, &m.trust), IMP_OK);
	assert_int_equal(fmt_rv_new(m.trust, &m.rv), IMP_OK);
	m.anchors.signer = org.key[REC];
	m.anchors.devices = store;
	o = record(&d, "SN8", 0);
	jws = sign_obj(o);
	v = check_modes(&m, 1, jws, NULL, "issued by an expired CA");
	assert_false(v.ref[0]);
	free(jws);
	json_decref(o);
	device_free(&d);
	fmt_rv_free(m.rv);
	fmt_rv_trust_free(m.trust);
	X509_STORE_free(store);
	X509_free(ca);
	EVP_PKEY_free(k);
}

/* Certificates that must not pass, each in an otherwise valid record. */
static void test_certificate_forgeries(void **st)
{
	EVP_PKEY *k = NULL, *k2 = NULL;
	struct {
		const char *what;
		X509 *cert;
	} c[7];
	time_t now = time(NULL);

	(void)st;
	assert_int_equal(fmt_p256_generate(&k), IMP_OK);
	assert_int_equal(fmt_p256_generate(&k2), IMP_OK);
	c[0].what = "expired";
	c[0].cert = issue(FMT_CERT_DEVICE, "SN1", k, DEVCA, now - 10 * 86400, 1);
	c[1].what = "not yet valid";
	c[1].cert = issue(FMT_CERT_DEVICE, "SN1", k, DEVCA, now + 10 * 86400, 10);
	c[2].what = "no keyAgreement";
	c[2].cert = issue(FMT_CERT_RECORD_SIGNING, "SN1", k, DEVCA, 0, 10);
	c[3].what = "a CA";
	c[3].cert = issue(FMT_CERT_SUB_CA, "SN1", k, DEVCA, 0, 10);
	c[4].what = "issued by an untrusted CA of the same name";
	c[4].cert = issue(FMT_CERT_DEVICE, "SN1", k, OTHERCA, 0, 10);
	c[5].what = "issued by the root, not the device CA";
	c[5].cert = issue(FMT_CERT_DEVICE, "SN1", k, ROOT, 0, 10);
	c[6].what = "code signing";
	c[6].cert = issue(FMT_CERT_CODE_SIGNING, "SN1", k, DEVCA, 0, 10);
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct device d = { k, c[i].cert };
		json_t *o;
		char *jws;
		struct verdict v;

		assert_non_null(c[i].cert);
		o = record(&d, "SN1", 0);
		jws = sign_obj(o);
		v = check(jws, NULL, c[i].what);
		/* the root-issued one chains in the registry's mode (root is trusted there) */
		if (i == 5)
			assert_false(v.ref[0]);
		else
			assert_false(v.ref[0] || v.ref[1]);
		free(jws);
		json_decref(o);
	}
	/* a valid certificate, but of another key than the record's JWK */
	{
		X509 *good = issue(FMT_CERT_DEVICE, "SN1", k, DEVCA, 0, 10);
		struct device d = { k, good };
		json_t *o = record(&d, "SN1", 0);
		json_t *jwk;
		char *jws;

		json_object_set_new(o, "public_key", fmt_jwk_from_pkey(k2));
		jws = sign_obj(o);
		both_refuse(jws, "JWK of another key");
		free(jws);
		/* the JWK's point moved off the curve */
		json_decref(o);
		o = record(&d, "SN1", 0);
		jwk = fmt_jwk_from_pkey(k);
		{
			char y[64];

			snprintf(y, sizeof(y), "%s", json_string_value(json_object_get(jwk, "y")));
			y[0] = y[0] == 'A' ? 'B' : 'A';
			json_object_set_new(jwk, "y", json_string(y));
		}
		json_object_set_new(o, "public_key", jwk);
		jws = sign_obj(o);
		both_refuse(jws, "JWK off the curve");
		free(jws);
		/* a private key in the JWK */
		jwk = fmt_jwk_from_pkey(k);
		json_object_set_new(jwk, "d", json_string("AAAA"));
		json_object_set_new(o, "public_key", jwk);
		jws = sign_obj(o);
		both_refuse(jws, "JWK with d");
		free(jws);
		json_decref(o);
		X509_free(good);
	}
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		X509_free(c[i].cert);
	EVP_PKEY_free(k);
	EVP_PKEY_free(k2);
}

/* The registry's mode: x5c must start with the signer, then allowed certificates only. */
static void test_x5c_mode(void **st)
{
	struct device d = new_device("SN7");
	json_t *o = record(&d, "SN7", 0);
	X509 *chain2[2] = { org.cert[REC], org.cert[ROOT] };
	X509 *chain3[2] = { org.cert[REC], org.cert[OTHERCA] };
	X509 *wrong[1] = { org.cert[DEVCA] };
	char *jws2 = NULL, *jws3 = NULL, *jws4 = NULL;
	struct verdict v;

	(void)st;
	assert_int_equal(fmt_record_sign(o, &org.signer[REC], chain2, 2, &jws2), IMP_OK);
	assert_int_equal(fmt_record_sign(o, &org.signer[REC], chain3, 2, &jws3), IMP_OK);
	assert_int_equal(fmt_record_sign(o, &org.signer[REC], wrong, 1, &jws4), IMP_OK);
	both_accept(jws2, NULL, "x5c record signer and root");
	v = check(jws3, NULL, "x5c with an unknown certificate");
	assert_false(v.fast[1]);
	v = check(jws4, NULL, "x5c naming another signer");
	assert_false(v.fast[1] || v.ref[1]);
	free(jws2);
	free(jws3);
	free(jws4);
	json_decref(o);
	device_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_members),
		cmocka_unit_test(test_non_canonical),
		cmocka_unit_test(test_jws_mutations),
		cmocka_unit_test(test_signature_flips),
		cmocka_unit_test(test_header_forgeries),
		cmocka_unit_test(test_certificate_base64),
		cmocka_unit_test(test_certificate_bytes),
		cmocka_unit_test(test_certificate_resigned),
		cmocka_unit_test(test_expired_ca),
		cmocka_unit_test(test_certificate_forgeries),
		cmocka_unit_test(test_x5c_mode),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

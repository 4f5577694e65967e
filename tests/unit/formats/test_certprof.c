/*
 * Certificate profiles (formats/certprofile.h): the shipped sets load and
 * issue chains in which no certificate outlives its issuer; the default
 * set writes exactly what the fixed roles of fmt_cert_issue write (the
 * TBSCertificate byte for byte: the signatures differ, ECDSA being
 * randomised); profiles that would outlive their issuer, and profiles with
 * a bad field, are refused at load with the field named.
 */
#include <stdio.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/x509v3.h>

#include "fmt_test.h"
#include "formats/certprofile.h"
#include "formats/config.h"

static const struct fmt_certprof_settings settings = {
	.config_dir = NULL, .device_days = 7300, .root_days = 9125, .ca_days = 7300,
	.subject_configured = false, .has_vid = true, .has_pid = true,
};

static const struct fmt_certprof_vars vars = {
	.serial = "ACM000042", .uid = "00112233445566778899aabbccddeeff", .sku = "ACME-S1",
	.vid = "FFF1", .pid = "8000", .org = "Acme Corp", .country = "DE",
};

static struct fmt_certprof_set *load_set(const char *name)
{
	struct fmt_certprof_set *set = NULL;
	char err[512];
	imp_err rc = fmt_certprof_set_load(name, &settings, &set, err, sizeof(err));

	if (rc != IMP_OK)
		fprintf(stderr, "%s: %s\n", name, err);
	assert_int_equal(rc, IMP_OK);
	return set;
}

static X509 *issue_role(const struct fmt_certprof *p, EVP_PKEY *key, X509 *issuer,
			EVP_PKEY *issuer_key, const uint8_t *serial, time_t nb)
{
	struct fmt_name_entry *subj = NULL;
	size_t ns = 0;
	struct fmt_name_entry dflt[] = { { "O", "Acme Corp" }, { "CN", "ACM000042" },
					 { "serialNumber", "00112233" } };
	struct fmt_certprof_request req = { 0 };
	struct fmt_signer s;
	X509 *x = NULL;

	if (fmt_certprof_has_subject(p)) {
		assert_int_equal(fmt_certprof_subject(p, &vars, &subj, &ns), IMP_OK);
		req.subject = subj;
		req.subject_count = ns;
	} else {
		req.subject = dflt;
		req.subject_count = 3;
	}
	req.profile = p;
	req.vars = &vars;
	req.subject_key = key;
	req.issuer = issuer;
	req.serial = serial;
	req.serial_len = serial ? 9 : 0;
	req.not_before = nb;
	fmt_signer_from_pkey(&s, issuer_key);
	assert_int_equal(fmt_certprof_issue(&req, &s, &x), IMP_OK);
	fmt_name_entries_free(subj, ns);
	return x;
}

static size_t tbs_of(X509 *x, uint8_t **out)
{
	int n = i2d_re_X509_tbs(x, out);

	assert_true(n > 0);
	return (size_t)n;
}

/* The default set is today's fixed output, role by role. */
static void test_default_is_fixed_output(void **st)
{
	static const uint8_t serial[9] = { 0x01, 2, 3, 4, 5, 6, 7, 8, 9 };
	static const enum fmt_cert_profile fixed[FMT_CP_ROLE_COUNT] = {
		FMT_CERT_ROOT_CA,     FMT_CERT_SUB_CA,    FMT_CERT_RECORD_SIGNING,
		FMT_CERT_CODE_SIGNING, FMT_CERT_REVOCATION, FMT_CERT_DEVICE,
	};
	static const char *const cn[FMT_CP_ROLE_COUNT] = {
		"Acme Corp Root CA",      "Acme Corp Device Identity CA", "Acme Corp Record Signing",
		"Acme Corp Code Signing", "Acme Corp Revocation",         NULL,
	};
	struct fmt_certprof_set *set = load_set("default");
	EVP_PKEY *key[FMT_CP_ROLE_COUNT];
	X509 *root_p = NULL, *root_f = NULL, *ca_p = NULL, *ca_f = NULL;
	time_t nb = time(NULL) - 3600;

	(void)st;
	for (int r = 0; r < FMT_CP_ROLE_COUNT; r++)
		key[r] = new_key();
	for (int r = 0; r < FMT_CP_ROLE_COUNT; r++) {
		struct fmt_name_entry org[] = { { "C", "DE" }, { "O", "Acme Corp" }, { "CN", cn[r] } };
		struct fmt_name_entry dev[] = { { "O", "Acme Corp" }, { "CN", "ACM000042" },
						{ "serialNumber", "00112233" } };
		X509 *iss_p = r == FMT_CP_ROOT ? NULL : r == FMT_CP_DEVICE ? ca_p : root_p;
		X509 *iss_f = r == FMT_CP_ROOT ? NULL : r == FMT_CP_DEVICE ? ca_f : root_f;
		EVP_PKEY *ik = r == FMT_CP_ROOT ? key[r] : r == FMT_CP_DEVICE ? key[1] : key[0];
		struct fmt_cert_request req = {
			.profile = fixed[r],
			.subject = r == FMT_CP_DEVICE ? dev : org,
			.subject_count = 3,
			.subject_key = key[r],
			.issuer = iss_f,
			.serial = serial,
			.serial_len = sizeof(serial),
			.validity_days = r == FMT_CP_ROOT ? 9125 : 7300,
			.not_before = nb,
		};
		struct fmt_signer s;
		X509 *xf = NULL, *xp;
		uint8_t *tf = NULL, *tp = NULL;
		size_t nf, np;

		fmt_signer_from_pkey(&s, ik);
		assert_int_equal(fmt_cert_issue(&req, &s, &xf), IMP_OK);
		assert_int_equal(fmt_certprof_role(set->role[r]), r);
		xp = issue_role(set->role[r], key[r], iss_p, ik, serial, nb);
		nf = tbs_of(xf, &tf);
		np = tbs_of(xp, &tp);
		if (nf != np || memcmp(tf, tp, nf) != 0)
			fail_msg("role %s: the profile's TBSCertificate differs from the fixed "
				 "path's", fmt_certprof_role_name((enum fmt_certprof_role)r));
		OPENSSL_free(tf);
		OPENSSL_free(tp);
		if (r == FMT_CP_ROOT) {
			root_p = xp;
			root_f = xf;
		} else if (r == FMT_CP_DEVICE_CA) {
			ca_p = xp;
			ca_f = xf;
		} else {
			X509_free(xp);
			X509_free(xf);
		}
	}
	X509_free(root_p);
	X509_free(root_f);
	X509_free(ca_p);
	X509_free(ca_f);
	for (int r = 0; r < FMT_CP_ROLE_COUNT; r++)
		EVP_PKEY_free(key[r]);
	fmt_certprof_set_free(set);
}

/* Length of a DER header at p and, in *len, of what it heads. */
static size_t der_hdr(const uint8_t *p, size_t *len)
{
	size_t n, l = 0;

	if (p[1] < 0x80) {
		*len = p[1];
		return 2;
	}
	n = p[1] & 0x7f;
	for (size_t i = 0; i < n; i++)
		l = l << 8 | p[2 + i];
	*len = l;
	return 2 + n;
}

static size_t outer_hdr(const uint8_t *cert)
{
	size_t len;

	return der_hdr(cert, &len);
}

/* Bytes of TBSCertificate + signatureAlgorithm of a certificate's DER. */
static size_t tbs_and_alg_len(const uint8_t *cert, size_t n)
{
	size_t len, h = der_hdr(cert, &len), t = 0, tl, al;

	assert_int_equal(h + len, n);
	t = der_hdr(cert + h, &tl) + tl;
	al = der_hdr(cert + h + t, &len) + len;
	return t + al;
}

/*
 * fmt_certprof_issue_der, for every shipped device profile: DER that
 * OpenSSL reads whole, signed by the issuer (X509_verify), whose subject key
 * fmt_cert_der_point finds; a signer that signs with another key than the
 * issuer's is caught (IMP_ERR_VERIFY, nothing returned), as by
 * fmt_certprof_issue.
 */
static void test_issue_der(void **st)
{
	static const char *const sets[] = { "default", "ieee-802.1ar-idevid", "matter-dac" };

	(void)st;
	for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
		struct fmt_certprof_set *set = load_set(sets[i]);
		const struct fmt_certprof *p = set->role[FMT_CP_DEVICE];
		EVP_PKEY *root_key = new_key(), *ca_key = new_key(), *dev = new_key(),
			 *other = new_key();
		X509 *root = issue_role(set->role[FMT_CP_ROOT], root_key, NULL, root_key, NULL, 0);
		X509 *ca = issue_role(set->role[FMT_CP_DEVICE_CA], ca_key, root, root_key, NULL, 0);
		struct fmt_name_entry *subj = NULL;
		size_t ns = 0;
		struct fmt_certprof_request req = { 0 };
		struct fmt_signer s;
		uint8_t *der = NULL, point[65], want[65];
		size_t n = 0;
		const unsigned char *q;
		X509 *x;

		struct fmt_name_entry dflt[] = { { "O", "Acme Corp" }, { "CN", "ACM000042" } };

		if (fmt_certprof_has_subject(p))
			assert_int_equal(fmt_certprof_subject(p, &vars, &subj, &ns), IMP_OK);
		req.profile = p;
		req.subject = subj ? subj : dflt;
		req.subject_count = subj ? ns : 2;
		req.vars = &vars;
		req.subject_key = dev;
		req.issuer = ca;
		fmt_signer_from_pkey(&s, ca_key);
		assert_int_equal(fmt_certprof_issue_der(&req, &s, &der, &n), IMP_OK);
		q = der;
		x = d2i_X509(NULL, &q, (long)n);
		assert_non_null(x);
		assert_ptr_equal(q, der + n);
		assert_int_equal(X509_verify(x, ca_key), 1);
		assert_int_equal(fmt_cert_der_point(der, n, point), IMP_OK);
		assert_int_equal(fmt_pubkey_to_point(dev, want), IMP_OK);
		assert_memory_equal(point, want, sizeof(want));
		assert_int_equal(fmt_cert_der_point(der, n - 1, point), IMP_ERR_PROTOCOL);
		der[4] ^= 0x01; /* the TBS part's length */
		assert_int_equal(fmt_cert_der_point(der, n, point), IMP_ERR_PROTOCOL);
		X509_free(x);
		free(der);
		der = NULL;
		/* The DER path encodes its TBSCertificate directly: byte for byte
		 * the one of the X509 path (fmt_certprof_issue) for the same
		 * serial and time, with and without the cap at the issuer's end. */
		for (int cap = 0; cap < 2; cap++) {
			static const uint8_t serial[] = { 0x4a, 0x01, 0x02, 0x03, 0x04, 0x05,
							  0x06, 0x07, 0x08, 0x09 };
			uint8_t *a = NULL, *b = NULL;
			size_t an = 0, ta, tb;
			X509 *y = NULL;
			int bn;

			req.serial = serial;
			req.serial_len = sizeof(serial);
			req.not_before = 1800000000;
			if (cap) {
				/* a day before the issuing CA ends: notAfter is capped */
				struct tm end;

				assert_int_equal(ASN1_TIME_to_tm(X509_get0_notAfter(ca), &end), 1);
				req.not_before = timegm(&end) - 86400;
			}
			assert_int_equal(fmt_certprof_issue_der(&req, &s, &a, &an), IMP_OK);
			assert_int_equal(fmt_certprof_issue(&req, &s, &y), IMP_OK);
			bn = i2d_X509(y, &b);
			assert_true(bn > 0);
			/* TBSCertificate and signatureAlgorithm: all but the signature */
			ta = tbs_and_alg_len(a, an);
			tb = tbs_and_alg_len(b, (size_t)bn);
			assert_int_equal(ta, tb);
			assert_memory_equal(a + outer_hdr(a), b + outer_hdr(b), ta);
			free(a);
			OPENSSL_free(b);
			X509_free(y);
			req.serial = NULL;
			req.serial_len = 0;
			req.not_before = 0;
		}
		fmt_signer_from_pkey(&s, other);
		s.pub = ca_key; /* claims the issuer's key, signs with another */
		assert_int_equal(fmt_certprof_issue_der(&req, &s, &der, &n), IMP_ERR_VERIFY);
		assert_null(der);
		assert_int_equal(n, 0);
		fmt_name_entries_free(subj, ns);
		X509_free(root);
		X509_free(ca);
		EVP_PKEY_free(root_key);
		EVP_PKEY_free(ca_key);
		EVP_PKEY_free(dev);
		EVP_PKEY_free(other);
		fmt_certprof_set_free(set);
	}
}

/* Every shipped set: a chain that verifies strictly, nothing outliving its issuer. */
static void test_shipped_sets_chain(void **st)
{
	static const char *const sets[] = { "default", "ieee-802.1ar-idevid", "matter-dac" };

	(void)st;
	for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
		struct fmt_certprof_set *set = load_set(sets[i]);
		EVP_PKEY *k[FMT_CP_ROLE_COUNT];
		X509 *c[FMT_CP_ROLE_COUNT];
		X509_STORE *trust = X509_STORE_new();
		STACK_OF(X509) *mid = sk_X509_new_null();

		for (int r = 0; r < FMT_CP_ROLE_COUNT; r++)
			k[r] = new_key();
		c[FMT_CP_ROOT] = issue_role(set->role[FMT_CP_ROOT], k[0], NULL, k[0], NULL, 0);
		for (int r = 1; r < FMT_CP_DEVICE; r++)
			c[r] = issue_role(set->role[r], k[r], c[FMT_CP_ROOT], k[0], NULL, 0);
		c[FMT_CP_DEVICE] = issue_role(set->role[FMT_CP_DEVICE], k[FMT_CP_DEVICE],
					      c[FMT_CP_DEVICE_CA], k[FMT_CP_DEVICE_CA], NULL, 0);
		for (int r = 1; r < FMT_CP_ROLE_COUNT; r++) {
			X509 *issuer = r == FMT_CP_DEVICE ? c[FMT_CP_DEVICE_CA] : c[FMT_CP_ROOT];

			if (ASN1_TIME_compare(X509_get0_notAfter(c[r]), X509_get0_notAfter(issuer)) > 0)
				fail_msg("%s: %s outlives its issuer", sets[i],
					 fmt_certprof_role_name((enum fmt_certprof_role)r));
		}
		assert_int_equal(X509_STORE_add_cert(trust, c[FMT_CP_ROOT]), 1);
		assert_int_equal(sk_X509_push(mid, c[FMT_CP_DEVICE_CA]), 1);
		assert_int_equal(fmt_cert_verify_chain(trust, c[FMT_CP_DEVICE], mid,
						       fmt_certprof_key_usage(set->role[FMT_CP_DEVICE])),
				 IMP_OK);
		/* the verifiers' fast path reads every shipped device profile */
		{
			uint8_t *der = NULL;
			size_t n = 0;
			struct fmt_cert_view cv;

			assert_int_equal(fmt_cert_to_der(c[FMT_CP_DEVICE], &der, &n), IMP_OK);
			if (fmt_cert_view_leaf(der, n, &cv) != IMP_OK)
				fail_msg("%s: the fast path does not read the device certificate",
					 sets[i]);
			assert_int_equal(cv.key_usage,
					 fmt_certprof_key_usage(set->role[FMT_CP_DEVICE]));
			free(der);
		}
		if (strcmp(sets[i], "default") != 0) {
			/* 802.1AR and Matter: the device certificate carries digitalSignature only */
			assert_int_equal(fmt_certprof_key_usage(set->role[FMT_CP_DEVICE]),
					 FMT_KU_DIGITAL_SIGNATURE);
		}
		if (strcmp(sets[i], "ieee-802.1ar-idevid") == 0) {
			const ASN1_TIME *na = X509_get0_notAfter(c[FMT_CP_DEVICE]);

			assert_int_equal(ASN1_STRING_type(na), V_ASN1_GENERALIZEDTIME);
			assert_memory_equal(ASN1_STRING_get0_data(na), "99991231235959Z", 15);
		}
		sk_X509_free(mid);
		X509_STORE_free(trust);
		for (int r = 0; r < FMT_CP_ROLE_COUNT; r++) {
			X509_free(c[r]);
			EVP_PKEY_free(k[r]);
		}
		fmt_certprof_set_free(set);
	}
}

/* A profile folder of one test: DIR/NAME.json files. */
static char dir[64];

static void put(const char *name, const char *json)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.json", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(json, f);
	fclose(f);
}

#define HEAD(name, role) "{\"format\": \"imprint-certprofile/1\", \"name\": \"" name "\", \"role\": \"" role "\", "
#define CA_KU "\"key_usage\": {\"critical\": true, \"usages\": [\"keyCertSign\", \"cRLSign\"]}"
#define EE_BC "\"basic_constraints\": {\"critical\": true, \"ca\": false}"
#define EE_KU "\"key_usage\": {\"critical\": true, \"usages\": [\"digitalSignature\"]}"
#define SUBJ "\"subject\": [{\"attr\": \"CN\", \"value\": \"{org} X\"}]"

static void write_chain(const char *root_validity, const char *ca_validity)
{
	char buf[1024];

	snprintf(buf, sizeof(buf),
		 HEAD("t-root", "root") SUBJ ", %s \"basic_constraints\": {\"critical\": true, "
					   "\"ca\": true, \"path_len\": 1}, " CA_KU "}",
		 root_validity);
	put("t-root", buf);
	snprintf(buf, sizeof(buf),
		 HEAD("t-ca", "device-ca") "\"issuer\": \"t-root\", " SUBJ ", %s "
		 "\"basic_constraints\": {\"critical\": true, \"ca\": true, \"path_len\": 0}, " CA_KU
		 "}",
		 ca_validity);
	put("t-ca", buf);
}

/* The test folder's settings: the default org signers (organisation.
 * ca_validity_days) within the test roots' lifetimes. */
static const struct fmt_certprof_settings small = {
	.config_dir = NULL, .device_days = 7300, .root_days = 9125, .ca_days = 300,
	.subject_configured = false, .has_vid = true, .has_pid = true,
};

/* Load t-dev from dir; the message must hold want. */
static void expect_refused(const char *dev_json, const char *want)
{
	struct fmt_certprof_set *set = NULL;
	char err[512] = "";
	imp_err rc;

	put("t-dev", dev_json);
	rc = fmt_certprof_set_load("t-dev", &small, &set, err, sizeof(err));
	if (rc != IMP_ERR_CONFIG || !strstr(err, want))
		fail_msg("expected IMP_ERR_CONFIG with \"%s\", got %s: %s", want, imp_err_name(rc),
			 err);
	assert_null(set);
}

static int setup_dir(void **st)
{
	(void)st;
	snprintf(dir, sizeof(dir), "/tmp/imp-certprof-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	setenv("IMPRINT_CERTPROFILE_PATH", dir, 1);
	/* the default org signer profiles come from the source tree */
	return 0;
}

static int teardown_dir(void **st)
{
	char cmd[128];

	(void)st;
	unsetenv("IMPRINT_CERTPROFILE_PATH");
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* A profile that would outlive its issuer is refused at load. */
static void test_outliving_issuer_refused(void **st)
{
	struct fmt_certprof_set *set = NULL;
	char err[512];

	(void)st;
	write_chain("\"validity\": {\"days\": 3650},", "\"validity\": {\"days\": 1000},");
	/* within: loads */
	put("t-dev", HEAD("t-dev", "device") "\"issuer\": \"t-ca\", \"validity\": {\"days\": 900}, "
		EE_BC ", " EE_KU "}");
	if (fmt_certprof_set_load("t-dev", &small, &set, err, sizeof(err)) != IMP_OK)
		fail_msg("a profile within its issuer was refused: %s", err);
	fmt_certprof_set_free(set);
	expect_refused(HEAD("t-dev", "device") "\"issuer\": \"t-ca\", \"validity\": {\"not_after\": "
		       "\"99991231235959Z\"}, " EE_BC ", " EE_KU "}",
		       "validity.not_after: 99991231235959Z would outlive the issuer 't-ca'");
	expect_refused(HEAD("t-dev", "device") "\"issuer\": \"t-ca\", \"validity\": {\"days\": 1001}, "
		       EE_BC ", " EE_KU "}",
		       "validity.days: 1001 days would outlive the issuer 't-ca'");
	/* from the configuration: certificate.validity_days (7300) under 1000 days */
	expect_refused(HEAD("t-dev", "device") "\"issuer\": \"t-ca\", " EE_BC ", " EE_KU "}",
		       "validity (from certificate.validity_days): 7300 days would outlive");
	/* the CA outliving the root */
	write_chain("\"validity\": {\"days\": 365},", "\"validity\": {\"days\": 366},");
	expect_refused(HEAD("t-dev", "device") "\"issuer\": \"t-ca\", \"validity\": {\"days\": 1}, "
		       EE_BC ", " EE_KU "}",
		       "certificate profile 't-ca'");
	/* under a root without expiry, a CA without expiry is fine */
	write_chain("\"validity\": {\"not_after\": \"99991231235959Z\"},",
		    "\"validity\": {\"not_after\": \"99991231235959Z\"},");
	put("t-dev", HEAD("t-dev", "device") "\"issuer\": \"t-ca\", \"validity\": {\"not_after\": "
		"\"99991231235959Z\"}, " EE_BC ", " EE_KU "}");
	assert_int_equal(fmt_certprof_set_load("t-dev", &small, &set, err, sizeof(err)), IMP_OK);
	fmt_certprof_set_free(set);
}

/* Bad fields: refused at load, the JSON path named. */
static void test_bad_fields_named(void **st)
{
	static const struct {
		const char *body; /* after HEAD("t-dev", "device") */
		const char *want;
	} bad[] = {
		{ "\"issuer\": \"t-ca\", \"basic_constraints\": {\"critical\": true, \"ca\": false, "
		  "\"path_len\": 0}, " EE_KU "}",
		  "basic_constraints.path_len: not allowed when ca is false" },
		{ "\"issuer\": \"t-ca\", " EE_BC ", \"key_usage\": {\"critical\": true, \"usages\": "
		  "[\"digitalSignature\", \"sign\"]}}",
		  "key_usage.usages[1]: expected \"digitalSignature\", \"nonRepudiation\"" },
		{ "\"issuer\": \"t-ca\", \"serial_bytes\": 21, " EE_BC ", " EE_KU "}",
		  "serial_bytes: expected an integer from 2 to 20" },
		{ "\"issuer\": \"t-ca\", \"subject\": [{\"attr\": \"XX\", \"value\": \"a\"}], " EE_BC
		  ", " EE_KU "}",
		  "subject[0].attr: 'XX' is neither" },
		{ "\"issuer\": \"t-ca\", \"subject\": [{\"attr\": \"CN\", \"value\": \"{mac}\"}], " EE_BC
		  ", " EE_KU "}",
		  "subject[0].value: unknown placeholder" },
		{ "\"issuer\": \"t-ca\", \"validity\": {\"not_after\": \"20991231235959Z\"}, " EE_BC ", "
		  EE_KU "}",
		  "validity.not_after: expected \"99991231235959Z\"" },
		{ "\"issuer\": \"t-ca\", " EE_BC ", " EE_KU ", \"subject_alt_name\": {\"critical\": "
		  "false, \"names\": [{\"other_name\": {\"type_id\": \"1.3.6.1.5.5.7.8.4\", "
		  "\"hw_serial\": \"{uid}\"}}]}}",
		  "subject_alt_name.names[0].other_name.hw_type: expected the hardware type" },
		{ "\"issuer\": \"t-ca\", " EE_BC ", " EE_KU ", \"subject_alt_name\": {\"critical\": "
		  "false, \"names\": [{\"uri\": \"no scheme\"}]}}",
		  "subject_alt_name.names[0].uri: expected an ASCII URI" },
		{ "\"issuer\": \"t-ca\", " EE_BC ", " EE_KU ", \"crl_distribution_points\": "
		  "[\"ftp//x\"]}",
		  "crl_distribution_points[0]: expected an ASCII URL" },
		{ "\"issuer\": \"t-ca\", " EE_BC ", " EE_KU ", \"authority_info_access\": {\"ocsp\": "
		  "[], \"x\": 1}}",
		  "authority_info_access.x: unknown key" },
		{ "\"issuer\": \"t-ca\", " EE_BC ", " EE_KU ", \"colour\": \"red\"}",
		  "colour: unknown key" },
		{ "\"issuer\": \"t-ca\", \"basic_constraints\": {\"critical\": true, \"ca\": true}, "
		  CA_KU "}",
		  "basic_constraints.ca: expected false for role device" },
		{ "\"issuer\": \"t-ca\", " EE_BC ", \"key_usage\": {\"critical\": true, \"usages\": "
		  "[\"keyAgreement\"]}}",
		  "key_usage.usages: a device certificate needs digitalSignature" },
		{ "\"issuer\": \"t-ca\", " EE_BC ", " EE_KU ", \"extended_key_usage\": {\"critical\": "
		  "false, \"purposes\": [\"CN\"]}}",
		  "extended_key_usage.purposes[0]: expected a purpose name" },
		{ "\"issuer\": \"t-root\", " EE_BC ", " EE_KU "}",
		  "role: is root, but the issuer of 't-dev' needs a device-ca profile" },
		{ "\"issuer\": \"t-none\", " EE_BC ", " EE_KU "}",
		  "the issuer of 't-dev': no certificate profile 't-none'" },
		{ "\"issuer\": \"t-ca\", " EE_BC "}", "key_usage: missing" },
	};

	(void)st;
	write_chain("", "");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char buf[1024];

		snprintf(buf, sizeof(buf), "%s%s", HEAD("t-dev", "device"), bad[i].body);
		expect_refused(buf, bad[i].want);
	}
	/* the wrong format tag and a name that is not the file's */
	expect_refused("{\"format\": \"imprint-profile/1\", \"name\": \"t-dev\"}",
		       "format: expected \"imprint-certprofile/1\"");
	expect_refused("{\"format\": \"imprint-certprofile/1\", \"name\": \"other\"}",
		       "name: expected \"t-dev\"");
}

/* dup of cert with extension nid replaced by raw value bytes, re-signed by key */
static X509 *with_ext(X509 *cert, int nid, const uint8_t *raw, size_t n, EVP_PKEY *key)
{
	X509 *x = X509_dup(cert);
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	X509_EXTENSION *e;
	int at;

	assert_non_null(x);
	assert_int_equal(ASN1_OCTET_STRING_set(os, raw, (int)n), 1);
	at = X509_get_ext_by_NID(x, nid, -1);
	if (at >= 0)
		X509_EXTENSION_free(X509_delete_ext(x, at));
	e = X509_EXTENSION_create_by_NID(NULL, nid, 0, os);
	assert_non_null(e);
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
	ASN1_OCTET_STRING_free(os);
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	return x;
}

/* fmt_cert_view_leaf (the fast path) on cert. */
static imp_err view(X509 *cert)
{
	uint8_t *der = NULL;
	size_t n = 0;
	struct fmt_cert_view cv;
	imp_err rc;

	assert_int_equal(fmt_cert_to_der(cert, &der, &n), IMP_OK);
	rc = fmt_cert_view_leaf(der, n, &cv);
	free(der);
	return rc;
}

/* The verifier accepts the profiles' new extensions, and refuses them malformed. */
static void test_verifier_extensions(void **st)
{
	/* subjectAltName: one otherName hardwareModuleName holding only hwType */
	static const uint8_t hw_no_serial[] = { 0x30, 0x17, 0xa0, 0x15, 0x06, 0x08, 0x2b, 0x06,
						0x01, 0x05, 0x05, 0x07, 0x08, 0x04, 0xa0, 0x09,
						0x30, 0x07, 0x06, 0x05, 0x2b, 0x06, 0x01, 0x04,
						0x01 };
	static const uint8_t garbage[] = { 0x30, 0x05, 0x04, 0x01 };
	struct fmt_certprof_set *set = NULL;
	char err[512];
	EVP_PKEY *k[3] = { new_key(), new_key(), new_key() };
	X509 *root, *ca, *dev, *bad;
	X509_STORE *trust = X509_STORE_new();
	STACK_OF(X509) *mid = sk_X509_new_null();

	(void)st;
	write_chain("\"validity\": {\"not_after\": \"99991231235959Z\"},",
		    "\"validity\": {\"not_after\": \"99991231235959Z\"},");
	put("t-dev", HEAD("t-dev", "device") "\"issuer\": \"t-ca\", " EE_BC ", " EE_KU ", "
		"\"validity\": {\"days\": 30}, "
		"\"subject_alt_name\": {\"critical\": false, \"names\": ["
		"{\"other_name\": {\"type_id\": \"1.3.6.1.5.5.7.8.4\", \"hw_type\": "
		"\"1.3.6.1.4.1.32473.1\", \"hw_serial\": \"{uid}\", \"encoding\": \"hex\"}}, "
		"{\"other_name\": {\"type_id\": \"1.3.6.1.4.1.32473.2\", \"utf8\": \"{serial}\"}}, "
		"{\"uri\": \"urn:acme:{serial}\"}, {\"dns\": \"{serial}.devices.example\"}]}, "
		"\"crl_distribution_points\": [\"http://crl.example/ca.crl\"], "
		"\"authority_info_access\": {\"ocsp\": [\"http://ocsp.example\"], "
		"\"ca_issuers\": [\"http://ca.example/ca.der\"]}}");
	if (fmt_certprof_set_load("t-dev", &small, &set, err, sizeof(err)) != IMP_OK)
		fail_msg("%s", err);
	root = issue_role(set->role[FMT_CP_ROOT], k[0], NULL, k[0], NULL, 0);
	ca = issue_role(set->role[FMT_CP_DEVICE_CA], k[1], root, k[0], NULL, 0);
	dev = issue_role(set->role[FMT_CP_DEVICE], k[2], ca, k[1], NULL, 0);
	assert_int_equal(X509_STORE_add_cert(trust, root), 1);
	assert_int_equal(sk_X509_push(mid, ca), 1);
	assert_int_equal(X509_get_ext_count(dev), 7); /* BC KU SKI AKI SAN CRLDP AIA */
	assert_int_equal(fmt_cert_verify_chain(trust, dev, mid, FMT_KU_DIGITAL_SIGNATURE), IMP_OK);

	/* CRL distribution points and AIA: left to the reference path */
	assert_int_equal(view(dev), IMP_ERR_PROTOCOL);
	bad = with_ext(dev, NID_subject_alt_name, hw_no_serial, sizeof(hw_no_serial), k[1]);
	assert_int_equal(fmt_cert_verify_chain(trust, bad, mid, FMT_KU_DIGITAL_SIGNATURE),
			 IMP_ERR_VERIFY);
	assert_int_equal(view(bad), IMP_ERR_PROTOCOL);
	X509_free(bad);
	bad = with_ext(dev, NID_subject_alt_name, garbage, sizeof(garbage), k[1]);
	assert_int_equal(fmt_cert_verify_chain(trust, bad, mid, FMT_KU_DIGITAL_SIGNATURE),
			 IMP_ERR_VERIFY);
	X509_free(bad);
	bad = with_ext(dev, NID_crl_distribution_points, garbage, sizeof(garbage), k[1]);
	assert_int_equal(fmt_cert_verify_chain(trust, bad, mid, FMT_KU_DIGITAL_SIGNATURE),
			 IMP_ERR_VERIFY);
	X509_free(bad);
	bad = with_ext(dev, NID_info_access, garbage, sizeof(garbage), k[1]);
	assert_int_equal(fmt_cert_verify_chain(trust, bad, mid, FMT_KU_DIGITAL_SIGNATURE),
			 IMP_ERR_VERIFY);
	X509_free(bad);
	/* control: the same re-signing with the good SAN's own bytes still verifies */
	{
		const X509_EXTENSION *e = X509_get_ext(dev, X509_get_ext_by_NID(dev,
							NID_subject_alt_name, -1));
		const ASN1_OCTET_STRING *v = X509_EXTENSION_get_data((X509_EXTENSION *)e);

		bad = with_ext(dev, NID_subject_alt_name, ASN1_STRING_get0_data(v),
			       (size_t)ASN1_STRING_length(v), k[1]);
		assert_int_equal(fmt_cert_verify_chain(trust, bad, mid, FMT_KU_DIGITAL_SIGNATURE),
				 IMP_OK);
		X509_free(bad);
	}
	sk_X509_free(mid);
	X509_STORE_free(trust);
	X509_free(root);
	X509_free(ca);
	X509_free(dev);
	for (int i = 0; i < 3; i++)
		EVP_PKEY_free(k[i]);
	fmt_certprof_set_free(set);
}

/* {vid} without matter.vendor_id in the configuration: refused, field named. */
static void test_vid_needs_config(void **st)
{
	struct fmt_certprof_settings s = settings;
	struct fmt_certprof_set *set = NULL;
	char err[512];

	(void)st;
	unsetenv("IMPRINT_CERTPROFILE_PATH");
	s.has_vid = false;
	assert_int_equal(fmt_certprof_set_load("matter-dac", &s, &set, err, sizeof(err)),
			 IMP_ERR_CONFIG);
	assert_non_null(strstr(err, "subject[1].value: {vid} needs matter.vendor_id"));
	/* a configured subject with a profile that fixes its own */
	s = settings;
	s.subject_configured = true;
	assert_int_equal(fmt_certprof_set_load("matter-dac", &s, &set, err, sizeof(err)),
			 IMP_ERR_CONFIG);
	assert_non_null(strstr(err, "certificate.subject: the certificate profile 'matter-dac' "
				    "fixes the subject"));
	setenv("IMPRINT_CERTPROFILE_PATH", dir, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_is_fixed_output),
		cmocka_unit_test(test_shipped_sets_chain),
		cmocka_unit_test(test_issue_der),
		cmocka_unit_test(test_outliving_issuer_refused),
		cmocka_unit_test(test_bad_fields_named),
		cmocka_unit_test(test_vid_needs_config),
		cmocka_unit_test(test_verifier_extensions),
	};

	imp_log_set_level(IMP_LOG_QUIET);
	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}

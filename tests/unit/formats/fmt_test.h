/*
 * Shared helpers of the formats unit tests: keys, an in-memory signer (a
 * struct fmt_signer over an OpenSSL key) and a small organisation hierarchy.
 */
#ifndef FMT_TEST_H
#define FMT_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "formats/signer.h"
#include "formats/x509.h"
#include "imprint/log.h"

struct hierarchy {
	EVP_PKEY *root_key, *ca_key, *rec_key, *rev_key, *code_key, *dev_key;
	X509 *root, *ca, *rec, *rev, *code, *dev;
	X509_STORE *trust; /* holds root */
};

static inline EVP_PKEY *new_key(void)
{
	EVP_PKEY *k = NULL;

	assert_int_equal(fmt_p256_generate(&k), IMP_OK);
	return k;
}

static inline X509 *issue(enum fmt_cert_profile profile, const char *cn, EVP_PKEY *subject_key,
			  X509 *issuer, EVP_PKEY *issuer_key)
{
	struct fmt_name_entry subj[] = { { "C", "DE" }, { "O", "Acme Corp" }, { "CN", cn } };
	struct fmt_cert_request req = {
		.profile = profile,
		.subject = subj,
		.subject_count = 3,
		.subject_key = subject_key,
		.issuer = issuer,
		.validity_days = 365,
	};
	struct fmt_signer s;
	X509 *x = NULL;

	fmt_signer_from_pkey(&s, issuer_key);
	assert_int_equal(fmt_cert_issue(&req, &s, &x), IMP_OK);
	assert_non_null(x);
	return x;
}

static inline void hierarchy_init(struct hierarchy *h)
{
	memset(h, 0, sizeof(*h));
	h->root_key = new_key();
	h->ca_key = new_key();
	h->rec_key = new_key();
	h->rev_key = new_key();
	h->code_key = new_key();
	h->dev_key = new_key();
	h->root = issue(FMT_CERT_ROOT_CA, "Acme Root CA", h->root_key, NULL, h->root_key);
	h->ca = issue(FMT_CERT_SUB_CA, "Acme Device CA", h->ca_key, h->root, h->root_key);
	h->rec = issue(FMT_CERT_RECORD_SIGNING, "Acme Records", h->rec_key, h->root, h->root_key);
	h->rev = issue(FMT_CERT_REVOCATION, "Acme Revocation", h->rev_key, h->root, h->root_key);
	h->code = issue(FMT_CERT_CODE_SIGNING, "Acme Code", h->code_key, h->root, h->root_key);
	h->dev = issue(FMT_CERT_DEVICE, "ACM000042N", h->dev_key, h->ca, h->ca_key);
	h->trust = X509_STORE_new();
	assert_non_null(h->trust);
	assert_int_equal(X509_STORE_add_cert(h->trust, h->root), 1);
}

static inline void hierarchy_release(struct hierarchy *h)
{
	EVP_PKEY *keys[] = { h->root_key, h->ca_key, h->rec_key, h->rev_key, h->code_key,
			     h->dev_key };
	X509 *certs[] = { h->root, h->ca, h->rec, h->rev, h->code, h->dev };

	for (size_t i = 0; i < 6; i++) {
		EVP_PKEY_free(keys[i]);
		X509_free(certs[i]);
	}
	X509_STORE_free(h->trust);
	memset(h, 0, sizeof(*h));
}

#endif

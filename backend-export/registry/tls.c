/*
 * init-tls: throwaway TLS material for the demo and the tests, so that no
 * manual openssl step is needed. Real deployments use their own PKI
 * (docs/REGISTRY.md). Files in DIR (keys mode 0600, created exclusively):
 *   ca.pem, ca.key          a TLS CA (not the organisation's root!)
 *   server.pem, server.key  the registry: CN localhost, SAN DNS:localhost,
 *                           IP:127.0.0.1, IP:::1, serverAuth
 *   client.pem, client.key  the station: CN imprint-station, clientAuth
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "formats/signer.h"
#include "formats/x509.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "registry.h"

#define TLS_DAYS 825

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ex;
	int ok;

	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ex)
		return 0;
	ok = X509_add_ext(cert, ex, -1);
	X509_EXTENSION_free(ex);
	return ok;
}

/* Issue a certificate for key, signed by ikey (issuer NULL: self-signed). */
static X509 *issue(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *ikey,
		   const char *const exts[][2], size_t next)
{
	X509 *c = X509_new();
	X509_NAME *name = X509_NAME_new();
	uint8_t serial[16];
	BIGNUM *bn = NULL;
	bool ok = c && name;

	ok = ok && RAND_bytes(serial, sizeof(serial)) == 1;
	serial[0] &= 0x7f;
	ok = ok && (bn = BN_bin2bn(serial, sizeof(serial), NULL)) &&
	     BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c));
	ok = ok && X509_set_version(c, 2) &&
	     X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
					(const unsigned char *)"imprint demo TLS", -1, -1, 0) &&
	     X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
					-1, 0) &&
	     X509_set_subject_name(c, name) &&
	     X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name) &&
	     X509_gmtime_adj(X509_getm_notBefore(c), -300) &&
	     X509_gmtime_adj(X509_getm_notAfter(c), (long)TLS_DAYS * 86400) &&
	     X509_set_pubkey(c, key);
	for (size_t i = 0; ok && i < next; i++)
		ok = add_ext(c, issuer ? issuer : c, OBJ_txt2nid(exts[i][0]), exts[i][1]);
	ok = ok && X509_sign(c, ikey, EVP_sha256()) > 0;
	BN_free(bn);
	X509_NAME_free(name);
	if (!ok) {
		X509_free(c);
		return NULL;
	}
	return c;
}

static imp_err write_pair(const char *dir, const char *base, X509 *c, EVP_PKEY *k)
{
	char path[4200];
	BIO *b = BIO_new(BIO_s_mem());
	char *p;
	long n;
	imp_err rc = IMP_ERR_CRYPTO;

	if (!b)
		return IMP_ERR_NOMEM;
	if (PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) == 1) {
		n = BIO_get_mem_data(b, &p);
		snprintf(path, sizeof(path), "%s/%s.key", dir, base);
		rc = imp_write_secret_file(path, p, (size_t)n);
		OPENSSL_cleanse(p, (size_t)n);
	}
	BIO_free(b);
	if (rc != IMP_OK)
		return rc;
	snprintf(path, sizeof(path), "%s/%s.pem", dir, base);
	return fmt_cert_write_pem(c, path);
}

imp_err reg_init_tls(const char *dir)
{
	static const char *const ca_ext[][2] = {
		{ "basicConstraints", "critical,CA:TRUE,pathlen:0" },
		{ "keyUsage", "critical,keyCertSign,cRLSign" },
		{ "subjectKeyIdentifier", "hash" },
	};
	static const char *const server_ext[][2] = {
		{ "basicConstraints", "critical,CA:FALSE" },
		{ "keyUsage", "critical,digitalSignature" },
		{ "extendedKeyUsage", "serverAuth" },
		{ "subjectAltName", "DNS:localhost,IP:127.0.0.1,IP:::1" },
		{ "subjectKeyIdentifier", "hash" },
		{ "authorityKeyIdentifier", "keyid" },
	};
	static const char *const client_ext[][2] = {
		{ "basicConstraints", "critical,CA:FALSE" },
		{ "keyUsage", "critical,digitalSignature" },
		{ "extendedKeyUsage", "clientAuth" },
		{ "subjectKeyIdentifier", "hash" },
		{ "authorityKeyIdentifier", "keyid" },
	};
	EVP_PKEY *ck = NULL, *sk = NULL, *kk = NULL;
	X509 *ca = NULL, *srv = NULL, *cli = NULL;
	char path[4200];
	imp_err rc;

	snprintf(path, sizeof(path), "%s/ca.key", dir);
	rc = imp_mkdir_p(dir, 0700);
	if (rc == IMP_OK && access(path, F_OK) == 0) {
		IMP_ERROR("%s exists: TLS material is already there (remove the folder to make new)",
			  path);
		rc = IMP_ERR_EXISTS;
	}
	if (rc == IMP_OK)
		rc = fmt_p256_generate(&ck);
	if (rc == IMP_OK)
		rc = fmt_p256_generate(&sk);
	if (rc == IMP_OK)
		rc = fmt_p256_generate(&kk);
	if (rc != IMP_OK)
		goto cleanup;
	ca = issue(ck, "imprint demo registry TLS CA", NULL, ck, ca_ext, IMP_ARRAY_SIZE(ca_ext));
	srv = ca ? issue(sk, "localhost", ca, ck, server_ext, IMP_ARRAY_SIZE(server_ext)) : NULL;
	cli = ca ? issue(kk, "imprint-station", ca, ck, client_ext, IMP_ARRAY_SIZE(client_ext))
		 : NULL;
	if (!ca || !srv || !cli) {
		IMP_ERROR("cannot make the TLS certificates");
		rc = IMP_ERR_CRYPTO;
		goto cleanup;
	}
	rc = write_pair(dir, "ca", ca, ck);
	if (rc == IMP_OK)
		rc = write_pair(dir, "server", srv, sk);
	if (rc == IMP_OK)
		rc = write_pair(dir, "client", cli, kk);
cleanup:
	X509_free(ca);
	X509_free(srv);
	X509_free(cli);
	EVP_PKEY_free(ck);
	EVP_PKEY_free(sk);
	EVP_PKEY_free(kk);
	return rc;
}

imp_err reg_tls_pem_check(const char *pem, const char *path, bool key)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *c = NULL;
	EVP_PKEY *k = NULL;
	imp_err rc = IMP_ERR_CONFIG;

	if (!b)
		return IMP_ERR_NOMEM;
	if (key)
		k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	else
		c = PEM_read_bio_X509(b, NULL, NULL, NULL);
	if (k || c)
		rc = IMP_OK;
	else
		IMP_ERROR("%s holds no readable PEM %s (damaged or cut short?); make new TLS "
			  "files with imprint-registry init-tls on an empty directory", path,
			  key ? "private key" : "certificate");
	ERR_clear_error();
	EVP_PKEY_free(k);
	X509_free(c);
	BIO_free(b);
	return rc;
}

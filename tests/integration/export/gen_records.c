/*
 * Generate a test organisation (in-memory keys: root, device CA, record
 * signing, revocation) and N signed identity records, for the audit tests
 * and bench/audit. Writes DIR/trust/{root-ca,device-ca,record-signing,
 * revocation,bundle}.pem and DIR/records.jsonl ({"id":..,"jws":..} lines).
 *
 *   gen_records DIR N [--threads T] [--dup-serial] [--dup-public-key]
 *
 * --dup-serial: the last record reuses the first one's serial;
 * --dup-public-key: the last record reuses the first one's device key.
 * Both stay validly signed, so only uniqueness can catch them.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/record.h"
#include "formats/x509.h"
#include "imprint/util.h"

struct org {
	EVP_PKEY *key[4];
	X509 *cert[4];
	struct fmt_signer signer[4];
};

struct gen {
	struct org *org;
	long from, to, n;
	bool dup_serial, dup_key;
	EVP_PKEY *first_key;
	FILE *out;
	pthread_mutex_t *lock;
	int rc;
};

static X509 *issue(struct org *o, int profile, const char *cn, EVP_PKEY *key, int issuer)
{
	struct fmt_name_entry subj[] = { { "O", "Audit Test Org" }, { "CN", cn } };
	struct fmt_cert_request req = { 0 };
	X509 *c = NULL;

	req.profile = (enum fmt_cert_profile)profile;
	req.subject = subj;
	req.subject_count = 2;
	req.subject_key = key;
	req.issuer = issuer < 0 ? NULL : o->cert[issuer];
	req.validity_days = 3650;
	if (fmt_cert_issue(&req, &o->signer[issuer < 0 ? 0 : issuer], &c) != IMP_OK)
		return NULL;
	return c;
}

static void *gen_worker(void *arg)
{
	struct gen *g = arg;
	char line[8192];

	for (long i = g->from; i < g->to; i++) {
		char serial[32], cn[32], *jws = NULL;
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
		cert = issue(g->org, FMT_CERT_DEVICE, cn, key, 1);
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

int main(int argc, char **argv)
{
	static const char *const files[4] = { "root-ca.pem", "device-ca.pem", "record-signing.pem",
					      "revocation.pem" };
	struct org o = { 0 };
	long n, threads = 2;
	bool dup_serial = false, dup_key = false;
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	char path[4200];
	FILE *bundle, *out;
	struct gen g[16];
	pthread_t th[16];
	int rc = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: gen_records DIR N [--threads T] [--dup-serial] "
				"[--dup-public-key]\n");
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
	}
	if (threads < 1 || threads > 16 || n < 1)
		return 2;
	for (int k = 0; k < 4; k++) {
		if (fmt_p256_generate(&o.key[k]) != IMP_OK)
			return 1;
		fmt_signer_from_pkey(&o.signer[k], o.key[k]);
	}
	o.cert[0] = issue(&o, FMT_CERT_ROOT_CA, "Root CA", o.key[0], -1);
	o.cert[1] = issue(&o, FMT_CERT_SUB_CA, "Device CA", o.key[1], 0);
	o.cert[2] = issue(&o, FMT_CERT_RECORD_SIGNING, "Record Signing", o.key[2], 0);
	o.cert[3] = issue(&o, FMT_CERT_REVOCATION, "Revocation", o.key[3], 0);
	snprintf(path, sizeof(path), "%s/trust", argv[1]);
	if (!o.cert[0] || !o.cert[1] || !o.cert[2] || !o.cert[3] || imp_mkdir_p(path, 0755))
		return 1;
	snprintf(path, sizeof(path), "%s/trust/bundle.pem", argv[1]);
	bundle = fopen(path, "w");
	for (int k = 0; k < 4 && bundle; k++) {
		char *pem = NULL;

		snprintf(path, sizeof(path), "%s/trust/%s", argv[1], files[k]);
		if (fmt_cert_write_pem(o.cert[k], path) != IMP_OK ||
		    fmt_cert_to_pem(o.cert[k], &pem) != IMP_OK)
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
	struct gen first = { &o, 0, 1, n, dup_serial, dup_key, NULL, out, &lock, 0 };

	gen_worker(&first);
	rc = first.rc;
	for (long t = 0; t < threads; t++) {
		long span = n - 1;

		g[t] = first;
		g[t].from = 1 + span * t / threads;
		g[t].to = 1 + span * (t + 1) / threads;
		pthread_create(&th[t], NULL, gen_worker, &g[t]);
	}
	for (long t = 0; t < threads; t++) {
		pthread_join(th[t], NULL);
		rc |= g[t].rc;
	}
	fclose(out);
	EVP_PKEY_free(first.first_key);
	for (int k = 0; k < 4; k++) {
		X509_free(o.cert[k]);
		EVP_PKEY_free(o.key[k]);
	}
	return rc;
}

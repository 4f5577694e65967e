/*
 * Unit tests of the file exporters' own parts: outputs that are complete or
 * absent (files_int.h), the sibling names, and the azure-dps driver fed
 * records directly: bodies of at most 10 enrollments, registration ID =
 * certificate CN, the subject check before anything is written.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "exp/export.h"
#include "files_int.h"
#include "formats/base64.h"
#include "formats/x509.h"

static char dir[64];

static int setup_dir(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/imprint-expfiles-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static bool exists(const char *fmt, const char *name)
{
	char p[256];
	struct stat sb;

	snprintf(p, sizeof(p), fmt, dir, name);
	return stat(p, &sb) == 0;
}

static size_t entries_in(const char *sub)
{
	char cmd[256];
	FILE *f;
	size_t n = 0;
	char line[256];

	snprintf(cmd, sizeof(cmd), "ls -A '%s/%s'", dir, sub);
	f = popen(cmd, "r");
	while (f && fgets(line, sizeof(line), f))
		n++;
	if (f)
		pclose(f);
	return n;
}

static void test_sibling(void **state)
{
	static const char *const cases[][2] = {
		{ "things.jsonl", "things.template.json" },
		{ "out/things.json", "out/things.template.json" },
		{ "m.jws", "m.template.json" },
		{ "things", "things.template.json" },
		{ "out.aws-iot", "out.aws-iot.template.json" },
		{ "dir/.json", "dir/.json.template.json" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *s = exp_out_sibling(cases[i][0], ".template.json");

		assert_non_null(s);
		assert_string_equal(s, cases[i][1]);
		free(s);
	}
}

static void test_out_file(void **state)
{
	struct exp_out o;
	char p[128];
	FILE *f;
	char buf[16] = "";

	(void)state;
	snprintf(p, sizeof(p), "%s/a.json", dir);
	assert_int_equal(exp_out_open(&o, p, false), IMP_OK);
	fputs("one\n", o.f);
	assert_false(exists("%s/%s", "a.json")); /* not before commit */
	assert_int_equal(exp_out_commit(&o), IMP_OK);
	assert_true(exists("%s/%s", "a.json"));
	/* an existing output: refused without replace, untouched */
	assert_int_equal(exp_out_open(&o, p, false), IMP_ERR_EXISTS);
	assert_int_equal(exp_out_open(&o, p, true), IMP_OK);
	fputs("two\n", o.f);
	exp_out_abort(&o);
	f = fopen(p, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_string_equal(buf, "one\n");
	assert_int_equal(entries_in(""), 1); /* no temporary file left */
}

static void test_out_dir(void **state)
{
	struct exp_outdir d;
	char p[128];

	(void)state;
	snprintf(p, sizeof(p), "%s/dps/", dir); /* a trailing slash names the directory */
	assert_int_equal(exp_outdir_open(&d, p, false), IMP_OK);
	assert_int_equal(exp_outdir_write(&d, "old.json", "{}\n"), IMP_OK);
	assert_int_equal(exp_outdir_write(&d, "x/y", "{}\n"), IMP_ERR_INTERNAL);
	assert_int_equal(exp_outdir_commit(&d), IMP_OK);
	assert_true(exists("%s/dps/%s", "old.json"));
	assert_int_equal(exp_outdir_open(&d, p, false), IMP_ERR_EXISTS);
	/* replaced as a whole: nothing of the old directory survives */
	assert_int_equal(exp_outdir_open(&d, p, true), IMP_OK);
	assert_int_equal(exp_outdir_write(&d, "new.json", "{}\n"), IMP_OK);
	assert_int_equal(exp_outdir_commit(&d), IMP_OK);
	assert_true(exists("%s/dps/%s", "new.json"));
	assert_false(exists("%s/dps/%s", "old.json"));
	/* an aborted one leaves the old in place and nothing beside it */
	assert_int_equal(exp_outdir_open(&d, p, true), IMP_OK);
	assert_int_equal(exp_outdir_write(&d, "aborted.json", "{}\n"), IMP_OK);
	exp_outdir_abort(&d);
	assert_true(exists("%s/dps/%s", "new.json"));
	assert_int_equal(entries_in(""), 1);
	assert_int_equal(entries_in("dps"), 1);
}

/* ------------------------------------------------- azure-dps, driven */

static EVP_PKEY *ca_key;
static X509 *ca_cert;

static void make_ca(void)
{
	struct fmt_name_entry subj[] = { { "CN", "test device CA" } };
	struct fmt_cert_request req = { 0 };
	struct fmt_signer s;

	assert_int_equal(fmt_p256_generate(&ca_key), IMP_OK);
	fmt_signer_from_pkey(&s, ca_key);
	req.profile = FMT_CERT_ROOT_CA;
	req.subject = subj;
	req.subject_count = 1;
	req.subject_key = ca_key;
	req.validity_days = 30;
	assert_int_equal(fmt_cert_issue(&req, &s, &ca_cert), IMP_OK);
}

/* A record as the outbox holds it: only its payload is read (peeked). */
static char *record_jws(const char *serial, const char *cn)
{
	struct fmt_name_entry subj[] = { { "CN", cn } };
	struct fmt_cert_request req = { 0 };
	struct fmt_signer s;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	uint8_t *der = NULL;
	size_t n = 0;
	char *b64, *text, *payload, *jws = NULL;
	json_t *rec;

	assert_int_equal(fmt_p256_generate(&key), IMP_OK);
	fmt_signer_from_pkey(&s, ca_key);
	req.profile = FMT_CERT_DEVICE;
	req.subject = subj;
	req.subject_count = 1;
	req.subject_key = key;
	req.issuer = ca_cert;
	req.validity_days = 30;
	assert_int_equal(fmt_cert_issue(&req, &s, &cert), IMP_OK);
	assert_int_equal(fmt_cert_to_der(cert, &der, &n), IMP_OK);
	b64 = fmt_b64_encode(der, n);
	rec = json_pack("{s:s, s:s, s:s, s:s}", "serial", serial, "sku", "SKU-1", "chip_uid",
			"00aa", "device_certificate", b64);
	text = json_dumps(rec, JSON_COMPACT);
	payload = fmt_b64url_encode(text, strlen(text));
	assert_true(asprintf(&jws, "eyJhbGciOiJFUzI1NiJ9.%s.c2ln", payload) > 0);
	free(payload);
	free(text);
	json_decref(rec);
	free(b64);
	free(der);
	X509_free(cert);
	EVP_PKEY_free(key);
	return jws;
}

extern const struct exp_driver exp_driver_azure_dps;

static void test_azure_subject_refused(void **state)
{
	struct exp_settings s = { 0 };
	char p[128];
	void *st = NULL;

	(void)state;
	if (!ca_cert)
		make_ca();
	snprintf(p, sizeof(p), "%s/cn", dir);
	s.out_path = p;
	s.device_ca = ca_cert;
	s.subject_cn = "dev-{serial}";
	assert_int_equal(exp_driver_azure_dps.open(&s, &st), IMP_ERR_CONFIG);
	s.subject_cn = NULL;
	assert_int_equal(exp_driver_azure_dps.open(&s, &st), IMP_ERR_CONFIG);
	assert_null(st);
	assert_false(exists("%s/%s", "cn"));
	assert_int_equal(entries_in(""), 0);
}

#define AZ_N 23

static void test_azure_bodies(void **state)
{
	struct exp_settings s = { 0 };
	struct exp_record recs[AZ_N + 1];
	struct exp_result res[AZ_N + 1];
	char serials[AZ_N + 1][16], ids[AZ_N + 1][16], p[160];
	size_t total = 0;
	void *st = NULL;

	(void)state;
	if (!ca_cert)
		make_ca();
	memset(recs, 0, sizeof(recs));
	memset(res, 0, sizeof(res));
	for (size_t i = 0; i <= AZ_N; i++) {
		snprintf(serials[i], sizeof(serials[i]), "SER%03zu", i);
		snprintf(ids[i], sizeof(ids[i]), "id-%zu", i);
		recs[i].id = ids[i];
		recs[i].serial = serials[i];
		recs[i].uid = "00aa";
		recs[i].kind = JNL_OUTBOX_IDENTITY;
		/* the last one's certificate CN is not its serial */
		recs[i].jws = record_jws(serials[i], i == AZ_N ? "someone-else" : serials[i]);
	}
	snprintf(p, sizeof(p), "%s/dps", dir);
	s.out_path = p;
	s.device_ca = ca_cert;
	s.subject_cn = "{serial}";
	assert_int_equal(exp_driver_azure_dps.open(&s, &st), IMP_OK);
	assert_int_equal(exp_driver_azure_dps.push(st, recs, AZ_N + 1, res), IMP_OK);
	for (size_t i = 0; i < AZ_N; i++)
		assert_int_equal(res[i].status, EXP_ACCEPTED);
	assert_int_equal(res[AZ_N].status, EXP_REJECTED);
	assert_non_null(strstr(res[AZ_N].reason, "someone-else"));
	assert_int_equal(exp_driver_azure_dps.close(st), IMP_OK);
	/* 23 = 10 + 10 + 3, and the group */
	assert_int_equal(entries_in("dps"), 4);
	for (size_t k = 1; k <= 3; k++) {
		char f[200];
		json_t *body, *list;

		snprintf(f, sizeof(f), "%s/dps/bulk-%03zu.json", dir, k);
		body = json_load_file(f, 0, NULL);
		assert_non_null(body);
		assert_string_equal(json_string_value(json_object_get(body, "mode")), "create");
		list = json_object_get(body, "enrollments");
		assert_true(json_array_size(list) >= 1 && json_array_size(list) <= 10);
		for (size_t i = 0; i < json_array_size(list); i++)
			assert_string_equal(json_string_value(json_object_get(
						    json_array_get(list, i), "registrationId")),
					    serials[total + i]);
		total += json_array_size(list);
		json_decref(body);
	}
	assert_int_equal(total, AZ_N);
	assert_true(exists("%s/dps/%s", "enrollment-group.json"));
	for (size_t i = 0; i <= AZ_N; i++)
		free((char *)recs[i].jws);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sibling),
		cmocka_unit_test_setup_teardown(test_out_file, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_out_dir, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_azure_subject_refused, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_azure_bodies, setup_dir, teardown_dir),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);

	X509_free(ca_cert);
	EVP_PKEY_free(ca_key);
	return rc;
}

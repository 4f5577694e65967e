/*
 * bench-certprof: device certificates issued per second through the
 * certificate profiles (fmt_certprof_issue: default, ieee-802.1ar-idevid,
 * matter-dac) beside today's fixed path (fmt_cert_issue, FMT_CERT_DEVICE),
 * in the same run, with the same in-memory P-256 signer (so the figures are
 * the issuance's, not an HSM's). The paths take turns in R rounds of N
 * certificates each, so that other work on the machine falls on all of
 * them alike; each column is the sum over the rounds. CPU time (process
 * user + system) is the figure that moves least with the load. The goal:
 * the default profile within 10% of the fixed path.
 *
 *   bench-certprof [N [R]]      (default 2000 certificates, 5 rounds)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/x509.h>

#include "formats/certprofile.h"
#include "formats/config.h"
#include "formats/signer.h"
#include "formats/x509.h"
#include "imprint/log.h"

enum { P_FIXED, P_DEFAULT, P_IDEVID, P_MATTER, P_COUNT };

static const char *const names[P_COUNT] = { "fixed (fmt_cert_issue)", "profile default",
					    "profile ieee-802.1ar-idevid", "profile matter-dac" };

static double now(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct chain {
	struct fmt_certprof_set *set;
	EVP_PKEY *root_key, *ca_key;
	X509 *root, *ca;
};

static const struct fmt_certprof_vars vars = {
	.serial = "DEMO000001", .uid = "00112233445566778899aabbccddeeff", .sku = "DEMO-S1",
	.vid = "FFF1", .pid = "8000", .org = "Imprint Bench", .country = "",
};

static X509 *issue(const struct fmt_certprof *p, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ik,
		   const struct fmt_name_entry *subj, size_t ns)
{
	struct fmt_certprof_request req = { .profile = p, .subject = subj, .subject_count = ns,
					    .vars = &vars, .subject_key = key, .issuer = issuer };
	struct fmt_signer s;
	X509 *x = NULL;

	fmt_signer_from_pkey(&s, ik);
	if (fmt_certprof_issue(&req, &s, &x) != IMP_OK) {
		fprintf(stderr, "bench-certprof: issuing with '%s' failed\n", fmt_certprof_name(p));
		exit(1);
	}
	return x;
}

static void chain_init(struct chain *c, const char *profile)
{
	struct fmt_certprof_settings s = { .device_days = 7300, .root_days = 9125,
					   .ca_days = 7300, .has_vid = true, .has_pid = true };
	char err[512];
	struct fmt_name_entry *subj = NULL;
	size_t ns = 0;

	if (fmt_certprof_set_load(profile, &s, &c->set, err, sizeof(err)) != IMP_OK) {
		fprintf(stderr, "bench-certprof: %s\n", err);
		exit(1);
	}
	fmt_p256_generate(&c->root_key);
	fmt_p256_generate(&c->ca_key);
	fmt_certprof_subject(c->set->role[FMT_CP_ROOT], &vars, &subj, &ns);
	c->root = issue(c->set->role[FMT_CP_ROOT], c->root_key, NULL, c->root_key, subj, ns);
	fmt_name_entries_free(subj, ns);
	fmt_certprof_subject(c->set->role[FMT_CP_DEVICE_CA], &vars, &subj, &ns);
	c->ca = issue(c->set->role[FMT_CP_DEVICE_CA], c->ca_key, c->root, c->root_key, subj, ns);
	fmt_name_entries_free(subj, ns);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 2000, rounds = argc > 2 ? atol(argv[2]) : 5;
	static const char *const profiles[P_COUNT] = { "default", "default", "ieee-802.1ar-idevid",
						       "matter-dac" };
	struct fmt_name_entry dflt[] = { { "O", "Imprint Bench" }, { "CN", "DEMO000001" },
					 { "serialNumber", "00112233445566778899aabbccddeeff" } };
	struct chain ch[P_COUNT];
	double wall[P_COUNT] = { 0 }, cpu[P_COUNT] = { 0 };
	EVP_PKEY *dev = NULL;

	if (n < 1 || rounds < 1) {
		fprintf(stderr, "usage: bench-certprof [N [ROUNDS]]\n");
		return 2;
	}
	imp_log_set_level(IMP_LOG_QUIET);
	for (int p = 0; p < P_COUNT; p++)
		chain_init(&ch[p], profiles[p]);
	fmt_p256_generate(&dev);
	for (long r = 0; r < rounds; r++) {
		for (int p = 0; p < P_COUNT; p++) {
			const struct fmt_certprof *dp = ch[p].set->role[FMT_CP_DEVICE];
			struct fmt_name_entry *subj = dflt;
			size_t ns = 3;
			double w0, c0;

			if (fmt_certprof_has_subject(dp))
				fmt_certprof_subject(dp, &vars, &subj, &ns);
			w0 = now(CLOCK_MONOTONIC);
			c0 = now(CLOCK_PROCESS_CPUTIME_ID);
			for (long i = 0; i < n; i++) {
				X509 *x;

				if (p == P_FIXED) {
					struct fmt_cert_request req = {
						.profile = FMT_CERT_DEVICE, .subject = subj,
						.subject_count = ns, .subject_key = dev,
						.issuer = ch[p].ca, .validity_days = 7300,
					};
					struct fmt_signer s;

					x = NULL;
					fmt_signer_from_pkey(&s, ch[p].ca_key);
					if (fmt_cert_issue(&req, &s, &x) != IMP_OK)
						return 1;
				} else {
					x = issue(dp, dev, ch[p].ca, ch[p].ca_key, subj, ns);
				}
				X509_free(x);
			}
			wall[p] += now(CLOCK_MONOTONIC) - w0;
			cpu[p] += now(CLOCK_PROCESS_CPUTIME_ID) - c0;
			if (subj != dflt)
				fmt_name_entries_free(subj, ns);
		}
	}
	printf("device certificates, %ld rounds of %ld per path, one thread, in-memory P-256 "
	       "signer\n\n", rounds, n);
	printf("| %-28s | %8s | %9s | %10s | %10s | %12s |\n", "path", "certs", "wall s",
	       "certs/s", "certs/CPU-s", "vs fixed (CPU)");
	printf("|%s|%s|%s|%s|%s|%s|\n", "------------------------------", "----------",
	       "-----------", "------------", "------------", "----------------");
	for (int p = 0; p < P_COUNT; p++)
		printf("| %-28s | %8ld | %9.3f | %10.0f | %10.0f | %+13.1f%% |\n", names[p],
		       n * rounds, wall[p], (double)(n * rounds) / wall[p],
		       (double)(n * rounds) / cpu[p], (cpu[P_FIXED] / cpu[p] - 1.0) * 100.0);
	printf("\ngoal: profile default within 10%% of fixed (the last column >= -10%%)\n");
	for (int p = 0; p < P_COUNT; p++) {
		X509_free(ch[p].root);
		X509_free(ch[p].ca);
		EVP_PKEY_free(ch[p].root_key);
		EVP_PKEY_free(ch[p].ca_key);
		fmt_certprof_set_free(ch[p].set);
	}
	EVP_PKEY_free(dev);
	return 0;
}

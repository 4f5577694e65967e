/*
 * bench-audit: records and signatures verified per second by the audit
 * (aud_run), beside `openssl speed -seconds 3 ecdsap256` in the same
 * run (one core: the goal is 0.8 x that x cores; and -multi on every core,
 * since two virtual cores are seldom twice one), and the audit's peak memory
 * (getrusage maxrss) per record count. The last two columns are the audit's
 * CPU time (user + system) and signatures per CPU-second: on a machine other
 * work shares, the figure that moves least with the load.
 *
 *   bench-audit [--work DIR] [N ...]      (default N: 10000 1000000)
 *
 * Records are generated once per N into DIR/N (bench-audit-gen, in-memory
 * keys, all cores) and kept for the next run. Each audit runs in a child
 * process so that maxrss is the audit's alone.
 */
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "audit/audit.h"
#include "imprint/log.h"

/* verify/s of `openssl speed -seconds 3 [-multi N] ecdsap256` (all N together). */
static double openssl_verify_per_s(long multi)
{
	char cmd[128];
	FILE *p;
	char line[512];
	double sign = 0, verify = 0;

	if (multi > 1)
		snprintf(cmd, sizeof(cmd), "openssl speed -seconds 3 -multi %ld ecdsap256 2>/dev/null",
			 multi);
	else
		snprintf(cmd, sizeof(cmd), "openssl speed -seconds 3 ecdsap256 2>/dev/null");
	p = popen(cmd, "r");
	while (p && fgets(line, sizeof(line), p))
		if (strstr(line, "256 bits ecdsa (nistp256)"))
			sscanf(strstr(line, ")") + 1, "%*fs %*fs %lf %lf", &sign, &verify);
	if (p)
		pclose(p);
	return verify;
}

struct result {
	double seconds, verify_seconds, cpu_seconds;
	unsigned long long records, signatures, findings;
	long maxrss_kb;
};

static int audit_child(const char *dir, int fd)
{
	char recs[4400], trust[4400];
	struct aud_opts o = { 0 };
	struct aud_summary s;
	struct rusage ru;
	struct result r;

	snprintf(recs, sizeof(recs), "%s/records.jsonl", dir);
	snprintf(trust, sizeof(trust), "%s/trust", dir);
	o.records = recs;
	o.trust_dir = trust;
	aud_run(&o, &s);
	getrusage(RUSAGE_SELF, &ru);
	r = (struct result){ s.seconds, s.verify_seconds,
			     (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
				     (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6,
			     (unsigned long long)s.records,
			     (unsigned long long)s.signatures, (unsigned long long)s.findings,
			     ru.ru_maxrss };
	return write(fd, &r, sizeof(r)) == sizeof(r) ? 0 : 1;
}

int main(int argc, char **argv)
{
	const char *work = "/tmp/imprint-bench-audit";
	long sizes[8] = { 10000, 1000000 };
	int nsizes = 2, given = 0;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	char gen[4300], self[4096];
	double ossl, ossl_all = 0;
	ssize_t n;

	imp_log_set_level(IMP_LOG_ERROR);
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[n > 0 ? n : 0] = '\0';
	snprintf(gen, sizeof(gen), "%s-gen", self);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--work") == 0 && i + 1 < argc)
			work = argv[++i];
		else if (given < 8)
			sizes[given++] = atol(argv[i]);
	}
	if (given)
		nsizes = given;
	printf("openssl speed -seconds 3 ecdsap256 ...\n");
	fflush(stdout);
	ossl = openssl_verify_per_s(1);
	if (cores > 1)
		ossl_all = openssl_verify_per_s(cores);
	printf("openssl: %.0f verify/s per core, %ld cores: goal %.0f signatures/s (0.8 x %.0f x %ld)\n",
	       ossl, cores, 0.8 * ossl * (double)cores, ossl, cores);
	if (cores > 1)
		printf("openssl -multi %ld: %.0f verify/s on all cores together (%.2f x one core)\n",
		       cores, ossl_all, ossl_all / ossl);
	printf("\n");
	printf("| records | generate s | audit s | records/s | signatures/s | vs goal | maxrss MB | findings | cpu s | signatures/cpu-s |\n");
	printf("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
	for (int i = 0; i < nsizes; i++) {
		char dir[4300], cmd[16000], probe[4400];
		int pfd[2];
		pid_t pid;
		struct result r = { 0 };
		double tg = 0;

		snprintf(dir, sizeof(dir), "%s/%ld", work, sizes[i]);
		snprintf(probe, sizeof(probe), "%s/records.jsonl", dir);
		if (access(probe, R_OK) != 0) {
			struct timespec a, b;

			clock_gettime(CLOCK_MONOTONIC, &a);
			snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && '%s' '%s' %ld --threads %ld", dir, gen,
				 dir, sizes[i], cores);
			if (system(cmd) != 0) {
				fprintf(stderr, "generating %ld records failed\n", sizes[i]);
				return 1;
			}
			clock_gettime(CLOCK_MONOTONIC, &b);
			tg = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
		}
		if (pipe(pfd) != 0)
			return 1;
		pid = fork();
		if (pid == 0) {
			close(pfd[0]);
			_exit(audit_child(dir, pfd[1]));
		}
		close(pfd[1]);
		if (read(pfd[0], &r, sizeof(r)) != sizeof(r))
			fprintf(stderr, "audit child failed\n");
		close(pfd[0]);
		waitpid(pid, NULL, 0);
		printf("| %ld | %.1f | %.2f | %.0f | %.0f | %.2f | %.1f | %llu | %.2f | %.0f |\n",
		       sizes[i], tg, r.seconds, (double)r.records / r.verify_seconds,
		       (double)r.signatures / r.verify_seconds,
		       (double)r.signatures / r.verify_seconds / (0.8 * ossl * (double)cores),
		       (double)r.maxrss_kb / 1024.0, r.findings, r.cpu_seconds,
		       r.cpu_seconds > 0 ? (double)r.signatures / r.cpu_seconds : 0.0);
		fflush(stdout);
	}
	return 0;
}

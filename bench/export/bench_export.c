/*
 * bench-export: records per second delivered to the local registry
 * (imprint-registry over mutual TLS) by the https exporter, one kept-alive
 * connection, per batch size; each batch size against a fresh registry
 * database, so that every record is verified and stored (201), never a
 * duplicate.
 *
 *   bench-export [--work DIR] [--records N] [--threads T] [BATCH ...]
 *                (defaults: /tmp/imprint-bench-export, 20000, 2, 200 1000 5000)
 *
 * The records are generated once into DIR/records (bench-export-gen, the
 * audit's generator) and kept for the next run. The registry runs with T
 * connection and verify threads. What is timed: exp_driver_https push() of
 * every batch, from the first request to the last answer (building the
 * body, TLS, the registry's verification and SQLite transaction, parsing
 * the per-record results). The journal's bookkeeping (marking each record
 * delivered) is not part of it: that is the journal's cost, not delivery's.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "exp/export.h"
#include "imprint/log.h"

struct rec {
	char *id, *jws;
};

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static struct rec *load(const char *path, size_t *n)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0, k = 0, room = 1024;
	struct rec *r = malloc(room * sizeof(*r));

	while (f && r && getline(&line, &cap, f) > 0) {
		json_t *o = json_loads(line, 0, NULL);

		if (k == room) {
			struct rec *t = realloc(r, (room *= 2) * sizeof(*r));

			if (!t)
				break;
			r = t;
		}
		r[k].id = strdup(json_string_value(json_object_get(o, "id")));
		r[k].jws = strdup(json_string_value(json_object_get(o, "jws")));
		k++;
		json_decref(o);
	}
	free(line);
	if (f)
		fclose(f);
	*n = k;
	return r;
}

/* Start the registry; returns its pid, *port the port it listens on. */
static pid_t start_registry(const char *work, const char *db, long threads, int *port)
{
	char trust[4400], tls[4400], th[16];
	int pfd[2];
	pid_t pid;
	FILE *out;
	char line[256];

	snprintf(trust, sizeof(trust), "%s/records/trust", work);
	snprintf(tls, sizeof(tls), "%s/tls", work);
	snprintf(th, sizeof(th), "%ld", threads);
	if (pipe(pfd) != 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		close(pfd[1]);
		execl(BENCH_REGISTRY, "imprint-registry", "serve", "--db", db, "--trust-dir", trust,
		      "--tls-dir", tls, "--port", "0", "--threads", th, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	out = fdopen(pfd[0], "r");
	*port = 0;
	while (out && fgets(line, sizeof(line), out))
		if (sscanf(line, "{\"ready\":true,\"port\":%d", port) == 1)
			break;
	if (out)
		fclose(out);
	return *port ? pid : -1;
}

int main(int argc, char **argv)
{
	const char *work = "/tmp/imprint-bench-export";
	long nrec = 20000, threads = 2;
	unsigned batches[8] = { 200, 1000, 5000 };
	int nb = 3, given = 0;
	char path[4400], cmd[16000];
	struct rec *recs;
	size_t n = 0, total;
	const struct exp_driver *https;

	imp_log_set_level(IMP_LOG_ERROR);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--work") == 0 && i + 1 < argc)
			work = argv[++i];
		else if (strcmp(argv[i], "--records") == 0 && i + 1 < argc)
			nrec = atol(argv[++i]);
		else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			threads = atol(argv[++i]);
		else if (given < 8)
			batches[given++] = (unsigned)atol(argv[i]);
	}
	if (given)
		nb = given;
	https = exp_driver_find("https");
	if (!https)
		return 1;
	snprintf(path, sizeof(path), "%s/records/records.jsonl", work);
	recs = load(path, &n);
	if (!recs || n < (size_t)nrec) {
		printf("generating %ld records in %s/records ...\n", nrec, work);
		fflush(stdout);
		for (size_t i = 0; recs && i < n; i++) {
			free(recs[i].id);
			free(recs[i].jws);
		}
		free(recs);
		snprintf(cmd, sizeof(cmd),
			 "rm -rf '%s/records' && mkdir -p '%s/records' && '%s' '%s/records' %ld "
			 "--threads 2 && { [ -f '%s/tls/ca.pem' ] || '%s' init-tls '%s/tls' >/dev/null; }",
			 work, work, BENCH_GEN, work, nrec, work, BENCH_REGISTRY, work);
		if (system(cmd) != 0) {
			fprintf(stderr, "generating the records failed\n");
			return 1;
		}
		recs = load(path, &n);
	}
	if (!recs || n == 0)
		return 1;
	total = n;
	if (n > (size_t)nrec)
		n = (size_t)nrec;
	printf("%zu records, registry with %ld threads, %ld cores\n\n", n, threads,
	       sysconf(_SC_NPROCESSORS_ONLN));
	printf("| batch | records | seconds | records/s | accepted | other | goal 5000/s |\n");
	printf("| ---: | ---: | ---: | ---: | ---: | ---: | --- |\n");
	for (int b = 0; b < nb; b++) {
		char db[4400], url[64], ca[4400], cert[4400], key[4400];
		struct exp_settings s = { 0 };
		struct exp_record *er = NULL;
		struct exp_result *res = NULL;
		void *st = NULL;
		unsigned long accepted = 0, other = 0;
		double t0, t;
		int port = 0;
		pid_t pid;

		snprintf(db, sizeof(db), "%s/registry.sqlite", work);
		snprintf(cmd, sizeof(cmd), "rm -f '%s' '%s-wal' '%s-shm'", db, db, db);
		if (system(cmd) != 0)
			return 1;
		pid = start_registry(work, db, threads, &port);
		if (pid < 0) {
			fprintf(stderr, "the registry did not start\n");
			return 1;
		}
		snprintf(url, sizeof(url), "https://127.0.0.1:%d", port);
		snprintf(ca, sizeof(ca), "%s/tls/ca.pem", work);
		snprintf(cert, sizeof(cert), "%s/tls/client.pem", work);
		snprintf(key, sizeof(key), "%s/tls/client.key", work);
		s.url = url;
		s.ca = ca;
		s.cert = cert;
		s.key = key;
		s.retry_for_s = 30;
		er = calloc(batches[b], sizeof(*er));
		res = calloc(batches[b], sizeof(*res));
		if (!er || !res || https->open(&s, &st) != IMP_OK) {
			fprintf(stderr, "cannot open the https exporter\n");
			kill(pid, SIGTERM);
			return 1;
		}
		t0 = now_s();
		for (size_t i = 0; i < n; i += batches[b]) {
			size_t k = n - i < batches[b] ? n - i : batches[b];

			for (size_t j = 0; j < k; j++)
				er[j] = (struct exp_record){ recs[i + j].id, "", "", JNL_OUTBOX_IDENTITY,
							     recs[i + j].jws };
			memset(res, 0, k * sizeof(*res));
			if (https->push(st, er, k, res) != IMP_OK) {
				other += k;
				continue;
			}
			for (size_t j = 0; j < k; j++) {
				if (res[j].status == EXP_ACCEPTED)
					accepted++;
				else
					other++;
			}
		}
		t = now_s() - t0;
		https->close(st);
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
		printf("| %u | %zu | %.2f | %.0f | %lu | %lu | %s |\n", batches[b], n, t,
		       (double)accepted / t, accepted, other,
		       (double)accepted / t >= 5000 ? "met" : "not met");
		fflush(stdout);
		free(er);
		free(res);
	}
	for (size_t i = 0; i < total; i++) {
		free(recs[i].id);
		free(recs[i].jws);
	}
	free(recs);
	return 0;
}

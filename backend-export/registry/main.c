/*
 * imprint-registry: the reference registry (docs/REGISTRY.md). An HTTPS
 * service (libmicrohttpd with GnuTLS) that requires a client certificate
 * chaining to the configured client CA, verifies every record before it
 * keeps it, refuses duplicates and applies revocations.
 *
 *   imprint-registry init-tls DIR
 *   imprint-registry serve --db FILE --trust-dir DIR --tls-dir DIR [--port N] ...
 *
 * serve prints one JSON line {"ready":true,"port":N} on stdout once it
 * listens, and runs until SIGTERM or SIGINT.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>

#include "imprint/log.h"
#include "imprint/util.h"
#include "registry.h"

#define BODY_MAX (64u << 20)
#define BATCH_MAX 10000u

struct registry {
	struct reg_store store;
	const char *bearer;          /* required token, or NULL */
	int fail_status;             /* fault: answer this ... */
	atomic_long fail_left;       /* ... for this many more requests */
	long retry_after;            /* with this Retry-After, -1: none */
	atomic_long drop_left;       /* fault: close after reading (and storing) */
	long slow_ms;                /* fault: wait before every answer */
	unsigned verify_threads;
};

struct request {
	char *body;
	size_t len, cap;
	bool too_big;
	bool checked;
};

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_t *o,
				 long retry_after)
{
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	struct MHD_Response *r;
	enum MHD_Result ret;

	json_decref(o);
	if (!text)
		text = strdup("{}");
	if (!text)
		return MHD_NO;
	r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "application/json");
	if (retry_after >= 0) {
		char ra[32];

		snprintf(ra, sizeof(ra), "%ld", retry_after);
		MHD_add_response_header(r, "Retry-After", ra);
	}
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *msg)
{
	return send_json(c, status, json_pack("{s:s}", "error", msg), -1);
}

/* The client certificate must be present and chain to the client CA. */
static bool client_ok(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	gnutls_session_t s;
	unsigned status = 0;
	unsigned n = 0;

	if (!ci || !ci->tls_session)
		return false;
	s = (gnutls_session_t)ci->tls_session;
	if (!gnutls_certificate_get_peers(s, &n) || n == 0)
		return false;
	/* Chain to the client CA, and the leaf must be meant for TLS clients. */
	gnutls_typed_vdata_st purpose = { GNUTLS_DT_KEY_PURPOSE_OID,
					  (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT, 0 };

	if (gnutls_certificate_verify_peers(s, &purpose, 1, &status) != GNUTLS_E_SUCCESS ||
	    status != 0)
		return false;
	return true;
}

static bool bearer_ok(struct registry *reg, struct MHD_Connection *c)
{
	const char *h;
	size_t a, b;
	unsigned diff = 0;

	if (!reg->bearer)
		return true;
	h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	if (!h || strncmp(h, "Bearer ", 7) != 0)
		return false;
	h += 7;
	a = strlen(h);
	b = strlen(reg->bearer);
	for (size_t i = 0; i < a && i < b; i++)
		diff |= (unsigned)(h[i] ^ reg->bearer[i]);
	return a == b && diff == 0;
}

/*
 * A batch being verified: pool threads take items in order (next) and flag
 * each one ready; the request's thread stores them in order meanwhile
 * (reg_store_batch waits for each flag), so verifying and storing overlap.
 */
struct verify_job {
	struct registry *reg;
	struct reg_item *items;
	size_t n;
	atomic_size_t next;
	atomic_uchar *ready;
};

static void *verify_worker(void *arg)
{
	struct verify_job *j = arg;
	struct fmt_rv *rv = NULL;
	size_t i;

	if (j->reg->store.fast && fmt_rv_new(j->reg->store.fast, &rv) != IMP_OK)
		rv = NULL;
	while ((i = atomic_fetch_add(&j->next, 1)) < j->n) {
		if (!j->items[i].res.code)
			reg_verify(&j->reg->store, rv, &j->items[i]);
		atomic_store_explicit(&j->ready[i], 1, memory_order_release);
	}
	fmt_rv_free(rv);
	return NULL;
}

static void wait_ready(void *arg, size_t i)
{
	struct verify_job *j = arg;
	unsigned spins = 0;

	while (!atomic_load_explicit(&j->ready[i], memory_order_acquire)) {
		if (++spins < 64) {
			sched_yield();
		} else {
			struct timespec ts = { 0, 20000 };

			nanosleep(&ts, NULL);
		}
	}
}

/* Verify on verify_threads threads while this one stores; sets every res. */
static imp_err verify_and_store(struct registry *reg, struct reg_item *items, size_t n)
{
	pthread_t th[16];
	struct verify_job job = { .reg = reg, .items = items, .n = n };
	unsigned t = reg->verify_threads, started = 0;
	imp_err rc;

	job.ready = calloc(n, sizeof(*job.ready));
	if (!job.ready)
		return IMP_ERR_NOMEM;
	atomic_store(&job.next, 0);
	if (t > 16)
		t = 16;
	if (n < 16)
		t = 1;
	for (unsigned i = 0; i < t; i++)
		if (pthread_create(&th[started], NULL, verify_worker, &job) == 0)
			started++;
	if (started == 0)
		verify_worker(&job);
	rc = reg_store_batch(&reg->store, items, n, wait_ready, &job);
	/* On an error the store stopped early: let the pool finish. */
	atomic_store(&job.next, n);
	for (unsigned i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	free(job.ready);
	return rc;
}

static const char *status_name(enum reg_status s)
{
	return s == REG_ACCEPTED ? "accepted" : s == REG_DUPLICATE_SAME ? "duplicate-same"
									: "rejected";
}

/* A plain JSON string at *p (no escapes, no control characters): NUL-end it. */
static char *plain_string(char **p, char *end)
{
	char *s = *p, *q;

	if (s >= end || *s != '"')
		return NULL;
	for (q = ++s; q < end && *q != '"'; q++)
		if (*q == '\\' || (unsigned char)*q < 0x20)
			return NULL;
	if (q >= end)
		return NULL;
	*q = '\0';
	*p = q + 1;
	return s;
}

static int take(char **p, char *end, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(end - *p) < n || memcmp(*p, lit, n) != 0)
		return 0;
	*p += n;
	return 1;
}

/*
 * The body as the station writes it, {"records":[{"id":"..","jws":".."},...]}
 * without blanks or escapes, split in place (strings NUL-ended in body); the
 * same items a JSON parser would give. Anything else: 0 (then parse it).
 */
static int split_plain(char *body, size_t len, struct reg_item **items, size_t *n)
{
	char *p = body, *end = body + len;
	size_t cap = 0, k = 0;
	struct reg_item *it = NULL;

	if (!take(&p, end, "{\"records\":["))
		return 0;
	for (;;) {
		char *id, *jws;

		if (!take(&p, end, "{\"id\":") || !(id = plain_string(&p, end)) ||
		    !take(&p, end, ",\"jws\":") || !(jws = plain_string(&p, end)) ||
		    !take(&p, end, "}") || k == BATCH_MAX)
			goto fail;
		if (k == cap) {
			struct reg_item *t;

			cap = cap ? cap * 2 : 256;
			t = realloc(it, cap * sizeof(*it));
			if (!t)
				goto fail;
			it = t;
		}
		memset(&it[k], 0, sizeof(it[k]));
		it[k].id = id;
		it[k].jws = jws;
		k++;
		if (take(&p, end, ","))
			continue;
		if (take(&p, end, "]}") && p == end)
			break;
		goto fail;
	}
	*items = it;
	*n = k;
	return 1;
fail:
	free(it);
	return 0;
}

/* POST /records: returns the answer object, or NULL with *status set. */
static json_t *post_records(struct registry *reg, const char *body, size_t len,
			    unsigned *status, const char **err)
{
	json_error_t jerr;
	json_t *in = NULL, *recs = NULL;
	json_t *out = NULL, *results;
	struct reg_item *items = NULL;
	size_t n = 0;
	imp_err rc;
	char *copy = NULL;

	*status = 400;
	*err = "body must be {\"records\":[{\"id\":..,\"jws\":..}, ...]}";
	/* split_plain NUL-ends strings in place: it works on a copy, so that the
	 * body stays intact for the parser when it is not in the plain form */
	copy = malloc(len + 1);
	if (copy)
		memcpy(copy, body, len);
	if (copy && split_plain(copy, len, &items, &n)) {
		for (size_t i = 0; i < n; i++)
			if (!items[i].id[0]) {
				*err = "every record needs a non-empty string \"id\" and \"jws\"";
				goto cleanup;
			}
		goto verify;
	}
	in = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	recs = json_object_get(in, "records");
	n = json_array_size(recs);
	if (!json_is_array(recs) || n == 0 || n > BATCH_MAX)
		goto cleanup;
	items = calloc(n, sizeof(*items));
	if (!items) {
		*status = 500;
		*err = "out of memory";
		goto cleanup;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *r = json_array_get(recs, i);

		items[i].id = json_string_value(json_object_get(r, "id"));
		items[i].jws = json_string_value(json_object_get(r, "jws"));
		if (!items[i].id || !items[i].jws || !items[i].id[0]) {
			*err = "every record needs a non-empty string \"id\" and \"jws\"";
			goto cleanup;
		}
	}
verify:
	rc = verify_and_store(reg, items, n);
	if (rc != IMP_OK) {
		*status = 503;
		*err = "database unavailable";
		goto cleanup;
	}
	results = json_array();
	for (size_t i = 0; i < n && results; i++) {
		json_t *o = json_pack("{s:s, s:s, s:i}", "id", items[i].id, "status",
				      status_name(items[i].res.status), "code", items[i].res.code);

		if (o && items[i].res.reason[0])
			json_object_set_new(o, "reason", json_string(items[i].res.reason));
		json_array_append_new(results, o);
	}
	out = json_pack("{s:o}", "results", results);
	*status = 200;
cleanup:
	free(items);
	free(copy);
	json_decref(in);
	return out;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
			       const char *method, const char *version, const char *upload,
			       size_t *upload_size, void **con_cls)
{
	struct registry *reg = cls;
	struct request *rq = *con_cls;
	unsigned status;
	const char *err;
	json_t *answer;
	long fl;

	(void)version;
	if (!rq) {
		rq = calloc(1, sizeof(*rq));
		if (!rq)
			return MHD_NO;
		*con_cls = rq;
		return MHD_YES;
	}
	if (!rq->checked) {
		rq->checked = true;
		if (!client_ok(c))
			return send_error(c, MHD_HTTP_FORBIDDEN,
					  "a client certificate from the station CA is required");
	}
	if (*upload_size) {
		if (rq->len + *upload_size > BODY_MAX) {
			rq->too_big = true;
		} else {
			if (rq->len + *upload_size + 1 > rq->cap) {
				size_t nc = (rq->len + *upload_size + 1) * 2;
				char *t = realloc(rq->body, nc);

				if (!t)
					return MHD_NO;
				rq->body = t;
				rq->cap = nc;
			}
			memcpy(rq->body + rq->len, upload, *upload_size);
			rq->len += *upload_size;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	/* The whole request is read. */
	if (reg->slow_ms > 0)
		imp_sleep_us((uint64_t)reg->slow_ms * 1000);
	fl = atomic_load(&reg->fail_left);
	while (fl > 0 && !atomic_compare_exchange_weak(&reg->fail_left, &fl, fl - 1))
		;
	if (fl > 0)
		return send_json(c, (unsigned)reg->fail_status,
				 json_pack("{s:s}", "error", "injected failure"), reg->retry_after);
	if (!bearer_ok(reg, c))
		return send_error(c, MHD_HTTP_UNAUTHORIZED, "a valid bearer token is required");
	if (strcmp(method, "GET") == 0 && strncmp(url, "/records/", 9) == 0 && url[9]) {
		imp_err rc = reg_lookup(&reg->store, url + 9, &answer);

		if (rc == IMP_ERR_NOT_FOUND)
			return send_error(c, MHD_HTTP_NOT_FOUND, "no record for this serial");
		if (rc != IMP_OK)
			return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "database unavailable");
		return send_json(c, MHD_HTTP_OK, answer, -1);
	}
	if (strcmp(method, "GET") == 0 && strcmp(url, "/health") == 0)
		return send_json(c, MHD_HTTP_OK, json_pack("{s:b}", "ok", 1), -1);
	if (strcmp(url, "/records") != 0)
		return send_error(c, MHD_HTTP_NOT_FOUND, "unknown path: POST /records, "
							 "GET /records/SERIAL, GET /health");
	if (strcmp(method, "POST") != 0)
		return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "use POST");
	if (rq->too_big)
		return send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "body too large");
	answer = post_records(reg, rq->body ? rq->body : "", rq->len, &status, &err);
	fl = atomic_load(&reg->drop_left);
	while (fl > 0 && !atomic_compare_exchange_weak(&reg->drop_left, &fl, fl - 1))
		;
	if (fl > 0) {
		/* Fault: the records are stored, the answer is lost. */
		json_decref(answer);
		return MHD_NO;
	}
	if (!answer)
		return send_error(c, status, err);
	return send_json(c, status, answer, -1);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct request *rq = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (rq) {
		free(rq->body);
		free(rq);
		*con_cls = NULL;
	}
}

static char *read_text(const char *dir, const char *name)
{
	char path[4200];
	uint8_t *data = NULL;
	size_t n = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (imp_read_file(path, &data, &n) != IMP_OK) {
		IMP_ERROR("cannot read %s (make it with imprint-registry init-tls %s)", path, dir);
		return NULL;
	}
	return (char *)data;
}

/*
 * The TLS material as the HTTPS service will load it (GnuTLS, under
 * libmicrohttpd): the server certificate with its key, and the client CA.
 * Checked before the service starts, so that a damaged or mismatched file
 * is named, not reported as the service failing to start.
 */
static imp_err tls_check(const char *dir, const char *cert, const char *key, const char *ca,
			 const char *ca_path)
{
	gnutls_certificate_credentials_t cred = NULL;
	gnutls_datum_t c = { (unsigned char *)cert, (unsigned)strlen(cert) };
	gnutls_datum_t k = { (unsigned char *)key, (unsigned)strlen(key) };
	gnutls_datum_t t = { (unsigned char *)ca, (unsigned)strlen(ca) };
	char path[4200];
	imp_err rc;
	int r;

	snprintf(path, sizeof(path), "%s/server.pem", dir);
	rc = reg_tls_pem_check(cert, path, false);
	snprintf(path, sizeof(path), "%s/server.key", dir);
	if (rc == IMP_OK)
		rc = reg_tls_pem_check(key, path, true);
	if (rc == IMP_OK)
		rc = reg_tls_pem_check(ca, ca_path, false);
	if (rc != IMP_OK)
		return rc;
	rc = IMP_ERR_CONFIG;
	if (gnutls_certificate_allocate_credentials(&cred) != GNUTLS_E_SUCCESS)
		return IMP_ERR_NOMEM;
	r = gnutls_certificate_set_x509_key_mem(cred, &c, &k, GNUTLS_X509_FMT_PEM);
	if (r < 0) {
		IMP_ERROR("%s/server.pem with %s/server.key: %s; make new ones with "
			  "imprint-registry init-tls on an empty directory", dir, dir,
			  gnutls_strerror(r));
		goto cleanup;
	}
	r = gnutls_certificate_set_x509_trust_mem(cred, &t, GNUTLS_X509_FMT_PEM);
	if (r <= 0) {
		IMP_ERROR("%s: %s; give the CA that issues the stations' client certificates",
			  ca_path, r < 0 ? gnutls_strerror(r) : "no certificate in it");
		goto cleanup;
	}
	rc = IMP_OK;
cleanup:
	gnutls_certificate_free_credentials(cred);
	return rc;
}

static void usage(void)
{
	printf("usage: imprint-registry init-tls DIR\n"
	       "       imprint-registry serve --db FILE --trust-dir DIR --tls-dir DIR [options]\n"
	       "\nserve options:\n"
	       "  --db FILE            SQLite database of the registry (created)\n"
	       "  --trust-dir DIR      the organisation's trust folder (bundle.pem, revocation.pem)\n"
	       "  --tls-dir DIR        server.pem, server.key and ca.pem (the client CA)\n"
	       "  --client-ca FILE     client CA instead of TLS-DIR/ca.pem\n"
	       "  --listen ADDR        IPv4 address to listen on (127.0.0.1)\n"
	       "  --port N             TCP port, 0 = ephemeral (0)\n"
	       "  --threads N          connection threads (2) and verify threads per batch (2)\n"
	       "  --bearer-env VAR     require 'Authorization: Bearer $VAR'\n"
	       "  --fail-status CODE N answer CODE (500, 503...) to the next N requests\n"
	       "  --retry-after S      send Retry-After: S with those answers\n"
	       "  --drop-after-read N  for the next N POSTs: store, then close without answering\n"
	       "  --slow MS            wait MS milliseconds before every answer\n"
	       "  -v, --verbose        more logging\n");
}

static int serve(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "db", required_argument, NULL, 'd' },
		{ "trust-dir", required_argument, NULL, 't' },
		{ "tls-dir", required_argument, NULL, 'T' },
		{ "client-ca", required_argument, NULL, 'C' },
		{ "listen", required_argument, NULL, 'l' },
		{ "port", required_argument, NULL, 'p' },
		{ "threads", required_argument, NULL, 'j' },
		{ "bearer-env", required_argument, NULL, 'b' },
		{ "fail-status", required_argument, NULL, 'f' },
		{ "retry-after", required_argument, NULL, 'r' },
		{ "drop-after-read", required_argument, NULL, 'D' },
		{ "slow", required_argument, NULL, 's' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct registry reg = { .retry_after = -1, .verify_threads = 2 };
	const char *db = NULL, *trust = NULL, *tls = NULL, *client_ca = NULL;
	const char *listen_addr = "127.0.0.1";
	long port = 0, threads = 2;
	char *cert = NULL, *key = NULL, *ca = NULL;
	struct MHD_Daemon *d = NULL;
	struct sockaddr_in sa = { 0 };
	const union MHD_DaemonInfo *di;
	sigset_t set;
	int sig, opt, code = 1;

	while ((opt = getopt_long(argc, argv, "vh", longs, NULL)) != -1) {
		switch (opt) {
		case 'd': db = optarg; break;
		case 't': trust = optarg; break;
		case 'T': tls = optarg; break;
		case 'C': client_ca = optarg; break;
		case 'l': listen_addr = optarg; break;
		case 'p': port = atol(optarg); break;
		case 'j': threads = atol(optarg); break;
		case 'b':
			reg.bearer = getenv(optarg);
			if (!reg.bearer || !reg.bearer[0]) {
				IMP_ERROR("--bearer-env %s: the variable is not set", optarg);
				return IMP_ERR_USAGE;
			}
			break;
		case 'f':
			if (optind >= argc) {
				IMP_ERROR("--fail-status takes CODE and N");
				return IMP_ERR_USAGE;
			}
			reg.fail_status = atoi(optarg);
			atomic_store(&reg.fail_left, atol(argv[optind++]));
			break;
		case 'r': reg.retry_after = atol(optarg); break;
		case 'D': atomic_store(&reg.drop_left, atol(optarg)); break;
		case 's': reg.slow_ms = atol(optarg); break;
		case 'v': imp_log_set_level(IMP_LOG_DEBUG); break;
		case 'h': usage(); return 0;
		default: usage(); return IMP_ERR_USAGE;
		}
	}
	if (!db || !trust || !tls || port < 0 || port > 65535 || threads < 1 || threads > 64 ||
	    (reg.fail_status && (reg.fail_status < 400 || reg.fail_status > 599))) {
		usage();
		return IMP_ERR_USAGE;
	}
	reg.verify_threads = (unsigned)threads;
	if (inet_pton(AF_INET, listen_addr, &sa.sin_addr) != 1) {
		IMP_ERROR("--listen %s: an IPv4 address is expected", listen_addr);
		return IMP_ERR_USAGE;
	}
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	cert = read_text(tls, "server.pem");
	key = read_text(tls, "server.key");
	if (client_ca) {
		uint8_t *data = NULL;
		size_t n;

		if (imp_read_file(client_ca, &data, &n) == IMP_OK)
			ca = (char *)data;
		else
			IMP_ERROR("cannot read %s", client_ca);
	} else {
		ca = read_text(tls, "ca.pem");
	}
	if (!cert || !key || !ca)
		goto cleanup;
	{
		char ca_path[4200];

		if (client_ca)
			snprintf(ca_path, sizeof(ca_path), "%s", client_ca);
		else
			snprintf(ca_path, sizeof(ca_path), "%s/ca.pem", tls);
		if (tls_check(tls, cert, key, ca, ca_path) != IMP_OK)
			goto cleanup;
	}
	if (reg_store_open(&reg.store, db, trust) != IMP_OK)
		goto cleanup;
	/* Block the stop signals in every thread; main waits for them. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	d = MHD_start_daemon(MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
				     MHD_USE_TURBO,
			     0, NULL, NULL, handler, &reg, MHD_OPTION_SOCK_ADDR, &sa,
			     MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads,
			     MHD_OPTION_HTTPS_MEM_CERT, cert, MHD_OPTION_HTTPS_MEM_KEY, key,
			     MHD_OPTION_HTTPS_MEM_TRUST, ca, MHD_OPTION_NOTIFY_COMPLETED, completed,
			     NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
			     MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(1u << 20), MHD_OPTION_END);
	if (!d) {
		IMP_ERROR("cannot start the HTTPS service on %s:%ld: %s", listen_addr, port,
			  strerror(errno));
		goto cleanup;
	}
	di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	printf("{\"ready\":true,\"port\":%u,\"url\":\"https://%s:%u\"}\n",
	       di ? di->port : (unsigned)port, listen_addr, di ? di->port : (unsigned)port);
	fflush(stdout);
	if (sigwait(&set, &sig) == 0)
		IMP_INFO("signal %d: stopping", sig);
	code = 0;
cleanup:
	if (d)
		MHD_stop_daemon(d);
	reg_store_close(&reg.store);
	if (key)
		imp_wipe(key, strlen(key));
	free(key);
	free(cert);
	free(ca);
	return code;
}

int main(int argc, char **argv)
{
	imp_log_set_prog("imprint-registry");
	if (argc >= 3 && strcmp(argv[1], "init-tls") == 0) {
		imp_err rc = reg_init_tls(argv[2]);

		if (rc == IMP_OK)
			printf("TLS material (demo only) written to %s\n", argv[2]);
		return (int)rc;
	}
	if (argc >= 2 && strcmp(argv[1], "serve") == 0)
		return serve(argc - 1, argv + 1);
	usage();
	return (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
		       ? 0
		       : IMP_ERR_USAGE;
}

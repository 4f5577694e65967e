/*
 * The "https" exporter: POST /records batches to a registry (docs/REGISTRY.md)
 * with libcurl, mutual TLS, a pinned server CA, an optional bearer token and
 * one kept-alive connection. Transient failures (connection errors,
 * timeouts, 5xx, 429) are retried with exponential backoff and full jitter,
 * at least as long as a Retry-After asks; a 4xx of the whole request is not
 * retried (the configuration is wrong).
 */
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/rand.h>

#include "exp/export.h"
#include "https.h"
#include "imprint/log.h"
#include "imprint/util.h"

/* One kept-alive connection and its last response. */
struct conn {
	CURL *curl;
	char *body;           /* response buffer */
	size_t body_len, body_cap;
	size_t body_max;      /* this request's answer may not be longer */
	bool too_big;         /* it was: the transfer was stopped */
	double retry_after_s; /* from the last response, -1 if none */
	char errbuf[CURL_ERROR_SIZE];
};

/*
 * A large batch is sent as two halves at once, on two connections, so that
 * the registry verifies one while it reads or stores the other.
 */
#define PIPE_MIN 512u

struct https {
	struct conn c[2];
	struct curl_slist *headers;
	char *url;            /* base + "/records" */
	struct exp_settings s;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct conn *h = arg;
	size_t len = size * n;

	if (h->body_len + len > h->body_max) {
		h->too_big = true; /* a registry's answer is never that big */
		return 0;
	}
	if (h->body_len + len + 1 > h->body_cap) {
		size_t nc = (h->body_len + len + 1) * 2;
		char *t;

		t = realloc(h->body, nc);
		if (!t)
			return 0;
		h->body = t;
		h->body_cap = nc;
	}
	memcpy(h->body + h->body_len, p, len);
	h->body_len += len;
	h->body[h->body_len] = '\0';
	return len;
}

int exp_https_retry_after(const char *line, size_t len, double *seconds)
{
	static const char name[] = "retry-after:";
	size_t i = sizeof(name) - 1, digits = 0;
	double v = 0;

	if (len < i || strncasecmp(line, name, i) != 0)
		return 0;
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	for (; i < len && line[i] >= '0' && line[i] <= '9'; i++) {
		if (++digits > 9)
			return 0; /* absurd: not believed */
		v = v * 10 + (line[i] - '0');
	}
	while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\n'))
		i++;
	if (digits == 0 || i != len || v > EXP_RETRY_AFTER_MAX)
		return 0;
	*seconds = v;
	return 1;
}

double exp_https_backoff(double base_s, double max_s, unsigned attempt, double r01,
			 double retry_after_s)
{
	double cap = base_s * (double)(1u << (attempt < 16 ? attempt : 16));
	double wait;

	if (cap > max_s)
		cap = max_s;
	if (cap < 0)
		cap = 0;
	if (!(r01 >= 0) || r01 >= 1)
		r01 = 0;
	wait = cap * r01;
	if (retry_after_s >= 0 && wait < retry_after_s)
		wait = retry_after_s;
	return wait;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct conn *h = arg;
	size_t len = size * n;
	double v;

	if (exp_https_retry_after(p, len, &v))
		h->retry_after_s = v;
	return len;
}

static imp_err conn_init(struct https *h, struct conn *c)
{
	const struct exp_settings *s = &h->s;

	c->curl = curl_easy_init();
	if (!c->curl)
		return IMP_ERR_EXPORT;
	curl_easy_setopt(c->curl, CURLOPT_URL, h->url);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, h->headers);
	curl_easy_setopt(c->curl, CURLOPT_CAINFO, s->ca);
	curl_easy_setopt(c->curl, CURLOPT_CAPATH, NULL);
	curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c->curl, CURLOPT_SSLCERT, s->cert);
	curl_easy_setopt(c->curl, CURLOPT_SSLCERTTYPE, "PEM");
	curl_easy_setopt(c->curl, CURLOPT_SSLKEY, s->key);
	curl_easy_setopt(c->curl, CURLOPT_SSLKEYTYPE, "PEM");
	curl_easy_setopt(c->curl, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c->curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(c->curl, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, s->connect_timeout_ms);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, s->timeout_ms);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, c);
	curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->errbuf);
	curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "imprint/" IMPRINT_VERSION);
	return IMP_OK;
}

static imp_err https_open(const struct exp_settings *s, void **state)
{
	struct https *h;
	char auth[4200];
	imp_err rc = IMP_ERR_EXPORT;

	*state = NULL;
	if (!s->url || strncmp(s->url, "https://", 8) != 0) {
		IMP_ERROR("registry url must be https:// (got %s): set registry.url in the "
			  "configuration", s->url ? s->url : "none");
		return IMP_ERR_CONFIG;
	}
	if (!s->ca || !s->cert || !s->key) {
		IMP_ERROR("registry needs ca, cert and key (mutual TLS): set registry.ca, "
			  "registry.cert and registry.key in the configuration");
		return IMP_ERR_CONFIG;
	}
	if (exp_curl_load() != IMP_OK)
		return IMP_ERR_NOT_FOUND;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return IMP_ERR_INTERNAL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return IMP_ERR_NOMEM;
	h->s = *s;
	if (h->s.connect_timeout_ms <= 0)
		h->s.connect_timeout_ms = 5000;
	if (h->s.timeout_ms <= 0)
		h->s.timeout_ms = 30000;
	if (h->s.retry_for_s == 0)
		h->s.retry_for_s = 60;
	if (h->s.backoff_base_s <= 0)
		h->s.backoff_base_s = 0.2;
	if (h->s.backoff_max_s <= 0)
		h->s.backoff_max_s = 10;
	if (asprintf(&h->url, "%s%srecords", s->url,
		     s->url[strlen(s->url) - 1] == '/' ? "" : "/") < 0) {
		h->url = NULL;
		rc = IMP_ERR_NOMEM;
		goto fail;
	}
	h->headers = curl_slist_append(NULL, "Content-Type: application/json");
	h->headers = curl_slist_append(h->headers, "Accept: application/json");
	if (s->bearer) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", s->bearer);
		h->headers = curl_slist_append(h->headers, auth);
		imp_wipe(auth, sizeof(auth));
	}
	if (!h->headers)
		goto fail;
	for (int i = 0; i < 2; i++)
		if (conn_init(h, &h->c[i]) != IMP_OK)
			goto fail;
	*state = h;
	return IMP_OK;
fail:
	curl_slist_free_all(h->headers);
	for (int i = 0; i < 2; i++)
		if (h->c[i].curl)
			curl_easy_cleanup(h->c[i].curl);
	free(h->url);
	free(h);
	curl_global_cleanup();
	return rc;
}

static imp_err https_close(void *state)
{
	struct https *h = state;

	curl_slist_free_all(h->headers);
	for (int i = 0; i < 2; i++) {
		curl_easy_cleanup(h->c[i].curl);
		free(h->c[i].body);
	}
	free(h->url);
	free(h);
	curl_global_cleanup();
	return IMP_OK;
}

/* {"records":[{"id":..,"jws":..},...]}, written by hand (big batches). */
static char *build_body(const struct exp_record *recs, size_t n, size_t *len)
{
	size_t cap = 32;
	char *b, *p;

	for (size_t i = 0; i < n; i++)
		cap += strlen(recs[i].id) + strlen(recs[i].jws) + 32;
	b = malloc(cap);
	if (!b)
		return NULL;
	p = b;
	p += sprintf(p, "{\"records\":[");
	for (size_t i = 0; i < n; i++) {
		/* ids are hex or UUIDs and JWS are base64url + '.': nothing to escape,
		 * but never trust that blindly. */
		for (const char *c = recs[i].id; *c; c++)
			if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20) {
				free(b);
				return NULL;
			}
		p += sprintf(p, "%s{\"id\":\"%s\",\"jws\":\"%s\"}", i ? "," : "", recs[i].id,
			     recs[i].jws);
	}
	p += sprintf(p, "]}");
	*len = (size_t)(p - b);
	return b;
}

static int find_index(const struct exp_record *recs, size_t n, const char *id, size_t hint)
{
	if (hint < n && strcmp(recs[hint].id, id) == 0)
		return (int)hint;
	for (size_t i = 0; i < n; i++)
		if (strcmp(recs[i].id, id) == 0)
			return (int)i;
	return -1;
}

imp_err exp_https_parse_results(const char *body, size_t len, const struct exp_record *recs,
				size_t n, struct exp_result *res)
{
	json_error_t jerr;
	json_t *o = json_loadb(body ? body : "", body ? len : 0, JSON_REJECT_DUPLICATES, &jerr);
	json_t *arr = json_object_get(o, "results");
	bool *seen = NULL;
	json_t *v;
	size_t i;

	if (!json_is_array(arr)) {
		IMP_ERROR("registry answer has no \"results\" array%s%s", o ? "" : ": ",
			  o ? "" : jerr.text);
		json_decref(o);
		return IMP_ERR_PROTOCOL;
	}
	seen = calloc(n ? n : 1, sizeof(*seen));
	if (!seen) {
		json_decref(o);
		return IMP_ERR_NOMEM;
	}
	json_array_foreach(arr, i, v) {
		const char *id = json_string_value(json_object_get(v, "id"));
		const char *status = json_string_value(json_object_get(v, "status"));
		const char *reason = json_string_value(json_object_get(v, "reason"));
		json_t *code = json_object_get(v, "code");
		int k = id ? find_index(recs, n, id, i) : -1;
		enum exp_status st;

		if (k < 0 || !status)
			continue;
		if (strcmp(status, "accepted") == 0)
			st = EXP_ACCEPTED;
		else if (strcmp(status, "duplicate-same") == 0)
			st = EXP_DUPLICATE_SAME;
		else if (strcmp(status, "rejected") == 0)
			st = EXP_REJECTED;
		else
			st = EXP_PENDING; /* e.g. "retry": try again later */
		if (seen[k] && res[k].status != st) {
			/* two different answers for one record: believe neither */
			res[k].status = EXP_PENDING;
			res[k].code = 0;
			snprintf(res[k].reason, sizeof(res[k].reason), "%s",
				 "the registry answered twice, differently, for this record");
			continue;
		}
		if (seen[k])
			continue;
		seen[k] = true;
		res[k].status = st;
		res[k].code = json_is_integer(code) && json_integer_value(code) >= 0 &&
				      json_integer_value(code) <= 999
				      ? (int)json_integer_value(code)
				      : 0;
		/* The registry's words reach terminals and logs: no control characters. */
		imp_text_safe(reason, res[k].reason, sizeof(res[k].reason));
	}
	free(seen);
	json_decref(o);
	return IMP_OK;
}

/* Uniform in [0, 1). */
static double jitter01(void)
{
	uint32_t r = 0;

	if (RAND_bytes((uint8_t *)&r, sizeof(r)) != 1)
		r = (uint32_t)rand();
	return (double)r / 4294967296.0;
}

/* One request (with its retries) on connection c. */
static imp_err push_one(struct https *h, struct conn *c, const struct exp_record *recs, size_t n,
			struct exp_result *res)
{
	size_t len = 0;
	char *body = build_body(recs, n, &len);
	double deadline = imp_now_s() + (h->s.retry_for_s < 0 ? 0 : h->s.retry_for_s);
	imp_err rc = IMP_ERR_EXPORT;

	if (!body)
		return IMP_ERR_NOMEM;
	curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	for (unsigned attempt = 0;; attempt++) {
		long status = 0;
		double wait;
		CURLcode cc;

		c->body_len = 0;
		/* An answer is a result per record (an id, a status, a reason of at
		 * most 255 bytes): room for that, with a margin, and no more. */
		c->body_max = ((size_t)64 << 10) + n * 2048;
		c->too_big = false;
		c->retry_after_s = -1;
		c->errbuf[0] = '\0';
		cc = curl_easy_perform(c->curl);
		if (c->too_big)
			IMP_WARN("registry: the answer ran past %zu bytes for %zu records: not a "
				 "registry's answer (check registry.url)", c->body_max, n);
		if (cc == CURLE_OK)
			curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
		if (cc == CURLE_OK && status >= 200 && status < 300) {
			rc = exp_https_parse_results(c->body, c->body_len, recs, n, res);
			if (rc == IMP_OK)
				break;
		} else if (cc == CURLE_OK && status >= 400 && status < 500 && status != 408 &&
			   status != 429) {
			char said[201];

			/* The body is the peer's: no control characters to the log. */
			imp_text_safe(c->body, said, sizeof(said));
			IMP_ERROR("registry refused the request: HTTP %ld %s; check "
				  "registry.url, the client certificate and the bearer token",
				  status, said);
			rc = IMP_ERR_EXPORT;
			break;
		} else if (cc != CURLE_OK) {
			IMP_WARN("registry: %s (%s)", curl_easy_strerror(cc), c->errbuf);
			/* A certificate problem does not go away by waiting. */
			if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CERTPROBLEM ||
			    cc == CURLE_SSL_CACERT_BADFILE || cc == CURLE_UNSUPPORTED_PROTOCOL ||
			    cc == CURLE_URL_MALFORMAT) {
				IMP_ERROR("registry: TLS or URL configuration problem; check "
					  "registry.url, registry.ca, registry.cert and registry.key");
				rc = IMP_ERR_EXPORT;
				break;
			}
			rc = (cc == CURLE_OPERATION_TIMEDOUT) ? IMP_ERR_TIMEOUT : IMP_ERR_EXPORT;
		} else {
			IMP_WARN("registry: HTTP %ld%s", status,
				 c->retry_after_s >= 0 ? " (with Retry-After)" : "");
			rc = IMP_ERR_EXPORT;
		}
		wait = exp_https_backoff(h->s.backoff_base_s, h->s.backoff_max_s, attempt, jitter01(),
					 c->retry_after_s);
		if (imp_now_s() + wait > deadline) {
			if (c->retry_after_s >= 0 && imp_now_s() + c->retry_after_s > deadline)
				IMP_ERROR("the registry asks to be retried after %.0f s "
					  "(Retry-After), which would end past --retry-for's %.0f s "
					  "from the first attempt; records stay in the outbox, run "
					  "imprint export again then", c->retry_after_s,
					  h->s.retry_for_s < 0 ? 0 : h->s.retry_for_s);
			else
				IMP_ERROR("registry unreachable or failing for %.0f s; records stay "
					  "in the outbox, run imprint export again",
					  h->s.retry_for_s < 0 ? 0 : h->s.retry_for_s);
			break;
		}
		IMP_DEBUG("registry: retry %u in %.2f s", attempt + 1, wait);
		imp_sleep_us((uint64_t)(wait * 1e6));
	}
	curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, NULL);
	free(body);
	if (rc != IMP_OK)
		for (size_t i = 0; i < n; i++)
			res[i].status = EXP_PENDING;
	return rc;
}

struct half {
	struct https *h;
	const struct exp_record *recs;
	size_t n;
	struct exp_result *res;
	imp_err rc;
};

static void *push_half(void *arg)
{
	struct half *x = arg;

	x->rc = push_one(x->h, &x->h->c[1], x->recs, x->n, x->res);
	return NULL;
}

/* A revocation in recs[from..n): it may revoke an identity of the first
 * half, which the registry must hold before it takes the revocation. */
static bool revocation_from(const struct exp_record *recs, size_t from, size_t n)
{
	for (size_t i = from; i < n; i++)
		if (recs[i].kind == JNL_OUTBOX_REVOCATION)
			return true;
	return false;
}

/*
 * A batch of at least 2 x PIPE_MIN records goes as two requests at once (the
 * second half from a thread, on the second connection). If only one half
 * gets an answer, that is an answer: the other half's records stay pending
 * and are sent again with a later batch. A second half that holds a
 * revocation is not sent beside the first: the registry could judge it
 * before the first half's identity it revokes is stored, and refuse it for
 * good ("revocation of unknown serial"); the batch goes as one request, in
 * the outbox's order.
 */
static imp_err https_push(void *state, const struct exp_record *recs, size_t n,
			  struct exp_result *res)
{
	struct https *h = state;
	struct half x;
	pthread_t th;
	imp_err rc;

	if (n < 2 * PIPE_MIN || revocation_from(recs, n / 2, n))
		return push_one(h, &h->c[0], recs, n, res);
	x = (struct half){ h, recs + n / 2, n - n / 2, res + n / 2, IMP_ERR_INTERNAL };
	if (pthread_create(&th, NULL, push_half, &x) != 0)
		return push_one(h, &h->c[0], recs, n, res);
	rc = push_one(h, &h->c[0], recs, n / 2, res);
	pthread_join(th, NULL);
	return rc == IMP_OK || x.rc == IMP_OK ? IMP_OK : rc;
}

const struct exp_driver exp_driver_https = {
	.name = "https",
	.summary = "the registry (docs/REGISTRY.md) over HTTPS with mutual TLS",
	.durable_on_close = false,
	.open = https_open,
	.push = https_push,
	.close = https_close,
};

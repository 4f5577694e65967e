/*
 * imprint serve --dashboard: the report page live and read-only over HTTP
 * (libmicrohttpd; this is the only file of the station that includes it).
 * Every request reads the journal afresh with the status builder
 * (report.h): GET / is the page, whose script replaces its content with
 * GET /fragment every two seconds; GET /status.json is the status object
 * itself. Nothing writes: the journal is opened read-only.
 *
 * Loopback by default. Any other address needs --token-file: the token
 * must then come with every request (?token=T or "Authorization: Bearer
 * T"), else 401. Without one a non-loopback address is refused at start.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/socket.h>

#include <microhttpd.h>
#include <openssl/crypto.h>

#include "dynlibs.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "report.h"
#include "run.h"

#define SERVE_TOKEN_MIN 16

static struct {
	bool dashboard;
	const char *listen, *token_file;
} sopt = { .listen = "127.0.0.1:8780" };

static const struct st_option serve_opts[] = {
	{ "dashboard", 0, ST_OPT_FLAG, &sopt.dashboard, NULL,
	  "serve the live report page (required: the only thing served)" },
	{ "listen", 0, ST_OPT_STRING, &sopt.listen, "ADDR:PORT",
	  "where to listen (127.0.0.1:8780; port 0 picks one)" },
	{ "token-file", 0, ST_OPT_STRING, &sopt.token_file, "FILE",
	  "require the token in FILE with every request; needed off loopback" },
	ST_OPTIONS_END,
};

struct serve {
	struct station_ctx *ctx;
	char token[256]; /* "" for none */
};

/* "127.0.0.1:8780" / "[::1]:8780" / "0.0.0.0:0" into sa. */
static bool parse_listen(const char *s, struct sockaddr_storage *sa, socklen_t *len,
			 bool *loopback)
{
	char host[128];
	const char *colon = strrchr(s, ':');
	char *end;
	long port;

	if (!colon || colon == s || (size_t)(colon - s) >= sizeof(host))
		return false;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || port < 0 || port > 65535)
		return false;
	memset(sa, 0, sizeof(*sa));
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)sa;

		host[strlen(host) - 1] = 0;
		if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
			return false;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*a6);
		*loopback = IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr);
		return true;
	}
	struct sockaddr_in *a4 = (struct sockaddr_in *)sa;

	if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
		return false;
	a4->sin_family = AF_INET;
	a4->sin_port = htons((uint16_t)port);
	*len = sizeof(*a4);
	*loopback = (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
	return true;
}

static imp_err serve_check(int argc, char **argv)
{
	struct sockaddr_storage sa;
	socklen_t len;
	bool loopback;

	(void)argc;
	(void)argv;
	if (!sopt.dashboard) {
		IMP_ERROR("serve: say what to serve: --dashboard (the live report page)");
		return IMP_ERR_USAGE;
	}
	if (!parse_listen(sopt.listen, &sa, &len, &loopback)) {
		IMP_ERROR("serve: --listen takes ADDR:PORT with a numeric address, e.g. "
			  "127.0.0.1:8780 or [::1]:8780");
		return IMP_ERR_USAGE;
	}
	if (!loopback && !sopt.token_file) {
		IMP_ERROR("serve: %s is not a loopback address and no credentials are set; "
			  "add --token-file FILE or listen on 127.0.0.1", sopt.listen);
		return IMP_ERR_USAGE;
	}
	return IMP_OK;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
			     char *body)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (!body)
		return MHD_NO;
	r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static bool token_ok(const struct serve *s, struct MHD_Connection *c)
{
	const char *q, *h;
	size_t n = strlen(s->token);

	if (!s->token[0])
		return true;
	q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "token");
	h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	if (h && strncmp(h, "Bearer ", 7) == 0)
		q = h + 7;
	return q && strlen(q) == n && CRYPTO_memcmp(q, s->token, n) == 0;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
			       const char *method, const char *version, const char *upload,
			       size_t *upload_size, void **con_cls)
{
	struct serve *s = cls;
	struct st_status_opts so = { .failures_limit = 10, .verify = true };
	json_t *st = NULL;
	enum MHD_Result ret;
	bool page = strcmp(url, "/") == 0, frag = strcmp(url, "/fragment") == 0,
	     js = strcmp(url, "/status.json") == 0;

	(void)version;
	(void)upload;
	(void)upload_size;
	(void)con_cls;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain",
			     strdup("read-only: GET only\n"));
	if (!token_ok(s, c))
		return reply(c, MHD_HTTP_UNAUTHORIZED, "text/plain",
			     strdup("a token is required (?token=T or Authorization: Bearer T)\n"));
	if (!page && !frag && !js)
		return reply(c, MHD_HTTP_NOT_FOUND, "text/plain",
			     strdup("not found: /, /fragment and /status.json are served\n"));
	(void)st_status_build(s->ctx, &so, &st);
	if (!st)
		return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain",
			     strdup("the journal could not be read; see the station's log\n"));
	if (js)
		ret = reply(c, MHD_HTTP_OK, "application/json", json_dumps(st, JSON_SORT_KEYS));
	else if (frag)
		ret = reply(c, MHD_HTTP_OK, "text/html; charset=utf-8", st_report_fragment(st));
	else
		ret = reply(c, MHD_HTTP_OK, "text/html; charset=utf-8", st_report_html(st, true));
	json_decref(st);
	return ret;
}

static imp_err read_token(const char *path, char *out, size_t cap)
{
	uint8_t *buf = NULL;
	size_t n = 0;
	struct stat st;
	imp_err rc;

	/* A secret, as a pin file is: not readable by group or others. */
	if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077)) {
		IMP_ERROR("serve: the token file %s has mode %04o: it must not be readable by "
			  "group or others (chmod 600 %s)", path, (unsigned)(st.st_mode & 07777),
			  path);
		return IMP_ERR_INSECURE;
	}
	rc = imp_read_file(path, &buf, &n);
	if (rc != IMP_OK) {
		IMP_ERROR("serve: cannot read the token file %s", path);
		return rc;
	}
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		n--;
	for (size_t i = 0; i < n; i++)
		if (buf[i] <= ' ' || buf[i] > '~' || buf[i] == '&' || buf[i] == '%' ||
		    buf[i] == '+' || buf[i] == '#')
			n = 0;
	if (n < SERVE_TOKEN_MIN || n >= cap) {
		IMP_ERROR("serve: the token in %s must be %d to %zu printable characters without "
			  "blanks, &, %%, + or # (e.g. 'openssl rand -hex 16 > %s')",
			  path, SERVE_TOKEN_MIN, cap - 1, path);
		rc = IMP_ERR_CONFIG;
	} else {
		memcpy(out, buf, n);
		out[n] = 0;
	}
	imp_wipe(buf, n);
	free(buf);
	return rc;
}

static int serve_run(struct station_ctx *ctx, int argc, char **argv)
{
	static struct serve s; /* the handler's, for the daemon's life */
	struct sockaddr_storage sa;
	socklen_t len;
	bool loopback;
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *di;
	sigset_t set;
	char url[160];
	int sig;
	imp_err rc;

	(void)argc;
	(void)argv;
	s.ctx = ctx;
	s.token[0] = 0;
	parse_listen(sopt.listen, &sa, &len, &loopback); /* checked by serve_check */
	if (sopt.token_file) {
		rc = read_token(sopt.token_file, s.token, sizeof(s.token));
		if (rc != IMP_OK)
			return st_fail(rc, NULL);
	}
	if (st_mhd_load() != IMP_OK)
		return st_fail(IMP_ERR_NOT_FOUND, NULL);
	/* Signals go to sigwait below, not to the daemon's thread. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
				     (sa.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
			     0, NULL, NULL, handler, &s, MHD_OPTION_SOCK_ADDR, &sa,
			     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
			     MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_END);
	if (!d) {
		IMP_ERROR("serve: cannot listen on %s (%s); is the port in use?", sopt.listen,
			  strerror(errno));
		return st_fail(IMP_ERR_IO, NULL);
	}
	di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	{
		char host[128];
		const char *colon = strrchr(sopt.listen, ':');

		snprintf(host, sizeof(host), "%.*s", (int)(colon - sopt.listen), sopt.listen);
		snprintf(url, sizeof(url), "http://%s:%u/", host, di ? (unsigned)di->port : 0u);
	}
	if (ctx->json)
		printf("{\"dashboard\":\"%s\",\"token\":%s}\n", url, s.token[0] ? "true" : "false");
	else
		printf("dashboard on %s%s (read-only; stop with Ctrl-C)\n", url,
		       s.token[0] ? "?token=..." : "");
	fflush(stdout);
	sigwait(&set, &sig);
	IMP_INFO("serve: signal %d: stopping", sig);
	MHD_stop_daemon(d);
	imp_wipe(s.token, sizeof(s.token));
	return 0;
}

const struct st_command st_cmd_serve = {
	.name = "serve",
	.fn = serve_run,
	.need = NEED_JOURNAL,
	.summary = "the live report page over HTTP, read-only (--dashboard)",
	.usage = "imprint serve --dashboard [--listen ADDR:PORT] [--token-file FILE]",
	.opts = serve_opts,
	.check = serve_check,
	.help = "Serves GET / (the report page, updating itself every two seconds), /fragment "
		"and /status.json (the object of 'imprint status --json --verify'), read from "
		"the journal at each request. Listens on loopback unless told otherwise; any other "
		"address is refused without --token-file, and the token then travels in plain "
		"HTTP: use it on a trusted network only. Stops on SIGINT or SIGTERM.",
	.exits = (const imp_err[]){ IMP_ERR_IO, IMP_OK },
	.example = "imprint serve --dashboard --listen 127.0.0.1:8080",
};

/*
 * A local imprint-registry for the demo and the tests: started on loopback,
 * an ephemeral port, with its own database and TLS material.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "imprint/log.h"
#include "imprint/util.h"
#include "station.h"

imp_err st_registry_start(struct station_ctx *ctx, const char *dir, struct st_registry *r)
{
	char exe[PATH_MAX], tls[4300], db[4300], trust[4200], key[4400], line[512];
	int pipefd[2];
	FILE *f;

	memset(r, 0, sizeof(*r));
	st_find_program("imprint-registry", "backend-export/registry", exe, sizeof(exe));
	snprintf(tls, sizeof(tls), "%s/tls", dir);
	snprintf(db, sizeof(db), "%s/registry.sqlite", dir);
	snprintf(key, sizeof(key), "%s/ca.key", tls);
	st_trust_dir(ctx, trust, sizeof(trust));
	if (access(key, F_OK) != 0) {
		pid_t p = fork();
		int status = 0;

		if (p == 0) {
			int fd = open("/dev/null", O_WRONLY);

			dup2(fd, STDOUT_FILENO);
			execlp(exe, exe, "init-tls", tls, (char *)NULL);
			_exit(127);
		}
		if (p < 0 || waitpid(p, &status, 0) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0) {
			IMP_ERROR("%s init-tls %s failed", exe, tls);
			return IMP_ERR_EXPORT;
		}
	}
	if (pipe(pipefd) != 0)
		return IMP_ERR_IO;
	r->pid = fork();
	if (r->pid < 0)
		return IMP_ERR_IO;
	if (r->pid == 0) {
		dup2(pipefd[1], STDOUT_FILENO);
		close(pipefd[0]);
		close(pipefd[1]);
		execlp(exe, exe, "serve", "--db", db, "--trust-dir", trust, "--tls-dir", tls,
		       "--port", "0", (char *)NULL);
		fprintf(stderr, "imprint: error: cannot run %s: %s\n", exe, strerror(errno));
		_exit(127);
	}
	close(pipefd[1]);
	f = fdopen(pipefd[0], "r");
	if (!f) {
		close(pipefd[0]);
		return IMP_ERR_NOMEM;
	}
	r->out = f;
	snprintf(r->db, sizeof(r->db), "%s", db);
	snprintf(r->ca, sizeof(r->ca), "%s/ca.pem", tls);
	snprintf(r->cert, sizeof(r->cert), "%s/client.pem", tls);
	snprintf(r->key, sizeof(r->key), "%s/client.key", tls);
	if (fgets(line, sizeof(line), f)) {
		json_t *o = json_loads(line, 0, NULL);
		const char *url = json_string_value(json_object_get(o, "url"));

		if (url && json_is_true(json_object_get(o, "ready"))) {
			snprintf(r->url, sizeof(r->url), "%s", url);
			json_decref(o);
			return IMP_OK;
		}
		json_decref(o);
	}
	IMP_ERROR("the local registry (%s) did not start; run it by hand to see why", exe);
	return IMP_ERR_EXPORT;
}

void st_registry_stop(struct st_registry *r)
{
	if (r->pid > 0) {
		kill(r->pid, SIGTERM);
		waitpid(r->pid, NULL, 0);
		r->pid = 0;
	}
	if (r->out)
		fclose(r->out);
	r->out = NULL;
}

json_t *st_registry_config(const struct st_registry *r)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "url", r->url, "ca", r->ca, "cert", r->cert,
			 "key", r->key);
}

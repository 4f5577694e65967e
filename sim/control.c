/*
 * The vboard's control port (--control): loopback TCP, one client at a
 * time, one command per line, one JSON line answered per command
 * (docs/VBOARD.md "Swapping boards"):
 *
 *   remove N   the board leaves fixture N
 *   insert N   a new board (new UID) goes onto fixture N
 *   swap N     remove, then insert
 *   list       one endpoint line per fixture, then {"end":true}
 *
 * After every change the endpoints file (--endpoints) is written again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "imprint/log.h"
#include "imprint/util.h"
#include "sim/control.h"

char *sim_endpoint_lines(struct sim_board *const *boards, int n, int control_port,
			 size_t *len)
{
	char *buf = NULL;
	size_t blen = 0;
	FILE *mem = open_memstream(&buf, &blen);

	if (!mem)
		return NULL;
	for (int i = 0; i < n; i++) {
		char *j = sim_board_endpoint_json(boards[i]);

		if (!j) {
			fclose(mem);
			free(buf);
			return NULL;
		}
		fprintf(mem, "%s\n", j);
		free(j);
	}
	if (control_port > 0)
		fprintf(mem, "{\"ready\":true,\"control\":\"127.0.0.1:%d\"}\n", control_port);
	else
		fprintf(mem, "{\"ready\":true}\n");
	fclose(mem);
	*len = blen;
	return buf;
}

static void send_str(int fd, const char *s)
{
	size_t n = strlen(s);

	while (n > 0) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

static void answer_board(int fd, struct sim_board *b)
{
	char *j = sim_board_endpoint_json(b);

	if (j) {
		send_str(fd, j);
		send_str(fd, "\n");
		free(j);
	}
}

static void answer_error(int fd, const char *fmt, const char *arg)
{
	char msg[256], line[300];

	snprintf(msg, sizeof(msg), fmt, arg);
	snprintf(line, sizeof(line), "{\"error\":\"%s\"}\n", msg);
	send_str(fd, line);
}

static void rewrite_endpoints(const struct sim_control *ctl)
{
	size_t len = 0;
	char *lines;

	if (!ctl->endpoints)
		return;
	lines = sim_endpoint_lines(ctl->boards, ctl->n, ctl->port, &len);
	if (!lines || imp_write_file_atomic(ctl->endpoints, lines, len, 0644) != IMP_OK)
		IMP_WARN("cannot rewrite the endpoints file %s", ctl->endpoints);
	free(lines);
}

static void command(const struct sim_control *ctl, int fd, char *line)
{
	char verb[16] = "";
	char *end = NULL;
	long idx;
	int used = 0;
	struct sim_board *b;
	imp_err rc = IMP_OK;

	if (sscanf(line, "%15s %n", verb, &used) < 1)
		return;
	if (strcmp(verb, "list") == 0) {
		for (int i = 0; i < ctl->n; i++)
			answer_board(fd, ctl->boards[i]);
		send_str(fd, "{\"end\":true}\n");
		return;
	}
	if (strcmp(verb, "remove") && strcmp(verb, "insert") && strcmp(verb, "swap")) {
		answer_error(fd, "unknown command '%s' (known: remove N, insert N, swap N, list)",
			     verb);
		return;
	}
	errno = 0;
	idx = strtol(line + used, &end, 10);
	if (end == line + used || errno || idx < 0 || idx >= ctl->n) {
		answer_error(fd, "%s needs a board index from 0 to the number of boards - 1", verb);
		return;
	}
	b = ctl->boards[idx];
	if (strcmp(verb, "remove") == 0 || strcmp(verb, "swap") == 0) {
		rc = sim_board_remove(b);
		if (rc == IMP_ERR_NOT_FOUND && strcmp(verb, "swap") == 0)
			rc = IMP_OK; /* an empty fixture: swap only inserts */
	}
	if (rc == IMP_OK && (strcmp(verb, "insert") == 0 || strcmp(verb, "swap") == 0))
		rc = sim_board_insert(b);
	if (rc == IMP_ERR_NOT_FOUND)
		answer_error(fd, "%s: no board on that fixture", verb);
	else if (rc == IMP_ERR_EXISTS)
		answer_error(fd, "%s: a board is on that fixture already: remove it first", verb);
	else if (rc != IMP_OK)
		answer_error(fd, "%s failed: see the vboard's log", verb);
	else
		answer_board(fd, b);
	rewrite_endpoints(ctl);
}

static void serve(const struct sim_control *ctl, int fd)
{
	char buf[512];
	size_t n = 0;

	for (;;) {
		ssize_t got;
		char *nl;

		if (!imp_wait_readable(fd, ctl->stop_fd))
			return;
		got = recv(fd, buf + n, sizeof(buf) - 1 - n, 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return;
		n += (size_t)got;
		buf[n] = '\0';
		while ((nl = strchr(buf, '\n')) != NULL) {
			*nl = '\0';
			command(ctl, fd, buf);
			n -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, n + 1);
		}
		if (n == sizeof(buf) - 1)
			n = 0; /* an endless line: drop it */
	}
}

void *sim_control_main(void *arg)
{
	const struct sim_control *ctl = arg;

	for (;;) {
		int fd;

		if (!imp_wait_readable(ctl->listen_fd, ctl->stop_fd))
			break;
		fd = accept4(ctl->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		serve(ctl, fd);
		close(fd);
	}
	return NULL;
}

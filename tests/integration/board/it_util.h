/*
 * Helpers for the board integration tests: start a child process with its
 * stdout on a pipe, read its lines with a timeout, and always kill it.
 */
#ifndef IT_UTIL_H
#define IT_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

struct it_child {
	pid_t pid;
	int out;            /* read end of the child's stdout, or -1 */
	char buf[8192];
	size_t len;
};

static struct it_child *it_children[8];

static inline void it_kill(struct it_child *c)
{
	if (c->pid > 0) {
		kill(c->pid, SIGTERM);
		for (int i = 0; i < 100; i++) {
			if (waitpid(c->pid, NULL, WNOHANG) == c->pid) {
				c->pid = 0;
				break;
			}
			usleep(20000);
		}
		if (c->pid > 0) {
			kill(c->pid, SIGKILL);
			waitpid(c->pid, NULL, 0);
			c->pid = 0;
		}
	}
	if (c->out >= 0)
		close(c->out);
	c->out = -1;
	/* Forget it: the caller may free c, and the atexit handler must not
	 * touch it afterwards. */
	for (size_t i = 0; i < sizeof(it_children) / sizeof(it_children[0]); i++)
		if (it_children[i] == c)
			it_children[i] = NULL;
}

static inline void it_kill_all(void)
{
	for (size_t i = 0; i < sizeof(it_children) / sizeof(it_children[0]); i++)
		if (it_children[i])
			it_kill(it_children[i]);
}

static inline void it_on_signal(int sig)
{
	it_kill_all();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Start argv[0] with stdout piped (stderr to quiet_stderr? /dev/null : ours).
 * The child dies with us (PR_SET_PDEATHSIG) even if we are killed. */
static inline int it_spawn(struct it_child *c, char *const argv[], int quiet_stderr)
{
	int p[2];

	memset(c, 0, sizeof(*c));
	c->out = -1;
	if (pipe(p) != 0)
		return -1;
	c->pid = fork();
	if (c->pid < 0)
		return -1;
	if (c->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(p[1], 1);
		if (quiet_stderr) {
			int dn = open("/dev/null", O_WRONLY);

			dup2(dn, 2);
		}
		close(p[0]);
		close(p[1]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	c->out = p[0];
	for (size_t i = 0; i < sizeof(it_children) / sizeof(it_children[0]); i++)
		if (!it_children[i]) {
			it_children[i] = c;
			break;
		}
	atexit(it_kill_all);
	signal(SIGTERM, it_on_signal);
	signal(SIGINT, it_on_signal);
	signal(SIGABRT, it_on_signal);
	return 0;
}

/* Read one line (without '\n') within timeout_ms; 0 on success. */
static inline int it_read_line(struct it_child *c, char *line, size_t cap, int timeout_ms)
{
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		struct pollfd pfd = { .fd = c->out, .events = POLLIN };
		ssize_t got;

		if (nl) {
			size_t n = (size_t)(nl - c->buf);

			if (n >= cap)
				n = cap - 1;
			memcpy(line, c->buf, n);
			line[n] = '\0';
			c->len -= (size_t)(nl - c->buf) + 1;
			memmove(c->buf, nl + 1, c->len);
			return 0;
		}
		if (c->len == sizeof(c->buf) || poll(&pfd, 1, timeout_ms) <= 0)
			return -1;
		got = read(c->out, c->buf + c->len, sizeof(c->buf) - c->len);
		if (got <= 0)
			return -1;
		c->len += (size_t)got;
	}
}

/* Extract the string value of "key":"..." from a JSON line. */
static inline int it_json_str(const char *line, const char *key, char *out, size_t cap)
{
	char pat[64];
	const char *p, *e;

	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	p = strstr(line, pat);
	if (!p)
		return -1;
	p += strlen(pat);
	e = strchr(p, '"');
	if (!e || (size_t)(e - p) >= cap)
		return -1;
	memcpy(out, p, (size_t)(e - p));
	out[e - p] = '\0';
	return 0;
}

/* A TCP port that was free a moment ago on 127.0.0.1. */
static inline int it_free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &l) == 0)
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

/* Endpoints of board 0 of an imprint-vboard. */
struct it_vboard {
	struct it_child proc;
	char uid[40];
	char rsp[128];
	char uart[128];
};

/* Start imprint-vboard with extra args (NULL-terminated); 0 when ready. */
static inline int it_vboard_start(struct it_vboard *vb, const char *exe, const char *const *extra)
{
	char *argv[32];
	char line[1024];
	int n = 0;

	argv[n++] = (char *)exe;
	argv[n++] = (char *)"--quiet";
	for (size_t i = 0; extra && extra[i] && n < 30; i++)
		argv[n++] = (char *)extra[i];
	argv[n] = NULL;
	if (it_spawn(&vb->proc, argv, 0) != 0)
		return -1;
	while (it_read_line(&vb->proc, line, sizeof(line), 10000) == 0) {
		if (strstr(line, "\"ready\":true"))
			return vb->uid[0] && vb->rsp[0] && vb->uart[0] ? 0 : -1;
		if (strstr(line, "\"board\":0")) {
			it_json_str(line, "uid", vb->uid, sizeof(vb->uid));
			it_json_str(line, "rsp", vb->rsp, sizeof(vb->rsp));
			it_json_str(line, "uart", vb->uart, sizeof(vb->uart));
		}
	}
	fprintf(stderr, "imprint-vboard did not become ready\n");
	return -1;
}

#endif

/*
 * Probe driver "openocd": the station starts OpenOCD itself for a fixture
 * and talks to it over RSP (the "rsp" driver, personality openocd).
 *
 * URI: openocd://CONFIG[?set.VAR=VALUE&...&exe=PATH&rsp keys]
 *   CONFIG   an OpenOCD configuration file: a path, or a file name looked
 *            up in $IMPRINT_OPENOCD_PATH (colon-separated), then in the
 *            shipped ones (imp_data_dir "openocd": DATADIR/imprint/openocd
 *            beside the installed binary, board/openocd in the build tree)
 *   set.VAR=VALUE  -c "set VAR VALUE" before the configuration (VAR and
 *            VALUE: letters, digits and ._:/-), e.g. the remote_bitbang
 *            port (VBOARD_PORT) or the Bus Pirate tty (VBOARD_PIRATE) of a
 *            virtual board
 *   exe=PATH the OpenOCD binary (default: $IMPRINT_OPENOCD, else "openocd"
 *            on PATH)
 *   other keys (timeout_ms, monitor_timeout_ms, flash_timeout_ms, retries,
 *            reset, noack) go to the rsp driver unchanged.
 *
 * The process: OpenOCD runs with "gdb_port 0" and "tcl_port 0" (the kernel
 * picks free ports; the driver reads them from OpenOCD's "Listening on
 * port N for gdb/tcl connections" lines), "telnet_port disabled" and
 * "gdb_report_data_abort enable" (else a refused read is zeros and OK). It
 * is started in its own process group with PR_SET_PDEATHSIG(SIGKILL), so
 * it dies with the thread that forked it, even when the station is killed
 * with SIGKILL. Its log goes to an unlinked temporary file; its last lines
 * are quoted when it fails.
 *
 * Lifetime. A URI given to server_start() (the provisioning run does so
 * for every openocd:// fixture when it opens) gets one OpenOCD for the
 * whole run, forked by a spawner thread that lives from the first
 * server_start() to servers_stop(): its OpenOCDs die with the station,
 * never with a fixture's worker thread. open() of that URI attaches to
 * it: the scan chain, the DAP and the target are examined again (the
 * board may be another one; a locked one is treated as a fresh OpenOCD
 * treats it), then a new GDB connection; close() detaches, switches
 * OpenOCD's polling off and keeps the process. An OpenOCD found dead, or
 * not answering on its Tcl port, is replaced by a fresh one for the board
 * that found it (the log names it). Any other URI, or one whose OpenOCD is
 * in use, gets an OpenOCD of its own per open(), as before: it dies with
 * the thread that opened the probe (which must close it: the station
 * does); close() detaches, then SIGTERM to the group, then SIGKILL after
 * 1 s, and reaps it.
 *
 * When OpenOCD is up but refuses the GDB connection (it does when the
 * target cannot be examined: a locked nRF52), the probe still opens:
 * memory access then fails with IMP_ERR_PROBE, and the access ports stay
 * reachable through OpenOCD's Tcl port (ap_read/ap_write), which is how the
 * nRF52 profile confirms APPROTECT positively (docs/PROBES.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "imprint/log.h"
#include "imprint/paths.h"
#include "imprint/util.h"
#include "probe_priv.h"

#define OOCD_START_TIMEOUT_MS 15000u
#define OOCD_TCL_TIMEOUT_MS 10000u
#define OOCD_MAX_ARGS 48
#define OOCD_MAX_SETS 8
#define OOCD_TCL_END '\x1a'
/* A kept OpenOCD's log is emptied at an attach once it is this long. */
#define OOCD_LOG_KEEP_MAX (1024 * 1024)

/* One OpenOCD process and the station's ways into it. */
struct oocd_proc {
	pid_t pid;                /* OpenOCD, leader of its own process group; 0: none */
	int log_fd;               /* its stderr: an unlinked temporary file (O_APPEND) */
	int tcl_fd;               /* Tcl RPC connection, or -1 */
	unsigned gdb_port, tcl_port;
	bool events_set;          /* the gdb-flash events replaced (configure_events) */
	char dap[64];             /* the DAP's name, once asked (dap_name) */
};

/* What starts an OpenOCD: the parts of an openocd:// URI. */
struct oocd_spec {
	char exe[512];
	char sets[1024];          /* NAME=VALUE lines */
	char cfg[1024];           /* the configuration file found */
	char rest[1024];          /* the rsp driver's keys, "&k=v..." */
};

/* A fixture's OpenOCD kept for the run (server_start). */
enum held_state { HELD_SPAWN, HELD_UP, HELD_FAILED };

struct oocd_held {
	struct oocd_held *next;
	char *uri;
	struct oocd_spec spec;
	struct oocd_proc proc;    /* touched by the spawner only while HELD_SPAWN */
	enum held_state state;
	imp_err spawn_rc;
	bool in_use;              /* an open probe is attached */
	unsigned boards;          /* opens it served */
};

/* The kept OpenOCDs and the thread that forks them. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;      /* a spawn requested, or one done */
	pthread_t thread;
	bool running, stop;
	struct oocd_held *list;
} held = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

struct oocd {
	struct oocd_proc own;     /* the OpenOCD of this open, when none is kept */
	struct oocd_proc *p;      /* &own, or the kept one's */
	struct oocd_held *h;      /* the kept OpenOCD attached to, or NULL */
	off_t log_from;           /* this open's part of the log starts here */
	void *rsp;                /* the rsp driver's state, NULL when refused */
	bool gdb_refused;
	bool retry_gdb;           /* an AP write may have opened the target */
	bool own_reset_cmd;       /* the URI names reset=CMD: reset() runs it */
	char rsp_uri[1400];
	char cfg[1024];
};

static const char safe_chars[] =
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:/-";

static bool safe(const char *s)
{
	return *s && strspn(s, safe_chars) == strlen(s);
}

static void proc_init(struct oocd_proc *p)
{
	memset(p, 0, sizeof(*p));
	p->log_fd = p->tcl_fd = -1;
}

/* The last lines of OpenOCD's log, for messages. */
static void log_tail(const struct oocd_proc *p, char *out, size_t cap)
{
	off_t end = lseek(p->log_fd, 0, SEEK_END);
	off_t from = end > (off_t)cap - 1 ? end - (off_t)cap + 1 : 0;
	ssize_t got = pread(p->log_fd, out, cap - 1, from);

	out[got > 0 ? got : 0] = '\0';
	for (char *c = out; *c; c++)
		if (*c == '\n' || *c == '\r')
			*c = *(c + 1) ? '|' : '\0';
}

/* Find "Listening on port N for WHAT connections" in the log. */
static unsigned listening_port(const struct oocd_proc *p, const char *what)
{
	char buf[16384], pat[64];
	ssize_t got = pread(p->log_fd, buf, sizeof(buf) - 1, 0);
	const char *c;

	if (got <= 0)
		return 0;
	buf[got] = '\0';
	snprintf(pat, sizeof(pat), " for %s connections", what);
	for (c = buf; (c = strstr(c, "Listening on port ")) != NULL; c++) {
		char *end = NULL;
		unsigned long port = strtoul(c + 18, &end, 10);

		if (end && strncmp(end, pat, strlen(pat)) == 0 && port > 0 && port < 65536)
			return (unsigned)port;
	}
	return 0;
}

/* Whether the log says needle since offset from. */
static bool log_has(const struct oocd_proc *p, off_t from, const char *needle)
{
	char buf[16384];
	ssize_t got = pread(p->log_fd, buf, sizeof(buf) - 1, from);

	if (got <= 0)
		return false;
	buf[got] = '\0';
	return strstr(buf, needle) != NULL;
}

static imp_err find_config(const char *name, char *out, size_t cap)
{
	const char *env = getenv("IMPRINT_OPENOCD_PATH");
	char shipped[4096];

	if (strchr(name, '/')) {
		snprintf(out, cap, "%s", name);
		return access(out, R_OK) == 0 ? IMP_OK : IMP_ERR_NOT_FOUND;
	}
	for (const char *p = env; p && *p;) {
		size_t len = strcspn(p, ":");

		if (len && (size_t)snprintf(out, cap, "%.*s/%s", (int)len, p, name) < cap &&
		    access(out, R_OK) == 0)
			return IMP_OK;
		p += len;
		if (*p == ':')
			p++;
	}
	if (imp_data_dir("openocd", "board/openocd", shipped, sizeof(shipped)) == IMP_OK &&
	    (size_t)snprintf(out, cap, "%s/%s", shipped, name) < cap && access(out, R_OK) == 0)
		return IMP_OK;
	return IMP_ERR_NOT_FOUND;
}

/* Stop the process (SIGTERM to its group, SIGKILL after 1 s) and reap it. */
static void proc_kill(struct oocd_proc *p)
{
	if (p->pid <= 0)
		return;
	kill(-p->pid, SIGTERM);
	for (int i = 0; i < 100; i++) {
		if (waitpid(p->pid, NULL, WNOHANG) == p->pid) {
			p->pid = 0;
			break;
		}
		imp_sleep_us(10000);
	}
	if (p->pid > 0) {
		kill(-p->pid, SIGKILL);
		waitpid(p->pid, NULL, 0);
		p->pid = 0;
	}
}

/* Everything of p released: the process stopped, its descriptors closed. */
static void proc_release(struct oocd_proc *p)
{
	if (p->tcl_fd >= 0)
		close(p->tcl_fd);
	proc_kill(p);
	if (p->log_fd >= 0)
		close(p->log_fd);
	proc_init(p);
}

/*
 * Split the URI: the configuration name, the -c "set" pairs, the binary,
 * and the query left for the rsp driver.
 */
static imp_err parse_uri(const char *uri, char *cfg, size_t cfg_cap, char *sets, size_t sets_cap,
			 char *exe, size_t exe_cap, char *rest, size_t rest_cap)
{
	const char *p = uri + 10, *q = strchr(p, '?');
	size_t cl = q ? (size_t)(q - p) : strlen(p);

	*sets = *rest = '\0';
	if (strncmp(uri, "openocd://", 10) != 0 || cl == 0 || cl >= cfg_cap)
		goto bad;
	memcpy(cfg, p, cl);
	cfg[cl] = '\0';
	if (!safe(cfg))
		goto bad;
	if (!q)
		return IMP_OK;
	q++;
	while (*q) {
		size_t len = strcspn(q, "&");
		char kv[300], *eq;

		if (len == 0 || len >= sizeof(kv))
			goto bad;
		memcpy(kv, q, len);
		kv[len] = '\0';
		q += len;
		if (*q == '&')
			q++;
		eq = strchr(kv, '=');
		if (!eq)
			goto bad;
		*eq = '\0';
		if (strncmp(kv, "set.", 4) == 0) {
			size_t nsets = 0;

			for (const char *c = sets; *c; c++)
				nsets += *c == '\n';
			if (nsets >= OOCD_MAX_SETS || !safe(kv + 4) || !safe(eq + 1) ||
			    strlen(sets) + strlen(kv) + strlen(eq + 1) + 3 >= sets_cap)
				goto bad;
			/* NAME=VALUE pairs separated by '\n' */
			strcat(sets, kv + 4);
			strcat(sets, "=");
			strcat(sets, eq + 1);
			strcat(sets, "\n");
		} else if (strcmp(kv, "exe") == 0) {
			if (!safe(eq + 1) || strlen(eq + 1) >= exe_cap)
				goto bad;
			strcpy(exe, eq + 1);
		} else if (strcmp(kv, "server") == 0 || strcmp(kv, "data_abort") == 0) {
			goto bad; /* fixed by this driver */
		} else {
			*eq = '=';
			if (strlen(rest) + strlen(kv) + 2 >= rest_cap)
				goto bad;
			strcat(rest, "&");
			strcat(rest, kv);
		}
	}
	return IMP_OK;
bad:
	IMP_ERROR("probe '%s': expected openocd://CONFIG[?set.VAR=VALUE&exe=PATH&timeout_ms=N&"
		  "monitor_timeout_ms=N&flash_timeout_ms=N&reset=CMD] (letters, digits and ._:/- "
		  "only; docs/PROBES.md)", uri);
	return IMP_ERR_USAGE;
}

/* The URI's parts, its configuration file looked up. */
static imp_err spec_from_uri(const char *uri, struct oocd_spec *sp)
{
	const char *env_exe = getenv("IMPRINT_OPENOCD");
	char cfgname[1024];
	imp_err rc;

	snprintf(sp->exe, sizeof(sp->exe), "%s", env_exe && *env_exe ? env_exe : "openocd");
	rc = parse_uri(uri, cfgname, sizeof(cfgname), sp->sets, sizeof(sp->sets), sp->exe,
		       sizeof(sp->exe), sp->rest, sizeof(sp->rest));
	if (rc != IMP_OK)
		return rc;
	rc = find_config(cfgname, sp->cfg, sizeof(sp->cfg));
	if (rc != IMP_OK) {
		char shipped[4096];

		imp_data_dir("openocd", "board/openocd", shipped, sizeof(shipped));
		IMP_ERROR("openocd probe: no OpenOCD configuration '%s' (a path, or a name in "
			  "$IMPRINT_OPENOCD_PATH or %s)", cfgname, shipped);
		return IMP_ERR_CONFIG;
	}
	return IMP_OK;
}

/* Fork and exec OpenOCD; it dies with the calling thread (PR_SET_PDEATHSIG). */
static imp_err spawn(struct oocd_proc *p, const struct oocd_spec *sp)
{
	char *argv[OOCD_MAX_ARGS];
	char setcmds[OOCD_MAX_SETS][300];
	char tmpl[] = "/tmp/imprint-openocd-XXXXXX";
	pid_t parent = getpid();
	int argc = 0, nsets = 0;
	const char *s = sp->sets;

	proc_init(p);
	p->log_fd = mkstemp(tmpl);
	if (p->log_fd < 0) {
		IMP_ERROR("openocd probe: cannot create a log file in /tmp: %s", strerror(errno));
		return IMP_ERR_IO;
	}
	unlink(tmpl);
	/* Appends, so that the log can be emptied under a running OpenOCD. */
	fcntl(p->log_fd, F_SETFL, fcntl(p->log_fd, F_GETFL) | O_APPEND);
	fcntl(p->log_fd, F_SETFD, FD_CLOEXEC);
	argv[argc++] = (char *)sp->exe;
	while (*s && nsets < OOCD_MAX_SETS) {
		size_t len = strcspn(s, "\n");
		const char *eq = memchr(s, '=', len);

		snprintf(setcmds[nsets], sizeof(setcmds[nsets]), "set %.*s %.*s",
			 (int)(eq - s), s, (int)(len - (size_t)(eq - s) - 1), eq + 1);
		argv[argc++] = (char *)"-c";
		argv[argc++] = setcmds[nsets++];
		s += len + (s[len] == '\n');
	}
	argv[argc++] = (char *)"-c";
	argv[argc++] = (char *)"gdb_port 0; tcl_port 0; telnet_port disabled; "
			       "gdb_report_data_abort enable; gdb_memory_map enable; "
			       "gdb_flash_program enable";
	argv[argc++] = (char *)"-f";
	argv[argc++] = (char *)sp->cfg;
	argv[argc] = NULL;

	p->pid = fork();
	if (p->pid < 0) {
		IMP_ERROR("openocd probe: fork failed: %s", strerror(errno));
		p->pid = 0;
		return IMP_ERR_IO;
	}
	if (p->pid == 0) {
		int dn = open("/dev/null", O_RDWR);
		sigset_t none;

		/* Own group (one kill reaches all), and die with the forking
		 * thread; OpenOCD takes its signals (the spawner blocks them). */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		dup2(dn, 0);
		dup2(dn, 1);
		dup2(p->log_fd, 2);
		execvp(sp->exe, argv);
		dprintf(2, "cannot run %s: %s\n", sp->exe, strerror(errno));
		_exit(127);
	}
	setpgid(p->pid, p->pid); /* the same from this side: no race with kill */
	return IMP_OK;
}

/* Wait until OpenOCD names its GDB and Tcl ports. */
static imp_err wait_ports(struct oocd_proc *p, const struct oocd_spec *sp)
{
	uint64_t deadline = imp_now_ns() + (uint64_t)OOCD_START_TIMEOUT_MS * 1000000u;
	char tail[600];

	while (!(p->gdb_port = listening_port(p, "gdb")) || !(p->tcl_port = listening_port(p, "tcl"))) {
		if (waitpid(p->pid, NULL, WNOHANG) == p->pid) {
			p->pid = 0;
			log_tail(p, tail, sizeof(tail));
			IMP_ERROR("openocd probe: OpenOCD (%s -f %s) exited during start-up: %s; check "
				  "the configuration and that the adapter (or virtual board) is "
				  "reachable", sp->exe, sp->cfg, tail);
			return IMP_ERR_PROBE;
		}
		if (imp_now_ns() > deadline) {
			log_tail(p, tail, sizeof(tail));
			IMP_ERROR("openocd probe: OpenOCD did not start its GDB server within %u ms: "
				  "%s", OOCD_START_TIMEOUT_MS, tail);
			return IMP_ERR_TIMEOUT;
		}
		imp_sleep_us(2000);
	}
	return IMP_OK;
}

static imp_err tcl_connect(struct oocd_proc *p)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)p->tcl_port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int one = 1;

	p->tcl_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (p->tcl_fd < 0 || connect(p->tcl_fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		IMP_ERROR("openocd probe: cannot connect to OpenOCD's Tcl port %u: %s",
			  p->tcl_port, strerror(errno));
		if (p->tcl_fd >= 0)
			close(p->tcl_fd);
		p->tcl_fd = -1;
		return IMP_ERR_PROBE;
	}
	setsockopt(p->tcl_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return IMP_OK;
}

/* One Tcl RPC command: "cmd\x1a" out, "result\x1a" back. */
static imp_err tcl_run(struct oocd_proc *p, const char *cmd, char *out, size_t cap)
{
	uint64_t deadline = imp_now_ns() + (uint64_t)OOCD_TCL_TIMEOUT_MS * 1000000u;
	size_t n = strlen(cmd), len = 0;
	char term = OOCD_TCL_END;

	if (p->tcl_fd < 0)
		return IMP_ERR_PROBE;
	if (send(p->tcl_fd, cmd, n, MSG_NOSIGNAL) != (ssize_t)n ||
	    send(p->tcl_fd, &term, 1, MSG_NOSIGNAL) != 1) {
		IMP_ERROR("openocd probe: OpenOCD's Tcl port closed: %s", strerror(errno));
		close(p->tcl_fd);
		p->tcl_fd = -1;
		return IMP_ERR_PROBE;
	}
	for (;;) {
		struct pollfd pfd = { .fd = p->tcl_fd, .events = POLLIN };
		uint64_t now = imp_now_ns();
		char buf[512];
		ssize_t got;

		if (now >= deadline || poll(&pfd, 1, (int)((deadline - now) / 1000000u) + 1) <= 0) {
			IMP_ERROR("openocd probe: no answer to '%.60s' on OpenOCD's Tcl port", cmd);
			close(p->tcl_fd);
			p->tcl_fd = -1; /* out of step: never read a late answer */
			return IMP_ERR_TIMEOUT;
		}
		/* Nothing follows the terminator: one command is in flight at a time. */
		got = recv(p->tcl_fd, buf, sizeof(buf), 0);
		if (got <= 0) {
			IMP_ERROR("openocd probe: OpenOCD's Tcl port closed");
			close(p->tcl_fd);
			p->tcl_fd = -1;
			return IMP_ERR_PROBE;
		}
		for (ssize_t i = 0; i < got; i++) {
			if (buf[i] == OOCD_TCL_END) {
				if (cap)
					out[len < cap ? len : cap - 1] = '\0';
				return IMP_OK;
			}
			if (len + 1 < cap)
				out[len] = buf[i];
			len++;
		}
	}
}

/*
 * OpenOCD resets the target around GDB flash programming by default
 * (gdb-flash-erase-start: reset init, gdb-flash-write-end: reset halt). A
 * reset that halts before the firmware runs locks a hardened nRF52: here
 * the core is only halted. Once per process.
 */
static imp_err configure_events(struct oocd_proc *p)
{
	char out[256];
	imp_err rc;

	if (p->events_set)
		return IMP_OK;
	rc = tcl_run(p, "foreach t [target names] {$t configure -event gdb-flash-erase-start "
		     "{halt}; $t configure -event gdb-flash-write-end {halt}}", out, sizeof(out));
	if (rc == IMP_OK)
		p->events_set = true;
	return rc;
}

/* ---------------------------------------------------------- kept OpenOCDs */

/* The spawner: forks every kept OpenOCD, so that each one's parent thread
 * lives as long as the run (PR_SET_PDEATHSIG fires when that thread ends). */
static void *spawner_main(void *arg)
{
	sigset_t all;

	(void)arg;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL); /* the station's signals go elsewhere */
	pthread_mutex_lock(&held.lock);
	while (!held.stop) {
		struct oocd_held *h = held.list;
		imp_err rc;

		while (h && h->state != HELD_SPAWN)
			h = h->next;
		if (!h) {
			pthread_cond_wait(&held.cond, &held.lock);
			continue;
		}
		pthread_mutex_unlock(&held.lock);
		rc = spawn(&h->proc, &h->spec);
		pthread_mutex_lock(&held.lock);
		h->spawn_rc = rc;
		h->state = rc == IMP_OK ? HELD_UP : HELD_FAILED;
		pthread_cond_broadcast(&held.cond);
	}
	pthread_mutex_unlock(&held.lock);
	return NULL;
}

static imp_err oocd_server_start(const char *uri)
{
	struct oocd_held *h;
	imp_err rc = IMP_OK;

	pthread_mutex_lock(&held.lock);
	for (h = held.list; h; h = h->next)
		if (strcmp(h->uri, uri) == 0)
			break;
	pthread_mutex_unlock(&held.lock);
	if (h)
		return IMP_OK; /* one OpenOCD per URI */
	h = calloc(1, sizeof(*h));
	if (!h)
		return IMP_ERR_NOMEM;
	proc_init(&h->proc);
	h->uri = strdup(uri);
	rc = h->uri ? spec_from_uri(uri, &h->spec) : IMP_ERR_NOMEM;
	if (rc != IMP_OK) {
		free(h->uri);
		free(h);
		return rc;
	}
	h->state = HELD_SPAWN;
	pthread_mutex_lock(&held.lock);
	if (!held.running) {
		held.stop = false;
		if (pthread_create(&held.thread, NULL, spawner_main, NULL) != 0)
			rc = IMP_ERR_NOMEM;
		else
			held.running = true;
	}
	if (rc == IMP_OK) {
		h->next = held.list;
		held.list = h;
		pthread_cond_broadcast(&held.cond);
	}
	pthread_mutex_unlock(&held.lock);
	if (rc != IMP_OK) {
		IMP_WARN("openocd probe: no thread to keep OpenOCD for %s: each board starts its "
			 "own", uri);
		free(h->uri);
		free(h);
	}
	return rc;
}

static void oocd_servers_stop(void)
{
	struct oocd_held *list;

	pthread_mutex_lock(&held.lock);
	held.stop = true;
	pthread_cond_broadcast(&held.cond);
	pthread_mutex_unlock(&held.lock);
	if (held.running)
		pthread_join(held.thread, NULL);
	pthread_mutex_lock(&held.lock);
	list = held.list;
	held.list = NULL;
	held.running = false;
	held.stop = false;
	pthread_mutex_unlock(&held.lock);
	/* All of them told first: they shut down side by side. */
	for (struct oocd_held *h = list; h; h = h->next)
		if (h->proc.pid > 0)
			kill(-h->proc.pid, SIGTERM);
	while (list) {
		struct oocd_held *next = list->next;

		if (list->in_use)
			IMP_WARN("openocd probe: OpenOCD for %s stopped while a probe is open on it",
				 list->uri);
		proc_release(&list->proc);
		free(list->uri);
		free(list);
		list = next;
	}
}

/*
 * Until every kept OpenOCD has started (its GDB and Tcl ports named) or
 * failed; a failed one is started again by the open that finds it, which
 * says why. Before any open: no claim can be running.
 */
static void oocd_servers_wait(void)
{
	enum imp_log_level level = imp_log_get_level();

	pthread_mutex_lock(&held.lock);
	for (struct oocd_held *h = held.list; h; h = h->next) {
		while (h->state == HELD_SPAWN && held.running)
			pthread_cond_wait(&held.cond, &held.lock);
		if (h->state != HELD_UP || h->in_use || (h->proc.gdb_port && h->proc.tcl_port))
			continue;
		pthread_mutex_unlock(&held.lock);
		imp_log_set_level(IMP_LOG_QUIET);
		if (wait_ports(&h->proc, &h->spec) != IMP_OK)
			h->state = HELD_FAILED;
		imp_log_set_level(level);
		pthread_mutex_lock(&held.lock);
	}
	pthread_mutex_unlock(&held.lock);
}

/* The kept OpenOCD of uri, taken for one open; NULL: none (or in use). */
static struct oocd_held *held_claim(const char *uri)
{
	struct oocd_held *h;

	pthread_mutex_lock(&held.lock);
	for (h = held.list; h; h = h->next)
		if (!h->in_use && strcmp(h->uri, uri) == 0) {
			h->in_use = true;
			break;
		}
	pthread_mutex_unlock(&held.lock);
	return h;
}

static void held_unclaim(struct oocd_held *h)
{
	pthread_mutex_lock(&held.lock);
	h->in_use = false;
	pthread_mutex_unlock(&held.lock);
}

/*
 * Have h's OpenOCD running: wait for the spawner, and when fresh is set
 * (or the process is gone) stop what is left and have a new one forked.
 * Then wait for its ports.
 */
static imp_err held_up(struct oocd_held *h, bool fresh)
{
	imp_err rc;

	pthread_mutex_lock(&held.lock);
	while (h->state == HELD_SPAWN && held.running)
		pthread_cond_wait(&held.cond, &held.lock);
	pthread_mutex_unlock(&held.lock);
	if (h->state == HELD_UP && !fresh && h->proc.pid > 0 &&
	    waitpid(h->proc.pid, NULL, WNOHANG) == h->proc.pid) {
		char tail[600];

		h->proc.pid = 0;
		log_tail(&h->proc, tail, sizeof(tail));
		IMP_WARN("openocd probe: the fixture's OpenOCD exited (%s); starting a fresh one",
			 tail);
		fresh = true;
	}
	if (fresh || h->state != HELD_UP) {
		proc_release(&h->proc);
		pthread_mutex_lock(&held.lock);
		h->state = HELD_SPAWN;
		pthread_cond_broadcast(&held.cond);
		while (h->state == HELD_SPAWN && held.running)
			pthread_cond_wait(&held.cond, &held.lock);
		pthread_mutex_unlock(&held.lock);
		if (h->state != HELD_UP)
			return h->state == HELD_SPAWN ? IMP_ERR_PROBE : h->spawn_rc;
	}
	if (h->proc.gdb_port && h->proc.tcl_port)
		return IMP_OK;
	rc = wait_ports(&h->proc, &h->spec);
	if (rc != IMP_OK) {
		/* Dead or hung at start-up: the next open starts another. */
		pthread_mutex_lock(&held.lock);
		h->state = HELD_FAILED;
		h->spawn_rc = rc;
		pthread_mutex_unlock(&held.lock);
	}
	return rc;
}

/*
 * A new board on a kept OpenOCD: what a fresh OpenOCD's init does, again.
 * The scan chain is reset and checked (another board's TAP is in
 * Test-Logic-Reset), the DAP powered up with its caches dropped, every
 * target examined (with the configuration's examine-start, -end and -fail
 * event handlers, which arp_examine alone does not run) and its state
 * polled, the flash banks probed. OpenOCD
 * keeps a target "examined" once it was, and then only re-initialises its
 * MEM-AP, which a locked nRF52 still answers: a Cortex-M's CPUID is read
 * as a fresh examination would, and when it cannot be, the target counts
 * as not examined (GDB is not connected; its polling stays off). A new
 * board reports the reset it came up from (S_RESET_ST): polled until
 * OpenOCD is past it, since a halt asked in its "reset" state is taken as
 * done (cortex_m_halt) and GDB's attach would then wait 1 s for nothing.
 * Answers "OK" or "X:" and why.
 */
static const char attach_script[] =
	"if {[catch {jtag arp_init} e]} {return \"X:scan chain: $e\"}\n"
	"if {[catch {dap init} e]} {return \"X:dap: $e\"}\n"
	"foreach t [target names] {\n"
	" catch {$t invoke-event examine-start}\n"
	" if {[catch {$t arp_examine} e]} {catch {$t invoke-event examine-fail}; return \"X:$t: $e\"}\n"
	" if {[$t cget -type] eq {cortex_m} && [catch {$t read_memory 0xe000ed00 32 1} e]} "
	"{catch {$t invoke-event examine-fail}; return \"X:$t: CPUID not readable: $e\"}\n"
	" catch {$t invoke-event examine-end}\n"
	" for {set i 0} {$i < 3} {incr i} {catch {$t arp_poll}; if {[$t curstate] ne {reset}} break}\n"
	"}\n"
	"set n [llength [flash list]]\n"
	"for {set i 0} {$i < $n} {incr i} {catch {flash probe $i}}\n"
	"poll on\n"
	"return OK";

/*
 * Attach o to its kept OpenOCD for a new board: the process up (a fresh
 * one when it died or stops answering), its Tcl port connected, the
 * target examined again. *examined: whether the target answered.
 */
static imp_err held_attach(struct oocd *o, bool *examined)
{
	struct oocd_held *h = o->h;
	char out[600];
	imp_err rc = IMP_OK;

	for (int attempt = 0; attempt < 2; attempt++) {
		struct stat sb;

		rc = held_up(h, attempt > 0);
		if (rc != IMP_OK)
			return rc;
		if (fstat(h->proc.log_fd, &sb) == 0 && sb.st_size > OOCD_LOG_KEEP_MAX)
			(void)ftruncate(h->proc.log_fd, 0);
		o->log_from = lseek(h->proc.log_fd, 0, SEEK_END);
		if (h->proc.tcl_fd < 0)
			rc = tcl_connect(&h->proc);
		if (rc == IMP_OK)
			rc = configure_events(&h->proc);
		if (rc == IMP_OK)
			rc = tcl_run(&h->proc, attach_script, out, sizeof(out));
		if (rc == IMP_OK)
			break;
		IMP_WARN("openocd probe: the fixture's OpenOCD (pid %d) does not answer; starting a "
			 "fresh one", (int)h->proc.pid);
	}
	if (rc != IMP_OK)
		return rc;
	h->boards++;
	IMP_DEBUG("openocd probe: board %u on the fixture's OpenOCD (pid %d)", h->boards,
		  (int)h->proc.pid);
	*examined = strcmp(out, "OK") == 0;
	if (!*examined)
		IMP_DEBUG("openocd probe: the target cannot be examined: %s", out + 2);
	return IMP_OK;
}

/* ------------------------------------------------------------ the driver */

static void oocd_free(struct oocd *o)
{
	if (o->rsp)
		board_probe_rsp.close(o->rsp);
	o->rsp = NULL;
	if (o->h) {
		char out[64];

		/* Nothing polls the fixture while no board is attached. */
		if (o->h->proc.tcl_fd >= 0)
			(void)tcl_run(&o->h->proc, "poll off", out, sizeof(out));
		held_unclaim(o->h);
	} else {
		proc_release(&o->own);
	}
	free(o);
}

/* The GDB session, quietly when a refusal is expected. */
static imp_err gdb_open(struct oocd *o, bool expect_refusal)
{
	enum imp_log_level level = imp_log_get_level();
	imp_err rc;

	if (expect_refusal)
		imp_log_set_level(IMP_LOG_QUIET);
	rc = board_probe_rsp.open(o->rsp_uri, &o->rsp);
	imp_log_set_level(level);
	if (rc != IMP_OK)
		o->rsp = NULL;
	return rc;
}

static imp_err oocd_open(const char *uri, void **priv)
{
	struct oocd_spec sp;
	char tail[600];
	bool examined = true;
	struct oocd *o;
	imp_err rc;

	o = calloc(1, sizeof(*o));
	if (!o)
		return IMP_ERR_NOMEM;
	proc_init(&o->own);
	o->p = &o->own;
	rc = spec_from_uri(uri, &sp);
	if (rc != IMP_OK)
		goto fail;
	snprintf(o->cfg, sizeof(o->cfg), "%s", sp.cfg);
	o->own_reset_cmd = strstr(sp.rest, "&reset=") != NULL;
	o->h = held_claim(uri);
	if (o->h) {
		o->p = &o->h->proc;
		rc = held_attach(o, &examined);
	} else {
		rc = spawn(&o->own, &sp);
		if (rc == IMP_OK)
			rc = wait_ports(&o->own, &sp);
		if (rc == IMP_OK)
			rc = tcl_connect(&o->own);
		if (rc == IMP_OK)
			rc = configure_events(&o->own);
		examined = !log_has(o->p, 0, "examination failed");
	}
	if (rc != IMP_OK)
		goto fail;
	snprintf(o->rsp_uri, sizeof(o->rsp_uri), "rsp://127.0.0.1:%u?server=openocd&data_abort=1%s",
		 o->p->gdb_port, sp.rest);
	/* A refused connection is expected on a locked part: say it once,
	 * below, rather than as a lost connection. A kept OpenOCD whose target
	 * did not answer the examination is not asked: it would accept GDB on
	 * the earlier board's examination. */
	rc = examined ? gdb_open(o, false) : IMP_ERR_PROBE;
	if (rc != IMP_OK) {
		/* OpenOCD refuses GDB while the target cannot be examined. */
		if (rc == IMP_ERR_PROBE && waitpid(o->p->pid, NULL, WNOHANG) == 0 &&
		    (!examined || log_has(o->p, o->log_from, "examination failed") ||
		     log_has(o->p, o->log_from, "refuse gdb connection") ||
		     log_has(o->p, o->log_from, "'gdb' connection rejected"))) {
			IMP_WARN("openocd probe: OpenOCD refuses the GDB connection (target not "
				 "examined: locked or unpowered?); only its access ports are "
				 "reachable");
			o->gdb_refused = true;
			rc = IMP_OK;
		} else {
			log_tail(o->p, tail, sizeof(tail));
			IMP_ERROR("openocd probe: no GDB session with OpenOCD: %s", tail);
			goto fail;
		}
	}
	if (o->rsp) {
		char out[256];

		/* OpenOCD's flash drivers want a halted core; a running one (its
		 * firmware booted) is stopped here, as GDB's attach would. */
		(void)tcl_run(o->p, "halt", out, sizeof(out));
	}
	*priv = o;
	return IMP_OK;
fail:
	oocd_free(o);
	return rc;
}

static void oocd_close(void *priv)
{
	oocd_free(priv);
}

/* After an AP write: examine the target again (a kept OpenOCD: as for a new board). */
static bool reexamine(struct oocd *o)
{
	char out[600];

	if (o->h)
		return tcl_run(o->p, attach_script, out, sizeof(out)) == IMP_OK &&
		       strcmp(out, "OK") == 0;
	return tcl_run(o->p, "foreach t [target names] {catch {$t arp_examine}}", out,
		       sizeof(out)) == IMP_OK;
}

/*
 * After an access-port write (CTRL-AP ERASEALL opens a protected nRF52)
 * try once to have OpenOCD examine the target again and accept GDB.
 */
static bool ensure_gdb(struct oocd *o)
{
	if (o->rsp)
		return true;
	if (!o->retry_gdb)
		return false;
	o->retry_gdb = false;
	if (!reexamine(o))
		return false;
	(void)gdb_open(o, true);
	if (o->rsp) {
		char out[256];

		/* OpenOCD's flash drivers want a halted core. */
		(void)tcl_run(o->p, "halt", out, sizeof(out));
		IMP_INFO("openocd probe: the target answers again; GDB session open");
		o->gdb_refused = false;
	}
	return o->rsp != NULL;
}

/* Whether there is a GDB session (after one more try); logs when not. */
static bool gdb_ready(struct oocd *o)
{
	if (ensure_gdb(o))
		return true;
	IMP_ERROR("openocd probe: OpenOCD refused the GDB connection (the target could not be "
		  "examined); memory is not reachable");
	return false;
}

static imp_err oocd_read(void *priv, uint32_t addr, uint8_t *buf, size_t n)
{
	struct oocd *o = priv;

	if (!gdb_ready(o))
		return IMP_ERR_PROBE;
	return board_probe_rsp.read_mem(o->rsp, addr, buf, n);
}

static imp_err oocd_write(void *priv, uint32_t addr, const uint8_t *buf, size_t n)
{
	struct oocd *o = priv;

	if (!gdb_ready(o))
		return IMP_ERR_PROBE;
	return board_probe_rsp.write_mem(o->rsp, addr, buf, n);
}

/*
 * reset() of a Cortex-M without OpenOCD's "reset halt": that one, with no
 * SRST wired, writes DEMCR's vector catch and AIRCR.SYSRESETREQ, re-inits
 * the DP, then sleeps 50 ms whatever the part does (cortex_m_assert_reset)
 * before it looks. Here the same writes, the DP re-initialised, and the
 * core's halt at the reset vector seen positively through OpenOCD's own
 * poll (which goes through the reset: S_RESET_ST, DEMCR restored, debug
 * entry), looking every millisecond. A core whose DHCSR stops answering
 * (a part the reset locked) ends the wait at once: "X:". "U:" when a
 * target is not a cortex_m, or the configuration wires a reset line
 * (reset_config other than "none": its SRST is what "reset halt" pulls),
 * then "reset halt" as before.
 */
static const char reset_script[] =
	"if {![string match {none*} [reset_config]]} {return U:}\n"
	"foreach t [target names] {if {[$t cget -type] ne {cortex_m}} {return U:}}\n"
	"set r OK\n"
	"foreach t [target names] {\n"
	" catch {$t mww 0xe000edfc 0x01000501}\n"
	" catch {$t mww 0xe000ed0c 0x05fa0004}\n"
	" catch {dap init}\n"
	" set h 0; set bad 0\n"
	" for {set i 0} {$i < 200} {incr i} {\n"
	"  if {[catch {$t arp_poll}]} {incr bad; if {$bad > 2} break} "
	"elseif {[$t curstate] eq {halted}} {set h 1; break}\n"
	"  sleep 1\n"
	" }\n"
	" if {$bad > 2} {set r \"X:$t no longer answers after the reset (a part the reset locked does not)\"} "
	"elseif {!$h} {set r \"X:$t did not halt within 200 ms of the reset ([$t curstate])\"}\n"
	"}\n"
	"return $r";

static imp_err oocd_reset(void *priv)
{
	struct oocd *o = priv;
	char out[256];
	imp_err rc;

	if (!gdb_ready(o))
		return IMP_ERR_PROBE;
	if (o->own_reset_cmd)
		return board_probe_rsp.reset(o->rsp);
	rc = tcl_run(o->p, reset_script, out, sizeof(out));
	if (rc != IMP_OK)
		return rc;
	if (strcmp(out, "U:") == 0)
		return board_probe_rsp.reset(o->rsp);
	if (strcmp(out, "OK") != 0) {
		IMP_ERROR("openocd probe: reset: %s", out + 2);
		return IMP_ERR_PROBE;
	}
	return IMP_OK;
}

static imp_err oocd_halt(void *priv)
{
	struct oocd *o = priv;

	if (!gdb_ready(o))
		return IMP_ERR_PROBE;
	return board_probe_rsp.halt(o->rsp);
}

static imp_err oocd_monitor(void *priv, const char *cmd, char *out, size_t cap)
{
	struct oocd *o = priv;

	if (o->rsp)
		return board_probe_rsp.monitor(o->rsp, cmd, out, cap);
	return tcl_run(o->p, cmd, out, cap);
}

static imp_err oocd_flash_program(void *priv, uint32_t addr, const uint8_t *buf, size_t n)
{
	struct oocd *o = priv;

	char tail[600];
	imp_err rc;

	if (!gdb_ready(o))
		return IMP_ERR_PROBE;
	rc = board_probe_rsp.flash_program(o->rsp, addr, buf, n);
	if (rc != IMP_OK && rc != IMP_ERR_UNSUPPORTED) {
		log_tail(o->p, tail, sizeof(tail));
		IMP_ERROR("openocd probe: OpenOCD's log: %s", tail);
	}
	return rc;
}

static imp_err oocd_crc32(void *priv, uint32_t addr, size_t n, uint32_t *crc)
{
	struct oocd *o = priv;

	if (!gdb_ready(o))
		return IMP_ERR_PROBE;
	return board_probe_rsp.crc32(o->rsp, addr, n, crc);
}

/* The DAP's name: the first of "dap names" (asked once per process). */
static imp_err dap_name(struct oocd *o, char *out, size_t cap)
{
	char names[256];
	size_t k;
	imp_err rc;

	if (o->p->dap[0] && strlen(o->p->dap) < cap) {
		strcpy(out, o->p->dap);
		return IMP_OK;
	}
	rc = tcl_run(o->p, "dap names", names, sizeof(names));
	if (rc != IMP_OK)
		return rc;
	k = strspn(names, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-");
	if (k == 0 || k >= cap) {
		IMP_ERROR("openocd probe: OpenOCD names no DAP ('dap names': %s); the "
			  "configuration must create one (dap create)", names);
		return IMP_ERR_PROBE;
	}
	memcpy(out, names, k);
	out[k] = '\0';
	if (k < sizeof(o->p->dap))
		strcpy(o->p->dap, out);
	return IMP_OK;
}

static imp_err oocd_ap(struct oocd *o, unsigned ap, uint32_t reg, const uint32_t *wv,
		       uint32_t *rv)
{
	char dap[64], cmd[160], out[256], *end = NULL, *p;
	unsigned long long x;
	imp_err rc;

	if (ap > 255 || reg > 0xFFC || reg % 4)
		return IMP_ERR_USAGE;
	rc = dap_name(o, dap, sizeof(dap));
	if (rc != IMP_OK)
		return rc;
	/* catch: an error answers "E:" and its message, never a number. */
	if (wv)
		snprintf(cmd, sizeof(cmd), "if {[catch {%s apreg %u 0x%x 0x%x} e]} {return \"E:$e\"} "
			 "else {return OK}", dap, ap, reg, *wv);
	else
		snprintf(cmd, sizeof(cmd), "if {[catch {%s apreg %u 0x%x} e]} {return \"E:$e\"} "
			 "else {return $e}", dap, ap, reg);
	rc = tcl_run(o->p, cmd, out, sizeof(out));
	if (rc != IMP_OK)
		return rc;
	if (wv) {
		if (strcmp(out, "OK") != 0) {
			IMP_ERROR("openocd probe: AP %u register 0x%x write failed: %s", ap, reg, out);
			return IMP_ERR_PROBE;
		}
		return IMP_OK;
	}
	p = out;
	while (*p == ' ' || *p == '\n' || *p == '\r')
		p++;
	errno = 0;
	x = strtoull(p, &end, 0);
	while (end && (*end == ' ' || *end == '\n' || *end == '\r'))
		end++;
	if (strncmp(p, "0x", 2) != 0 || errno || !end || *end || x > 0xFFFFFFFFull) {
		IMP_ERROR("openocd probe: AP %u register 0x%x read failed: %s", ap, reg, out);
		return IMP_ERR_PROBE;
	}
	*rv = (uint32_t)x;
	return IMP_OK;
}

static imp_err oocd_ap_read(void *priv, unsigned ap, uint32_t reg, uint32_t *v)
{
	return oocd_ap(priv, ap, reg, NULL, v);
}

static imp_err oocd_ap_write(void *priv, unsigned ap, uint32_t reg, uint32_t v)
{
	struct oocd *o = priv;

	o->retry_gdb = true;
	return oocd_ap(o, ap, reg, &v, NULL);
}

const struct board_probe_driver board_probe_openocd = {
	.name = "openocd",
	.open = oocd_open,
	.close = oocd_close,
	.read_mem = oocd_read,
	.write_mem = oocd_write,
	.reset = oocd_reset,
	.halt = oocd_halt,
	.monitor = oocd_monitor,
	.flash_program = oocd_flash_program,
	.crc32 = oocd_crc32,
	.ap_read = oocd_ap_read,
	.ap_write = oocd_ap_write,
	.server_start = oocd_server_start,
	.servers_wait = oocd_servers_wait,
	.servers_stop = oocd_servers_stop,
};

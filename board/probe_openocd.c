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
 * it dies with the thread that opened the probe, even when the station is
 * killed with SIGKILL (the probe must be closed by the thread that opened
 * it: the station does). close() detaches, then SIGTERM to the group, then
 * SIGKILL after 1 s, and reaps it. Its log goes to an unlinked temporary
 * file; its last lines are quoted when it fails.
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

struct oocd {
	pid_t pid;                /* OpenOCD, leader of its own process group */
	int log_fd;               /* its stderr: an unlinked temporary file */
	int tcl_fd;               /* Tcl RPC connection, or -1 */
	unsigned gdb_port, tcl_port;
	void *rsp;                /* the rsp driver's state, NULL when refused */
	bool gdb_refused;
	bool retry_gdb;           /* an AP write may have opened the target */
	char rsp_uri[1400];
	char cfg[1024];
};

static const char safe_chars[] =
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:/-";

static bool safe(const char *s)
{
	return *s && strspn(s, safe_chars) == strlen(s);
}

/* The last lines of OpenOCD's log, for messages. */
static void log_tail(const struct oocd *o, char *out, size_t cap)
{
	off_t end = lseek(o->log_fd, 0, SEEK_END);
	off_t from = end > (off_t)cap - 1 ? end - (off_t)cap + 1 : 0;
	ssize_t got = pread(o->log_fd, out, cap - 1, from);

	out[got > 0 ? got : 0] = '\0';
	for (char *c = out; *c; c++)
		if (*c == '\n' || *c == '\r')
			*c = *(c + 1) ? '|' : '\0';
}

/* Find "Listening on port N for WHAT connections" in the log. */
static unsigned listening_port(const struct oocd *o, const char *what)
{
	char buf[16384], pat[64];
	ssize_t got = pread(o->log_fd, buf, sizeof(buf) - 1, 0);
	const char *p;

	if (got <= 0)
		return 0;
	buf[got] = '\0';
	snprintf(pat, sizeof(pat), " for %s connections", what);
	for (p = buf; (p = strstr(p, "Listening on port ")) != NULL; p++) {
		char *end = NULL;
		unsigned long port = strtoul(p + 18, &end, 10);

		if (end && strncmp(end, pat, strlen(pat)) == 0 && port > 0 && port < 65536)
			return (unsigned)port;
	}
	return 0;
}

static bool log_has(const struct oocd *o, const char *needle)
{
	char buf[16384];
	ssize_t got = pread(o->log_fd, buf, sizeof(buf) - 1, 0);

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

static void oocd_stop(struct oocd *o)
{
	if (o->pid <= 0)
		return;
	kill(-o->pid, SIGTERM);
	for (int i = 0; i < 100; i++) {
		if (waitpid(o->pid, NULL, WNOHANG) == o->pid) {
			o->pid = 0;
			break;
		}
		imp_sleep_us(10000);
	}
	if (o->pid > 0) {
		kill(-o->pid, SIGKILL);
		waitpid(o->pid, NULL, 0);
		o->pid = 0;
	}
	/* Anything left in the group (OpenOCD starts no helpers; be sure). */
}

static void oocd_free(struct oocd *o)
{
	if (o->rsp)
		board_probe_rsp.close(o->rsp);
	if (o->tcl_fd >= 0)
		close(o->tcl_fd);
	oocd_stop(o);
	if (o->log_fd >= 0)
		close(o->log_fd);
	free(o);
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

static imp_err spawn(struct oocd *o, const char *exe, const char *sets)
{
	char *argv[OOCD_MAX_ARGS];
	char setcmds[OOCD_MAX_SETS][300];
	char tmpl[] = "/tmp/imprint-openocd-XXXXXX";
	pid_t parent = getpid();
	int argc = 0, nsets = 0;
	const char *s = sets;

	o->log_fd = mkstemp(tmpl);
	if (o->log_fd < 0) {
		IMP_ERROR("openocd probe: cannot create a log file in /tmp: %s", strerror(errno));
		return IMP_ERR_IO;
	}
	unlink(tmpl);
	argv[argc++] = (char *)exe;
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
	argv[argc++] = o->cfg;
	argv[argc] = NULL;

	o->pid = fork();
	if (o->pid < 0) {
		IMP_ERROR("openocd probe: fork failed: %s", strerror(errno));
		return IMP_ERR_IO;
	}
	if (o->pid == 0) {
		int dn = open("/dev/null", O_RDWR);

		/* Own group (one kill reaches all), and die with the opener. */
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		dup2(dn, 0);
		dup2(dn, 1);
		dup2(o->log_fd, 2);
		execvp(exe, argv);
		dprintf(2, "cannot run %s: %s\n", exe, strerror(errno));
		_exit(127);
	}
	setpgid(o->pid, o->pid); /* the same from this side: no race with kill */
	return IMP_OK;
}

static imp_err tcl_connect(struct oocd *o)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)o->tcl_port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int one = 1;

	o->tcl_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (o->tcl_fd < 0 || connect(o->tcl_fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		IMP_ERROR("openocd probe: cannot connect to OpenOCD's Tcl port %u: %s",
			  o->tcl_port, strerror(errno));
		return IMP_ERR_PROBE;
	}
	setsockopt(o->tcl_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return IMP_OK;
}

/* One Tcl RPC command: "cmd\x1a" out, "result\x1a" back. */
static imp_err tcl_run(struct oocd *o, const char *cmd, char *out, size_t cap)
{
	uint64_t deadline = imp_now_ns() + (uint64_t)OOCD_TCL_TIMEOUT_MS * 1000000u;
	size_t n = strlen(cmd), len = 0;
	char term = OOCD_TCL_END;

	if (o->tcl_fd < 0)
		return IMP_ERR_PROBE;
	if (send(o->tcl_fd, cmd, n, MSG_NOSIGNAL) != (ssize_t)n ||
	    send(o->tcl_fd, &term, 1, MSG_NOSIGNAL) != 1) {
		IMP_ERROR("openocd probe: OpenOCD's Tcl port closed: %s", strerror(errno));
		return IMP_ERR_PROBE;
	}
	for (;;) {
		struct pollfd pfd = { .fd = o->tcl_fd, .events = POLLIN };
		uint64_t now = imp_now_ns();
		char c;
		ssize_t got;

		if (now >= deadline || poll(&pfd, 1, (int)((deadline - now) / 1000000u) + 1) <= 0) {
			IMP_ERROR("openocd probe: no answer to '%s' on OpenOCD's Tcl port", cmd);
			close(o->tcl_fd);
			o->tcl_fd = -1; /* out of step: never read a late answer */
			return IMP_ERR_TIMEOUT;
		}
		got = recv(o->tcl_fd, &c, 1, 0);
		if (got <= 0) {
			IMP_ERROR("openocd probe: OpenOCD's Tcl port closed");
			return IMP_ERR_PROBE;
		}
		if (c == OOCD_TCL_END)
			break;
		if (len + 1 < cap)
			out[len++] = c;
	}
	out[len] = '\0';
	return IMP_OK;
}

static imp_err oocd_open(const char *uri, void **priv)
{
	char sets[1024], exe[512], rest[1024], cfgname[1024], rsp_uri[1400], tail[600];
	const char *env_exe = getenv("IMPRINT_OPENOCD");
	uint64_t deadline;
	struct oocd *o;
	imp_err rc;

	o = calloc(1, sizeof(*o));
	if (!o)
		return IMP_ERR_NOMEM;
	o->log_fd = o->tcl_fd = -1;
	snprintf(exe, sizeof(exe), "%s", env_exe && *env_exe ? env_exe : "openocd");
	rc = parse_uri(uri, cfgname, sizeof(cfgname), sets, sizeof(sets), exe, sizeof(exe), rest,
		       sizeof(rest));
	if (rc != IMP_OK)
		goto fail;
	rc = find_config(cfgname, o->cfg, sizeof(o->cfg));
	if (rc != IMP_OK) {
		char shipped[4096];

		imp_data_dir("openocd", "board/openocd", shipped, sizeof(shipped));
		IMP_ERROR("openocd probe: no OpenOCD configuration '%s' (a path, or a name in "
			  "$IMPRINT_OPENOCD_PATH or %s)", cfgname, shipped);
		rc = IMP_ERR_CONFIG;
		goto fail;
	}
	rc = spawn(o, exe, sets);
	if (rc != IMP_OK)
		goto fail;
	deadline = imp_now_ns() + (uint64_t)OOCD_START_TIMEOUT_MS * 1000000u;
	while (!(o->gdb_port = listening_port(o, "gdb")) || !(o->tcl_port = listening_port(o, "tcl"))) {
		if (waitpid(o->pid, NULL, WNOHANG) == o->pid) {
			o->pid = 0;
			log_tail(o, tail, sizeof(tail));
			IMP_ERROR("openocd probe: OpenOCD (%s -f %s) exited during start-up: %s; check "
				  "the configuration and that the adapter (or virtual board) is "
				  "reachable", exe, o->cfg, tail);
			rc = IMP_ERR_PROBE;
			goto fail;
		}
		if (imp_now_ns() > deadline) {
			log_tail(o, tail, sizeof(tail));
			IMP_ERROR("openocd probe: OpenOCD did not start its GDB server within %u ms: "
				  "%s", OOCD_START_TIMEOUT_MS, tail);
			rc = IMP_ERR_TIMEOUT;
			goto fail;
		}
		imp_sleep_us(5000);
	}
	rc = tcl_connect(o);
	if (rc != IMP_OK)
		goto fail;
	{
		char out[256];

		/* OpenOCD resets the target around GDB flash programming by
		 * default (gdb-flash-erase-start: reset init, gdb-flash-write-end:
		 * reset halt). A reset that halts before the firmware runs locks a
		 * hardened nRF52: here the core is only halted. */
		rc = tcl_run(o, "foreach t [target names] {$t configure -event gdb-flash-erase-start "
			     "{halt}; $t configure -event gdb-flash-write-end {halt}}", out, sizeof(out));
		if (rc != IMP_OK)
			goto fail;
	}
	snprintf(o->rsp_uri, sizeof(o->rsp_uri), "rsp://127.0.0.1:%u?server=openocd&data_abort=1%s",
		 o->gdb_port, rest);
	(void)rsp_uri;
	{
		enum imp_log_level level = imp_log_get_level();

		/* A refused connection is expected on a locked part: say it once,
		 * below, rather than as a lost connection. */
		if (log_has(o, "examination failed"))
			imp_log_set_level(IMP_LOG_QUIET);
		rc = board_probe_rsp.open(o->rsp_uri, &o->rsp);
		imp_log_set_level(level);
	}
	if (rc != IMP_OK) {
		o->rsp = NULL;
		/* OpenOCD refuses GDB while the target cannot be examined. */
		if (rc == IMP_ERR_PROBE && waitpid(o->pid, NULL, WNOHANG) == 0 &&
		    (log_has(o, "examination failed") || log_has(o, "refuse gdb connection") ||
		     log_has(o, "'gdb' connection rejected"))) {
			IMP_WARN("openocd probe: OpenOCD refuses the GDB connection (target not "
				 "examined: locked or unpowered?); only its access ports are "
				 "reachable");
			o->gdb_refused = true;
			rc = IMP_OK;
		} else {
			log_tail(o, tail, sizeof(tail));
			IMP_ERROR("openocd probe: no GDB session with OpenOCD: %s", tail);
			goto fail;
		}
	}
	if (o->rsp) {
		char out[256];

		/* OpenOCD's flash drivers want a halted core; a running one (its
		 * firmware booted) is stopped here, as GDB's attach would. */
		(void)tcl_run(o, "halt", out, sizeof(out));
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

static imp_err tcl_run(struct oocd *o, const char *cmd, char *out, size_t cap);

/*
 * After an access-port write (CTRL-AP ERASEALL opens a protected nRF52)
 * try once to have OpenOCD examine the target again and accept GDB.
 */
static bool ensure_gdb(struct oocd *o)
{
	char out[512];
	enum imp_log_level level;

	if (o->rsp)
		return true;
	if (!o->retry_gdb)
		return false;
	o->retry_gdb = false;
	if (tcl_run(o, "foreach t [target names] {catch {$t arp_examine}}", out, sizeof(out)) !=
	    IMP_OK)
		return false;
	level = imp_log_get_level();
	imp_log_set_level(IMP_LOG_QUIET);
	if (board_probe_rsp.open(o->rsp_uri, &o->rsp) != IMP_OK)
		o->rsp = NULL;
	imp_log_set_level(level);
	if (o->rsp) {
		char out[256];

		/* OpenOCD's flash drivers want a halted core. */
		(void)tcl_run(o, "halt", out, sizeof(out));
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

static imp_err oocd_reset(void *priv)
{
	struct oocd *o = priv;

	if (!gdb_ready(o))
		return IMP_ERR_PROBE;
	return board_probe_rsp.reset(o->rsp);
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
	return tcl_run(o, cmd, out, cap);
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
		log_tail(o, tail, sizeof(tail));
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

/* The DAP's name: the first of "dap names". */
static imp_err dap_name(struct oocd *o, char *out, size_t cap)
{
	char names[256];
	size_t k;
	imp_err rc = tcl_run(o, "dap names", names, sizeof(names));

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
	rc = tcl_run(o, cmd, out, sizeof(out));
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
};

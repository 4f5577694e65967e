/*
 * imprint demo: the embedded default, end to end, on one machine. It starts
 * N virtual boards (imprint-vboard), creates the embedded HSM and the
 * organisation hierarchy if needed, makes and signs a demo firmware image,
 * writes a station configuration for the boards, provisions them all and
 * prints a summary.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "formats/ecdsa_der.h"
#include "hsm/org.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "run.h"

#define DEMO_FIRMWARE_SIZE (24u * 1024u)

struct vboard {
	pid_t pid;
	FILE *out;
	json_t *endpoints; /* array of {"board","uid","rsp","uart"} */
};

/* pcsc: NULL, or "HOST:PORT" of the vpcd readers for the boards' cards;
 * faults: NULL, or the virtual board's fault options (docs/VBOARD.md),
 * separated by blanks. */
static imp_err vboard_start(struct vboard *vb, long boards, const char *state_dir,
			    const char *latency, const char *pcsc, const char *faults)
{
	char exe[PATH_MAX], nboards[32];
	int pipefd[2];
	char line[1024];

	st_find_program("imprint-vboard", "sim", exe, sizeof(exe));
	snprintf(nboards, sizeof(nboards), "%ld", boards);
	if (pipe(pipefd) != 0)
		return IMP_ERR_IO;
	/* argv: the program, its fixed options, then faults split on blanks. */
	char *fcopy = strdup(faults ? faults : "");
	char *args[64];
	int n = 0;

	if (!fcopy)
		return IMP_ERR_NOMEM;
	args[n++] = exe;
	args[n++] = "--boards";
	args[n++] = nboards;
	args[n++] = "--state-dir";
	args[n++] = (char *)state_dir;
	args[n++] = "--latency";
	args[n++] = (char *)latency;
	if (pcsc) {
		args[n++] = "--pcsc";
		args[n++] = (char *)pcsc;
	}
	for (char *save = NULL, *t = strtok_r(fcopy, " \t", &save); t && n < 63;
	     t = strtok_r(NULL, " \t", &save))
		args[n++] = t;
	args[n] = NULL;
	vb->pid = fork();
	if (vb->pid < 0) {
		free(fcopy);
		return IMP_ERR_IO;
	}
	if (vb->pid == 0) {
		dup2(pipefd[1], STDOUT_FILENO);
		close(pipefd[0]);
		close(pipefd[1]);
		execvp(exe, args);
		fprintf(stderr, "imprint: error: cannot run %s: %s\n", exe, strerror(errno));
		_exit(127);
	}
	free(fcopy);
	close(pipefd[1]);
	vb->out = fdopen(pipefd[0], "r");
	vb->endpoints = json_array();
	if (!vb->out || !vb->endpoints)
		return IMP_ERR_NOMEM;
	while (fgets(line, sizeof(line), vb->out)) {
		json_t *o = json_loads(line, 0, NULL);

		if (o && json_is_true(json_object_get(o, "ready"))) {
			json_decref(o);
			return IMP_OK;
		}
		if (o && json_object_get(o, "rsp"))
			json_array_append_new(vb->endpoints, o);
		else
			json_decref(o);
	}
	/* It stopped before it was ready: exit 2 is its refusal of the
	 * command line, which here is --faults (the rest is the demo's). */
	{
		int status = 0;
		pid_t w = 0;

		/* Its output ended: it is exiting (or wedged: not waited on long). */
		for (int i = 0; i < 200 && (w = waitpid(vb->pid, &status, WNOHANG)) == 0; i++)
			usleep(10000);
		if (w == vb->pid) {
			vb->pid = -1;
			if (WIFEXITED(status) && WEXITSTATUS(status) == IMP_ERR_USAGE) {
				IMP_ERROR("demo: --faults '%s': imprint-vboard refused them (its "
					  "message above; 'imprint-vboard --help' lists its fault "
					  "options)", faults ? faults : "");
				return IMP_ERR_USAGE;
			}
		}
	}
	IMP_ERROR("the virtual boards (%s) did not start; run it by hand to see why", exe);
	return IMP_ERR_BOARD;
}

static void vboard_stop(struct vboard *vb)
{
	if (vb->pid > 0) {
		kill(vb->pid, SIGTERM);
		waitpid(vb->pid, NULL, 0);
	}
	if (vb->out)
		fclose(vb->out);
	json_decref(vb->endpoints);
}

/*
 * --anchor pcsc: each board's card sits in a vpcd reader of a pcscd the demo
 * starts itself (one pcscd per host: one that is already running is not
 * used, since which of its readers reaches which port cannot be known).
 * vpcd serves two slots, on PORT and PORT + 1, and pcscd names them
 * "FRIENDLYNAME 00 00" and "FRIENDLYNAME 00 01". A second vpcd reader in the
 * same pcscd shares the driver's per-slot state with the first (its cards
 * answer in the wrong reader), so two boards is the limit.
 */
#define DEMO_PCSCD_SOCKET "/run/pcscd/pcscd.comm"
#define DEMO_VPCD_DRIVER "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"
#define DEMO_PCSC_BOARDS_MAX 2 /* vpcd's slots */
#define DEMO_PCSCD_WAIT_MS 10000

struct demo_pcscd {
	pid_t pid;
	char log[4400];
};

/* Board N's reader: the demo's reader.conf names them so. */
static void demo_reader_name(char *out, size_t cap, long board)
{
	snprintf(out, cap, "Imprint Demo 00 %02ld", board);
}

/* A pcscd answers on its socket (running, or started on demand by systemd). */
static bool pcscd_answers(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = DEMO_PCSCD_SOCKET };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool up;

	if (fd < 0)
		return false;
	up = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return up;
}

/* Something listens on TCP port; read from /proc, since a connection to
 * vpcd would insert a card. */
static bool tcp_listening(int port)
{
	const char *tables[] = { "/proc/net/tcp", "/proc/net/tcp6" };
	char line[512];
	bool found = false;

	for (size_t i = 0; i < IMP_ARRAY_SIZE(tables) && !found; i++) {
		FILE *f = fopen(tables[i], "r");

		if (!f)
			continue;
		while (!found && fgets(line, sizeof(line), f)) {
			char local[64], remote[64], st[8];
			const char *colon;

			if (sscanf(line, "%*s %63s %63s %7s", local, remote, st) != 3)
				continue;
			colon = strrchr(local, ':');
			found = colon && strcmp(st, "0A") == 0 &&
				strtoul(colon + 1, NULL, 16) == (unsigned long)port;
		}
		fclose(f);
	}
	return found;
}

/* One vpcd reader, its slots on ports PORT and PORT + 1. */
static imp_err pcscd_write_conf(const char *path, int port)
{
	char text[512];
	int n = snprintf(text, sizeof(text),
			 "FRIENDLYNAME \"Imprint Demo\"\nDEVICENAME /dev/null:%d\nLIBPATH %s\n"
			 "CHANNELID %d\n",
			 port, DEMO_VPCD_DRIVER, port);

	return imp_write_file_atomic(path, text, (size_t)n, 0644);
}

static imp_err pcscd_start(struct demo_pcscd *pd, const char *demo_dir, int port, long boards)
{
	char dir[4300], confdir[4400], conf[4500];
	imp_err rc;

	if (pcscd_answers()) {
		IMP_ERROR("demo: a pcscd is already running (%s) and the demo needs its own, with "
			  "vpcd readers on ports %d to %ld; stop it ('systemctl stop pcscd.socket "
			  "pcscd.service') and run the demo again, or use --anchor agent",
			  DEMO_PCSCD_SOCKET, port, port + boards - 1);
		return IMP_ERR_CONFIG;
	}
	if (access(DEMO_VPCD_DRIVER, R_OK) != 0) {
		IMP_ERROR("demo: the vpcd reader driver (%s) is missing; install vsmartcard-vpcd, or "
			  "use --anchor agent", DEMO_VPCD_DRIVER);
		return IMP_ERR_CONFIG;
	}
	snprintf(dir, sizeof(dir), "%s/pcscd", demo_dir);
	snprintf(confdir, sizeof(confdir), "%s/reader.conf.d", dir);
	snprintf(conf, sizeof(conf), "%s/vpcd", confdir);
	snprintf(pd->log, sizeof(pd->log), "%s/pcscd.log", dir);
	rc = imp_mkdir_p(confdir, 0700);
	if (rc == IMP_OK)
		rc = pcscd_write_conf(conf, port);
	if (rc != IMP_OK)
		return rc;
	pd->pid = fork();
	if (pd->pid < 0)
		return IMP_ERR_IO;
	if (pd->pid == 0) {
		int log = open(pd->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

		if (log >= 0) {
			dup2(log, STDOUT_FILENO);
			dup2(log, STDERR_FILENO);
		}
		if (null >= 0)
			dup2(null, STDIN_FILENO);
		execlp("pcscd", "pcscd", "-f", "-c", confdir, (char *)NULL);
		execl("/usr/sbin/pcscd", "pcscd", "-f", "-c", confdir, (char *)NULL);
		fprintf(stderr, "cannot run pcscd: %s\n", strerror(errno));
		_exit(127);
	}
	for (int waited = 0; waited < DEMO_PCSCD_WAIT_MS; waited += 50) {
		bool ready = pcscd_answers();

		for (long i = 0; ready && i < boards; i++)
			ready = tcp_listening(port + (int)i);
		if (ready) {
			IMP_INFO("demo: started pcscd (pid %ld, log %s) with vpcd readers on ports %d "
				 "to %ld", (long)pd->pid, pd->log, port, port + boards - 1);
			return IMP_OK;
		}
		if (waitpid(pd->pid, NULL, WNOHANG) == pd->pid) {
			pd->pid = 0;
			break;
		}
		usleep(50 * 1000);
	}
	IMP_ERROR("demo: pcscd did not start with vpcd readers on ports %d to %ld (its log: %s); "
		  "it needs root, pcscd and vsmartcard-vpcd, and the ports free; or use --anchor "
		  "agent", port, port + boards - 1, pd->log);
	return IMP_ERR_IO;
}

/* Stops the pcscd pcscd_start() started, if any. */
static void pcscd_stop(struct demo_pcscd *pd)
{
	if (pd->pid > 0) {
		kill(pd->pid, SIGTERM);
		waitpid(pd->pid, NULL, 0);
		pd->pid = 0;
	}
}

/* Each endpoint's board gets its reader ("board" is its index). */
static void endpoints_add_readers(json_t *endpoints)
{
	size_t i;
	json_t *ep;

	json_array_foreach(endpoints, i, ep) {
		json_t *b = json_object_get(ep, "board");
		char name[64];

		demo_reader_name(name, sizeof(name), json_is_integer(b) ? (long)json_integer_value(b)
									: (long)i);
		json_object_set_new(ep, "reader", json_string(name));
	}
}

/* Matter's test vendor and product IDs (VIDs 0xFFF1..0xFFF4 are reserved
 * for tests by the Connectivity Standards Alliance). */
#define DEMO_MATTER_VID "FFF1"
#define DEMO_MATTER_PID "8000"

static struct {
	long boards, vpcd_port;
	const char *key_mode, *latency, *anchor, *faults, *cert_profile;
} dopt = { .boards = 8, .vpcd_port = 35963 /* vpcd's own default */, .key_mode = "device",
	   .latency = "1", .anchor = "agent", .cert_profile = FMT_CERTPROF_DEFAULT };

/* --cert-profile on a loaded configuration: the profile set it names, with
 * the demo's Matter IDs. */
static imp_err demo_profile_apply(struct fmt_config *cfg)
{
	char *p = strdup(dopt.cert_profile);

	if (!p)
		return IMP_ERR_NOMEM;
	free(cfg->certificate.profile);
	cfg->certificate.profile = p;
	snprintf(cfg->matter.vendor_id, sizeof(cfg->matter.vendor_id), "%s", DEMO_MATTER_VID);
	snprintf(cfg->matter.product_id, sizeof(cfg->matter.product_id), "%s", DEMO_MATTER_PID);
	return fmt_config_load_profiles(cfg, NULL);
}

/* A hierarchy made for another device profile cannot issue this one's
 * certificates (a Matter DAC needs a PAI): refused before anything runs. */
static imp_err demo_profile_matches(struct station_ctx *ctx)
{
	char trust[4200], made[128];
	imp_err rc;

	st_trust_dir(ctx, trust, sizeof(trust));
	rc = fmt_certprof_trust_name(trust, made, sizeof(made));
	if (rc != IMP_OK)
		return rc;
	if (made[0] && strcmp(made, dopt.cert_profile) != 0) {
		IMP_ERROR("demo: the hierarchy in %s was made for certificate profile '%s', not "
			  "'%s'; use another --data-dir, or run the demo with --cert-profile %s",
			  trust, made, dopt.cert_profile, made);
		return IMP_ERR_CONFIG;
	}
	return IMP_OK;
}

/* The embedded token and the hierarchy exist (with the psk master if psk);
 * a signed demo image exists. */
static imp_err prepare_hsm_and_firmware(struct station_ctx *ctx, const char *fw_path,
					const char *sig_path, bool psk)
{
	struct fmt_config cfg = { 0 };
	struct hsm *h = NULL;
	struct hsm_session *s = NULL;
	struct hsm_org org = { 0 };
	uint8_t *image = NULL;
	uint8_t der[FMT_ECDSA_DER_MAX];
	size_t der_len = 0;
	char trust[4200];
	imp_err rc;

	rc = st_load_config(ctx, &cfg);
	if (rc == IMP_OK)
		rc = demo_profile_apply(&cfg);
	if (rc == IMP_OK)
		rc = demo_profile_matches(ctx);
	if (rc == IMP_OK && !hsm_embedded_exists(ctx->data_dir)) {
		/* Never a new token over a station that made boards with the old. */
		if (st_hierarchy_lost(ctx, &cfg, true))
			rc = IMP_ERR_NOT_FOUND;
		else
			IMP_INFO("creating the embedded SoftHSM2 token in %s/hsm (demo only)",
				 ctx->data_dir);
		if (rc == IMP_OK)
			rc = hsm_embedded_create(ctx->data_dir);
	}
	if (rc == IMP_OK)
		rc = st_open_hsm(ctx, &cfg, &h);
	if (rc == IMP_OK)
		rc = hsm_session_open(h, &s);
	if (rc == IMP_OK) {
		hsm_obj root;
		bool have_root;

		/* First run: no hierarchy yet (checked quietly, then created). */
		rc = hsm_find(s, HSM_CLASS_PRIVATE_KEY, hsm_org_label(HSM_ORG_ROOT), NULL, 0, &root);
		have_root = rc == IMP_OK;
		if (rc == IMP_OK)
			rc = hsm_org_load(s, &org);
		if (rc == IMP_OK && psk && org.psk_master == HSM_OBJ_NONE) {
			hsm_org_release(&org);
			rc = IMP_ERR_NOT_FOUND; /* hsm_org_init adds only the master */
		}
		if (rc == IMP_ERR_NOT_FOUND && !have_root && st_hierarchy_lost(ctx, &cfg, false))
			goto cleanup;
		if (rc == IMP_ERR_NOT_FOUND) {
			struct fmt_certprof_vars vars;
			struct hsm_org_names names = { cfg.organisation.name, cfg.organisation.country,
						       cfg.organisation.root_validity_days,
						       cfg.organisation.ca_validity_days,
						       cfg.certificate.profiles, &vars };

			fmt_config_cert_vars(&cfg, NULL, NULL, NULL, &vars);
			IMP_INFO("creating the organisation hierarchy");
			st_trust_dir(ctx, trust, sizeof(trust));
			rc = hsm_org_init(s, &names, psk ? HSM_ORG_INIT_PSK_MASTER : 0, trust);
			if (rc == IMP_OK)
				rc = hsm_org_load(s, &org);
		}
	}
	if (rc != IMP_OK || access(sig_path, F_OK) == 0)
		goto cleanup;
	/* A demo image: a deterministic stream, signed by the code-signing key. */
	image = malloc(DEMO_FIRMWARE_SIZE);
	if (!image) {
		rc = IMP_ERR_NOMEM;
		goto cleanup;
	}
	for (uint32_t i = 0; i < DEMO_FIRMWARE_SIZE; i += 32) {
		uint8_t block[32];
		uint32_t ctr = i / 32;

		EVP_Digest(&ctr, sizeof(ctr), block, NULL, EVP_sha256(), NULL);
		memcpy(image + i, block, 32);
	}
	rc = imp_write_file_atomic(fw_path, image, DEMO_FIRMWARE_SIZE, 0644);
	if (rc == IMP_OK)
		rc = hsm_sign_sha256_der(s, org.key[HSM_ORG_CODE], image, DEMO_FIRMWARE_SIZE, der,
					 sizeof(der), &der_len);
	if (rc == IMP_OK)
		rc = imp_write_file_atomic(sig_path, der, der_len, 0644);
cleanup:
	free(image);
	hsm_org_release(&org);
	hsm_session_close(s);
	hsm_close(h);
	fmt_config_release(&cfg);
	return rc;
}

static imp_err write_demo_config(const char *path, const char *key_mode, const json_t *endpoints,
				 const char *fw, const char *sig, json_t *registry)
{
	json_t *fixtures = json_array();
	json_t *cfg;
	char *text;
	imp_err rc;
	size_t i;
	json_t *ep;

	json_array_foreach(endpoints, i, ep) {
		char name[32];

		snprintf(name, sizeof(name), "F%zu", i + 1);
		json_t *fx = json_pack("{s:s, s:O, s:O}", "name", name, "probe",
				       json_object_get(ep, "rsp"), "uart", json_object_get(ep, "uart"));

		/* A fixture with a reader keeps the board's trust anchor in its card. */
		if (fx && json_object_get(ep, "reader"))
			json_object_set(fx, "reader", json_object_get(ep, "reader"));
		json_array_append_new(fixtures, fx);
	}
	cfg = json_pack("{s:i, s:s, s:{s:s, s:s}, s:{s:s, s:i}, s:s, s:{s:s, s:s}, s:o}", "version",
			1, "station_id", "demo-station", "product", "name", "Imprint Demo Sensor",
			"sku", "DEMO-S1", "serial", "prefix", "DEMO", "width", 6, "key_mode",
			key_mode, "firmware", "image", fw, "signature", sig, "fixtures", fixtures);
	if (!cfg)
		return IMP_ERR_NOMEM;
	json_object_set_new(cfg, "registry", registry); /* the local imprint-registry */
	if (strcmp(dopt.cert_profile, FMT_CERTPROF_DEFAULT) != 0) {
		json_object_set_new(cfg, "certificate",
				    json_pack("{s:s}", "profile", dopt.cert_profile));
		json_object_set_new(cfg, "matter", json_pack("{s:s, s:s}", "vendor_id",
							    DEMO_MATTER_VID, "product_id",
							    DEMO_MATTER_PID));
	}
	text = json_dumps(cfg, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(cfg);
	if (!text)
		return IMP_ERR_NOMEM;
	rc = imp_write_file_atomic(path, text, strlen(text), 0644);
	free(text);
	return rc;
}


static const struct st_option demo_opts[] = {
	{ "boards", 'n', ST_OPT_INT, &dopt.boards, "N", "how many virtual boards (8)" },
	{ "key-mode", 'k', ST_OPT_STRING, &dopt.key_mode, "MODE", "device, hsm or psk (device)" },
	{ "latency", 'l', ST_OPT_STRING, &dopt.latency, "SCALE",
	  "virtual board latency model: 1 realistic (default), 0 none" },
	{ "anchor", 'a', ST_OPT_STRING, &dopt.anchor, "ANCHOR",
	  "agent, or pcsc: each board's card in a vpcd reader of a pcscd the demo starts; "
	  "2 boards at most (agent)" },
	{ "faults", 0, ST_OPT_STRING, &dopt.faults, "OPTIONS",
	  "fault options for the virtual boards, e.g. \"--refuse lock --seed 7\" "
	  "(docs/VBOARD.md)" },
	{ "cert-profile", 0, ST_OPT_STRING, &dopt.cert_profile, "NAME",
	  "device certificate profile (default; ieee-802.1ar-idevid, matter-dac: "
	  "docs/CERTIFICATES.md); the hsm hierarchy is made with the CAs it needs" },
	{ "vpcd-port", 0, ST_OPT_INT, &dopt.vpcd_port, "PORT",
	  "with --anchor pcsc: board N's vpcd reader listens on PORT+N (35963)" },
	ST_OPTIONS_END,
};

static imp_err demo_check(int argc, char **argv)
{
	enum fmt_key_mode km;
	bool use_pcsc = strcmp(dopt.anchor, "pcsc") == 0;

	(void)argc;
	(void)argv;
	if (dopt.boards < 1 || dopt.boards > 64) {
		IMP_ERROR("demo: --boards takes 1 to 64 virtual boards, not %ld", dopt.boards);
		return IMP_ERR_USAGE;
	}
	if (fmt_key_mode_parse(dopt.key_mode, &km) != IMP_OK) {
		IMP_ERROR("demo: --key-mode takes device, hsm or psk, not '%s'", dopt.key_mode);
		return IMP_ERR_USAGE;
	}
	{
		char *end;
		double lat;

		errno = 0;
		lat = strtod(dopt.latency, &end);
		if (end == dopt.latency || *end || errno || !(lat >= 0 && lat <= 1000)) {
			IMP_ERROR("demo: --latency takes a scale from 0 (the boards answer at once) "
				  "to 1000, 1 the realistic model; got '%s'", dopt.latency);
			return IMP_ERR_USAGE;
		}
	}
	if (!use_pcsc && strcmp(dopt.anchor, "agent") != 0) {
		IMP_ERROR("demo: --anchor takes agent or pcsc");
		return IMP_ERR_USAGE;
	}
	if (use_pcsc && (dopt.boards > DEMO_PCSC_BOARDS_MAX || dopt.vpcd_port < 1 ||
			 dopt.vpcd_port + dopt.boards > 65000)) {
		IMP_ERROR("demo: --anchor pcsc takes 1 to %d boards (vpcd's slots) and "
			  "--vpcd-port 1 to %ld", DEMO_PCSC_BOARDS_MAX, 65000 - dopt.boards);
		return IMP_ERR_USAGE;
	}
	return IMP_OK;
}

static int demo_run(struct station_ctx *ctx, int argc, char **argv)
{
	const long boards = dopt.boards, vpcd_port = dopt.vpcd_port;
	const char *key_mode = dopt.key_mode, *latency = dopt.latency, *anchor = dopt.anchor;
	bool use_pcsc = strcmp(anchor, "pcsc") == 0;
	struct vboard vb = { 0 };
	struct st_registry reg = { 0 };
	struct demo_pcscd pcscd = { 0 };
	struct st_run *l = ctx->run;
	char pcsc[64];
	char demo[4200], fw[4300], sig[4300], cfg_path[4300], state[4300];
	int code = 0;
	imp_err rc;

	(void)argc;
	(void)argv;
	snprintf(pcsc, sizeof(pcsc), "127.0.0.1:%ld", vpcd_port);
	snprintf(demo, sizeof(demo), "%s/demo", ctx->data_dir);
	snprintf(fw, sizeof(fw), "%s/firmware.bin", demo);
	snprintf(sig, sizeof(sig), "%s/firmware.sig", demo);
	snprintf(cfg_path, sizeof(cfg_path), "%s/station-%s.json", demo, key_mode);
	snprintf(state, sizeof(state), "%s/boards.XXXXXX", demo);
	rc = imp_mkdir_p(demo, 0700);
	if (rc == IMP_OK && !mkdtemp(state))
		rc = IMP_ERR_IO;
	if (rc == IMP_OK)
		rc = prepare_hsm_and_firmware(ctx, fw, sig, strcmp(key_mode, "psk") == 0);
	if (rc == IMP_OK && use_pcsc)
		rc = pcscd_start(&pcscd, demo, (int)vpcd_port, boards);
	if (rc == IMP_OK)
		rc = vboard_start(&vb, boards, state, latency, use_pcsc ? pcsc : NULL, dopt.faults);
	if (rc == IMP_OK && use_pcsc)
		endpoints_add_readers(vb.endpoints);
	if (rc == IMP_OK) {
		char regdir[4300];

		snprintf(regdir, sizeof(regdir), "%s/registry", demo);
		rc = st_registry_start(ctx, regdir, &reg);
	}
	if (rc == IMP_OK)
		rc = write_demo_config(cfg_path, key_mode, vb.endpoints, fw, sig,
				       st_registry_config(&reg));
	if (rc != IMP_OK)
		goto cleanup;
	IMP_INFO("demo: %ld virtual boards (state in %s), key mode %s, trust anchor %s, "
		 "configuration %s", boards, state, key_mode, anchor, cfg_path);
	ctx->config = cfg_path;
	rc = st_setup(ctx, NEED_BOARDS);
	if (rc != IMP_OK)
		goto cleanup;
	code = st_provision_run(ctx, l, 0, 0);
	{
		/* Deliver to the local registry, then audit it all offline. */
		char *exp_argv[] = { "export", "--once", NULL };
		char *aud_argv[] = { "audit", "--registry-db", reg.db, NULL };
		int ecode = st_dispatch(st_commands, "imprint", 2, exp_argv, ctx);

		if (code == 0)
			code = ecode;
		ecode = st_dispatch(st_commands, "imprint", 3, aud_argv, ctx);
		if (code == 0)
			code = ecode;
	}
	if (!ctx->json) {
		char trust[4200];
		uint64_t pending = 0;

		st_trust_dir(ctx, trust, sizeof(trust));
		jnl_outbox_count_pending(l->journal, &pending);
		printf("signed identity records waiting for the registry: %llu\n",
		       (unsigned long long)pending);
		printf("trust bundle: %s/%s\n", trust, HSM_ORG_BUNDLE_FILE);
		printf("registry: %s (database %s)\n", reg.url, reg.db);
		/* The program as it was started: a build tree's imprint is not on
		 * $PATH. */
		const char *prog = ctx->prog && strchr(ctx->prog, '/') ? ctx->prog : "imprint";

		printf("configuration: %s (station demo-station; its registry stopped with the "
		       "demo)\n", cfg_path);
		printf("next: '%s --data-dir %s boards' lists the boards, '... records' the signed "
		       "records, '... status' the journal; what writes the journal (resume, revoke, "
		       "export, journal checkpoint) takes --config %s (station demo-station)\n",
		       prog, ctx->data_dir, cfg_path);
	}
cleanup:
	st_registry_stop(&reg);
	vboard_stop(&vb);
	pcscd_stop(&pcscd);
	if (rc != IMP_OK)
		return st_fail(rc, "the demo did not run");
	return code;
}

const struct st_command st_cmd_demo = {
	.name = "demo",
	.fn = demo_run,
	.need = NEED_DATA_DIR,
	.summary = "the whole virtual line: start boards, init the hsm, provision, summarise",
	.usage = "imprint demo [--boards N] [--key-mode MODE] [--latency SCALE] "
		 "[--anchor agent|pcsc] [--vpcd-port PORT] [--faults OPTIONS] "
		 "[--cert-profile NAME]",
	.opts = demo_opts,
	.check = demo_check,
	.help = "The whole line on one machine: starts N virtual boards (imprint-vboard), "
		"creates the embedded SoftHSM2 token and the organisation's hierarchy if "
		"needed, signs a demo firmware image with the code-signing key, provisions "
		"every board, delivers the records to a local imprint-registry and audits "
		"it all. Everything is kept in DATA/demo (the configuration it wrote, the "
		"boards' state, the registry); the journal is DATA's. The closing lines "
		"name the commands to look at the result. With --cert-profile the device "
		"certificates follow that profile and the hierarchy is made with the CAs "
		"it names (docs/CERTIFICATES.md); a data directory whose hierarchy was made "
		"for another profile is refused. Exit codes are those of provisioning, "
		"export and audit.",
	.exits = (const imp_err[]){ IMP_ERR_IO, IMP_ERR_HSM, IMP_ERR_PIN, IMP_ERR_NOT_FOUND,
				    IMP_ERR_FIRMWARE, IMP_ERR_VERIFY, IMP_ERR_PROBE,
				    IMP_ERR_LINK, IMP_ERR_TIMEOUT, IMP_ERR_BOARD,
				    IMP_ERR_CHALLENGE, IMP_ERR_QUOTA, IMP_ERR_EXPORT,
				    IMP_ERR_AUDIT, IMP_ERR_INTERRUPTED, IMP_OK },
	.example = "imprint demo --boards 8\nimprint --data-dir /tmp/demo demo --boards 2 "
		"--latency 0 --key-mode hsm",
};
